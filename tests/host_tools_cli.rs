//! The operator commands over the host's tools (design §8): every new kind leaves in an
//! export, comes back through an import (twice: nothing doubles) into the same projection
//! and the same event state, `replay` reports and repairs a drifted event state, and
//! `inspect` names the new kinds.

mod command;

use std::path::Path;

use command::bin;

use axum::body::Body;
use axum::http::{header, Request};
use http_body_util::BodyExt;
use ledger::ports::{EventStore, ProjectionReader, ProjectionStore};
use tower::ServiceExt;
use wewerewondering::embedded::{Embedded, EmbeddedConfig};

async fn call(app: &Embedded, method: &str, uri: &str, body: &str) -> serde_json::Value {
    let req = Request::builder().method(method).uri(uri).header(header::CONTENT_TYPE, "application/json");
    let resp = app.router().oneshot(req.body(Body::from(body.to_owned())).expect("request")).await.expect("response");
    assert!(resp.status().is_success(), "{method} {uri}: {}", resp.status());
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    serde_json::from_slice(&bytes).expect("JSON")
}

/// An event that used every tool: settings, a question held for review and approved, a
/// spotlight, a written answer, a co-host link minted and revoked. Returns (eid, qid).
async fn hosted_event(db: &Path) -> (String, String) {
    let app = Embedded::start(EmbeddedConfig::new(db)).await.expect("start");
    let created = call(&app, "POST", "/api/event", "").await;
    let (eid, secret) = (created["id"].as_str().expect("id"), created["secret"].as_str().expect("secret"));
    let settings = format!("/api/event/{eid}/settings/{secret}");
    call(&app, "POST", &settings, r#"{"title":"Town hall","moderation":"pre-approve","blocked_words":["spam"]}"#).await;
    app.wait_caught_up().await.expect("caught up");
    let qid = call(&app, "POST", &format!("/api/event/{eid}"), r#"{"body":"held for review here?"}"#).await["id"]
        .as_str()
        .expect("qid")
        .to_owned();
    app.wait_caught_up().await.expect("caught up");
    let question = format!("/api/event/{eid}/questions/{secret}/{qid}");
    for (what, on) in [("approved", "on"), ("spotlight", "on")] {
        let req = Request::post(format!("{question}/toggle/{what}")).body(Body::from(on)).expect("request");
        assert!(app.router().oneshot(req).await.expect("response").status().is_success());
    }
    call(&app, "POST", &format!("{question}/reply"), r#"{"text":"Next week."}"#).await;
    call(&app, "POST", &settings, r#"{"asking":"closed"}"#).await;
    let cohost = call(&app, "POST", &format!("/api/event/{eid}/cohosts/{secret}"), "").await;
    app.wait_caught_up().await.expect("caught up");
    let cohost = cohost["secret"].as_str().expect("cohost");
    call(&app, "DELETE", &format!("/api/event/{eid}/cohosts/{secret}/{cohost}"), "").await;
    app.wait_caught_up().await.expect("caught up");
    app.shutdown().await;
    (eid.to_owned(), qid)
}

async fn states_of(db: &Path) -> (Vec<ledger::QuestionState>, Vec<ledger::EventState>) {
    let store = ledger_sqlite::SqliteStore::open(db, ledger_sqlite::Options::default()).expect("open");
    let mut questions = store.questions(None).await.expect("questions");
    questions.sort_by_key(|q| q.standing.id);
    let events = store.event_states(None).await.expect("event states");
    store.close().await;
    (questions, events)
}

#[tokio::test]
async fn every_new_kind_is_exported_imported_replayed_and_inspected() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (a, b) = (dir.path().join("a.db"), dir.path().join("b.db"));
    let (eid, qid) = hosted_event(&a).await;
    let (pa, path_b) = (a.to_str().expect("path"), b.to_str().expect("path"));

    let export = bin(&["ledger", "export", "--db", pa], None);
    assert!(export.status.success());
    let text = String::from_utf8_lossy(&export.stdout).into_owned();
    for kind in [
        "title",
        "moderation",
        "asking",
        "blocked_words",
        "approved",
        "spotlight",
        "reply",
        "cohost_minted",
        "cohost_revoked",
    ] {
        assert!(text.contains(&format!(r#""kind":"{kind}""#)), "the export holds a {kind} record:\n{text}");
    }
    assert!(!text.contains("cohost_secret"), "no secret leaves, only hashes");

    // Imported twice into another store: the same projection and event state.
    for _ in 0..2 {
        let imported = bin(&["ledger", "import", "--db", path_b], Some(&export.stdout));
        assert!(imported.status.success(), "{}", String::from_utf8_lossy(&imported.stderr));
    }
    let replayed = bin(&["replay", "--db", path_b, "--repair"], None);
    assert!(replayed.status.success(), "{}", String::from_utf8_lossy(&replayed.stdout));
    let (qa, ea) = states_of(&a).await;
    let (qb, eb) = states_of(&b).await;
    assert_eq!(qa, qb, "the same questions, stamps and answers");
    assert_eq!(ea, eb, "the same event state");
    assert_eq!(ea.len(), 1);
    let settings = ea[0].settings();
    assert_eq!(
        (settings.title.as_deref(), settings.asking, settings.blocked_words.clone()),
        (Some("Town hall"), ledger::Asking::Closed, vec!["spam".to_owned()])
    );
    assert!(ea[0].cohosts.values().all(|valid| !valid), "the revoked link stays revoked");
    {
        let store = ledger_sqlite::SqliteStore::open(&b, ledger_sqlite::Options::default()).expect("open");
        assert!(store.event(eid.parse().expect("eid")).await.expect("read").is_some());
        let replies = store.replies(eid.parse().expect("eid")).await.expect("replies");
        assert_eq!(replies, vec![(qid.parse().expect("qid"), "Next week.".to_owned())]);
        store.close().await;
    }

    // A drifted event state is reported, exits 1, and is repaired.
    assert!(String::from_utf8_lossy(&bin(&["replay", "--db", pa], None).stdout).contains("no drift"));
    rusqlite::Connection::open(&a)
        .expect("open")
        .execute("UPDATE event_states SET title = 'Tampered'", [])
        .expect("tamper");
    let out = bin(&["replay", "--db", pa], None);
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(report.contains(&format!("drift of event {eid}")) && report.contains("Tampered"), "{report}");
    assert!(bin(&["replay", "--db", pa, "--repair"], None).status.success());
    assert!(String::from_utf8_lossy(&bin(&["replay", "--db", pa], None).stdout).contains("no drift"));

    // A changed retention restamps the event's own rows with the rest.
    assert!(bin(&["retention", "--db", pa, "--set", "90"], None).status.success());
    let conn = rusqlite::Connection::open(&a).expect("open");
    let expiries: Vec<i64> = conn
        .prepare("SELECT expire FROM events UNION SELECT expire FROM event_states UNION SELECT expire FROM cohosts")
        .and_then(|mut q| q.query_map([], |r| r.get(0))?.collect())
        .expect("expiries");
    let event_ms = eid.parse::<ledger::EventId>().expect("eid").timestamp_ms();
    assert_eq!(expiries, vec![(event_ms / 1_000 + 90 * 86_400) as i64], "one expiry, 90 days after the event");
    drop(conn);

    let inspect = bin(&["inspect", &qid, "--db", pa], None);
    let text = String::from_utf8_lossy(&inspect.stdout);
    assert!(inspect.status.success(), "{text}");
    for said in ["holds it for review", "approves it", "puts it in the spotlight", "answers in writing: \"Next week.\""]
    {
        assert!(text.contains(said), "inspect says {said:?}:\n{text}");
    }
}
