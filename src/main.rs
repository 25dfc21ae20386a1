//! `wewerewondering`: serve the live Q&A service, and the operator's tools for its ledger.

use std::io::{BufReader, IsTerminal};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use ledger::ports::{LedgerStore, ProjectionReader};
use ledger::EventId;
use ledger_sqlite::{Durability, Options, SqliteStore};
use wewerewondering::embedded::{Embedded, EmbeddedConfig};
use wewerewondering::{demo, dynamodb_backend, http_server, replay, transfer};

const DB_DEFAULT: &str = "wewerewondering.db";
/// How long in-flight requests (and live streams) get to finish after a shutdown signal.
const DRAIN_SECONDS_MAX: u64 = 10;
/// How often expired events are swept out of the embedded store.
const SWEEP_INTERVAL_SECONDS: u64 = 3_600;

#[derive(Parser)]
#[command(name = "wewerewondering", version, about = "Live Q&A for talks and streams, on an event-sourced vote ledger")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    /// One SQLite file (embedded mode)
    Sqlite,
    /// DynamoDB tables (names from EVENTS_TABLE, LEDGER_TABLE, QUESTIONS_TABLE, VOTERS_TABLE) and SQS
    Dynamodb,
}

/// Where the operator commands find the ledger and the projection.
#[derive(clap::Args)]
struct StoreArgs {
    #[arg(long, value_enum, default_value = "sqlite")]
    backend: Backend,
    /// The SQLite file (sqlite backend).
    #[arg(long, default_value = DB_DEFAULT)]
    db: PathBuf,
    /// Another AWS endpoint, e.g. a local emulator (dynamodb backend).
    #[arg(long)]
    endpoint_url: Option<String>,
}

/// The write rate limits (`ingest::RateLimits`): each a RATE `COUNT/UNIT:BURST` (UNIT s,
/// min, h or Nms) or `off`.
#[derive(clap::Args)]
struct RateArgs {
    /// Votes per client address.
    #[arg(long, value_name = "RATE", default_value_t = ingest::RateSetting(ingest::RateLimits::default().vote))]
    rate_vote: ingest::RateSetting,
    /// Questions asked per client address.
    #[arg(long, value_name = "RATE", default_value_t = ingest::RateSetting(ingest::RateLimits::default().ask))]
    rate_ask: ingest::RateSetting,
    /// Events created per client address.
    #[arg(long, value_name = "RATE", default_value_t = ingest::RateSetting(ingest::RateLimits::default().create_event))]
    rate_create_event: ingest::RateSetting,
    /// Questions asked per voter (cookie) and event.
    #[arg(long, value_name = "RATE", default_value_t = ingest::RateSetting(ingest::RateLimits::default().voter_ask))]
    rate_voter_ask: ingest::RateSetting,
    /// No rate limit at all (benchmarks and load tests from one address). Given with
    /// `--rate-*` flags, the last one given wins.
    #[arg(long, overrides_with_all = ["rate_vote", "rate_ask", "rate_create_event", "rate_voter_ask"])]
    no_rate_limits: bool,
}

impl RateArgs {
    fn limits(&self) -> ingest::RateLimits {
        if self.no_rate_limits {
            return ingest::RateLimits::OFF;
        }
        ingest::RateLimits {
            vote: self.rate_vote.0,
            ask: self.rate_ask.0,
            create_event: self.rate_create_event.0,
            voter_ask: self.rate_voter_ask.0,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum DurabilityArg {
    /// fsync every commit (survives power loss)
    Full,
    /// no fsync on commit (survives a crash of the process, not of the machine)
    Normal,
}

// `Serve` is much larger than the other commands; the value is parsed once, so its size
// does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run the service (ingest, aggregator, query and the client) in one process.
    Serve {
        #[arg(long, default_value = "127.0.0.1:3000")]
        listen: SocketAddr,
        #[command(flatten)]
        store: StoreArgs,
        /// Create missing DynamoDB tables and SQS queues (dynamodb backend).
        #[arg(long)]
        create_tables: bool,
        /// Run the local stand-in for the EventBridge Pipe, stream to queue (dynamodb backend).
        #[arg(long)]
        local_pipe: bool,
        /// How long the aggregator's queue long-poll waits, 0 to 20 s (dynamodb backend).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i32).range(0..=20))]
        queue_wait_seconds: i32,
        /// Stamped on every record ingested here.
        #[arg(long, default_value = "local")]
        region: String,
        /// Do not seed a demo event (one is seeded into a new database only).
        #[arg(long)]
        no_demo: bool,
        /// The built client to serve (skipped with a warning if missing).
        #[arg(long = "static", default_value = "client/dist")]
        static_dir: PathBuf,
        #[arg(long, value_enum, default_value = "full")]
        durability: DurabilityArg,
        #[arg(long, default_value_t = 2)]
        guest_max_age: u32,
        #[arg(long, default_value_t = 1)]
        host_max_age: u32,
        /// How long events are kept, 1 to 3650 days: for a new store (default 30). An
        /// existing store keeps its own; a different value is refused (see `retention --set`).
        #[arg(long)]
        retention_days: Option<ledger::Retention>,
        /// Mark the voter cookie Secure (when served over HTTPS).
        #[arg(long)]
        secure_cookies: bool,
        #[command(flatten)]
        rates: RateArgs,
        /// A source allowed to embed the pages in a frame (e.g. the presenter view in slides):
        /// an origin like https://slides.example, 'self' or *. Repeatable; none by default.
        #[arg(long, value_name = "SOURCE")]
        allow_framing: Vec<wewerewondering::site::FrameAncestor>,
        /// Serve `/metrics` on this address too, to any client that reaches it (on the main
        /// listener it answers loopback clients only).
        #[arg(long, value_name = "ADDR")]
        metrics_listen: Option<SocketAddr>,
        /// Behind a proxy: take each client's address from the last `X-Forwarded-For` entry
        /// (for rate limits and stream budgets). Off, a client could claim any address.
        #[arg(long)]
        trust_forwarded_for: bool,
        /// Most connections open at once (lowered to fit the process's file limit); more
        /// are answered 503 with Retry-After.
        #[arg(long, default_value_t = http_server::CONNECTIONS_MAX_DEFAULT)]
        connections_max: usize,
        /// How long a client may take to send a request's headers, from the connection's
        /// start or the end of its previous response; slower or idle sockets are closed.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        header_read_timeout: Duration,
    },
    /// Fold the ledger from scratch and report drift against the projection.
    Replay {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        event: Option<EventId>,
        /// Rewrite the projection with the fold's result.
        #[arg(long)]
        repair: bool,
    },
    /// Move ledger records as NDJSON.
    Ledger {
        #[command(subcommand)]
        command: LedgerCommand,
    },
    /// Show the store's retention, or change it (restamping every stored row's expiry).
    Retention {
        #[command(flatten)]
        store: StoreArgs,
        /// The new retention in days (1 to 3650). Run it with `serve` stopped.
        #[arg(long)]
        set: Option<ledger::Retention>,
    },
    /// List the ledger records the aggregator set aside because they could not be folded.
    Quarantine {
        #[command(flatten)]
        store: StoreArgs,
        /// Mark them as seen, so that `/healthz` stops reporting them.
        #[arg(long)]
        ack: bool,
    },
    /// Show one question's audit trail: every record, and the fold next to the projection.
    Inspect {
        question: ledger::QuestionId,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Subcommand)]
enum LedgerCommand {
    /// Write records to stdout, one JSON object per line.
    Export {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        event: Option<EventId>,
    },
    /// Read records from stdin and append those not yet present, then fold them.
    Import {
        #[command(flatten)]
        store: StoreArgs,
    },
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Reports an import on stderr: every refused line with its reason, then the totals. Any
/// refused line makes the command fail (exit 1), though every other line was imported.
fn import_outcome(report: &transfer::ImportReport) -> anyhow::Result<()> {
    for (line, reason) in &report.refused {
        eprintln!("line {line}: refused: {reason}");
    }
    eprintln!(
        "read {} lines: {} records accepted (already present ones are skipped), {} events created, {} lines refused",
        report.lines,
        report.records,
        report.events_created,
        report.refused.len()
    );
    if !report.refused.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new("info,tower_http=warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

fn open(db: &PathBuf) -> anyhow::Result<Arc<SqliteStore>> {
    Ok(SqliteStore::open(db, Options::default())?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_tracing();
    match Cli::parse().command {
        Command::Serve {
            listen,
            store,
            create_tables,
            local_pipe,
            queue_wait_seconds,
            region,
            no_demo,
            static_dir,
            durability,
            guest_max_age,
            host_max_age,
            retention_days,
            secure_cookies,
            rates,
            allow_framing,
            metrics_listen,
            trust_forwarded_for,
            connections_max,
            header_read_timeout,
        } => {
            if let Some(addr) = metrics_listen {
                // The operator's scraper: its own listener, apart from the public one.
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr} for metrics"))?;
                println!("metrics on   http://{}/metrics", listener.local_addr()?);
                tokio::spawn(async move {
                    if let Err(error) = axum::serve(listener, wewerewondering::roles::metrics_router()).await {
                        tracing::error!(%error, "the metrics listener failed");
                    }
                });
            }
            // One edge for both backends (src/http_server.rs).
            let limits = http_server::ConnectionLimits {
                header_read_timeout,
                ..http_server::ConnectionLimits::for_this_process(
                    connections_max,
                    trust_forwarded_for,
                    Duration::from_secs(DRAIN_SECONDS_MAX),
                )
            };
            let static_dir = if static_dir.join("index.html").is_file() {
                Some(static_dir)
            } else {
                tracing::warn!(dir = %static_dir.display(), "no built client there; serving the API only");
                None
            };
            if store.backend == Backend::Dynamodb {
                if !no_demo {
                    eprintln!("note: the demo event is seeded in embedded mode only");
                }
                let options = dynamodb_backend::DynamoServeOptions {
                    endpoint_url: store.endpoint_url,
                    create_tables,
                    local_pipe,
                    receive_wait_s: queue_wait_seconds,
                    region,
                    retention: retention_days,
                    guest_max_age_s: guest_max_age,
                    host_max_age_s: host_max_age,
                    cookie_secure: secure_cookies,
                    static_dir,
                    rate_limits: rates.limits(),
                    frame_ancestors: allow_framing,
                    ..dynamodb_backend::DynamoServeOptions::default()
                };
                return dynamodb_backend::serve(listen, options, limits, shutdown_signal()).await;
            }
            let config = EmbeddedConfig {
                db: store.db,
                region,
                retention: retention_days,
                durability: match durability {
                    DurabilityArg::Full => Durability::Full,
                    DurabilityArg::Normal => Durability::Normal,
                },
                guest_max_age_s: guest_max_age,
                host_max_age_s: host_max_age,
                cookie_secure: secure_cookies,
                static_dir,
                rate_limits: rates.limits(),
                frame_ancestors: allow_framing,
            };
            serve(listen, config, limits, !no_demo).await
        }
        Command::Replay { store, event, repair } => {
            let hide_bar = !std::io::stderr().is_terminal();
            let report = match store.backend {
                Backend::Sqlite => {
                    let sqlite = open(&store.db)?;
                    let bar = replay::progress_bar(sqlite.count(event).await?, hide_bar);
                    let report = replay::replay(sqlite.as_ref(), sqlite.as_ref(), event, repair, &bar).await;
                    // The fold includes the records the aggregator set aside: say which.
                    let set_aside = transfer::set_aside_of(sqlite.as_ref(), event, None).await;
                    sqlite.close().await;
                    for line in set_aside? {
                        println!("{line}");
                    }
                    report?
                }
                Backend::Dynamodb => {
                    let dynamo = dynamodb_backend::open_store(store.endpoint_url.as_deref()).await?;
                    let bar = replay::progress_bar(dynamo.count(event).await?, hide_bar);
                    dynamodb_backend::replay(&dynamo, event, repair, &bar).await?
                }
            };
            println!(
                "folded {} records into {} questions in {:.3} s ({:.0} records/s)",
                report.records,
                report.questions,
                report.fold_seconds,
                report.records_per_second()
            );
            for d in &report.drift {
                let show = |q: &Option<ledger::QuestionState>| match q {
                    Some(q) => format!(
                        "votes {} answered {} hidden {} text {}",
                        q.counters.votes,
                        q.counters.answered_at().is_some(),
                        q.counters.is_hidden(),
                        if q.asked.is_some() { "known" } else { "missing" }
                    ),
                    None => "absent".into(),
                };
                println!("drift {}: projection {} | ledger {}", d.question, show(&d.stored), show(&d.folded));
            }
            if report.drift.is_empty() {
                println!("no drift");
                Ok(())
            } else if report.repaired {
                println!("repaired {} questions", report.drift.len());
                Ok(())
            } else {
                println!("{} questions drifted (run with --repair to rewrite the projection)", report.drift.len());
                std::process::exit(1)
            }
        }
        Command::Ledger { command: LedgerCommand::Export { store, event } } => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let n = match store.backend {
                Backend::Sqlite => {
                    let sqlite = open(&store.db)?;
                    let n = transfer::export(sqlite.as_ref(), sqlite.as_ref(), event, &mut out).await;
                    sqlite.close().await;
                    n?
                }
                Backend::Dynamodb => {
                    let dynamo = dynamodb_backend::open_store(store.endpoint_url.as_deref()).await?;
                    // The records go to stdout; the progress bar to stderr, when someone watches it.
                    let bar = if std::io::stderr().is_terminal() {
                        replay::progress_bar(dynamo.count(event).await?, false)
                    } else {
                        replay::progress_bar(0, true)
                    };
                    dynamodb_backend::export(&dynamo, event, &mut out, &bar).await?
                }
            };
            eprintln!("exported {n} records");
            Ok(())
        }
        Command::Ledger { command: LedgerCommand::Import { store } } if store.backend == Backend::Dynamodb => {
            // The ledger's stream carries what is appended to the aggregator, as for any write.
            let dynamo = dynamodb_backend::open_store(store.endpoint_url.as_deref()).await?;
            let stdin = std::io::stdin();
            let target = transfer::ImportTarget {
                events: dynamo.as_ref(),
                ledger: dynamo.as_ref(),
                projection: dynamo.as_ref(),
                retention: dynamo.retention(),
                now_ms: now_ms(),
            };
            let report = transfer::import(&target, &mut BufReader::new(stdin.lock())).await?;
            import_outcome(&report)
        }
        Command::Ledger { command: LedgerCommand::Import { store } } => {
            // Import through the embedded service so the aggregator folds what arrives.
            let app = Embedded::start(EmbeddedConfig::new(store.db)).await?;
            let stdin = std::io::stdin();
            let mut input = BufReader::new(stdin.lock());
            let store = app.store();
            let target = transfer::ImportTarget {
                events: store.as_ref(),
                ledger: store.as_ref(),
                projection: store.as_ref(),
                retention: store.retention(),
                now_ms: now_ms(),
            };
            let result = transfer::import(&target, &mut input).await;
            let caught_up = app.wait_caught_up().await;
            app.shutdown().await;
            let report = result?;
            caught_up?;
            import_outcome(&report)
        }
        Command::Retention { store, set } => {
            if store.backend == Backend::Dynamodb {
                let dynamo = dynamodb_backend::open_store(store.endpoint_url.as_deref()).await?;
                if set.is_some() {
                    anyhow::bail!(
                        "changing a DynamoDB deployment's retention would rewrite the expiry of every item; \
                         it is fixed when the deployment is created"
                    );
                }
                println!("retention: {}", dynamo.retention());
                return Ok(());
            }
            let sqlite = open(&store.db)?;
            let result = match set {
                Some(r) => {
                    sqlite.set_retention(r).await.map(|_| println!("retention: {r} (every stored row restamped)"))
                }
                None => {
                    println!("retention: {}", sqlite.retention());
                    Ok(())
                }
            };
            sqlite.close().await;
            Ok(result?)
        }
        Command::Quarantine { store, ack } => {
            if store.backend == Backend::Dynamodb {
                println!("on AWS, records the aggregator cannot fold go to the queue's dead-letter queue (see infra/README.md)");
                return Ok(());
            }
            let sqlite = open(&store.db)?;
            let result = transfer::quarantine_report(sqlite.as_ref(), ack, &mut std::io::stdout().lock()).await;
            sqlite.close().await;
            result
        }
        Command::Inspect { question, store } => {
            let stdout = std::io::stdout();
            let agrees = match store.backend {
                Backend::Sqlite => {
                    let sqlite = open(&store.db)?;
                    let agrees = transfer::inspect(
                        sqlite.as_ref() as &dyn LedgerStore,
                        sqlite.as_ref() as &dyn ProjectionReader,
                        question,
                        &mut stdout.lock(),
                    )
                    .await;
                    let set_aside = transfer::set_aside_of(sqlite.as_ref(), None, Some(question)).await;
                    sqlite.close().await;
                    for line in set_aside? {
                        println!("{line}");
                    }
                    agrees?
                }
                Backend::Dynamodb => {
                    let dynamo = dynamodb_backend::open_store(store.endpoint_url.as_deref()).await?;
                    transfer::inspect(
                        dynamo.as_ref() as &dyn LedgerStore,
                        dynamo.as_ref() as &dyn ProjectionReader,
                        question,
                        &mut stdout.lock(),
                    )
                    .await?
                }
            };
            if !agrees {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

async fn serve(
    listen: SocketAddr,
    config: EmbeddedConfig,
    limits: http_server::ConnectionLimits,
    seed_demo: bool,
) -> anyhow::Result<()> {
    let app = Embedded::start(config).await?;
    let listener = http_server::bind(listen).await?;
    let addr = listener.local_addr()?;
    if seed_demo {
        match demo::seed_if_new(&app).await? {
            Some(d) => {
                println!("demo event:  guest http://{addr}/event/{}", d.event);
                println!("             host  http://{addr}/event/{}/{}", d.event, d.secret);
            }
            None => println!("demo event:  not seeded (the database is not new; a demo is seeded into a new one only)"),
        }
    }
    println!("listening on http://{addr}");

    let store = app.store();
    let sweeper = tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(SWEEP_INTERVAL_SECONDS));
        loop {
            every.tick().await;
            let now =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
            match store.sweep_expired(now).await {
                Ok(n) if n > 0 => tracing::info!(rows = n, "expired events swept"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "sweeping expired events failed"),
            }
        }
    });

    // On the signal, live streams end at once (their pages reconnect elsewhere or show the
    // outage) instead of holding the drain open until it times out.
    let server = http_server::serve(listener, app.router(), limits, shutdown_signal(), || app.close_live_streams());
    tokio::select! {
        r = server => r.context("server failed")?,
        why = app.writer_died() => {
            // No write can succeed any more: exit non-zero so that a supervisor restarts the
            // process, rather than answer 503 forever. Acknowledged writes are on disk.
            sweeper.abort();
            anyhow::bail!("the ledger writer died ({why}); exiting so that the service is restarted");
        }
    }
    sweeper.abort();
    app.shutdown().await;
    eprintln!("stopped cleanly");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down: no new connections, draining");
}

#[cfg(test)]
mod rate_args_tests {
    use super::*;

    fn limits(args: &[&str]) -> ingest::RateLimits {
        let cli = Cli::try_parse_from(["wewerewondering", "serve"].iter().chain(args)).expect("the arguments parse");
        match cli.command {
            Command::Serve { rates, .. } => rates.limits(),
            _ => unreachable!("serve"),
        }
    }

    #[test]
    fn the_last_of_no_rate_limits_and_a_rate_wins() {
        let vote = ingest::Rate::new(1, Duration::from_secs(60), 3);
        assert_eq!(limits(&[]), ingest::RateLimits::default());
        assert_eq!(limits(&["--no-rate-limits"]), ingest::RateLimits::OFF);
        assert_eq!(limits(&["--rate-vote", "1/min:3"]).vote, vote);
        assert_eq!(limits(&["--rate-vote", "1/min:3", "--no-rate-limits"]), ingest::RateLimits::OFF);
        let later = limits(&["--no-rate-limits", "--rate-vote", "1/min:3"]);
        assert_eq!(later.vote, vote);
        assert_eq!(later.ask, ingest::RateLimits::default().ask, "the others back to their defaults");
        assert_eq!(limits(&["--rate-ask", "off"]).ask, None);
        assert!(Cli::try_parse_from(["wewerewondering", "serve", "--rate-vote", "fast"]).is_err());
    }
}
