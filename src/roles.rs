//! The HTTP side of one process, whatever the store: ingest and query merged into one
//! router over the same store, with the built client beside them.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http_edge::ClientAddr;
use ledger::ports::{EventStore, LedgerStore, ProjectionReader};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tower_http::set_header::SetResponseHeaderLayer;

/// What a serving process is configured with, whatever its store: `serve` fills it from
/// its flags for either backend.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    /// Stamped on every record ingested here.
    pub region: String,
    /// The retention a new store is created with (`--retention-days`); an existing store
    /// keeps its own. `None`: the store's, or the default for a new one.
    pub retention: Option<ledger::Retention>,
    /// `Cache-Control: max-age` of the guest list.
    pub guest_max_age_s: u32,
    /// `Cache-Control: private, max-age` of the host list.
    pub host_max_age_s: u32,
    /// Mark the voter cookie Secure and send HSTS (when served over HTTPS).
    pub cookie_secure: bool,
    /// The built client to serve (`/event/*` falls back to its `index.html`).
    pub static_dir: Option<PathBuf>,
    /// The write rate limits per client address and per voter.
    pub rate_limits: ingest::RateLimits,
    /// Who may frame the pages (`serve --allow-framing`); none by default.
    pub frame_ancestors: Vec<crate::site::FrameAncestor>,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        let query = query::QueryConfig::default();
        Self {
            region: "local".into(),
            retention: None,
            guest_max_age_s: query.guest_max_age_s,
            host_max_age_s: query.host_max_age_s,
            cookie_secure: false,
            static_dir: None,
            rate_limits: ingest::RateLimits::default(),
            frame_ancestors: Vec::new(),
        }
    }
}

/// Ingest and query over `store`, with the built client beside them. `retention` is the
/// store's own (what it stamps); `health` what `/healthz` checks beyond a store read.
pub fn router<S>(
    store: Arc<S>,
    hub: query::LiveHub,
    settings: &ServiceSettings,
    retention: ledger::Retention,
    health: Option<Arc<dyn query::HealthProbe>>,
) -> Router
where
    S: EventStore + LedgerStore + ProjectionReader + 'static,
{
    let ingest = ingest::router(ingest::IngestState {
        events: store.clone() as Arc<dyn EventStore>,
        ledger: store.clone() as Arc<dyn LedgerStore>,
        projection: store.clone() as Arc<dyn ProjectionReader>,
        config: ingest::IngestConfig {
            region: settings.region.clone(),
            retention,
            cookie_secure: settings.cookie_secure,
            rate_limits: settings.rate_limits,
        },
        ids: Arc::new(ingest::IdMinter::new()),
    });
    let query = query::router(query::QueryState {
        events: store.clone() as Arc<dyn EventStore>,
        projection: store.clone() as Arc<dyn ProjectionReader>,
        ledger: Some(store as Arc<dyn LedgerStore>),
        config: query::QueryConfig {
            guest_max_age_s: settings.guest_max_age_s,
            host_max_age_s: settings.host_max_age_s,
            ..query::QueryConfig::default()
        },
        live: Some(hub),
        metrics: metrics_handle(),
        health,
    });
    let headers =
        crate::site::SiteHeaders { hsts: settings.cookie_secure, frame_ancestors: settings.frame_ancestors.clone() };
    // The API's protective headers: no sniffing, and nothing a response could run or frame
    // should a browser ever render one.
    let mut api = ingest.merge(query).layer(SetResponseHeaderLayer::overriding(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(crate::site::API_CSP),
    ));
    for (name, value) in crate::site::common_headers(&headers) {
        api = api.layer(SetResponseHeaderLayer::overriding(name, value));
    }
    // Outermost: `/metrics` on the public listener answers loopback clients only.
    let router = match &settings.static_dir {
        Some(dir) => api.merge(crate::site::router(dir, &headers)),
        None => api,
    };
    router.layer(middleware::from_fn(metrics_only_to_loopback))
}

/// The Prometheus route on the main listener, for loopback clients only (a scraper on the
/// same machine); anyone else gets the 404 of an unknown route, so the public learns
/// nothing about the process. `--metrics-listen` serves [`metrics_router`] on its own
/// address instead, for a scraper elsewhere. The client is the `ClientAddr` the accept
/// loop inserted (with `--trust-forwarded-for`, the address the proxy saw, so a proxied
/// request is never loopback); a request with no known address is refused.
pub const METRICS_PATH: &str = "/metrics";

async fn metrics_only_to_loopback(client: ClientAddr, request: Request, next: Next) -> Response {
    if request.uri().path() == METRICS_PATH && !client.0.is_loopback() {
        return not_found();
    }
    next.run(request).await
}

fn not_found() -> Response {
    http_edge::error_response(StatusCode::NOT_FOUND, "not found", HeaderValue::from_static("no-store"))
}

/// `/metrics` alone, for `serve --metrics-listen ADDR`'s own listener: the process's
/// Prometheus text to whoever reaches that address (404 if the process has no recorder).
pub fn metrics_router() -> Router {
    Router::new().route(
        METRICS_PATH,
        get(|| async {
            match metrics_handle() {
                Some(handle) => (
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4"), (header::CACHE_CONTROL, "no-store")],
                    handle.render(),
                )
                    .into_response(),
                None => not_found(),
            }
        }),
    )
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
