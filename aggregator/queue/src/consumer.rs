//! A long-polling queue consumer: the aggregator Lambda's event source mapping, in-process,
//! for `serve --backend dynamodb`. Each round receives up to [`BATCH_MESSAGES_MAX`]
//! messages, folds them with [`handle_batch`](crate::handle_batch), sends the throttled ones
//! to the queue again as new messages ([`Requeue`]), deletes the ones that succeeded or were
//! sent again and leaves the failed ones to reappear after the visibility timeout.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use aws_lambda_events::event::sqs::SqsMessage;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use aws_sdk_sqs::Client;
use ledger::ports::ProjectionStore;
use ledger::EventId;
use tokio::sync::{broadcast, watch};

use crate::requeue::Requeue;
use crate::BatchOutcome;

/// Most messages folded as one batch (several receives of at most 10 each).
pub const BATCH_MESSAGES_MAX: usize = 100;
/// Most messages one ReceiveMessage returns (SQS API reference: MaxNumberOfMessages ≤ 10).
pub const RECEIVE_MESSAGES_MAX: i32 = 10;
/// Most entries in one DeleteMessageBatch (SQS API reference: 10).
pub const DELETE_BATCH_MAX: usize = 10;
/// Pause after an empty round when not long-polling (`wait_s` 0).
const SHORT_POLL_PAUSE_MS: u64 = 50;
/// Pause after the queue could not be read.
const RETRY_PAUSE_MS: u64 = 500;

#[derive(Clone)]
pub struct Consumer {
    pub sqs: Client,
    pub queue_url: String,
    pub store: Arc<dyn ProjectionStore>,
    /// Long-poll wait of the first receive of a round (SQS allows 0..=20 s).
    pub wait_s: i32,
    /// Receives each event whose projection changed (an in-process query role's list cache
    /// and live pushes), when the consumer runs beside one.
    pub changes: Option<broadcast::Sender<EventId>>,
}

impl Consumer {
    /// Runs rounds until `shutdown` turns true.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            tokio::select! {
                result = self.round() => match result {
                    // Without a long poll an empty queue would be asked again at once.
                    Ok(outcome) if self.wait_s == 0 && outcome == BatchOutcome::default() => {
                        tokio::time::sleep(Duration::from_millis(SHORT_POLL_PAUSE_MS)).await;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!(error = %format!("{e:#}"), "queue consumer round failed; retrying");
                        tokio::time::sleep(Duration::from_millis(RETRY_PAUSE_MS)).await;
                    }
                },
                _ = shutdown.changed() => return,
            }
        }
    }

    /// One round: receive, fold, delete what succeeded. Returns what the batch did (empty
    /// when the queue had nothing).
    pub async fn round(&self) -> anyhow::Result<BatchOutcome> {
        let mut messages = Vec::new();
        let mut wait = self.wait_s;
        while messages.len() < BATCH_MESSAGES_MAX {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(RECEIVE_MESSAGES_MAX)
                .wait_time_seconds(wait)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send()
                .await
                .context("receive messages")?;
            let got = out.messages.unwrap_or_default();
            let full = got.len() as i32 == RECEIVE_MESSAGES_MAX;
            messages.extend(got.into_iter().map(to_event_message));
            if !full {
                break;
            }
            // More may be waiting: take them now, without waiting, into the same batch.
            wait = 0;
        }
        if messages.is_empty() {
            return Ok(BatchOutcome::default());
        }
        let mut outcome = crate::handle_batch(self.store.as_ref(), &messages).await;
        if !outcome.requeue.is_empty() {
            let requeue = Requeue { sqs: self.sqs.clone(), queue_url: self.queue_url.clone() };
            let throttled: Vec<&SqsMessage> = messages
                .iter()
                .filter(|m| m.message_id.as_ref().is_some_and(|id| outcome.requeue.contains(id)))
                .collect();
            // Those that could not be sent again are left to come back as failed ones.
            let unsent = requeue.send(&throttled).await;
            outcome.response_failures.extend(unsent);
        }
        if let Some(changes) = &self.changes {
            for &event in &outcome.events {
                // No subscriber is fine: nobody is watching that event.
                let _ = changes.send(event);
            }
        }
        let done: Vec<_> = messages
            .iter()
            .filter(|m| !outcome.response_failures.iter().any(|f| Some(f) == m.message_id.as_ref()))
            .filter_map(|m| m.receipt_handle.clone())
            .collect();
        for chunk in done.chunks(DELETE_BATCH_MAX) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, handle)| {
                    DeleteMessageBatchRequestEntry::builder().id(i.to_string()).receipt_handle(handle).build()
                })
                .collect::<Result<Vec<_>, _>>()
                .context("build a delete request")?;
            let out = self
                .sqs
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .context("delete handled messages")?;
            // A message left undeleted comes back and is folded again: harmless, just work.
            for failed in out.failed {
                tracing::warn!(id = failed.id, code = failed.code, "could not delete a handled message");
            }
        }
        Ok(outcome)
    }
}

/// An SQS API message as the Lambda event carries it, so both hosts run the same handler.
fn to_event_message(m: aws_sdk_sqs::types::Message) -> SqsMessage {
    let attributes = m.attributes.unwrap_or_default().into_iter().map(|(k, v)| (k.as_str().to_owned(), v)).collect();
    // Non-exhaustive in the events crate: built from its default, field by field.
    let mut message = SqsMessage::default();
    message.message_id = m.message_id;
    message.receipt_handle = m.receipt_handle;
    message.body = m.body;
    message.md5_of_body = m.md5_of_body;
    message.md5_of_message_attributes = m.md5_of_message_attributes;
    message.attributes = attributes;
    message.event_source = Some("aws:sqs".to_owned());
    message
}
