//! The HTTP edge the two HTTP roles share, so that ingest and query refuse, log and count
//! requests the same way: the per-request span, the request metrics and caching default,
//! a JSON body for refusals the framework makes without one, and the response to a panic.
//! Each role lists these in its own layer stack, in its own order and with its own reasons.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

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
/// Use as `middleware::from_fn(|r, n| observe("ingest", NoStore::Always, r, n))`.
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

/// Gives a JSON body to the error responses the framework and layers produce with none
/// (405 from routing, 503 from the timeout), so every refusal reads like the handlers' own.
pub fn json_error_body(response: Response) -> Response {
    let status = response.status();
    let empty = axum::body::HttpBody::size_hint(response.body()).exact() == Some(0);
    if !(status.is_client_error() || status.is_server_error()) || !empty {
        return response;
    }
    let reason = status.canonical_reason().unwrap_or("error").to_ascii_lowercase();
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let body = serde_json::json!({ "error": reason }).to_string();
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// A refusal as both roles answer it: `{"error": message}` with the given caching.
pub fn error_response(status: StatusCode, message: &str, cache_control: HeaderValue) -> Response {
    let mut response = (status, axum::Json(serde_json::json!({ "error": message }))).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, cache_control);
    response
}

/// What a panicking handler answers (via `CatchPanicLayer::custom`): a 500 nobody caches.
pub fn panic_response(_panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("handler panicked");
    error_response(StatusCode::INTERNAL_SERVER_ERROR, "internal error", HeaderValue::from_static("no-store"))
}

/// The network address a request came from, as the host determined it: the connection's
/// peer (`serve`), the last address a trusted proxy appended to `X-Forwarded-For` (`serve
/// --trust-forwarded-for`), or API Gateway's `sourceIp` (Lambda). The host inserts it as a
/// request extension; rate limits and stream budgets key on it. A request whose host set
/// none (a test calling the router directly) comes from the unspecified address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    /// The key a client's allowances (rate limits, stream budgets) are counted under: an
    /// IPv4 address as is; an IPv6 address by its /64 prefix, since one host usually holds a
    /// whole /64 and keying by the full address would let one guest rotate through 2^64
    /// keys; an IPv4-mapped IPv6 address as its IPv4 address.
    pub fn key(self) -> IpAddr {
        match self.0 {
            IpAddr::V4(_) => self.0,
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
            },
        }
    }

    /// Where a request on a connection from `peer` comes from. With `trust_forwarded_for`
    /// (only behind a proxy that appends the address it saw), the last well-formed address
    /// of the last `X-Forwarded-For` header: the earlier ones are whatever the client wrote.
    pub fn of(peer: SocketAddr, headers: &HeaderMap, trust_forwarded_for: bool) -> Self {
        if trust_forwarded_for {
            let forwarded = headers
                .get_all("x-forwarded-for")
                .iter()
                .next_back()
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .and_then(|last| last.trim().parse::<IpAddr>().ok());
            if let Some(ip) = forwarded {
                return Self(ip);
            }
        }
        Self(peer.ip())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<ClientAddr>()
            .copied()
            .or_else(|| parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| ClientAddr(c.0.ip())))
            .unwrap_or(ClientAddr(IpAddr::V4(Ipv4Addr::UNSPECIFIED))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_counts_by_its_ipv4_address_or_its_ipv6_64_prefix() {
        let key = |s: &str| ClientAddr(s.parse().expect("ip")).key();
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:bbbb::2"));
        assert_ne!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.7").to_string(), "192.0.2.7");
        assert_eq!(key("192.0.2.7").to_string(), "192.0.2.7");
    }

    #[test]
    fn the_forwarded_address_counts_only_when_trusted_and_only_the_last_one() {
        let peer: SocketAddr = "10.0.0.9:4000".parse().expect("addr");
        let mut headers = HeaderMap::new();
        headers.append("x-forwarded-for", HeaderValue::from_static("1.1.1.1, 2.2.2.2"));
        headers.append("x-forwarded-for", HeaderValue::from_static("6.6.6.6, 203.0.113.7"));
        assert_eq!(ClientAddr::of(peer, &headers, false).0.to_string(), "10.0.0.9");
        assert_eq!(ClientAddr::of(peer, &headers, true).0.to_string(), "203.0.113.7");
        headers.insert("x-forwarded-for", HeaderValue::from_static("garbage"));
        assert_eq!(ClientAddr::of(peer, &headers, true).0.to_string(), "10.0.0.9");
    }
}
