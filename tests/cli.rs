//! The operator commands, run as the binary: export, import (idempotent, converging across
//! regions), replay (drift detection and repair) and inspect.

mod command;
mod over_http;

use std::path::Path;
use std::process::{Command, Stdio};

use command::bin;

use axum::body::Body;
use axum::http::{header, Request};
use http_body_util::BodyExt;
use ledger::ports::{ProjectionStore, StoreResult};
use tower::ServiceExt;
use wewerewondering::embedded::{Embedded, EmbeddedConfig};

async fn call(app: &Embedded, method: &str, uri: &str, body: &str, voter: Option<&str>) -> serde_json::Value {
    let mut req = Request::builder().method(method).uri(uri).header(header::CONTENT_TYPE, "application/json");
    if let Some(v) = voter {
        req = req.header(header::COOKIE, format!("voter={v}"));
    }
    let resp = app.router().oneshot(req.body(Body::from(body.to_owned())).expect("request")).await.expect("response");
    assert!(resp.status().is_success(), "{method} {uri}: {}", resp.status());
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("JSON")
    }
}

/// One region's activity on a shared event: a question and votes from its own guests.
async fn region_activity(db: &Path, region: &str, eid: Option<&str>) -> (String, String) {
    let mut config = EmbeddedConfig::new(db);
    config.service.region = region.into();
    let app = Embedded::start(config).await.expect("start");
    let eid = match eid {
        Some(e) => e.to_owned(),
        None => call(&app, "POST", "/api/event", "", None).await["id"].as_str().expect("id").to_owned(),
    };
    let q = call(&app, "POST", &format!("/api/event/{eid}"), &format!(r#"{{"body":"asked in {region} today"}}"#), None)
        .await;
    let qid = q["id"].as_str().expect("qid").to_owned();
    app.wait_caught_up().await.expect("caught up");
    for i in 0..5u128 {
        let voter = ledger::VoterId::from_u128(i + 1 + if region == "b" { 100 } else { 0 });
        call(&app, "POST", &format!("/api/vote/{qid}/up"), "", Some(&voter.to_string())).await;
    }
    app.wait_caught_up().await.expect("caught up");
    app.shutdown().await;
    (eid, qid)
}

/// How many record lines (not event lines) an export holds.
fn records_in(export: &[u8]) -> usize {
    String::from_utf8_lossy(export).lines().filter(|l| !l.starts_with(r#"{"kind":"event""#)).count()
}

async fn projection_of(db: &Path) -> StoreResult<Vec<ledger::QuestionState>> {
    let store = ledger_sqlite::SqliteStore::open(db, ledger_sqlite::Options::default())?;
    let mut qs = store.questions(None).await?;
    store.close().await;
    qs.sort_by_key(|q| q.standing.id);
    Ok(qs)
}

#[tokio::test]
async fn export_import_is_idempotent_and_two_regions_converge() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (a, b) = (dir.path().join("a.db"), dir.path().join("b.db"));
    let (eid, _) = region_activity(&a, "a", None).await;
    // `events` is a global table on AWS: region b knows the event as a does.
    {
        use ledger::ports::EventStore;
        let (sa, sb) = (
            ledger_sqlite::SqliteStore::open(&a, ledger_sqlite::Options::default()).expect("open a"),
            ledger_sqlite::SqliteStore::open(&b, ledger_sqlite::Options::default()).expect("open b"),
        );
        let row = sa.event(eid.parse().expect("eid")).await.expect("read").expect("event in a");
        sb.create_event(&row).await.expect("replicate the event");
        sa.close().await;
        sb.close().await;
    }
    region_activity(&b, "b", Some(&eid)).await;

    let export_a = bin(&["ledger", "export", "--db", a.to_str().expect("path")], None);
    assert!(export_a.status.success());
    let export_b = bin(&["ledger", "export", "--db", b.to_str().expect("path")], None);
    assert!(export_b.status.success());
    assert_eq!(records_in(&export_a.stdout), 6, "one asked and five votes");
    assert!(
        String::from_utf8_lossy(&export_a.stdout).starts_with(r#"{"kind":"event""#),
        "the event's line comes first"
    );

    // Each region imports the other's records, the second time with everything again.
    for _ in 0..2 {
        assert!(bin(&["ledger", "import", "--db", a.to_str().expect("path")], Some(&export_b.stdout)).status.success());
        assert!(bin(&["ledger", "import", "--db", b.to_str().expect("path")], Some(&export_a.stdout)).status.success());
    }
    let (pa, pb) = (projection_of(&a).await.expect("a"), projection_of(&b).await.expect("b"));
    assert_eq!(pa, pb, "both regions fold the same records into the same projection");
    assert_eq!(pa.len(), 2);
    assert!(pa.iter().all(|q| q.standing.votes == 6), "asker plus five voters each: {pa:?}");

    let replayed = bin(&["replay", "--db", a.to_str().expect("path")], None);
    assert!(replayed.status.success(), "{}", String::from_utf8_lossy(&replayed.stdout));
    assert!(String::from_utf8_lossy(&replayed.stdout).contains("no drift"));
    let again = bin(&["ledger", "export", "--db", a.to_str().expect("path")], None);
    assert_eq!(records_in(&again.stdout), 12, "import added each record once");
}

#[tokio::test]
async fn a_bad_import_line_is_named_and_loses_nothing_before_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (a, b) = (dir.path().join("a.db"), dir.path().join("b.db"));
    region_activity(&a, "a", None).await;
    let export = bin(&["ledger", "export", "--db", a.to_str().expect("path")], None);
    let mut input = export.stdout.clone();
    input.extend_from_slice(b"{\"id\": \"not a record\"}\n");
    let out = bin(&["ledger", "import", "--db", b.to_str().expect("path")], Some(&input));
    assert!(!out.status.success());
    // Line 1 is the event's, lines 2 to 7 its records.
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line 8: refused"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let imported = bin(&["ledger", "export", "--db", b.to_str().expect("path")], None);
    assert_eq!(imported.stdout, export.stdout, "the six good records were kept");
}

#[tokio::test]
async fn replay_reports_drift_and_repair_fixes_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("d.db");
    let (_, qid) = region_activity(&db, "a", None).await;
    // Corrupt the projection behind the aggregator's back.
    {
        let conn = rusqlite::Connection::open(&db).expect("open");
        conn.execute("UPDATE questions SET votes = votes + 3", []).expect("tamper");
    }
    let path = db.to_str().expect("path");
    let out = bin(&["replay", "--db", path], None);
    assert_eq!(out.status.code(), Some(1), "drift exits 1");
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("drift {qid}")));
    let inspect = bin(&["inspect", &qid, "--db", path], None);
    assert_eq!(inspect.status.code(), Some(1), "inspect also sees the drift");
    assert!(String::from_utf8_lossy(&inspect.stdout).contains("DRIFT"));

    let repaired = bin(&["replay", "--db", path, "--repair"], None);
    assert!(repaired.status.success());
    assert!(bin(&["replay", "--db", path], None).status.success(), "no drift after the repair");
    let inspect = bin(&["inspect", &qid, "--db", path], None);
    assert!(inspect.status.success());
    let text = String::from_utf8_lossy(&inspect.stdout);
    assert!(text.contains("asked by voter") && text.contains("-> votes 6"), "{text}");
}

/// An operator piping a report into `head` closes its reader early: each command ends with
/// the status a Unix tool killed by SIGPIPE gives, without a panic or an error message.
#[tokio::test]
async fn a_report_whose_reader_went_away_ends_quietly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("d.db");
    let (eid, qid) = region_activity(&db, "a", None).await;
    let path = db.to_str().expect("path");
    for args in [
        vec!["replay", "--db", path],
        vec!["inspect", &qid, "--db", path],
        vec!["inspect", "--event", &eid, "--bursts", "--db", path],
        vec!["ledger", "export", "--db", path],
        vec!["retention", "--db", path],
        vec!["quarantine", "--db", path],
    ] {
        let out = command::bin_unread(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        // FAILS IF a write to the closed pipe panics (`println!`) or is reported as an error.
        assert!(!stderr.contains("panicked") && !stderr.contains("Error"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(141), "{args:?}: {stderr}");
    }
}

/// Polls the list at `list_url` until its first question shows `votes`; `what` is what
/// never reached the projection if `deadline` passes first.
async fn wait_for_first_votes(
    http: &reqwest::Client,
    list_url: &str,
    votes: u64,
    deadline: std::time::Instant,
    what: &str,
) {
    loop {
        let list = over_http::get_json(http, list_url).await;
        if list.as_array().and_then(|a| a.first()).and_then(|q| q["votes"].as_u64()) == Some(votes) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{what} never reached the projection: {list}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// `serve --backend dynamodb` as an operator runs it against a local emulator: tables and
/// queue created, the Pipe stand-in on; then `replay` and `ledger export` on the same tables.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_replay_and_export_against_dynamodb() {
    let Ok(endpoint) = std::env::var("MOTO_ENDPOINT_A") else {
        if std::env::var("WWW_SKIP_MOTO").as_deref() == Ok("1") {
            eprintln!("skipped: WWW_SKIP_MOTO=1");
            return;
        }
        panic!("MOTO_ENDPOINT_A is not set: run under .ci/with-moto (or set WWW_SKIP_MOTO=1)");
    };
    let tag = format!("cli{:08x}", rand::random::<u32>());
    let tables = [
        ("EVENTS_TABLE", format!("{tag}-events")),
        ("LEDGER_TABLE", format!("{tag}-ledger")),
        ("QUESTIONS_TABLE", format!("{tag}-questions")),
        ("VOTERS_TABLE", format!("{tag}-voters")),
    ];
    let mut child = Command::new(env!("CARGO_BIN_EXE_wewerewondering"))
        .args(["serve", "--backend", "dynamodb", "--endpoint-url", &endpoint, "--create-tables", "--local-pipe"])
        // The emulator serves one request at a time: a long poll would stall everything else.
        .args(["--queue-wait-seconds", "0"])
        .args(["--listen", "127.0.0.1:0", "--static", "/nonexistent", "--no-demo"])
        .envs(tables.iter().map(|(k, v)| (*k, v.as_str())))
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(if std::env::var_os("TEST_LOG").is_some() { Stdio::inherit() } else { Stdio::null() })
        .spawn()
        .expect("start serve");
    let stdout = child.stdout.take().expect("stdout");
    let base = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(stdout).lines();
        loop {
            let line = lines.next().expect("serve printed its address").expect("readable");
            if let Some(rest) = line.strip_prefix("listening on ") {
                let addr = rest.split_whitespace().next().expect("an address").to_owned();
                std::thread::spawn(move || for _ in lines {});
                return addr;
            }
        }
    })
    .await
    .expect("address");
    let http = reqwest::Client::builder().cookie_store(true).build().expect("client");
    let (eid, secret, qid) = over_http::event_with_question(&http, &base, "does the AWS path work?").await;
    let list_url = format!("{base}/api/event/{eid}/questions/{secret}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    wait_for_first_votes(&http, &list_url, 1, deadline, "the question").await;
    // A second guest votes: the count follows through stream, queue and aggregator.
    let guest = reqwest::Client::builder().cookie_store(true).build().expect("client");
    assert!(guest.post(format!("{base}/api/vote/{qid}/up")).send().await.expect("vote").status().is_success());
    wait_for_first_votes(&http, &list_url, 2, deadline, "the vote").await;
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();

    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_wewerewondering"))
            .args(args)
            .args(["--backend", "dynamodb", "--endpoint-url", &endpoint])
            .envs(tables.iter().map(|(k, v)| (*k, v.as_str())))
            .env("RUST_LOG", "error")
            .output()
            .expect("run")
    };
    let replayed = run(&["replay"]);
    assert!(replayed.status.success(), "{}", String::from_utf8_lossy(&replayed.stdout));
    assert!(String::from_utf8_lossy(&replayed.stdout).contains("no drift"));
    let exported = run(&["ledger", "export"]);
    assert!(exported.status.success());
    assert_eq!(String::from_utf8_lossy(&exported.stdout).lines().count(), 2, "one asked, one vote");
}

/// An import file: the event's line, then the given record lines.
fn import_file(eid: ledger::EventId, records: &[ledger::Record]) -> Vec<u8> {
    let mut out = ledger::ndjson::event_line(eid, &[9; 32]);
    out.push('\n');
    for r in records {
        out.push_str(&ledger::ndjson::to_line(r));
        out.push('\n');
    }
    out.into_bytes()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as u64
}

fn record_at(
    ms: u64,
    n: u128,
    eid: ledger::EventId,
    qid: ledger::QuestionId,
    body: ledger::RecordBody,
) -> ledger::Record {
    ledger::Record {
        id: ledger::RecordId(ulid::Ulid::from_parts(ms, n)),
        event: eid,
        question: qid,
        region: "r".into(),
        body,
    }
}

#[tokio::test]
async fn import_applies_the_rules_of_ingest_and_names_every_refused_line() {
    use ledger::{Asked, EventId, QuestionId, RecordBody, VoterId};
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("t.db");
    let now = now_ms();
    let eid = EventId(ulid::Ulid::from_parts(now - 60_000, 1));
    let qid = QuestionId(ulid::Ulid::from_parts(now - 50_000, 1));
    let voter = VoterId::from_u128(5);
    let asked = |text: &str| RecordBody::Asked(Asked { text: text.into(), who: None, voter });
    let good = record_at(now - 50_000, 2, eid, qid, asked("what is good?"));
    let records = vec![
        good.clone(),
        // The issue's record: an id at the end of time would win every later toggle.
        ledger::Record {
            id: "7ZZZZZZZZZZZZZZZZZZZZZZZZZ".parse().expect("id"),
            ..record_at(now, 0, eid, qid, RecordBody::Answered { on: true })
        },
        record_at(now - 40_000, 3, eid, QuestionId::from_u128(1), asked("one")),
        record_at(
            now - 40_000,
            4,
            eid,
            QuestionId(ulid::Ulid::from_parts(now - 40_000, 1)),
            asked(&"long ".repeat(101)),
        ),
        // The same question in another event.
        record_at(
            now - 30_000,
            5,
            EventId(ulid::Ulid::from_parts(now - 60_000, 2)),
            qid,
            RecordBody::Hidden { on: true },
        ),
        record_at(now - 20_000, 6, eid, qid, RecordBody::Voted { voter: VoterId::from_u128(6), up: true }),
    ];
    let out = bin(&["ledger", "import", "--db", db.to_str().expect("path")], Some(&import_file(eid, &records)));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "a refused line fails the command: {stderr}");
    for (line, why) in
        [(3, "in the future"), (4, "at least 2 words"), (5, "at most 500 characters"), (6, "unknown here")]
    {
        assert!(
            stderr.contains(&format!("line {line}: refused")) && stderr.contains(why),
            "line {line} ({why}) in: {stderr}"
        );
    }
    assert!(!stderr.contains("line 2: refused") && !stderr.contains("line 7: refused"), "{stderr}");
    let export = bin(&["ledger", "export", "--db", db.to_str().expect("path")], None);
    assert_eq!(
        records_in(&export.stdout),
        2,
        "the asked record and the vote were imported: {}",
        String::from_utf8_lossy(&export.stdout)
    );
    let pa = projection_of(&db).await.expect("projection");
    assert_eq!((pa.len(), pa[0].standing.votes, pa[0].standing.answered_at()), (1, 2, None));
}

#[tokio::test]
async fn import_refuses_the_records_of_an_expired_event() {
    use ledger::{Asked, EventId, QuestionId, RecordBody, VoterId};
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("t.db");
    let now = now_ms();
    // The issue's repro: 20 questions of an event whose ids are 40 days old.
    let old = EventId(ulid::Ulid::from_parts(now - 40 * 86_400_000, 1));
    let records: Vec<_> = (0..20u128)
        .map(|i| {
            let q = QuestionId(ulid::Ulid::from_parts(now - 40 * 86_400_000 + 10, i));
            record_at(
                now - 40 * 86_400_000 + 20,
                i,
                old,
                q,
                RecordBody::Asked(Asked { text: "old and gone?".into(), who: None, voter: VoterId::from_u128(1) }),
            )
        })
        .collect();
    let out = bin(&["ledger", "import", "--db", db.to_str().expect("path")], Some(&import_file(old, &records)));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("line 1: refused") && stderr.contains("expired"), "{stderr}");
    assert_eq!(stderr.matches(": refused: ").count(), 21, "the event line and its 20 records: {stderr}");
    assert_eq!(records_in(&bin(&["ledger", "export", "--db", db.to_str().expect("path")], None).stdout), 0);
}

#[test]
fn retention_is_validated_stored_and_changed_only_on_purpose() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("t.db");
    let db = db.to_str().expect("path");
    for bad in ["0", "3651", "-1", "99999999999999999999"] {
        let out = bin(&["serve", "--db", db, "--no-demo", &format!("--retention-days={bad}")], None);
        assert!(!out.status.success(), "serve started with {bad} days");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("1 to 3650 days"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let shown = bin(&["retention", "--db", db], None);
    assert_eq!(String::from_utf8_lossy(&shown.stdout).trim(), "retention: 30 days");
    let set = bin(&["retention", "--db", db, "--set", "90"], None);
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    assert_eq!(String::from_utf8_lossy(&bin(&["retention", "--db", db], None).stdout).trim(), "retention: 90 days");
    // serve with another retention than the file's is refused, saying how to change it.
    let out = bin(&["serve", "--db", db, "--no-demo", "--retention-days", "30", "--listen", "127.0.0.1:0"], None);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("retention --set 30"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
