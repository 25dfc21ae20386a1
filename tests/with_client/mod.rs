//! The embedded service serving a stand-in for the built client (an `index.html` given by
//! the test, one asset and a favicon), called through its router: for the tests of what the
//! pages and their headers look like.

#![allow(dead_code)]

use std::net::IpAddr;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use http_edge::ClientAddr;
use tower::ServiceExt;
use wewerewondering::embedded::{Embedded, EmbeddedConfig};

pub struct App {
    pub router: Router,
    pub app: Embedded,
    pub _dir: tempfile::TempDir,
}

/// Starts the service over a fresh store with a client whose `index.html` is `index`;
/// `configure` adjusts the configuration first.
pub async fn start(index: &str, configure: impl FnOnce(&mut EmbeddedConfig)) -> App {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let dist = dir.path().join("dist");
    std::fs::create_dir_all(dist.join("assets")).expect("dist");
    std::fs::write(dist.join("index.html"), index).expect("index");
    std::fs::write(dist.join("assets/app.js"), "export {}").expect("asset");
    std::fs::write(dist.join("favicon.svg"), "<svg/>").expect("favicon");
    let mut config = EmbeddedConfig::new(dir.path().join("t.db"));
    config.durability = ledger_sqlite::Durability::Normal;
    config.service.static_dir = Some(dist);
    configure(&mut config);
    let app = Embedded::start(config).await.expect("the service starts");
    App { router: app.router(), app, _dir: dir }
}

/// One request through `router`, from the client address `from` (as the server's edge
/// would set it; none: the unspecified address): the status, headers and body.
pub async fn send(router: &Router, method: &str, uri: &str, from: Option<&str>) -> (StatusCode, HeaderMap, String) {
    let mut request = Request::builder().method(method).uri(uri).body(Body::empty()).expect("a request");
    if let Some(from) = from {
        let ip: IpAddr = from.parse().expect("an address");
        request.extensions_mut().insert(ClientAddr(ip));
    }
    let response = router.clone().oneshot(request).await.expect("an answer");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("a body").to_bytes();
    (parts.status, parts.headers, String::from_utf8_lossy(&body).into_owned())
}
