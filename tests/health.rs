//! `/healthz` tells the truth about the embedded process: 200 only while the writer is
//! alive, the aggregator keeps up and no set-aside record waits unseen; otherwise 503 with
//! the reasons in JSON. Each check here answered 200 before.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use ledger::ports::LedgerFeed;
use tower::ServiceExt;
use wewerewondering::embedded::{Embedded, EmbeddedConfig};

async fn health(app: &Embedded) -> (StatusCode, serde_json::Value) {
    let resp =
        app.router().oneshot(Request::get("/healthz").body(Body::empty()).expect("request")).await.expect("response");
    let status = resp.status();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (status, serde_json::from_slice(&bytes).expect("JSON"))
}

async fn post(app: &Embedded, uri: &str, body: &str) -> (StatusCode, serde_json::Value) {
    let req = Request::post(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .expect("request");
    let resp = app.router().oneshot(req).await.expect("response");
    let status = resp.status();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn a_dead_writer_makes_health_503_and_every_write_503() {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = Embedded::start(EmbeddedConfig::new(dir.path().join("t.db"))).await.expect("start");
    assert_eq!(health(&app).await, (StatusCode::OK, serde_json::json!({ "status": "ok" })));
    let (status, created) = post(&app, "/api/event", "").await;
    assert_eq!(status, StatusCode::OK);
    let eid = created["id"].as_str().expect("id").to_owned();

    app.store().inject_writer_panic();
    let why = tokio::time::timeout(std::time::Duration::from_secs(5), app.writer_died())
        .await
        .expect("the death is announced");
    assert!(why.contains("fault injected"), "{why}");
    let (status, body) = health(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], "unhealthy");
    assert!(body["problems"].to_string().contains("the ledger writer died"), "{body}");
    let (status, _) = post(&app, &format!("/api/event/{eid}"), r#"{"body":"still there anyone?"}"#).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "a write to a dead writer is refused at once");
    app.shutdown().await;
}

#[tokio::test]
async fn a_record_set_aside_makes_health_503_until_an_operator_acknowledges_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("t.db");
    let app = Embedded::start(EmbeddedConfig::new(&path)).await.expect("start");
    let (_, created) = post(&app, "/api/event", "").await;
    let eid = created["id"].as_str().expect("id").to_owned();
    for text in ["first question here", "second question here"] {
        let (status, _) = post(&app, &format!("/api/event/{eid}"), &format!(r#"{{"body":"{text}"}}"#)).await;
        assert_eq!(status, StatusCode::OK);
    }
    app.wait_caught_up().await.expect("caught up");
    app.shutdown().await;
    // A damaged row that the aggregator has not folded yet: roll the cursor back before it.
    let raw = rusqlite::Connection::open(&path).expect("raw");
    raw.execute("UPDATE ledger SET kind = 99 WHERE seq = (SELECT max(seq) FROM ledger)", []).expect("damage");
    raw.execute("UPDATE cursors SET seq = seq - 1", []).expect("rewind");
    drop(raw);

    let app = Embedded::start(EmbeddedConfig::new(&path)).await.expect("restart");
    app.wait_caught_up().await.expect("the aggregator moves past the damaged row");
    let (status, body) = health(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body["problems"].to_string().contains("1 ledger records were set aside"), "{body}");
    // New writes still flow and are folded.
    let (status, _) = post(&app, &format!("/api/event/{eid}"), r#"{"body":"third question here"}"#).await;
    assert_eq!(status, StatusCode::OK);
    app.wait_caught_up().await.expect("caught up");
    assert_eq!(app.store().acknowledge_quarantined().await.expect("ack"), 1);
    assert_eq!(health(&app).await.0, StatusCode::OK);
    app.shutdown().await;
    // The operator sees it in `quarantine`, and `replay` names it beside its drift.
    let db = path.to_str().expect("path");
    let listed = std::process::Command::new(env!("CARGO_BIN_EXE_wewerewondering"))
        .args(["quarantine", "--db", db])
        .output()
        .expect("run");
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(listed.contains("unknown kind 99") && listed.contains("seen"), "{listed}");
    let replayed = std::process::Command::new(env!("CARGO_BIN_EXE_wewerewondering"))
        .args(["replay", "--db", db])
        .output()
        .expect("run");
    let replayed = String::from_utf8_lossy(&replayed.stdout).into_owned();
    assert!(replayed.contains("set aside by the aggregator, not in the projection"), "{replayed}");
}
