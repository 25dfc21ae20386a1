//! A full disk: the served file lives on a tiny tmpfs (mounted by the test, so it runs as
//! root and is skipped with a message otherwise) that asks fill up. Writes must then be
//! refused with 503, promptly; nothing acknowledged may be lost and nothing refused may
//! appear later; once space returns the service must take writes again and fold them,
//! without a restart.

mod served;
mod served_file;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;

/// The tmpfs holding the served file: small enough to fill in seconds.
const DISK_SIZE: &str = "3m";
const DISK_BYTES: usize = 3 << 20;
/// Written before the server starts and deleted to give space back.
const FILLER_BYTES: usize = 1 << 20;
/// Longer than the server's own request timeout (10 s): a request still unanswered by then hangs.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a refusal may take. SQLite reports a full disk at once; anything slower is a
/// writer stuck somewhere.
const REFUSAL_SECONDS_MAX: f64 = 5.0;
/// A writer stops once every write it tried for this long was refused: the disk is full,
/// not just the write-ahead log waiting for a checkpoint (every 500 ms) to start over.
const REFUSED_FOR: Duration = Duration::from_secs(3);
/// A refused writer's pause before trying again.
const REFUSED_PAUSE: Duration = Duration::from_millis(20);
/// If the disk is not full by then, the test itself is broken.
const FILL_SECONDS_MAX: u64 = 60;
/// How long the service gets to take writes again, and to fold them, once space returns.
const RECOVERY_SECONDS_MAX: u64 = 30;
/// How long into the full phase /healthz is asked a second time.
const HEALTH_AGAIN_AFTER: Duration = Duration::from_secs(6);
/// Questions asked before the fill, which the fill's votes go to.
const VOTED_QUESTIONS: usize = 4;

/// A tmpfs mounted for the test's lifetime, unmounted when dropped (also on a failed assertion).
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Result<Self, String> {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        Ok(Self { dir: dir.to_path_buf() })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount").arg(&self.dir).status().is_ok_and(|s| s.success());
        if !unmounted {
            // Still busy (a process not reaped yet): detach it now, it goes when released.
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

fn running_as_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    // "Uid: real effective saved fs"
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .is_some_and(|effective| effective == "0")
}

/// A question text of ~480 characters (under the 500 allowed), unique by its tag.
fn long_text(tag: &str) -> String {
    let mut text = format!("{tag} fills the disk with");
    while text.len() < 470 {
        text.push_str(" words");
    }
    text
}

#[derive(Default)]
struct Fill {
    /// Acknowledged asks: question id to text.
    asked: BTreeMap<String, String>,
    /// Texts of asks that were refused.
    refused_texts: Vec<String>,
    /// Acknowledged votes per question (each from a new voter).
    votes: BTreeMap<String, u64>,
    /// Every refusal: what, the status, how long it took.
    refusals: Vec<(&'static str, StatusCode, f64)>,
    /// Requests without an answer within the client's timeout, or failed on the wire.
    unanswered: Vec<String>,
    /// When (seconds into the fill) a writer was first refused both its writes.
    first_refused: Option<f64>,
    /// Writes accepted after that (the log's space reused after a checkpoint).
    accepted_after_refusal: usize,
    /// The bytes of question text acknowledged.
    asked_bytes: usize,
}

enum Answer {
    Ok(serde_json::Value),
    Refused(StatusCode, f64),
    Unanswered(String),
}

async fn post(http: &reqwest::Client, url: String, body: Option<serde_json::Value>) -> Answer {
    let mut request = http.post(&url);
    if let Some(b) = body {
        request = request.json(&b);
    }
    send(request, url).await
}

/// A host's moderation toggle (its body is `on` or `off`, not JSON).
async fn toggle(http: &reqwest::Client, url: &str, on: bool) -> Answer {
    send(http.post(url).body(if on { "on" } else { "off" }), url.to_owned()).await
}

async fn send(request: reqwest::RequestBuilder, url: String) -> Answer {
    let started = Instant::now();
    match request.send().await {
        Ok(resp) if resp.status() == StatusCode::OK => match resp.json().await {
            Ok(v) => Answer::Ok(v),
            Err(e) => Answer::Unanswered(format!("{url}: unreadable 200 body: {e}")),
        },
        Ok(resp) => Answer::Refused(resp.status(), started.elapsed().as_secs_f64()),
        Err(e) => Answer::Unanswered(format!("{url} after {:.1} s: {e}", started.elapsed().as_secs_f64())),
    }
}

async fn get_json(http: &reqwest::Client, url: &str) -> (StatusCode, String) {
    match http.get(url).send().await {
        Ok(resp) => {
            let status = resp.status();
            (status, resp.text().await.unwrap_or_default())
        }
        Err(e) => (StatusCode::REQUEST_TIMEOUT, format!("no answer: {e}")),
    }
}

/// The host list as question id -> (votes, hidden).
async fn host_list(http: &reqwest::Client, url: &str) -> Result<BTreeMap<String, (u64, bool)>, String> {
    let (status, body) = get_json(http, url).await;
    if status != StatusCode::OK {
        return Err(format!("host list answered {status}: {body}"));
    }
    let list: serde_json::Value = serde_json::from_str(&body).map_err(|e| format!("host list is not JSON: {e}"))?;
    let items = list.as_array().ok_or("host list is not an array")?;
    Ok(items
        .iter()
        .filter_map(|q| Some((q["qid"].as_str()?.to_owned(), (q["votes"].as_u64()?, q["hidden"].as_bool()?))))
        .collect())
}

/// The files in `dir` with their sizes, for the report.
fn sizes(dir: &Path) -> Vec<(String, u64)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| (e.file_name().to_string_lossy().into_owned(), e.metadata().map_or(0, |m| m.len())))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// The server's warnings and errors, each distinct message once with how often it came.
fn complaints(log: &Path) -> BTreeMap<String, usize> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut out = BTreeMap::new();
    for line in text.lines().map(without_colours) {
        let Some(at) = line.find(" WARN ").or_else(|| line.find(" ERROR ")) else { continue };
        // From the level on (the timestamp differs on every line), without the request's
        // span (its id differs too).
        let mut message = line[at..].trim().to_owned();
        if let (Some(open), Some(close)) = (message.find("request{"), message.find("}: ")) {
            if open < close {
                message.replace_range(open..close + 3, "");
            }
        }
        if let Some(latency) = message.find(" latency=") {
            message.truncate(latency);
        }
        let message: String = message.chars().take(300).collect();
        *out.entry(message).or_default() += 1;
    }
    out
}

/// `line` without its terminal colour codes (ESC [ ... m).
fn without_colours(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Mounts a tmpfs of `size` under `outside` (skipping the test, with a message, when it
/// cannot), with a filler file of `filler` bytes in it.
fn tiny_disk(outside: &Path, size: &str, filler: usize) -> Option<Tmpfs> {
    if !running_as_root() {
        eprintln!("SKIPPED: the disk-full test mounts a tmpfs and needs root");
        return None;
    }
    let mountpoint = outside.join("tiny");
    std::fs::create_dir(&mountpoint).expect("mount point");
    match Tmpfs::mount(&mountpoint, size) {
        Ok(disk) => {
            std::fs::write(disk.dir.join("filler"), vec![0xA5u8; filler]).expect("write the filler");
            Some(disk)
        }
        Err(e) => {
            eprintln!("SKIPPED: the disk-full test cannot mount a tmpfs: {e}");
            None
        }
    }
}

/// How the disk fills.
#[derive(Clone, Copy)]
struct Pace {
    writers: usize,
    /// Each writer's pause after each ask and vote.
    pause: Duration,
}

/// As fast as the writers go: the write-ahead log grows past the free space between two
/// checkpoints, so the log is what fills the disk (and the checkpoint that would reset it
/// cannot grow the database file).
const FLOOD: Pace = Pace { writers: 4, pause: Duration::ZERO };
/// Slow enough that each checkpoint starts the log over: the database file itself grows
/// until the disk is full, and a checkpoint fails half-way through growing it.
const TRICKLE: Pace = Pace { writers: 2, pause: Duration::from_millis(40) };

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_with_503_loses_nothing_and_recovers_by_itself() {
    fill_refuse_recover(FLOOD).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_filled_by_the_database_file_refuses_loses_nothing_and_recovers() {
    fill_refuse_recover(TRICKLE).await;
}

async fn fill_refuse_recover(pace: Pace) {
    let outside = tempfile::tempdir().expect("temp dir");
    let Some(disk) = tiny_disk(outside.path(), DISK_SIZE, FILLER_BYTES) else { return };
    let filler = disk.dir.join("filler");
    let (db, log) = (disk.dir.join("full.db"), outside.path().join("server.log"));
    let server = served::start(served::binary(), &db, Some(&log));
    let base = server.base.clone();
    let http = reqwest::Client::builder().timeout(CLIENT_TIMEOUT).build().expect("client");

    let Answer::Ok(event) = post(&http, format!("{base}/api/event"), None).await else { panic!("create the event") };
    let (eid, secret) =
        (event["id"].as_str().expect("id").to_owned(), event["secret"].as_str().expect("secret").to_owned());
    let list_url = format!("{base}/api/event/{eid}/questions/{secret}");
    let mut expected_texts = BTreeMap::new();
    for i in 0..VOTED_QUESTIONS {
        let text = format!("voted question {i} before the fill");
        let Answer::Ok(q) =
            post(&http, format!("{base}/api/event/{eid}"), Some(serde_json::json!({ "body": text }))).await
        else {
            panic!("ask before the fill")
        };
        expected_texts.insert(q["id"].as_str().expect("qid").to_owned(), text);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while host_list(&http, &list_url).await.map_or(0, |l| l.len()) < VOTED_QUESTIONS {
        assert!(Instant::now() < deadline, "the first questions were never listed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let voted: Vec<String> = expected_texts.keys().cloned().collect();

    // Fill: each writer asks long questions and votes (without a cookie: a new voter each
    // time) until the disk refuses it several times in a row.
    let fill: Arc<Mutex<Fill>> = Arc::default();
    let timed_out = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut writers = Vec::new();
    for w in 0..pace.writers {
        let (http, base, eid, fill, voted, timed_out) =
            (http.clone(), base.clone(), eid.clone(), fill.clone(), voted.clone(), timed_out.clone());
        writers.push(tokio::spawn(async move {
            let mut refused_since: Option<Instant> = None;
            for n in 0usize.. {
                if refused_since.is_some_and(|t| t.elapsed() >= REFUSED_FOR) {
                    return;
                }
                if refused_since.is_some() {
                    tokio::time::sleep(REFUSED_PAUSE).await;
                } else if !pace.pause.is_zero() {
                    tokio::time::sleep(pace.pause).await;
                }
                // More text acknowledged than the disk holds cannot all be stored: stop, the
                // assertions below say what went wrong.
                if started.elapsed() > Duration::from_secs(FILL_SECONDS_MAX)
                    || fill.lock().expect("lock").asked_bytes > DISK_BYTES
                {
                    timed_out.store(true, Ordering::SeqCst);
                    return;
                }
                let text = long_text(&format!("writer {w} question {n}"));
                let asked =
                    post(&http, format!("{base}/api/event/{eid}"), Some(serde_json::json!({ "body": text }))).await;
                let qid = voted[n % voted.len()].clone();
                let vote = post(&http, format!("{base}/api/vote/{qid}/up"), None).await;
                let mut f = fill.lock().expect("lock");
                let both_refused = !matches!(asked, Answer::Ok(_)) && !matches!(vote, Answer::Ok(_));
                match (both_refused, refused_since) {
                    (false, _) => refused_since = None,
                    (true, None) => {
                        refused_since = Some(Instant::now());
                        f.first_refused.get_or_insert(started.elapsed().as_secs_f64());
                    }
                    (true, Some(_)) => {}
                }
                if !both_refused && f.first_refused.is_some() {
                    f.accepted_after_refusal += 1;
                }
                match asked {
                    Answer::Ok(q) => {
                        f.asked_bytes += text.len();
                        f.asked.insert(q["id"].as_str().expect("qid").to_owned(), text);
                    }
                    Answer::Refused(status, took) => {
                        f.refusals.push(("ask", status, took));
                        f.refused_texts.push(text);
                    }
                    Answer::Unanswered(e) => {
                        f.unanswered.push(e);
                        f.refused_texts.push(text);
                    }
                }
                match vote {
                    Answer::Ok(_) => *f.votes.entry(qid).or_default() += 1,
                    Answer::Refused(status, took) => f.refusals.push(("vote", status, took)),
                    Answer::Unanswered(e) => f.unanswered.push(e),
                }
            }
        }));
    }
    for w in writers {
        w.await.expect("a writer panicked");
    }
    let fill_seconds = started.elapsed().as_secs_f64();

    // Full: what does the service say about itself, and do writes still fail?
    let (health_status, health_body) = get_json(&http, &format!("{base}/healthz")).await;
    // Again once the full disk has lasted longer than /healthz tolerates a failing aggregator.
    tokio::time::sleep(HEALTH_AGAIN_AFTER).await;
    let (later_health_status, later_health_body) = get_json(&http, &format!("{base}/healthz")).await;
    let (full_list_status, _) = get_json(&http, &list_url).await;
    let one_more = long_text("one more while full");
    let still_full =
        post(&http, format!("{base}/api/event/{eid}"), Some(serde_json::json!({ "body": one_more }))).await;
    let event_while_full = post(&http, format!("{base}/api/event"), None).await;
    let hide_url = format!("{base}/api/event/{eid}/questions/{secret}/{}/toggle/hidden", voted[1]);
    let hide_while_full = toggle(&http, &hide_url, true).await;
    {
        let f = fill.lock().expect("lock");
        let statuses: BTreeMap<String, usize> = f.refusals.iter().fold(BTreeMap::new(), |mut m, (what, s, _)| {
            *m.entry(format!("{what} {s}")).or_default() += 1;
            m
        });
        let slowest = f.refusals.iter().map(|r| r.2).fold(0.0, f64::max);
        eprintln!(
            "fill: {:.1} s, first refused at {:?} s, {} accepted after that; {} asks and {} votes acknowledged, \
             refusals {statuses:?} (slowest {slowest:.3} s), {} unanswered",
            fill_seconds,
            f.first_refused,
            f.accepted_after_refusal,
            f.asked.len(),
            f.votes.values().sum::<u64>(),
            f.unanswered.len()
        );
        eprintln!("while full: /healthz answered {health_status} {health_body}; host list {full_list_status}");
        eprintln!(
            "while full, {} s later: /healthz answered {later_health_status} {later_health_body}",
            HEALTH_AGAIN_AFTER.as_secs()
        );
        // Every write was being refused: the service must say so, not answer 200.
        assert_eq!(health_status, StatusCode::SERVICE_UNAVAILABLE, "/healthz while full: {health_body}");
        assert!(health_body.to_string().contains("writes are being refused"), "/healthz while full: {health_body}");
        eprintln!("while full: files {:?}", sizes(&disk.dir));
        for (message, n) in complaints(&log) {
            eprintln!("while full, logged {n}x: {message}");
        }
        // FAILS IF writes are acknowledged without being stored: more text than the disk holds.
        assert!(
            f.asked_bytes <= DISK_BYTES,
            "{} bytes of question text acknowledged on a disk of {DISK_BYTES} bytes: writes are acknowledged but not stored\n{}",
            f.asked_bytes,
            served::tail(&log)
        );
        assert!(
            !timed_out.load(Ordering::SeqCst),
            "the disk was not full after {FILL_SECONDS_MAX} s: the test is broken"
        );
        assert!(!f.refusals.is_empty(), "no write was refused: the disk never filled");
        // FAILS IF a request hangs: every write must be answered within the client's timeout.
        assert!(f.unanswered.is_empty(), "requests got no answer: {:?}\n{}", f.unanswered, served::tail(&log));
        // FAILS IF a full disk is answered with anything but 503 (500, 404 on an unfolded question, ...).
        let not_503: Vec<_> = f.refusals.iter().filter(|r| r.1 != StatusCode::SERVICE_UNAVAILABLE).collect();
        assert!(not_503.is_empty(), "refusals other than 503: {statuses:?}\n{}", served::tail(&log));
        // FAILS IF a refusal waits on something instead of failing at once.
        assert!(slowest <= REFUSAL_SECONDS_MAX, "a refusal took {slowest:.3} s\n{}", served::tail(&log));
    }
    // Each kind of write (ask, new event, moderation) once more. A small one may still fit
    // (a failed commit leaves the log file longer than its committed part): then it must be
    // stored like any acknowledged write, which the checks below include.
    for (what, answer) in [("an ask", &still_full), ("a new event", &event_while_full), ("a toggle", &hide_while_full)]
    {
        let got = match answer {
            Answer::Ok(_) => "200".to_owned(),
            Answer::Refused(s, _) => s.to_string(),
            Answer::Unanswered(e) => e.clone(),
        };
        eprintln!("while full: {what} answered {got}");
        // FAILS IF a write on a full disk is answered other than 200 or 503.
        assert!(
            matches!(answer, Answer::Ok(_) | Answer::Refused(StatusCode::SERVICE_UNAVAILABLE, _)),
            "{what} while the disk is full was answered {got}, not 503\n{}",
            served::tail(&log)
        );
    }
    match &still_full {
        Answer::Ok(q) => {
            expected_texts.insert(q["id"].as_str().expect("qid").to_owned(), one_more);
        }
        _ => fill.lock().expect("lock").refused_texts.push(one_more),
    }
    let hidden_records = 1 + i64::from(matches!(hide_while_full, Answer::Ok(_)));
    let events_stored = 1 + i64::from(matches!(event_while_full, Answer::Ok(_)));

    // Space returns: the service must take writes again by itself.
    std::fs::remove_file(&filler).expect("delete the filler");
    let returned = Instant::now();
    let mut while_recovering = Vec::new();
    let recovery_text = "asked once the disk had room again".to_owned();
    let recovered_qid = loop {
        match post(&http, format!("{base}/api/event/{eid}"), Some(serde_json::json!({ "body": recovery_text }))).await {
            Answer::Ok(q) => break q["id"].as_str().expect("qid").to_owned(),
            Answer::Refused(s, _) => while_recovering.push(s.to_string()),
            Answer::Unanswered(e) => while_recovering.push(e),
        }
        // FAILS IF the store stays broken after space returns (a restart would be needed).
        assert!(
            returned.elapsed() < Duration::from_secs(RECOVERY_SECONDS_MAX),
            "no ask succeeded within {RECOVERY_SECONDS_MAX} s of space returning: {while_recovering:?}\n{}",
            served::tail(&log)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    eprintln!(
        "recovery: the first ask succeeded {:.2} s after space returned (refused meanwhile: {while_recovering:?})",
        returned.elapsed().as_secs_f64()
    );
    let Answer::Ok(_) = post(&http, format!("{base}/api/vote/{}/up", voted[0]), None).await else {
        panic!("a vote after recovery was refused\n{}", served::tail(&log))
    };
    let Answer::Ok(_) = toggle(&http, &hide_url, true).await else {
        panic!("a toggle after recovery was refused\n{}", served::tail(&log))
    };

    // Everything acknowledged, and nothing else, is listed with the votes it got.
    let (acknowledged, refused_texts, votes) = {
        let f = fill.lock().expect("lock");
        (f.asked.clone(), f.refused_texts.clone(), f.votes.clone())
    };
    expected_texts.extend(acknowledged);
    expected_texts.insert(recovered_qid.clone(), recovery_text.clone());
    let expected_list: BTreeMap<String, (u64, bool)> = expected_texts
        .keys()
        .map(|q| {
            let recovery_vote = u64::from(*q == voted[0]);
            (q.clone(), (1 + votes.get(q).copied().unwrap_or(0) + recovery_vote, *q == voted[1]))
        })
        .collect();
    let listed = loop {
        let listed = host_list(&http, &list_url).await;
        if listed.as_ref() == Ok(&expected_list) {
            break listed;
        }
        if returned.elapsed() > Duration::from_secs(RECOVERY_SECONDS_MAX) {
            break listed;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let listed = listed.unwrap_or_else(|e| panic!("{e}\n{}", served::tail(&log)));
    let missing: Vec<_> = expected_list.keys().filter(|q| !listed.contains_key(*q)).collect();
    let unexpected: Vec<_> = listed.keys().filter(|q| !expected_list.contains_key(*q)).collect();
    let miscounted: Vec<_> =
        expected_list.iter().filter_map(|(q, n)| Some((q, n, listed.get(q)?))).filter(|(_, n, l)| n != l).collect();
    // FAILS IF an acknowledged ask is lost, or the aggregator is stuck after recovery.
    assert!(
        missing.is_empty(),
        "{} acknowledged questions are not listed, e.g. {:?}\n{}",
        missing.len(),
        missing.first(),
        served::tail(&log)
    );
    // FAILS IF a refused ask was stored after all.
    assert!(unexpected.is_empty(), "{} questions nobody was told about are listed: {unexpected:?}", unexpected.len());
    // FAILS IF an acknowledged vote or toggle is lost, or a refused one counted
    // (question, expected (votes, hidden), listed).
    assert!(miscounted.is_empty(), "votes or moderation differ from what was acknowledged: {miscounted:?}");

    // FAILS IF the service still calls itself unhealthy once it works again.
    let (health_status, health_body) = get_json(&http, &format!("{base}/healthz")).await;
    eprintln!("recovered: /healthz answered {health_status} {health_body}");
    assert_eq!(health_status, StatusCode::OK, "/healthz after recovery: {health_body}");

    let ids: Vec<&String> = expected_texts.keys().collect();
    for chunk in ids.chunks(100) {
        let joined: Vec<&str> = chunk.iter().map(|s| s.as_str()).collect();
        let (status, body) = get_json(&http, &format!("{base}/api/questions/{}", joined.join(","))).await;
        assert_eq!(status, StatusCode::OK, "question texts: {body}");
        let texts: serde_json::Value = serde_json::from_str(&body).expect("texts JSON");
        for q in chunk {
            assert_eq!(texts[q.as_str()]["text"].as_str(), Some(expected_texts[*q].as_str()), "the text of {q}");
        }
    }

    // A graceful stop, then the file itself: the ledger holds exactly what was acknowledged.
    served::signal(server.child.id(), "-TERM");
    let status = served::wait_exit(server, Duration::from_secs(30)).await;
    assert!(status.is_some_and(|s| s.success()), "the stop after recovery exited {status:?}\n{}", served::tail(&log));
    let conn = served_file::open_read_only(&db);
    let mut stmt = conn.prepare("SELECT text FROM ledger WHERE kind = 0").expect("prepare");
    let stored: BTreeSet<String> =
        stmt.query_map([], |r| r.get::<_, String>(0)).expect("query").map(|t| t.expect("a text")).collect();
    drop(stmt);
    let reappeared: Vec<_> = refused_texts.iter().filter(|t| stored.contains(*t)).collect();
    // FAILS IF a write answered 503 is in the ledger (it would be folded by the next start).
    assert!(
        reappeared.is_empty(),
        "{} refused asks are in the ledger, e.g. {:?}",
        reappeared.len(),
        reappeared.first()
    );
    let expected_stored: BTreeSet<String> = expected_texts.values().cloned().collect();
    assert_eq!(stored, expected_stored, "the ledger's questions are not the acknowledged ones");
    let vote_records: i64 =
        conn.query_row("SELECT count(*) FROM ledger WHERE kind = 1", [], |r| r.get(0)).expect("count votes");
    assert_eq!(
        vote_records as u64,
        votes.values().sum::<u64>() + 1,
        "vote records in the ledger vs votes acknowledged"
    );
    // Kinds 2 and 3 are the answered and hidden toggles.
    let toggles: (i64, i64) = conn
        .query_row("SELECT count(*) FILTER (WHERE kind = 2), count(*) FILTER (WHERE kind = 3) FROM ledger", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .expect("count toggles");
    assert_eq!(toggles, (0, hidden_records), "(answered, hidden) records vs the toggles acknowledged");
    let events: i64 = conn.query_row("SELECT count(*) FROM events", [], |r| r.get(0)).expect("count events");
    assert_eq!(events, events_stored, "events stored vs events acknowledged");
    let (cursor, last) = served_file::cursor_and_last(&conn);
    assert_eq!(cursor, last, "the aggregator's cursor is not at the ledger's end after the stop");
    drop(conn);
    drop(disk);
}

/// The writer commits many queued single-record appends as one transaction. When that
/// transaction outgrows the page cache, SQLite writes pages to the log before the COMMIT;
/// if the disk fills right then, SQLite may roll the whole transaction back at that
/// statement, and every later statement of the group would then run outside any
/// transaction, committing itself, while the group's COMMIT fails and every caller is told
/// "refused". Here a group of 4,096 long asks (about 2.5 MB, more than the writer's 2 MiB
/// page cache) meets a disk with about 1.4 MB free: whatever the callers were told, the
/// ledger must hold exactly the appends that were acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_commit_cut_short_by_a_full_disk_stores_exactly_what_it_acknowledged() {
    use ledger::ports::LedgerStore;
    use ledger::{Asked, EventId, QuestionId, Record, RecordBody, RecordId, VoterId};

    const APPENDS: usize = 4_096;
    let outside = tempfile::tempdir().expect("temp dir");
    let Some(disk) = tiny_disk(outside.path(), DISK_SIZE, 3 * FILLER_BYTES / 2) else { return };
    let db = disk.dir.join("group.db");
    let store = ledger_sqlite::SqliteStore::open(&db, ledger_sqlite::Options::default()).expect("open the store");
    let event = EventId(ulid::Ulid::new());
    let records: Vec<Record> = (0..APPENDS)
        .map(|n| Record {
            id: RecordId(ulid::Ulid::new()),
            event,
            question: QuestionId(ulid::Ulid::new()),
            region: "test".into(),
            body: RecordBody::Asked(Asked {
                text: long_text(&format!("append {n}")),
                who: None,
                voter: VoterId(ulid::Ulid::new()),
            }),
        })
        .collect();

    // Another connection holds the write lock while every append queues up, so the writer
    // takes them as one group once it is released.
    let blocker = rusqlite::Connection::open(&db).expect("second connection");
    blocker.execute_batch("BEGIN IMMEDIATE").expect("take the write lock");
    let appends: Vec<_> = records
        .iter()
        .cloned()
        .map(|r| {
            let store = store.clone();
            tokio::spawn(async move { store.append(std::slice::from_ref(&r)).await.map_err(|e| e.to_string()) })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    blocker.execute_batch("COMMIT").expect("release the write lock");
    drop(blocker);
    let mut acknowledged = BTreeSet::new();
    let mut refusals: BTreeMap<String, usize> = BTreeMap::new();
    for (r, append) in records.iter().zip(appends) {
        match append.await.expect("append task") {
            Ok(()) => {
                acknowledged.insert(r.id.to_bytes());
            }
            Err(e) => *refusals.entry(e).or_default() += 1,
        }
    }
    store.close().await;
    eprintln!("group commit on a full disk: {} acknowledged, refused {refusals:?}", acknowledged.len());

    let conn = served_file::open_read_only(&db);
    let mut stmt = conn.prepare("SELECT id FROM ledger").expect("prepare");
    let stored: BTreeSet<[u8; 16]> = stmt
        .query_map([], |r| r.get::<_, Vec<u8>>(0))
        .expect("query")
        .map(|id| id.expect("an id").try_into().expect("a 16-byte id"))
        .collect();
    let lost = acknowledged.difference(&stored).count();
    let refused_but_stored = stored.difference(&acknowledged).count();
    // FAILS IF an acknowledged append is missing.
    assert_eq!(lost, 0, "acknowledged appends missing from the ledger");
    // FAILS IF appends the callers were told were refused are in the ledger anyway.
    assert_eq!(
        refused_but_stored,
        0,
        "appends answered with an error are in the ledger ({} stored in all)",
        stored.len()
    );
    assert!(!refusals.is_empty(), "no append was refused: the disk never filled, the test is broken");
    drop(stmt);
    drop(conn);
    drop(disk);
}
