//! The storage ports: what the roles need from a store, as traits held in their state
//! (`Arc<dyn LedgerStore>` and so on). Adapters (SQLite in `ledger/sqlite`, DynamoDB in
//! `ledger/dynamodb`) implement them and pass one conformance suite; the roles never see a
//! table, a row or an attribute name.

use async_trait::async_trait;

use crate::fold::{BatchPlan, EventState, ProjectionChange, QuestionStanding, QuestionState, VoterState, VoterStates};
use crate::ids::{EventId, QuestionId, VoterId};
use crate::record::Record;
use crate::secret::SecretHash;

/// An operating failure of a store. Every case is an ordinary value for the caller to handle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached or refused for now (throttled, busy, network): retryable.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// What the store holds does not parse as what we wrote: a bug or tampering.
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// The request itself cannot be carried out (e.g. the item already exists).
    #[error("store refused: {0}")]
    Rejected(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// An event as stored: its secret only as a hash. Its creation time is its id's time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    pub id: EventId,
    pub secret_hash: SecretHash,
    /// When the event and all its records expire (Unix seconds; the DynamoDB TTL).
    pub expire_unix: u64,
}

/// A question's immutable part, as served by `GET /api/questions/{ids}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuestionText {
    pub id: QuestionId,
    pub event: EventId,
    pub text: String,
    pub who: Option<String>,
}

#[async_trait]
pub trait EventStore: Send + Sync {
    /// Stores a new event; `Rejected` if the id is taken.
    async fn create_event(&self, event: &EventRow) -> StoreResult<()>;
    async fn event(&self, id: EventId) -> StoreResult<Option<EventRow>>;
}

/// An opaque position in a ledger scan, handed back to continue after a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanToken(pub String);

#[derive(Debug, Clone, Default)]
pub struct ScanPage {
    pub records: Vec<Record>,
    /// `None` when the scan is complete.
    pub next: Option<ScanToken>,
}

#[async_trait]
pub trait LedgerStore: Send + Sync {
    /// Appends records durably: when this returns `Ok` every one of them is committed.
    /// A record whose id is already stored is skipped, so appends are idempotent.
    async fn append(&self, records: &[Record]) -> StoreResult<()>;
    /// One page of the whole ledger (or one event's records), for replay and export.
    async fn scan(&self, event: Option<EventId>, after: Option<ScanToken>, limit: usize) -> StoreResult<ScanPage>;
    /// How many records a scan would return (may be an estimate; used for progress bars).
    async fn count(&self, event: Option<EventId>) -> StoreResult<u64>;
    /// Every record of one event, in no particular order: what the host's insights and
    /// `inspect --bursts` read (design §7). Never on the write path. The default pages
    /// through [`scan`](Self::scan); an adapter that can read the event's parts in parallel
    /// does so.
    async fn event_records(&self, event: EventId) -> StoreResult<Vec<Record>> {
        let mut records = Vec::new();
        let mut after = None;
        loop {
            let page = self.scan(Some(event), after, crate::limits::SCAN_PAGE_RECORDS_MAX).await?;
            records.extend(page.records);
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(records),
            }
        }
    }
}

/// One ledger row as the feed yields it: its sequence number, and the record or, for a
/// stored row that does not read as one, why not (such a row is quarantined, not retried).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEntry {
    pub seq: u64,
    pub record: Result<Record, String>,
}

/// A ledger row the aggregator set aside instead of folding, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    pub seq: u64,
    /// The record's id, event, question and kind as stored (absent when unreadable).
    pub record: Option<String>,
    pub event: Option<String>,
    pub question: Option<String>,
    pub kind: Option<String>,
    pub reason: String,
    /// When it was set aside (Unix seconds).
    pub at_unix: u64,
    /// An operator has seen it (`quarantine --ack`); until then `/healthz` reports it.
    pub acknowledged: bool,
}

/// Where a single-process aggregator reads the ledger in append order (embedded mode; on
/// AWS the stream and the queue play this part, and the queue's dead-letter queue holds
/// what could not be folded).
#[async_trait]
pub trait LedgerFeed: Send + Sync {
    /// Up to `limit` rows appended after sequence number `seq`, in append order.
    async fn read_after(&self, seq: u64, limit: usize) -> StoreResult<Vec<FeedEntry>>;
    /// Sets the row `seq` aside with `reason` and moves the projection's cursor to it, in
    /// one commit. The caller has folded every row before it.
    async fn quarantine(&self, seq: u64, reason: &str, now_unix: u64) -> StoreResult<()>;
    /// Every row set aside, oldest first.
    async fn quarantined(&self) -> StoreResult<Vec<Quarantined>>;
    /// Marks every row set aside as seen by an operator; returns how many were new.
    async fn acknowledge_quarantined(&self) -> StoreResult<u64>;
}

/// The outcome of committing a [`ProjectionChange`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    Applied,
    /// A voter's stored state was no longer what the change expected: re-read and re-plan.
    Conflict,
}

/// The aggregator's side of the projection.
#[async_trait]
pub trait ProjectionStore: Send + Sync {
    /// The stored states of these voters; missing keys have none yet.
    async fn voters(&self, keys: &[(QuestionId, VoterId)]) -> StoreResult<VoterStates>;
    /// Commits a change atomically: all voter conditions hold and everything is applied, or
    /// nothing is and the answer is `Conflict`. (DynamoDB: atomic up to 99 voter writes, one
    /// transaction; a larger change commits in several, and on a conflict the re-plan skips
    /// the voters already written, so each record still counts once.) `cursor` (embedded feeds only) is the ledger
    /// sequence number the projection has then caught up to, advanced in the same commit.
    async fn commit(&self, change: &ProjectionChange, cursor: Option<u64>) -> StoreResult<Commit>;
    /// Reads the voter states `plan` touches, resolves it and commits the change as one
    /// atomic step, returning the change committed; `cursor` as for [`commit`](Self::commit).
    /// Only a store whose sole writer is this process can, as nothing can slip in between the
    /// read and the write; the others answer `None` and the caller reads, resolves and
    /// commits conditionally itself (the default).
    async fn resolve_and_commit(
        &self,
        _plan: &BatchPlan,
        _cursor: Option<u64>,
    ) -> StoreResult<Option<ProjectionChange>> {
        Ok(None)
    }
    /// The feed position the projection has caught up to (0 when none).
    async fn cursor(&self) -> StoreResult<u64>;
    /// Every question of the projection (or of one event), with text where known, for replay.
    async fn questions(&self, event: Option<EventId>) -> StoreResult<Vec<QuestionState>>;
    /// Replaces the projection (or one event's part of it) with a fold's result.
    async fn replace(&self, replacement: &Replacement<'_>) -> StoreResult<()>;
    /// Every event's own state the projection holds (or one event's), for replay; events
    /// without settings or co-host links are absent. The default is for stores that keep none.
    async fn event_states(&self, event: Option<EventId>) -> StoreResult<Vec<EventState>> {
        let _ = event;
        Ok(Vec::new())
    }
}

/// One voter's own part of an event (see [`ProjectionReader::voter_view`]), each list in
/// question id order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VoterView {
    pub asked: Vec<QuestionId>,
    pub voted: Vec<QuestionId>,
}

/// A fold's result to write over the projection, or over one event's part of it: the
/// questions and the voter states. Built only by [`Replacement::new`], which applies
/// `rules::check_replacement`, so no adapter can be handed one that reaches outside its scope.
#[derive(Debug, Clone, Copy)]
pub struct Replacement<'a> {
    event: Option<EventId>,
    questions: &'a [QuestionState],
    voters: &'a [((QuestionId, VoterId), VoterState)],
    events: &'a [EventState],
}

impl<'a> Replacement<'a> {
    /// The replacement of one event's projection (`Some`) or of all of it (`None`); refused
    /// (`StoreError::Rejected`) if it holds a question of another event or a voter state of
    /// a question it does not hold.
    pub fn new(
        event: Option<EventId>,
        questions: &'a [QuestionState],
        voters: &'a [((QuestionId, VoterId), VoterState)],
    ) -> StoreResult<Self> {
        crate::rules::check_replacement(event, questions, voters)?;
        Ok(Self { event, questions, voters, events: &[] })
    }

    /// The same replacement, also replacing the events' own states (settings, co-host
    /// links) in its scope; refused if one is of another event.
    pub fn with_events(self, events: &'a [EventState]) -> StoreResult<Self> {
        if let (Some(scope), Some(other)) = (self.event, events.iter().find(|e| Some(e.event) != self.event)) {
            return Err(StoreError::Rejected(format!("event state of {} in the replacement of {scope}", other.event)));
        }
        Ok(Self { events, ..self })
    }

    /// The events' own states to write (an empty slice removes those in scope).
    pub fn events(&self) -> &'a [EventState] {
        self.events
    }

    /// The event whose part is replaced (`None`: the whole projection).
    pub fn event(&self) -> Option<EventId> {
        self.event
    }

    pub fn questions(&self) -> &'a [QuestionState] {
        self.questions
    }

    pub fn voters(&self) -> &'a [((QuestionId, VoterId), VoterState)] {
        self.voters
    }
}

/// The read side of the projection, for query (lists, texts) and ingest (does it exist).
#[async_trait]
pub trait ProjectionReader: Send + Sync {
    /// One event's questions with their counters: the `top` index, every page of it.
    async fn event_questions(&self, event: EventId) -> StoreResult<Vec<QuestionStanding>>;
    async fn question(&self, id: QuestionId) -> StoreResult<Option<QuestionStanding>>;
    /// The texts of those of `ids` that exist (missing ones are simply absent).
    async fn question_texts(&self, ids: &[QuestionId]) -> StoreResult<Vec<QuestionText>>;
    /// What one voter did in one event, as the projection holds it: the questions they asked
    /// and those they vote up (a guest's own view, `GET /api/event/{eid}/mine`). Both adapters
    /// answer it; the default is for stand-ins that keep no voter states.
    /// The event's own state: its settings and co-host links (empty when it has none). The
    /// default is for stand-ins that keep none.
    async fn event_state(&self, event: EventId) -> StoreResult<EventState> {
        Ok(EventState::new(event))
    }
    /// Who asked each of `ids` (those whose `asked` record was folded; others are absent):
    /// a few questions' askers, cheaper than a voter's whole view. The default is for
    /// stand-ins that keep no askers.
    async fn askers(&self, ids: &[QuestionId]) -> StoreResult<Vec<(QuestionId, VoterId)>> {
        let _ = ids;
        Ok(Vec::new())
    }
    /// The written answers of an event's questions (an empty answer is none).
    async fn replies(&self, event: EventId) -> StoreResult<Vec<(QuestionId, String)>> {
        let _ = event;
        Ok(Vec::new())
    }
    async fn voter_view(&self, event: EventId, voter: VoterId) -> StoreResult<VoterView> {
        let _ = (event, voter);
        Err(StoreError::Unavailable("this store keeps no voter states".into()))
    }
}
