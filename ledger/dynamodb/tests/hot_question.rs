//! A hot question on DynamoDB (moto): concurrent aggregators fold its votes without
//! conflicting on its counter shard, and an event created before layouts were stored keeps
//! its items under the legacy keys, where every reader still finds them. Volumes are small:
//! moto serves a few hundred requests a second.

use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use ledger::ports::{EventRow, EventStore, LedgerStore, ProjectionReader, ProjectionStore};
use ledger::secret::hash_secret;
use ledger::{Asked, EventId, QuestionId, Record, RecordBody, RecordId, VoterId};
use ledger_conformance::moto_endpoint;
use ledger_dynamodb::item::{event_to_item, Item};
use ledger_dynamodb::{fresh_tables, DynamoStore, Layout, Tables};
use ulid::Ulid;

fn at(ms: u64) -> Ulid {
    Ulid::from_parts(ledger::retention::now_unix() * 1_000 + ms, rand::random())
}

fn record(event: EventId, question: QuestionId, ms: u64, body: RecordBody) -> Record {
    Record { id: RecordId(at(ms)), event, question, region: "test".into(), body }
}

fn event_row(store: &DynamoStore, event: EventId) -> EventRow {
    EventRow { id: event, secret_hash: hash_secret("s"), expire_unix: store.retention().expire_of(event) }
}

async fn item_at(store: &DynamoStore, table: &str, key: Item) -> Option<Item> {
    let out = store
        .client()
        .get_item()
        .table_name(table)
        .set_key(Some(key))
        .consistent_read(true)
        .send()
        .await
        .expect("get an item");
    out.item
}

/// Two aggregators (two stores, as two Lambda instances) fold disjoint batches of one
/// question's votes at the same time. The question has one counter shard, so every voter
/// transaction of both writes that one item: with the counter added (`ADD`) rather than
/// written conditionally, no transaction is cancelled for a failed condition, and the count
/// is exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_aggregators_fold_one_questions_votes_without_conflicting_on_its_counter() {
    let Some(endpoint) = moto_endpoint("MOTO_ENDPOINT_A") else { return };
    let first = fresh_tables(&endpoint).await.expect("tables on moto");
    let tables = Tables { counter_shards: 1, ..first.tables().clone() };
    let store = |t: &Tables| Arc::new(DynamoStore::new(first.client().clone(), t.clone(), first.retention()));
    let (a, b) = (store(&tables), store(&tables));
    let event = EventId(at(0));
    a.create_event(&event_row(&a, event)).await.expect("create the event");
    let q = QuestionId(at(1));
    let asked = record(
        event,
        q,
        2,
        RecordBody::Asked(Asked { text: "The hot one?".into(), who: None, voter: VoterId::random() }),
    );
    aggregator::apply_batch(a.as_ref(), std::slice::from_ref(&asked), None).await.expect("fold the question");

    const BATCHES: usize = 4;
    const VOTERS_PER_BATCH: usize = 12;
    let batches = |offset: u64| -> Vec<Vec<Record>> {
        (0..BATCHES)
            .map(|i| {
                (0..VOTERS_PER_BATCH)
                    .map(|j| {
                        let ms = offset + (i * VOTERS_PER_BATCH + j) as u64;
                        record(event, q, ms, RecordBody::Voted { voter: VoterId::random(), up: true })
                    })
                    .collect()
            })
            .collect()
    };
    let (for_a, for_b) = (batches(10), batches(1_000));
    let fold = |store: Arc<DynamoStore>, batches: Vec<Vec<Record>>| async move {
        for batch in &batches {
            aggregator::apply_batch(store.as_ref(), batch, None).await.expect("a batch folds");
        }
    };
    tokio::join!(fold(a.clone(), for_a), fold(b.clone(), for_b));

    assert_eq!(a.transactions_with_failed_conditions(), 0, "aggregator A conflicted on the counter");
    assert_eq!(b.transactions_with_failed_conditions(), 0, "aggregator B conflicted on the counter");
    let expected = (1 + 2 * BATCHES * VOTERS_PER_BATCH) as u64;
    let standing = a.question(q).await.expect("read the question").expect("the question exists");
    assert_eq!(standing.votes, expected, "the count is every vote, once");
    let layout = a.layout_of(event).await.expect("layout");
    let shard = item_at(&a, &tables.voters, layout.counter_shard_key(q, 0)).await.expect("the counter shard");
    assert_eq!(shard.get("part"), Some(&AttributeValue::N(expected.to_string())), "the shard holds every delta");
}

/// An event whose item stores no layout (created before layouts were stored) keeps the
/// legacy keys: its records under `{event}#{hash mod 8}`, its voters and counter shards under
/// the question id. A new store still appends, folds and reads it there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_created_before_layouts_were_stored_keeps_the_legacy_keys() {
    let Some(endpoint) = moto_endpoint("MOTO_ENDPOINT_A") else { return };
    let store = fresh_tables(&endpoint).await.expect("tables on moto");
    let t = store.tables().clone();
    let event = EventId(at(0));
    // The item as the previous version wrote it: no layout attributes.
    store
        .client()
        .put_item()
        .table_name(&t.events)
        .set_item(Some(event_to_item(&event_row(&store, event))))
        .send()
        .await
        .expect("an old event item");
    assert_eq!(store.layout_of(event).await, Ok(Layout::LEGACY));

    let q = QuestionId(at(1));
    let asker = VoterId::random();
    let mut records =
        vec![record(event, q, 2, RecordBody::Asked(Asked { text: "Still there?".into(), who: None, voter: asker }))];
    let voters: Vec<VoterId> = (0..20).map(|_| VoterId::random()).collect();
    for (i, &voter) in voters.iter().enumerate() {
        records.push(record(event, q, 10 + i as u64, RecordBody::Voted { voter, up: true }));
    }
    store.append(&records).await.expect("append");
    aggregator::apply_batch(&store, &records, None).await.expect("fold");

    for r in &records {
        let key: Item = [
            ("pk".to_owned(), AttributeValue::S(Layout::LEGACY.ledger_partition_of(event, r.id))),
            ("id".to_owned(), AttributeValue::S(r.id.to_string())),
        ]
        .into_iter()
        .collect();
        assert!(item_at(&store, &t.ledger, key).await.is_some(), "record {} not under its legacy key", r.id);
    }
    for &voter in voters.iter().chain([&asker]) {
        let key = Layout::LEGACY.voter_key(q, voter);
        assert!(item_at(&store, &t.voters, key).await.is_some(), "voter {voter} not under the question id");
    }

    // A store that has not seen the event (another process) reads all of it back.
    let other = DynamoStore::new(store.client().clone(), t.clone(), store.retention());
    let mut read = Vec::new();
    let mut after = None;
    loop {
        let page = other.scan(Some(event), after, 7).await.expect("scan the event");
        read.extend(page.records);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    read.sort_by_key(|r| r.id);
    assert_eq!(read, records, "every record of the old event is read");
    assert_eq!(other.count(Some(event)).await, Ok(records.len() as u64));
    let stored = other.voters(&[(q, voters[0]), (q, asker)]).await.expect("voters");
    assert_eq!(stored.len(), 2, "the old voters' states are found");
    let standing = other.question(q).await.expect("read").expect("the question");
    assert_eq!(standing.votes, records.len() as u64);
    // A vote withdrawn later, by another aggregator, moves the count from the stored state.
    let withdrawn = record(event, q, 500, RecordBody::Voted { voter: voters[3], up: false });
    other.append(std::slice::from_ref(&withdrawn)).await.expect("append");
    aggregator::apply_batch(&other, std::slice::from_ref(&withdrawn), None).await.expect("fold");
    let standing = other.question(q).await.expect("read").expect("the question");
    assert_eq!(standing.votes, records.len() as u64 - 1, "the withdrawal counted once against the old state");
}

/// Another aggregator moves a voter of one question between this aggregator's read and its
/// commit. The question's transaction is cancelled; the other question's, committed in a
/// transaction of its own, stands; only the conflicted question's voters are read again and
/// planned again, and the projection ends as the fold of everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_plans_again_only_the_question_that_conflicted() {
    let Some(endpoint) = moto_endpoint("MOTO_ENDPOINT_A") else { return };
    let store = Arc::new(fresh_tables(&endpoint).await.expect("tables on moto"));
    let event = EventId(at(0));
    store.create_event(&event_row(&store, event)).await.expect("create the event");
    // 60 voters a question: each question's voter writes need a transaction of their own.
    const VOTERS: usize = 60;
    let (q1, q2) = (QuestionId(at(1)), QuestionId(at(2)));
    let mut all = Vec::new();
    for q in [q1, q2] {
        let asked = Asked { text: "Which one?".into(), who: None, voter: VoterId::random() };
        all.push(record(event, q, 3, RecordBody::Asked(asked)));
    }
    aggregator::apply_batch(store.as_ref(), &all, None).await.expect("fold the questions");
    let voters: Vec<VoterId> = (0..VOTERS).map(|_| VoterId::random()).collect();
    let mut batch = Vec::new();
    for (i, &voter) in voters.iter().enumerate() {
        for q in [q1, q2] {
            batch.push(record(event, q, 10 + i as u64, RecordBody::Voted { voter, up: true }));
        }
    }
    // The rival: the first voter withdraws from q1, later than the batch's vote.
    let rival = record(event, q1, 5_000, RecordBody::Voted { voter: voters[0], up: false });
    let plan = ledger::BatchPlan::from_records(&batch);
    let reads = std::sync::Mutex::new(Vec::new());
    let change = store
        .resolve_and_commit_observed(&plan, |round, keys| {
            reads.lock().expect("reads").push((round, keys));
            let (store, rival) = (store.clone(), rival.clone());
            async move {
                if round == 0 {
                    aggregator::apply_batch(store.as_ref(), std::slice::from_ref(&rival), None)
                        .await
                        .expect("the rival commits");
                }
            }
        })
        .await
        .expect("the batch commits after planning q1 again");
    assert!(change.voters.iter().all(|v| v.question == q1 || v.question == q2));
    assert_eq!(store.transactions_with_failed_conditions(), 1, "q1's transaction, once");
    let reads = reads.into_inner().expect("reads");
    assert_eq!(reads, vec![(0, 2 * VOTERS), (1, VOTERS)], "read again: only q1's voters");
    all.extend(batch);
    all.push(rival);
    ledger_conformance::assert_projection_is_fold(
        &ledger_conformance::Stores::of(store.clone()),
        event,
        &all,
        "a conflict on one question of two",
    )
    .await;
    let standing = store.question(q1).await.expect("read").expect("q1");
    assert_eq!(standing.votes, VOTERS as u64, "q1: the asker and every voter but the one who withdrew");
}
