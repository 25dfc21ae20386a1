//! The embedded store keeps every acknowledged record foldable whatever time and faults do:
//! a sequence never reused after a sweep, the retention stored in the file, sweeps in small
//! steps, poison records set aside instead of freezing every event, and a writer that dies
//! loudly instead of leaving a zombie. Each test here failed before its fix.

use std::sync::Arc;

use aggregator::tail::{Step, TailState, Tailer};
use ledger::ports::{EventRow, EventStore, LedgerFeed, LedgerStore, ProjectionReader, ProjectionStore, StoreError};
use ledger::{Asked, EventId, QuestionId, Record, RecordBody, RecordId, Retention, VoterId};
use ledger_sqlite::{Durability, Options, SqliteStore};
use tokio::sync::{broadcast, watch, Notify};
use ulid::Ulid;

const DAY_MS: u64 = 86_400_000;
/// 2026-11-01T00:00:00Z: the simulated "now" of these tests.
const NOW_MS: u64 = 1_793_491_200_000;

fn open(path: &std::path::Path, retention: Option<Retention>) -> Result<Arc<SqliteStore>, StoreError> {
    SqliteStore::open(path, Options { durability: Durability::Normal, retention })
}

fn days(n: u64) -> Retention {
    Retention::from_days(n).expect("valid retention")
}

struct Ids(u128);

impl Ids {
    /// A fresh id at `ms` (ids at the same ms still differ and increase).
    fn at(&mut self, ms: u64) -> Ulid {
        self.0 += 1;
        Ulid::from_parts(ms, self.0)
    }
}

async fn event(store: &SqliteStore, id: EventId) {
    let row = EventRow { id, secret_hash: [7; 32], expire_unix: store.retention().expire_of(id) };
    store.create_event(&row).await.expect("event");
}

fn asked(ids: &mut Ids, event: EventId, ms: u64) -> Record {
    let question = QuestionId(ids.at(ms));
    Record {
        id: RecordId(ids.at(ms)),
        event,
        question,
        region: "test".into(),
        body: RecordBody::Asked(Asked { text: "what now then?".into(), who: None, voter: VoterId(ids.at(ms)) }),
    }
}

fn tailer(store: &Arc<SqliteStore>) -> Tailer {
    Tailer {
        feed: store.clone() as Arc<dyn LedgerFeed>,
        store: store.clone() as Arc<dyn ProjectionStore>,
        appended: Arc::new(Notify::new()),
        changes: broadcast::channel(16).0,
        caught_up: watch::channel(0).0,
        trouble: watch::channel(None).0,
    }
}

/// Steps the aggregator until nothing is left or a step fails; returns the failures seen.
async fn fold_all(store: &Arc<SqliteStore>, now_ms: u64) -> Vec<String> {
    let t = tailer(store);
    let mut state = TailState::at(store.cursor().await.expect("cursor"));
    let mut failures = Vec::new();
    for _ in 0..100 {
        match t.step(&mut state, now_ms / 1_000).await {
            Step::Idle => return failures,
            Step::Advanced { .. } => {}
            Step::Failed(e) => failures.push(e),
        }
    }
    panic!("the aggregator never went idle; failures: {failures:?}");
}

#[tokio::test]
async fn records_appended_after_a_sweep_removed_the_newest_rows_are_folded() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("t.db");
    let store = open(&path, Some(days(30))).expect("open");
    let mut ids = Ids(0);
    // 20 questions of an event from 40 days ago, folded: the cursor is at 20.
    let old = EventId(ids.at(NOW_MS - 40 * DAY_MS));
    event(&store, old).await;
    let records: Vec<Record> = (0..20).map(|_| asked(&mut ids, old, NOW_MS - 40 * DAY_MS + 1)).collect();
    store.append(&records).await.expect("append");
    assert!(fold_all(&store, NOW_MS).await.is_empty());
    assert_eq!(store.cursor().await.expect("cursor"), 20);
    // The sweep removes all 20 (the newest rows of the ledger).
    assert!(store.sweep_expired(NOW_MS / 1_000).await.expect("sweep") >= 20);
    assert_eq!(store.event_questions(old).await.expect("questions"), vec![]);
    // Three new questions of a live event get numbers above the cursor and are folded.
    let live = EventId(ids.at(NOW_MS));
    event(&store, live).await;
    let new: Vec<Record> = (0..3).map(|_| asked(&mut ids, live, NOW_MS + 1)).collect();
    for r in &new {
        store.append(std::slice::from_ref(r)).await.expect("append");
    }
    assert_eq!(store.high_water().await.expect("high water"), 23, "numbers are never handed out twice");
    assert!(fold_all(&store, NOW_MS).await.is_empty());
    assert_eq!(store.event_questions(live).await.expect("questions").len(), 3, "every new question is folded");
    store.close().await;
    // And after a restart, still: the high-water mark is kept in the file.
    let store = open(&path, None).expect("reopen");
    assert_eq!(store.high_water().await.expect("high water"), 23);
    store.close().await;
}

#[tokio::test]
async fn the_retention_is_stored_in_the_file_and_a_different_one_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("t.db");
    let store = open(&path, Some(days(7))).expect("create with 7 days");
    assert_eq!(store.retention(), days(7));
    // An event minted at 2026-11-01T00:00:00.000Z expires exactly 7 days later.
    let id = EventId(Ulid::from_parts(NOW_MS, 1));
    event(&store, id).await;
    assert_eq!(store.event(id).await.expect("read").map(|e| e.expire_unix), Some(1_793_491_200 + 604_800));
    store.close().await;

    // Any command opening it without a retention uses the stored one.
    let store = open(&path, None).expect("reopen");
    assert_eq!(store.retention().days(), 7);
    store.close().await;
    // A different one is refused, saying how to change it.
    match open(&path, Some(days(30))) {
        Err(StoreError::Rejected(why)) => assert!(why.contains("retention --set 30"), "{why}"),
        other => panic!("opened with another retention: {:?}", other.map(|_| ())),
    }
    // Changing it restamps what is stored.
    let store = open(&path, Some(days(7))).expect("same retention");
    store.set_retention(days(10)).await.expect("set");
    assert_eq!(store.retention().days(), 10);
    assert_eq!(store.event(id).await.expect("read").map(|e| e.expire_unix), Some(1_793_491_200 + 864_000));
    store.close().await;
    let store = open(&path, Some(days(10))).expect("the new retention is the file's");
    store.close().await;
}

#[tokio::test]
async fn a_sweep_removes_only_what_expired_and_in_small_steps() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir.path().join("t.db"), Some(days(1))).expect("open");
    let mut ids = Ids(0);
    let old = EventId(ids.at(NOW_MS - 2 * DAY_MS));
    let live = EventId(ids.at(NOW_MS - DAY_MS / 2));
    event(&store, old).await;
    event(&store, live).await;
    // More rows than one sweep step examines, in every table.
    let q_old = asked(&mut ids, old, NOW_MS - 2 * DAY_MS + 5);
    let q_live = asked(&mut ids, live, NOW_MS - DAY_MS / 2 + 5);
    let mut records = vec![q_old.clone(), q_live.clone()];
    for (q, ms) in [(&q_old, NOW_MS - 2 * DAY_MS + 10), (&q_live, NOW_MS - DAY_MS / 2 + 10)] {
        for _ in 0..2_500 {
            records.push(Record {
                id: RecordId(ids.at(ms)),
                body: RecordBody::Voted { voter: VoterId(ids.at(ms)), up: true },
                ..q.clone()
            });
        }
    }
    store.append(&records).await.expect("append");
    assert!(fold_all(&store, NOW_MS).await.is_empty());
    let removed = store.sweep_expired(NOW_MS / 1_000).await.expect("sweep");
    // The old event: 2,501 records, 2,501 voter states, 1 question, 1 event.
    assert_eq!(removed, 2_501 + 2_501 + 1 + 1);
    assert_eq!(store.event_questions(old).await.expect("old"), vec![]);
    assert_eq!(store.event(old).await.expect("old event"), None);
    assert_eq!(store.event_questions(live).await.expect("live").first().map(|c| c.votes), Some(2_501));
    assert_eq!(store.count(Some(live)).await.expect("count"), 2_501);
    assert_eq!(store.sweep_expired(NOW_MS / 1_000).await.expect("again"), 0);
    store.close().await;
}

/// A store in a temporary directory with two live events, `a` and `b`, and the ids that
/// minted them (for the records that follow).
struct TwoEvents {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    store: Arc<SqliteStore>,
    ids: Ids,
    a: EventId,
    b: EventId,
}

async fn two_events() -> TwoEvents {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut ids = Ids(0);
    let path = dir.path().join("t.db");
    let store = open(&path, None).expect("open");
    let (a, b) = (EventId(ids.at(NOW_MS)), EventId(ids.at(NOW_MS)));
    event(&store, a).await;
    event(&store, b).await;
    TwoEvents { _dir: dir, path, store, ids, a, b }
}

/// Closes `store`, changes its file behind its back with `sql` (as a bad restore, a bug or
/// a hand would), and opens it again: from then on everything is read from the file.
async fn damage(store: Arc<SqliteStore>, path: &std::path::Path, sql: &str) -> Arc<SqliteStore> {
    store.close().await;
    let raw = rusqlite::Connection::open(path).expect("raw");
    raw.execute(sql, []).expect("damage");
    drop(raw);
    open(path, None).expect("reopen")
}

#[tokio::test]
async fn an_unreadable_record_is_set_aside_and_every_other_event_keeps_updating() {
    let TwoEvents { _dir, path, store, mut ids, a, b } = two_events().await;
    let first = asked(&mut ids, a, NOW_MS + 1);
    let poison = asked(&mut ids, a, NOW_MS + 2);
    let after = asked(&mut ids, b, NOW_MS + 3);
    for r in [&first, &poison, &after] {
        store.append(std::slice::from_ref(r)).await.expect("append");
    }
    // The middle row damaged on disk.
    let store = damage(store, &path, "UPDATE ledger SET kind = 99 WHERE seq = 2").await;
    assert!(fold_all(&store, NOW_MS).await.is_empty());
    assert_eq!(store.cursor().await.expect("cursor"), 3, "the cursor moved past the damaged row");
    assert_eq!(store.event_questions(a).await.expect("a").len(), 1);
    assert_eq!(store.event_questions(b).await.expect("b").len(), 1, "the other event kept updating");
    let set_aside = store.quarantined().await.expect("quarantined");
    assert_eq!(set_aside.len(), 1);
    assert_eq!((set_aside[0].seq, set_aside[0].record.clone()), (2, Some(poison.id.to_string())));
    assert!(set_aside[0].reason.contains("unknown kind 99"), "{}", set_aside[0].reason);
    assert_eq!(store.unacknowledged_quarantined().await.expect("count"), 1);
    assert_eq!(store.acknowledge_quarantined().await.expect("ack"), 1);
    assert_eq!(store.unacknowledged_quarantined().await.expect("count"), 0);
    store.close().await;
}

#[tokio::test]
async fn a_record_the_projection_refuses_is_set_aside_after_bounded_attempts() {
    let TwoEvents { _dir, path, store, mut ids, a, b } = two_events().await;
    let q = asked(&mut ids, a, NOW_MS + 1);
    let voter = VoterId(ids.at(NOW_MS));
    let up = Record { id: RecordId(ids.at(NOW_MS + 2)), body: RecordBody::Voted { voter, up: true }, ..q.clone() };
    store.append(&[q.clone(), up]).await.expect("append");
    assert!(fold_all(&store, NOW_MS).await.is_empty());
    // A projection damaged by hand: the count no longer includes that voter's vote.
    let store = damage(store, &path, "UPDATE questions SET votes = 0").await;
    // Their retraction would take the count below zero: the store refuses it every time.
    let down = Record { id: RecordId(ids.at(NOW_MS + 3)), body: RecordBody::Voted { voter, up: false }, ..q.clone() };
    let other = asked(&mut ids, b, NOW_MS + 4);
    store.append(&[down.clone(), other]).await.expect("append");
    let failures = fold_all(&store, NOW_MS).await;
    assert_eq!(failures.len(), aggregator::tail::POISON_ATTEMPTS_MAX as usize - 1, "{failures:?}");
    assert_eq!(store.event_questions(b).await.expect("b").len(), 1, "the other event's question was folded");
    let set_aside = store.quarantined().await.expect("quarantined");
    assert_eq!(set_aside.iter().map(|q| q.record.clone()).collect::<Vec<_>>(), vec![Some(down.id.to_string())]);
    assert_eq!(store.cursor().await.expect("cursor"), store.last_seq().await.expect("last"));
    store.close().await;
}

#[tokio::test]
async fn a_writer_that_dies_fails_every_write_and_says_so() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir.path().join("t.db"), None).expect("open");
    let mut ids = Ids(0);
    let e = EventId(ids.at(NOW_MS));
    event(&store, e).await;
    assert_eq!(store.writer_failure(), None);
    store.inject_writer_panic();
    let why = tokio::time::timeout(std::time::Duration::from_secs(5), store.writer_died()).await.expect("noticed");
    assert!(why.contains("fault injected"), "{why}");
    match store.append(&[asked(&mut ids, e, NOW_MS + 1)]).await {
        Err(StoreError::Unavailable(msg)) => assert!(msg.contains("writer died"), "{msg}"),
        other => panic!("a write to a dead writer answered {other:?}"),
    }
    // Reads still work (the projection is in memory), and the count is what was committed.
    assert_eq!(store.count(None).await.expect("count"), 0);
    store.close().await;
}
