//! The storage conformance suite (`ledger-conformance`) against the SQLite adapter: the same
//! checks the DynamoDB adapter passes on moto, at a larger scale since SQLite is local.

use ledger_conformance::{run_all, Scale, Stores};
use ledger_sqlite::{Durability, Options, SqliteStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = Options {
        durability: Durability::Normal,
        ..Options::default()
    };
    let store = SqliteStore::open(dir.path().join("conformance.db"), options).expect("open store");
    run_all(&Stores::of(store.clone()), Scale::LOCAL).await;
    store.close().await;
}
