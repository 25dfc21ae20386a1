//! Records: the immutable, past-tense facts ingest appends to the ledger. Every decision
//! (validation, ids, who may do what) was taken before a record exists; a record is never
//! updated, only appended, and a whole event's records expire together.
//!
//! Most records are about one question. The event's own records (its settings and its
//! co-host links, design §2) name the event itself as their question
//! ([`event_subject`]), so every record keeps the same shape and storage key.

use crate::ids::{EventId, QuestionId, RecordId, VoterId};
use crate::secret::SecretHash;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub id: RecordId,
    pub event: EventId,
    pub question: QuestionId,
    /// Where the record was ingested; replicas fold records from every region alike.
    pub region: String,
    pub body: RecordBody,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordBody {
    /// The question was asked; it counts as the asker's up-vote.
    Asked(Asked),
    /// A voter's current choice for the question.
    Voted { voter: VoterId, up: bool },
    /// The host marked (`on`) or unmarked the question as answered.
    Answered { on: bool },
    /// The host hid (`on`) or unhid the question.
    Hidden { on: bool },
    /// The host approved (`on`) the question, or it waits for review (`off`: ingest appends
    /// one with a question that must be reviewed first). A question without any is approved.
    Approved { on: bool },
    /// The host put the question in the spotlight (`on`) or took it out.
    Spotlight { on: bool },
    /// The host's written answer; a later one replaces it, an empty one removes it.
    Replied { text: String },
    /// Event setting: the event's title (empty: none).
    Titled { title: String },
    /// Event setting: whether new questions wait for review.
    ModerationSet { moderation: Moderation },
    /// Event setting: whether guests may ask.
    AskingSet { asking: Asking },
    /// Event setting: the words that send a question to review (stored lowercase).
    BlockedWordsSet { words: Vec<String> },
    /// The host minted a co-host link; only its secret's hash is kept.
    CohostMinted { secret_hash: SecretHash },
    /// The host revoked a co-host link, for good.
    CohostRevoked { secret_hash: SecretHash },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    pub text: String,
    pub who: Option<String>,
    pub voter: VoterId,
}

/// Whether new questions are shown at once or wait for the host's review.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Moderation {
    #[default]
    Off,
    PreApprove,
}

/// Whether guests may ask new questions (votes count either way).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Asking {
    #[default]
    Open,
    Closed,
}

impl Moderation {
    pub fn as_str(self) -> &'static str {
        match self {
            Moderation::Off => "off",
            Moderation::PreApprove => "pre-approve",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "off" => Some(Moderation::Off),
            "pre-approve" => Some(Moderation::PreApprove),
            _ => None,
        }
    }
}

impl Asking {
    pub fn as_str(self) -> &'static str {
        match self {
            Asking::Open => "open",
            Asking::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(Asking::Open),
            "closed" => Some(Asking::Closed),
            _ => None,
        }
    }
}

/// The question id the event's own records carry: the event's id itself (ingest never mints
/// a question id equal to an event id, as both are fresh ULIDs of one generator).
pub fn event_subject(event: EventId) -> QuestionId {
    QuestionId(event.0)
}

impl RecordBody {
    /// The ledger's name for this kind of record (also its NDJSON `kind`).
    pub fn kind(&self) -> &'static str {
        match self {
            RecordBody::Asked(_) => "asked",
            RecordBody::Voted { .. } => "vote",
            RecordBody::Answered { .. } => "answered",
            RecordBody::Hidden { .. } => "hidden",
            RecordBody::Approved { .. } => "approved",
            RecordBody::Spotlight { .. } => "spotlight",
            RecordBody::Replied { .. } => "reply",
            RecordBody::Titled { .. } => "title",
            RecordBody::ModerationSet { .. } => "moderation",
            RecordBody::AskingSet { .. } => "asking",
            RecordBody::BlockedWordsSet { .. } => "blocked_words",
            RecordBody::CohostMinted { .. } => "cohost_minted",
            RecordBody::CohostRevoked { .. } => "cohost_revoked",
        }
    }

    /// Whether this kind is about the event itself (its question is [`event_subject`]).
    pub fn is_event_level(&self) -> bool {
        matches!(
            self,
            RecordBody::Titled { .. }
                | RecordBody::ModerationSet { .. }
                | RecordBody::AskingSet { .. }
                | RecordBody::BlockedWordsSet { .. }
                | RecordBody::CohostMinted { .. }
                | RecordBody::CohostRevoked { .. }
        )
    }
}
