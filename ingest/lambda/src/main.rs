//! The ingest Lambda binary: table names from `EVENTS_TABLE`, `LEDGER_TABLE`,
//! `QUESTIONS_TABLE`, `VOTERS_TABLE`; the retention is the deployment's stored one (stored
//! from `RETENTION_DAYS`, or the default, when none is stored yet); the values of the
//! CloudFront origin header it accepts from `ORIGIN_VERIFY_SECRETS` (required).

use std::sync::Arc;

use ledger_dynamodb::DynamoStore;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_logging::init();
    let origin = http_edge::OriginVerify::from_env()?;
    let store = Arc::new(DynamoStore::from_env(None).await?);
    let config = ingest_lambda::config_for(&store);
    // Behind the origin check: a request that did not come through CloudFront (which adds
    // the secret header) is answered 403 and never reaches the role.
    lambda_http::run(origin.guard(ingest_lambda::app(store, config))).await
}
