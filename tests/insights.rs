//! The host's insights over a real socket, on whichever backend the suite runs against
//! (embedded SQLite by default; DynamoDB on moto with `WWW_TEST_BACKEND=dynamodb` under
//! `.ci/with-moto`): the list at an instant, the timeline's last point, the audit, and the
//! refusals (401, 400, 404). And `inspect --event EID --bursts` run as the binary.

#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

mod command;

use command::bin;

use helpers::{assert_error, ok_json, spawn_app, Toggle, Vote};
use ledger::ndjson::{event_line, RecordLine};
use ledger::secret::hash_secret;
use ledger::{Asked, EventId, QuestionId, Record, RecordBody, RecordId, VoterId};
use reqwest::StatusCode;
use serde_json::Value;
use ulid::Ulid;

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("a clock after 1970").as_millis() as u64
}

/// (qid, votes, hidden, answered) of each item, whatever else an item carries.
fn summary(list: &Value) -> Vec<(String, u64, bool, Option<u64>)> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|i| {
            (
                i["qid"].as_str().expect("a qid").to_owned(),
                i["votes"].as_u64().expect("votes"),
                i["hidden"].as_bool().expect("hidden"),
                i["answered"].as_u64(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_host_sees_the_session_back_and_nobody_else_does() {
    let app = spawn_app().await;
    let event = app.create_event().await;
    let before = now_ms();
    let (alice, bob) = (app.new_guest(), app.new_guest());
    let first = alice.ask(&event, "what came first here").await;
    let second = bob.ask(&event, "and what came second").await;
    // A vote needs its question in the projection (on DynamoDB the aggregator lags).
    app.settled().await;
    bob.vote(first, Vote::Up).await;
    app.new_guest().vote(first, Vote::Up).await;
    app.settled().await;
    let middle = now_ms();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    app.toggle(&event, second, Toggle::Hidden, true).await;
    app.toggle(&event, second, Toggle::Hidden, false).await;
    app.toggle(&event, first, Toggle::Answered, true).await;
    app.settled().await;

    let host = |path: &str| format!("/api/event/{}/{path}", event.id).replace("{secret}", &event.secret);
    let live = app.host_list(&event).await;
    // Now, the list from the ledger is the live one.
    let now = ok_json(app.get(&host(&format!("questions/{{secret}}?at={}", now_ms()))).await).await;
    assert_eq!(summary(&now), summary(&live));
    // Before the first question, nothing; in the middle, both open and the votes so far.
    let empty = ok_json(app.get(&host(&format!("questions/{{secret}}?at={}", before - 1))).await).await;
    assert_eq!(empty, serde_json::json!([]));
    let then = ok_json(app.get(&host(&format!("questions/{{secret}}?at={middle}"))).await).await;
    assert_eq!(
        summary(&then),
        vec![(first.to_string(), 3, false, None), (second.to_string(), 1, false, None)],
        "the list at {middle}"
    );

    let timeline = ok_json(app.get(&host("timeline/{secret}?step=10")).await).await;
    assert_eq!(timeline["step"], 10);
    assert_eq!(timeline["asked"].as_array().expect("asked").iter().filter_map(Value::as_u64).sum::<u64>(), 2);
    assert_eq!(timeline["new_voters"].as_array().expect("new").iter().filter_map(Value::as_u64).sum::<u64>(), 3);
    for (qid, votes, _, _) in summary(&live) {
        let last = timeline["questions"][&qid].as_array().and_then(|s| s.last()).and_then(Value::as_u64);
        assert_eq!(last, Some(votes), "the timeline ends at the live count of {qid}");
    }

    let audit = ok_json(app.get(&host("audit/{secret}")).await).await;
    let steps: Vec<(String, String, bool)> = audit
        .as_array()
        .expect("an audit")
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().expect("kind").to_owned(),
                e["question"].as_str().expect("question").to_owned(),
                e["on"].as_bool().expect("on"),
            )
        })
        .collect();
    assert_eq!(
        steps,
        vec![
            ("hidden".to_owned(), second.to_string(), true),
            ("hidden".to_owned(), second.to_string(), false),
            ("answered".to_owned(), first.to_string(), true),
        ]
    );
    assert!(audit[0]["at"].as_u64().expect("at") >= middle);
    assert!(audit[0].get("voter").is_none() && audit[0].get("region").is_none());
    let bursts = app.get(&host("bursts/{secret}")).await;
    assert_eq!(bursts.headers()["cache-control"], "private, no-store");
    assert_eq!(bursts.json::<Value>().await.expect("JSON"), serde_json::json!([]));

    // Refusals: a wrong secret, an unknown event, a bad instant or step.
    let unknown = EventId::from_u128(99);
    for path in ["questions/{secret}?at=1", "timeline/{secret}", "audit/{secret}", "bursts/{secret}"] {
        let wrong = format!("/api/event/{}/{}", event.id, path.replace("{secret}", "0123"));
        assert_error(app.get(&wrong).await, StatusCode::UNAUTHORIZED).await;
        let missing = format!("/api/event/{unknown}/{}", path.replace("{secret}", &event.secret));
        assert_error(app.get(&missing).await, StatusCode::NOT_FOUND).await;
    }
    // Guests have no such routes (and `?at=` on the guests' list is the live list).
    for path in ["timeline", "audit", "bursts"] {
        let guest = format!("/api/event/{}/{path}", event.id);
        assert_eq!(app.get(&guest).await.status(), StatusCode::NOT_FOUND, "{guest}");
    }
    let guest_at = ok_json(app.get(&format!("/api/event/{}/questions?at=1", event.id)).await).await;
    assert_eq!(guest_at, app.guest_list(&event).await);
    assert_error(app.get(&host("questions/{secret}?at=noon")).await, StatusCode::BAD_REQUEST).await;
    assert_error(app.get(&host("timeline/{secret}?step=5")).await, StatusCode::BAD_REQUEST).await;
    assert_error(app.get(&host("timeline/{secret}?step=x")).await, StatusCode::BAD_REQUEST).await;
    app.stop().await;
}

#[test]
fn inspect_lists_the_bursts_of_never_seen_voters_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let db = dir.path().join("bursts.db");
    let db = db.to_str().expect("a UTF-8 path");
    let start = now_ms() - 600_000;
    let event = EventId(Ulid::from_parts(start - 1_000, 1));
    let question = QuestionId(Ulid::from_parts(start, 2));
    let line = |ms: u64, seq: u128, body: RecordBody| {
        let record = Record { id: RecordId(Ulid::from_parts(ms, seq)), event, question, region: "test".into(), body };
        serde_json::to_string(&RecordLine::from(&record)).expect("a line")
    };
    let mut lines = vec![event_line(event, &hash_secret("0123456789abcdef0123456789abcdef"))];
    let asker = VoterId::from_u128(1);
    lines.push(line(
        start + 1,
        1,
        RecordBody::Asked(Asked { text: "is this organic".into(), who: None, voter: asker }),
    ));
    // Twelve voters never seen before, within six seconds, three minutes in.
    for i in 0..12u128 {
        let voter = VoterId::from_u128(100 + i);
        lines.push(line(start + 180_000 + i as u64 * 500, 10 + i, RecordBody::Voted { voter, up: true }));
    }
    let import = bin(&["ledger", "import", "--db", db], Some(lines.join("\n").as_bytes()));
    assert!(import.status.success(), "{}", String::from_utf8_lossy(&import.stderr));

    let eid = event.to_string();
    let found = bin(&["inspect", "--event", &eid, "--bursts", "--db", db], None);
    assert!(found.status.success(), "{}", String::from_utf8_lossy(&found.stderr));
    let text = String::from_utf8_lossy(&found.stdout);
    assert!(text.contains(&format!("burst on question {question}: 12 never-seen voters")), "{text}");
    assert!(text.contains("12 of them vote it up now, 92% of its 13 votes"), "{text}");

    let stricter = bin(&["inspect", "--event", &eid, "--bursts", "--burst-voters", "13", "--db", db], None);
    assert!(String::from_utf8_lossy(&stricter.stdout).contains("no bursts"));
    let narrower = bin(&["inspect", "--event", &eid, "--bursts", "--burst-window", "2", "--db", db], None);
    assert!(String::from_utf8_lossy(&narrower.stdout).contains("no bursts"), "5 votes in 2 s are not 10");

    // Refusals: no event, a share out of range, an unknown event.
    assert_eq!(bin(&["inspect", "--bursts", "--db", db], None).status.code(), Some(2));
    let share = bin(&["inspect", "--event", &eid, "--bursts", "--burst-share", "2", "--db", db], None);
    assert!(!share.status.success());
    let unknown = bin(&["inspect", "--event", &EventId::from_u128(5).to_string(), "--bursts", "--db", db], None);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("not in this store"));
}
