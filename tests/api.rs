//! The HTTP API as a guest's and a host's browser see it: the whole embedded service on a
//! real socket, driven through typed clients. Every route, every refusal, and hostile input.

#[path = "api/helpers.rs"]
mod helpers;

use std::time::Duration;

use helpers::{assert_error, ok_json, spawn_app, Event, TestApp, Toggle, Vote};
use ledger::{EventId, QuestionId};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// The app with a new event.
async fn app_with_event() -> (TestApp, Event) {
    let app = spawn_app().await;
    let event = app.create_event().await;
    (app, event)
}

/// The app with a new event and one question in it, folded into the lists.
async fn app_with_question(text: &str) -> (TestApp, Event, QuestionId) {
    let (app, event) = app_with_event().await;
    let question = app.ask(&event, text).await;
    app.settled().await;
    (app, event, question)
}

#[tokio::test]
async fn a_host_creates_an_event_that_guests_can_find() {
    let (app, event) = app_with_event().await;
    assert_eq!(event.secret.len(), 32);
    let found = app.get(&format!("/api/event/{}", event.id)).await;
    assert_eq!(ok_json(found).await, json!({}));
    assert_error(app.get(&format!("/api/event/{}", EventId::from_u128(1))).await, StatusCode::NOT_FOUND).await;
    assert_error(app.get("/api/event/not-a-ulid").await, StatusCode::BAD_REQUEST).await;
    assert_eq!(app.guest_list(&event).await, json!([]));
    app.stop().await;
}

#[tokio::test]
async fn a_question_is_listed_with_its_askers_vote_and_its_text() {
    let (app, event) = app_with_event().await;
    let response = app.try_ask(&event.id.to_string(), "  What is an event-sourced ledger? ", Some("Ada")).await;
    let cookie = response.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("voter=") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
    let question: QuestionId = ok_json(response).await["id"].as_str().unwrap().parse().unwrap();
    app.settled().await;

    assert_eq!(app.guest_list(&event).await, json!([{ "qid": question.to_string(), "votes": 1, "hidden": false }]));
    let texts = app.get(&format!("/api/questions/{question}")).await;
    assert_eq!(texts.headers()["cache-control"], "max-age=864001, immutable");
    assert_eq!(
        ok_json(texts).await,
        json!({ question.to_string(): {
            "text": "What is an event-sourced ledger?", "when": question.unix_seconds(), "who": "Ada"
        }})
    );
    app.stop().await;
}

#[tokio::test]
async fn a_guest_gets_their_own_questions_and_votes_from_the_server() {
    let (app, event, mine) = app_with_question("Which of these questions are mine?").await;
    let bob = app.new_guest();
    let bobs = bob.ask(&event, "And which of them are Bob's?").await;
    let withdrawn = bob.ask(&event, "Will a withdrawn vote still count?").await;
    app.settled().await;
    app.vote(bobs, Vote::Up).await;
    app.vote(withdrawn, Vote::Up).await;
    app.vote(withdrawn, Vote::Down).await;
    app.settled().await;
    let path = format!("/api/event/{}/mine", event.id);
    let response = app.get(&path).await;
    assert_eq!(response.headers()["cache-control"], "private, no-store", "one guest's answer is never cached");
    let mut voted = vec![mine.to_string(), bobs.to_string()];
    voted.sort();
    assert_eq!(ok_json(response).await, json!({ "asked": [mine.to_string()], "voted": voted }));
    let mut bobs_own = vec![bobs.to_string(), withdrawn.to_string()];
    bobs_own.sort();
    assert_eq!(ok_json(bob.get(&path).await).await, json!({ "asked": bobs_own, "voted": bobs_own }));
    // A guest with no cookie yet has done nothing; an unknown event is a 404.
    assert_eq!(ok_json(app.new_guest().get(&path).await).await, json!({ "asked": [], "voted": [] }));
    assert_error(app.get(&format!("/api/event/{}/mine", EventId::from_u128(1))).await, StatusCode::NOT_FOUND).await;
    app.stop().await;
}

#[tokio::test]
async fn each_guest_has_one_vote_per_question_and_can_take_it_back() {
    let (app, event, question) = app_with_question("Will votes be counted once?").await;
    let bob = app.new_guest();
    let carol = app.new_guest();

    bob.vote(question, Vote::Up).await;
    bob.vote(question, Vote::Up).await;
    app.settled().await;
    assert_eq!(app.votes_listed(&event, question).await, Some(2), "asker + bob, bob once");

    carol.vote(question, Vote::Up).await;
    app.settled().await;
    assert_eq!(app.votes_listed(&event, question).await, Some(3));
    // The answered count is the folded one (before this vote).
    assert_eq!(bob.vote(question, Vote::Down).await, 3);
    app.vote(question, Vote::Down).await; // the asker retracts their own
    bob.vote(question, Vote::Down).await; // retracting twice changes nothing
    app.settled().await;
    assert_eq!(app.votes_listed(&event, question).await, Some(1));
    bob.vote(question, Vote::Up).await;
    app.settled().await;
    assert_eq!(app.votes_listed(&event, question).await, Some(2));

    assert_error(app.post(&format!("/api/vote/{}/up", QuestionId::from_u128(5)), "").await, StatusCode::NOT_FOUND)
        .await;
    assert_error(app.post("/api/vote/01ARZ3NDEKTSV4RRFFQ69G5FA/up", "").await, StatusCode::BAD_REQUEST).await;
    assert_error(app.post(&format!("/api/vote/{question}/sideways"), "").await, StatusCode::BAD_REQUEST).await;
    app.stop().await;
}

#[tokio::test]
async fn the_host_moderates_and_guests_see_the_result() {
    let (app, event) = app_with_event().await;
    let other = app.create_event().await;
    let rude = app.ask(&event, "A rude question here").await;
    let good = app.ask(&event, "A good question here").await;
    let elsewhere = app.ask(&other, "Another event's question").await;
    app.settled().await;

    assert_eq!(app.toggle(&event, rude, Toggle::Hidden, true).await, json!({ "hidden": true }));
    let answered = app.toggle(&event, good, Toggle::Answered, true).await;
    let answered_at = answered["answered"].as_u64().expect("the answer time");
    assert!(answered_at >= good.unix_seconds());
    app.settled().await;

    let guest = app.guest_list(&event).await;
    assert_eq!(guest, json!([{ "qid": good.to_string(), "votes": 1, "hidden": false, "answered": answered_at }]));
    let host = app.host_list(&event).await;
    assert_eq!(host.as_array().unwrap().len(), 2);
    assert_eq!(host[1]["qid"], rude.to_string());
    assert_eq!(host[1]["hidden"], true);

    assert_eq!(app.toggle(&event, good, Toggle::Answered, false).await, json!({}));
    assert_eq!(app.toggle(&event, rude, Toggle::Hidden, false).await, json!({ "hidden": false }));
    app.settled().await;
    assert_eq!(app.guest_list(&event).await.as_array().unwrap().len(), 2);

    // Another event's question is refused as unknown here; wrong secrets are 401.
    assert_error(app.try_toggle(&event, elsewhere, Toggle::Hidden, true).await, StatusCode::NOT_FOUND).await;
    let mut stranger = event.clone();
    stranger.secret = other.secret.clone();
    assert_error(app.try_toggle(&stranger, good, Toggle::Hidden, true).await, StatusCode::UNAUTHORIZED).await;
    assert_error(
        app.get(&format!("/api/event/{}/questions/{}", event.id, other.secret)).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let path = format!("/api/event/{}/questions/{}/{good}/toggle/hidden", event.id, event.secret);
    assert_error(app.post(&path, "maybe").await, StatusCode::BAD_REQUEST).await;
    let path = format!("/api/event/{}/questions/{}/{good}/toggle/pinned", event.id, event.secret);
    assert_error(app.post(&path, "on").await, StatusCode::BAD_REQUEST).await;
    app.stop().await;
}

#[tokio::test]
async fn questions_are_validated_and_bodies_are_limited_to_one_kib() {
    let (app, event) = app_with_event().await;
    let eid = event.id.to_string();
    for text in ["", "   ", "one-word", &"many words ".repeat(60)] {
        assert_error(app.try_ask(&eid, text, None).await, StatusCode::BAD_REQUEST).await;
    }
    assert_error(app.try_ask(&eid, "two words", Some(&"n".repeat(51))).await, StatusCode::BAD_REQUEST).await;
    assert_error(app.post(&format!("/api/event/{eid}"), "{\"body\":").await, StatusCode::BAD_REQUEST).await;
    assert_error(app.try_ask(&eid, &"x ".repeat(600), None).await, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert_error(app.try_ask(&EventId::from_u128(3).to_string(), "two words", None).await, StatusCode::NOT_FOUND).await;
    assert_error(app.try_ask("nope", "two words", None).await, StatusCode::BAD_REQUEST).await;
    app.settled().await;
    assert_eq!(app.guest_list(&event).await, json!([]), "nothing refused was recorded");
    app.stop().await;
}

#[tokio::test]
async fn lists_answer_if_none_match_with_304() {
    let (app, event, question) = app_with_question("Cached or not cached?").await;
    let path = format!("/api/event/{}/questions", event.id);
    let first = app.get(&path).await;
    assert_eq!(first.headers()["cache-control"], "max-age=2");
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();

    let if_none_match = || app.http.get(app.url(&path)).header("if-none-match", &etag).send();
    let again = if_none_match().await.unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert!(again.bytes().await.unwrap().is_empty());

    app.new_guest().vote(question, Vote::Up).await;
    app.settled().await;
    let changed = if_none_match().await.unwrap();
    assert_eq!(changed.status(), StatusCode::OK, "a vote changes the list and its ETag");
    assert_ne!(changed.headers()["etag"].to_str().unwrap(), etag);

    let host = app.get(&format!("/api/event/{}/questions/{}", event.id, event.secret)).await;
    assert_eq!(host.headers()["cache-control"], "private, max-age=1");
    app.stop().await;
}

/// The next `data:` payload of a Server-Sent Events response.
async fn next_push(response: &mut reqwest::Response, pending: &mut String) -> Value {
    loop {
        if let Some(end) = pending.find("\n\n") {
            let message: String = pending.drain(..end + 2).collect();
            let data: Vec<&str> = message.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
            if !data.is_empty() {
                return serde_json::from_str(&data.join("\n")).expect("JSON in a push");
            }
            continue;
        }
        let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk())
            .await
            .expect("a push within 10 s")
            .expect("a readable stream")
            .expect("the stream stays open");
        pending.push_str(std::str::from_utf8(&chunk).expect("UTF-8 pushes"));
    }
}

#[tokio::test]
async fn live_streams_push_each_change() {
    let (app, event, question) = app_with_question("Is this live?").await;

    let mut stream = app.get(&format!("/api/live/{}", event.id)).await;
    assert_eq!(stream.status(), StatusCode::OK);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let mut pending = String::new();
    assert_eq!(next_push(&mut stream, &mut pending).await[0]["votes"], 1);

    app.new_guest().vote(question, Vote::Up).await;
    let mut pushed = next_push(&mut stream, &mut pending).await;
    while pushed[0]["votes"] != 2 {
        pushed = next_push(&mut stream, &mut pending).await;
    }

    let mut host = app.get(&format!("/api/live/{}/{}", event.id, event.secret)).await;
    let mut host_pending = String::new();
    assert_eq!(next_push(&mut host, &mut host_pending).await[0]["votes"], 2);
    app.toggle(&event, question, Toggle::Hidden, true).await;
    assert_eq!(next_push(&mut stream, &mut pending).await, json!([]), "guests lose a hidden question");
    assert_eq!(next_push(&mut host, &mut host_pending).await[0]["hidden"], true);

    assert_error(app.get(&format!("/api/live/{}/wrong", event.id)).await, StatusCode::UNAUTHORIZED).await;
    assert_error(app.get(&format!("/api/live/{}", EventId::from_u128(2))).await, StatusCode::NOT_FOUND).await;
    drop((stream, host));
    app.stop().await;
}

#[tokio::test]
async fn the_host_exports_every_question_as_json_csv_and_markdown() {
    let (app, event) = app_with_event().await;
    let kept = app.ask(&event, "Kept, with \"quotes\" and | pipes").await;
    let hidden = app.ask(&event, "Hidden but still exported").await;
    app.settled().await;
    app.toggle(&event, hidden, Toggle::Hidden, true).await;
    app.settled().await;
    let base = format!("/api/export/{}/{}", event.id, event.secret);

    let export = app.get(&base).await;
    assert_eq!(export.headers()["cache-control"], "private, no-store");
    let disposition = export.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert_eq!(disposition, format!("attachment; filename=\"questions-{}.json\"", event.id));
    let rows = ok_json(export).await;
    assert_eq!(rows[0]["qid"], kept.to_string());
    assert_eq!(rows[0]["text"], "Kept, with \"quotes\" and | pipes");
    assert_eq!(rows[1]["hidden"], true);

    let csv = app.get(&format!("{base}?format=csv")).await;
    assert!(csv.headers()["content-disposition"].to_str().unwrap().ends_with(".csv\""));
    let csv = csv.bytes().await.unwrap();
    // A UTF-8 byte-order mark first, so spreadsheets read the text as UTF-8.
    let csv = String::from_utf8(csv.to_vec()).unwrap();
    let csv = csv.strip_prefix('\u{feff}').unwrap_or_else(|| panic!("the CSV starts with a byte-order mark: {csv:?}"));
    assert!(csv.starts_with("qid,text,who,asked_at,votes,answered_at,hidden\n"), "{csv}");
    assert!(csv.contains("\"Kept, with \"\"quotes\"\" and | pipes\""), "{csv}");
    assert_eq!(csv.lines().count(), 3);

    let md = app.get(&format!("{base}?format=md")).await.text().await.unwrap();
    assert!(md.starts_with("| asked at |"), "{md}");
    assert!(md.contains("\\| pipes"), "{md}");
    assert_eq!(md.lines().count(), 4);

    assert_error(app.get(&format!("{base}?format=pdf")).await, StatusCode::BAD_REQUEST).await;
    assert_error(app.get(&format!("/api/export/{}/nope", event.id)).await, StatusCode::UNAUTHORIZED).await;
    app.stop().await;
}

#[tokio::test]
async fn question_texts_refuse_malformed_and_too_many_ids() {
    let (app, _, question) = app_with_question("Text lookups please").await;
    let unknown = QuestionId::from_u128(11);
    let partial = app.get(&format!("/api/questions/{question},{unknown}")).await;
    assert_eq!(partial.headers()["cache-control"], "max-age=2", "a missing text may appear soon");
    assert_eq!(ok_json(partial).await.as_object().unwrap().len(), 1);
    assert_error(app.get(&format!("/api/questions/{unknown}")).await, StatusCode::NOT_FOUND).await;
    assert_error(app.get(&format!("/api/questions/{question},garbage")).await, StatusCode::BAD_REQUEST).await;
    let many = vec![question.to_string(); 101].join(",");
    assert_error(app.get(&format!("/api/questions/{many}")).await, StatusCode::BAD_REQUEST).await;
    app.stop().await;
}

#[tokio::test]
async fn health_and_metrics_are_served() {
    let app = spawn_app().await;
    assert_eq!(ok_json(app.get("/healthz").await).await, json!({ "status": "ok" }));
    app.create_event().await;
    let metrics = app.get("/metrics").await;
    assert_eq!(metrics.status(), StatusCode::OK);
    let text = metrics.text().await.unwrap();
    assert!(text.contains("http_requests_total"), "{text}");
    app.stop().await;
}

#[tokio::test]
async fn hostile_input_never_breaks_the_service() {
    let (app, event, question) = app_with_question("Still standing after this?").await;
    let eid = event.id;
    let long = "A".repeat(8_000);
    let gets = [
        "/api/event/%00".to_owned(),
        "/api/event/%2e%2e%2f%2e%2e%2fetc%2fpasswd".to_owned(),
        format!("/api/event/{long}"),
        "/api/questions/%FF%FE".to_owned(),
        format!("/api/questions/{}", ",".repeat(500)),
        format!("/api/event/{eid}/questions/%F0%9F%92%A5"),
        format!("/api/event/{eid}/questions/{long}"),
        format!("/api/export/{eid}/{}?format=csv&format=md", event.secret),
        format!("/api/export/{eid}/{}?format=%00", event.secret),
        format!("/api/live/{eid}/%00"),
        "/api/event/7ZZZZZZZZZZZZZZZZZZZZZZZZZ".to_owned(),
        "/api/event/8ZZZZZZZZZZZZZZZZZZZZZZZZZ".to_owned(),
    ];
    for path in &gets {
        let response = app.get(path).await;
        assert!(response.status().is_client_error(), "{path}: {}", response.status());
    }
    let posts: Vec<(String, Vec<u8>)> = vec![
        (format!("/api/event/{eid}"), "[".repeat(900).into_bytes()),
        (format!("/api/event/{eid}"), b"{\"body\": \"\\u0000 \\u0000\", \"asker\": 7}".to_vec()),
        (format!("/api/event/{eid}"), vec![0xff, 0xfe, 0x00, 0x80]),
        (format!("/api/event/{eid}"), b"{\"body\": [\"two\", \"words\"]}".to_vec()),
        (format!("/api/event/{eid}/questions/{}/{question}/toggle/hidden", event.secret), vec![0xff, 0xfe]),
        (format!("/api/event/{eid}/questions/{}/{question}/toggle/hidden", event.secret), vec![b'o'; 5_000]),
        (format!("/api/vote/{question}/up%00"), Vec::new()),
        (format!("/api/vote/{question}/{long}"), Vec::new()),
    ];
    for (path, body) in posts {
        let response = app.post(&path, body).await;
        assert!(response.status().is_client_error(), "{path}: {}", response.status());
    }
    let cookie = app
        .http
        .post(app.url(&format!("/api/vote/{question}/up")))
        .header("cookie", format!("voter={}; {}", "Z".repeat(300), "x=y; ".repeat(100)))
        .header("cookie", reqwest::header::HeaderValue::from_bytes(b"voter=\xff\xfe; =; ;;").unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(cookie.status(), StatusCode::OK, "a bad cookie is replaced, never refused");

    assert_eq!(ok_json(app.get("/healthz").await).await, json!({ "status": "ok" }));
    app.settled().await;
    assert_eq!(app.votes_listed(&event, question).await, Some(2), "only the one valid vote counted");
    app.stop().await;
}
