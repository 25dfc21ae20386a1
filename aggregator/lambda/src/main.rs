//! The aggregator Lambda: an SQS event source mapping (with `ReportBatchItemFailures`) hands
//! it batches of ledger stream records; it folds them into the regional projection and
//! reports only the failed messages. Tables come from `EVENTS_TABLE`, `LEDGER_TABLE`,
//! `QUESTIONS_TABLE`, `VOTERS_TABLE`; the retention stamped on the projection is the one
//! stored in the deployment (read at start; this role may not write `events`, so until the
//! ingest Lambda has stored one it assumes `RETENTION_DAYS`, which the two share).

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use ledger_dynamodb::DynamoStore;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_logging::init();
    let store = Arc::new(DynamoStore::from_env_read_only(None).await?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let store = store.clone();
        async move { Ok::<SqsBatchResponse, Error>(aggregator_queue::handle(store.as_ref(), event.payload).await) }
    }))
    .await
}
