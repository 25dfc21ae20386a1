//! Embedded mode: the three roles in one process over one SQLite file. The ingest and query
//! routers are the same ones the Lambdas host; the aggregator is a task tailing the ledger.
//! [`Embedded::start`] wires them; `serve` and the tests both use it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use ledger::ports::{LedgerFeed, ProjectionStore};
use ledger_sqlite::{Durability, Options, SqliteStore};
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Debug, Clone)]
pub struct EmbeddedConfig {
    pub db: PathBuf,
    pub region: String,
    pub retention_days: u64,
    pub durability: Durability,
    pub guest_max_age_s: u32,
    pub host_max_age_s: u32,
    pub cookie_secure: bool,
    /// The built client to serve (`/event/*` falls back to its `index.html`).
    pub static_dir: Option<PathBuf>,
}

impl EmbeddedConfig {
    pub fn new(db: impl Into<PathBuf>) -> Self {
        let query = query::QueryConfig::default();
        Self {
            db: db.into(),
            region: "local".into(),
            retention_days: ledger::limits::RETENTION_DAYS_DEFAULT,
            durability: Durability::Full,
            guest_max_age_s: query.guest_max_age_s,
            host_max_age_s: query.host_max_age_s,
            cookie_secure: false,
            static_dir: None,
        }
    }
}

pub struct Embedded {
    store: Arc<SqliteStore>,
    router: Router,
    caught_up: watch::Receiver<u64>,
    stop_tailer: watch::Sender<bool>,
    tailer: Option<JoinHandle<()>>,
}

impl Embedded {
    pub async fn start(config: EmbeddedConfig) -> anyhow::Result<Self> {
        let store = SqliteStore::open(
            &config.db,
            Options { durability: config.durability, retention_days: config.retention_days },
        )?;
        let hub = query::LiveHub::new();
        let (caught_up_tx, caught_up) = watch::channel(0);
        let (stop_tailer, stop_rx) = watch::channel(false);
        let tailer = aggregator::tail::Tailer {
            feed: store.clone() as Arc<dyn LedgerFeed>,
            store: store.clone() as Arc<dyn ProjectionStore>,
            appended: store.appended(),
            changes: hub.sender(),
            caught_up: caught_up_tx,
        };
        let tailer = tokio::spawn(tailer.run(stop_rx));

        let router = crate::roles::router(store.clone(), hub, crate::roles::HttpSettings {
            region: &config.region,
            retention_days: config.retention_days,
            cookie_secure: config.cookie_secure,
            guest_max_age_s: config.guest_max_age_s,
            host_max_age_s: config.host_max_age_s,
            static_dir: config.static_dir.as_deref(),
        });
        Ok(Self { store, router, caught_up, stop_tailer, tailer: Some(tailer) })
    }

    pub fn router(&self) -> Router {
        self.router.clone()
    }

    pub fn store(&self) -> Arc<SqliteStore> {
        self.store.clone()
    }

    /// Waits (up to 30 s) until the aggregator has folded every record committed before this call.
    pub async fn wait_caught_up(&self) -> anyhow::Result<()> {
        self.wait_caught_up_within(Duration::from_secs(30)).await
    }

    pub async fn wait_caught_up_within(&self, limit: Duration) -> anyhow::Result<()> {
        let head = self.store.last_seq().await?;
        let mut rx = self.caught_up.clone();
        tokio::time::timeout(limit, rx.wait_for(|&c| c >= head))
            .await
            .map_err(|_| anyhow::anyhow!("the aggregator did not catch up with {head} within {limit:?}"))??;
        Ok(())
    }

    /// The aggregator's cursor updates (for lag measurements).
    pub fn caught_up(&self) -> watch::Receiver<u64> {
        self.caught_up.clone()
    }

    /// Lets the aggregator fold what is committed, then closes the store cleanly.
    pub async fn shutdown(mut self) {
        let _ = self.stop_tailer.send(true);
        if let Some(t) = self.tailer.take() {
            let _ = t.await;
        }
        self.store.close().await;
    }
}
