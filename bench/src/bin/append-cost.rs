//! What a durable vote costs SQLite on this machine, for three ways of storing it (issue
//! 14, "a cheaper durable vote"). Each way runs on a fresh file with the store's settings
//! (WAL, `synchronous=FULL`: every commit is fsynced), committing groups of `--group` votes
//! (the writer's group commit) for `--seconds`, each vote a new voter on one of 100
//! questions:
//!
//! - `rows` (today): a ledger row per vote (AUTOINCREMENT `seq`, the unique `id` index and
//!   the `(event, seq)` index), and the fold's writes in the same transaction: the voter's
//!   row in `voters` (keyed voter first) and the question's count.
//! - `rows-voters-in-memory`: the ledger row per vote and the count, the voter states kept
//!   in memory and written out as rows every `--checkpoint-groups` groups (with the
//!   aggregator's cursor, as a checkpoint would).
//! - `packed`: one ledger row per group holding all its records (no per-record index), the
//!   count, the voter states in memory and checkpointed likewise.
//!
//! Prints one line per way: votes/s, microseconds per vote, commits/s.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use clap::Parser;
use rand::Rng;
use rusqlite::{params, Connection};

#[derive(Parser)]
struct Args {
    /// Votes per committed group.
    #[arg(long, default_value_t = 64)]
    group: usize,
    /// How long each way runs.
    #[arg(long, default_value_t = 8)]
    seconds: u64,
    /// Groups between two checkpoints of the in-memory voter states.
    #[arg(long, default_value_t = 1_000)]
    checkpoint_groups: usize,
}

#[derive(Clone, Copy)]
enum Way {
    Rows,
    RowsVotersInMemory,
    Packed,
}

impl Way {
    fn name(self) -> &'static str {
        match self {
            Way::Rows => "rows",
            Way::RowsVotersInMemory => "rows-voters-in-memory",
            Way::Packed => "packed",
        }
    }
}

const SCHEMA: &str = "
    CREATE TABLE ledger (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, id BLOB NOT NULL UNIQUE, event BLOB NOT NULL,
        question BLOB NOT NULL, kind INTEGER NOT NULL, voter BLOB, flag INTEGER, expire INTEGER NOT NULL
    );
    CREATE INDEX ledger_by_event ON ledger (event, seq);
    CREATE TABLE packed (seq INTEGER PRIMARY KEY AUTOINCREMENT, event BLOB NOT NULL, records BLOB NOT NULL);
    CREATE TABLE questions (id BLOB PRIMARY KEY, eid BLOB NOT NULL, votes INTEGER NOT NULL) WITHOUT ROWID;
    CREATE TABLE voters (
        voter BLOB NOT NULL, qid BLOB NOT NULL, up INTEGER NOT NULL, rec BLOB NOT NULL, expire INTEGER NOT NULL,
        PRIMARY KEY (voter, qid)
    ) WITHOUT ROWID;
    CREATE TABLE cursors (name TEXT PRIMARY KEY, seq INTEGER NOT NULL);
";

/// One vote: its record id, voter and question (16-byte ids, as the store keeps them).
struct Vote {
    id: [u8; 16],
    voter: [u8; 16],
    question: [u8; 16],
}

fn open(path: &std::path::Path) -> anyhow::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

/// Runs one way for the given time; returns (votes, commits, elapsed).
fn run(way: Way, args: &Args, dir: &std::path::Path) -> anyhow::Result<(u64, u64, Duration)> {
    let mut conn = open(&dir.join(format!("{}.db", way.name())))?;
    let event = [7u8; 16];
    let questions: Vec<[u8; 16]> = (0..100u128).map(|q| (q + 1).to_be_bytes()).collect();
    for q in &questions {
        conn.execute("INSERT INTO questions (id, eid, votes) VALUES (?1, ?2, 0)", params![q, event])?;
    }
    let mut rng = rand::thread_rng();
    let mut next_id = 1u128 << 100;
    let mut in_memory: HashMap<([u8; 16], [u8; 16]), [u8; 16]> = HashMap::new();
    let (mut votes, mut commits, mut groups) = (0u64, 0u64, 0usize);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(args.seconds) {
        let group: Vec<Vote> = (0..args.group)
            .map(|_| {
                next_id += 1;
                Vote {
                    id: next_id.to_be_bytes(),
                    voter: (next_id ^ (1 << 90)).to_be_bytes(),
                    question: questions[rng.gen_range(0..questions.len())],
                }
            })
            .collect();
        let tx = conn.transaction()?;
        match way {
            Way::Rows | Way::RowsVotersInMemory => {
                let mut append = tx.prepare_cached(
                    "INSERT INTO ledger (id, event, question, kind, voter, flag, expire) VALUES (?1, ?2, ?3, 1, ?4, 1, 99)",
                )?;
                for v in &group {
                    append.execute(params![v.id, event, v.question, v.voter])?;
                }
            }
            Way::Packed => {
                let mut records = Vec::with_capacity(group.len() * 48);
                for v in &group {
                    records.extend_from_slice(&v.id);
                    records.extend_from_slice(&v.voter);
                    records.extend_from_slice(&v.question);
                }
                tx.prepare_cached("INSERT INTO packed (event, records) VALUES (?1, ?2)")?
                    .execute(params![event, records])?;
            }
        }
        {
            let mut count = tx.prepare_cached("UPDATE questions SET votes = votes + 1 WHERE id = ?1")?;
            let mut voter_row = tx.prepare_cached(
                "INSERT OR REPLACE INTO voters (voter, qid, up, rec, expire) VALUES (?1, ?2, 1, ?3, 99)",
            )?;
            for v in &group {
                count.execute(params![v.question])?;
                match way {
                    Way::Rows => {
                        voter_row.execute(params![v.voter, v.question, v.id])?;
                    }
                    Way::RowsVotersInMemory | Way::Packed => {
                        in_memory.insert((v.voter, v.question), v.id);
                    }
                }
            }
            groups += 1;
            if !matches!(way, Way::Rows) && groups % args.checkpoint_groups == 0 {
                for ((voter, question), rec) in in_memory.drain() {
                    voter_row.execute(params![voter, question, rec])?;
                }
            }
            tx.prepare_cached("INSERT OR REPLACE INTO cursors (name, seq) VALUES ('aggregator', ?1)")?
                .execute(params![groups as i64])?;
        }
        tx.commit()?;
        votes += group.len() as u64;
        commits += 1;
    }
    Ok((votes, commits, started.elapsed()))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = std::env::temp_dir().join(format!("append-cost-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    for way in [Way::Rows, Way::RowsVotersInMemory, Way::Packed] {
        let (votes, commits, elapsed) = run(way, &args, &dir)?;
        let seconds = elapsed.as_secs_f64();
        println!(
            "append-cost way={} group={} votes_per_s={:.0} us_per_vote={:.1} commits_per_s={:.0}",
            way.name(),
            args.group,
            votes as f64 / seconds,
            seconds * 1e6 / votes as f64,
            commits as f64 / seconds
        );
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
