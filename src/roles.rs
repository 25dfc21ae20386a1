//! The HTTP side of one process, whatever the store: ingest and query merged into one
//! router over the same store, with the built client beside them.

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use ledger::ports::{EventStore, LedgerStore, ProjectionReader};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// What the two HTTP roles are configured with.
pub struct HttpSettings<'a> {
    /// Stamped on every record ingested here.
    pub region: &'a str,
    pub retention: ledger::Retention,
    pub cookie_secure: bool,
    pub guest_max_age_s: u32,
    pub host_max_age_s: u32,
    /// The built client to serve (`/event/*` falls back to its `index.html`).
    pub static_dir: Option<&'a Path>,
    /// What `/healthz` checks beyond a store read (embedded mode).
    pub health: Option<Arc<dyn query::HealthProbe>>,
    /// The write rate limits per client address and per voter.
    pub rate_limits: ingest::RateLimits,
}

pub fn router<S>(store: Arc<S>, hub: query::LiveHub, settings: HttpSettings<'_>) -> Router
where
    S: EventStore + LedgerStore + ProjectionReader + 'static,
{
    let ingest = ingest::router(ingest::IngestState {
        events: store.clone() as Arc<dyn EventStore>,
        ledger: store.clone() as Arc<dyn LedgerStore>,
        projection: store.clone() as Arc<dyn ProjectionReader>,
        config: ingest::IngestConfig {
            region: settings.region.to_owned(),
            retention: settings.retention,
            cookie_secure: settings.cookie_secure,
            rate_limits: settings.rate_limits,
        },
        ids: Arc::new(ingest::IdMinter::new()),
    });
    let query = query::router(query::QueryState {
        events: store.clone() as Arc<dyn EventStore>,
        projection: store as Arc<dyn ProjectionReader>,
        config: query::QueryConfig { guest_max_age_s: settings.guest_max_age_s, host_max_age_s: settings.host_max_age_s },
        live: Some(hub),
        metrics: metrics_handle(),
        health: settings.health,
    });
    let router = ingest.merge(query);
    match settings.static_dir {
        Some(dir) => router.merge(crate::site::router(dir)),
        None => router,
    }
}

/// How often buffered histogram samples are folded into the Prometheus histograms.
const METRICS_UPKEEP_SECONDS: u64 = 5;

/// The process-wide Prometheus recorder (a process can hold only one).
pub fn metrics_handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            // Histograms keep raw samples until upkeep folds them in; without a scrape they
            // would grow with every request, so fold them in on a timer.
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(Duration::from_secs(METRICS_UPKEEP_SECONDS));
                    upkeep.run_upkeep();
                })
                .ok()?;
            Some(handle)
        })
        .clone()
}
