//! Durability: what was acknowledged survives a restart, a SIGKILL and a SIGTERM under load,
//! after each the projection equals a fresh fold of the ledger, and the default durability
//! really syncs every commit (a SIGKILL alone cannot tell FULL from NORMAL).

mod served;
mod served_file;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ledger::ports::LedgerStore;
use ledger::{QuestionId, RecordBody, VoterId};
use served::Server;
use wewerewondering::embedded::{Embedded, EmbeddedConfig};
use wewerewondering::replay;

fn start_server(db: &Path) -> Server {
    served::start(served::binary(), db, None)
}

/// The served file `name` in a temporary directory, its server logging to `server.log`
/// beside it, and a client that waits at most 30 s for an answer.
struct LoggedServer {
    _dir: tempfile::TempDir,
    db: PathBuf,
    log: PathBuf,
    server: Server,
    http: reqwest::Client,
    base: String,
}

fn start_logged(name: &str) -> LoggedServer {
    let dir = tempfile::tempdir().expect("temp dir");
    let (db, log) = (dir.path().join(name), dir.path().join("server.log"));
    let server = served::start(served::binary(), &db, Some(&log));
    let base = server.base.clone();
    LoggedServer { _dir: dir, db, log, server, http: patient_client(), base }
}

/// A client that waits at most 30 s for an answer.
fn patient_client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client")
}

/// The questions the load tests vote on.
const LOAD_QUESTIONS: [&str; 3] = ["question number 0 please", "question number 1 please", "question number 2 please"];

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

/// A new event with these questions, once the list shows them all (votes need their
/// question in the projection): the event id and the question ids, in order.
async fn event_with_questions(http: &reqwest::Client, base: &str, texts: &[&str]) -> (String, Vec<String>) {
    let event = json(http.post(format!("{base}/api/event")).send().await.expect("create event")).await;
    let eid = event["id"].as_str().expect("event id").to_owned();
    let mut qids = Vec::new();
    for text in texts {
        let q = http
            .post(format!("{base}/api/event/{eid}"))
            .json(&serde_json::json!({ "body": text, "asker": null }))
            .send()
            .await
            .expect("ask");
        qids.push(json(q).await["id"].as_str().expect("qid").to_owned());
    }
    wait_listed(http, &format!("{base}/api/event/{eid}/questions"), qids.len()).await;
    (eid, qids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_vote_load_loses_no_acknowledged_vote() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("kill.db");
    let mut server = start_server(&db);
    let http = reqwest::Client::new();
    let base = server.base.clone();

    let (_, qids) = event_with_questions(&http, &base, &LOAD_QUESTIONS).await;

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
            if let RecordBody::Voted { voter, up: true } = r.body {
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
    let report = replay::replay(&store, None, false, &bar).await.expect("replay");
    assert!(report.drift.is_empty(), "projection drifted from the ledger: {:?}", report.drift);
    assert_eq!(report.questions, 3);
    app.shutdown().await;
}

#[tokio::test]
async fn a_restart_on_the_same_file_finds_everything() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("restart.db");
    let server = start_server(&db);
    let http = reqwest::Client::builder().cookie_store(true).build().expect("client");
    let base = server.base.clone();
    let event = json(http.post(format!("{base}/api/event")).send().await.expect("create")).await;
    let (eid, secret) =
        (event["id"].as_str().expect("id").to_owned(), event["secret"].as_str().expect("secret").to_owned());
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
    served::signal(server.child.id(), "-TERM");
    let status = served::wait_exit(server, Duration::from_secs(30)).await;
    assert!(status.is_some_and(|s| s.success()), "graceful stop exited with {status:?}");

    let server = start_server(&db);
    let base = server.base.clone();
    let after = json(http.get(format!("{base}/api/event/{eid}/questions/{secret}")).send().await.expect("list")).await;
    assert_eq!(after, before);
    let texts = json(http.get(format!("{base}/api/questions/{qid}")).send().await.expect("texts")).await;
    assert_eq!(texts[&qid]["text"], "will this survive a restart?");
    assert_eq!(texts[&qid]["who"], "Ann");
    drop(server);
}

/// What a serve with no `--durability` promises: every acknowledged write was synced to the
/// disk before its answer. A SIGKILL cannot show it (the page cache outlives the process)
/// and `PRAGMA synchronous` is a setting of each connection, invisible from another one, so
/// this watches the system calls instead: under strace, the served file's write-ahead log
/// is synced at least once per acknowledged write. With `--durability normal` SQLite syncs
/// the log only when a checkpoint copies it back (every 500 ms): the same count, taken as a
/// control, stays far below, so the check can tell the two apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_durability_syncs_the_log_before_each_acknowledgement() {
    let traced = Command::new("strace")
        .args(["-f", "-qq", "-o", "/dev/null", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !traced {
        eprintln!("SKIPPED: counting fsync calls needs strace and permission to trace a child process");
        return;
    }
    let by_default = wal_syncs_for_sequential_votes(&[]).await;
    let normal = wal_syncs_for_sequential_votes(&["--durability", "normal"]).await;
    eprintln!("{SYNCED_VOTES} sequential votes: {by_default} syncs of the write-ahead log by default, {normal} with --durability normal");
    assert!(
        normal < SYNCED_VOTES / 4,
        "{normal} syncs with --durability normal: counting syncs cannot tell FULL from NORMAL here"
    );
    // FAILS IF the default durability is not FULL (or FULL does not sync each commit).
    assert!(
        by_default >= SYNCED_VOTES,
        "{SYNCED_VOTES} acknowledged votes but only {by_default} syncs of the write-ahead log: the default \
         durability does not sync each commit (is it FULL?)"
    );
}

/// How many votes [`wal_syncs_for_sequential_votes`] sends.
const SYNCED_VOTES: usize = 100;

/// Serves under strace with `args`, sends [`SYNCED_VOTES`] votes one at a time (so no two
/// share a commit), stops the server and counts the fsync/fdatasync calls on its log.
async fn wal_syncs_for_sequential_votes(args: &[&str]) -> usize {
    let dir = tempfile::tempdir().expect("temp dir");
    let (db, trace, log) =
        (dir.path().join("synced.db"), dir.path().join("syncs.trace"), dir.path().join("server.log"));
    let mut strace = Command::new("strace");
    strace
        .args(["-f", "-qq", "-y", "-e", "trace=fsync,fdatasync", "-o"])
        .arg(&trace)
        .arg(env!("CARGO_BIN_EXE_wewerewondering"));
    let server = served::start_with(strace, &db, Some(&log), args);
    let served_by = served::child_of(server.child.id());
    let http = patient_client();
    let base = server.base.clone();

    let (_, qids) = event_with_questions(&http, &base, &["is every vote on the disk?"]).await;
    let qid = &qids[0];
    for _ in 0..SYNCED_VOTES {
        json(http.post(format!("{base}/api/vote/{qid}/up")).send().await.expect("vote")).await;
    }
    served::signal(served_by, "-TERM");
    let status = served::wait_exit(server, Duration::from_secs(30)).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "the traced server did not stop cleanly ({status:?}):\n{}",
        served::tail(&log)
    );

    let trace = std::fs::read_to_string(&trace).expect("read the trace");
    trace.lines().filter(|l| (l.contains("fsync(") || l.contains("fdatasync(")) && l.contains("-wal>")).count()
}

/// A graceful stop (SIGTERM) while several clients are voting and asking: the process exits
/// 0, every write answered 200 is in the ledger, and the aggregator folded everything before
/// the store closed (its cursor is the ledger's last sequence number; the projection is the
/// fold of the ledger).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_write_load_exits_cleanly_with_everything_folded() {
    let LoggedServer { _dir, db, log, server, http, base } = start_logged("term.db");
    let (eid, qids) = event_with_questions(&http, &base, &LOAD_QUESTIONS).await;

    #[derive(Default)]
    struct Outcomes {
        votes: BTreeSet<VoterId>,
        asks: BTreeSet<QuestionId>,
        /// 200s whose answer arrived after the signal was sent: requests the drain finished.
        after_signal: usize,
        refused: Vec<reqwest::StatusCode>,
    }
    let outcomes: Arc<Mutex<Outcomes>> = Arc::default();
    let signalled: Arc<std::sync::OnceLock<Instant>> = Arc::default();
    let mut load = Vec::new();
    // Each request carries no cookie: each acknowledged vote is a new voter's up-vote.
    for worker in 0..16 {
        let (http, base, eid, outcomes, signalled) =
            (http.clone(), base.clone(), eid.clone(), outcomes.clone(), signalled.clone());
        let qid = qids[worker % qids.len()].clone();
        load.push(tokio::spawn(async move {
            for n in 0.. {
                let asking = worker % 4 == 0;
                let request = if asking {
                    http.post(format!("{base}/api/event/{eid}"))
                        .json(&serde_json::json!({ "body": format!("asked by worker {worker} as number {n}"), "asker": null }))
                } else {
                    http.post(format!("{base}/api/vote/{qid}/up"))
                };
                let Ok(resp) = request.send().await else { return };
                let status = resp.status();
                if !status.is_success() {
                    outcomes.lock().expect("lock").refused.push(status);
                    continue;
                }
                let voter = voter_of(&resp);
                let asked = if asking {
                    let body: serde_json::Value = resp.json().await.expect("the ask's JSON");
                    Some(body["id"].as_str().expect("qid").parse::<QuestionId>().expect("a question id"))
                } else {
                    None
                };
                let mut o = outcomes.lock().expect("lock");
                if signalled.get().is_some() {
                    o.after_signal += 1;
                }
                match asked {
                    Some(q) => {
                        o.asks.insert(q);
                    }
                    None => {
                        o.votes.insert(voter.expect("an acknowledged cookie-less vote sets the voter cookie"));
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    served::signal(server.child.id(), "-TERM");
    let _ = signalled.set(Instant::now());
    let status = served::wait_exit(server, Duration::from_secs(30)).await;
    for l in load {
        l.await.expect("a load worker panicked");
    }
    assert!(status.is_some_and(|s| s.success()), "SIGTERM under load: exit {status:?}\n{}", served::tail(&log));
    assert!(
        std::fs::read_to_string(&log).unwrap_or_default().contains("stopped cleanly"),
        "the server did not report a clean stop:\n{}",
        served::tail(&log)
    );
    let outcomes = std::mem::take(&mut *outcomes.lock().expect("lock"));
    assert!(outcomes.votes.len() > 50, "the load produced too few votes ({}) to mean anything", outcomes.votes.len());
    assert!(!outcomes.asks.is_empty(), "no ask was acknowledged");
    assert!(outcomes.after_signal > 0, "no request was answered after the signal: nothing was in flight to drain");

    // The file as the stopped server left it, read without changing it.
    let conn = served_file::open_read_only(&db);
    let (cursor, last) = served_file::cursor_and_last(&conn);
    assert_eq!(cursor, last, "the aggregator's cursor is not at the ledger's last record after a graceful stop");
    // Ledger kinds (the schema's): 0 asked, 1 vote; `flag` is a vote's `up`.
    let ids_of = |sql: &str| -> BTreeSet<[u8; 16]> {
        let mut stmt = conn.prepare(sql).expect("prepare");
        let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0)).expect("query");
        rows.map(|b| b.expect("row").try_into().expect("a 16-byte id")).collect()
    };
    let voted = ids_of("SELECT voter FROM ledger WHERE kind = 1 AND flag = 1");
    let asked = ids_of("SELECT question FROM ledger WHERE kind = 0");
    assert_none_lost("votes", outcomes.votes.iter().filter(|v| !voted.contains(&v.to_bytes())).collect());
    assert_none_lost("asks", outcomes.asks.iter().filter(|q| !asked.contains(&q.to_bytes())).collect());
    drop(conn);
    eprintln!(
        "SIGTERM under load: {} votes and {} asks acknowledged ({} answered after the signal, {} refused: {:?}); cursor {cursor:?} = last {last:?}",
        outcomes.votes.len(),
        outcomes.asks.len(),
        outcomes.after_signal,
        outcomes.refused.len(),
        outcomes.refused.iter().collect::<BTreeSet<_>>(),
    );

    let store = ledger_sqlite::SqliteStore::open(&db, ledger_sqlite::Options::default()).expect("open the store");
    let bar = replay::progress_bar(0, true);
    let report = replay::replay(&store, None, false, &bar).await.expect("replay");
    assert!(report.drift.is_empty(), "projection drifted from the ledger: {:?}", report.drift);
    assert_eq!(report.questions, qids.len() + outcomes.asks.len());
    store.close().await;
}

/// Asserts that no acknowledged write of this kind (`what`) is missing from the ledger.
fn assert_none_lost<T: std::fmt::Debug>(what: &str, lost: Vec<T>) {
    assert!(lost.is_empty(), "{} acknowledged {what} are not in the ledger, e.g. {:?}", lost.len(), lost.first());
}

/// A graceful stop folds everything committed before it, however much that is: here more
/// than one aggregator batch (4,096 records) of votes, appended to the served file by another
/// process (as `ledger import` does) just before the SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_backlog_larger_than_a_batch_folds_all_of_it() {
    const BACKLOG: usize = 10_000;
    let LoggedServer { _dir, db, log, server, http, base } = start_logged("backlog.db");
    let (eid, qids) = event_with_questions(&http, &base, &["how much is folded at a stop?"]).await;
    let eid: ledger::EventId = eid.parse().expect("an event id");
    let qid: QuestionId = qids[0].parse().expect("a question id");
    drop(http);

    let expire = i64::try_from(eid.unix_seconds() + 30 * 86_400).expect("expiry fits");
    let mut other = rusqlite::Connection::open(&db).expect("a second writer");
    other.busy_timeout(Duration::from_secs(10)).expect("busy timeout");
    let tx = other.transaction().expect("begin");
    {
        // Ledger kinds (the schema's): 1 is a vote, `flag` its `up`.
        let mut insert = tx
            .prepare(
                "INSERT INTO ledger (id, event, question, region, kind, voter, flag, text, who, expire)
                 VALUES (?1, ?2, ?3, 'elsewhere', 1, ?4, 1, NULL, NULL, ?5)",
            )
            .expect("prepare");
        for _ in 0..BACKLOG {
            let (id, voter) = (ulid::Ulid::new(), ulid::Ulid::new());
            insert
                .execute(rusqlite::params![id.to_bytes(), eid.to_bytes(), qid.to_bytes(), voter.to_bytes(), expire])
                .expect("append a vote");
        }
    }
    tx.commit().expect("commit the backlog");
    drop(other);
    served::signal(server.child.id(), "-TERM");
    let status = served::wait_exit(server, Duration::from_secs(30)).await;
    assert!(status.is_some_and(|s| s.success()), "SIGTERM with a backlog: exit {status:?}\n{}", served::tail(&log));

    let conn = served_file::open_read_only(&db);
    let (cursor, last) = served_file::cursor_and_last(&conn);
    let votes: i64 = conn
        .query_row("SELECT votes FROM questions WHERE id = ?1", [qid.to_bytes()], |r| r.get(0))
        .expect("read the question's votes");
    // FAILS IF the stop folds only part of what was committed before it.
    assert_eq!(
        cursor, last,
        "after a graceful stop the aggregator's cursor is not at the ledger's end ({votes} votes folded)"
    );
    assert_eq!(votes, 1 + BACKLOG as i64, "the asker's vote and every appended one");
}
