//! The storage conformance suite (`ledger-conformance`) against the SQLite adapter: the same
//! checks the DynamoDB adapter passes on moto, at a larger scale since SQLite is local.

use ledger_conformance::{conformance_tests, Scale, Stores};
use ledger_sqlite::{Durability, Options, SqliteStore};

/// A fresh store in a temporary directory (kept as long as the test runs).
async fn fresh() -> Option<(tempfile::TempDir, Stores)> {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = Options { durability: Durability::Normal, ..Options::default() };
    let store = SqliteStore::open(dir.path().join("conformance.db"), options).expect("open store");
    Some((dir, Stores::of(store)))
}

conformance_tests!(fresh(), Scale::LOCAL);

/// The literal retention check (the same fixture the DynamoDB adapter passes on moto): on a
/// store created with 7 days' retention, every row of an event minted at
/// 2030-01-01T00:00:00.123Z (its records, its question, its voters) expires at 1,894,060,800.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_expires_at_its_events_time_plus_the_stored_retention() {
    use ledger_conformance::{write_retention_fixture, RETENTION_CHECK_DAYS, RETENTION_CHECK_EXPIRE_UNIX};
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("retention.db");
    let retention = ledger::Retention::from_days(RETENTION_CHECK_DAYS).expect("7 days");
    let options = Options { durability: Durability::Normal, retention: Some(retention) };
    let store = SqliteStore::open(&path, options).expect("open store");
    assert_eq!(store.retention(), retention);
    write_retention_fixture(&Stores::of(store.clone())).await;
    store.close().await;
    let conn = rusqlite::Connection::open(&path).expect("open the file");
    for table in ["ledger", "questions", "voters", "event_states", "cohosts"] {
        let mut rows = conn.prepare(&format!("SELECT DISTINCT expire FROM {table}")).expect("prepare");
        let expiries: Vec<i64> = rows.query_map([], |r| r.get(0)).expect("query").map(|e| e.expect("expire")).collect();
        assert_eq!(expiries, vec![RETENTION_CHECK_EXPIRE_UNIX as i64], "expiry of the rows in {table}");
    }
}
