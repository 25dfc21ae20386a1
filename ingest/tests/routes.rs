//! The ingest router driven through `oneshot` over the real SQLite store: every route, its
//! answers, and every way a write is refused (with nothing appended when it is).

mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::App;
use ingest::IngestConfig;
use ledger::ports::{EventRow, EventStore, LedgerStore, ProjectionReader};
use ledger::secret::secret_matches;
use ledger::{EventId, QuestionId, Record, RecordBody, VoterId};
use serde_json::{json, Value};

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    json: Value,
}

impl Reply {
    fn set_cookie(&self) -> Option<String> {
        self.headers.get(header::SET_COOKIE).map(|v| v.to_str().unwrap().to_owned())
    }

    fn voter(&self) -> Option<VoterId> {
        let cookie = self.set_cookie()?;
        cookie.split(';').next()?.strip_prefix("voter=")?.parse().ok()
    }
}

async fn app() -> App {
    common::app_with(IngestConfig {
        region: "test".into(),
        retention: ledger::Retention::from_days(30).expect("30 days"),
        cookie_secure: true,
        rate_limits: ingest::RateLimits::default(),
    })
}

impl App {
    async fn send(&self, request: Request<Body>) -> Reply {
        let (status, headers, bytes) = self.respond(request).await;
        let json = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
        if !status.is_success() {
            assert_eq!(headers[header::CACHE_CONTROL], "no-store", "{status} {json}");
            assert!(json["error"].is_string(), "an error names itself: {json}");
        }
        Reply { status, headers, json }
    }

    async fn post(&self, uri: &str, body: impl Into<Body>, cookie: Option<VoterId>) -> Reply {
        let mut request = Request::post(uri);
        if let Some(voter) = cookie {
            request = request.header(header::COOKIE, format!("other=1; voter={voter}"));
        }
        self.send(request.body(body.into()).unwrap()).await
    }

    async fn create_event(&self) -> (EventId, String) {
        let reply = self.post("/api/event", Body::empty(), None).await;
        assert_eq!(reply.status, StatusCode::OK);
        let id = reply.json["id"].as_str().unwrap().parse().unwrap();
        (id, reply.json["secret"].as_str().unwrap().to_owned())
    }

    async fn ask(&self, event: EventId, text: &str, voter: Option<VoterId>) -> Reply {
        let body = json!({ "body": text, "asker": null }).to_string();
        self.post(&format!("/api/event/{event}"), body, voter).await
    }

    /// An event that expired a second after the epoch, its row lingering (as DynamoDB's TTL
    /// lets it); its secret is `s`.
    async fn expired_event(&self) -> EventId {
        let id = EventId(ulid::Ulid::new());
        let row = EventRow { id, secret_hash: ledger::secret::hash_secret("s"), expire_unix: 1 };
        self.store.create_event(&row).await.unwrap();
        id
    }

    async fn records(&self) -> Vec<Record> {
        self.store.scan(None, None, 10_000).await.unwrap().records
    }

    /// Folds the whole ledger into the projection, as the aggregator would.
    async fn fold(&self) {
        let records = self.records().await;
        aggregator::apply_batch(self.store.as_ref(), &records, None).await.unwrap();
    }

    async fn votes(&self, question: QuestionId) -> u64 {
        self.store.question(question).await.unwrap().unwrap().votes
    }
}

#[tokio::test]
async fn creating_an_event_stores_only_the_secrets_hash() {
    let app = app().await;
    let (id, secret) = app.create_event().await;
    let row = app.store.event(id).await.unwrap().unwrap();
    assert!(secret_matches(&secret, &row.secret_hash));
    assert_eq!(row.expire_unix, id.unix_seconds() + 30 * 86_400);
    assert_eq!(secret.len(), 32);
}

#[tokio::test]
async fn asking_appends_one_trimmed_question_and_mints_a_voter() {
    let app = app().await;
    let (event, _) = app.create_event().await;
    let body = json!({ "body": "  Why is the sky blue?\n", "asker": "  Ada " }).to_string();
    let reply = app.post(&format!("/api/event/{event}"), body, None).await;
    assert_eq!(reply.status, StatusCode::OK);
    let qid: QuestionId = reply.json["id"].as_str().unwrap().parse().unwrap();
    let cookie = reply.set_cookie().unwrap();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Secure", "Max-Age=2592000"] {
        assert!(cookie.contains(attribute), "{attribute} missing from {cookie}");
    }
    let voter = reply.voter().unwrap();

    let records = app.records().await;
    assert_eq!(records.len(), 1);
    let record = &records[0];
    assert_eq!((record.event, record.question, record.region.as_str()), (event, qid, "test"));
    assert!(record.id.to_u128() > qid.to_u128(), "the record id is minted after the question id");
    match &record.body {
        RecordBody::Asked(asked) => {
            assert_eq!(asked.text, "Why is the sky blue?");
            assert_eq!(asked.who.as_deref(), Some("Ada"));
            assert_eq!(asked.voter, voter);
        }
        other => panic!("expected an asked record, got {other:?}"),
    }

    // A known voter keeps their identity and gets no new cookie; an empty name is anonymous.
    let body = json!({ "body": "And the sea?", "asker": "   " }).to_string();
    let again = app.post(&format!("/api/event/{event}"), body, Some(voter)).await;
    assert_eq!(again.status, StatusCode::OK);
    assert!(again.set_cookie().is_none());
    let records = app.records().await;
    match &records[1].body {
        RecordBody::Asked(asked) => {
            assert_eq!(asked.voter, voter);
            assert_eq!(asked.who, None);
        }
        other => panic!("expected an asked record, got {other:?}"),
    }
}

#[tokio::test]
async fn bad_questions_are_refused_and_nothing_is_appended() {
    let app = app().await;
    let (event, _) = app.create_event().await;
    let uri = format!("/api/event/{event}");
    let long_text = "word ".repeat(120);
    let cases: Vec<(String, String, StatusCode)> = vec![
        (uri.clone(), json!({ "body": "" }).to_string(), StatusCode::BAD_REQUEST),
        (uri.clone(), json!({ "body": "   " }).to_string(), StatusCode::BAD_REQUEST),
        (uri.clone(), json!({ "body": "  one-word  " }).to_string(), StatusCode::BAD_REQUEST),
        (uri.clone(), json!({ "body": long_text.trim() }).to_string(), StatusCode::BAD_REQUEST),
        (uri.clone(), json!({ "body": "two words", "asker": "n".repeat(51) }).to_string(), StatusCode::BAD_REQUEST),
        (uri.clone(), "{not json".to_owned(), StatusCode::BAD_REQUEST),
        (uri.clone(), json!({ "text": "two words" }).to_string(), StatusCode::BAD_REQUEST),
        (uri.clone(), json!({ "body": 42 }).to_string(), StatusCode::BAD_REQUEST),
        (uri.clone(), json!({ "body": "x ".repeat(600) }).to_string(), StatusCode::PAYLOAD_TOO_LARGE),
        ("/api/event/not-an-id".to_owned(), json!({ "body": "two words" }).to_string(), StatusCode::BAD_REQUEST),
        (
            format!("/api/event/{}", EventId::from_u128(7)),
            json!({ "body": "two words" }).to_string(),
            StatusCode::NOT_FOUND,
        ),
    ];
    for (uri, body, expected) in cases {
        let reply = app.post(&uri, body.clone(), None).await;
        assert_eq!(reply.status, expected, "{uri} {body}: {}", reply.json);
    }
    assert!(app.records().await.is_empty());
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_even_without_a_length() {
    let app = app().await;
    let (event, _) = app.create_event().await;
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> =
        (0..20).map(|_| Ok(bytes::Bytes::from(vec![b' '; 100]))).collect();
    let body = Body::from_stream(futures::stream::iter(chunks));
    let reply = app.post(&format!("/api/event/{event}"), body, None).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(app.records().await.is_empty());
}

#[tokio::test]
async fn votes_append_one_record_each_and_answer_the_folded_count() {
    let app = app().await;
    let (event, _) = app.create_event().await;
    let asked = app.ask(event, "Is this thing on?", None).await;
    let asker = asked.voter().unwrap();
    let qid: QuestionId = asked.json["id"].as_str().unwrap().parse().unwrap();

    // Not folded yet: the question is unknown to the projection.
    let early = app.post(&format!("/api/vote/{qid}/up"), Body::empty(), None).await;
    assert_eq!(early.status, StatusCode::NOT_FOUND);
    app.fold().await;
    assert_eq!(app.votes(qid).await, 1);

    let guest = app.post(&format!("/api/vote/{qid}/up"), Body::empty(), None).await;
    assert_eq!(guest.status, StatusCode::OK);
    assert_eq!(guest.json, json!({ "votes": 1 }), "the count as folded before this vote");
    let guest_voter = guest.voter().unwrap();
    assert_ne!(guest_voter, asker);
    app.fold().await;
    assert_eq!(app.votes(qid).await, 2);

    // Repeating is a no-op; down retracts; the asker may retract their own.
    let again = app.post(&format!("/api/vote/{qid}/up"), Body::empty(), Some(guest_voter)).await;
    assert_eq!(again.json, json!({ "votes": 2 }));
    assert!(again.set_cookie().is_none());
    app.fold().await;
    assert_eq!(app.votes(qid).await, 2);
    app.post(&format!("/api/vote/{qid}/down"), Body::empty(), Some(guest_voter)).await;
    app.post(&format!("/api/vote/{qid}/down"), Body::empty(), Some(asker)).await;
    app.fold().await;
    assert_eq!(app.votes(qid).await, 0);

    let appended = app.records().await.len();
    for (uri, expected) in [
        (format!("/api/vote/{qid}/sideways"), StatusCode::BAD_REQUEST),
        (format!("/api/vote/{qid}/UP"), StatusCode::BAD_REQUEST),
        ("/api/vote/nope/up".to_owned(), StatusCode::BAD_REQUEST),
        (format!("/api/vote/{}/up", QuestionId::from_u128(9)), StatusCode::NOT_FOUND),
    ] {
        let reply = app.post(&uri, Body::empty(), None).await;
        assert_eq!(reply.status, expected, "{uri}");
    }
    assert_eq!(app.records().await.len(), appended);
}

#[tokio::test]
async fn a_malformed_voter_cookie_is_replaced_not_refused() {
    let app = app().await;
    let (event, _) = app.create_event().await;
    let request = Request::post(format!("/api/event/{event}"))
        .header(header::COOKIE, "voter=%%%garbage")
        .body(Body::from(json!({ "body": "two words" }).to_string()))
        .unwrap();
    let reply = app.send(request).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.voter().is_some());
}

#[tokio::test]
async fn toggles_need_the_secret_and_a_question_of_that_event() {
    let app = app().await;
    let (event, secret) = app.create_event().await;
    let (other_event, other_secret) = app.create_event().await;
    let qid = app.ask(event, "Who moderates this?", None).await.json["id"].as_str().unwrap().to_owned();
    let other_qid = app.ask(other_event, "Somewhere else entirely", None).await.json["id"].as_str().unwrap().to_owned();
    app.fold().await;
    let toggle = |e: EventId, s: &str, q: &str, what: &str| format!("/api/event/{e}/questions/{s}/{q}/toggle/{what}");

    let hidden = app.post(&toggle(event, &secret, &qid, "hidden"), " on\n", None).await;
    assert_eq!((hidden.status, hidden.json.clone()), (StatusCode::OK, json!({ "hidden": true })));
    let answered = app.post(&toggle(event, &secret, &qid, "answered"), "on", None).await;
    let last = app.records().await.pop().unwrap();
    assert_eq!(answered.json, json!({ "answered": last.id.unix_seconds() }));
    assert_eq!(last.body, RecordBody::Answered { on: true });
    let unanswered = app.post(&toggle(event, &secret, &qid, "answered"), "off", None).await;
    assert_eq!((unanswered.status, unanswered.json.clone()), (StatusCode::OK, json!({})));
    app.fold().await;
    let counters = app.store.question(qid.parse().unwrap()).await.unwrap().unwrap();
    assert!(counters.is_hidden());
    assert_eq!(counters.answered_at(), None);

    let appended = app.records().await.len();
    let cases = [
        (toggle(event, "wrong", &qid, "hidden"), "on", StatusCode::UNAUTHORIZED),
        (toggle(event, &other_secret, &qid, "hidden"), "on", StatusCode::UNAUTHORIZED),
        // The other event's question through this event's secret: refused as unknown here.
        (toggle(event, &secret, &other_qid, "hidden"), "on", StatusCode::NOT_FOUND),
        (toggle(event, &secret, &QuestionId::from_u128(3).to_string(), "hidden"), "on", StatusCode::NOT_FOUND),
        (toggle(EventId::from_u128(3), &secret, &qid, "hidden"), "on", StatusCode::NOT_FOUND),
        (toggle(event, &secret, &qid, "pinned"), "on", StatusCode::BAD_REQUEST),
        (toggle(event, &secret, &qid, "hidden"), "yes", StatusCode::BAD_REQUEST),
        (toggle(event, &secret, &qid, "hidden"), "", StatusCode::BAD_REQUEST),
        (toggle(event, &secret, "bad-qid", "hidden"), "on", StatusCode::BAD_REQUEST),
    ];
    for (uri, body, expected) in cases {
        let reply = app.post(&uri, body, None).await;
        assert_eq!(reply.status, expected, "{body}: {}", reply.json);
    }
    assert_eq!(app.records().await.len(), appended);
}

#[tokio::test]
async fn the_routes_listed_are_the_routes_served() {
    let app = app().await;
    // What the router answers for a path it does not serve: a JSON 404 (the edge gives the
    // fallback's empty 404 a body), so a JSON body alone proves nothing.
    let unserved = app.post("/api/not-a-route", Body::empty(), None).await;
    assert_eq!((unserved.status, unserved.json), (StatusCode::NOT_FOUND, json!({ "error": "not found" })));
    for (method, path) in ingest::ROUTES {
        assert!(["POST", "DELETE"].contains(method), "{method} {path}");
        // Fill each parameter with something malformed: a served route reaches its handler,
        // which refuses the id with a 400 (creating an event has no parameter and succeeds);
        // an unserved one would fall through to the router's 404 (or 405 for another method).
        let uri = path.replace('{', "x").replace('}', "");
        let request = Request::builder().method(*method).uri(&uri).body(Body::empty()).unwrap();
        let reply = app.send(request).await;
        let expected = if path.contains('{') { StatusCode::BAD_REQUEST } else { StatusCode::OK };
        assert_eq!(reply.status, expected, "{path} is not served: {}", reply.json);
    }
    // Only POST: a GET on a write route is refused, in JSON like every refusal.
    let reply = app.send(Request::get("/api/event").body(Body::empty()).unwrap()).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.json, json!({ "error": "method not allowed" }));
}

#[tokio::test]
async fn an_event_holds_a_bounded_number_of_questions() {
    let app = app().await;
    let (event, _) = app.create_event().await;
    let voter = VoterId::random();
    let mut ids = ulid::Generator::new();
    let records: Vec<Record> = (0..ledger::limits::QUESTIONS_PER_EVENT_MAX)
        .map(|i| Record {
            id: ledger::RecordId(ids.generate().unwrap()),
            event,
            question: QuestionId(ids.generate().unwrap()),
            region: "test".into(),
            body: RecordBody::Asked(ledger::Asked { text: format!("question {i}"), who: None, voter }),
        })
        .collect();
    app.store.append(&records).await.unwrap();
    aggregator::apply_batch(app.store.as_ref(), &records, None).await.unwrap();
    let full = app.ask(event, "one too many", None).await;
    assert_eq!(full.status, StatusCode::CONFLICT, "{}", full.json);
    assert_eq!(app.records().await.len(), records.len());
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    /// A non-empty path segment: a real id, junk, or percent-encoded arbitrary text.
    fn segment() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(EventId::from_u128(1).to_string()),
            "[0-9A-Za-z]{1,30}",
            "[\\PC]{1,12}".prop_map(|s| urlencode(&s)),
        ]
    }

    fn urlencode(s: &str) -> String {
        s.bytes().map(|b| format!("%{b:02X}")).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]
        #[test]
        fn any_write_gets_a_json_answer_below_500(
            route in 0usize..4,
            a in segment(),
            b in segment(),
            c in segment(),
            body in proptest::collection::vec(any::<u8>(), 0..1_500),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let app = app().await;
                let (event, secret) = app.create_event().await;
                let uri = match route {
                    0 => format!("/api/event/{a}"),
                    1 => format!("/api/vote/{a}/{b}"),
                    2 => format!("/api/event/{event}/questions/{secret}/{a}/toggle/{b}"),
                    _ => format!("/api/event/{a}/questions/{b}/{c}/toggle/hidden"),
                };
                // `send` asserts that every refusal is JSON and not cacheable.
                let reply = app.post(&uri, body, None).await;
                prop_assert!(reply.status.as_u16() < 500, "{uri}: {}", reply.status);
                Ok(())
            })?;
        }
    }
}

#[tokio::test]
async fn an_expired_event_takes_no_more_questions_or_moderation() {
    let app = app().await;
    let id = app.expired_event().await;
    assert_eq!(app.ask(id, "too late now", None).await.status, StatusCode::NOT_FOUND);
    let toggle = format!("/api/event/{id}/questions/s/{}/toggle/hidden", QuestionId::from_u128(1));
    assert_eq!(app.post(&toggle, "on", None).await.status, StatusCode::NOT_FOUND);
    assert!(app.records().await.is_empty());
}

#[tokio::test]
async fn an_expired_event_takes_no_more_votes() {
    let app = app().await;
    let event = app.expired_event().await;
    let question = QuestionId(ulid::Ulid::new());
    let asker = VoterId::random();
    let asked = Record {
        id: ledger::RecordId(ulid::Ulid::new()),
        event,
        question,
        region: "test".into(),
        body: RecordBody::Asked(ledger::Asked { text: "asked while it was live".into(), who: None, voter: asker }),
    };
    app.store.append(std::slice::from_ref(&asked)).await.unwrap();
    app.fold().await;
    assert_eq!(app.votes(question).await, 1, "the question is in the projection");

    for (direction, voter) in [("up", None), ("down", Some(asker))] {
        let reply = app.post(&format!("/api/vote/{question}/{direction}"), Body::empty(), voter).await;
        assert_eq!(
            (reply.status, reply.json.clone()),
            (StatusCode::NOT_FOUND, json!({ "error": "no such event" })),
            "a vote {direction} on an expired event"
        );
        assert!(reply.set_cookie().is_none(), "a refused vote mints no voter");
    }
    assert_eq!(app.records().await, vec![asked], "nothing appended");
    app.fold().await;
    assert_eq!(app.votes(question).await, 1);
}
