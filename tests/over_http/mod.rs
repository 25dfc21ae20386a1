//! What a host's and a guest's browser send to a served binary, as plain HTTP requests.

#![allow(dead_code)]

use serde_json::{json, Value};

/// A new event at `base` with one question asked in it (no name): the event's id, its
/// secret and the question's id. Each answer is read as JSON, whatever its status.
pub async fn event_with_question(http: &reqwest::Client, base: &str, text: &str) -> (String, String, String) {
    let event: Value = http.post(format!("{base}/api/event")).send().await.expect("create").json().await.expect("JSON");
    let (eid, secret) = (
        event["id"].as_str().unwrap_or_else(|| panic!("no event id in {event}")).to_owned(),
        event["secret"].as_str().unwrap_or_else(|| panic!("no secret in {event}")).to_owned(),
    );
    let asked: Value = http
        .post(format!("{base}/api/event/{eid}"))
        .json(&json!({ "body": text, "asker": null }))
        .send()
        .await
        .expect("ask")
        .json()
        .await
        .expect("JSON");
    let qid = asked["id"].as_str().unwrap_or_else(|| panic!("no question id in {asked}")).to_owned();
    (eid, secret, qid)
}

/// GETs `url` and reads the answer as JSON, whatever its status.
pub async fn get_json(http: &reqwest::Client, url: &str) -> Value {
    http.get(url).send().await.expect("list").json().await.expect("JSON")
}
