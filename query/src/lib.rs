//! The query role: every read the site serves, from the projection the aggregator keeps.
//! Lists are ranked here (with the wall clock as "now") and cached in memory for up to a
//! second; question texts and event rows never change once written, so they are cached for
//! as long as memory allows. In embedded mode a [`LiveHub`] announces which events changed,
//! which both invalidates cached lists at once and drives the Server-Sent Events streams.
//!
//! [`router`] is the whole role as an axum [`Router`]; `serve` and the Lambda binary both
//! host it unchanged.

mod error;
mod export;
mod handlers;
pub mod lists;
mod live;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self};
use axum::routing::get;
use axum::Router;
use ledger::ports::{EventRow, EventStore, ProjectionReader};
use ledger::{EventId, QuestionId};
use metrics_exporter_prometheus::PrometheusHandle;
use quick_cache::sync::Cache;
use tokio::sync::broadcast;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use error::ApiError;
pub use lists::Variant;

/// The routes every host serves, as (method, axum path). The infrastructure template
/// registers exactly these with API Gateway, and a test checks that it does.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/event/{eid}"),
    ("GET", "/api/event/{eid}/questions"),
    ("GET", "/api/event/{eid}/questions/{secret}"),
    ("GET", "/api/questions/{qids}"),
    ("GET", "/api/export/{eid}/{secret}"),
];

/// Server-Sent Events routes, served only when the state has a [`LiveHub`] (embedded mode:
/// API Gateway HTTP APIs cannot stream, so on AWS clients poll the lists instead).
pub const LIVE_ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/live/{eid}"),
    ("GET", "/api/live/{eid}/{secret}"),
];

/// Operator routes: liveness with a store read, and Prometheus metrics. Not exposed through
/// API Gateway (on AWS, Lambda metrics and health come from CloudWatch).
pub const OPS_ROUTES: &[(&str, &str)] = &[("GET", "/healthz"), ("GET", "/metrics")];

/// How long a request may take before it is answered with 503. A stream's body is not
/// limited by it, only the time to its first byte.
pub const REQUEST_TIMEOUT_MS: u64 = 10_000;
/// How many question texts are kept in memory (each at most ~1 KiB).
pub const TEXTS_CACHED_MAX: usize = 100_000;
/// How many event rows are kept in memory.
pub const EVENTS_CACHED_MAX: usize = 100_000;

#[derive(Debug, Clone)]
pub struct QueryConfig {
    /// `Cache-Control: max-age` of the guest list.
    pub guest_max_age_s: u32,
    /// `Cache-Control: private, max-age` of the host list.
    pub host_max_age_s: u32,
}

impl Default for QueryConfig {
    fn default() -> Self {
        Self {
            guest_max_age_s: 2,
            host_max_age_s: 1,
        }
    }
}

/// Where the embedded aggregator announces each event whose projection changed.
#[derive(Clone)]
pub struct LiveHub {
    sender: broadcast::Sender<EventId>,
}

impl LiveHub {
    /// How many announcements a slow listener may fall behind before it just re-reads.
    pub const CAPACITY: usize = 1_024;

    pub fn new() -> Self {
        Self {
            sender: broadcast::channel(Self::CAPACITY).0,
        }
    }

    pub fn from_sender(sender: broadcast::Sender<EventId>) -> Self {
        Self { sender }
    }

    /// The sender to hand to the aggregator (`aggregator::tail::Tailer::changes`).
    pub fn sender(&self) -> broadcast::Sender<EventId> {
        self.sender.clone()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<EventId> {
        self.sender.subscribe()
    }
}

impl Default for LiveHub {
    fn default() -> Self {
        Self::new()
    }
}

/// What `/healthz` checks beyond a real read of the store: in embedded mode, that the
/// ledger's writer is alive, the aggregator keeps up, and no record was set aside unseen.
pub trait HealthProbe: Send + Sync {
    /// Every reason the process is not healthy now (empty: healthy).
    fn problems(&self) -> futures::future::BoxFuture<'_, Vec<String>>;
}

#[derive(Clone)]
pub struct QueryState {
    pub events: Arc<dyn EventStore>,
    pub projection: Arc<dyn ProjectionReader>,
    pub config: QueryConfig,
    /// Present in embedded mode: enables `/api/live/...` and instant list invalidation.
    pub live: Option<LiveHub>,
    /// The process's Prometheus recorder, rendered by `/metrics` (404 when absent).
    pub metrics: Option<PrometheusHandle>,
    /// Further health checks for `/healthz` (embedded mode).
    pub health: Option<Arc<dyn HealthProbe>>,
}

/// The state the handlers share: the ports plus the in-memory caches.
pub(crate) struct Shared {
    pub events: Arc<dyn EventStore>,
    pub projection: Arc<dyn ProjectionReader>,
    pub live: Option<LiveHub>,
    pub metrics: Option<PrometheusHandle>,
    pub health: Option<Arc<dyn HealthProbe>>,
    pub lists: lists::ListCache,
    /// Each known question's entry of the texts response, rendered once (`"qid":{...}`).
    pub texts: Cache<QuestionId, bytes::Bytes>,
    /// Only events that exist: a miss is asked again, since ingest may create it any time.
    pub known_events: Cache<EventId, EventRow>,
    pub guest_cache_control: HeaderValue,
    pub host_cache_control: HeaderValue,
}

impl Shared {
    /// The event's row, from memory when it was seen before. An expired event is unknown
    /// even while its row lingers (DynamoDB deletes expired items only eventually).
    pub async fn event(&self, id: EventId) -> Result<EventRow, ApiError> {
        let row = match self.known_events.get(&id) {
            Some(row) => row,
            None => {
                let row = self.events.event(id).await?.ok_or(ApiError::UnknownEvent)?;
                self.known_events.insert(id, row.clone());
                row
            }
        };
        if row.expire_unix <= lists::wall_clock_ms() / 1000 {
            self.known_events.remove(&id);
            return Err(ApiError::UnknownEvent);
        }
        Ok(row)
    }
}

/// The query role as a router. Layers are listed outermost first.
pub fn router(state: QueryState) -> Router {
    let max_age = |value: String| {
        HeaderValue::try_from(value).unwrap_or(HeaderValue::from_static("no-store"))
    };
    let shared = Arc::new(Shared {
        lists: lists::ListCache::new(state.live.as_ref().map(LiveHub::subscribe)),
        texts: Cache::new(TEXTS_CACHED_MAX),
        known_events: Cache::new(EVENTS_CACHED_MAX),
        guest_cache_control: max_age(format!("max-age={}", state.config.guest_max_age_s)),
        host_cache_control: max_age(format!("private, max-age={}", state.config.host_max_age_s)),
        events: state.events,
        projection: state.projection,
        live: state.live,
        metrics: state.metrics,
        health: state.health,
    });
    let layers = ServiceBuilder::new()
        // A request id first, so every log line and the response can name the request
        // (an id already set by API Gateway or a proxy is kept).
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        // One span per request carrying that id; logs method, route, status and latency.
        .layer(TraceLayer::new_for_http().make_span_with(|r: &Request| ledger_http::request_span("query", r)))
        // Echo the id so a user's bug report can quote it.
        .layer(PropagateRequestIdLayer::x_request_id())
        // Outside catch-panic and timeout so it also counts (and marks no-store) the 500s and
        // 503s those produce.
        .layer(middleware::from_fn(|r, n| ledger_http::observe("query", ledger_http::NoStore::Errors, r, n)))
        // A bug must cost one request a 500, never the process or a cached error.
        .layer(CatchPanicLayer::custom(ledger_http::panic_response))
        // A stuck store must not hold connections forever (streams are timed to first byte).
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_millis(REQUEST_TIMEOUT_MS),
        ));
    // No body-limit layer: every route is a GET and no handler reads a body.
    let mut router = Router::new()
        .route("/api/event/{eid}", get(handlers::event))
        .route("/api/event/{eid}/questions", get(handlers::guest_list))
        .route(
            "/api/event/{eid}/questions/{secret}",
            get(handlers::host_list),
        )
        .route("/api/questions/{qids}", get(handlers::question_texts))
        .route("/api/export/{eid}/{secret}", get(export::export))
        .route("/healthz", get(handlers::healthz))
        .route("/metrics", get(handlers::metrics));
    if shared.live.is_some() {
        router = router
            .route("/api/live/{eid}", get(live::guest))
            .route("/api/live/{eid}/{secret}", get(live::host));
    }
    router.layer(layers).with_state(shared)
}

