//! Live fan-out: `--guests` live streams of one event (`GET /api/live/{eid}`, with
//! `?deltas=1` in `--mode deltas`) held open while votes arrive at a fixed rate, each vote
//! from a new voter on a random question of the event.
//!
//! Each stream is a raw TCP connection from one of several loopback source addresses
//! (127.0.0.2, ...; the server admits at most 500 streams per client address), read by one
//! task into a per-thread scratch buffer: the task keeps only its counts and the arrival time
//! of each push. A push is a read that brings at least one SSE message with data (a delta
//! push that catches up several versions is one push of several messages).
//!
//! Push latency: for each guest and each vote acknowledged in the window, the time from the
//! acknowledgement to the first push that guest receives after it (every push renders the
//! latest state, so it covers every vote acknowledged before it was rendered). A few guests
//! (`--observers`) also parse every message and give the exact figure: from the
//! acknowledgement (`{"votes":n}`, the count before this vote) to the first push showing that
//! question with more than n votes (if that push arrived before the acknowledgement, 0).
//!
//! By default the votes already arrive while the guests join (`--join during-votes`), as
//! they do in a venue; `--join before-votes` starts them once every stream is open.
//!
//! Prints progress on stderr and one summary line on stdout:
//! `fanout key=value ...` (times in ms, KB = 1,000 bytes, CPU in cores).

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};
use rand::{Rng, SeedableRng};
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;
use wewerewondering_bench::measure::{cpu_seconds, machine_ticks, median, peak_rss_mib, quantile};
use wewerewondering_bench::{connect_from, loopback_source, StreamTarget};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// `GET /api/live/{eid}?deltas=1`: the list once, then only what changed.
    Deltas,
    /// `GET /api/live/{eid}`: the whole list on every push.
    Plain,
}

/// When the guests join, relative to the votes.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Join {
    /// Votes already arrive while the guests join over `--ramp` seconds, as in a venue where
    /// people join all the time: each stream's pushes keep the phase of its joining.
    DuringVotes,
    /// Every guest joins first and the votes start after: the first vote wakes every stream
    /// at once, so their pushes start in step.
    BeforeVotes,
}

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    server: StreamTarget,
    #[arg(long, default_value_t = 2_000)]
    guests: usize,
    #[arg(long, value_enum, default_value_t = Mode::Deltas)]
    mode: Mode,
    #[arg(long, value_enum, default_value_t = Join::DuringVotes)]
    join: Join,
    /// Over how many seconds the guests open their streams.
    #[arg(long, default_value_t = 1.0)]
    ramp: f64,
    /// Loopback source addresses to spread the streams over (127.0.0.2, ...); by default one
    /// per 400 streams.
    #[arg(long)]
    sources: Option<u8>,
    #[arg(long, default_value_t = 20.0)]
    votes_per_second: f64,
    /// Votes run this long after every stream has its first list, before the window.
    #[arg(long, default_value_t = 3)]
    warmup: u64,
    /// The measured window.
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    /// How many of the guests parse every message for the exact vote-to-visible latency.
    #[arg(long, default_value_t = 4)]
    observers: usize,
    /// Write everything the first guest received to this file, one JSON line per read,
    /// `{"at": microseconds, "bytes": "..."}`, after a first line `{"window": [start, end]}`
    /// (for `bench/fanout-bytes.py`).
    #[arg(long)]
    record: Option<std::path::PathBuf>,
    /// The server's process id, for its peak RSS and CPU.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Give up waiting for the streams' first lists after this long (and measure those held).
    #[arg(long, default_value_t = 60)]
    connect_timeout: u64,
}

/// After the window, votes stop and the streams are read this much longer, so that the last
/// votes of the window get their pushes.
const TAIL: Duration = Duration::from_secs(2);
/// "\ndata:" starts every SSE data line: each message's data is one line (JSON has no raw
/// newlines), and the line before it is the previous message's end, a chunk header or the
/// `event:` line.
const DATA_LINE: &[u8] = b"\ndata:";

/// Microseconds since the benchmark's start: small enough to keep one per push.
#[derive(Clone, Copy)]
struct Clock(Instant);

impl Clock {
    fn now(self) -> u32 {
        u32::try_from(self.0.elapsed().as_micros()).unwrap_or(u32::MAX)
    }
}

/// The window, in clock microseconds; `u32::MAX` until it is set.
struct Window {
    start: AtomicU32,
    end: AtomicU32,
}

impl Window {
    fn contains(&self, at: u32) -> bool {
        at >= self.start.load(Ordering::Relaxed) && at < self.end.load(Ordering::Relaxed)
    }
}

struct Shared {
    clock: Clock,
    window: Window,
    /// Streams that have their first message.
    ready: AtomicUsize,
    /// Question id → index, for the observers.
    qids: HashMap<String, usize>,
}

/// What one guest saw.
#[derive(Default)]
struct GuestLog {
    ready: bool,
    refused: bool,
    /// The server ended the stream before the benchmark did.
    ended_early: bool,
    /// Arrival of each push.
    pushes: Vec<u32>,
    window_bytes: u64,
    window_pushes: u64,
    window_messages: u64,
    /// Observers only: (question index, votes, arrival) each time a question's count rose.
    seen: Vec<(usize, u64, u32)>,
    unparsed: u64,
    /// The recorded guest only: each read, from the response's first bytes.
    reads: Vec<(u32, String)>,
}

/// Counts "\ndata:" across reads.
#[derive(Default)]
struct DataLines {
    matched: usize,
}

impl DataLines {
    fn count(&mut self, bytes: &[u8]) -> u64 {
        let mut found = 0;
        for &b in bytes {
            if b == DATA_LINE[self.matched] {
                self.matched += 1;
                if self.matched == DATA_LINE.len() {
                    found += 1;
                    self.matched = 0;
                }
            } else {
                // The pattern's first byte occurs nowhere else in it.
                self.matched = usize::from(b == DATA_LINE[0]);
            }
        }
        found
    }
}

/// An observer's view: every message parsed, the highest count of each question kept.
#[derive(Default)]
struct Observer {
    pending: Vec<u8>,
    votes: HashMap<usize, u64>,
}

impl Observer {
    fn feed(&mut self, bytes: &[u8], at: u32, shared: &Shared, log: &mut GuestLog) {
        self.pending.extend_from_slice(bytes);
        let mut consumed = 0;
        while let Some(end) = find(&self.pending[consumed..], b"\n\n") {
            let message = &self.pending[consumed..consumed + end];
            consumed += end + 2;
            let Some(start) = find(message, b"data:") else { continue };
            let data = &message[start + 5..];
            match serde_json::from_slice::<serde_json::Value>(data) {
                Ok(value) => {
                    let items = match &value {
                        serde_json::Value::Array(items) => Some(items),
                        object => object.get("list").or_else(|| object.get("set")).and_then(|v| v.as_array()),
                    };
                    for item in items.into_iter().flatten() {
                        let qid = item.get("qid").and_then(|q| q.as_str()).and_then(|q| shared.qids.get(q));
                        let votes = item.get("votes").and_then(|v| v.as_u64());
                        if let (Some(&qid), Some(votes)) = (qid, votes) {
                            let known = self.votes.entry(qid).or_insert(0);
                            if votes > *known {
                                *known = votes;
                                log.seen.push((qid, votes, at));
                            }
                        }
                    }
                }
                Err(_) => log.unparsed += 1,
            }
        }
        self.pending.drain(..consumed);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

thread_local! {
    /// Every stream on a worker thread reads into this one buffer.
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; 64 * 1024]);
}

async fn guest(
    source: IpAddr,
    target: SocketAddr,
    request: Arc<str>,
    observe: bool,
    record: bool,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> GuestLog {
    let mut log = GuestLog::default();
    let Ok(mut stream) = connect_from(source, target).await else {
        log.refused = true;
        return log;
    };
    if stream.write_all(request.as_bytes()).await.is_err() {
        log.refused = true;
        return log;
    }
    let mut lines = DataLines::default();
    let mut observer = observe.then(Observer::default);
    let mut first = true;
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            readable = stream.readable() => {
                if readable.is_err() {
                    log.ended_early = true;
                    break;
                }
            }
        }
        let read = SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let n = match stream.try_read(&mut scratch) {
                Ok(0) => return Err(()),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(_) => return Err(()),
            };
            let bytes = &scratch[..n];
            let at = shared.clock.now();
            if first {
                first = false;
                if !bytes.starts_with(b"HTTP/1.1 200") {
                    log.refused = true;
                    return Err(());
                }
            }
            let messages = lines.count(bytes);
            if let Some(observer) = observer.as_mut() {
                observer.feed(bytes, at, &shared, &mut log);
            }
            if messages > 0 {
                if !log.ready {
                    log.ready = true;
                    shared.ready.fetch_add(1, Ordering::Relaxed);
                }
                log.pushes.push(at);
            }
            if record {
                log.reads.push((at, String::from_utf8_lossy(bytes).into_owned()));
            }
            if shared.window.contains(at) {
                log.window_bytes += n as u64;
                if messages > 0 {
                    log.window_pushes += 1;
                    log.window_messages += messages;
                }
            }
            Ok(())
        });
        if read.is_err() {
            log.ended_early = !log.refused;
            break;
        }
    }
    log
}

struct Vote {
    qid: usize,
    /// The count the acknowledgement reported: the question's count before this vote (the
    /// projection's, read before the append), so the vote shows as a count above it.
    before: u64,
    sent: u32,
    ack: u32,
}

/// Sends votes at the rate until stopped; returns them and how many failed.
async fn voter(
    args: (SocketAddr, f64),
    qids: Arc<Vec<String>>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<(Vec<Vote>, usize)> {
    let (target, rate) = args;
    // No cookie store: every vote is a new voter, so every vote raises a count.
    let http = reqwest::Client::builder().build()?;
    let votes = Arc::new(Mutex::new(Vec::new()));
    let failed = Arc::new(AtomicUsize::new(0));
    let mut rng = rand::rngs::StdRng::from_entropy();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sent = Vec::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = tick.tick() => {}
        }
        let qid = rng.gen_range(0..qids.len());
        let url = format!("http://{target}/api/vote/{}/up", qids[qid]);
        let (http, votes, failed, shared) = (http.clone(), votes.clone(), failed.clone(), shared.clone());
        sent.push(tokio::spawn(async move {
            let sent = shared.clock.now();
            let acknowledged = async {
                let response = http.post(&url).send().await?.error_for_status()?;
                let body: serde_json::Value = response.json().await?;
                body["votes"].as_u64().context("no votes in the acknowledgement")
            };
            match acknowledged.await {
                Ok(count) => {
                    let ack = shared.clock.now();
                    if let Ok(mut votes) = votes.lock() {
                        votes.push(Vote { qid, before: count, sent, ack });
                    }
                }
                Err(_) => {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for vote in sent {
        let _ = vote.await;
    }
    let votes = std::mem::take(&mut *votes.lock().map_err(|_| anyhow::anyhow!("a vote task panicked"))?);
    Ok((votes, failed.load(Ordering::Relaxed)))
}

/// How late a 5 ms sleep wakes, sampled until stopped: the generator's own scheduling delay.
async fn lateness(mut stop: watch::Receiver<bool>) -> Vec<u32> {
    let mut late = Vec::new();
    loop {
        let asleep = Instant::now();
        tokio::select! {
            _ = stop.changed() => break,
            _ = tokio::time::sleep(Duration::from_millis(5)) => {}
        }
        late.push(asleep.elapsed().saturating_sub(Duration::from_millis(5)).as_micros() as u32);
    }
    late
}

fn ms(us: Option<u32>) -> String {
    us.map_or_else(|| "nan".to_owned(), |us| format!("{:.1}", f64::from(us) / 1e3))
}

async fn question_ids(target: SocketAddr, event: &str) -> anyhow::Result<Vec<String>> {
    let list: serde_json::Value =
        reqwest::get(format!("http://{target}/api/event/{event}/questions")).await?.error_for_status()?.json().await?;
    let qids: Vec<String> = list
        .as_array()
        .context("the list route did not answer a list")?
        .iter()
        .filter_map(|q| q.get("qid").and_then(|q| q.as_str()).map(str::to_owned))
        .collect();
    if qids.is_empty() {
        bail!("event {event} has no questions to vote on");
    }
    Ok(qids)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.votes_per_second.is_finite() || args.votes_per_second <= 0.0 {
        bail!("--votes-per-second must be above 0");
    }
    if !(0.0..=600.0).contains(&args.ramp) {
        bail!("--ramp must be 0 to 600 seconds");
    }
    if args.seconds == 0 {
        bail!("--seconds must be at least 1");
    }
    let sources = args.sources.unwrap_or_else(|| u8::try_from(args.guests.div_ceil(400).max(1)).unwrap_or(u8::MAX));
    if sources == 0 || sources > 253 {
        bail!("--sources must be 1 to 253 (127.0.0.2 to 127.0.0.254)");
    }
    let qids = Arc::new(question_ids(args.server.target, &args.server.event).await?);
    let shared = Arc::new(Shared {
        clock: Clock(Instant::now()),
        window: Window { start: AtomicU32::new(u32::MAX), end: AtomicU32::new(u32::MAX) },
        ready: AtomicUsize::new(0),
        qids: qids.iter().enumerate().map(|(i, q)| (q.clone(), i)).collect(),
    });
    let query = match args.mode {
        Mode::Deltas => "?deltas=1",
        Mode::Plain => "",
    };
    let request: Arc<str> = format!(
        "GET /api/live/{}{query} HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n",
        args.server.event
    )
    .into();
    let (stop_tx, stop) = watch::channel(false);

    let start_voting =
        || tokio::spawn(voter((args.server.target, args.votes_per_second), qids.clone(), shared.clone(), stop.clone()));
    let mut voting = (args.join == Join::DuringVotes).then(start_voting);
    // The streams, a batch every 20 ms over the ramp (which also keeps the accept backlog
    // from overflowing).
    const BATCH_EVERY: Duration = Duration::from_millis(20);
    let batches = (args.ramp / BATCH_EVERY.as_secs_f64()).max(1.0);
    let batch = ((args.guests as f64 / batches).ceil() as usize).max(1);
    let mut guests = Vec::with_capacity(args.guests);
    for i in 0..args.guests {
        let source = loopback_source(i, sources);
        let observe = i < args.observers;
        let record = i == 0 && args.record.is_some();
        let task = guest(source, args.server.target, request.clone(), observe, record, shared.clone(), stop.clone());
        guests.push(tokio::spawn(task));
        if i % batch == batch - 1 {
            tokio::time::sleep(BATCH_EVERY).await;
        }
    }
    let connect_deadline = Instant::now() + Duration::from_secs(args.connect_timeout);
    while shared.ready.load(Ordering::Relaxed) < args.guests && Instant::now() < connect_deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("fanout: {} of {} streams have their first list", shared.ready.load(Ordering::Relaxed), args.guests);

    let cpu_self = || cpu_seconds("self");
    let server_pid = args.server_pid.map(|p| p.to_string());
    let cpu_server = || server_pid.as_deref().and_then(cpu_seconds);
    let voting = voting.take().unwrap_or_else(start_voting);
    let late = tokio::spawn(lateness(stop.clone()));
    tokio::time::sleep(Duration::from_secs(args.warmup)).await;

    let window = Duration::from_secs(args.seconds);
    let (self_before, server_before, machine_before) = (cpu_self(), cpu_server(), machine_ticks());
    let start = shared.clock.now();
    let end = start.saturating_add(u32::try_from(window.as_micros()).unwrap_or(u32::MAX));
    shared.window.end.store(end, Ordering::Relaxed);
    shared.window.start.store(start, Ordering::Relaxed);
    tokio::time::sleep(window).await;
    let (self_after, server_after, machine_after) = (cpu_self(), cpu_server(), machine_ticks());
    eprintln!("fanout: window over, reading the last pushes");
    tokio::time::sleep(TAIL).await;
    let _ = stop_tx.send(true);

    let (votes, votes_failed) = voting.await??;
    let mut late = late.await?;
    let mut logs = Vec::with_capacity(guests.len());
    for g in guests {
        logs.push(g.await?);
    }

    if let (Some(path), Some(log)) = (&args.record, logs.first()) {
        let mut lines = serde_json::json!({ "window": [start, end] }).to_string();
        lines.push('\n');
        for (at, bytes) in &log.reads {
            lines.push_str(&serde_json::json!({ "at": at, "bytes": bytes }).to_string());
            lines.push('\n');
        }
        std::fs::write(path, lines).with_context(|| format!("writing {}", path.display()))?;
    }

    // Votes acknowledged in the window; their pushes may come in the tail.
    let window_votes: Vec<&Vote> = votes.iter().filter(|v| v.ack >= start && v.ack < end).collect();
    let mut latencies = Vec::with_capacity(window_votes.len() * logs.len());
    let mut missed = 0u64;
    let mut exact = Vec::new();
    let mut exact_missed = 0u64;
    let mut seen_before_ack = 0u64;
    for log in logs.iter().filter(|l| l.ready) {
        for vote in &window_votes {
            let next = log.pushes.partition_point(|&p| p <= vote.ack);
            match log.pushes.get(next) {
                Some(&push) => latencies.push(push - vote.ack),
                None => missed += 1,
            }
        }
    }
    for log in logs.iter().filter(|l| l.ready && !l.seen.is_empty()) {
        for vote in &window_votes {
            match log.seen.iter().find(|&&(q, n, _)| q == vote.qid && n > vote.before) {
                Some(&(_, _, at)) if at < vote.ack => {
                    seen_before_ack += 1;
                    exact.push(0);
                }
                Some(&(_, _, at)) => exact.push(at - vote.ack),
                None => exact_missed += 1,
            }
        }
    }
    // How long the votes took to be acknowledged: a stall of the vote path delays the
    // acknowledgements, which the push latency (measured from them) does not show.
    let mut acks: Vec<u32> = window_votes.iter().map(|v| v.ack.saturating_sub(v.sent)).collect();
    acks.sort_unstable();
    // Each guest's longest wait between two pushes in the window (median over guests): a
    // stall anywhere between the vote and the push shows here.
    let mut gaps: Vec<u32> = logs
        .iter()
        .filter(|l| l.ready)
        .map(|l| {
            let pushes = &l.pushes[l.pushes.partition_point(|&p| p < start)..l.pushes.partition_point(|&p| p < end)];
            pushes.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0)
        })
        .collect();
    gaps.sort_unstable();
    latencies.sort_unstable();
    exact.sort_unstable();
    late.sort_unstable();

    let held: Vec<&GuestLog> = logs.iter().filter(|l| l.ready).collect();
    let seconds = window.as_secs_f64();
    let kb = median(&mut held.iter().map(|l| l.window_bytes as f64 / 1e3 / seconds).collect::<Vec<_>>());
    let pushes = median(&mut held.iter().map(|l| l.window_pushes as f64 / seconds).collect::<Vec<_>>());
    let messages = median(&mut held.iter().map(|l| l.window_messages as f64 / seconds).collect::<Vec<_>>());
    let total_mb = held.iter().map(|l| l.window_bytes).sum::<u64>() as f64 / 1e6;
    let cores = |before: Option<f64>, after: Option<f64>| match (before, after) {
        (Some(b), Some(a)) => format!("{:.2}", (a - b) / seconds),
        _ => "nan".to_owned(),
    };
    // Idle share of the whole machine (every core) in the window: other work on it shows here.
    let machine_idle = match (machine_before, machine_after) {
        (Some((idle0, total0)), Some((idle1, total1))) if total1 > total0 => {
            format!("{:.2}", (idle1 - idle0) as f64 / (total1 - total0) as f64)
        }
        _ => "nan".to_owned(),
    };
    let rss = args.server_pid.and_then(peak_rss_mib).map_or_else(|| "nan".to_owned(), |m| format!("{m:.1}"));
    let mode = match args.mode {
        Mode::Deltas => "deltas",
        Mode::Plain => "plain",
    };
    let join = match args.join {
        Join::DuringVotes => "during-votes",
        Join::BeforeVotes => "before-votes",
    };
    println!(
        "fanout mode={mode} join={join} guests={} held={} refused={} ended_early={} sources={sources} vps={} window_s={} \
         votes={} votes_failed={votes_failed} p50_ms={} p95_ms={} p99_ms={} max_ms={} missed={missed} \
         exact_p50_ms={} exact_p99_ms={} exact_max_ms={} exact_samples={} exact_missed={exact_missed} \
         seen_before_ack={seen_before_ack} vote_ack_p50_ms={} vote_ack_p99_ms={} vote_ack_max_ms={} \
         push_gap_max_ms={} unparsed={} kb_per_guest_s={kb:.2} pushes_per_guest_s={pushes:.2} \
         messages_per_guest_s={messages:.2} total_mb={total_mb:.1} server_peak_rss_mib={rss} server_cpu={} \
         generator_cpu={} generator_late_p99_ms={} generator_late_max_ms={} machine_idle={machine_idle}",
        args.guests,
        held.len(),
        logs.iter().filter(|l| l.refused).count(),
        logs.iter().filter(|l| l.ended_early).count(),
        args.votes_per_second,
        args.seconds,
        window_votes.len(),
        ms(quantile(&latencies, 0.5)),
        ms(quantile(&latencies, 0.95)),
        ms(quantile(&latencies, 0.99)),
        ms(latencies.last().copied()),
        ms(quantile(&exact, 0.5)),
        ms(quantile(&exact, 0.99)),
        ms(exact.last().copied()),
        exact.len(),
        ms(quantile(&acks, 0.5)),
        ms(quantile(&acks, 0.99)),
        ms(acks.last().copied()),
        ms(quantile(&gaps, 0.5)),
        logs.iter().map(|l| l.unparsed).sum::<u64>(),
        cores(server_before, server_after),
        cores(self_before, self_after),
        ms(quantile(&late, 0.99)),
        ms(late.last().copied()),
    );
    Ok(())
}
