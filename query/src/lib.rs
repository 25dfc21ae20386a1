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
use std::time::{Duration, Instant};

use axum::body::HttpBody;
use axum::extract::{MatchedPath, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
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

#[derive(Clone)]
pub struct QueryState {
    pub events: Arc<dyn EventStore>,
    pub projection: Arc<dyn ProjectionReader>,
    pub config: QueryConfig,
    /// Present in embedded mode: enables `/api/live/...` and instant list invalidation.
    pub live: Option<LiveHub>,
    /// The process's Prometheus recorder, rendered by `/metrics` (404 when absent).
    pub metrics: Option<PrometheusHandle>,
}

/// The state the handlers share: the ports plus the in-memory caches.
pub(crate) struct Shared {
    pub events: Arc<dyn EventStore>,
    pub projection: Arc<dyn ProjectionReader>,
    pub live: Option<LiveHub>,
    pub metrics: Option<PrometheusHandle>,
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
    });
    let layers = ServiceBuilder::new()
        // A request id first, so every log line and the response can name the request
        // (an id already set by API Gateway or a proxy is kept).
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        // One span per request carrying that id; logs method, route, status and latency.
        .layer(TraceLayer::new_for_http().make_span_with(make_span))
        // Echo the id so a user's bug report can quote it.
        .layer(PropagateRequestIdLayer::x_request_id())
        // Outside catch-panic and timeout so it also counts (and marks no-store) the 500s and
        // 503s those produce.
        .layer(middleware::from_fn(observe))
        // A bug must cost one request a 500, never the process or a cached error.
        .layer(CatchPanicLayer::custom(panic_response))
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

fn make_span(request: &Request<axum::body::Body>) -> tracing::Span {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    // The matched route, not the URI: host URIs contain the secret.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str)
        .unwrap_or("-");
    tracing::info_span!("request", role = "query", method = %request.method(), route, request_id)
}

/// Records `http_requests_total` and `http_request_duration_seconds` per route and status,
/// and marks any error response that did not choose its caching as `no-store`.
async fn observe(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let started = Instant::now();
    let mut response = next.run(request).await;
    let status = response.status();
    metrics::counter!("http_requests_total", "role" => "query", "route" => route.clone(), "status" => status.as_str().to_owned())
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "role" => "query", "route" => route)
        .record(started.elapsed().as_secs_f64());
    if status.is_client_error() || status.is_server_error() {
        response
            .headers_mut()
            .entry(header::CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-store"));
    }
    json_error_body(response)
}

/// Gives a JSON body to the error responses the framework and layers produce with none
/// (405 from routing, 503 from the timeout), so every refusal reads like the handlers' own.
fn json_error_body(response: Response) -> Response {
    let status = response.status();
    let empty = response.body().size_hint().exact() == Some(0);
    if !(status.is_client_error() || status.is_server_error()) || !empty {
        return response;
    }
    let reason = status
        .canonical_reason()
        .unwrap_or("error")
        .to_ascii_lowercase();
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let body = serde_json::json!({ "error": reason }).to_string();
    Response::from_parts(parts, axum::body::Body::from(body))
}

fn panic_response(_panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("handler panicked");
    let mut response = (
        StatusCode::INTERNAL_SERVER_ERROR,
        axum::Json(serde_json::json!({ "error": "internal error" })),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
