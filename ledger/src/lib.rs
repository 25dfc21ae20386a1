//! The vote ledger's core, shared by every role and every adapter: the ids, the immutable
//! records ingest appends, the one fold that turns records into per-question state, the
//! ranking the lists are served in, the named limits, and the storage ports the adapters
//! implement. Nothing here does IO or reads a clock: time comes from record ids (ULIDs),
//! and "now" is passed in by the caller where ranking needs it.

pub mod fold;
pub mod history;
pub mod ids;
pub mod limits;
pub mod ndjson;
pub mod ports;
pub mod rank;
pub mod record;
pub mod retention;
pub mod rules;
pub mod secret;

pub use fold::{
    lww, lww_into, vote_transition, AskedView, BatchPlan, EventState, Projection, ProjectionChange, QuestionChange,
    QuestionStanding, QuestionState, Settings, Stamped, VoterChange, VoterState, VoterStates,
};
pub use ids::{EventId, IdError, QuestionId, RecordId, VoterId};
pub use record::{event_subject, Asked, Asking, Moderation, Record, RecordBody};
pub use retention::Retention;
