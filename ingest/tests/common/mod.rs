//! The ingest router over a fresh SQLite store, as the route and rate-limit tests drive it.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use ingest::{IdMinter, IngestConfig, IngestState};
use ledger::ports::{EventStore, LedgerStore, ProjectionReader};
use ledger_sqlite::{Durability, Options, SqliteStore};
use tower::ServiceExt;

pub struct App {
    pub router: Router,
    pub store: Arc<SqliteStore>,
    _dir: tempfile::TempDir,
}

/// The router with `config` over a store in a temporary directory (gone with the app).
pub fn app_with(config: IngestConfig) -> App {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = SqliteStore::open(
        dir.path().join("ingest.db"),
        Options { durability: Durability::Normal, ..Options::default() },
    )
    .expect("the store opens");
    let router = ingest::router(IngestState {
        events: store.clone() as Arc<dyn EventStore>,
        ledger: store.clone() as Arc<dyn LedgerStore>,
        projection: store.clone() as Arc<dyn ProjectionReader>,
        config,
        ids: Arc::new(IdMinter::new()),
    });
    App { router, store, _dir: dir }
}

impl App {
    /// The router's answer to `request`: status, headers and the whole body.
    pub async fn respond(&self, request: Request<Body>) -> (StatusCode, HeaderMap, bytes::Bytes) {
        let response = self.router.clone().oneshot(request).await.expect("the router answers");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.expect("a body").to_bytes();
        (status, headers, bytes)
    }
}
