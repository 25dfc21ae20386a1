//! What the host's insights cost (design §7, "Insights"): the timeline and the list at an
//! instant (`?at=`) of one event of N records in embedded mode, over HTTP on loopback, each
//! read cold (the event's records read from SQLite again: the per-event cache expired) and
//! warm (within the cache's few seconds); and, on a DynamoDB endpoint (an emulator), how
//! many Query requests and how many read units one cold read of an event takes.
//!
//! `cargo run --release -p wewerewondering-bench --bin insights -- --records 100000`
//! `.ci/with-moto cargo run --release -p wewerewondering-bench --bin insights -- --dynamodb-records 2000`

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use ledger::history::History;
use ledger::ports::{EventRow, EventStore, LedgerStore};
use ledger::{Asked, EventId, QuestionId, Record, RecordBody, RecordId, VoterId};
use rand::{Rng, SeedableRng};
use ulid::Ulid;
use wewerewondering::embedded::{Embedded, EmbeddedConfig};
use wewerewondering_bench::measure::median;

#[derive(Parser)]
struct Args {
    /// Records of the one event (embedded part).
    #[arg(long, default_value_t = 100_000)]
    records: usize,
    /// Questions asked in it.
    #[arg(long, default_value_t = 300)]
    questions: usize,
    /// Distinct voters.
    #[arg(long, default_value_t = 30_000)]
    voters: u128,
    /// The session's length in minutes (records spread evenly over it).
    #[arg(long, default_value_t = 90)]
    minutes: u64,
    /// Timed requests of each kind, cold and warm.
    #[arg(long, default_value_t = 7)]
    rounds: usize,
    /// Records of the event written to DynamoDB (the endpoint is MOTO_ENDPOINT_A); 0 skips it.
    #[arg(long, default_value_t = 0)]
    dynamodb_records: usize,
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

const SECRET: &str = "0123456789abcdef0123456789abcdef";

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// One event's session: questions asked first, then votes (some withdrawn) and a little
/// moderation, spread evenly over `minutes` ending now.
fn session(args: &Args, records: usize, event: EventId, start_ms: u64) -> Vec<Record> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
    let span_ms = args.minutes * 60_000;
    let questions: Vec<QuestionId> =
        (0..args.questions).map(|i| QuestionId(Ulid::from_parts(start_ms, 1 + i as u128))).collect();
    (0..records)
        .map(|i| {
            let at = start_ms + span_ms * i as u64 / records as u64;
            let voter = VoterId(Ulid(rng.gen_range(1..=args.voters)));
            let (question, body) = if i < questions.len() {
                (questions[i], RecordBody::Asked(Asked { text: format!("benchmark question {i}?"), who: None, voter }))
            } else {
                // Skewed: a few questions get most votes, as in a room.
                let q = questions[(rng.gen::<f64>().powi(3) * questions.len() as f64) as usize % questions.len()];
                match rng.gen_range(0..200) {
                    0 => (q, RecordBody::Answered { on: rng.gen() }),
                    1 => (q, RecordBody::Hidden { on: rng.gen() }),
                    2..=11 => (q, RecordBody::Voted { voter, up: false }),
                    _ => (q, RecordBody::Voted { voter, up: true }),
                }
            };
            Record {
                id: RecordId(Ulid::from_parts(at, 1_000_000 + i as u128)),
                event,
                question,
                region: "bench".into(),
                body,
            }
        })
        .collect()
}

async fn create_event(store: &dyn EventStore, event: EventId) -> anyhow::Result<()> {
    let expire_unix = now_ms() / 1000 + 30 * 86_400;
    store.create_event(&EventRow { id: event, secret_hash: ledger::secret::hash_secret(SECRET), expire_unix }).await?;
    Ok(())
}

struct Timings {
    cold: Vec<f64>,
    warm: Vec<f64>,
    bytes: usize,
}

/// Times `rounds` GETs of `url` after the insights cache expired (cold) and `rounds` right
/// after one (warm), in milliseconds.
async fn time_route(http: &reqwest::Client, url: &str, rounds: usize) -> anyhow::Result<Timings> {
    let mut timings = Timings { cold: Vec::new(), warm: Vec::new(), bytes: 0 };
    for _ in 0..rounds {
        tokio::time::sleep(Duration::from_millis(query::HISTORY_FRESH_MS + 200)).await;
        let started = Instant::now();
        let body = http.get(url).send().await?.error_for_status()?.bytes().await?;
        timings.cold.push(started.elapsed().as_secs_f64() * 1e3);
        timings.bytes = body.len();
        let started = Instant::now();
        http.get(url).send().await?.error_for_status()?.bytes().await?;
        timings.warm.push(started.elapsed().as_secs_f64() * 1e3);
    }
    Ok(timings)
}

fn report(name: &str, t: &mut Timings) {
    let max = |v: &[f64]| v.iter().cloned().fold(0.0, f64::max);
    println!(
        "{name}: cold median {:.1} ms (max {:.1}), warm median {:.1} ms (max {:.1}), {} bytes",
        median(&mut t.cold),
        max(&t.cold),
        median(&mut t.warm),
        max(&t.warm),
        t.bytes
    );
}

async fn embedded(args: &Args) -> anyhow::Result<()> {
    let dir = tempfile_dir()?;
    let mut config = EmbeddedConfig::new(dir.join("insights.db"));
    config.durability = ledger_sqlite::Durability::Normal;
    let app = Embedded::start(config).await?;
    let store = app.store();
    let start_ms = now_ms() - args.minutes * 60_000;
    let event = EventId(Ulid::from_parts(start_ms - 1_000, 1));
    create_event(store.as_ref(), event).await?;
    let records = session(args, args.records, event, start_ms);
    for chunk in records.chunks(10_000) {
        store.append(chunk).await?;
    }
    app.wait_caught_up_within(Duration::from_secs(600)).await?;
    println!(
        "embedded: one event of {} records, {} questions, {} minutes",
        records.len(),
        args.questions,
        args.minutes
    );

    // The parts, in process: the read, the sort, the fold up to the middle, the timeline.
    let mut read = Vec::new();
    let mut sort = Vec::new();
    let mut at = Vec::new();
    let mut timeline = Vec::new();
    for _ in 0..args.rounds {
        let started = Instant::now();
        let all = store.event_records(event).await?;
        read.push(started.elapsed().as_secs_f64() * 1e3);
        let started = Instant::now();
        let history = History::new(all);
        sort.push(started.elapsed().as_secs_f64() * 1e3);
        let started = Instant::now();
        std::hint::black_box(history.ranked_at(start_ms + args.minutes * 30_000));
        at.push(started.elapsed().as_secs_f64() * 1e3);
        let started = Instant::now();
        std::hint::black_box(history.timeline(10)?);
        timeline.push(started.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "parts (median ms): read {:.1}, sort {:.1}, fold+rank at the middle {:.1}, timeline at 10 s {:.1}",
        median(&mut read),
        median(&mut sort),
        median(&mut at),
        median(&mut timeline)
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let router = app.router();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>()).await;
    });
    let http = reqwest::Client::new();
    let base = format!("http://{addr}/api/event/{event}");
    let middle = start_ms + args.minutes * 30_000;
    report(
        "timeline ?step=10",
        &mut time_route(&http, &format!("{base}/timeline/{SECRET}?step=10"), args.rounds).await?,
    );
    report(
        "timeline ?step=60",
        &mut time_route(&http, &format!("{base}/timeline/{SECRET}?step=60"), args.rounds).await?,
    );
    report(
        "?at= the middle",
        &mut time_route(&http, &format!("{base}/questions/{SECRET}?at={middle}"), args.rounds).await?,
    );
    report("audit", &mut time_route(&http, &format!("{base}/audit/{SECRET}"), args.rounds).await?);
    report("bursts", &mut time_route(&http, &format!("{base}/bursts/{SECRET}"), args.rounds).await?);
    app.shutdown().await;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("www-insights-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// One cold read of an event on DynamoDB: how many Query requests, and the read units the
/// endpoint reports for the same queries.
async fn dynamodb(args: &Args) -> anyhow::Result<()> {
    let endpoint = std::env::var("MOTO_ENDPOINT_A").map_err(|_| anyhow::anyhow!("run under .ci/with-moto"))?;
    let store = Arc::new(ledger_dynamodb::fresh_tables(&endpoint).await?);
    let start_ms = now_ms() - args.minutes * 60_000;
    let event = EventId(Ulid::from_parts(start_ms - 1_000, 2));
    create_event(store.as_ref(), event).await?;
    let records = session(args, args.dynamodb_records, event, start_ms);
    let started = Instant::now();
    store.append(&records).await?;
    println!(
        "dynamodb: {} records appended in {:.1} s; {} shard partitions read per event",
        records.len(),
        started.elapsed().as_secs_f64(),
        store.ledger_read_shards()
    );
    let started = Instant::now();
    let (read, queries) = store.event_records_counted(event).await?;
    println!(
        "dynamodb: one read of the event: {} records in {queries} Query requests, {:.0} ms",
        read.len(),
        started.elapsed().as_secs_f64() * 1e3
    );
    // The same queries with the consumed capacity reported, and the items' sizes.
    let mut units = 0.0;
    let mut item_bytes = 0usize;
    for partition in ledger_dynamodb::layout::ledger_partitions(event, store.ledger_read_shards()) {
        let mut pages = store
            .client()
            .query()
            .table_name(&store.tables().ledger)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", ledger_dynamodb::schema::LEDGER_PARTITION_KEY)
            .expression_attribute_values(":pk", ledger_dynamodb::aws_sdk_dynamodb::types::AttributeValue::S(partition))
            .return_consumed_capacity(ledger_dynamodb::aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page?;
            units += page.consumed_capacity().and_then(|c| c.capacity_units()).unwrap_or(0.0);
            for item in page.items() {
                item_bytes += item
                    .iter()
                    .map(|(name, value)| name.len() + value.as_s().map(|s| s.len()).unwrap_or(8))
                    .sum::<usize>();
            }
        }
    }
    let per_item = item_bytes as f64 / read.len().max(1) as f64;
    println!("dynamodb: {units:.1} read units reported; items average {per_item:.0} bytes");
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.dynamodb_records > 0 {
        dynamodb(&args).await?;
    }
    if args.records > 0 {
        embedded(&args).await?;
    }
    Ok(())
}
