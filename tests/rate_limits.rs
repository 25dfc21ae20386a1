//! Rate limits through a real socket: `serve` keys them on the connection's peer address,
//! and on Linux every 127.x.y.z is a distinct source, so a guest at 127.0.0.2 is unaffected
//! while 127.0.0.1 is limited. Also `--metrics-listen`'s own listener.

mod over_http;
mod served;

use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

fn client_from(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::from(ip)))
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

#[tokio::test]
async fn a_limited_address_gets_429_while_another_goes_on() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let metrics = format!("127.0.0.1:{}", free_port());
    let server = served::start_with(
        served::binary(),
        &dir.path().join("t.db"),
        None,
        // After the harness's --no-rate-limits: the last one given wins.
        &["--rate-vote", "1/min:3", "--durability", "normal", "--metrics-listen", &metrics],
    );
    let base = server.base.clone();
    let (first, second) = (client_from([127, 0, 0, 1]), client_from([127, 0, 0, 2]));

    let (eid, _, qid) = over_http::event_with_question(&first, &base, "Does the limit know who I am?").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let list = over_http::get_json(&first, &format!("{base}/api/event/{eid}/questions")).await;
        if list.as_array().is_some_and(|l| !l.is_empty()) {
            break;
        }
        assert!(Instant::now() < deadline, "the question never appeared in the list");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let vote = |client: &reqwest::Client| client.post(format!("{base}/api/vote/{qid}/up")).send();
    for n in 0..3 {
        assert_eq!(vote(&first).await.expect("vote").status(), StatusCode::OK, "vote {n} within the burst");
    }
    let refused = vote(&first).await.expect("vote");
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = refused.headers()["retry-after"].to_str().expect("text").parse().expect("whole seconds");
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    let body: Value = refused.json().await.expect("a JSON reason");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("votes")), "{body}");
    assert_eq!(vote(&second).await.expect("vote").status(), StatusCode::OK, "127.0.0.2 is another client");

    // The metrics listener serves whoever reaches it; the main listener only loopback clients.
    let scraped = first.get(format!("http://{metrics}/metrics")).send().await.expect("scrape");
    assert_eq!(scraped.status(), StatusCode::OK);
    assert!(scraped.text().await.expect("text").contains("rate_limited_total"));
    assert_eq!(second.get(format!("{base}/metrics")).send().await.expect("scrape").status(), StatusCode::OK);
}
