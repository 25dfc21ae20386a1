//! The ingest role's errors: every way a write can be refused, each mapped to a status and a
//! short JSON body. Store failures are logged here and answered with a bare 503, so nothing
//! internal (and never a secret) reaches a client.

use axum::extract::rejection::BytesRejection;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::rate::Limited;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request cannot be understood: a malformed id, bad JSON, an invalid question.
    #[error("{0}")]
    BadRequest(String),
    /// The event or question does not exist (or, for a toggle, not in that event).
    #[error("no such {0}")]
    NotFound(&'static str),
    /// The host secret does not match. Deliberately says nothing more.
    #[error("wrong secret")]
    WrongSecret,
    /// A co-host's secret on a route only the host may use.
    #[error("only the host may change the settings and co-host links")]
    HostOnly,
    /// The host closed asking (`asking: closed`); votes still count.
    #[error("questions are closed")]
    AskingClosed,
    /// The event already had `COHOSTS_PER_EVENT_MAX` co-host links.
    #[error("this event has reached its co-host link limit")]
    TooManyCohosts,
    /// The body is larger than `REQUEST_BODY_BYTES_MAX`.
    #[error("request body too large")]
    TooLarge,
    /// The event already holds `QUESTIONS_PER_EVENT_MAX` questions.
    #[error("this event has reached its question limit")]
    EventFull,
    /// The store failed or is busy; the write was not acknowledged, so the client may retry.
    #[error("service unavailable, try again")]
    Unavailable,
    /// Over a rate limit (see `RateLimits`); nothing was read or appended.
    #[error("{}", what.message())]
    RateLimited { what: Limited, retry_after_s: u64 },
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::WrongSecret => StatusCode::UNAUTHORIZED,
            ApiError::HostOnly | ApiError::AskingClosed => StatusCode::FORBIDDEN,
            ApiError::TooManyCohosts => StatusCode::CONFLICT,
            ApiError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::EventFull => StatusCode::CONFLICT,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // A refused write must never be replayed from a cache.
        let mut response =
            http_edge::error_response(self.status(), &self.to_string(), HeaderValue::from_static("no-store"));
        if let ApiError::RateLimited { retry_after_s, .. } = self {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
        }
        response
    }
}

http_edge::refusals_from_store_and_ids!(ApiError, "ingesting");

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge
        } else {
            ApiError::BadRequest("unreadable request body".into())
        }
    }
}
