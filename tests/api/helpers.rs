//! The test app: the whole embedded service (ingest, aggregator, query over a fresh SQLite
//! file) on a real socket at port 0, and typed clients that speak its API. Each [`Client`]
//! has its own cookie store, so each is one guest with one voter identity.

use std::net::SocketAddr;

use ledger::{EventId, QuestionId};
use reqwest::StatusCode;
use serde_json::{json, Value};
use wewerewondering::dynamodb_backend::{DynamoBackend, DynamoServeOptions};
use wewerewondering::embedded::{Embedded, EmbeddedConfig};

/// What the suite runs against: embedded SQLite by default; DynamoDB and SQS on a local
/// emulator (`.ci/with-moto` sets `MOTO_ENDPOINT_A`) when `WWW_TEST_BACKEND=dynamodb`.
enum Backend {
    Embedded(Embedded),
    Dynamo(DynamoBackend),
}

impl Backend {
    fn router(&self) -> axum::Router {
        match self {
            Backend::Embedded(e) => e.router(),
            Backend::Dynamo(d) => d.router(),
        }
    }

    async fn wait_caught_up(&self) -> anyhow::Result<()> {
        match self {
            Backend::Embedded(e) => e.wait_caught_up().await,
            Backend::Dynamo(d) => d.wait_caught_up().await,
        }
    }

    async fn shutdown(self) {
        match self {
            Backend::Embedded(e) => e.shutdown().await,
            Backend::Dynamo(d) => d.shutdown().await,
        }
    }
}

async fn start_backend(dir: &tempfile::TempDir) -> Backend {
    if std::env::var("WWW_TEST_BACKEND").as_deref() == Ok("dynamodb") {
        let endpoint = std::env::var("MOTO_ENDPOINT_A")
            .expect("WWW_TEST_BACKEND=dynamodb needs MOTO_ENDPOINT_A: run under .ci/with-moto");
        return Backend::Dynamo(
            DynamoBackend::start(DynamoServeOptions::isolated(&endpoint))
                .await
                .expect("the DynamoDB-backed service starts"),
        );
    }
    let mut config = EmbeddedConfig::new(dir.path().join("api.db"));
    config.durability = ledger_sqlite::Durability::Normal;
    Backend::Embedded(Embedded::start(config).await.expect("the embedded service starts"))
}

pub struct TestApp {
    pub addr: SocketAddr,
    /// The first guest (and the host, who needs no cookie).
    pub client: Client,
    backend: Backend,
    server: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

/// One browser: a cookie store and the server's address.
#[derive(Clone)]
pub struct Client {
    pub base: String,
    pub http: reqwest::Client,
}

#[derive(Debug, Clone)]
pub struct Event {
    pub id: EventId,
    pub secret: String,
}

#[derive(Debug, Clone, Copy)]
pub enum Vote {
    Up,
    Down,
}

#[derive(Debug, Clone, Copy)]
pub enum Toggle {
    Hidden,
    Answered,
}

pub async fn spawn_app() -> TestApp {
    init_test_log();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let backend = start_backend(&dir).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let addr = listener.local_addr().expect("a bound address");
    let router = backend.router();
    let server = tokio::spawn(async move {
        // With the peer's address, as `serve` gives it (rate limits, loopback-only /metrics).
        axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
            .await
            .expect("the server runs");
    });
    TestApp { addr, client: Client::new(addr), backend, server, _dir: dir }
}

/// Logs go to the test output only when `TEST_LOG` is set.
fn init_test_log() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt().with_env_filter("debug").with_test_writer().try_init();
    }
}

impl TestApp {
    /// Another guest, with a cookie store of its own (so a voter of its own).
    pub fn new_guest(&self) -> Client {
        Client::new(self.addr)
    }

    /// Waits until the aggregator has folded every record acknowledged so far.
    pub async fn settled(&self) {
        self.backend.wait_caught_up().await.expect("the aggregator catches up");
    }

    pub async fn stop(self) {
        self.server.abort();
        self.backend.shutdown().await;
    }
}

impl std::ops::Deref for TestApp {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl Client {
    fn new(addr: SocketAddr) -> Self {
        let http = reqwest::Client::builder().cookie_store(true).build().expect("an HTTP client");
        Self { base: format!("http://{addr}"), http }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.expect("the server answers")
    }

    pub async fn post(&self, path: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.http.post(self.url(path)).body(body).send().await.expect("the server answers")
    }

    pub async fn create_event(&self) -> Event {
        let reply = ok_json(self.post("/api/event", "").await).await;
        Event {
            id: reply["id"].as_str().and_then(|s| s.parse().ok()).expect("an event id"),
            secret: reply["secret"].as_str().expect("a secret").to_owned(),
        }
    }

    /// Asks a question; the response as it came.
    pub async fn try_ask(&self, event: &str, text: &str, asker: Option<&str>) -> reqwest::Response {
        let body = json!({ "body": text, "asker": asker }).to_string();
        self.http
            .post(self.url(&format!("/api/event/{event}")))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("the server answers")
    }

    pub async fn ask(&self, event: &Event, text: &str) -> QuestionId {
        let reply = ok_json(self.try_ask(&event.id.to_string(), text, None).await).await;
        reply["id"].as_str().and_then(|s| s.parse().ok()).expect("a question id")
    }

    /// Votes; the count the server answered.
    pub async fn vote(&self, question: QuestionId, vote: Vote) -> u64 {
        let direction = match vote {
            Vote::Up => "up",
            Vote::Down => "down",
        };
        let reply = ok_json(self.post(&format!("/api/vote/{question}/{direction}"), "").await).await;
        reply["votes"].as_u64().expect("a vote count")
    }

    pub async fn try_toggle(&self, event: &Event, question: QuestionId, what: Toggle, on: bool) -> reqwest::Response {
        let what = match what {
            Toggle::Hidden => "hidden",
            Toggle::Answered => "answered",
        };
        let path = format!("/api/event/{}/questions/{}/{question}/toggle/{what}", event.id, event.secret);
        self.post(&path, if on { "on" } else { "off" }).await
    }

    pub async fn toggle(&self, event: &Event, question: QuestionId, what: Toggle, on: bool) -> Value {
        ok_json(self.try_toggle(event, question, what, on).await).await
    }

    pub async fn guest_list(&self, event: &Event) -> Value {
        ok_json(self.get(&format!("/api/event/{}/questions", event.id)).await).await
    }

    pub async fn host_list(&self, event: &Event) -> Value {
        ok_json(self.get(&format!("/api/event/{}/questions/{}", event.id, event.secret)).await).await
    }

    /// The votes the guest list shows for a question (`None` if it is not listed).
    pub async fn votes_listed(&self, event: &Event, question: QuestionId) -> Option<u64> {
        let list = self.guest_list(event).await;
        list.as_array()?.iter().find(|item| item["qid"] == question.to_string()).and_then(|item| item["votes"].as_u64())
    }
}

/// The JSON of a successful response (failing the test, with the body, otherwise).
pub async fn ok_json(response: reqwest::Response) -> Value {
    let status = response.status();
    let text = response.text().await.expect("a readable body");
    assert_eq!(status, StatusCode::OK, "unexpected answer: {text}");
    serde_json::from_str(&text).expect("a JSON body")
}

/// Asserts an error answer: its status, a JSON `error`, and that no cache keeps it.
pub async fn assert_error(response: reqwest::Response, expected: StatusCode) {
    let status = response.status();
    let url = response.url().path().to_owned();
    let cache_control =
        response.headers().get("cache-control").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let text = response.text().await.expect("a readable body");
    assert_eq!(status, expected, "{url}: {text}");
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{url}: not JSON: {text}"));
    assert!(body["error"].is_string(), "{url}: {body}");
    assert!(cache_control == "no-store" || cache_control.starts_with("max-age=5"), "{url}: {cache_control}");
}
