//! The ledger's interchange form: one JSON object per record per line, as `ledger export`
//! writes and `ledger import` reads. A wire type kept apart from [`Record`] and converted
//! explicitly, so the core types can change without changing the files operators keep.

use serde::{Deserialize, Serialize};

use crate::ids::{EventId, QuestionId, RecordId, VoterId};
use crate::record::{Asked, Asking, Moderation, Record, RecordBody};
use crate::secret::SecretHash;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordLine {
    pub id: RecordId,
    pub event: EventId,
    pub question: QuestionId,
    pub region: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub who: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voter: Option<VoterId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<bool>,
    /// `title`: the event's title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// `moderation`: `off` or `pre-approve`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moderation: Option<String>,
    /// `asking`: `open` or `closed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asking: Option<String>,
    /// `blocked_words`: the list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub words: Option<Vec<String>>,
    /// `cohost_minted` / `cohost_revoked`: the link secret's SHA-256, 64 hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_hash: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("not a record: {0}")]
    Json(String),
    #[error("record {id} of kind `{kind}` lacks `{field}`")]
    Missing { id: RecordId, kind: String, field: &'static str },
    #[error("record {id} has unknown kind `{kind}`")]
    UnknownKind { id: RecordId, kind: String },
    #[error("event {event}: `secret_hash` is not 64 hex digits")]
    BadSecretHash { event: EventId },
    #[error("record {id}: `{field}` is not one of its values")]
    BadValue { id: RecordId, field: &'static str },
}

impl From<&Record> for RecordLine {
    fn from(r: &Record) -> Self {
        let mut line = RecordLine {
            id: r.id,
            event: r.event,
            question: r.question,
            region: r.region.clone(),
            kind: r.body.kind().to_owned(),
            text: None,
            who: None,
            voter: None,
            up: None,
            on: None,
            title: None,
            moderation: None,
            asking: None,
            words: None,
            secret_hash: None,
        };
        match &r.body {
            RecordBody::Asked(a) => {
                line.text = Some(a.text.clone());
                line.who = a.who.clone();
                line.voter = Some(a.voter);
            }
            RecordBody::Voted { voter, up } => {
                line.voter = Some(*voter);
                line.up = Some(*up);
            }
            RecordBody::Answered { on }
            | RecordBody::Hidden { on }
            | RecordBody::Approved { on }
            | RecordBody::Spotlight { on } => line.on = Some(*on),
            RecordBody::Replied { text } => line.text = Some(text.clone()),
            RecordBody::Titled { title } => line.title = Some(title.clone()),
            RecordBody::ModerationSet { moderation } => line.moderation = Some(moderation.as_str().to_owned()),
            RecordBody::AskingSet { asking } => line.asking = Some(asking.as_str().to_owned()),
            RecordBody::BlockedWordsSet { words } => line.words = Some(words.clone()),
            RecordBody::CohostMinted { secret_hash } | RecordBody::CohostRevoked { secret_hash } => {
                line.secret_hash = Some(hex(secret_hash))
            }
        }
        line
    }
}

impl TryFrom<RecordLine> for Record {
    type Error = LineError;

    fn try_from(l: RecordLine) -> Result<Self, Self::Error> {
        let missing = |field| LineError::Missing { id: l.id, kind: l.kind.clone(), field };
        let body = match l.kind.as_str() {
            "asked" => RecordBody::Asked(Asked {
                text: l.text.clone().ok_or_else(|| missing("text"))?,
                who: l.who.clone(),
                voter: l.voter.ok_or_else(|| missing("voter"))?,
            }),
            "vote" => RecordBody::Voted {
                voter: l.voter.ok_or_else(|| missing("voter"))?,
                up: l.up.ok_or_else(|| missing("up"))?,
            },
            "answered" => RecordBody::Answered { on: l.on.ok_or_else(|| missing("on"))? },
            "hidden" => RecordBody::Hidden { on: l.on.ok_or_else(|| missing("on"))? },
            "approved" => RecordBody::Approved { on: l.on.ok_or_else(|| missing("on"))? },
            "spotlight" => RecordBody::Spotlight { on: l.on.ok_or_else(|| missing("on"))? },
            "reply" => RecordBody::Replied { text: l.text.clone().ok_or_else(|| missing("text"))? },
            "title" => RecordBody::Titled { title: l.title.clone().ok_or_else(|| missing("title"))? },
            "moderation" => {
                let value = l.moderation.as_deref().ok_or_else(|| missing("moderation"))?;
                let moderation =
                    Moderation::parse(value).ok_or(LineError::BadValue { id: l.id, field: "moderation" })?;
                RecordBody::ModerationSet { moderation }
            }
            "asking" => {
                let value = l.asking.as_deref().ok_or_else(|| missing("asking"))?;
                let asking = Asking::parse(value).ok_or(LineError::BadValue { id: l.id, field: "asking" })?;
                RecordBody::AskingSet { asking }
            }
            "blocked_words" => RecordBody::BlockedWordsSet { words: l.words.clone().ok_or_else(|| missing("words"))? },
            "cohost_minted" | "cohost_revoked" => {
                let value = l.secret_hash.as_deref().ok_or_else(|| missing("secret_hash"))?;
                let secret_hash = parse_hash(value).ok_or(LineError::BadValue { id: l.id, field: "secret_hash" })?;
                if l.kind == "cohost_minted" {
                    RecordBody::CohostMinted { secret_hash }
                } else {
                    RecordBody::CohostRevoked { secret_hash }
                }
            }
            _ => return Err(LineError::UnknownKind { id: l.id, kind: l.kind }),
        };
        Ok(Record { id: l.id, event: l.event, question: l.question, region: l.region, body })
    }
}

/// An event as it travels in an export: its id and its secret's hash (never the secret),
/// written before the event's first record so that an import can create the event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventLine {
    /// Always `"event"`.
    pub kind: String,
    pub event: EventId,
    /// The SHA-256 of the host secret, as 64 lowercase hex digits.
    pub secret_hash: String,
}

/// One line of an export: an event or a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Event { event: EventId, secret_hash: SecretHash },
    Record(Record),
}

/// Parses one NDJSON line, an event line or a record.
pub fn parse_any(line: &str) -> Result<Line, LineError> {
    #[derive(Deserialize)]
    struct Kind<'a> {
        #[serde(borrow)]
        kind: Option<std::borrow::Cow<'a, str>>,
    }
    let kind: Kind<'_> = serde_json::from_str(line).map_err(|e| LineError::Json(e.to_string()))?;
    if kind.kind.as_deref() != Some("event") {
        return parse_line(line).map(Line::Record);
    }
    let e: EventLine = serde_json::from_str(line).map_err(|e| LineError::Json(e.to_string()))?;
    let secret_hash = parse_hash(&e.secret_hash).ok_or(LineError::BadSecretHash { event: e.event })?;
    Ok(Line::Event { event: e.event, secret_hash })
}

fn hex(hash: &SecretHash) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// Renders an event line (without the newline).
pub fn event_line(event: EventId, secret_hash: &SecretHash) -> String {
    let line = EventLine { kind: "event".into(), event, secret_hash: hex(secret_hash) };
    // Strings and an id only: serializing cannot fail.
    serde_json::to_string(&line).unwrap_or_default()
}

fn parse_hash(hex: &str) -> Option<SecretHash> {
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Parses one NDJSON line into a record.
pub fn parse_line(line: &str) -> Result<Record, LineError> {
    let dto: RecordLine = serde_json::from_str(line).map_err(|e| LineError::Json(e.to_string()))?;
    Record::try_from(dto)
}

/// Renders one record as an NDJSON line (without the newline).
pub fn to_line(record: &Record) -> String {
    // A RecordLine holds only strings, bools and ids: serializing it cannot fail.
    serde_json::to_string(&RecordLine::from(record)).expect("a record line always serializes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ulid::Ulid;

    #[test]
    fn every_kind_round_trips_and_bad_lines_are_errors() {
        let base = |body| Record {
            id: RecordId(Ulid::new()),
            event: EventId(Ulid::new()),
            question: QuestionId(Ulid::new()),
            region: "eu-north-1".into(),
            body,
        };
        let voter = VoterId::random();
        for body in [
            RecordBody::Asked(Asked { text: "what now?".into(), who: Some("Ann".into()), voter }),
            RecordBody::Voted { voter, up: false },
            RecordBody::Answered { on: true },
            RecordBody::Hidden { on: false },
            RecordBody::Approved { on: false },
            RecordBody::Spotlight { on: true },
            RecordBody::Replied { text: "Yes — soon.".into() },
            RecordBody::Titled { title: "Town hall".into() },
            RecordBody::ModerationSet { moderation: Moderation::PreApprove },
            RecordBody::ModerationSet { moderation: Moderation::Off },
            RecordBody::AskingSet { asking: Asking::Closed },
            RecordBody::AskingSet { asking: Asking::Open },
            RecordBody::BlockedWordsSet { words: vec!["spam".into(), "buy now".into()] },
            RecordBody::CohostMinted { secret_hash: crate::secret::hash_secret("a") },
            RecordBody::CohostRevoked { secret_hash: crate::secret::hash_secret("b") },
        ] {
            let kind = body.kind();
            let r = base(body);
            let line = to_line(&r);
            assert!(line.contains(&format!(r#""kind":"{kind}""#)), "{line}");
            assert_eq!(parse_line(&line), Ok(r));
        }
        let mut bad = RecordLine::from(&base(RecordBody::AskingSet { asking: Asking::Closed }));
        bad.asking = Some("ajar".into());
        let s = serde_json::to_string(&bad).unwrap();
        assert!(matches!(parse_line(&s), Err(LineError::BadValue { field: "asking", .. })));
        let mut bad = RecordLine::from(&base(RecordBody::CohostMinted { secret_hash: [0; 32] }));
        bad.secret_hash = Some("00".into());
        let s = serde_json::to_string(&bad).unwrap();
        assert!(matches!(parse_line(&s), Err(LineError::BadValue { field: "secret_hash", .. })));
        assert!(matches!(parse_line("{}"), Err(LineError::Json(_))));
        let mut l = RecordLine::from(&base(RecordBody::Hidden { on: true }));
        l.on = None;
        let s = serde_json::to_string(&l).unwrap();
        assert!(matches!(parse_line(&s), Err(LineError::Missing { field: "on", .. })));
    }

    #[test]
    fn event_lines_round_trip_and_a_bad_hash_is_refused() {
        let event = EventId(Ulid::new());
        let hash = crate::secret::hash_secret("s3cret");
        assert_eq!(parse_any(&event_line(event, &hash)), Ok(Line::Event { event, secret_hash: hash }));
        let bad = format!(r#"{{"kind":"event","event":"{event}","secret_hash":"zz"}}"#);
        assert_eq!(parse_any(&bad), Err(LineError::BadSecretHash { event }));
        let record = Record {
            id: RecordId(Ulid::new()),
            event,
            question: QuestionId(Ulid::new()),
            region: "r".into(),
            body: RecordBody::Hidden { on: true },
        };
        assert_eq!(parse_any(&to_line(&record)), Ok(Line::Record(record)));
        assert!(matches!(parse_any("[1]"), Err(LineError::Json(_))));
    }
}
