//! The ingest Lambda serves only requests that came through CloudFront: those carrying the
//! `x-origin-verify` header CloudFront adds with one of the accepted values (two while the
//! secret rotates). Anything else is answered 403 `{"error": "forbidden"}` before the role.

use axum::routing::post;
use axum::Router;
use http_edge::{OriginVerify, ORIGIN_VERIFY_HEADER};
use lambda_http::request::LambdaRequest;
use lambda_http::tower::ServiceExt;
use lambda_http::{Adapter, Context, LambdaEvent};
use serde_json::Value;

const NEW: &str = "new-secret-value-0123456789abcdefghijklmnop";
const OLD: &str = "old-secret-value-0123456789abcdefghijklmnop";

/// The create-event fixture, with the origin header set to `value` (or absent).
fn request(value: Option<&str>) -> LambdaRequest {
    let path = format!("{}/tests/fixtures/create-event.json", env!("CARGO_MANIFEST_DIR"));
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("the fixture")).expect("JSON");
    if let Some(value) = value {
        event["headers"][ORIGIN_VERIFY_HEADER] = value.into();
    }
    serde_json::from_value(event).expect("an API Gateway v2 request")
}

/// (status, body) the guarded stand-in role answers; the stand-in answers 200 "reached".
async fn invoke(origin: &OriginVerify, value: Option<&str>) -> (u64, Value) {
    let role = Router::new().route("/api/event", post(|| async { "reached" }));
    let adapter = Adapter::from(ingest_lambda::behind_cloudfront(role, origin.clone()));
    let response = adapter
        .oneshot(LambdaEvent::new(request(value), Context::default()))
        .await
        .unwrap_or_else(|_| panic!("the router failed"));
    let response = serde_json::to_value(response).expect("response serializes");
    let body = response["body"].as_str().unwrap_or_default();
    let body = serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_owned()));
    (response["statusCode"].as_u64().expect("a status"), body)
}

#[tokio::test]
async fn only_requests_through_cloudfront_reach_the_role() {
    let origin = OriginVerify::parse(NEW).expect("a valid secret");
    assert_eq!(invoke(&origin, Some(NEW)).await, (200, Value::from("reached")));
    let forbidden = (403, serde_json::json!({"error": "forbidden"}));
    assert_eq!(invoke(&origin, None).await, forbidden, "a direct call to the API's endpoint");
    assert_eq!(invoke(&origin, Some(OLD)).await, forbidden, "a value no longer accepted");
    assert_eq!(invoke(&origin, Some("")).await, forbidden, "an empty value");
}

#[tokio::test]
async fn both_values_are_accepted_while_the_secret_rotates() {
    let origin = OriginVerify::parse(&format!("{NEW},{OLD}")).expect("two valid secrets");
    assert_eq!(invoke(&origin, Some(NEW)).await.0, 200, "the new value");
    assert_eq!(invoke(&origin, Some(OLD)).await.0, 200, "the old value, until every edge sends the new one");
    assert_eq!(invoke(&origin, Some("another-value-0123456789abcdefghijklmnopq")).await.0, 403);
}
