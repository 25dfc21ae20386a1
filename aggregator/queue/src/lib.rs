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

// The AWS clients this crate's API takes, for hosts that need no other AWS dependency.
pub use {aws_sdk_dynamodbstreams, aws_sdk_sqs, ledger_dynamodb};

use std::collections::{BTreeMap, BTreeSet};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use ledger::ports::ProjectionStore;
use ledger::{EventId, QuestionId, Record};
use ledger_dynamodb::stream::record_from_stream_json;

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
}

/// Folds one SQS batch of stream records into the projection; the response names exactly the
/// messages that must come back: unreadable ones, and those of any part whose commit failed.
pub async fn handle(store: &dyn ProjectionStore, event: SqsEvent) -> SqsBatchResponse {
    let outcome = handle_batch(store, &event.records).await;
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
        let records: Vec<Record> = entries.iter().map(|(_, r)| r.clone()).collect();
        match aggregator::apply_batch(store, &records, None).await {
            Ok(applied) => outcome.events.extend(applied.events),
            Err(e) => {
                tracing::error!(%question, error = %e, "records of a question failed; the queue will redeliver them");
                outcome.response_failures.extend(entries.iter().map(|(id, _)| id.clone()));
            }
        }
    }
    outcome
}
