//! Refusing requests that did not come through the CDN. On AWS the HTTP API's own endpoint
//! is public, so a client could call it directly and skip CloudFront's web ACL and cache;
//! CloudFront adds a secret header to every request it forwards to the API (an origin
//! custom header), and the Lambda hosts answer anything without it 403 before the role sees
//! it. Two values are accepted while the secret is rotated (`infra/README.md`).

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use subtle::ConstantTimeEq;

use crate::refusal::error_response;

/// The header CloudFront adds to every request it forwards to the API. CloudFront replaces
/// a viewer's header of the same name, so a viewer cannot choose its value.
pub const ORIGIN_VERIFY_HEADER: &str = "x-origin-verify";
/// Environment variable with the accepted values, comma-separated: one normally, the new and
/// the old one while the secret is rotated.
pub const ORIGIN_VERIFY_ENV: &str = "ORIGIN_VERIFY_SECRETS";
/// Shortest accepted value: a guessable header would protect nothing.
pub const ORIGIN_VERIFY_MIN_LEN: usize = 32;

/// The values a request's [`ORIGIN_VERIFY_HEADER`] may carry. Its `Debug` never shows them.
#[derive(Clone)]
pub struct OriginVerify {
    accepted: Arc<[Box<[u8]>]>,
}

impl std::fmt::Debug for OriginVerify {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OriginVerify({} accepted values)", self.accepted.len())
    }
}

impl OriginVerify {
    /// The accepted values from a comma-separated list (spaces around each are ignored).
    /// At least one, each of at least [`ORIGIN_VERIFY_MIN_LEN`] characters that a header
    /// value may hold.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut accepted = Vec::new();
        for (position, value) in list.split(',').map(str::trim).enumerate() {
            if value.len() < ORIGIN_VERIFY_MIN_LEN {
                return Err(format!(
                    "{ORIGIN_VERIFY_ENV}: value {} is shorter than {ORIGIN_VERIFY_MIN_LEN} characters",
                    position + 1
                ));
            }
            if HeaderValue::from_str(value).is_err() {
                return Err(format!("{ORIGIN_VERIFY_ENV}: value {} is not a valid header value", position + 1));
            }
            accepted.push(value.as_bytes().into());
        }
        Ok(Self { accepted: accepted.into() })
    }

    /// The accepted values from [`ORIGIN_VERIFY_ENV`]. A missing variable is an error, not
    /// an open door: a host started without it refuses to start.
    pub fn from_env() -> Result<Self, String> {
        match std::env::var(ORIGIN_VERIFY_ENV) {
            Ok(list) => Self::parse(&list),
            Err(_) => Err(format!(
                "{ORIGIN_VERIFY_ENV} must hold the value(s) of the {ORIGIN_VERIFY_HEADER} header the CDN sends"
            )),
        }
    }

    /// Whether the request carries exactly one [`ORIGIN_VERIFY_HEADER`] equal to an accepted
    /// value (compared in constant time, so the answer's timing does not leak a prefix).
    pub fn accepts(&self, headers: &HeaderMap) -> bool {
        let mut values = headers.get_all(ORIGIN_VERIFY_HEADER).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return false;
        };
        let value = value.as_bytes();
        // Every accepted value is compared, so the time does not say which one matched.
        self.accepted.iter().fold(false, |matched, accepted| matched | bool::from(accepted.as_ref().ct_eq(value)))
    }

    /// `router` behind the check: a request without an accepted value is answered 403
    /// `{"error": "forbidden"}` (`no-store`) and never reaches the router.
    pub fn guard(self, router: Router) -> Router {
        router.layer(middleware::from_fn(move |request: Request, next: Next| {
            let origin = self.clone();
            async move {
                if origin.accepts(request.headers()) {
                    next.run(request).await
                } else {
                    forbidden()
                }
            }
        }))
    }
}

/// What a request that did not come through the CDN is answered.
fn forbidden() -> Response {
    error_response(StatusCode::FORBIDDEN, "forbidden", HeaderValue::from_static("no-store"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CURRENT: &str = "current-0123456789abcdef0123456789abcdef";
    const PREVIOUS: &str = "previous-0123456789abcdef0123456789abcdef";

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(ORIGIN_VERIFY_HEADER, HeaderValue::from_str(value).expect("a header value"));
        }
        headers
    }

    #[test]
    fn either_value_of_a_rotation_is_accepted_and_nothing_else() {
        let origin = OriginVerify::parse(&format!("{CURRENT}, {PREVIOUS}")).expect("two values");
        assert!(origin.accepts(&headers(&[CURRENT])));
        assert!(origin.accepts(&headers(&[PREVIOUS])));
        assert!(!origin.accepts(&headers(&[])), "no header");
        assert!(!origin.accepts(&headers(&["current-0123456789abcdef0123456789abcdeX"])), "a different value");
        assert!(!origin.accepts(&headers(&[&CURRENT[..CURRENT.len() - 1]])), "a prefix");
        assert!(!origin.accepts(&headers(&[CURRENT, "x"])), "two headers");
        let single = OriginVerify::parse(CURRENT).expect("one value");
        assert!(!single.accepts(&headers(&[PREVIOUS])), "the old value after the rotation");
    }

    #[test]
    fn short_empty_or_unprintable_values_are_refused() {
        assert!(OriginVerify::parse("").is_err());
        assert!(OriginVerify::parse("short").is_err_and(|e| e.contains("shorter")));
        assert!(OriginVerify::parse(&format!("{CURRENT},")).is_err(), "an empty second value");
        assert!(OriginVerify::parse(&format!("{CURRENT}\u{7}")).is_err_and(|e| e.contains("header value")));
        assert!(!format!("{:?}", OriginVerify::parse(CURRENT).expect("valid")).contains(CURRENT), "Debug shows it");
    }
}
