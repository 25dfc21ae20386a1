//! The ingest role as a Lambda: `ingest::router` (the very router `serve` mounts) over the
//! DynamoDB adapter, hosted by `lambda_http` behind an API Gateway HTTP API (payload 2.0).
//! Nothing here decides anything about a request; it only wires ports and configuration.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use http_edge::ClientAddr;
use ingest::{IdMinter, IngestConfig, IngestState, RateLimits};
use lambda_http::request::RequestContext;
use ledger_dynamodb::DynamoStore;

/// Environment variable with the region stamped on records (Lambda sets `AWS_REGION`).
pub const REGION_ENV: &str = "AWS_REGION";

/// The ingest configuration of a Lambda: records stamped with the function's region, the
/// retention stored with the deployment (validated when the store opened), a `Secure`
/// voter cookie (API Gateway serves HTTPS only), and the Lambda's rate limits.
pub fn config_for(store: &DynamoStore) -> IngestConfig {
    IngestConfig {
        region: std::env::var(REGION_ENV).unwrap_or_else(|_| "unknown".to_owned()),
        retention: store.retention(),
        cookie_secure: true,
        rate_limits: lambda_rate_limits(),
    }
}

/// The rate limits a Lambda applies itself: only the per-voter ask limit. The limits per
/// client address are the WAF's rate-based rule on the CloudFront distribution
/// (`infra/template.yaml`), for two reasons: behind CloudFront, API Gateway's `sourceIp` is
/// the CloudFront edge's address, shared by every viewer of that edge, not the guest's;
/// and each Lambda instance would count only the requests it happens to serve. The WAF sees
/// the viewer's address and counts across the whole distribution.
pub fn lambda_rate_limits() -> RateLimits {
    RateLimits { voter_ask: RateLimits::default().voter_ask, ..RateLimits::OFF }
}

/// The router the Lambda serves: the role, with each request's [`ClientAddr`] taken from
/// API Gateway's request context.
pub fn app(store: Arc<DynamoStore>, config: IngestConfig) -> Router {
    let router = ingest::router(IngestState {
        events: store.clone(),
        ledger: store.clone(),
        projection: store,
        config,
        ids: Arc::new(IdMinter::new()),
    });
    with_client_addr(router)
}

/// `router` with each request's [`ClientAddr`] inserted from API Gateway's request context.
pub fn with_client_addr(router: Router) -> Router {
    router.layer(middleware::from_fn(client_addr_from_context))
}

/// The address API Gateway saw (`requestContext.http.sourceIp`), if the request has one.
pub fn source_ip(request: &Request) -> Option<IpAddr> {
    match request.extensions().get::<RequestContext>()? {
        RequestContext::ApiGatewayV2(context) => context.http.source_ip.as_deref()?.parse().ok(),
        // Only the HTTP API's payload is enabled (the `apigw_http` feature); the enum is open.
        _ => None,
    }
}

/// Inserts the request's [`ClientAddr`] (from [`source_ip`]) for the role's handlers.
async fn client_addr_from_context(mut request: Request, next: Next) -> Response {
    if let Some(ip) = source_ip(&request) {
        request.extensions_mut().insert(ClientAddr(ip));
    }
    next.run(request).await
}
