//! The layer stack both HTTP roles run their routes in, and what it is made of.

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::refusal::{json_error_body, panic_response};

/// How long a request may take before it is answered with 503. A write may still commit
/// after that (a retried vote is harmless: a voter's latest choice is what counts; a retried
/// question may then appear twice); a live stream's body is not limited by it, only the time
/// to its first byte.
pub const REQUEST_TIMEOUT_MS: u64 = 10_000;

/// Runs a role's routes (with whatever layers the role put on them itself) inside the edge
/// both roles share. Outermost first:
/// - a request id (one set by API Gateway or a proxy is kept), so every log line and the
///   response can name the request;
/// - one span per request carrying that id, logging method, route, status and latency;
/// - the id echoed in the response, so a user's bug report can quote it;
/// - [`observe`]: request metrics, the role's `no-store` default and JSON bodies for bare
///   refusals, outside catch-panic and timeout so it also counts the 500s and 503s they make;
/// - a panic costs one request a 500 ([`panic_response`]), never the process or a cached error;
/// - [`REQUEST_TIMEOUT_MS`], so a stuck store cannot hold connections forever.
pub fn with_edge<S>(routes: Router<S>, role: &'static str, no_store: NoStore) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    routes.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            .layer(TraceLayer::new_for_http().make_span_with(move |r: &Request| request_span(role, r)))
            .layer(PropagateRequestIdLayer::x_request_id())
            .layer(middleware::from_fn(move |r, n| observe(role, no_store, r, n)))
            .layer(CatchPanicLayer::custom(panic_response))
            .layer(TimeoutLayer::with_status_code(
                StatusCode::SERVICE_UNAVAILABLE,
                Duration::from_millis(REQUEST_TIMEOUT_MS),
            )),
    )
}

/// Which responses `observe` marks `Cache-Control: no-store` when they chose no caching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoStore {
    /// Every response (writes: an answer may carry a new cookie or a host secret).
    Always,
    /// Only refusals and failures (reads choose their own caching when they succeed).
    Errors,
}

/// One span per request, naming the matched route (never the URI: host URIs carry the
/// secret) and the request id.
pub fn request_span(role: &'static str, request: &Request) -> tracing::Span {
    let request_id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
    let route = request.extensions().get::<MatchedPath>().map(MatchedPath::as_str).unwrap_or("-");
    tracing::info_span!("request", role, method = %request.method(), route, request_id)
}

/// Records `http_requests_total` and `http_request_duration_seconds` per role, route and
/// status, applies the role's `no-store` default, and gives body-less refusals a JSON body.
pub async fn observe(role: &'static str, no_store: NoStore, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let started = Instant::now();
    let mut response = next.run(request).await;
    let status = response.status();
    metrics::counter!("http_requests_total", "role" => role, "route" => route.clone(), "status" => status.as_str().to_owned())
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "role" => role, "route" => route)
        .record(started.elapsed().as_secs_f64());
    if no_store == NoStore::Always || status.is_client_error() || status.is_server_error() {
        response.headers_mut().entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    }
    json_error_body(response)
}
