//! Rate limits through the ingest router, each request carrying the `ClientAddr` the host
//! (`serve` or the Lambda) would insert: a limited address is answered 429 with
//! `Retry-After` and a JSON reason, and nothing is appended, while another address goes on
//! unaffected; the per-voter ask limit; buckets refill with time.

mod common;

use std::net::IpAddr;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::App;
use http_edge::ClientAddr;
use ingest::{IngestConfig, Rate, RateLimits};
use ledger::ports::LedgerStore;
use ledger::{EventId, QuestionId, Record, VoterId};
use serde_json::{json, Value};

const A: &str = "192.0.2.1";
const B: &str = "192.0.2.2";
const MINUTE: Duration = Duration::from_secs(60);

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    json: Value,
}

fn app(rate_limits: RateLimits) -> App {
    common::app_with(IngestConfig { rate_limits, ..IngestConfig::default() })
}

fn rate(count: u32, per: Duration, burst: u32) -> Option<Rate> {
    Some(Rate::new(count, per, burst).expect("a valid rate"))
}

impl App {
    async fn post(&self, from: &str, uri: &str, body: impl Into<Body>, voter: Option<VoterId>) -> Reply {
        let mut request = Request::post(uri);
        if let Some(voter) = voter {
            request = request.header(header::COOKIE, format!("voter={voter}"));
        }
        let mut request = request.body(body.into()).expect("a request");
        let ip: IpAddr = from.parse().expect("an address");
        request.extensions_mut().insert(ClientAddr(ip));
        let (status, headers, bytes) = self.respond(request).await;
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply { status, headers, json }
    }

    async fn create_event(&self, from: &str) -> Reply {
        self.post(from, "/api/event", Body::empty(), None).await
    }

    async fn event(&self, from: &str) -> EventId {
        let reply = self.create_event(from).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
        reply.json["id"].as_str().expect("an id").parse().expect("an event id")
    }

    async fn ask(&self, from: &str, event: EventId, voter: Option<VoterId>) -> Reply {
        let body = json!({ "body": "Is this one question too many?", "asker": null }).to_string();
        self.post(from, &format!("/api/event/{event}"), body, voter).await
    }

    async fn vote(&self, from: &str, question: QuestionId) -> Reply {
        self.post(from, &format!("/api/vote/{question}/up"), Body::empty(), None).await
    }

    async fn records(&self) -> Vec<Record> {
        self.store.scan(None, None, 100_000).await.expect("a scan").records
    }

    /// A question in the projection, so that votes on it are accepted.
    async fn question(&self, from: &str, event: EventId) -> QuestionId {
        let reply = self.ask(from, event, None).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
        let records = self.records().await;
        aggregator::apply_batch(self.store.as_ref(), &records, None).await.expect("folded");
        reply.json["id"].as_str().expect("an id").parse().expect("a question id")
    }
}

/// A 429 as every refusal reads, plus `Retry-After` in whole seconds (at least 1).
fn assert_limited(reply: &Reply, message_part: &str) -> u64 {
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS, "{}", reply.json);
    let error = reply.json["error"].as_str().unwrap_or_else(|| panic!("a JSON reason: {}", reply.json));
    assert!(error.contains(message_part), "{error}");
    assert_eq!(reply.headers[header::CACHE_CONTROL], "no-store");
    let retry_after: u64 =
        reply.headers[header::RETRY_AFTER].to_str().expect("text").parse().expect("Retry-After in whole seconds");
    assert!(retry_after >= 1);
    retry_after
}

#[tokio::test]
async fn votes_over_the_limit_get_429_and_append_nothing_while_another_address_goes_on() {
    let app = app(RateLimits { vote: rate(1, MINUTE, 3), ..RateLimits::OFF });
    let event = app.event(A).await;
    let question = app.question(A, event).await;
    for n in 0..3 {
        let reply = app.vote(A, question).await;
        assert_eq!(reply.status, StatusCode::OK, "vote {n} within the burst: {}", reply.json);
    }
    let before = app.records().await.len();
    let retry_after = assert_limited(&app.vote(A, question).await, "votes");
    // One token a minute: the next one is most of a minute away.
    assert!((50..=60).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(app.records().await.len(), before, "a refused vote appends nothing");
    assert_eq!(app.vote(B, question).await.status, StatusCode::OK, "another address is unaffected");
    // An IPv6 guest rotating through the addresses of its /64 is one client.
    for n in 0..3 {
        let reply = app.vote(&format!("2001:db8:7:7::{}", n + 1), question).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
    }
    assert_limited(&app.vote("2001:db8:7:7::99", question).await, "votes");
}

#[tokio::test]
async fn asks_and_event_creation_are_limited_per_address() {
    let app = app(RateLimits { ask: rate(1, MINUTE, 2), create_event: rate(1, MINUTE, 1), ..RateLimits::OFF });
    let event = app.event(A).await;
    assert_limited(&app.create_event(A).await, "events created");
    assert_eq!(app.create_event(B).await.status, StatusCode::OK);
    for _ in 0..2 {
        assert_eq!(app.ask(A, event, Some(VoterId::random())).await.status, StatusCode::OK);
    }
    let before = app.records().await.len();
    assert_limited(&app.ask(A, event, Some(VoterId::random())).await, "questions from this address");
    assert_eq!(app.records().await.len(), before, "a refused ask appends nothing");
    assert_eq!(app.ask(B, event, None).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_voter_asks_a_bounded_number_of_questions_per_event() {
    let app = app(RateLimits { voter_ask: rate(1, MINUTE, 2), ..RateLimits::OFF });
    let event = app.event(A).await;
    let other_event = app.event(A).await;
    let voter = VoterId::random();
    for _ in 0..2 {
        assert_eq!(app.ask(A, event, Some(voter)).await.status, StatusCode::OK);
    }
    let before = app.records().await.len();
    // From another address too: the limit is the voter's.
    assert_limited(&app.ask(B, event, Some(voter)).await, "from you in this event");
    assert_eq!(app.records().await.len(), before);
    assert_eq!(app.ask(A, other_event, Some(voter)).await.status, StatusCode::OK, "another event is another bucket");
    assert_eq!(app.ask(A, event, Some(VoterId::random())).await.status, StatusCode::OK, "another voter is unaffected");
    // A new guest (no cookie) has no voter yet: counted by address only, and that is off here.
    for _ in 0..3 {
        assert_eq!(app.ask(A, event, None).await.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn a_bucket_refills_with_time() {
    let app = app(RateLimits { vote: rate(1, Duration::from_millis(300), 1), ..RateLimits::OFF });
    let event = app.event(A).await;
    let question = app.question(A, event).await;
    assert_eq!(app.vote(A, question).await.status, StatusCode::OK);
    assert_eq!(assert_limited(&app.vote(A, question).await, "votes"), 1, "under a second rounds up to 1");
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(app.vote(A, question).await.status, StatusCode::OK, "a token came back");
}

#[tokio::test]
async fn the_defaults_let_a_venue_behind_one_address_take_part() {
    let app = app(RateLimits::default());
    let event = app.event(A).await;
    let question = app.question(A, event).await;
    // 400 guests behind the venue's NAT vote at once (each a new voter: no cookie yet) ...
    for n in 0..400 {
        let reply = app.vote(A, question).await;
        assert_eq!(reply.status, StatusCode::OK, "vote {n}: {}", reply.json);
    }
    // ... and 80 of them ask at the end of the talk, each with the cookie their vote set.
    for n in 0..80 {
        let reply = app.ask(A, event, Some(VoterId::random())).await;
        assert_eq!(reply.status, StatusCode::OK, "ask {n}: {}", reply.json);
    }
    // One guest asks ten in a row; the eleventh waits.
    let eager = VoterId::random();
    for n in 0..10 {
        let reply = app.ask(A, event, Some(eager)).await;
        assert_eq!(reply.status, StatusCode::OK, "eager ask {n}: {}", reply.json);
    }
    assert_limited(&app.ask(A, event, Some(eager)).await, "from you in this event");
}
