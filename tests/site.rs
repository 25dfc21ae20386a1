//! The embedded site through the whole router: a lowercase event link is redirected to the
//! canonical (uppercase) one, an unknown path gets the app's page with status 404, and the
//! demo event is seeded into a new database only (also across restarts of the binary).

mod with_client;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use axum::http::{header, HeaderMap, StatusCode};
use axum::Router;
use wewerewondering::demo;
use wewerewondering::embedded::{Embedded, EmbeddedConfig};

const INDEX: &str =
    "<!doctype html><html><head><script type=\"module\" src=\"/assets/app.js\"></script></head><body></body></html>";

async fn app() -> with_client::App {
    with_client::start(INDEX, |_| {}).await
}

/// One request through `router` from an ordinary client address.
async fn send(router: &Router, method: &str, uri: &str) -> (StatusCode, HeaderMap, String) {
    with_client::send(router, method, uri, Some("192.0.2.1")).await
}

fn location(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::LOCATION).map(|v| v.to_str().expect("text"))
}

#[tokio::test]
async fn a_lowercase_event_link_is_redirected_to_the_canonical_one() {
    // Bound whole: the temporary directory must outlive the requests.
    let app = app().await;
    let router = &app.router;
    let (_, _, body) = send(router, "POST", "/api/event").await;
    let event: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let (eid, secret) = (event["id"].as_str().expect("id"), event["secret"].as_str().expect("secret"));
    assert_eq!(eid, eid.to_ascii_uppercase(), "the server hands out canonical ids");
    let lower = eid.to_ascii_lowercase();
    assert_ne!(lower, eid, "a ULID has letters (its random part, 80 bits)");

    let (status, headers, _) = send(router, "GET", &format!("/event/{lower}")).await;
    assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(location(&headers), Some(format!("/event/{eid}").as_str()));

    // The host link keeps its secret (which is case-sensitive) and the query.
    let (status, headers, _) = send(router, "GET", &format!("/event/{lower}/{secret}?x=1")).await;
    assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(location(&headers), Some(format!("/event/{eid}/{secret}?x=1").as_str()));

    // Mixed case too.
    let mixed: String =
        eid.chars().enumerate().map(|(i, c)| if i % 2 == 0 { c.to_ascii_lowercase() } else { c }).collect();
    let (status, headers, _) = send(router, "GET", &format!("/event/{mixed}")).await;
    assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(location(&headers), Some(format!("/event/{eid}").as_str()));

    // The canonical links are the app's page.
    for page in [format!("/event/{eid}"), format!("/event/{eid}/{secret}")] {
        let (status, headers, body) = send(router, "GET", &page).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(location(&headers), None, "{page}");
        assert_eq!(body, INDEX, "{page}");
    }

    // A malformed id is not redirected: the page loads and says the event does not exist.
    for page in ["/event/01abc", "/event/not-an-id", "/event/8zzzzzzzzzzzzzzzzzzzzzzzzz"] {
        let (status, headers, body) = send(router, "GET", page).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(location(&headers), None, "{page}");
        assert_eq!(body, INDEX, "{page}");
    }
}

#[tokio::test]
async fn an_unknown_path_gets_the_apps_page_with_status_404() {
    // Bound whole: the temporary directory must outlive the requests.
    let app = app().await;
    let router = &app.router;
    for path in ["/nonsense", "/nonsense/deeper", "/events/01ABC"] {
        let (status, headers, body) = send(router, "GET", path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(body, INDEX, "{path}: the app's page, which shows its not-found message");
        let content_type = headers.get(header::CONTENT_TYPE).map(|v| v.to_str().expect("text"));
        assert!(content_type.is_some_and(|t| t.starts_with("text/html")), "{path}: {content_type:?}");
        assert!(headers.contains_key(header::CONTENT_SECURITY_POLICY), "{path}: a page carries the page headers");
        assert_eq!(headers.get(header::CACHE_CONTROL).map(|v| v.to_str().expect("text")), Some("no-cache"), "{path}");
    }
    // Files are still files, and a missing asset is a bare 404 (never HTML for a script).
    let (status, _, body) = send(router, "GET", "/favicon.svg").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "<svg/>"));
    let (status, _, body) = send(router, "GET", "/assets/missing.js").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_ne!(body, INDEX);
    let (status, _, body) = send(router, "GET", "/").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, INDEX));
}

#[tokio::test]
async fn the_demo_is_seeded_into_a_new_database_only() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let db = dir.path().join("t.db");
    let start = || {
        let mut config = EmbeddedConfig::new(&db);
        config.durability = ledger_sqlite::Durability::Normal;
        Embedded::start(config)
    };
    let app = start().await.expect("the service starts");
    let first = demo::seed_if_new(&app).await.expect("seeding works").expect("a new database gets the demo");
    let written = app.store().high_water().await.expect("high water");
    assert!(written > 0);
    assert!(demo::seed_if_new(&app).await.expect("no error").is_none(), "not twice in one process");
    app.shutdown().await;

    let app = start().await.expect("the service starts again");
    assert!(demo::seed_if_new(&app).await.expect("no error").is_none(), "not again after a restart");
    assert_eq!(app.store().high_water().await.expect("high water"), written, "nothing was written");
    let (status, _, _) = send(&app.router(), "GET", &format!("/api/event/{}", first.event)).await;
    assert_eq!(status, StatusCode::OK, "the first demo is still there");
    app.shutdown().await;
}

/// Runs `serve` (without `--no-demo`) on `db` until it prints its address; returns what it
/// printed before.
fn serve_once(db: &std::path::Path) -> Vec<String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wewerewondering"))
        .args(["serve", "--listen", "127.0.0.1:0", "--static", "/nonexistent", "--db"])
        .arg(db)
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the server binary");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut printed = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("a line");
        if line.starts_with("listening on ") {
            break;
        }
        printed.push(line);
    }
    let _ = child.kill();
    let _ = child.wait();
    printed
}

#[test]
fn restarting_the_binary_does_not_seed_another_demo() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let db = dir.path().join("t.db");
    let first = serve_once(&db);
    assert!(
        first.iter().any(|l| l.contains("guest http://") && l.contains("/event/")),
        "first start prints the demo links: {first:?}"
    );
    let second = serve_once(&db);
    assert!(!second.iter().any(|l| l.contains("http://")), "no demo links on a restart: {second:?}");
    assert!(second.iter().any(|l| l.contains("not seeded")), "says why: {second:?}");
}
