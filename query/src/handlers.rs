//! The read handlers: event existence, the two ranked lists, question texts, health and
//! metrics. (Exports are in `export`, live streams in `live`.)

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ledger::limits::QUESTION_IDS_PER_REQUEST_MAX;
use ledger::ports::{EventRow, VoterView};
use ledger::secret::{capability, secret_matches, Capability};
use ledger::{EventId, QuestionId, VoterId};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::export::QueryParams;
use crate::lists::{etag_matches, serialize, ListItem, Rendered, Variant};
use crate::QueryContext;
use http_edge::{settings_json, PathParams, VoterCookie};

pub(crate) type AppState = State<Arc<QueryContext>>;

/// Question texts never change: cache them for ten days (the original's choice, kept so
/// CloudFront behaves the same), and let browsers skip revalidation entirely.
pub const TEXTS_CACHE_CONTROL: &str = "max-age=864001, immutable";
/// An event, once it exists, exists until it expires.
pub const EVENT_CACHE_CONTROL: &str = "max-age=2";

/// The request's `If-None-Match`, as an extractor: a list request needs only this header,
/// and taking a whole `HeaderMap` would copy all of them.
pub struct IfNoneMatch(pub Option<HeaderValue>);

impl<S: Send + Sync> FromRequestParts<S> for IfNoneMatch {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(parts.headers.get(header::IF_NONE_MATCH).cloned()))
    }
}

/// The event named by a path, which must exist.
pub(crate) async fn existing_event(shared: &QueryContext, eid: &str) -> Result<EventRow, ApiError> {
    let id: EventId = eid.parse()?;
    shared.event(id).await
}

/// The event named by a path, which must exist and have this host (or co-host) secret.
pub(crate) async fn hosted_event(shared: &QueryContext, eid: &str, secret: &str) -> Result<EventRow, ApiError> {
    hosted_event_as(shared, eid, secret).await.map(|(row, _)| row)
}

/// The event named by a path and what the secret makes its bearer: its host or a co-host.
pub(crate) async fn hosted_event_as(
    shared: &QueryContext,
    eid: &str,
    secret: &str,
) -> Result<(EventRow, Capability), ApiError> {
    let row = existing_event(shared, eid).await?;
    if secret_matches(secret, &row.secret_hash) {
        return Ok((row, Capability::Host));
    }
    let state = shared.projection.event_state(row.id).await?;
    match capability(secret, &row.secret_hash, &state) {
        Some(who) => Ok((row, who)),
        None => Err(ApiError::WrongSecret),
    }
}

/// `GET /api/event/{eid}`: `{}` if the event exists and its host never changed a setting
/// (as the original answers), else its settings `{"title"?,"moderation","asking"}` (never
/// the blocked words).
pub async fn event(State(shared): AppState, PathParams(eid): PathParams<String>) -> Result<Response, ApiError> {
    let row = existing_event(&shared, &eid).await?;
    let state = shared.projection.event_state(row.id).await?;
    let configured =
        state.title.is_some() || state.moderation.is_some() || state.asking.is_some() || state.blocked_words.is_some();
    let body = if configured { settings_json(&state.settings(), false) } else { serde_json::json!({}) };
    Ok(([(header::CACHE_CONTROL, EVENT_CACHE_CONTROL)], Json(body)).into_response())
}

/// `GET /api/event/{eid}/settings/{secret}`: the whole settings, blocked words included;
/// the host's only (a co-host is refused with 403).
pub async fn settings(
    State(shared): AppState,
    PathParams((eid, secret)): PathParams<(String, String)>,
) -> Result<Response, ApiError> {
    let (row, who) = hosted_event_as(&shared, &eid, &secret).await?;
    if who != Capability::Host {
        return Err(ApiError::HostOnly);
    }
    let state = shared.projection.event_state(row.id).await?;
    let mut response = Json(settings_json(&state.settings(), true)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    Ok(response)
}

/// `GET /api/event/{eid}/questions`: the guests' ranked list (hidden questions and those
/// waiting for review left out). A guest who asked questions still waiting for review gets
/// them too, after the list, marked `"pending": true`: that answer is theirs alone (`private,
/// no-store`); everyone else gets the one shared list.
pub async fn guest_list(
    State(shared): AppState,
    PathParams(eid): PathParams<String>,
    VoterCookie(voter): VoterCookie,
    IfNoneMatch(tags): IfNoneMatch,
) -> Result<Response, ApiError> {
    let row = existing_event(&shared, &eid).await?;
    let rendered = shared.lists.get(shared.projection.as_ref(), row.id, Variant::Guest).await?;
    let own = match voter {
        Some(voter) => own_waiting(&shared, row.id, voter).await?,
        None => Vec::new(),
    };
    if own.is_empty() {
        return Ok(list_response(rendered, tags.as_ref(), shared.guest_cache_control.clone()));
    }
    let mut items = rendered.items.to_vec();
    items.extend(own.into_iter().map(|item| ListItem { pending: true, approved: true, ..item }));
    let mut response = Response::new(axum::body::Body::from(serialize(&items)?));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    Ok(response)
}

/// The host list's items of this voter's questions that wait for review (and are not
/// hidden). Read only when the event has such questions at all, and then only their askers
/// (a few), so most guest requests pay nothing for it.
async fn own_waiting(shared: &QueryContext, event: EventId, voter: VoterId) -> Result<Vec<ListItem>, ApiError> {
    let host = shared.lists.get(shared.projection.as_ref(), event, Variant::Host).await?;
    let waiting: Vec<&ListItem> = host.items.iter().filter(|i| !i.approved && !i.hidden).collect();
    if waiting.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<QuestionId> = waiting.iter().map(|i| i.qid).collect();
    let askers = shared.projection.askers(&ids).await?;
    let own: std::collections::HashSet<QuestionId> =
        askers.into_iter().filter(|(_, asker)| *asker == voter).map(|(q, _)| q).collect();
    Ok(waiting.into_iter().filter(|i| own.contains(&i.qid)).cloned().collect())
}

/// A guest's own part of an event, as `GET /api/event/{eid}/mine` answers it.
#[derive(Serialize)]
struct Mine {
    asked: Vec<QuestionId>,
    voted: Vec<QuestionId>,
    /// Those of `asked` that wait for the host's review (left out when none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pending: Vec<QuestionId>,
}

/// `GET /api/event/{eid}/mine`: what the guest whose `voter` cookie this is asked and votes
/// up in the event, `{"asked":[qid…],"voted":[qid…]}`, so that a browser that lost its
/// local storage (or another tab profile) shows the guest's own questions and votes. Never
/// cached: the answer is one guest's. A request without a cookie is a guest who has done
/// nothing yet.
pub async fn mine(
    State(shared): AppState,
    PathParams(eid): PathParams<String>,
    VoterCookie(voter): VoterCookie,
) -> Result<Response, ApiError> {
    let row = existing_event(&shared, &eid).await?;
    let (view, pending) = match voter {
        Some(voter) => {
            let pending = own_waiting(&shared, row.id, voter).await?.into_iter().map(|i| i.qid).collect();
            (shared.projection.voter_view(row.id, voter).await?, pending)
        }
        None => (VoterView::default(), Vec::new()),
    };
    let mut response = Json(Mine { asked: view.asked, voted: view.voted, pending }).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    Ok(response)
}

/// The host list's query string: `at`, an instant in Unix ms (the insights' time travel).
#[derive(Deserialize)]
pub struct HostListParams {
    at: Option<u64>,
}

/// `GET /api/event/{eid}/questions/{secret}`: the host's ranked list, hidden ones included.
/// With `?at={unix_ms}`, the list as it stood then, from the ledger (`insights`).
pub async fn host_list(
    State(shared): AppState,
    PathParams((eid, secret)): PathParams<(String, String)>,
    QueryParams(params): QueryParams<HostListParams>,
    IfNoneMatch(tags): IfNoneMatch,
) -> Result<Response, ApiError> {
    if let Some(at_ms) = params.at {
        return crate::insights::host_list_at(&shared, &eid, &secret, at_ms).await;
    }
    let row = hosted_event(&shared, &eid, &secret).await?;
    let rendered = shared.lists.get(shared.projection.as_ref(), row.id, Variant::Host).await?;
    Ok(list_response(rendered, tags.as_ref(), shared.host_cache_control.clone()))
}

/// A list, or 304 when the client already holds this very body.
fn list_response(rendered: Rendered, if_none_match: Option<&HeaderValue>, cache_control: HeaderValue) -> Response {
    let not_modified = if_none_match.is_some_and(|tags| etag_matches(tags, &rendered.etag));
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = rendered.body.into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    };
    let headers = response.headers_mut();
    headers.insert(header::ETAG, rendered.etag);
    headers.insert(header::CACHE_CONTROL, cache_control);
    response
}

#[derive(Serialize)]
struct TextItem<'a> {
    text: &'a str,
    when: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    who: Option<&'a str>,
}

/// `GET /api/questions/{qid,qid,...}`: the immutable part of each named question. Unknown
/// ids are left out (a question the aggregator has not folded yet is unknown for a moment),
/// and then the answer is cached only briefly.
pub async fn question_texts(
    State(shared): AppState,
    PathParams(qids): PathParams<String>,
) -> Result<Response, ApiError> {
    let parts: Vec<&str> = qids.split(',').take(QUESTION_IDS_PER_REQUEST_MAX + 1).collect();
    if parts.len() > QUESTION_IDS_PER_REQUEST_MAX {
        return Err(ApiError::BadRequest(format!("at most {QUESTION_IDS_PER_REQUEST_MAX} question ids per request")));
    }
    let mut ids: Vec<QuestionId> = Vec::with_capacity(parts.len());
    let mut seen = HashSet::with_capacity(parts.len());
    for part in parts {
        let id: QuestionId = part.parse()?;
        if seen.insert(id) {
            ids.push(id);
        }
    }
    let mut found: Vec<bytes::Bytes> = Vec::with_capacity(ids.len());
    let mut missing = Vec::new();
    for id in &ids {
        match shared.texts.get(id) {
            Some(fragment) => found.push(fragment),
            None => missing.push(*id),
        }
    }
    if !missing.is_empty() {
        for text in shared.projection.question_texts(&missing).await? {
            let fragment = render_text_entry(&text)?;
            shared.texts.insert(text.id, fragment.clone());
            found.push(fragment);
        }
    }
    if found.is_empty() {
        return Err(ApiError::UnknownQuestion);
    }
    let all_found = found.len() == ids.len();
    // The entries are immutable and rendered once; a response only joins them.
    let mut body = Vec::with_capacity(2 + found.iter().map(|f| f.len() + 1).sum::<usize>());
    body.push(b'{');
    for (i, fragment) in found.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(fragment);
    }
    body.push(b'}');
    let cache_control =
        if all_found { HeaderValue::from_static(TEXTS_CACHE_CONTROL) } else { shared.guest_cache_control.clone() };
    Ok((
        [(header::CACHE_CONTROL, cache_control), (header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body,
    )
        .into_response())
}

/// One question's entry of the texts response: `"qid":{"text":…,"when":…,"who":…}`.
fn render_text_entry(q: &ledger::ports::QuestionText) -> Result<bytes::Bytes, ApiError> {
    let item = TextItem { text: &q.text, when: q.id.unix_seconds(), who: q.who.as_deref() };
    let mut out = Vec::with_capacity(q.text.len() + 64);
    out.push(b'"');
    out.extend_from_slice(q.id.to_string().as_bytes());
    out.extend_from_slice(b"\":");
    serde_json::to_writer(&mut out, &item).map_err(|e| {
        tracing::error!(error = %e, "cannot render a question text");
        ApiError::Unavailable
    })?;
    Ok(out.into())
}

/// `GET /healthz`: the process is up, its store answers a real read (else the ordinary 503),
/// and (embedded mode) the writer, the aggregator and the dead letters are as they should
/// be; if not, a 503 whose JSON body says why: `{"status":"unhealthy","problems":[...]}`.
pub async fn healthz(State(shared): AppState) -> Result<Response, ApiError> {
    // An id no event has (ids are minted from the clock): the read goes all the way to the store.
    // A failed read is the ordinary 503 (logged, nothing internal in the body).
    shared.events.event(EventId::from_u128(0)).await?;
    let mut problems = Vec::new();
    if let Some(probe) = &shared.health {
        problems.extend(probe.problems().await);
    }
    let (status, body) = if problems.is_empty() {
        (StatusCode::OK, serde_json::json!({ "status": "ok" }))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, serde_json::json!({ "status": "unhealthy", "problems": problems }))
    };
    Ok((status, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}

/// `GET /metrics`: the process's metrics in Prometheus text format.
pub async fn metrics(State(shared): AppState) -> Result<Response, ApiError> {
    let handle = shared.metrics.as_ref().ok_or(ApiError::NotAvailable)?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4"), (header::CACHE_CONTROL, "no-store")], handle.render())
        .into_response())
}
