//! The write handlers. Each validates everything before touching a store, appends at most
//! one record, and answers only after the append committed.

use std::sync::Arc;

use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use bytes::Bytes;
use http_edge::ClientAddr;
use ledger::limits::QUESTIONS_PER_EVENT_MAX;
use ledger::ports::EventRow;
use ledger::retention::{is_live, now_unix};
use ledger::rules::{asker_name, has_blocked_word, question_text, RuleError};
use ledger::secret::{hash_secret, new_secret, secret_matches};
use ledger::{Asked, Asking, EventId, Moderation, QuestionId, Record, RecordBody, RecordId};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::rate::RateLimiters;
use crate::voter::{voter, Voter, VoterCookie};
use crate::IngestState;
use http_edge::PathParams;

type AppState = State<Arc<IngestState>>;
type Limits = Extension<Arc<RateLimiters>>;

#[derive(Serialize)]
struct CreatedEvent {
    id: EventId,
    secret: String,
}

/// `POST /api/event`: a new event and its host secret. Only the secret's hash is stored, and
/// the secret itself is never logged: this response is the one place it ever appears.
pub async fn create_event(
    State(state): AppState,
    Extension(limits): Limits,
    client: ClientAddr,
) -> Result<impl IntoResponse, ApiError> {
    limits.create_event(client.0)?;
    let id = EventId(state.ids.next()?);
    let secret = new_secret();
    let row = EventRow { id, secret_hash: hash_secret(&secret), expire_unix: state.config.retention.expire_of(id) };
    state.events.create_event(&row).await?;
    metrics::counter!("events_created_total").increment(1);
    tracing::info!(event = %id, "event created");
    Ok(Json(CreatedEvent { id, secret }))
}

#[derive(Deserialize)]
struct AskBody {
    body: String,
    #[serde(default)]
    asker: Option<String>,
}

#[derive(Serialize)]
struct AskedResponse {
    id: QuestionId,
}

/// `POST /api/event/{eid}` with `{"body": text, "asker": name|null}`: asks a question, which
/// also counts as the asker's up-vote. Refused with 403 while the host has closed asking. A
/// question that must be reviewed first (the event's moderation is `pre-approve`, or it
/// holds a blocked word) is appended with an `approved: off` record after it, in the same
/// append: it waits for the host's review.
pub async fn ask(
    State(state): AppState,
    Extension(limits): Limits,
    client: ClientAddr,
    PathParams(eid): PathParams<String>,
    VoterCookie(cookie): VoterCookie,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let event: EventId = eid.parse()?;
    limits.ask(client.0, cookie, event)?;
    let body = body?;
    let (text, who) = validate_question(&body)?;
    if live_event(&state, event).await?.is_none() {
        return Err(ApiError::NotFound("event"));
    }
    let settings = state.projection.event_state(event).await?.settings();
    if settings.asking == Asking::Closed {
        return Err(ApiError::AskingClosed);
    }
    let review = settings.moderation == Moderation::PreApprove || has_blocked_word(&text, &settings.blocked_words);
    if state.projection.event_questions(event).await?.len() >= QUESTIONS_PER_EVENT_MAX {
        return Err(ApiError::EventFull);
    }
    let Voter { id: voter_id, set_cookie } =
        voter(cookie, state.config.retention.seconds(), state.config.cookie_secure);
    // The question id first, so the `asked` record's id is the later of the two.
    let question = QuestionId(state.ids.next()?);
    let mut records = vec![Record {
        id: RecordId(state.ids.next()?),
        event,
        question,
        region: state.config.region.clone(),
        body: RecordBody::Asked(Asked { text, who, voter: voter_id }),
    }];
    if review {
        records.push(Record {
            id: RecordId(state.ids.next()?),
            event,
            question,
            region: state.config.region.clone(),
            body: RecordBody::Approved { on: false },
        });
    }
    state.ledger.append(&records).await?;
    metrics::counter!("questions_asked_total").increment(1);
    Ok(with_cookie(Json(AskedResponse { id: question }).into_response(), set_cookie))
}

/// The stored form of a question and its asker's name, by the ledger's rules (the same ones
/// `ledger import` applies).
fn validate_question(body: &[u8]) -> Result<(String, Option<String>), ApiError> {
    let parsed: AskBody = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("expected {{\"body\": text, \"asker\": name|null}}: {e}")))?;
    let refused = |e: RuleError| ApiError::BadRequest(e.to_string());
    let text = question_text(&parsed.body).map_err(refused)?;
    let who = asker_name(parsed.asker.as_deref()).map_err(refused)?;
    Ok((text, who))
}

#[derive(Serialize)]
struct VoteResponse {
    votes: u64,
}

/// `POST /api/vote/{qid}/{up|down}`: records this voter's current choice. Repeating a vote
/// changes nothing and `down` retracts it; the fold sees to both.
///
/// A vote on a question of an expired event is refused like an ask or a toggle there (404
/// `event`, nothing appended).
///
/// The hot path: one projection read (does the question exist, and in which event), one
/// event read (is it still live) and one append. The `votes` answered is the projection's
/// count as read *before* this vote was appended, so it lags by one aggregation step
/// (milliseconds embedded, about a second on AWS); the client adjusts its own display
/// optimistically.
pub async fn vote(
    State(state): AppState,
    Extension(limits): Limits,
    client: ClientAddr,
    PathParams((qid, direction)): PathParams<(String, String)>,
    VoterCookie(cookie): VoterCookie,
) -> Result<Response, ApiError> {
    limits.vote(client.0)?;
    let question: QuestionId = qid.parse()?;
    let up = match direction.as_str() {
        "up" => true,
        "down" => false,
        _ => return Err(ApiError::BadRequest("a vote is up or down".into())),
    };
    let Some(counters) = state.projection.question(question).await? else {
        return Err(ApiError::NotFound("question"));
    };
    if live_event(&state, counters.event).await?.is_none() {
        return Err(ApiError::NotFound("event"));
    }
    let Voter { id: voter_id, set_cookie } =
        voter(cookie, state.config.retention.seconds(), state.config.cookie_secure);
    let record = Record {
        id: RecordId(state.ids.next()?),
        event: counters.event,
        question,
        region: state.config.region.clone(),
        body: RecordBody::Voted { voter: voter_id, up },
    };
    state.ledger.append(std::slice::from_ref(&record)).await?;
    metrics::counter!("votes_total", "direction" => if up { "up" } else { "down" }).increment(1);
    Ok(with_cookie(Json(VoteResponse { votes: counters.votes }).into_response(), set_cookie))
}

#[derive(Clone, Copy)]
enum Property {
    Hidden,
    Answered,
    Approved,
    Spotlight,
}

/// `POST /api/event/{eid}/questions/{secret}/{qid}/toggle/{hidden|answered|approved|spotlight}`
/// with a raw body `on` or `off`: the host's (or a co-host's) moderation. A question that
/// exists but belongs to another event is answered 404, exactly like a missing one, so a
/// host learns nothing about other events.
pub async fn toggle(
    State(state): AppState,
    PathParams((eid, secret, qid, property)): PathParams<(String, String, String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let event: EventId = eid.parse()?;
    let question: QuestionId = qid.parse()?;
    let property = match property.as_str() {
        "hidden" => Property::Hidden,
        "answered" => Property::Answered,
        "approved" => Property::Approved,
        "spotlight" => Property::Spotlight,
        _ => return Err(ApiError::BadRequest("toggle hidden, answered, approved or spotlight".into())),
    };
    let body = body?;
    let on = match std::str::from_utf8(&body).map(str::trim) {
        Ok("on") => true,
        Ok("off") => false,
        _ => return Err(ApiError::BadRequest("the body must be on or off".into())),
    };
    let Some(row) = live_event(&state, event).await? else {
        return Err(ApiError::NotFound("event"));
    };
    // The host's secret first (the original's one check); a co-host's only if it is not.
    if !secret_matches(&secret, &row.secret_hash) {
        crate::host::authorized(&state, event, &secret).await?;
    }
    crate::host::question_of(&state, event, question).await?;
    let id = RecordId(state.ids.next()?);
    let body = match property {
        Property::Hidden => RecordBody::Hidden { on },
        Property::Answered => RecordBody::Answered { on },
        Property::Approved => RecordBody::Approved { on },
        Property::Spotlight => RecordBody::Spotlight { on },
    };
    let record = Record { id, event, question, region: state.config.region.clone(), body };
    state.ledger.append(std::slice::from_ref(&record)).await?;
    metrics::counter!("toggles_total", "property" => record.body.kind()).increment(1);
    let response = match property {
        Property::Hidden => serde_json::json!({ "hidden": on }),
        Property::Answered if on => serde_json::json!({ "answered": id.unix_seconds() }),
        Property::Answered => serde_json::json!({}),
        Property::Approved => serde_json::json!({ "approved": on }),
        Property::Spotlight => serde_json::json!({ "spotlight": on }),
    };
    Ok(Json(response).into_response())
}

/// The event, unless it is unknown or expired (DynamoDB deletes expired items only
/// eventually, so a row may outlive its event by a while).
pub(crate) async fn live_event(state: &IngestState, event: EventId) -> Result<Option<EventRow>, ApiError> {
    let now = now_unix();
    Ok(state.events.event(event).await?.filter(|row| is_live(row.expire_unix, now)))
}

fn with_cookie(mut response: Response, set_cookie: Option<axum::http::HeaderValue>) -> Response {
    if let Some(cookie) = set_cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}
