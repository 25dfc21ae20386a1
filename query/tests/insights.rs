//! The host's insights through the query router over the real SQLite store: the list at an
//! instant (`?at=`) against the pure fold, the timeline's last point against the live list,
//! the audit, the bursts, and every refusal (401, 400, 404).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use ledger::ports::{EventRow, EventStore, LedgerStore, ProjectionReader};
use ledger::rank::{rank, spotlight_of};
use ledger::secret::hash_secret;
use ledger::{Asked, EventId, Projection, QuestionId, QuestionStanding, Record, RecordBody, RecordId, VoterId};
use ledger_sqlite::{Durability, Options, SqliteStore};
use proptest::prelude::*;
use query::{LiveHub, QueryConfig, QueryState};
use serde_json::{json, Value};
use tower::ServiceExt;
use ulid::Ulid;

const SECRET: &str = "0123456789abcdef0123456789abcdef";
/// The sessions below happen an hour ago, over twenty minutes.
const SESSION_MS: u64 = 20 * 60_000;

struct App {
    router: Router,
    store: Arc<SqliteStore>,
    _dir: tempfile::TempDir,
}

struct Reply {
    status: StatusCode,
    cache_control: String,
    body: Value,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

async fn app() -> App {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(
        dir.path().join("insights.db"),
        Options { durability: Durability::Normal, ..Options::default() },
    )
    .unwrap();
    let router = query::router(QueryState {
        events: store.clone() as Arc<dyn EventStore>,
        projection: store.clone() as Arc<dyn ProjectionReader>,
        ledger: Some(store.clone() as Arc<dyn LedgerStore>),
        config: QueryConfig::default(),
        live: Some(LiveHub::new()),
        metrics: None,
        health: None,
    });
    App { router, store, _dir: dir }
}

impl App {
    async fn get(&self, uri: &str) -> Reply {
        let response = self.router.clone().oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
        let status = response.status();
        let cache_control =
            response.headers().get(header::CACHE_CONTROL).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| panic!("{uri}: not JSON"));
        Reply { status, cache_control, body }
    }

    /// A new event created at `at_ms`.
    async fn event_at(&self, at_ms: u64) -> EventId {
        let id = EventId(Ulid::from_parts(at_ms, rand_bits()));
        let row = EventRow { id, secret_hash: hash_secret(SECRET), expire_unix: u64::MAX / 2 };
        self.store.create_event(&row).await.unwrap();
        id
    }

    /// Appends records and folds them as the aggregator does.
    async fn commit(&self, records: &[Record]) {
        self.store.append(records).await.unwrap();
        aggregator::apply_batch(self.store.as_ref(), records, None).await.unwrap();
    }
}

fn rand_bits() -> u128 {
    rand_u64() as u128
}

fn rand_u64() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

fn record(event: EventId, ms: u64, seq: u128, question: QuestionId, body: RecordBody) -> Record {
    Record { id: RecordId(Ulid::from_parts(ms, seq)), event, question, region: "test".into(), body }
}

fn question_id(start_ms: u64, n: u8) -> QuestionId {
    QuestionId(Ulid::from_parts(start_ms, 1_000 + n as u128))
}

/// One generated action: (ms into the session, question, voter, what).
type Action = (u64, u8, u8, u8);

/// The records a list of actions makes in an event whose session starts at `start_ms`.
fn records_of(event: EventId, start_ms: u64, actions: &[Action]) -> Vec<Record> {
    let mut asked = std::collections::BTreeSet::new();
    actions
        .iter()
        .enumerate()
        .map(|(i, &(offset, q, voter, what))| {
            let question = question_id(start_ms, q);
            let voter = VoterId::from_u128(500 + voter as u128);
            let body = match what {
                0 if asked.insert(q) => RecordBody::Asked(Asked { text: format!("question {q}"), who: None, voter }),
                0..=3 => RecordBody::Voted { voter, up: true },
                4 => RecordBody::Voted { voter, up: false },
                5 => RecordBody::Answered { on: true },
                6 => RecordBody::Answered { on: false },
                7 => RecordBody::Hidden { on: true },
                8 => RecordBody::Hidden { on: false },
                9 => RecordBody::Approved { on: i % 2 == 0 },
                10 => RecordBody::Spotlight { on: i % 3 != 0 },
                _ => RecordBody::Replied { text: format!("answer {i}") },
            };
            record(event, start_ms + offset, i as u128, question, body)
        })
        .collect()
}

/// What a list item says: (qid, votes, hidden, answered at, spotlight, waiting for review,
/// written answer).
type Summary = (String, u64, bool, Option<u64>, bool, bool, Option<String>);

fn item_summary(item: &Value) -> Summary {
    (
        item["qid"].as_str().unwrap().to_owned(),
        item["votes"].as_u64().unwrap(),
        item["hidden"].as_bool().unwrap(),
        item["answered"].as_u64(),
        item["spotlight"].as_bool().unwrap_or(false),
        item["approved"] == false,
        item["reply"].as_str().map(str::to_owned),
    )
}

/// The oracle: the pure fold of the records whose id time is at or before `at_ms`, ranked
/// with "now" = `at_ms` (see [`Summary`]).
fn folded_at(records: &[Record], at_ms: u64) -> Vec<Summary> {
    let mut projection = Projection::new();
    for r in records.iter().filter(|r| r.id.timestamp_ms() <= at_ms) {
        projection.apply(r);
    }
    let mut standings: Vec<QuestionStanding> = projection.questions().map(|q| q.standing).collect();
    let lit = spotlight_of(&standings);
    rank(&mut standings, at_ms);
    standings
        .iter()
        .map(|q| {
            let reply = projection.question(q.id).and_then(|s| s.reply_text()).map(str::to_owned);
            let answered = q.answered_at().map(|a| a.unix_seconds());
            (q.id.to_string(), q.votes, q.is_hidden(), answered, lit == Some(q.id), q.is_pending(), reply)
        })
        .collect()
}

/// Half the records on whole seconds, so that some fall exactly on a step's boundary.
fn actions() -> impl Strategy<Value = Vec<Action>> {
    let offset = prop_oneof![0..SESSION_MS, (0..SESSION_MS / 1_000).prop_map(|s| s * 1_000)];
    proptest::collection::vec((offset, 0u8..5, 0u8..8, 0u8..12), 1..80)
}

/// An instant anywhere from a minute before the session to a minute after it, or exactly
/// the time of one of the records.
fn instant() -> impl Strategy<Value = (bool, u64, usize)> {
    (any::<bool>(), 0..SESSION_MS + 120_000, any::<usize>())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    /// The list `?at=t` is the pure fold of the records with id time ≤ t ranked at t, and
    /// the timeline's last point is the live count of every question.
    #[test]
    fn the_list_at_an_instant_is_the_fold_up_to_it_and_the_timeline_ends_at_the_live_counts(
        actions in actions(),
        (on_a_record, at_offset, record_index) in instant(),
        step_s in 10u64..400,
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let app = app().await;
            let start_ms = (now_ms() - 3_600_000) / 1_000 * 1_000;
            let event = app.event_at(start_ms - 1_000).await;
            let records = records_of(event, start_ms, &actions);
            app.commit(&records).await;
            let at_ms = if on_a_record {
                records[record_index % records.len()].id.timestamp_ms()
            } else {
                start_ms + at_offset - 60_000
            };

            let at = app.get(&format!("/api/event/{event}/questions/{SECRET}?at={at_ms}")).await;
            prop_assert_eq!(at.status, StatusCode::OK);
            prop_assert_eq!(at.cache_control.as_str(), "private, no-store");
            let listed: Vec<_> = at.body.as_array().unwrap().iter().map(item_summary).collect();
            prop_assert_eq!(listed, folded_at(&records, at_ms));

            let live = app.get(&format!("/api/event/{event}/questions/{SECRET}")).await.body;
            let timeline = app.get(&format!("/api/event/{event}/timeline/{SECRET}?step={step_s}")).await;
            prop_assert_eq!(timeline.status, StatusCode::OK);
            let timeline = timeline.body;
            let points = timeline["asked"].as_array().unwrap().len();
            prop_assert!((1..=1_000).contains(&points));
            prop_assert_eq!(timeline["new_voters"].as_array().unwrap().len(), points);
            prop_assert_eq!(timeline["step"].as_u64(), Some(step_s));
            let series = timeline["questions"].as_object().unwrap();
            for item in live.as_array().unwrap() {
                let (qid, votes, ..) = item_summary(item);
                let last = series.get(&qid).map_or(0, |s| s.as_array().unwrap().last().unwrap().as_u64().unwrap());
                prop_assert_eq!(last, votes, "question {}", qid);
            }
            for (qid, values) in series {
                prop_assert_eq!(values.as_array().unwrap().len(), points);
                prop_assert!(live.as_array().unwrap().iter().any(|i| i["qid"] == qid.as_str()));
            }
            // With `top=2`, the same series of the two questions that end with the most votes.
            let top = app.get(&format!("/api/event/{event}/timeline/{SECRET}?step={step_s}&top=2")).await.body;
            let kept = top["questions"].as_object().unwrap();
            prop_assert_eq!(kept.len(), series.len().min(2));
            let last = |values: &Value| values.as_array().unwrap().last().unwrap().as_u64().unwrap();
            for (qid, values) in kept {
                prop_assert_eq!(values, &series[qid]);
            }
            let least_kept = kept.values().map(last).min().unwrap_or(0);
            for (qid, values) in series.iter().filter(|(qid, _)| !kept.contains_key(*qid)) {
                prop_assert!(last(values) <= least_kept, "{} left out with more votes", qid);
            }
            prop_assert_eq!(&top["asked"], &timeline["asked"]);

            // Point i is the fold of the records before the end of step i: the list `?at=`
            // the step's last millisecond.
            let start = timeline["start"].as_u64().unwrap();
            for point in 0..points {
                let end_ms = start + (point as u64 + 1) * step_s * 1_000 - 1;
                for (qid, votes, ..) in folded_at(&records, end_ms) {
                    let value = series.get(&qid).map_or(0, |s| s[point].as_u64().unwrap());
                    prop_assert_eq!(value, votes, "question {} at point {}", qid, point);
                }
            }
            Ok::<(), TestCaseError>(())
        })?;
    }
}

#[tokio::test]
async fn insights_are_for_the_host_only_and_refuse_bad_instants_and_steps() {
    let app = app().await;
    let event = app.event_at(now_ms() - 60_000).await;
    let unknown = EventId::from_u128(77);
    let routes = [
        format!("questions/{{secret}}?at={}", now_ms()),
        "timeline/{secret}?step=60".to_owned(),
        "audit/{secret}".to_owned(),
        "bursts/{secret}".to_owned(),
    ];
    for route in &routes {
        let ok = app.get(&format!("/api/event/{event}/{}", route.replace("{secret}", SECRET))).await;
        assert_eq!(ok.status, StatusCode::OK, "{route}");
        assert_eq!(ok.cache_control, "private, no-store", "{route}");
        let wrong = app.get(&format!("/api/event/{event}/{}", route.replace("{secret}", "not-the-secret"))).await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{route}");
        assert!(wrong.body["error"].is_string());
        assert_eq!(wrong.cache_control, "no-store");
        let missing = app.get(&format!("/api/event/{unknown}/{}", route.replace("{secret}", SECRET))).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND, "{route}");
        let malformed = app.get(&format!("/api/event/nope/{}", route.replace("{secret}", SECRET))).await;
        assert_eq!(malformed.status, StatusCode::BAD_REQUEST, "{route}");
    }
    for query in ["at=yesterday", "at=-5", "at=", "at=1.5", "at=99999999999999999999999"] {
        let bad = app.get(&format!("/api/event/{event}/questions/{SECRET}?{query}")).await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(bad.body["error"].is_string());
    }
    for query in ["step=9", "step=0", "step=soon", "step=-10", "top=0", "top=some", "step=60&top=-1"] {
        let bad = app.get(&format!("/api/event/{event}/timeline/{SECRET}?{query}")).await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{query}");
    }
    // No step: a minute. An event without records: an empty timeline.
    let empty = app.get(&format!("/api/event/{event}/timeline/{SECRET}")).await;
    assert_eq!(empty.body, json!({ "start": 0, "step": 60, "questions": {}, "asked": [], "new_voters": [] }));
    // A bad step of an unknown event is still a bad step; a wrong secret is refused before the read.
    assert_eq!(
        app.get(&format!("/api/event/{unknown}/timeline/{SECRET}?step=1")).await.status,
        StatusCode::BAD_REQUEST
    );
    // Without `at`, the host list is the live one, cached as before.
    let live = app.get(&format!("/api/event/{event}/questions/{SECRET}")).await;
    assert_eq!((live.status, live.cache_control.as_str()), (StatusCode::OK, "private, max-age=1"));
}

#[tokio::test]
async fn a_host_without_a_ledger_offers_no_insights() {
    let app = app().await;
    let event = app.event_at(now_ms()).await;
    let router = query::router(QueryState {
        events: app.store.clone() as Arc<dyn EventStore>,
        projection: app.store.clone() as Arc<dyn ProjectionReader>,
        ledger: None,
        config: QueryConfig::default(),
        live: None,
        metrics: None,
        health: None,
    });
    let bare = App { router, store: app.store.clone(), _dir: tempfile::tempdir().unwrap() };
    let reply = bare.get(&format!("/api/event/{event}/timeline/{SECRET}")).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_audit_lists_every_moderation_record_in_order_with_its_undoing() {
    let app = app().await;
    let start = now_ms() - 600_000;
    let event = app.event_at(start - 1).await;
    let q = question_id(start, 1);
    let asker = VoterId::from_u128(9);
    let records = vec![
        record(event, start, 1, q, RecordBody::Asked(Asked { text: "what about it".into(), who: None, voter: asker })),
        record(event, start + 1_000, 1, q, RecordBody::Voted { voter: VoterId::from_u128(10), up: true }),
        record(event, start + 3_000, 1, q, RecordBody::Answered { on: true }),
        record(event, start + 2_000, 1, q, RecordBody::Hidden { on: true }),
        record(event, start + 4_000, 1, q, RecordBody::Hidden { on: false }),
    ];
    app.commit(&records).await;
    let audit = app.get(&format!("/api/event/{event}/audit/{SECRET}")).await;
    assert_eq!(audit.status, StatusCode::OK);
    let qid = q.to_string();
    assert_eq!(
        audit.body,
        json!([
            { "at": start + 2_000, "kind": "hidden", "question": qid, "on": true },
            { "at": start + 3_000, "kind": "answered", "question": qid, "on": true },
            { "at": start + 4_000, "kind": "hidden", "question": qid, "on": false },
        ])
    );
    // The list at each instant shows what the audit says happened by then.
    let at = |ms: u64| format!("/api/event/{event}/questions/{SECRET}?at={ms}");
    assert_eq!(app.get(&at(start + 2_500)).await.body[0]["hidden"], true);
    assert_eq!(app.get(&at(start + 4_000)).await.body[0]["hidden"], false);
    assert_eq!(app.get(&at(start + 4_000)).await.body[0]["answered"], (start + 3_000) / 1_000);
    assert_eq!(app.get(&at(start - 1)).await.body, json!([]));
}

#[tokio::test]
async fn bursts_of_never_seen_voters_are_flagged_with_their_share() {
    let app = app().await;
    let start = now_ms() - 600_000;
    let event = app.event_at(start - 1).await;
    let (target, other) = (question_id(start, 1), question_id(start, 2));
    let ask = |voter: u128| {
        RecordBody::Asked(Asked { text: "a question".into(), who: None, voter: VoterId::from_u128(voter) })
    };
    let mut records = vec![record(event, start, 1, target, ask(1)), record(event, start, 2, other, ask(2))];
    // Fifteen voters never seen before vote for `target` within 7 s, a minute in.
    for i in 0..15u128 {
        let voter = VoterId::from_u128(1_000 + i);
        records.push(record(
            event,
            start + 60_000 + i as u64 * 500,
            10 + i,
            target,
            RecordBody::Voted { voter, up: true },
        ));
    }
    // A steady trickle on `other`: one new voter every 30 s.
    for i in 0..15u128 {
        let voter = VoterId::from_u128(2_000 + i);
        records.push(record(
            event,
            start + 90_000 + i as u64 * 30_000,
            40 + i,
            other,
            RecordBody::Voted { voter, up: true },
        ));
    }
    app.commit(&records).await;
    let bursts = app.get(&format!("/api/event/{event}/bursts/{SECRET}")).await;
    assert_eq!(bursts.status, StatusCode::OK);
    let list = bursts.body.as_array().unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["question"], target.to_string());
    assert_eq!(list[0]["new_voters"], 15);
    assert_eq!(list[0]["votes"], 16);
    assert_eq!((list[0]["start"].as_u64(), list[0]["end"].as_u64()), (Some(start + 60_000), Some(start + 67_000)));
    assert!((list[0]["share"].as_f64().unwrap() - 15.0 / 16.0).abs() < 1e-9);
}

#[tokio::test]
async fn the_audit_shows_every_kind_of_the_host_tools_with_its_value_and_never_a_secret_hash() {
    let app = app().await;
    let start = now_ms() - 600_000;
    let event = app.event_at(start - 1).await;
    let q = question_id(start, 1);
    let subject = ledger::event_subject(event);
    let voter = VoterId::from_u128(9);
    let records = vec![
        record(event, start, 1, q, RecordBody::Asked(Asked { text: "what about it".into(), who: None, voter })),
        record(event, start + 1_000, 1, q, RecordBody::Approved { on: true }),
        record(event, start + 2_000, 1, q, RecordBody::Spotlight { on: true }),
        record(event, start + 3_000, 1, q, RecordBody::Replied { text: "Next week, in room 2".into() }),
        record(event, start + 4_000, 1, subject, RecordBody::Titled { title: "All hands".into() }),
        record(event, start + 5_000, 1, subject, RecordBody::BlockedWordsSet { words: vec!["spam".into()] }),
        record(event, start + 6_000, 1, subject, RecordBody::CohostMinted { secret_hash: hash_secret("cohost") }),
    ];
    app.commit(&records).await;
    let audit = app.get(&format!("/api/event/{event}/audit/{SECRET}")).await;
    assert_eq!(audit.status, StatusCode::OK);
    let qid = q.to_string();
    assert_eq!(
        audit.body,
        json!([
            { "at": start + 1_000, "kind": "approved", "question": qid, "on": true },
            { "at": start + 2_000, "kind": "spotlight", "question": qid, "on": true },
            { "at": start + 3_000, "kind": "reply", "question": qid, "text": "Next week, in room 2" },
            { "at": start + 4_000, "kind": "title", "title": "All hands" },
            { "at": start + 5_000, "kind": "blocked_words", "words": ["spam"] },
            { "at": start + 6_000, "kind": "cohost_minted" },
        ])
    );
    // The list at an instant carries the written answer of that instant only.
    let before = app.get(&format!("/api/event/{event}/questions/{SECRET}?at={}", start + 2_500)).await;
    assert!(before.body[0].get("reply").is_none(), "{}", before.body);
    assert_eq!(before.body[0]["spotlight"], true);
    let after = app.get(&format!("/api/event/{event}/questions/{SECRET}?at={}", start + 3_000)).await;
    assert_eq!(after.body[0]["reply"], "Next week, in room 2");
}
