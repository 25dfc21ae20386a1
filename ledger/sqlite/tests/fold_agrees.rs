//! Given records, when delivered to the SQLite-backed aggregator in random batches, in
//! random order and with duplicates, then the projection equals the pure fold of the set.

use std::sync::Arc;

use ledger::ports::{LedgerStore, ProjectionReader, ProjectionStore};
use ledger::{
    event_subject, Asked, Asking, EventId, EventState, Moderation, Projection, QuestionId, Record, RecordBody,
    RecordId, VoterId,
};
use ledger_sqlite::{Durability, Options, SqliteStore};
use proptest::prelude::*;
use ulid::Ulid;

fn store() -> (tempfile::TempDir, Arc<SqliteStore>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let s =
        SqliteStore::open(dir.path().join("t.db"), Options { durability: Durability::Normal, ..Options::default() })
            .expect("open store");
    (dir, s)
}

/// A small universe so that votes collide: 3 questions, 4 voters, ids 1..=60, every kind
/// (the host's tools and the event's own records too).
fn arb_record() -> impl Strategy<Value = Record> {
    (1u128..=60, 0u8..3, 0u8..4, 0u8..17).prop_map(|(id, q, v, k)| {
        let voter = VoterId(Ulid(100 + v as u128));
        let body = match k {
            // A question has one text and one asker, whatever the order its records arrive in.
            0 => RecordBody::Asked(Asked {
                text: format!("question {q} text"),
                who: None,
                voter: VoterId(Ulid(100 + u128::from(q))),
            }),
            1..=4 => RecordBody::Voted { voter, up: k % 2 == 1 },
            5 | 6 => RecordBody::Answered { on: k == 5 },
            7 => RecordBody::Hidden { on: id % 2 == 0 },
            8 => RecordBody::Approved { on: v % 2 == 0 },
            9 => RecordBody::Spotlight { on: v != 0 },
            10 => RecordBody::Replied { text: if v == 0 { String::new() } else { format!("reply {id}") } },
            11 => RecordBody::Titled { title: format!("title {id}") },
            12 => RecordBody::ModerationSet {
                moderation: if v % 2 == 0 { Moderation::PreApprove } else { Moderation::Off },
            },
            13 => RecordBody::AskingSet { asking: if v % 2 == 0 { Asking::Closed } else { Asking::Open } },
            14 => RecordBody::BlockedWordsSet { words: (0..v).map(|i| format!("w{i} {id}")).collect() },
            15 => RecordBody::CohostMinted { secret_hash: [v; 32] },
            _ => RecordBody::CohostRevoked { secret_hash: [v; 32] },
        };
        let event = EventId(Ulid(7));
        let question = if body.is_event_level() { event_subject(event) } else { QuestionId(Ulid(1_000 + q as u128)) };
        Record {
            // The record id's low bits carry the question, so one id is always one record.
            id: RecordId(Ulid(id * 4 + q as u128)),
            event,
            question,
            region: "test".into(),
            body,
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn aggregator_over_sqlite_equals_pure_fold(
        records in proptest::collection::vec(arb_record(), 1..40),
        order in any::<u64>(),
        batch_sizes in proptest::collection::vec(1usize..7, 1..20),
    ) {
        // A record id must mean one record: keep the first body drawn for each id.
        let mut seen = std::collections::BTreeMap::new();
        for r in records { seen.entry(r.id).or_insert(r); }
        let unique: Vec<Record> = seen.into_values().collect();

        let mut reference = Projection::new();
        for r in &unique { reference.apply(r); }

        // Delivery: every record once or twice, shuffled by a seeded generator.
        use rand::{seq::SliceRandom, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(order);
        let mut delivery: Vec<Record> = unique.iter().cloned().chain(unique.iter().filter(|r| r.id.to_u128() % 3 == 0).cloned()).collect();
        delivery.shuffle(&mut rng);

        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let (_dir, s) = store();
        rt.block_on(async {
            s.append(&unique).await.expect("append");
            let mut at = 0;
            let mut i = 0;
            while at < delivery.len() {
                let n = batch_sizes[i % batch_sizes.len()].min(delivery.len() - at);
                aggregator::apply_batch(s.as_ref(), &delivery[at..at + n], None).await.expect("apply");
                at += n;
                i += 1;
            }
            let stored = s.questions(None).await.expect("questions");
            let expected = reference.sorted();
            prop_assert_eq!(&stored, &expected, "seed {}", order);
            let stored_events = s.event_states(None).await.expect("event states");
            let expected_events: Vec<EventState> = reference.events().cloned().collect();
            prop_assert_eq!(&stored_events, &expected_events, "seed {}", order);
            let read = s.event_state(EventId(Ulid(7))).await.expect("event state");
            let none_yet = EventState::new(EventId(Ulid(7)));
            prop_assert_eq!(&read, expected_events.first().unwrap_or(&none_yet));
            // The in-memory mirror the hot paths read must equal what is on disk.
            for q in &expected {
                let mirrored = s.question(q.standing.id).await.expect("question");
                prop_assert_eq!(mirrored, Some(q.standing));
            }
            Ok(())
        })?;
    }
}

#[tokio::test]
async fn reopening_keeps_everything_and_appends_are_idempotent() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("t.db");
    let voter = VoterId::random();
    let r = Record {
        id: RecordId(Ulid::new()),
        event: EventId(Ulid::new()),
        question: QuestionId(Ulid::new()),
        region: "here".into(),
        body: RecordBody::Asked(Asked { text: "is it durable?".into(), who: Some("Ann".into()), voter }),
    };
    {
        let s = SqliteStore::open(&path, Options::default()).expect("open");
        s.append(std::slice::from_ref(&r)).await.expect("append");
        s.append(std::slice::from_ref(&r)).await.expect("append again");
        aggregator::apply_batch(s.as_ref(), std::slice::from_ref(&r), Some(1)).await.expect("apply");
        s.close().await;
        assert!(s.append(std::slice::from_ref(&r)).await.is_err(), "a closed store refuses writes");
    }
    let s = SqliteStore::open(&path, Options::default()).expect("reopen");
    assert_eq!(s.count(None).await.expect("count"), 1);
    assert_eq!(s.cursor().await.expect("cursor"), 1);
    let q = s.question(r.question).await.expect("read").expect("question exists");
    assert_eq!(q.votes, 1);
    let texts = s.question_texts(&[r.question, QuestionId(Ulid::new())]).await.expect("texts");
    assert_eq!(texts.len(), 1);
    assert_eq!(texts[0].who.as_deref(), Some("Ann"));
}
