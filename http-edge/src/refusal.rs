//! How both roles refuse a request: `{"error": message}` with explicit caching, for their
//! own refusals, the framework's, a malformed path and a panic.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

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

/// Path parameters; a malformed path is answered as our JSON 400 (never cached) rather than
/// axum's plain text.
pub struct PathParams<T>(pub T);

impl<T, S> FromRequestParts<S> for PathParams<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(params)) => Ok(Self(params)),
            Err(rejection) => Err(error_response(
                StatusCode::BAD_REQUEST,
                &format!("malformed path: {}", rejection.body_text()),
                HeaderValue::from_static("no-store"),
            )),
        }
    }
}

/// The conversions every role's error type makes alike: a store failure is logged (with
/// what the role was doing) and answered as the role's bare `Unavailable` (503: nothing
/// internal reaches a client), a malformed id is a `BadRequest` with the id's error.
/// `refusals_from_store_and_ids!(ApiError, "ingesting")`.
#[macro_export]
macro_rules! refusals_from_store_and_ids {
    ($error:ty, $doing:literal) => {
        impl From<::ledger::ports::StoreError> for $error {
            fn from(error: ::ledger::ports::StoreError) -> Self {
                ::tracing::error!(%error, concat!("store error while ", $doing));
                Self::Unavailable
            }
        }

        impl From<::ledger::IdError> for $error {
            fn from(error: ::ledger::IdError) -> Self {
                Self::BadRequest(error.to_string())
            }
        }
    };
}
