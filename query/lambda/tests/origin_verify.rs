//! Both Lambdas (ingest and query) serve only requests that came through CloudFront: their
//! `main` puts the role behind `OriginVerify::guard`, tested here through the Lambda
//! adapter on an API Gateway request. Those carrying the
//! `x-origin-verify` header CloudFront adds with one of the accepted values (two while the
//! secret rotates). Anything else is answered 403 `{"error": "forbidden"}` before the role,
//! so nobody can poll the lists around CloudFront's cache.

use axum::routing::get;
use axum::Router;
use http_edge::{OriginVerify, ORIGIN_VERIFY_HEADER};
use lambda_http::request::LambdaRequest;
use lambda_http::tower::ServiceExt;
use lambda_http::{Adapter, Context, LambdaEvent};
use serde_json::Value;

const NEW: &str = "new-secret-value-0123456789abcdefghijklmnop";
const OLD: &str = "old-secret-value-0123456789abcdefghijklmnop";

/// The guest-list fixture, with the origin header set to `value` (or absent).
fn request(value: Option<&str>) -> LambdaRequest {
    let path = format!("{}/tests/fixtures/guest-list.json", env!("CARGO_MANIFEST_DIR"));
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("the fixture")).expect("JSON");
    if let Some(value) = value {
        event["headers"][ORIGIN_VERIFY_HEADER] = value.into();
    }
    serde_json::from_value(event).expect("an API Gateway v2 request")
}

/// (status, cache-control, body) the guarded stand-in role answers; it answers 200 "reached".
async fn invoke(origin: &OriginVerify, value: Option<&str>) -> (u64, Value, Value) {
    let role = Router::new().route("/api/event/{eid}/questions", get(|| async { "reached" }));
    let adapter = Adapter::from(origin.clone().guard(role));
    let response = adapter
        .oneshot(LambdaEvent::new(request(value), Context::default()))
        .await
        .unwrap_or_else(|_| panic!("the router failed"));
    let response = serde_json::to_value(response).expect("response serializes");
    let body = response["body"].as_str().unwrap_or_default();
    let body = serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_owned()));
    (response["statusCode"].as_u64().expect("a status"), response["headers"]["cache-control"].clone(), body)
}

#[tokio::test]
async fn only_requests_through_cloudfront_reach_the_role() {
    let origin = OriginVerify::parse(NEW).expect("a valid secret");
    assert_eq!(invoke(&origin, Some(NEW)).await.2, Value::from("reached"));
    for (value, what) in [(None, "a direct call"), (Some(OLD), "a retired value"), (Some("x"), "a guess")] {
        let (status, cache, body) = invoke(&origin, value).await;
        assert_eq!(status, 403, "{what}");
        assert_eq!(body, serde_json::json!({"error": "forbidden"}), "{what}");
        // A refusal must never be cached for the guests behind CloudFront.
        assert_eq!(cache, Value::from("no-store"), "{what}");
    }
}

#[tokio::test]
async fn both_values_are_accepted_while_the_secret_rotates() {
    let origin = OriginVerify::parse(&format!("{NEW}, {OLD}")).expect("two valid secrets");
    assert_eq!(invoke(&origin, Some(NEW)).await.0, 200, "the new value");
    assert_eq!(invoke(&origin, Some(OLD)).await.0, 200, "the old value");
}
