//! The aggregator Lambda: an SQS event source mapping (with `ReportBatchItemFailures`) hands
//! it batches of ledger stream records; it folds them into the regional projection and
//! reports only the failed messages. Tables come from `EVENTS_TABLE`, `LEDGER_TABLE`,
//! `QUESTIONS_TABLE`, `VOTERS_TABLE`; the retention stamped on the projection is the one
//! stored in the deployment (read at start; this role may not write `events`, so until the
//! ingest Lambda has stored one it assumes `RETENTION_DAYS`, which the two share).
//! Messages whose records DynamoDB throttled are sent again to the queue named by
//! `LEDGER_QUEUE_URL` as new messages, so throttling never counts towards the DLQ.

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use ledger_dynamodb::DynamoStore;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_logging::init();
    let store = Arc::new(DynamoStore::from_env_read_only(None).await?);
    let requeue = match std::env::var(aggregator_queue::queue::QUEUE_URL_ENV) {
        Ok(queue_url) if !queue_url.is_empty() => {
            let config = ledger_dynamodb::sdk_config(None).await;
            Some(aggregator_queue::requeue::Requeue {
                sqs: aggregator_queue::aws_sdk_sqs::Client::new(&config),
                queue_url,
            })
        }
        // Without it (not in the template) throttled messages are redelivered instead.
        _ => None,
    };
    let requeue = Arc::new(requeue);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let (store, requeue) = (store.clone(), requeue.clone());
        async move {
            Ok::<SqsBatchResponse, Error>(
                aggregator_queue::handle(store.as_ref(), requeue.as_ref().as_ref(), event.payload).await,
            )
        }
    }))
    .await
}
