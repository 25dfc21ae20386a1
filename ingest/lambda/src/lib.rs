//! The ingest role as a Lambda: `ingest::router` (the very router `serve` mounts) over the
//! DynamoDB adapter, hosted by `lambda_http` behind an API Gateway HTTP API (payload 2.0).
//! Nothing here decides anything about a request; it only wires ports and configuration.

use std::sync::Arc;

use axum::Router;
use ingest::{IdMinter, IngestConfig, IngestState};
use ledger_dynamodb::DynamoStore;

/// Environment variable with the region stamped on records (Lambda sets `AWS_REGION`).
pub const REGION_ENV: &str = "AWS_REGION";

/// The ingest configuration of a Lambda: records stamped with the function's region, the
/// retention stored with the deployment (validated when the store opened), and a `Secure`
/// voter cookie (API Gateway serves HTTPS only).
pub fn config_for(store: &DynamoStore) -> IngestConfig {
    IngestConfig {
        region: std::env::var(REGION_ENV).unwrap_or_else(|_| "unknown".to_owned()),
        retention: store.retention(),
        cookie_secure: true,
    }
}

/// The router the Lambda serves.
pub fn app(store: Arc<DynamoStore>, config: IngestConfig) -> Router {
    ingest::router(IngestState {
        events: store.clone(),
        ledger: store.clone(),
        projection: store,
        config,
        ids: Arc::new(IdMinter::new()),
    })
}
