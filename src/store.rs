//! The one store switch of the command: every operator command opens its store here, from
//! one [`StoreArgs`], and works on it through the ports; what differs between the backends
//! is said once, in the `match`es below, and each store is closed one way ([`Store::close`]).

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::Arc;

use indicatif::ProgressBar;
use ledger::ports::{EventStore, LedgerFeed, LedgerStore, ProjectionReader};
use ledger::{EventId, Retention};
use ledger_dynamodb::DynamoStore;
use ledger_sqlite::{Options, SqliteStore};

use crate::embedded::Embedded;
use crate::replay::ReplayReport;
use crate::roles::ServiceSettings;
use crate::{dynamodb_backend, replay, transfer};

/// The default SQLite file.
pub const DB_DEFAULT: &str = "wewerewondering.db";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// One SQLite file (embedded mode)
    Sqlite,
    /// DynamoDB tables (names from EVENTS_TABLE, LEDGER_TABLE, QUESTIONS_TABLE, VOTERS_TABLE) and SQS
    Dynamodb,
}

/// Where a command finds the ledger and the projection.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    #[arg(long, value_enum, default_value = "sqlite")]
    pub backend: Backend,
    /// The SQLite file (sqlite backend).
    #[arg(long, default_value = DB_DEFAULT)]
    pub db: PathBuf,
    /// Another AWS endpoint, e.g. a local emulator (dynamodb backend).
    #[arg(long)]
    pub endpoint_url: Option<String>,
}

/// An open store of either backend.
pub enum Store {
    Sqlite(Arc<SqliteStore>),
    Dynamodb(Arc<DynamoStore>),
}

impl Store {
    /// Opens the store `args` names. A SQLite file is created if missing; a DynamoDB
    /// deployment is found by the default AWS configuration (see
    /// [`dynamodb_backend::open_store`] for its retention).
    pub async fn open(args: &StoreArgs) -> anyhow::Result<Self> {
        Ok(match args.backend {
            Backend::Sqlite => Store::Sqlite(SqliteStore::open(&args.db, Options::default())?),
            Backend::Dynamodb => Store::Dynamodb(dynamodb_backend::open_store(args.endpoint_url.as_deref()).await?),
        })
    }

    pub fn events(&self) -> &dyn EventStore {
        match self {
            Store::Sqlite(s) => s.as_ref(),
            Store::Dynamodb(d) => d.as_ref(),
        }
    }

    pub fn ledger(&self) -> &dyn LedgerStore {
        match self {
            Store::Sqlite(s) => s.as_ref(),
            Store::Dynamodb(d) => d.as_ref(),
        }
    }

    pub fn projection(&self) -> &dyn ProjectionReader {
        match self {
            Store::Sqlite(s) => s.as_ref(),
            Store::Dynamodb(d) => d.as_ref(),
        }
    }

    /// Where the records the aggregator could not fold are kept, to list and acknowledge:
    /// the SQLite file's quarantine. On AWS they are the messages in the aggregator queue's
    /// dead-letter queue, which the operator reads with the AWS tools (infra/README.md).
    pub fn set_aside(&self) -> Option<&dyn LedgerFeed> {
        match self {
            Store::Sqlite(s) => Some(s.as_ref()),
            Store::Dynamodb(_) => None,
        }
    }

    /// The store's retention: how long events and their records are kept.
    pub fn retention(&self) -> Retention {
        match self {
            Store::Sqlite(s) => s.retention(),
            Store::Dynamodb(d) => d.retention(),
        }
    }

    /// Changes the retention, restamping every stored row's expiry (SQLite; run it with
    /// `serve` stopped). A DynamoDB deployment's retention is fixed when it is created:
    /// changing it would rewrite every item.
    pub async fn set_retention(&self, retention: Retention) -> anyhow::Result<()> {
        match self {
            Store::Sqlite(s) => Ok(s.set_retention(retention).await?),
            Store::Dynamodb(_) => anyhow::bail!(
                "changing a DynamoDB deployment's retention would rewrite the expiry of every item; \
                 it is fixed when the deployment is created"
            ),
        }
    }

    /// A progress bar sized to the records `replay` or `export` will read (drawn on stderr
    /// only when someone watches it). Its length also sizes the replay's fold, so a SQLite
    /// ledger is always counted (an index walk: 20 ms for 1M records, where growing the fold's
    /// tables as it goes cost ~10 % of the replay); a DynamoDB one only for someone watching.
    pub async fn progress_bar(&self, event: Option<EventId>, watched: bool) -> anyhow::Result<ProgressBar> {
        if !watched && matches!(self, Store::Dynamodb(_)) {
            return Ok(replay::progress_bar(0, true));
        }
        Ok(replay::progress_bar(self.ledger().count(event).await?, !watched))
    }

    /// `replay [--repair]`: the fold of the ledger against the projection. DynamoDB reads
    /// in parallel and repairs conditionally beside a live aggregator
    /// ([`dynamodb_backend::replay`]); SQLite through the ports.
    pub async fn replay(
        &self,
        event: Option<EventId>,
        repair: bool,
        bar: &ProgressBar,
    ) -> anyhow::Result<ReplayReport> {
        match self {
            Store::Sqlite(s) => Ok(replay::replay(s, event, repair, bar).await?),
            Store::Dynamodb(d) => dynamodb_backend::replay(d, event, repair, bar).await,
        }
    }

    /// `ledger export`: NDJSON on `out`. Returns the number of records.
    pub async fn export(&self, event: Option<EventId>, out: &mut dyn Write, bar: &ProgressBar) -> anyhow::Result<u64> {
        match self {
            Store::Sqlite(s) => transfer::export(s.as_ref(), s.as_ref(), event, out).await,
            Store::Dynamodb(d) => dynamodb_backend::export(d, event, out, bar).await,
        }
    }

    /// `ledger import`: appends what passes the rules, then lets the aggregator fold it.
    /// Over SQLite the embedded aggregator runs here until it has caught up; on DynamoDB the
    /// ledger's stream carries the records to the deployment's aggregator, as for any write.
    pub async fn import(&self, input: &mut dyn BufRead, now_ms: u64) -> anyhow::Result<transfer::ImportReport> {
        let target = transfer::ImportTarget {
            events: self.events(),
            ledger: self.ledger(),
            projection: self.projection(),
            retention: self.retention(),
            now_ms,
        };
        match self {
            Store::Sqlite(sqlite) => {
                let app = Embedded::over(sqlite.clone(), &ServiceSettings::default());
                let result = transfer::import(&target, input).await;
                let caught_up = app.wait_caught_up().await;
                app.shutdown().await;
                let report = result?;
                caught_up?;
                Ok(report)
            }
            Store::Dynamodb(_) => transfer::import(&target, input).await,
        }
    }

    /// Closes the store cleanly (SQLite: its writer and checkpointer threads finish).
    pub async fn close(self) {
        match self {
            Store::Sqlite(s) => s.close().await,
            Store::Dynamodb(_) => {}
        }
    }
}
