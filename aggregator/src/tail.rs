//! The embedded aggregator: a task that tails the ledger by sequence number and folds what
//! it finds through [`apply_batch`](crate::apply_batch), advancing its cursor in the same
//! commit as the projection, so a crash at any point neither loses nor doubles a record.

use std::sync::Arc;
use std::time::Duration;

use ledger::limits::BATCH_RECORDS_MAX;
use ledger::ports::{LedgerFeed, ProjectionStore};
use ledger::EventId;
use tokio::sync::{broadcast, watch, Notify};

/// How long to wait before trying again after the store failed.
const RETRY_PAUSE_MS: u64 = 200;
/// Upper bound on how long an idle tailer sleeps without a wake-up (belt and braces).
const IDLE_POLL_MS: u64 = 500;

pub struct Tailer {
    pub feed: Arc<dyn LedgerFeed>,
    pub store: Arc<dyn ProjectionStore>,
    /// Signalled by the ledger writer after each commit.
    pub appended: Arc<Notify>,
    /// Receives each event whose projection changed.
    pub changes: broadcast::Sender<EventId>,
    /// The cursor after each applied batch (for lag metrics and for waiting in tests).
    pub caught_up: watch::Sender<u64>,
}

impl Tailer {
    /// Runs until `shutdown` turns true, then finishes the batch at hand and returns.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut cursor = loop {
            match self.store.cursor().await {
                Ok(c) => break c,
                Err(e) => {
                    tracing::error!(error = %e, "aggregator cannot read its cursor; retrying");
                    tokio::time::sleep(Duration::from_millis(RETRY_PAUSE_MS)).await;
                }
            }
        };
        self.caught_up.send_replace(cursor);
        loop {
            // Register interest before reading so an append during the read is not missed.
            let woken = self.appended.notified();
            let batch = match self.feed.read_after(cursor, BATCH_RECORDS_MAX).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "aggregator cannot read the ledger; retrying");
                    tokio::time::sleep(Duration::from_millis(RETRY_PAUSE_MS)).await;
                    continue;
                }
            };
            if let Some(&(last, _)) = batch.last() {
                let records: Vec<_> = batch.into_iter().map(|(_, r)| r).collect();
                match crate::apply_batch(self.store.as_ref(), &records, Some(last)).await {
                    Ok(applied) => {
                        cursor = last;
                        // Announce first: whoever waits for the cursor must find the caches
                        // of the changed events already invalidated.
                        for event in applied.events {
                            // No subscribers is fine: nobody is watching that event.
                            let _ = self.changes.send(event);
                        }
                        self.caught_up.send_replace(cursor);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "aggregator batch failed; retrying");
                        tokio::time::sleep(Duration::from_millis(RETRY_PAUSE_MS)).await;
                    }
                }
                if *shutdown.borrow() {
                    return;
                }
                continue;
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
}
