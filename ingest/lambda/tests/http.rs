//! The ingest and query Lambdas invoked in-process the way the Lambda runtime invokes them:
//! an API Gateway HTTP API (payload 2.0) request event from `tests/fixtures` goes through
//! `lambda_http`'s adapter into the same routers `serve` mounts, over DynamoDB on moto, and
//! the API Gateway response it produces is checked. The aggregator's part (folding the
//! ledger) is played by `aggregator::apply_batch` over what the ledger holds.

use std::sync::Arc;

use axum::Router;
use lambda_http::request::LambdaRequest;
use lambda_http::tower::ServiceExt;
use lambda_http::{Adapter, Context, LambdaEvent};
use ledger::ports::LedgerStore;
use ledger::EventId;
use ledger_conformance::moto_endpoint;
use ledger_dynamodb::{fresh_tables, DynamoStore};
use serde_json::{json, Value};

fn fixture(dir: &str, name: &str, vars: &[(&str, &str)]) -> String {
    let path = format!("{}/{dir}/{name}", env!("CARGO_MANIFEST_DIR"));
    let mut text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    for (name, value) in vars {
        text = text.replace(&format!("{{{name}}}"), value);
    }
    text
}

/// What API Gateway would send back to the browser.
struct Reply {
    status: u16,
    headers: Value,
    cookies: Vec<String>,
    body: Value,
}

async fn invoke(app: &Router, request_json: &str) -> Reply {
    let request: LambdaRequest = serde_json::from_str(request_json).expect("fixture is an API Gateway v2 request");
    let adapter = Adapter::from(app.clone());
    let response = adapter
        .oneshot(LambdaEvent::new(request, Context::default()))
        .await
        .unwrap_or_else(|_| panic!("the router failed"));
    let response = serde_json::to_value(response).expect("response serializes");
    let raw = response["body"].as_str().unwrap_or("");
    let text = if response["isBase64Encoded"] == json!(true) {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD.decode(raw).expect("base64 body");
        String::from_utf8(bytes).expect("utf-8 body")
    } else {
        raw.to_owned()
    };
    Reply {
        status: response["statusCode"].as_u64().expect("statusCode") as u16,
        headers: response["headers"].clone(),
        cookies: response["cookies"]
            .as_array()
            .map(|a| a.iter().filter_map(|c| c.as_str().map(str::to_owned)).collect())
            .unwrap_or_default(),
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

async fn fold(store: &DynamoStore, event: EventId) {
    let page = store.scan(Some(event), None, 10_000).await.expect("scan the ledger");
    aggregator::apply_batch(store, &page.records, None).await.expect("fold");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lambdas_answer_api_gateway_requests_as_serve_does() {
    let Some(endpoint) = moto_endpoint("MOTO_ENDPOINT_A") else {
        return;
    };
    let store = Arc::new(fresh_tables(&endpoint).await.expect("tables on moto"));
    let config = ingest::IngestConfig {
        region: "eu-north-1".into(),
        retention: ledger::Retention::from_days(30).expect("30 days"),
        cookie_secure: true,
        rate_limits: ingest::RateLimits::default(),
    };
    let ingest = ingest_lambda::app(store.clone(), config);
    let query = query_lambda::app(store.clone(), query::QueryConfig::default());
    let w = |name: &str, vars: &[(&str, &str)]| fixture("tests/fixtures", name, vars);
    let r = |name: &str, vars: &[(&str, &str)]| fixture("../../query/lambda/tests/fixtures", name, vars);

    let created = invoke(&ingest, &w("create-event.json", &[])).await;
    assert_eq!(created.status, 200, "create event: {:?}", created.body);
    let eid = created.body["id"].as_str().expect("event id").to_owned();
    let secret = created.body["secret"].as_str().expect("secret").to_owned();
    let event: EventId = eid.parse().expect("a ULID event id");

    let asked = invoke(&ingest, &w("ask.json", &[("eid", &eid)])).await;
    assert_eq!(asked.status, 200, "ask: {:?}", asked.body);
    let qid = asked.body["id"].as_str().expect("question id").to_owned();
    let asker_cookie = asked.cookies.first().expect("the asker gets a voter cookie").clone();
    assert!(asker_cookie.contains("Secure") && asker_cookie.contains("HttpOnly"), "cookie: {asker_cookie}");
    let asker_cookie = asker_cookie.split(';').next().unwrap_or_default().to_owned();

    fold(&store, event).await;
    let found = invoke(&query, &r("event.json", &[("eid", &eid)])).await;
    assert_eq!((found.status, found.body.clone()), (200, json!({})));
    let list = invoke(&query, &r("guest-list.json", &[("eid", &eid)])).await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body, json!([{"qid": qid, "votes": 1, "hidden": false}]));
    assert_eq!(list.headers["cache-control"], json!("max-age=2"));
    assert!(list.headers["etag"].is_string(), "lists carry an ETag: {:?}", list.headers);

    // A new guest (no cookie) votes up; the asker's repeated up-vote changes nothing.
    let fresh_vote = w("vote-up.json", &[("qid", &qid)]).replace("\"cookies\"", "\"x-no-cookies\"");
    let voted = invoke(&ingest, &fresh_vote).await;
    assert_eq!(voted.status, 200, "vote: {:?}", voted.body);
    assert!(voted.body["votes"].is_u64(), "vote answers the count: {:?}", voted.body);
    let again = invoke(&ingest, &w("vote-up.json", &[("qid", &qid), ("cookie", &asker_cookie)])).await;
    assert_eq!(again.status, 200);
    fold(&store, event).await;

    let toggled =
        invoke(&ingest, &w("toggle-answered.json", &[("eid", &eid), ("secret", &secret), ("qid", &qid)])).await;
    assert_eq!(toggled.status, 200, "toggle: {:?}", toggled.body);
    assert!(toggled.body["answered"].is_u64(), "toggle answers the time: {:?}", toggled.body);
    fold(&store, event).await;

    let host = invoke(&query, &r("host-list.json", &[("eid", &eid), ("secret", &secret)])).await;
    assert_eq!(host.status, 200, "host list: {:?}", host.body);
    assert_eq!(host.body[0]["qid"], json!(qid));
    assert_eq!(host.body[0]["votes"], json!(2), "two distinct voters");
    assert!(host.body[0]["answered"].is_u64(), "answered is shown to the host: {:?}", host.body);
    let wrong = invoke(&query, &r("host-list.json", &[("eid", &eid), ("secret", "not-the-secret")])).await;
    assert_eq!(wrong.status, 401);

    let texts = invoke(&query, &r("question-texts.json", &[("qid", &qid)])).await;
    assert_eq!(texts.status, 200);
    assert_eq!(texts.body[&qid]["text"], json!("Why is the sky blue at noon?"));
    assert_eq!(texts.body[&qid]["who"], json!("Grace"));

    let unknown = ulid::Ulid::new().to_string();
    let missing = invoke(&query, &r("event.json", &[("eid", &unknown)])).await;
    assert_eq!(missing.status, 404);
    let refused = invoke(&ingest, &w("ask-too-large.json", &[("eid", &eid)])).await;
    assert_eq!(refused.status, 413, "bodies over 1 KiB are refused");
    let bad = invoke(&ingest, &w("ask.json", &[("eid", "not-an-id")])).await;
    assert_eq!(bad.status, 400);
}
