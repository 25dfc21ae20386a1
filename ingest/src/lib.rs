//! The ingest role: every write the site accepts. It validates a request, decides everything
//! a record needs (ids, the voter, the text as stored), appends the record to the ledger and
//! answers only once the ledger has committed it. It never updates the projection: the
//! aggregator folds the appended records, so counts lag a write by one aggregation step.
//!
//! [`router`] is the whole role as an axum [`Router`]; `serve` and the Lambda binary both
//! host it unchanged.

mod error;
mod handlers;
pub mod rate;
pub mod voter;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::StatusCode;
use axum::middleware::{self};
use axum::routing::post;
use axum::{Extension, Router};
use ledger::limits::REQUEST_BODY_BYTES_MAX;
use ledger::ports::{EventStore, LedgerStore, ProjectionReader};
use parking_lot::Mutex;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use ulid::Ulid;

pub use error::ApiError;
pub use rate::{Rate, RateLimits, RateSetting};

/// Every route this role serves, as (method, axum path). The infrastructure template
/// registers exactly these with API Gateway, and a test checks that it does.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/api/event"),
    ("POST", "/api/event/{eid}"),
    ("POST", "/api/vote/{qid}/{direction}"),
    ("POST", "/api/event/{eid}/questions/{secret}/{qid}/toggle/{property}"),
];

/// How long a write may take before it is answered with 503. The write may still commit
/// after that; a retried vote is harmless (a voter's latest choice is what counts), a
/// retried question may then appear twice.
pub const REQUEST_TIMEOUT_MS: u64 = 10_000;

#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Stamped on every record (where it was ingested).
    pub region: String,
    /// How long an event and its records are kept; also the voter cookie's lifetime.
    pub retention: ledger::Retention,
    /// Mark the voter cookie `Secure` (on whenever the site is served over HTTPS).
    pub cookie_secure: bool,
    /// The write limits per client address and per voter (see [`RateLimits`]).
    pub rate_limits: RateLimits,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            region: "local".into(),
            retention: ledger::Retention::DEFAULT,
            cookie_secure: false,
            rate_limits: RateLimits::default(),
        }
    }
}

/// Mints event, question and record ids. One minter per process, shared by every request,
/// so ids minted here are strictly increasing: two records of the same voter written in the
/// same millisecond still order as they were ingested, which is what "latest vote" means.
#[derive(Default)]
pub struct IdMinter {
    generator: Mutex<ulid::Generator>,
}

impl IdMinter {
    pub fn new() -> Self {
        Self::default()
    }

    /// A fresh id, greater than every id this minter returned before. Fails only if 2^80
    /// ids were asked for within one millisecond.
    pub fn next(&self) -> Result<Ulid, ApiError> {
        self.generator.lock().generate().map_err(|error| {
            tracing::error!(%error, "ULID generator overflow");
            ApiError::Unavailable
        })
    }
}

#[derive(Clone)]
pub struct IngestState {
    pub events: Arc<dyn EventStore>,
    pub ledger: Arc<dyn LedgerStore>,
    pub projection: Arc<dyn ProjectionReader>,
    pub config: IngestConfig,
    pub ids: Arc<IdMinter>,
}

/// The ingest role as a router. Layers are listed outermost first.
pub fn router(state: IngestState) -> Router {
    let layers = ServiceBuilder::new()
        // A request id first, so every log line and the response can name the request
        // (an id already set by API Gateway or a proxy is kept).
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        // One span per request carrying that id; logs method, path, status and latency.
        .layer(TraceLayer::new_for_http().make_span_with(|r: &Request| http_edge::request_span("ingest", r)))
        // Echo the id so a user's bug report can quote it.
        .layer(PropagateRequestIdLayer::x_request_id())
        // Outside catch-panic and timeout so it also counts (and marks no-store) the 500s and
        // 503s those produce.
        .layer(middleware::from_fn(|r, n| http_edge::observe("ingest", http_edge::NoStore::Always, r, n)))
        // A bug must cost one request a 500, never the process or a cached error.
        .layer(CatchPanicLayer::custom(http_edge::panic_response))
        // A stuck store must not hold connections forever.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_millis(REQUEST_TIMEOUT_MS),
        ))
        // Bodies over 1 KiB are refused while reading them (413), before any parsing.
        .layer(DefaultBodyLimit::max(REQUEST_BODY_BYTES_MAX))
        // The rate limiters the write handlers check first (one set per router).
        .layer(Extension(Arc::new(rate::RateLimiters::new(&state.config.rate_limits))));
    Router::new()
        .route("/api/event", post(handlers::create_event))
        .route("/api/event/{eid}", post(handlers::ask))
        .route("/api/vote/{qid}/{direction}", post(handlers::vote))
        .route("/api/event/{eid}/questions/{secret}/{qid}/toggle/{property}", post(handlers::toggle))
        .layer(layers)
        .with_state(Arc::new(state))
}
