//! Records: the immutable, past-tense facts ingest appends to the ledger. Every decision
//! (validation, ids, who may do what) was taken before a record exists; a record is never
//! updated, only appended, and a whole event's records expire together.

use crate::ids::{EventId, QuestionId, RecordId, VoterId};

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
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    pub text: String,
    pub who: Option<String>,
    pub voter: VoterId,
}

impl RecordBody {
    /// The ledger's name for this kind of record (also its NDJSON `kind`).
    pub fn kind(&self) -> &'static str {
        match self {
            RecordBody::Asked(_) => "asked",
            RecordBody::Voted { .. } => "vote",
            RecordBody::Answered { .. } => "answered",
            RecordBody::Hidden { .. } => "hidden",
        }
    }
}
