//! The query Lambda binary: table names from `EVENTS_TABLE`, `QUESTIONS_TABLE` (and the
//! others, unused here), list `max-age`s from `GUEST_MAX_AGE_S` / `HOST_MAX_AGE_S`. The
//! retention is read from the deployment (this role never writes `events`, so a missing one
//! is assumed from `RETENTION_DAYS`, not stored). The values of the CloudFront origin header
//! it accepts come from `ORIGIN_VERIFY_SECRETS` (required).

use std::sync::Arc;

use ledger_dynamodb::DynamoStore;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_logging::init();
    let origin = http_edge::OriginVerify::from_env()?;
    let store = Arc::new(DynamoStore::from_env_read_only(None).await?);
    let config = query_lambda::config_from_env()?;
    // Behind the origin check: a request that did not come through CloudFront (which adds
    // the secret header) is answered 403 and never reaches the role.
    lambda_http::run(origin.guard(query_lambda::app(store, config))).await
}
