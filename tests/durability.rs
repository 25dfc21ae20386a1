//! Durability: what was acknowledged survives a restart and a SIGKILL, and after either the
//! projection equals a fresh fold of the ledger.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ledger::ports::LedgerStore;
use ledger::{Body, VoterId};
use wewerewondering::embedded::{Embedded, EmbeddedConfig};
use wewerewondering::replay;

struct Server {
    child: Child,
    base: String,
}

fn start_server(db: &std::path::Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wewerewondering"))
        .args(["serve", "--no-demo", "--listen", "127.0.0.1:0", "--static", "/nonexistent", "--db"])
        .arg(db)
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the server binary");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let base = loop {
        let line = lines.next().expect("server printed its address").expect("readable stdout");
        if let Some(addr) = line.strip_prefix("listening on ") {
            break addr.trim().to_owned();
        }
    };
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server { child, base }
}

async fn json(resp: reqwest::Response) -> serde_json::Value {
    assert!(resp.status().is_success(), "unexpected status {}", resp.status());
    resp.json().await.expect("JSON body")
}

fn voter_of(resp: &reqwest::Response) -> Option<VoterId> {
    let cookie = resp.headers().get("set-cookie")?.to_str().ok()?;
    cookie.strip_prefix("voter=")?.split(';').next()?.parse().ok()
}

async fn wait_listed(http: &reqwest::Client, url: &str, n: usize) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let list = json(http.get(url).send().await.expect("list")).await;
        if list.as_array().map_or(0, |a| a.len()) == n {
            return list;
        }
        assert!(Instant::now() < deadline, "questions never reached the projection");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_vote_load_loses_no_acknowledged_vote() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("kill.db");
    let mut server = start_server(&db);
    let http = reqwest::Client::new();
    let base = server.base.clone();

    let event = json(http.post(format!("{base}/api/event")).send().await.expect("create event")).await;
    let eid = event["id"].as_str().expect("event id").to_owned();
    let mut qids = Vec::new();
    for i in 0..3 {
        let q = http
            .post(format!("{base}/api/event/{eid}"))
            .json(&serde_json::json!({ "body": format!("question number {i} please"), "asker": null }))
            .send()
            .await
            .expect("ask");
        qids.push(json(q).await["id"].as_str().expect("qid").to_owned());
    }
    // Votes need the questions in the projection: wait until the list shows them all.
    wait_listed(&http, &format!("{base}/api/event/{eid}/questions"), qids.len()).await;

    // Each request carries no cookie, so each acknowledged vote is a new voter's up-vote.
    let acked: Arc<Mutex<BTreeSet<VoterId>>> = Arc::default();
    let mut load = Vec::new();
    for worker in 0..16 {
        let (http, base, acked) = (http.clone(), base.clone(), acked.clone());
        let qid = qids[worker % qids.len()].clone();
        load.push(tokio::spawn(async move {
            loop {
                match http.post(format!("{base}/api/vote/{qid}/up")).send().await {
                    Ok(resp) if resp.status().is_success() => {
                        if let Some(v) = voter_of(&resp) {
                            acked.lock().expect("lock").insert(v);
                        }
                    }
                    _ => return,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    server.child.kill().expect("SIGKILL the server");
    server.child.wait().expect("reap");
    for l in load {
        let _ = l.await;
    }
    let acked = acked.lock().expect("lock").clone();
    assert!(acked.len() > 50, "the load produced too few votes ({}) to mean anything", acked.len());

    // Restart on the same file; the aggregator folds whatever it had not yet.
    let app = Embedded::start(EmbeddedConfig::new(&db)).await.expect("restart");
    app.wait_caught_up().await.expect("catch up");
    let store = app.store();
    let mut in_ledger = BTreeSet::new();
    let mut after = None;
    loop {
        let page = store.scan(None, after, 10_000).await.expect("scan");
        for r in &page.records {
            if let Body::Voted { voter, up: true } = r.body {
                in_ledger.insert(voter);
            }
        }
        match page.next {
            Some(t) => after = Some(t),
            None => break,
        }
    }
    let lost: Vec<_> = acked.difference(&in_ledger).collect();
    assert!(lost.is_empty(), "{} acknowledged votes are missing from the ledger, e.g. {:?}", lost.len(), lost.first());

    let bar = replay::progress_bar(0, true);
    let report = replay::replay(store.as_ref(), store.as_ref(), None, false, &bar).await.expect("replay");
    assert!(report.drift.is_empty(), "projection drifted from the ledger: {:?}", report.drift);
    assert_eq!(report.questions, 3);
    app.shutdown().await;
}

#[tokio::test]
async fn a_restart_on_the_same_file_finds_everything() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("restart.db");
    let mut server = start_server(&db);
    let http = reqwest::Client::builder().cookie_store(true).build().expect("client");
    let base = server.base.clone();
    let event = json(http.post(format!("{base}/api/event")).send().await.expect("create")).await;
    let (eid, secret) = (event["id"].as_str().expect("id").to_owned(), event["secret"].as_str().expect("secret").to_owned());
    let q = json(
        http.post(format!("{base}/api/event/{eid}"))
            .json(&serde_json::json!({ "body": "will this survive a restart?", "asker": "Ann" }))
            .send()
            .await
            .expect("ask"),
    )
    .await;
    let qid = q["id"].as_str().expect("qid").to_owned();
    let before = wait_listed(&http, &format!("{base}/api/event/{eid}/questions/{secret}"), 1).await;
    // A graceful stop (SIGTERM) this time.
    let pid = server.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().expect("send SIGTERM");
    let status = server.child.wait().expect("server exits");
    assert!(status.success(), "graceful stop exited with {status}");

    let server = start_server(&db);
    let base = server.base.clone();
    let after = json(http.get(format!("{base}/api/event/{eid}/questions/{secret}")).send().await.expect("list")).await;
    assert_eq!(after, before);
    let texts = json(http.get(format!("{base}/api/questions/{qid}")).send().await.expect("texts")).await;
    assert_eq!(texts[&qid]["text"], "will this survive a restart?");
    assert_eq!(texts[&qid]["who"], "Ann");
    let mut child = server.child;
    let _ = child.kill();
    let _ = child.wait();
}
