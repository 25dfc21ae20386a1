//! The host's tools over HTTP (design §7): event settings, the approval queue, the
//! spotlight, written answers, closing questions and co-host links, each route and each
//! refusal, on the whole service over a real socket. Embedded SQLite by default; with
//! `WWW_TEST_BACKEND=dynamodb` under `.ci/with-moto`, DynamoDB and SQS.

#[path = "api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use helpers::{assert_error, ok_json, spawn_app, Client, Event, TestApp, Toggle, Vote};
use ledger::QuestionId;
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn post_json(client: &Client, path: &str, body: Value) -> reqwest::Response {
    client
        .http
        .post(client.url(path))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("the server answers")
}

fn settings_path(event: &Event, secret: &str) -> String {
    format!("/api/event/{}/settings/{secret}", event.id)
}

async fn set(app: &TestApp, event: &Event, change: Value) -> Value {
    ok_json(post_json(app, &settings_path(event, &event.secret), change).await).await
}

async fn toggle_as(
    client: &Client,
    event: &Event,
    secret: &str,
    q: QuestionId,
    what: &str,
    on: bool,
) -> reqwest::Response {
    let path = format!("/api/event/{}/questions/{secret}/{q}/toggle/{what}", event.id);
    client.post(&path, if on { "on" } else { "off" }).await
}

async fn reply_as(client: &Client, event: &Event, secret: &str, q: QuestionId, text: &str) -> reqwest::Response {
    post_json(client, &format!("/api/event/{}/questions/{secret}/{q}/reply", event.id), json!({ "text": text })).await
}

fn item(list: &Value, q: QuestionId) -> Option<&Value> {
    list.as_array()?.iter().find(|i| i["qid"] == q.to_string())
}

fn qids(list: &Value) -> Vec<String> {
    list.as_array().expect("a list").iter().map(|i| i["qid"].as_str().expect("qid").to_owned()).collect()
}

#[tokio::test]
async fn settings_are_partial_last_writer_wins_per_field_and_the_guests_never_see_the_words() {
    let app = spawn_app().await;
    let event = app.create_event().await;
    let unknown = app.create_event().await;
    assert_eq!(ok_json(app.get(&format!("/api/event/{}", event.id)).await).await, json!({}), "as the original");

    let full = set(&app, &event, json!({ "title": "  Town hall  ", "blocked_words": ["Spam", " buy  NOW "] })).await;
    assert_eq!(
        full,
        json!({ "title": "Town hall", "moderation": "off", "asking": "open", "blocked_words": ["spam", "buy now"] })
    );
    // The answer is the settings as folded so far with this change on top.
    app.settled().await;
    let full = set(&app, &event, json!({ "moderation": "pre-approve" })).await;
    assert_eq!(full["title"], "Town hall", "a partial change keeps the other fields");
    assert_eq!(full["moderation"], "pre-approve");
    app.settled().await;
    let set_twice = set(&app, &event, json!({ "title": "Second", "asking": "closed" })).await;
    assert_eq!(set_twice["moderation"], "pre-approve");
    app.settled().await;

    let guests = ok_json(app.get(&format!("/api/event/{}", event.id)).await).await;
    assert_eq!(guests, json!({ "title": "Second", "moderation": "pre-approve", "asking": "closed" }));
    let host = ok_json(app.get(&settings_path(&event, &event.secret)).await).await;
    assert_eq!(host["blocked_words"], json!(["spam", "buy now"]));
    assert_eq!(host["title"], "Second");
    // An empty title removes it.
    set(&app, &event, json!({ "title": "" })).await;
    app.settled().await;
    assert!(ok_json(app.get(&format!("/api/event/{}", event.id)).await).await.get("title").is_none());
    // Each event's settings are its own.
    assert_eq!(ok_json(app.get(&format!("/api/event/{}", unknown.id)).await).await, json!({}));

    // Refusals: the wrong secret, over-long or unknown values, a malformed body.
    assert_error(
        post_json(&app, &settings_path(&event, &unknown.secret), json!({ "title": "x" })).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_error(app.get(&settings_path(&event, "nope")).await, StatusCode::UNAUTHORIZED).await;
    let long = "t".repeat(121);
    assert_error(
        post_json(&app, &settings_path(&event, &event.secret), json!({ "title": long })).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_error(
        post_json(&app, &settings_path(&event, &event.secret), json!({ "asking": "ajar" })).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_error(
        post_json(&app, &settings_path(&event, &event.secret), json!({ "colour": "red" })).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_error(app.post(&settings_path(&event, &event.secret), "{").await, StatusCode::BAD_REQUEST).await;
    let many: Vec<String> = (0..101).map(|i| format!("w{i}")).collect();
    assert_error(
        post_json(&app, &settings_path(&event, &event.secret), json!({ "blocked_words": many })).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn closed_asking_refuses_questions_with_a_reason_but_votes_still_count() {
    let app = spawn_app().await;
    let event = app.create_event().await;
    let question = app.ask(&event, "asked while open?").await;
    app.settled().await;
    set(&app, &event, json!({ "asking": "closed" })).await;
    app.settled().await;

    let refused = app.try_ask(&event.id.to_string(), "asked while closed?", None).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(ok_json_any(refused).await, json!({ "error": "questions are closed" }));
    let guest = app.new_guest();
    guest.vote(question, Vote::Up).await;
    app.settled().await;
    assert_eq!(app.votes_listed(&event, question).await, Some(2), "a vote counts while asking is closed");

    set(&app, &event, json!({ "asking": "open" })).await;
    app.settled().await;
    app.ask(&event, "asked when open again?").await;
    app.stop().await;
}

async fn ok_json_any(response: reqwest::Response) -> Value {
    serde_json::from_str(&response.text().await.expect("a body")).expect("JSON")
}

#[tokio::test]
async fn pre_approved_questions_wait_seen_by_hosts_and_their_asker_only() {
    let app = spawn_app().await;
    let event = app.create_event().await;
    let open = app.ask(&event, "asked before moderation?").await;
    set(&app, &event, json!({ "moderation": "pre-approve" })).await;
    app.settled().await;

    let asker = app.new_guest();
    let waiting = asker.ask(&event, "will this be approved?").await;
    app.settled().await;
    let host = app.host_list(&event).await;
    assert_eq!(item(&host, waiting).expect("the host sees it")["approved"], false);
    assert!(item(&host, open).expect("listed").get("approved").is_none(), "approved items carry nothing new");
    let own = asker.guest_list(&event).await;
    assert_eq!(item(&own, waiting).expect("its asker sees it")["pending"], true);
    assert!(item(&own, open).expect("listed").get("pending").is_none());
    let other = app.new_guest();
    assert!(item(&other.guest_list(&event).await, waiting).is_none(), "another guest does not see it");
    assert!(item(&app.guest_list(&event).await, waiting).is_none(), "nor does a guest without a cookie");
    let mine = ok_json(asker.get(&format!("/api/event/{}/mine", event.id)).await).await;
    assert_eq!(mine["pending"], json!([waiting.to_string()]));

    let approved = ok_json(toggle_as(&app, &event, &event.secret, waiting, "approved", true).await).await;
    assert_eq!(approved, json!({ "approved": true }));
    app.settled().await;
    assert!(item(&other.guest_list(&event).await, waiting).is_some(), "approved: everyone sees it");
    assert!(item(&asker.guest_list(&event).await, waiting).expect("listed").get("pending").is_none());
    assert!(item(&app.host_list(&event).await, waiting).expect("listed").get("approved").is_none());
    let mine = ok_json(asker.get(&format!("/api/event/{}/mine", event.id)).await).await;
    assert!(mine.get("pending").is_none(), "{mine}");
    app.stop().await;
}

#[tokio::test]
async fn a_blocked_word_sends_a_question_to_review_even_without_moderation() {
    let app = spawn_app().await;
    let event = app.create_event().await;
    set(&app, &event, json!({ "blocked_words": ["spam", "buy now"] })).await;
    app.settled().await;
    let blocked = app.ask(&event, "is this SPAM, really?").await;
    let phrase = app.ask(&event, "should we buy now or later").await;
    let fine = app.ask(&event, "what about spammers then?").await;
    app.settled().await;
    let other = app.new_guest();
    let list = other.guest_list(&event).await;
    assert!(item(&list, blocked).is_none() && item(&list, phrase).is_none(), "{list}");
    assert!(item(&list, fine).is_some(), "a word inside another word is not blocked");
    let host = app.host_list(&event).await;
    assert_eq!(item(&host, blocked).expect("listed")["approved"], false);
    app.stop().await;
}

#[tokio::test]
async fn one_spotlight_per_event_first_in_every_list_until_moved_or_answered() {
    let app = spawn_app().await;
    let event = app.create_event().await;
    let (a, b) = (app.ask(&event, "first question here?").await, app.ask(&event, "second question here?").await);
    app.settled().await;
    app.new_guest().vote(a, Vote::Up).await;
    app.settled().await;
    assert_eq!(qids(&app.guest_list(&event).await), [a.to_string(), b.to_string()]);

    assert_eq!(
        ok_json(toggle_as(&app, &event, &event.secret, b, "spotlight", true).await).await,
        json!({ "spotlight": true })
    );
    app.settled().await;
    for list in [app.guest_list(&event).await, app.host_list(&event).await] {
        assert_eq!(qids(&list), [b.to_string(), a.to_string()], "the spotlight leads: {list}");
        assert_eq!(list[0]["spotlight"], true);
        assert!(list[1].get("spotlight").is_none());
    }
    toggle_as(&app, &event, &event.secret, a, "spotlight", true).await;
    app.settled().await;
    let list = app.guest_list(&event).await;
    assert_eq!((list[0]["qid"].as_str(), &list[0]["spotlight"]), (Some(a.to_string().as_str()), &json!(true)));
    assert!(item(&list, b).expect("listed").get("spotlight").is_none(), "a newer spotlight moves it: {list}");
    app.toggle(&event, a, Toggle::Answered, true).await;
    app.settled().await;
    let list = app.guest_list(&event).await;
    assert!(
        list.as_array().expect("a list").iter().all(|i| i.get("spotlight").is_none()),
        "answering clears it: {list}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_written_answer_is_listed_exported_replaced_and_removed() {
    let app = spawn_app().await;
    let event = app.create_event().await;
    let other = app.create_event().await;
    let q = app.ask(&event, "when is the next release?").await;
    let foreign = app.ask(&other, "a question elsewhere?").await;
    app.settled().await;

    let answer = ok_json(reply_as(&app, &event, &event.secret, q, "  Next week.  ").await).await;
    assert_eq!(answer, json!({ "reply": "Next week." }));
    app.settled().await;
    assert_eq!(item(&app.guest_list(&event).await, q).expect("listed")["reply"], "Next week.");
    assert_eq!(item(&app.host_list(&event).await, q).expect("listed")["reply"], "Next week.");
    let csv =
        app.get(&format!("/api/export/{}/{}?format=csv", event.id, event.secret)).await.text().await.expect("csv");
    assert!(
        csv.starts_with("\u{feff}qid,text,who,asked_at,votes,answered_at,hidden,reply\n")
            && csv.contains(",Next week."),
        "{csv}"
    );
    let md = app.get(&format!("/api/export/{}/{}?format=md", event.id, event.secret)).await.text().await.expect("md");
    assert!(md.contains("| reply |") && md.contains("| Next week. |"), "{md}");
    let json = ok_json(app.get(&format!("/api/export/{}/{}?format=json", event.id, event.secret)).await).await;
    assert_eq!(json[0]["reply"], "Next week.");

    // 1,000 characters of four bytes each: over the guests' 1 KiB body limit, within the host's.
    let longest = "😀".repeat(1_000);
    assert_eq!(ok_json(reply_as(&app, &event, &event.secret, q, &longest).await).await["reply"], longest.as_str());
    assert_error(reply_as(&app, &event, &event.secret, q, &"r".repeat(1_001)).await, StatusCode::BAD_REQUEST).await;
    assert_error(reply_as(&app, &event, &other.secret, q, "no").await, StatusCode::UNAUTHORIZED).await;
    assert_error(reply_as(&app, &event, &event.secret, foreign, "no").await, StatusCode::NOT_FOUND).await;
    assert_error(
        app.post(&format!("/api/event/{}/questions/{}/{q}/reply", event.id, event.secret), "text").await,
        StatusCode::BAD_REQUEST,
    )
    .await;

    assert_eq!(ok_json(reply_as(&app, &event, &event.secret, q, "").await).await, json!({}));
    app.settled().await;
    assert!(
        item(&app.guest_list(&event).await, q).expect("listed").get("reply").is_none(),
        "an empty answer removes it"
    );
    app.stop().await;
}

#[tokio::test]
async fn toggles_of_the_new_kinds_are_refused_like_the_old_ones() {
    let app = spawn_app().await;
    let event = app.create_event().await;
    let other = app.create_event().await;
    let q = app.ask(&event, "is this toggled right?").await;
    let foreign = app.ask(&other, "and this one elsewhere?").await;
    app.settled().await;
    for what in ["approved", "spotlight"] {
        assert_error(toggle_as(&app, &event, &other.secret, q, what, true).await, StatusCode::UNAUTHORIZED).await;
        assert_error(toggle_as(&app, &event, &event.secret, foreign, what, true).await, StatusCode::NOT_FOUND).await;
        assert_error(
            app.post(&format!("/api/event/{}/questions/{}/{q}/toggle/{what}", event.id, event.secret), "maybe").await,
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    assert_error(toggle_as(&app, &event, &event.secret, q, "pinned", true).await, StatusCode::BAD_REQUEST).await;
    app.stop().await;
}

#[tokio::test]
async fn a_cohost_moderates_but_cannot_change_settings_nor_links_and_a_revoked_link_is_dead() {
    let app = spawn_app().await;
    let event = app.create_event().await;
    let q = app.ask(&event, "can a co-host moderate?").await;
    let mint = format!("/api/event/{}/cohosts/{}", event.id, event.secret);
    let minted = ok_json(app.post(&mint, "").await).await;
    let cohost = minted["secret"].as_str().expect("a co-host secret").to_owned();
    assert_eq!(cohost.len(), 32);
    assert_ne!(cohost, event.secret);
    let spare = ok_json(app.post(&mint, "").await).await["secret"].as_str().expect("secret").to_owned();
    app.settled().await;

    // Moderation: toggles, replies, the host list.
    assert_eq!(
        ok_json(toggle_as(&app, &event, &cohost, q, "spotlight", true).await).await,
        json!({ "spotlight": true })
    );
    assert_eq!(ok_json(toggle_as(&app, &event, &cohost, q, "answered", false).await).await, json!({}));
    assert_eq!(ok_json(reply_as(&app, &event, &cohost, q, "On it.").await).await, json!({ "reply": "On it." }));
    app.settled().await;
    let host_list = ok_json(app.get(&format!("/api/event/{}/questions/{cohost}", event.id)).await).await;
    assert_eq!(item(&host_list, q).expect("listed")["reply"], "On it.");

    // Not the host's own: settings, minting, revoking.
    assert_error(
        post_json(&app, &settings_path(&event, &cohost), json!({ "title": "mine" })).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_error(app.get(&settings_path(&event, &cohost)).await, StatusCode::FORBIDDEN).await;
    assert_error(app.post(&format!("/api/event/{}/cohosts/{cohost}", event.id), "").await, StatusCode::FORBIDDEN).await;
    let revoke = |by: &str, which: &str| {
        let url = app.url(&format!("/api/event/{}/cohosts/{by}/{which}", event.id));
        let http = app.http.clone();
        async move { http.delete(url).send().await.expect("the server answers") }
    };
    assert_error(revoke(&cohost, &spare).await, StatusCode::FORBIDDEN).await;
    assert_error(revoke("wrong", &spare).await, StatusCode::UNAUTHORIZED).await;
    assert_error(revoke(&event.secret, "never-minted").await, StatusCode::NOT_FOUND).await;
    assert_error(app.post(&format!("/api/event/{}/cohosts/wrong", event.id), "").await, StatusCode::UNAUTHORIZED).await;

    // Revoked: refused everywhere, and the other link still works.
    assert_eq!(ok_json(revoke(&event.secret, &cohost).await).await, json!({}));
    app.settled().await;
    assert_error(toggle_as(&app, &event, &cohost, q, "hidden", true).await, StatusCode::UNAUTHORIZED).await;
    assert_error(reply_as(&app, &event, &cohost, q, "again").await, StatusCode::UNAUTHORIZED).await;
    assert_error(app.get(&format!("/api/event/{}/questions/{cohost}", event.id)).await, StatusCode::UNAUTHORIZED).await;
    assert_eq!(ok_json(toggle_as(&app, &event, &spare, q, "hidden", true).await).await, json!({ "hidden": true }));
    app.stop().await;
}
