//! The ingest role: every write the site accepts. It validates a request, decides everything
//! a record needs (ids, the voter, the text as stored), appends the record to the ledger and
//! answers only once the ledger has committed it. It never updates the projection: the
//! aggregator folds the appended records, so counts lag a write by one aggregation step.
//!
//! [`router`] is the whole role as an axum [`Router`]; `serve` and the Lambda binary both
//! host it unchanged.

mod error;
mod handlers;
mod host;
pub mod rate;
pub mod voter;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, post};
use axum::{Extension, Router};
use ledger::limits::{HOST_TEXT_BODY_BYTES_MAX, REQUEST_BODY_BYTES_MAX};
use ledger::ports::{EventStore, LedgerStore, ProjectionReader};
use parking_lot::Mutex;
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
    ("POST", "/api/event/{eid}/questions/{secret}/{qid}/reply"),
    ("POST", "/api/event/{eid}/settings/{secret}"),
    ("POST", "/api/event/{eid}/cohosts/{secret}"),
    ("DELETE", "/api/event/{eid}/cohosts/{secret}/{cohost_secret}"),
];

/// How long a write may take before it is answered with 503 (the edge's deadline, shared
/// with query; see `http_edge::REQUEST_TIMEOUT_MS`).
pub const REQUEST_TIMEOUT_MS: u64 = http_edge::REQUEST_TIMEOUT_MS;

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

/// The ingest role as a router, inside the edge both roles share (`http_edge::with_edge`:
/// request ids, spans, metrics, panics, the deadline). Every response is `no-store`: an
/// answer may carry a new cookie or a host secret.
pub fn router(state: IngestState) -> Router {
    // The host's texts (a written answer, blocked words) may be longer than any guest's
    // write: their routes have their own body limit, which the general one below does not
    // override (the innermost limit applies).
    let host_texts = Router::new()
        .route("/api/event/{eid}/questions/{secret}/{qid}/reply", post(host::reply))
        .route("/api/event/{eid}/settings/{secret}", post(host::settings))
        .layer(DefaultBodyLimit::max(HOST_TEXT_BODY_BYTES_MAX));
    let routes = Router::new()
        .route("/api/event", post(handlers::create_event))
        .route("/api/event/{eid}", post(handlers::ask))
        .route("/api/vote/{qid}/{direction}", post(handlers::vote))
        .route("/api/event/{eid}/questions/{secret}/{qid}/toggle/{property}", post(handlers::toggle))
        .route("/api/event/{eid}/cohosts/{secret}", post(host::mint_cohost))
        .route("/api/event/{eid}/cohosts/{secret}/{cohost_secret}", delete(host::revoke_cohost))
        .merge(host_texts)
        // Bodies over 1 KiB are refused while reading them (413), before any parsing.
        .layer(DefaultBodyLimit::max(REQUEST_BODY_BYTES_MAX))
        // The rate limiters the write handlers check first (one set per router).
        .layer(Extension(Arc::new(rate::RateLimiters::new(&state.config.rate_limits))));
    http_edge::with_edge(routes, "ingest", http_edge::NoStore::Always).with_state(Arc::new(state))
}
