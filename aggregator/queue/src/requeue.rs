//! Sending throttled messages back to the queue as new messages: DynamoDB throttling says
//! nothing against a record, so it must not count towards the dead-letter queue, as a
//! redelivery of the same message would (every receive counts towards `maxReceiveCount`).
//! A new message with the same body starts from zero receives; it arrives after
//! [`REQUEUE_DELAY_S`], when the partition has had time to recover. The fold ignores
//! duplicates, so a message both sent again and (after a crash) redelivered is harmless.

use aws_lambda_events::event::sqs::SqsMessage;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use aws_sdk_sqs::Client;

/// How long a message sent back waits in the queue before it can be received (seconds).
pub const REQUEUE_DELAY_S: i32 = 10;
/// Most entries in one SendMessageBatch (SQS API reference: 10).
pub const SEND_BATCH_MAX: usize = 10;

/// The queue the aggregator consumes, to send throttled messages to again.
#[derive(Debug, Clone)]
pub struct Requeue {
    pub sqs: Client,
    pub queue_url: String,
}

impl Requeue {
    /// Sends each message's body to the queue as a new message, delayed by
    /// [`REQUEUE_DELAY_S`]; returns the ids of the messages that could not be sent (the
    /// caller reports those failed, so the queue redelivers them instead).
    pub async fn send(&self, messages: &[&SqsMessage]) -> Vec<String> {
        let mut unsent = Vec::new();
        for chunk in messages.chunks(SEND_BATCH_MAX) {
            let ids: Vec<String> = chunk.iter().map(|m| m.message_id.clone().unwrap_or_default()).collect();
            let entries: Result<Vec<_>, _> = chunk
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(m.body.clone().unwrap_or_default())
                        .delay_seconds(REQUEUE_DELAY_S)
                        .build()
                })
                .collect();
            let entries = match entries {
                Ok(entries) => entries,
                Err(e) => {
                    tracing::error!(error = %e, "could not build a request to send messages again");
                    unsent.extend(ids);
                    continue;
                }
            };
            match self.sqs.send_message_batch().queue_url(&self.queue_url).set_entries(Some(entries)).send().await {
                Ok(out) => {
                    metrics::counter!("aggregator_requeued_messages_total").increment(out.successful.len() as u64);
                    for failed in out.failed {
                        tracing::warn!(id = failed.id, code = failed.code, "could not send a throttled message again");
                        if let Some(id) = failed.id.parse::<usize>().ok().and_then(|i| ids.get(i)) {
                            unsent.push(id.clone());
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "could not send throttled messages again");
                    unsent.extend(ids);
                }
            }
        }
        unsent
    }
}
