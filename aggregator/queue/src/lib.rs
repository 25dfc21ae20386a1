//! The aggregator on AWS. The ledger table's stream reaches an SQS queue through an
//! EventBridge Pipe; each message body is one stream record. [`handle`] folds one batch of
//! such messages with `aggregator::apply_batch` (the same function the embedded tailer
//! calls) and answers with an `SqsBatchResponse` naming only the messages that failed, so
//! the queue redelivers those alone and moves poison messages to its dead-letter queue
//! after its `maxReceiveCount`.
//!
//! Hosts of [`handle`]: the Lambda binary (`src/main.rs`, feature `lambda`), and
//! [`consumer::Consumer`], a long-polling loop for `serve --backend dynamodb`. The
//! [`pipe::Pipe`] module is a local stand-in for the EventBridge Pipe (stream → queue in the
//! same message shape), for tests and for running without the managed Pipe.

pub mod consumer;
pub mod pipe;
pub mod queue;
pub mod requeue;

// The AWS clients this crate's API takes, for hosts that need no other AWS dependency.
pub use {aws_sdk_dynamodbstreams, aws_sdk_sqs, ledger_dynamodb};

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use ledger::ports::ProjectionStore;
use ledger::{EventId, QuestionId, Record};
use ledger_dynamodb::is_throttled;
use ledger_dynamodb::stream::record_from_stream_json;

use crate::requeue::Requeue;

/// How long [`handle_batch`] keeps folding a failed batch question by question; the
/// questions it has not tried by then are handed back to be sent to the queue again, as
/// throttled ones are (under the aggregator Lambda's 30 s timeout, which would otherwise
/// fail the whole batch and count a receive of every message).
pub const QUESTION_BY_QUESTION_BUDGET: Duration = Duration::from_secs(20);

/// What one batch did, beyond the response: for logs, metrics and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchOutcome {
    pub response_failures: Vec<String>,
    /// Messages whose body is not a ledger stream record (reported as failed).
    pub poison: usize,
    /// Messages that carry no record to fold (a TTL `REMOVE`): done, nothing to do.
    pub ignored: usize,
    pub records: usize,
    /// Events whose projection may have changed (for cache invalidation and live pushes).
    pub events: BTreeSet<EventId>,
    /// Messages to send back to the queue as new messages: their records were throttled by
    /// DynamoDB (or not tried within [`QUESTION_BY_QUESTION_BUDGET`]). Nothing is wrong with
    /// them, so they must not count towards the dead-letter queue, as a redelivery would.
    pub requeue: Vec<String>,
}

/// Folds one SQS batch of stream records into the projection; the response names exactly the
/// messages that must come back: unreadable ones, and those of any part whose commit failed.
/// Messages whose records were throttled are sent to the queue again as new messages through
/// `requeue` (and reported as done, so their receives never add up to the dead-letter
/// queue); without `requeue`, or if that send fails, they are reported failed like the rest.
pub async fn handle(store: &dyn ProjectionStore, requeue: Option<&Requeue>, event: SqsEvent) -> SqsBatchResponse {
    let mut outcome = handle_batch(store, &event.records).await;
    let throttled: Vec<&SqsMessage> =
        event.records.iter().filter(|m| m.message_id.as_ref().is_some_and(|id| outcome.requeue.contains(id))).collect();
    let unsent = match requeue {
        Some(requeue) => requeue.send(&throttled).await,
        None => std::mem::take(&mut outcome.requeue),
    };
    outcome.response_failures.extend(unsent);
    // The event types are non-exhaustive: built from their defaults, field by field.
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = outcome
        .response_failures
        .into_iter()
        .map(|item_identifier| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = item_identifier;
            failure
        })
        .collect();
    response
}

/// [`handle`], with the details.
pub async fn handle_batch(store: &dyn ProjectionStore, messages: &[SqsMessage]) -> BatchOutcome {
    let started = Instant::now();
    let mut outcome = BatchOutcome::default();
    // (message id, record) of every readable message.
    let mut readable: Vec<(String, Record)> = Vec::with_capacity(messages.len());
    for message in messages {
        let id = message.message_id.clone().unwrap_or_default();
        let body = message.body.as_deref().unwrap_or("");
        match record_from_stream_json(body) {
            Ok(Some(record)) => readable.push((id, record)),
            Ok(None) => outcome.ignored += 1,
            Err(e) => {
                tracing::error!(message_id = %id, error = %e, "poison message: not a ledger stream record");
                metrics::counter!("aggregator_poison_messages_total").increment(1);
                outcome.poison += 1;
                outcome.response_failures.push(id);
            }
        }
    }
    outcome.records = readable.len();
    if readable.is_empty() {
        return outcome;
    }
    let records: Vec<Record> = readable.iter().map(|(_, r)| r.clone()).collect();
    match aggregator::apply_batch(store, &records, None).await {
        Ok(applied) => {
            tracing::debug!(records = applied.records, voter_writes = applied.voter_writes, "batch applied");
            outcome.events = applied.events;
            return outcome;
        }
        Err(e) => {
            tracing::warn!(error = %e, "batch failed whole; retrying it question by question")
        }
    }
    // Isolate the failure: questions are independent in the fold, so each one's records can
    // be applied alone, and only the messages of questions that still fail come back.
    let mut by_question: BTreeMap<QuestionId, Vec<&(String, Record)>> = BTreeMap::new();
    for entry in &readable {
        by_question.entry(entry.1.question).or_default().push(entry);
    }
    for (question, entries) in by_question {
        let ids = entries.iter().map(|(id, _)| id.clone());
        if started.elapsed() > QUESTION_BY_QUESTION_BUDGET {
            // Not tried: nothing against these records, so they go back as new messages.
            outcome.requeue.extend(ids);
            continue;
        }
        let records: Vec<Record> = entries.iter().map(|(_, r)| r.clone()).collect();
        match aggregator::apply_batch(store, &records, None).await {
            Ok(applied) => outcome.events.extend(applied.events),
            Err(e) if is_throttled(&e) => {
                tracing::warn!(%question, error = %e, "records of a question throttled; sending them to the queue again");
                metrics::counter!("aggregator_throttled_messages_total").increment(entries.len() as u64);
                outcome.requeue.extend(ids);
            }
            Err(e) => {
                tracing::error!(%question, error = %e, "records of a question failed; the queue will redeliver them");
                outcome.response_failures.extend(ids);
            }
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use ledger::ports::{Commit, Replacement, StoreError, StoreResult};
    use ledger::{EventId, ProjectionChange, QuestionState, RecordBody, RecordId, VoterId, VoterStates};
    use ulid::Ulid;

    /// A projection store whose every read fails with `error`.
    struct Failing(StoreError);

    #[async_trait]
    impl ProjectionStore for Failing {
        async fn voters(&self, _: &[(QuestionId, VoterId)]) -> StoreResult<VoterStates> {
            Err(self.0.clone())
        }
        async fn commit(&self, _: &ProjectionChange, _: Option<u64>) -> StoreResult<Commit> {
            Err(self.0.clone())
        }
        async fn cursor(&self) -> StoreResult<u64> {
            Ok(0)
        }
        async fn questions(&self, _: Option<EventId>) -> StoreResult<Vec<QuestionState>> {
            Ok(Vec::new())
        }
        async fn replace(&self, _: &Replacement<'_>) -> StoreResult<()> {
            Ok(())
        }
    }

    fn vote_message(id: &str) -> SqsMessage {
        let record = Record {
            id: RecordId(Ulid::new()),
            event: EventId(Ulid::new()),
            question: QuestionId(Ulid::new()),
            region: "test".into(),
            body: RecordBody::Voted { voter: VoterId::random(), up: true },
        };
        let image = ledger_dynamodb::stream::item_to_json(&ledger_dynamodb::item::record_to_item(
            &record,
            8,
            ledger::Retention::DEFAULT,
        ));
        let mut message = SqsMessage::default();
        message.message_id = Some(id.to_owned());
        message.body = Some(serde_json::json!({"eventName": "INSERT", "dynamodb": {"NewImage": image}}).to_string());
        message
    }

    #[tokio::test]
    async fn throttled_records_go_back_as_new_messages_and_never_count_towards_the_dead_letter_queue() {
        let messages = [vote_message("m1"), vote_message("m2")];
        let throttled = Failing(ledger_dynamodb::throttled("commit voters: still throttled"));
        let outcome = handle_batch(&throttled, &messages).await;
        assert!(outcome.response_failures.is_empty(), "throttling reported as a failure: {outcome:?}");
        let mut requeue = outcome.requeue.clone();
        requeue.sort();
        assert_eq!(requeue, vec!["m1".to_owned(), "m2".to_owned()], "every throttled message is sent again");
        // Without a way to send them again they are reported failed, never dropped.
        let mut event = SqsEvent::default();
        event.records = messages.to_vec();
        let response = handle(&throttled, None, event).await;
        assert_eq!(response.batch_item_failures.len(), 2);

        // Any other store failure is a failure the queue redelivers (and counts).
        let down = Failing(StoreError::Unavailable("connection reset".into()));
        let outcome = handle_batch(&down, &messages).await;
        assert!(outcome.requeue.is_empty(), "{outcome:?}");
        assert_eq!(outcome.response_failures.len(), 2);
    }
}
