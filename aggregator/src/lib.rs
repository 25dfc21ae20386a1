//! The aggregator role: folds batches of ledger records into the regional projection.
//!
//! [`apply_batch`] is the whole of the role's logic and is host-agnostic: the embedded
//! [`tail::Tailer`] feeds it ledger rows after its cursor, the Lambda feeds it SQS messages.
//! It plans the batch with the fold's [`BatchPlan`], reads the voter states the plan
//! touches, resolves them into a [`ProjectionChange`] and commits that conditionally. If
//! another aggregator committed a touched voter in between, the commit is a conflict and the
//! batch is planned again from fresh state, so the effect is exactly once whatever the
//! delivery order, duplication or number of aggregators. A store with a single writer
//! (SQLite) does the read, the resolve and the commit in one step instead, with no conflict
//! possible and no round trip between them.

pub mod tail;

use std::collections::BTreeSet;
use std::time::Duration;

use ledger::ports::{Commit, ProjectionStore, StoreError};
use ledger::{BatchPlan, EventId, ProjectionChange, Record};

/// How often a batch is planned again after conflicting with another aggregator before the
/// batch is given back as failed (for the queue to redeliver).
pub const CONFLICT_RETRIES_MAX: u32 = 8;
/// First pause after a conflict; doubles each time, with jitter.
const CONFLICT_BACKOFF_MS_FIRST: u64 = 2;

/// What applying a batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// Events whose projection may have changed (for cache invalidation and live pushes).
    pub events: BTreeSet<EventId>,
    pub records: usize,
    /// Voter states written (votes that were newer than what was stored).
    pub voter_writes: usize,
    pub conflicts: u32,
}

/// Folds `records` into the projection. `cursor` is the feed position the projection
/// reaches with this batch (embedded mode), committed together with the change.
pub async fn apply_batch(
    store: &dyn ProjectionStore,
    records: &[Record],
    cursor: Option<u64>,
) -> Result<Applied, StoreError> {
    let plan = BatchPlan::from_records(records);
    if let Some(change) = store.resolve_and_commit(&plan, cursor).await? {
        return Ok(applied(&change, records.len(), 0));
    }
    let keys = plan.voter_keys();
    let mut conflicts = 0;
    loop {
        let stored = store.voters(&keys).await?;
        let change = plan.resolve(&stored);
        if change.is_empty() && cursor.is_none() {
            return Ok(Applied { records: records.len(), ..Applied::default() });
        }
        match store.commit(&change, cursor).await? {
            Commit::Applied => return Ok(applied(&change, records.len(), conflicts)),
            Commit::Conflict if conflicts < CONFLICT_RETRIES_MAX => {
                conflicts += 1;
                let backoff = CONFLICT_BACKOFF_MS_FIRST << conflicts.min(6);
                let jitter = rand::random::<u64>() % (backoff + 1);
                tokio::time::sleep(Duration::from_millis(backoff / 2 + jitter)).await;
            }
            Commit::Conflict => {
                return Err(StoreError::Unavailable(format!(
                    "batch still conflicted after {CONFLICT_RETRIES_MAX} retries"
                )))
            }
        }
    }
}

fn applied(change: &ProjectionChange, records: usize, conflicts: u32) -> Applied {
    metrics::counter!("aggregator_records_total").increment(records as u64);
    metrics::counter!("aggregator_conflicts_total").increment(conflicts as u64);
    Applied {
        events: change.questions.iter().map(|q| q.event).collect(),
        records,
        voter_writes: change.voters.len(),
        conflicts,
    }
}
