//! The query role's errors, each mapped to a status and a short JSON body. Store failures
//! are logged here and answered with a bare 503; no error response is ever cacheable except
//! a 404 for an event id, which cannot start existing later (ids are minted by ingest).

use axum::extract::rejection::QueryRejection;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// How long a 404 for an unknown event may be cached (by the browser and CloudFront).
pub const UNKNOWN_EVENT_MAX_AGE_S: u32 = 5;
/// The `Retry-After` of a live stream refused for a spent budget. The client polls the
/// list meanwhile, so nothing is lost by waiting.
pub const STREAM_RETRY_AFTER_S: u32 = 30;

/// Which live-stream budget a refused stream would have exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamBudget {
    /// The client address's (429: this client should open fewer).
    Client,
    /// The event's (503: the event is at capacity).
    Event,
    /// The process's (503: the service is at capacity).
    Total,
}

impl StreamBudget {
    /// The label in metrics.
    pub fn name(self) -> &'static str {
        match self {
            StreamBudget::Client => "client",
            StreamBudget::Event => "event",
            StreamBudget::Total => "total",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A malformed id, too many ids, an unknown export format.
    #[error("{0}")]
    BadRequest(String),
    #[error("no such event")]
    UnknownEvent,
    /// None of the questions asked for exist (yet: the projection may lag a fresh question).
    #[error("no such question")]
    UnknownQuestion,
    #[error("wrong secret")]
    WrongSecret,
    /// A co-host's secret on a route only the host may use (the settings).
    #[error("only the host may see or change the settings and co-host links")]
    HostOnly,
    /// The route exists but this host does not offer it (e.g. `/metrics` without a recorder).
    #[error("not available here")]
    NotAvailable,
    #[error("service unavailable, try again")]
    Unavailable,
    /// A live stream over one of its budgets (see `StreamBudget`).
    #[error("{}", stream_refusal(*.0))]
    StreamBudgetSpent(StreamBudget),
}

fn stream_refusal(budget: StreamBudget) -> &'static str {
    match budget {
        StreamBudget::Client => "too many live streams from this address; poll the list instead",
        StreamBudget::Event => "too many live streams for this event; poll the list instead",
        StreamBudget::Total => "too many live streams; poll the list instead",
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::UnknownEvent | ApiError::UnknownQuestion | ApiError::NotAvailable => StatusCode::NOT_FOUND,
            ApiError::WrongSecret => StatusCode::UNAUTHORIZED,
            ApiError::HostOnly => StatusCode::FORBIDDEN,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::StreamBudgetSpent(StreamBudget::Client) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::StreamBudgetSpent(StreamBudget::Event | StreamBudget::Total) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let cache_control = match self {
            ApiError::UnknownEvent => HeaderValue::from_str(&format!("max-age={UNKNOWN_EVENT_MAX_AGE_S}"))
                .unwrap_or(HeaderValue::from_static("no-store")),
            _ => HeaderValue::from_static("no-store"),
        };
        let retry_after = matches!(self, ApiError::StreamBudgetSpent(_));
        let mut response = http_edge::error_response(self.status(), &self.to_string(), cache_control);
        if retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(STREAM_RETRY_AFTER_S));
        }
        response
    }
}

http_edge::refusals_from_store_and_ids!(ApiError, "querying");

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::BadRequest(format!("malformed query string: {}", rejection.body_text()))
    }
}
