//! Embedded mode: the three roles in one process over one SQLite file. The ingest and query
//! routers are the same ones the Lambdas host; the aggregator is a task tailing the ledger.
//! [`Embedded::start`] wires them; `serve` and the tests both use it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aggregator::tail::Trouble;
use axum::Router;
use ledger::ports::{LedgerFeed, ProjectionStore};
use ledger_sqlite::{Durability, Options, SqliteStore};
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::roles::ServiceSettings;

/// `/healthz` turns 503 when the aggregator has failed for longer than this without a
/// batch going through.
pub const AGGREGATOR_FAILING_SECONDS_MAX: u64 = 5;
/// ... or when records wait after its cursor and the cursor has not moved for this long.
pub const AGGREGATOR_STALLED_SECONDS_MAX: u64 = 10;

/// How often expired events are swept out of the file (the first sweep runs at start, so
/// a process that was down past an event's expiry removes it at once).
pub const SWEEP_INTERVAL_SECONDS: u64 = 3_600;

#[derive(Debug, Clone)]
pub struct EmbeddedConfig {
    pub db: PathBuf,
    pub durability: Durability,
    /// What the roles are configured with (as for any store).
    pub service: ServiceSettings,
}

impl EmbeddedConfig {
    pub fn new(db: impl Into<PathBuf>) -> Self {
        Self { db: db.into(), durability: Durability::Full, service: ServiceSettings::default() }
    }
}

pub struct Embedded {
    store: Arc<SqliteStore>,
    router: Router,
    /// Where the live streams wait for changes; closed on shutdown.
    hub: query::LiveHub,
    caught_up: watch::Receiver<u64>,
    stop_tailer: watch::Sender<bool>,
    tailer: Option<JoinHandle<()>>,
    sweeper: JoinHandle<()>,
}

impl Embedded {
    /// Opens (or creates) the file and starts the roles over it.
    pub async fn start(config: EmbeddedConfig) -> anyhow::Result<Self> {
        let options = Options { durability: config.durability, retention: config.service.retention };
        Ok(Self::over(SqliteStore::open(&config.db, options)?, &config.service))
    }

    /// Starts the roles over a store already open (its own retention and durability hold).
    pub fn over(store: Arc<SqliteStore>, settings: &ServiceSettings) -> Self {
        let retention = store.retention();
        let hub = query::LiveHub::new();
        let (caught_up_tx, caught_up) = watch::channel(0);
        let (trouble_tx, trouble) = watch::channel(None);
        let (stop_tailer, stop_rx) = watch::channel(false);
        let tailer = aggregator::tail::Tailer {
            feed: store.clone() as Arc<dyn LedgerFeed>,
            store: store.clone() as Arc<dyn ProjectionStore>,
            appended: store.appended(),
            changes: hub.sender(),
            caught_up: caught_up_tx,
            trouble: trouble_tx,
        };
        let tailer = tokio::spawn(tailer.run(stop_rx));
        let health = Arc::new(EmbeddedHealth {
            store: store.clone(),
            caught_up: caught_up.clone(),
            trouble,
            last_move: Mutex::new((0, std::time::Instant::now())),
        });

        let router = crate::roles::router(store.clone(), hub.clone(), settings, retention, Some(health));
        let sweeper = tokio::spawn(sweep_every(store.clone(), Duration::from_secs(SWEEP_INTERVAL_SECONDS)));
        Self { store, router, hub, caught_up, stop_tailer, tailer: Some(tailer), sweeper }
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

    /// Resolves, with the reason, when the ledger's writer thread has died: the process
    /// cannot take writes any more and should exit so that it is restarted.
    pub async fn writer_died(&self) -> String {
        self.store.writer_died().await
    }

    /// Ends every live stream now and refuses new ones (they would never end by themselves,
    /// so a graceful shutdown calls this before it waits for open requests to finish).
    pub fn close_live_streams(&self) {
        self.hub.close();
    }

    /// Lets the aggregator fold what is committed, then closes the store cleanly.
    pub async fn shutdown(mut self) {
        self.sweeper.abort();
        let _ = self.stop_tailer.send(true);
        if let Some(t) = self.tailer.take() {
            let _ = t.await;
        }
        self.store.close().await;
    }
}

/// Sweeps expired events out of the store now and then every `interval`.
async fn sweep_every(store: Arc<SqliteStore>, interval: Duration) {
    let mut every = tokio::time::interval(interval);
    loop {
        every.tick().await;
        match store.sweep_expired(ledger::retention::now_unix()).await {
            Ok(n) if n > 0 => tracing::info!(rows = n, "expired events swept"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "sweeping expired events failed"),
        }
    }
}

/// The embedded process's health beyond a store read: the writer thread is alive, the
/// aggregator is not failing and not stalled behind the ledger, and no record was set aside
/// without an operator acknowledging it.
struct EmbeddedHealth {
    store: Arc<SqliteStore>,
    caught_up: watch::Receiver<u64>,
    trouble: watch::Receiver<Option<Trouble>>,
    /// The cursor the last check saw, and since when it has been there.
    last_move: Mutex<(u64, std::time::Instant)>,
}

impl query::HealthProbe for EmbeddedHealth {
    fn problems(&self) -> futures::future::BoxFuture<'_, Vec<String>> {
        Box::pin(async move {
            let mut problems = Vec::new();
            if let Some(why) = self.store.writer_failure() {
                problems.push(format!("the ledger writer died: {why}"));
            }
            if let Some((failing, why)) = self.store.commits_failing() {
                problems.push(format!("writes are being refused (for {} s): {why}", failing.as_secs()));
            }
            if self.caught_up.has_changed().is_err() {
                problems.push("the aggregator stopped".into());
            }
            if let Some(t) = self.trouble.borrow().clone() {
                let failing = t.since.elapsed().as_secs();
                if failing >= AGGREGATOR_FAILING_SECONDS_MAX {
                    problems.push(format!("the aggregator has been failing for {failing} s: {}", t.error));
                }
            }
            let cursor = *self.caught_up.borrow();
            let stalled_s = {
                let mut last = self.last_move.lock();
                if last.0 != cursor {
                    *last = (cursor, std::time::Instant::now());
                }
                last.1.elapsed().as_secs()
            };
            match self.store.last_seq().await {
                Ok(head) if head > cursor && stalled_s >= AGGREGATOR_STALLED_SECONDS_MAX => problems.push(format!(
                    "the aggregator is {} records behind and has not moved for {stalled_s} s",
                    head - cursor
                )),
                Ok(_) => {}
                Err(e) => problems.push(format!("cannot read the ledger's end: {e}")),
            }
            match self.store.unacknowledged_quarantined().await {
                Ok(0) => {}
                Ok(n) => problems.push(format!(
                    "{n} ledger records were set aside unfolded; see `wewerewondering quarantine` and acknowledge with `--ack`"
                )),
                Err(e) => problems.push(format!("cannot read the set-aside records: {e}")),
            }
            problems
        })
    }
}
