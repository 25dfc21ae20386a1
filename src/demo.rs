//! The demo event `serve` seeds: created through the ingest router itself (the same path a
//! browser takes), so the demo exercises real code, not fixtures.
//!
//! It is seeded into a new database only ([`seed_if_new`]): one the ledger never handed a
//! sequence number in (its high-water mark is 0), so restarting `serve` on the same file
//! does not add another demo event each time. The links of a demo seeded earlier are not
//! printed again: the file keeps no note of which event was the demo, and the host secret
//! is stored only as a hash.

use anyhow::{bail, Context};
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::embedded::Embedded;

const QUESTIONS: &[(&str, Option<&str>, usize)] = &[
    ("How do you keep vote counts right when messages arrive twice or out of order?", Some("Ada"), 7),
    ("What made you pick an event-sourced ledger over a counter per question?", Some("Grace"), 5),
    ("Can an operator replay an event to audit its votes?", None, 3),
    ("How does this behave with many regions at once?", Some("Barbara"), 2),
    ("Is there a dark mode?", None, 1),
];

pub struct Demo {
    pub event: String,
    pub secret: String,
}

async fn call(
    router: &Router,
    method: &str,
    uri: &str,
    body: String,
    cookie: Option<&str>,
) -> anyhow::Result<(StatusCode, serde_json::Value)> {
    let mut req = Request::builder().method(method).uri(uri).header(header::CONTENT_TYPE, "application/json");
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    let resp = router.clone().oneshot(req.body(Body::from(body))?).await?;
    let status = resp.status();
    let bytes = resp.into_body().collect().await?.to_bytes();
    let json = if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&bytes).context("demo: response is not JSON")?
    };
    if !status.is_success() {
        bail!("demo: {method} {uri} answered {status}: {json}");
    }
    Ok((status, json))
}

/// Seeds the demo ([`seed`]) when the database is new (nothing was ever written to its
/// ledger); `None` when it is not.
pub async fn seed_if_new(app: &Embedded) -> anyhow::Result<Option<Demo>> {
    let written = app.store().high_water().await.context("demo: cannot read the ledger's high-water mark")?;
    if written > 0 {
        return Ok(None);
    }
    seed(app).await.map(Some)
}

/// Creates an event with a few questions and votes from distinct demo guests.
pub async fn seed(app: &Embedded) -> anyhow::Result<Demo> {
    let router = &app.router();
    let (_, ev) = call(router, "POST", "/api/event", String::new(), None).await?;
    let event = ev["id"].as_str().context("demo: no event id")?.to_owned();
    let secret = ev["secret"].as_str().context("demo: no secret")?.to_owned();
    for (i, (text, who, votes)) in QUESTIONS.iter().enumerate() {
        let body = serde_json::json!({ "body": text, "asker": who }).to_string();
        let (_, q) = call(router, "POST", &format!("/api/event/{event}"), body, None).await?;
        let qid = q["id"].as_str().context("demo: no question id")?.to_owned();
        // A vote needs the question in the projection, as a guest needs it in their list.
        app.wait_caught_up().await?;
        // The asker holds the first vote; the rest come from other guests.
        for guest in 1..*votes {
            let cookie =
                format!("voter={}", ledger::VoterId::from_u128(((i as u128) << 64) | guest as u128 | 1 << 100));
            call(router, "POST", &format!("/api/vote/{qid}/up"), String::new(), Some(&cookie)).await?;
        }
    }
    Ok(Demo { event, secret })
}
