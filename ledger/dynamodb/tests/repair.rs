//! `replay --repair` beside a running aggregator: the repair rewrites drifted questions to
//! the fold of the ledger, and an aggregator commit landing between the repair's reads and
//! its writes is neither overwritten nor counted twice.

use std::sync::Arc;

use ledger::ports::{LedgerStore, ProjectionReader, ProjectionStore};
use ledger::{Asked, EventId, Projection, QuestionId, Record, RecordBody, RecordId, VoterId};
use ledger_conformance::{assert_projection_is_fold, moto_endpoint, Stores};
use ledger_dynamodb::{fresh_tables, DynamoStore, Tables};
use ulid::Ulid;

fn at(ms: u64) -> Ulid {
    Ulid::from_parts(ledger::retention::now_unix() * 1_000 + ms, rand::random())
}

fn record(event: EventId, question: QuestionId, ms: u64, body: RecordBody) -> Record {
    Record { id: RecordId(at(ms)), event, question, region: "test".into(), body }
}

/// Folds `records` and stores them in the ledger, then makes the projection drift: it is
/// replaced by the fold of `projected` (a subset), as after a lost batch.
async fn drifted(store: &DynamoStore, event: EventId, records: &[Record], projected: &[Record]) {
    store.append(records).await.expect("append");
    aggregator::apply_batch(store, records, None).await.expect("fold");
    let mut fold = Projection::new();
    for r in projected {
        fold.apply(r);
    }
    let voters: Vec<_> = fold.voters().collect();
    let questions = fold.sorted();
    let replacement = ledger::ports::Replacement::new(Some(event), &questions, &voters).expect("one event's fold");
    store.replace(&replacement).await.expect("make it drift");
}

async fn repair_with_a_commit_in_between(store: Arc<DynamoStore>) {
    let event = EventId(at(0));
    let (q, q2) = (QuestionId(at(1)), QuestionId(at(2)));
    let voters: Vec<VoterId> = (0..5).map(|_| VoterId::random()).collect();
    let asked = |q: QuestionId, ms, text: &str| {
        record(event, q, ms, RecordBody::Asked(Asked { text: text.into(), who: None, voter: voters[0] }))
    };
    let mut history = vec![asked(q, 3, "Will the repair keep this?"), asked(q2, 4, "And this one?")];
    for (i, &v) in voters.iter().enumerate().skip(1) {
        history.push(record(event, q, 10 + i as u64, RecordBody::Voted { voter: v, up: true }));
    }
    history.push(record(event, q2, 20, RecordBody::Answered { on: true }));
    // The projection lost the last vote on q and the answered flag of q2.
    let projected: Vec<Record> =
        history.iter().filter(|r| r.id != history[5].id && r.id != history[6].id).cloned().collect();
    drifted(&store, event, &history, &projected).await;
    assert_eq!(store.question(q).await.expect("read").map(|c| c.votes), Some(4), "the drift is in place");

    // Between the repair's reads and its writes, guests act and the aggregator commits: a
    // retraction by a counted voter, a new voter, and q2 hidden.
    let late = vec![
        record(event, q, 30, RecordBody::Voted { voter: voters[1], up: false }),
        record(event, q, 31, RecordBody::Voted { voter: VoterId::random(), up: true }),
        record(event, q2, 32, RecordBody::Hidden { on: true }),
    ];
    let (aggregator_store, late_records) = (store.clone(), late.clone());
    let repaired = store
        .repair_observed(event, &[q, q2], move |round| {
            let (store, late) = (aggregator_store.clone(), late_records.clone());
            async move {
                if round == 1 {
                    store.append(&late).await.expect("append the late records");
                    let applied = aggregator::apply_batch(store.as_ref(), &late, None).await.expect("fold them");
                    assert_eq!(applied.voter_writes, 2, "the aggregator committed both late votes");
                }
            }
        })
        .await
        .expect("repair");
    let mut all = history.clone();
    all.extend(late);
    let stores = Stores::of(store.clone());
    assert_projection_is_fold(&stores, event, &all, "a repair with an aggregator commit in between").await;
    assert_eq!(store.question(q).await.expect("read").map(|c| c.votes), Some(5), "asker + 4 voters - 1 + 1");
    assert!(repaired.rounds >= 2, "the aggregator's commit went unnoticed: {repaired:?}");
    assert_eq!(repaired.questions, 2);

    // The aggregator goes on as usual on the repaired state: a redelivery counts nothing twice.
    aggregator::apply_batch(store.as_ref(), &all, None).await.expect("redeliver");
    assert_projection_is_fold(&stores, event, &all, "after a redelivery").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repair_keeps_what_the_aggregator_commits_meanwhile() {
    let Some(endpoint) = moto_endpoint("MOTO_ENDPOINT_A") else { return };
    repair_with_a_commit_in_between(Arc::new(fresh_tables(&endpoint).await.expect("tables"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repair_without_counter_shards_keeps_what_the_aggregator_commits_meanwhile() {
    let Some(endpoint) = moto_endpoint("MOTO_ENDPOINT_A") else { return };
    let sharded = fresh_tables(&endpoint).await.expect("tables");
    let tables = Tables { counter_shards: 0, ..sharded.tables().clone() };
    repair_with_a_commit_in_between(Arc::new(DynamoStore::new(sharded.client().clone(), tables, sharded.retention())))
        .await;
}

/// Questions the ledger does not hold are removed, a question it holds but the projection
/// lost is restored, and an undisturbed repair takes one round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repair_removes_and_restores_questions() {
    let Some(endpoint) = moto_endpoint("MOTO_ENDPOINT_A") else { return };
    let store = Arc::new(fresh_tables(&endpoint).await.expect("tables"));
    let event = EventId(at(0));
    let (kept, lost, phantom) = (QuestionId(at(1)), QuestionId(at(2)), QuestionId(at(3)));
    let voter = VoterId::random();
    let ledger = vec![
        record(event, kept, 5, RecordBody::Voted { voter, up: true }),
        record(event, lost, 6, RecordBody::Voted { voter, up: true }),
    ];
    let ghost = record(event, phantom, 7, RecordBody::Voted { voter, up: true });
    // The projection has the phantom (never in the ledger) and lacks `lost`.
    store.append(&ledger).await.expect("append");
    let projected = vec![ledger[0].clone(), ghost];
    aggregator::apply_batch(store.as_ref(), &projected, None).await.expect("fold");
    let repaired = store.repair(event, &[lost, phantom]).await.expect("repair");
    assert_eq!(repaired, ledger_dynamodb::repair::Repaired { questions: 2, rounds: 1 });
    assert_projection_is_fold(&Stores::of(store.clone()), event, &ledger, "after the repair").await;
    assert_eq!(store.question(phantom).await.expect("read"), None);
    assert!(store.voters(&[(phantom, voter)]).await.expect("read").is_empty(), "the phantom's voter is gone");
}
