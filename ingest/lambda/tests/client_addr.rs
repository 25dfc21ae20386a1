//! The client address the ingest Lambda's rate limits key on comes from API Gateway's
//! request context (`requestContext.http.sourceIp`), not from a header the client writes.

use axum::routing::post;
use axum::Router;
use http_edge::ClientAddr;
use lambda_http::request::LambdaRequest;
use lambda_http::tower::ServiceExt;
use lambda_http::{Adapter, Context, LambdaEvent};

fn create_event_request() -> LambdaRequest {
    let path = format!("{}/tests/fixtures/create-event.json", env!("CARGO_MANIFEST_DIR"));
    let mut event: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("the fixture")).expect("JSON");
    // A forged header must not count: only API Gateway's own view of the peer does.
    event["headers"]["x-forwarded-for"] = "203.0.113.66".into();
    event["requestContext"]["http"]["sourceIp"] = "198.51.100.23".into();
    serde_json::from_value(event).expect("an API Gateway v2 request")
}

#[tokio::test]
async fn the_client_address_is_api_gateways_source_ip() {
    let echo = Router::new().route("/api/event", post(|client: ClientAddr| async move { client.0.to_string() }));
    let adapter = Adapter::from(ingest_lambda::with_client_addr(echo));
    let response = adapter
        .oneshot(LambdaEvent::new(create_event_request(), Context::default()))
        .await
        .unwrap_or_else(|_| panic!("the router failed"));
    let response = serde_json::to_value(response).expect("response serializes");
    assert_eq!(response["statusCode"], 200, "{response}");
    assert_eq!(response["body"], "198.51.100.23");
}

#[test]
fn the_lambda_leaves_address_limits_to_the_waf_and_keeps_the_voter_limit() {
    let limits = ingest_lambda::lambda_rate_limits();
    assert_eq!(limits.vote, None);
    assert_eq!(limits.ask, None);
    assert_eq!(limits.create_event, None);
    assert_eq!(limits.voter_ask, ingest::RateLimits::default().voter_ask);
}
