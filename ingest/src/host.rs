//! The host's tools (design §7): the event's settings, written answers, co-host links, and
//! who may use which. Each handler checks everything before it appends, appends the
//! event's own records (or one question's) in one call, and answers once they committed.
//! The host may do everything; a co-host (a link the host minted) may moderate, that is
//! toggle and reply, but not change the settings nor mint or revoke co-host links.

use std::sync::Arc;

use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use http_edge::{settings_json, PathParams};
use ledger::limits::COHOSTS_PER_EVENT_MAX;
use ledger::ports::EventRow;
use ledger::rules::{blocked_words, event_title, reply_text, RuleError};
use ledger::secret::{capability, hash_secret, new_secret, Capability};
use ledger::{event_subject, Asking, EventId, EventState, Moderation, QuestionId, Record, RecordBody, RecordId};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::handlers::live_event;
use crate::IngestState;

type AppState = State<Arc<IngestState>>;

/// The live event of a host route and what its secret makes the bearer (401 if nothing),
/// with the event's own state as the projection holds it.
pub(crate) async fn authorized(
    state: &IngestState,
    event: EventId,
    secret: &str,
) -> Result<(EventRow, Capability, EventState), ApiError> {
    let Some(row) = live_event(state, event).await? else {
        return Err(ApiError::NotFound("event"));
    };
    let own = state.projection.event_state(event).await?;
    let who = capability(secret, &row.secret_hash, &own).ok_or(ApiError::WrongSecret)?;
    Ok((row, who, own))
}

fn host_only(who: Capability) -> Result<(), ApiError> {
    match who {
        Capability::Host => Ok(()),
        Capability::Cohost => Err(ApiError::HostOnly),
    }
}

fn refused(e: RuleError) -> ApiError {
    ApiError::BadRequest(e.to_string())
}

/// A settings change: any of the fields, each optional.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsChange {
    title: Option<String>,
    moderation: Option<String>,
    asking: Option<String>,
    blocked_words: Option<Vec<String>>,
}

/// `POST /api/event/{eid}/settings/{secret}` with a partial JSON object
/// `{"title"?, "moderation"?: "off"|"pre-approve", "asking"?: "open"|"closed",
/// "blocked_words"?: [..]}`: one record per field given, appended together; answers the
/// whole settings as they are with the change. The host's only (a co-host gets 403).
pub async fn settings(
    State(state): AppState,
    PathParams((eid, secret)): PathParams<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let event: EventId = eid.parse()?;
    let body = body?;
    let change: SettingsChange = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!("expected {{\"title\"?, \"moderation\"?, \"asking\"?, \"blocked_words\"?}}: {e}"))
    })?;
    let mut bodies = Vec::new();
    if let Some(title) = &change.title {
        bodies.push(RecordBody::Titled { title: event_title(title).map_err(refused)? });
    }
    if let Some(m) = &change.moderation {
        let moderation = Moderation::parse(m)
            .ok_or_else(|| ApiError::BadRequest("moderation is \"off\" or \"pre-approve\"".into()))?;
        bodies.push(RecordBody::ModerationSet { moderation });
    }
    if let Some(a) = &change.asking {
        let asking = Asking::parse(a).ok_or_else(|| ApiError::BadRequest("asking is \"open\" or \"closed\"".into()))?;
        bodies.push(RecordBody::AskingSet { asking });
    }
    if let Some(words) = &change.blocked_words {
        bodies.push(RecordBody::BlockedWordsSet { words: blocked_words(words).map_err(refused)? });
    }
    let (_, who, mut own) = authorized(&state, event, &secret).await?;
    host_only(who)?;
    let records = event_records(&state, event, bodies)?;
    state.ledger.append(&records).await?;
    // The projection may not have folded these yet: answer with them applied on top.
    for r in &records {
        own.apply(r.id, &r.body);
    }
    metrics::counter!("settings_changed_total").increment(1);
    Ok(Json(settings_json(&own.settings(), true)).into_response())
}

/// Records of the event itself, with fresh ids in the order given.
fn event_records(state: &IngestState, event: EventId, bodies: Vec<RecordBody>) -> Result<Vec<Record>, ApiError> {
    bodies
        .into_iter()
        .map(|body| {
            Ok(Record {
                id: RecordId(state.ids.next()?),
                event,
                question: event_subject(event),
                region: state.config.region.clone(),
                body,
            })
        })
        .collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplyBody {
    text: String,
}

/// `POST /api/event/{eid}/questions/{secret}/{qid}/reply` with `{"text": "…"}`: the written
/// answer (at most 1,000 characters; a later one replaces it, an empty one removes it).
/// Answers `{"reply": text}`, or `{}` when removed. Host or co-host.
pub async fn reply(
    State(state): AppState,
    PathParams((eid, secret, qid)): PathParams<(String, String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let event: EventId = eid.parse()?;
    let question: QuestionId = qid.parse()?;
    let body = body?;
    let parsed: ReplyBody =
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("expected {{\"text\": text}}: {e}")))?;
    let text = reply_text(&parsed.text).map_err(refused)?;
    authorized(&state, event, &secret).await?;
    question_of(&state, event, question).await?;
    let record = Record {
        id: RecordId(state.ids.next()?),
        event,
        question,
        region: state.config.region.clone(),
        body: RecordBody::Replied { text: text.clone() },
    };
    state.ledger.append(std::slice::from_ref(&record)).await?;
    metrics::counter!("replies_total").increment(1);
    let response = if text.is_empty() { serde_json::json!({}) } else { serde_json::json!({ "reply": text }) };
    Ok(Json(response).into_response())
}

/// 404 unless the question exists in this event (another event's is answered like a
/// missing one, so a host learns nothing about other events).
pub(crate) async fn question_of(state: &IngestState, event: EventId, question: QuestionId) -> Result<(), ApiError> {
    match state.projection.question(question).await? {
        Some(standing) if standing.event == event => Ok(()),
        _ => Err(ApiError::NotFound("question")),
    }
}

#[derive(Serialize)]
struct MintedCohost {
    secret: String,
}

/// `POST /api/event/{eid}/cohosts/{secret}`: a new co-host link's secret `{"secret"}`. Only
/// its hash is stored (in a `cohost_minted` record); this answer is the one place the
/// secret appears. The host's only; at most 20 links per event (409 beyond).
pub async fn mint_cohost(
    State(state): AppState,
    PathParams((eid, secret)): PathParams<(String, String)>,
) -> Result<Response, ApiError> {
    let event: EventId = eid.parse()?;
    let (_, who, own) = authorized(&state, event, &secret).await?;
    host_only(who)?;
    if own.cohosts.len() >= COHOSTS_PER_EVENT_MAX {
        return Err(ApiError::TooManyCohosts);
    }
    let cohost = new_secret();
    let records = event_records(&state, event, vec![RecordBody::CohostMinted { secret_hash: hash_secret(&cohost) }])?;
    state.ledger.append(&records).await?;
    metrics::counter!("cohosts_minted_total").increment(1);
    Ok(Json(MintedCohost { secret: cohost }).into_response())
}

/// `DELETE /api/event/{eid}/cohosts/{secret}/{cohost_secret}`: revokes a co-host link for
/// good (a `cohost_revoked` record). 404 if the event never had that link. The host's only.
pub async fn revoke_cohost(
    State(state): AppState,
    PathParams((eid, secret, cohost)): PathParams<(String, String, String)>,
) -> Result<Response, ApiError> {
    let event: EventId = eid.parse()?;
    let (_, who, own) = authorized(&state, event, &secret).await?;
    host_only(who)?;
    let secret_hash = hash_secret(&cohost);
    // A lookup by hash: the plain co-host secret is never compared or kept.
    if !own.cohosts.contains_key(&secret_hash) {
        return Err(ApiError::NotFound("co-host link"));
    }
    let records = event_records(&state, event, vec![RecordBody::CohostRevoked { secret_hash }])?;
    state.ledger.append(&records).await?;
    metrics::counter!("cohosts_revoked_total").increment(1);
    Ok(Json(serde_json::json!({})).into_response())
}
