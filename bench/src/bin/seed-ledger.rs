//! Writes a ledger of N records (one event, Q questions, random voters, mostly up-votes
//! with some retractions and moderation) into a SQLite file with no aggregator running,
//! then starts the embedded service and times how long its aggregator takes to fold them
//! all (its catch-up rate), so `replay` and `serve` can then be measured on a large ledger.

use std::time::Instant;

use clap::Parser;
use ledger::ports::{EventRow, EventStore, LedgerStore};
use ledger::{Asked, EventId, QuestionId, Record, RecordBody, RecordId, VoterId};
use rand::{Rng, SeedableRng};
use ulid::Ulid;
use wewerewondering::embedded::{Embedded, EmbeddedConfig};

#[derive(Parser)]
struct Args {
    #[arg(long)]
    db: std::path::PathBuf,
    #[arg(long, default_value_t = 1_000_000)]
    records: usize,
    #[arg(long, default_value_t = 1_000)]
    questions: usize,
    #[arg(long, default_value_t = 100_000)]
    voters: u128,
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

const APPEND_BATCH: usize = 10_000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
    let options = ledger_sqlite::Options { durability: ledger_sqlite::Durability::Normal, ..Default::default() };
    let store = ledger_sqlite::SqliteStore::open(&args.db, options)?;
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as u64;
    let event = EventId(Ulid::from_parts(now_ms, rng.gen()));
    let secret = ledger::secret::new_secret();
    store
        .create_event(&EventRow {
            id: event,
            secret_hash: ledger::secret::hash_secret(&secret),
            expire_unix: now_ms / 1000 + 30 * 86_400,
        })
        .await?;
    let questions: Vec<QuestionId> =
        (0..args.questions).map(|i| QuestionId(Ulid::from_parts(now_ms, i as u128))).collect();
    let started = Instant::now();
    let mut batch = Vec::with_capacity(APPEND_BATCH);
    for i in 0..args.records {
        let id = RecordId(Ulid::from_parts(now_ms + i as u64 / 1_000, i as u128));
        let voter = VoterId(Ulid(rng.gen_range(0..args.voters)));
        let (question, body) = if i < args.questions {
            (questions[i], RecordBody::Asked(Asked { text: format!("seeded question number {i}?"), who: None, voter }))
        } else {
            let q = questions[rng.gen_range(0..questions.len())];
            match rng.gen_range(0..100) {
                0 => (q, RecordBody::Answered { on: rng.gen() }),
                1 => (q, RecordBody::Hidden { on: rng.gen_bool(0.2) }),
                2..=9 => (q, RecordBody::Voted { voter, up: false }),
                _ => (q, RecordBody::Voted { voter, up: true }),
            }
        };
        batch.push(Record { id, event, question, region: "bench".into(), body });
        if batch.len() == APPEND_BATCH {
            store.append(&batch).await?;
            batch.clear();
        }
    }
    store.append(&batch).await?;
    let appended = started.elapsed();
    store.close().await;
    drop(store);

    let mut config = EmbeddedConfig::new(&args.db);
    config.durability = ledger_sqlite::Durability::Normal;
    let folding = Instant::now();
    let app = Embedded::start(config).await?;
    app.wait_caught_up_within(std::time::Duration::from_secs(3_600)).await?;
    let folded = folding.elapsed();
    app.shutdown().await;
    println!("event {event} secret {secret}");
    println!(
        "appended {} records in {:.2} s ({:.0} records/s); the aggregator folded them in {:.2} s ({:.0} records/s)",
        args.records,
        appended.as_secs_f64(),
        args.records as f64 / appended.as_secs_f64(),
        folded.as_secs_f64(),
        args.records as f64 / folded.as_secs_f64()
    );
    Ok(())
}
