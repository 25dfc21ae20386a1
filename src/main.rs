//! `wewerewondering`: serve the live Q&A service, and the operator's tools for its ledger.

use std::io::{BufReader, ErrorKind, IsTerminal};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use ledger::history::BurstThresholds;
use ledger::EventId;
use ledger_sqlite::Durability;
use wewerewondering::dynamodb_backend::DynamoServeOptions;
use wewerewondering::embedded::EmbeddedConfig;
use wewerewondering::roles::ServiceSettings;
use wewerewondering::service::{self, Service};
use wewerewondering::store::{Backend, Store, StoreArgs};
use wewerewondering::{forensics, http_server, transfer};

/// How long in-flight requests (and live streams) get to finish after a shutdown signal.
const DRAIN_SECONDS_MAX: u64 = 10;

#[derive(Parser)]
#[command(name = "wewerewondering", version, about = "Live Q&A for talks and streams, on an event-sourced vote ledger")]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
    /// Show one question's audit trail: every record, and the fold next to the projection;
    /// or, with `--event EID --bursts`, the event's bursts of never-seen voters.
    Inspect {
        #[arg(required_unless_present = "bursts", conflicts_with = "bursts")]
        question: Option<ledger::QuestionId>,
        #[command(flatten)]
        store: StoreArgs,
        /// The event whose bursts to list (with `--bursts`).
        #[arg(long, requires = "bursts")]
        event: Option<EventId>,
        /// List the windows in which many voters never seen before in the event voted one
        /// question up within seconds, with the share of its votes they make (changes nothing).
        #[arg(long, requires = "event")]
        bursts: bool,
        /// A burst's window: how close together its votes are, in seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = BurstThresholds::default().window_ms as f64 / 1_000.0)]
        burst_window: f64,
        /// How many never-seen voters within one window make a burst.
        #[arg(long, value_name = "N", default_value_t = BurstThresholds::default().new_voters_min)]
        burst_voters: usize,
        /// The least share (0 to 1) of the question's votes now that the burst's voters make.
        #[arg(long, value_name = "SHARE", default_value_t = BurstThresholds::default().share_min)]
        burst_share: f64,
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

/// The exit status of a command whose reader went away (`replay | head -1`): what a Unix tool
/// killed by SIGPIPE reports, without a panic or an error message.
const EXIT_READER_GONE: i32 = 141;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_tracing();
    let command = Cli::parse().command;
    // Only a report's closed reader ends quietly: a server's broken pipe is a failure to tell.
    let reports = !matches!(command, Command::Serve { .. });
    let outcome = run(command).await;
    if let Err(e) = &outcome {
        let reader_gone =
            e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == ErrorKind::BrokenPipe));
        if reports && reader_gone {
            std::process::exit(EXIT_READER_GONE);
        }
    }
    outcome
}

/// Prints one line of a command's report. If nobody reads standard output any more, the
/// command ends there (see [`EXIT_READER_GONE`]); `println!` would panic.
macro_rules! say {
    ($($line:tt)*) => { say_line(format_args!($($line)*)) };
}

fn say_line(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    if let Err(e) = writeln!(std::io::stdout().lock(), "{line}") {
        if e.kind() != ErrorKind::BrokenPipe {
            eprintln!("cannot write to standard output: {e}");
        }
        std::process::exit(EXIT_READER_GONE);
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
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
                serve_metrics(addr).await?;
            }
            let static_dir = if static_dir.join("index.html").is_file() {
                Some(static_dir)
            } else {
                tracing::warn!(dir = %static_dir.display(), "no built client there; serving the API only");
                None
            };
            let settings = ServiceSettings {
                region,
                retention: retention_days,
                guest_max_age_s: guest_max_age,
                host_max_age_s: host_max_age,
                cookie_secure: secure_cookies,
                static_dir,
                rate_limits: rates.limits(),
                frame_ancestors: allow_framing,
            };
            let service = match store.backend {
                Backend::Sqlite => {
                    let durability = match durability {
                        DurabilityArg::Full => Durability::Full,
                        DurabilityArg::Normal => Durability::Normal,
                    };
                    Service::embedded(EmbeddedConfig { db: store.db, durability, service: settings }).await?
                }
                Backend::Dynamodb => {
                    Service::dynamodb(DynamoServeOptions {
                        endpoint_url: store.endpoint_url,
                        create_tables,
                        local_pipe,
                        receive_wait_s: queue_wait_seconds,
                        service: settings,
                        ..DynamoServeOptions::default()
                    })
                    .await?
                }
            };
            // One edge and one shutdown policy for both backends (src/http_server.rs, src/service.rs).
            let limits = http_server::ConnectionLimits {
                header_read_timeout,
                ..http_server::ConnectionLimits::for_this_process(
                    connections_max,
                    trust_forwarded_for,
                    Duration::from_secs(DRAIN_SECONDS_MAX),
                )
            };
            service::serve(listen, service, limits, !no_demo, shutdown_signal()).await
        }
        Command::Replay { store, event, repair } => {
            let store = Store::open(&store).await?;
            let result = replay(&store, event, repair).await;
            store.close().await;
            if !result? {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Ledger { command: LedgerCommand::Export { store, event } } => {
            let store = Store::open(&store).await?;
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            // The records go to stdout; the progress bar to stderr, when someone watches it.
            let exported = match store.progress_bar(event, std::io::stderr().is_terminal()).await {
                Ok(bar) => store.export(event, &mut out, &bar).await,
                Err(e) => Err(e),
            };
            store.close().await;
            eprintln!("exported {} records", exported?);
            Ok(())
        }
        Command::Ledger { command: LedgerCommand::Import { store } } => {
            let store = Store::open(&store).await?;
            let stdin = std::io::stdin();
            let report = store.import(&mut BufReader::new(stdin.lock()), now_ms()).await;
            store.close().await;
            import_outcome(&report?)
        }
        Command::Retention { store, set } => {
            let store = Store::open(&store).await?;
            let result = match set {
                Some(r) => store.set_retention(r).await.map(|()| say!("retention: {r} (every stored row restamped)")),
                None => {
                    say!("retention: {}", store.retention());
                    Ok(())
                }
            };
            store.close().await;
            result
        }
        Command::Quarantine { store, ack } => {
            let store = Store::open(&store).await?;
            let result = match store.set_aside() {
                Some(feed) => transfer::quarantine_report(feed, ack, &mut std::io::stdout().lock()).await,
                None => {
                    say!("on AWS, records the aggregator cannot fold go to the queue's dead-letter queue (see infra/README.md)");
                    Ok(())
                }
            };
            store.close().await;
            result
        }
        Command::Inspect { question: None, store, event, burst_window, burst_voters, burst_share, .. } => {
            let event = event.context("--bursts needs --event EID")?;
            if !(burst_window.is_finite() && burst_window >= 0.0) {
                anyhow::bail!("--burst-window is seconds, at least 0, not {burst_window}");
            }
            if !(0.0..=1.0).contains(&burst_share) {
                anyhow::bail!("--burst-share is a share from 0 to 1, not {burst_share}");
            }
            let thresholds = BurstThresholds {
                window_ms: (burst_window * 1_000.0).round() as u64,
                new_voters_min: burst_voters,
                share_min: burst_share,
            };
            let store = Store::open(&store).await?;
            let mut out = std::io::stdout().lock();
            let result = forensics::bursts_report(store.events(), store.ledger(), event, &thresholds, &mut out).await;
            store.close().await;
            result.map(drop)
        }
        Command::Inspect { question: Some(question), store, .. } => {
            let store = Store::open(&store).await?;
            let agrees = inspect(&store, question).await;
            store.close().await;
            if !agrees? {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

/// The operator's scraper: `/metrics` on its own listener, apart from the public one.
async fn serve_metrics(addr: SocketAddr) -> anyhow::Result<()> {
    let listener =
        tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr} for metrics"))?;
    println!("metrics on   http://{}/metrics", listener.local_addr()?);
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, wewerewondering::roles::metrics_router()).await {
            tracing::error!(%error, "the metrics listener failed");
        }
    });
    Ok(())
}

/// `replay`: the fold against the projection, the records the aggregator set aside (the
/// fold includes them, the projection does not), and the drift. False on unrepaired drift.
async fn replay(store: &Store, event: Option<EventId>, repair: bool) -> anyhow::Result<bool> {
    let bar = store.progress_bar(event, std::io::stderr().is_terminal()).await?;
    let report = store.replay(event, repair, &bar).await;
    // Named even when the fold fails: a record that cannot be read is what they usually are.
    if let Some(feed) = store.set_aside() {
        for line in transfer::set_aside_of(feed, event, None).await? {
            say!("{line}");
        }
    }
    let report = report?;
    say!(
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
                q.standing.votes,
                q.standing.answered_at().is_some(),
                q.standing.is_hidden(),
                if q.asked.is_some() { "known" } else { "missing" }
            ),
            None => "absent".into(),
        };
        say!("drift {}: projection {} | ledger {}", d.question, show(&d.stored), show(&d.folded));
    }
    for d in &report.event_drift {
        let show = |e: &Option<ledger::EventState>| match e {
            Some(e) => {
                let s = e.settings();
                format!(
                    "title {:?} moderation {} asking {} blocked words {} co-hosts {} valid of {}",
                    s.title.unwrap_or_default(),
                    s.moderation.as_str(),
                    s.asking.as_str(),
                    s.blocked_words.len(),
                    e.cohosts.values().filter(|v| **v).count(),
                    e.cohosts.len()
                )
            }
            None => "absent".into(),
        };
        say!("drift of event {}: projection {} | ledger {}", d.event, show(&d.stored), show(&d.folded));
    }
    if report.drift.is_empty() && report.event_drift.is_empty() {
        say!("no drift");
    } else if report.repaired {
        say!("repaired {} questions and {} events", report.drift.len(), report.event_drift.len());
    } else {
        say!(
            "{} questions and {} events drifted (run with --repair to rewrite the projection)",
            report.drift.len(),
            report.event_drift.len()
        );
        return Ok(false);
    }
    Ok(true)
}

/// `inspect`: one question's audit trail, and the records of it the aggregator set aside.
async fn inspect(store: &Store, question: ledger::QuestionId) -> anyhow::Result<bool> {
    let agrees = transfer::inspect(store.ledger(), store.projection(), question, &mut std::io::stdout().lock()).await;
    if let Some(feed) = store.set_aside() {
        for line in transfer::set_aside_of(feed, None, Some(question)).await? {
            say!("{line}");
        }
    }
    agrees
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
