//! The embedded aggregator: a task that tails the ledger by sequence number and folds what
//! it finds through [`apply_batch`](crate::apply_batch), advancing its cursor in the same
//! commit as the projection, so a crash at any point neither loses nor doubles a record.
//!
//! A batch that fails because the store is unavailable (busy, disk full) is retried until
//! it goes through: those records are acknowledged and must be folded. A batch that fails
//! in any other way (a record the store refuses, a row that does not read as a record) is
//! a poison batch: after [`POISON_ATTEMPTS_MAX`] attempts its records are folded one at a
//! time and each one that still fails is set aside with its reason
//! ([`LedgerFeed::quarantine`]), so every other record, of every event, keeps flowing.

use backon::{BackoffBuilder, ExponentialBuilder};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ledger::ports::{FeedEntry, LedgerFeed, ProjectionStore, StoreError};
use ledger::EventId;
use tokio::sync::{broadcast, watch, Notify};

/// Most records folded in one batch. Larger than a queue's batch (`BATCH_RECORDS_MAX`):
/// when the tailer is behind, one batch's voters share more pages and each page is written
/// once per batch (catch-up over 500,000 records: 4,096 -> 16,384 took 58,000 -> 130,000
/// records/s, measured; 65,536 gained ~20 % more for twice the memory and a longer wait for
/// the votes of the batch to show). Idle, a batch is whatever arrived since the last one.
pub const TAIL_BATCH_RECORDS_MAX: usize = 16_384;
/// How long to wait before trying again after the store failed; doubles up to the max.
const RETRY_PAUSE_MS: u64 = 200;
const RETRY_PAUSE_MS_MAX: u64 = 5_000;
/// Upper bound on how long an idle tailer sleeps without a wake-up (belt and braces).
const IDLE_POLL_MS: u64 = 500;
/// How many times a batch that fails other than by unavailability is tried whole before
/// its records are folded one by one and the failing ones set aside.
pub const POISON_ATTEMPTS_MAX: u32 = 3;

/// The pauses between tries while the store keeps failing: from [`RETRY_PAUSE_MS`] doubling
/// to [`RETRY_PAUSE_MS_MAX`], without end (the aggregator never gives up; `/healthz` reports it).
fn retry_pauses() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(RETRY_PAUSE_MS))
        .with_max_delay(Duration::from_millis(RETRY_PAUSE_MS_MAX))
        .without_max_times()
        .build()
}

/// The aggregator is failing: since when (the first failure in a row), and the last error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trouble {
    pub since: Instant,
    pub error: String,
}

pub struct Tailer {
    pub feed: Arc<dyn LedgerFeed>,
    pub store: Arc<dyn ProjectionStore>,
    /// Signalled by the ledger writer after each commit.
    pub appended: Arc<Notify>,
    /// Receives each event whose projection changed.
    pub changes: broadcast::Sender<EventId>,
    /// The cursor after each applied batch (for lag metrics and for waiting in tests).
    pub caught_up: watch::Sender<u64>,
    /// `Some` while the latest attempt failed (for `/healthz`), `None` once a batch went through.
    pub trouble: watch::Sender<Option<Trouble>>,
}

/// What one [`Tailer::step`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing after the cursor.
    Idle,
    /// The cursor moved (records folded, possibly some set aside); these events changed.
    Advanced { cursor: u64, events: Vec<EventId>, quarantined: usize },
    /// Nothing moved; try again later.
    Failed(String),
}

/// The tailer's position and how often the batch at it has failed.
#[derive(Debug, Clone, Default)]
pub struct TailState {
    pub cursor: u64,
    poison_attempts: u32,
}

impl TailState {
    pub fn at(cursor: u64) -> Self {
        Self { cursor, poison_attempts: 0 }
    }
}

impl Tailer {
    /// Reads the next batch after `state.cursor` and folds it (see the module's rules).
    pub async fn step(&self, state: &mut TailState, now_unix: u64) -> Step {
        let batch = match self.feed.read_after(state.cursor, TAIL_BATCH_RECORDS_MAX).await {
            Ok(b) => b,
            Err(e) => return Step::Failed(format!("cannot read the ledger: {e}")),
        };
        if batch.is_empty() {
            return Step::Idle;
        }
        // Fold up to the first row that does not read as a record; that row is set aside.
        let readable = batch.iter().position(|e| e.record.is_err()).unwrap_or(batch.len());
        if readable == 0 {
            let FeedEntry { seq, record } = &batch[0];
            let reason = format!("unreadable ledger row: {}", record.as_ref().err().map_or("", String::as_str));
            return match self.set_aside(*seq, &reason, now_unix).await {
                Ok(()) => {
                    state.cursor = *seq;
                    state.poison_attempts = 0;
                    Step::Advanced { cursor: *seq, events: Vec::new(), quarantined: 1 }
                }
                Err(e) => Step::Failed(format!("cannot set row {seq} aside: {e}")),
            };
        }
        let entries = &batch[..readable];
        let records: Vec<_> = entries.iter().filter_map(|e| e.record.clone().ok()).collect();
        let last = entries[readable - 1].seq;
        match crate::apply_batch(self.store.as_ref(), &records, Some(last)).await {
            Ok(applied) => {
                state.cursor = last;
                state.poison_attempts = 0;
                Step::Advanced { cursor: last, events: applied.events.into_iter().collect(), quarantined: 0 }
            }
            Err(StoreError::Unavailable(e)) => Step::Failed(format!("store unavailable: {e}")),
            Err(e) => {
                state.poison_attempts += 1;
                if state.poison_attempts < POISON_ATTEMPTS_MAX {
                    return Step::Failed(format!(
                        "batch after {} failed (attempt {}): {e}",
                        state.cursor, state.poison_attempts
                    ));
                }
                tracing::warn!(after = state.cursor, records = records.len(), error = %e, "poison batch: folding its records one by one");
                self.isolate(state, entries, now_unix).await
            }
        }
    }

    /// Folds `entries` one at a time, setting aside each one that fails other than by
    /// unavailability. Stops (keeping the progress made) at the first unavailability.
    async fn isolate(&self, state: &mut TailState, entries: &[FeedEntry], now_unix: u64) -> Step {
        let mut events = std::collections::BTreeSet::new();
        let mut quarantined = 0;
        let start = state.cursor;
        for entry in entries {
            let Ok(record) = &entry.record else { break };
            match crate::apply_batch(self.store.as_ref(), std::slice::from_ref(record), Some(entry.seq)).await {
                Ok(applied) => events.extend(applied.events),
                Err(StoreError::Unavailable(e)) => {
                    if state.cursor == start {
                        return Step::Failed(format!("store unavailable: {e}"));
                    }
                    break;
                }
                Err(e) => {
                    if let Err(q) = self.set_aside(entry.seq, &e.to_string(), now_unix).await {
                        if state.cursor == start {
                            return Step::Failed(format!("cannot set row {} aside: {q}", entry.seq));
                        }
                        break;
                    }
                    quarantined += 1;
                }
            }
            state.cursor = entry.seq;
        }
        state.poison_attempts = 0;
        Step::Advanced { cursor: state.cursor, events: events.into_iter().collect(), quarantined }
    }

    async fn set_aside(&self, seq: u64, reason: &str, now_unix: u64) -> Result<(), StoreError> {
        self.feed.quarantine(seq, reason, now_unix).await?;
        metrics::counter!("aggregator_quarantined_total").increment(1);
        tracing::error!(seq, reason, "ledger row set aside: it cannot be folded (see `wewerewondering quarantine`)");
        Ok(())
    }

    /// Runs until `shutdown` turns true, then folds what is committed and returns (or
    /// returns at once if the store is failing: the records stay for the next start).
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let cursor = loop {
            match self.store.cursor().await {
                Ok(c) => break c,
                Err(e) => {
                    tracing::error!(error = %e, "aggregator cannot read its cursor; retrying");
                    self.report_trouble(format!("cannot read the cursor: {e}"));
                    tokio::time::sleep(Duration::from_millis(RETRY_PAUSE_MS)).await;
                }
            }
        };
        let mut state = TailState::at(cursor);
        self.caught_up.send_replace(cursor);
        let mut pauses = retry_pauses();
        loop {
            // Register interest before reading so an append during the read is not missed.
            let woken = self.appended.notified();
            match self.step(&mut state, ledger::retention::now_unix()).await {
                Step::Advanced { cursor, events, .. } => {
                    pauses = retry_pauses();
                    self.trouble.send_if_modified(|t| t.take().is_some());
                    // Announce first: whoever waits for the cursor must find the caches
                    // of the changed events already invalidated.
                    for event in events {
                        // No subscribers is fine: nobody is watching that event.
                        let _ = self.changes.send(event);
                    }
                    self.caught_up.send_replace(cursor);
                    // Even when shutting down: fold everything committed before stopping
                    // (the next step that finds nothing returns).
                    continue;
                }
                Step::Failed(error) => {
                    tracing::error!(%error, "aggregator batch failed; retrying");
                    self.report_trouble(error);
                    if *shutdown.borrow() {
                        return;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(pauses.next().unwrap_or(Duration::from_millis(RETRY_PAUSE_MS_MAX))) => {}
                        _ = shutdown.changed() => {}
                    }
                    continue;
                }
                Step::Idle => {
                    self.trouble.send_if_modified(|t| t.take().is_some());
                }
            }
            if *shutdown.borrow() {
                return;
            }
            tokio::select! {
                _ = woken => {}
                _ = shutdown.changed() => {}
                _ = tokio::time::sleep(Duration::from_millis(IDLE_POLL_MS)) => {}
            }
        }
    }

    fn report_trouble(&self, error: String) {
        self.trouble.send_modify(|t| match t {
            Some(t) => t.error = error,
            None => *t = Some(Trouble { since: Instant::now(), error }),
        });
    }
}

#[cfg(test)]
mod pause_tests {
    use super::*;

    #[test]
    fn retry_pauses_double_from_the_first_to_the_cap_and_never_run_out() {
        let pauses: Vec<u64> = retry_pauses().take(12).map(|d| d.as_millis() as u64).collect();
        assert_eq!(&pauses[..6], &[200, 400, 800, 1_600, 3_200, 5_000]);
        assert!(pauses[6..].iter().all(|&p| p == RETRY_PAUSE_MS_MAX), "{pauses:?}");
    }
}
