//! The query role: every read the site serves, from the projection the aggregator keeps.
//! Lists are ranked here (with the wall clock as "now") and cached in memory for up to a
//! second; question texts and event rows never change once written, so they are cached until
//! their byte budget ([`TEXTS_CACHED_BYTES_MAX`]) or entry budget pushes them out. In embedded mode a [`LiveHub`] announces which events changed,
//! which both invalidates cached lists at once and drives the Server-Sent Events streams.
//!
//! [`router`] is the whole role as an axum [`Router`]; `serve` and the Lambda binary both
//! host it unchanged.

mod budgets;
mod deltas;
mod error;
mod export;
mod handlers;
mod insights;
pub mod lists;
mod live;

use std::sync::Arc;

use axum::http::HeaderValue;
use axum::routing::get;
use axum::Router;
use ledger::ports::{EventRow, EventStore, LedgerStore, ProjectionReader};
use ledger::{EventId, QuestionId};
use metrics_exporter_prometheus::PrometheusHandle;
use quick_cache::sync::Cache;
use quick_cache::Weighter;

pub use error::{ApiError, StreamBudget, STREAM_RETRY_AFTER_S};
pub use insights::{HISTORY_CACHED_RECORDS_MAX, HISTORY_FRESH_MS, INSIGHTS_CACHE_CONTROL, TIMELINE_STEP_S_DEFAULT};
pub use lists::Variant;
pub use live::LiveHub;

/// The routes every host serves, as (method, axum path). The infrastructure template
/// registers exactly these with API Gateway, and a test checks that it does.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/event/{eid}"),
    ("GET", "/api/event/{eid}/questions"),
    ("GET", "/api/event/{eid}/questions/{secret}"),
    ("GET", "/api/event/{eid}/mine"),
    ("GET", "/api/event/{eid}/settings/{secret}"),
    ("GET", "/api/questions/{qids}"),
    ("GET", "/api/export/{eid}/{secret}"),
    ("GET", "/api/event/{eid}/timeline/{secret}"),
    ("GET", "/api/event/{eid}/audit/{secret}"),
    ("GET", "/api/event/{eid}/bursts/{secret}"),
];

/// Server-Sent Events routes, served only when the state has a [`LiveHub`] (embedded mode:
/// API Gateway HTTP APIs cannot stream, so on AWS clients poll the lists instead).
pub const LIVE_ROUTES: &[(&str, &str)] = &[("GET", "/api/live/{eid}"), ("GET", "/api/live/{eid}/{secret}")];

/// Operator routes: liveness with a store read, and Prometheus metrics. Not exposed through
/// API Gateway (on AWS, Lambda metrics and health come from CloudWatch).
pub const OPS_ROUTES: &[(&str, &str)] = &[("GET", "/healthz"), ("GET", "/metrics")];

/// How long a request may take before it is answered with 503 (the edge's deadline, shared
/// with ingest). A stream's body is not limited by it, only the time to its first byte.
pub const REQUEST_TIMEOUT_MS: u64 = http_edge::REQUEST_TIMEOUT_MS;
/// How many bytes of rendered question texts are kept in memory (each entry weighs its
/// rendered bytes plus [`CACHE_ENTRY_OVERHEAD_BYTES`]; a text is at most ~1 KiB).
pub const TEXTS_CACHED_BYTES_MAX: u64 = 32 * 1024 * 1024;
/// How many bytes of rendered lists are kept in memory (each entry weighs its body and
/// ETag plus [`CACHE_ENTRY_OVERHEAD_BYTES`]).
pub const LISTS_CACHED_BYTES_MAX: u64 = 32 * 1024 * 1024;
/// What a cache entry costs beyond the bytes it holds (key, bookkeeping, the `Bytes` handle),
/// so that many tiny entries also count.
pub const CACHE_ENTRY_OVERHEAD_BYTES: u64 = 64;
/// How many event rows are kept in memory.
pub const EVENTS_CACHED_MAX: usize = 100_000;

#[derive(Debug, Clone)]
pub struct QueryConfig {
    /// `Cache-Control: max-age` of the guest list.
    pub guest_max_age_s: u32,
    /// `Cache-Control: private, max-age` of the host list.
    pub host_max_age_s: u32,
    /// Live streams open at once from one client address (an IPv6 client: one /64); beyond
    /// it 429. A whole venue may share one NAT address, so this is generous.
    pub live_streams_per_client_max: u32,
    /// Live streams open at once for one event; beyond it 503.
    pub live_streams_per_event_max: u32,
    /// Live streams open at once in this process; beyond it 503.
    pub live_streams_max: u32,
}

impl Default for QueryConfig {
    fn default() -> Self {
        Self {
            guest_max_age_s: 2,
            host_max_age_s: 1,
            live_streams_per_client_max: 500,
            live_streams_per_event_max: 5_000,
            live_streams_max: 10_000,
        }
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
    /// The ledger, read by event for the host's insights (`?at=`, timeline, audit, bursts);
    /// without it those answer 404.
    pub ledger: Option<Arc<dyn LedgerStore>>,
    pub config: QueryConfig,
    /// Present in embedded mode: enables `/api/live/...` and instant list invalidation.
    pub live: Option<LiveHub>,
    /// The process's Prometheus recorder, rendered by `/metrics` (404 when absent).
    pub metrics: Option<PrometheusHandle>,
    /// Further health checks for `/healthz` (embedded mode).
    pub health: Option<Arc<dyn HealthProbe>>,
}

/// Weighs a cached text entry by its rendered bytes.
#[derive(Clone, Copy, Default)]
pub(crate) struct TextBytes;

impl Weighter<QuestionId, bytes::Bytes> for TextBytes {
    fn weight(&self, _: &QuestionId, fragment: &bytes::Bytes) -> u64 {
        u64::try_from(fragment.len()).unwrap_or(u64::MAX).saturating_add(CACHE_ENTRY_OVERHEAD_BYTES)
    }
}

pub(crate) type TextCache = Cache<QuestionId, bytes::Bytes, TextBytes>;

/// The texts cache, holding at most `bytes_max` bytes by [`TextBytes`]'s weighing.
pub(crate) fn text_cache(bytes_max: u64) -> TextCache {
    // Sized for entries of about 256 bytes (a question of a few sentences).
    let estimated_items = usize::try_from(bytes_max / 256).unwrap_or(usize::MAX).max(1);
    Cache::with_weighter(estimated_items, bytes_max, TextBytes)
}

/// The state the handlers share: the ports plus the in-memory caches.
pub(crate) struct QueryContext {
    pub events: Arc<dyn EventStore>,
    pub projection: Arc<dyn ProjectionReader>,
    pub ledger: Option<Arc<dyn LedgerStore>>,
    /// Events' records as the insights last read them.
    pub history: insights::HistoryCache,
    pub live: Option<LiveHub>,
    pub metrics: Option<PrometheusHandle>,
    pub health: Option<Arc<dyn HealthProbe>>,
    pub lists: lists::ListCache,
    /// Each known question's entry of the texts response, rendered once (`"qid":{...}`).
    pub texts: TextCache,
    /// The live streams' budgets.
    pub streams: Arc<budgets::StreamBudgets>,
    /// Only events that exist: a miss is asked again, since ingest may create it any time.
    pub known_events: Cache<EventId, EventRow>,
    pub guest_cache_control: HeaderValue,
    pub host_cache_control: HeaderValue,
}

impl QueryContext {
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
    let max_age = |value: String| HeaderValue::try_from(value).unwrap_or(HeaderValue::from_static("no-store"));
    let shared = Arc::new(QueryContext {
        lists: lists::ListCache::new(state.live.as_ref().map(LiveHub::announcements), LISTS_CACHED_BYTES_MAX),
        texts: text_cache(TEXTS_CACHED_BYTES_MAX),
        streams: Arc::new(budgets::StreamBudgets::new(
            state.config.live_streams_per_client_max,
            state.config.live_streams_per_event_max,
            state.config.live_streams_max,
        )),
        known_events: Cache::new(EVENTS_CACHED_MAX),
        history: insights::HistoryCache::new(HISTORY_CACHED_RECORDS_MAX),
        guest_cache_control: max_age(format!("max-age={}", state.config.guest_max_age_s)),
        host_cache_control: max_age(format!("private, max-age={}", state.config.host_max_age_s)),
        events: state.events,
        projection: state.projection,
        ledger: state.ledger,
        live: state.live,
        metrics: state.metrics,
        health: state.health,
    });
    // No body-limit layer: every route is a GET and no handler reads a body.
    let mut router = Router::new()
        .route("/api/event/{eid}", get(handlers::event))
        .route("/api/event/{eid}/questions", get(handlers::guest_list))
        .route("/api/event/{eid}/questions/{secret}", get(handlers::host_list))
        .route("/api/event/{eid}/mine", get(handlers::mine))
        .route("/api/event/{eid}/settings/{secret}", get(handlers::settings))
        .route("/api/questions/{qids}", get(handlers::question_texts))
        .route("/api/export/{eid}/{secret}", get(export::export))
        .route("/api/event/{eid}/timeline/{secret}", get(insights::timeline))
        .route("/api/event/{eid}/audit/{secret}", get(insights::audit))
        .route("/api/event/{eid}/bursts/{secret}", get(insights::bursts))
        .route("/healthz", get(handlers::healthz))
        .route("/metrics", get(handlers::metrics));
    if shared.live.is_some() {
        router = router.route("/api/live/{eid}", get(live::guest)).route("/api/live/{eid}/{secret}", get(live::host));
    }
    // Inside the edge both roles share (`http_edge::with_edge`); reads choose their own
    // caching when they succeed, so only refusals and failures default to `no-store`.
    http_edge::with_edge(router, "query", http_edge::NoStore::Errors).with_state(shared)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_texts_cache_stays_within_its_byte_budget() {
        const BUDGET: u64 = 256 * 1024;
        let texts = text_cache(BUDGET);
        // 4 MiB of 1 KiB entries: sixteen times the budget.
        for i in 0..4_096u128 {
            texts.insert(QuestionId::from_u128(i), bytes::Bytes::from(vec![b'x'; 1_024]));
            assert!(texts.weight() <= BUDGET, "{} bytes held after {i} inserts", texts.weight());
        }
        // What the entries really hold, counted apart from the weigher.
        let held_bytes: u64 = texts.iter().map(|(_, fragment)| fragment.len() as u64).sum();
        assert!(held_bytes <= BUDGET, "{held_bytes} bytes of texts held");
        // The budget is used, not just respected: at least half of it holds entries.
        assert!(held_bytes >= BUDGET / 2, "only {held_bytes} bytes held");
        assert_eq!(texts.weight(), texts.len() as u64 * (1_024 + CACHE_ENTRY_OVERHEAD_BYTES));
    }
}
