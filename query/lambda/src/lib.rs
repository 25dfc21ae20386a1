//! The query role as a Lambda: `query::router` (the very router `serve` mounts) over the
//! DynamoDB adapter, hosted by `lambda_http` behind an API Gateway HTTP API (payload 2.0).
//! API Gateway cannot stream, so there are no live pushes (`/api/live/...` answers 404 and
//! the client polls); lists are cached by CloudFront for their `max-age`.

use std::sync::Arc;

use axum::Router;
use ledger_dynamodb::DynamoStore;
use query::{QueryConfig, QueryState};

/// Environment variables overriding the lists' `max-age` (seconds).
pub const GUEST_MAX_AGE_ENV: &str = "GUEST_MAX_AGE_S";
pub const HOST_MAX_AGE_ENV: &str = "HOST_MAX_AGE_S";

/// The query configuration from the environment; a malformed value is an error.
pub fn config_from_env() -> Result<QueryConfig, String> {
    let mut config = QueryConfig::default();
    for (var, slot) in
        [(GUEST_MAX_AGE_ENV, &mut config.guest_max_age_s), (HOST_MAX_AGE_ENV, &mut config.host_max_age_s)]
    {
        if let Ok(raw) = std::env::var(var) {
            *slot = raw.trim().parse().map_err(|_| format!("{var} must be whole seconds, not {raw:?}"))?;
        }
    }
    Ok(config)
}

/// The router the Lambda serves.
pub fn app(store: Arc<DynamoStore>, config: QueryConfig) -> Router {
    query::router(QueryState {
        events: store.clone(),
        projection: store.clone(),
        ledger: Some(store),
        config,
        live: None,
        metrics: None,
        health: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_ages_come_from_the_environment_and_garbage_is_refused() {
        std::env::set_var(GUEST_MAX_AGE_ENV, "10");
        std::env::set_var(HOST_MAX_AGE_ENV, "3");
        let config = config_from_env().expect("valid values");
        assert_eq!((config.guest_max_age_s, config.host_max_age_s), (10, 3));
        std::env::set_var(HOST_MAX_AGE_ENV, "soon");
        assert!(config_from_env().is_err_and(|e| e.contains(HOST_MAX_AGE_ENV)));
        std::env::remove_var(GUEST_MAX_AGE_ENV);
        std::env::remove_var(HOST_MAX_AGE_ENV);
    }
}
