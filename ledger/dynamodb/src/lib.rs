//! The DynamoDB adapter: every storage port of `ledger::ports` over the tables of design §5
//! (`events`, `ledger`, `questions` with its `top` index, `voters`).
//!
//! What it guarantees beyond the ports' contracts:
//! - every Query and Scan follows `LastEvaluatedKey`; every BatchGetItem and BatchWriteItem
//!   retries its unprocessed part with backoff and jitter; throttling and transient errors
//!   are retried by the SDK's standard retry mode (exponential backoff, full jitter);
//! - every ledger append is a put conditional on the record's key being free: a stored
//!   record is never overwritten (an import of a different record under a stored id keeps
//!   the stored one, as SQLite does), and a retried append emits no stream record;
//! - the aggregator's commit is exactly-once in effect under duplicated, reordered delivery
//!   and concurrent aggregators: each voter's state is written only if its stored record id
//!   is still the one the plan read, in the same transaction as the counter write for
//!   exactly those voters' deltas; a failed condition is `Commit::Conflict` and the
//!   aggregator re-plans. The voter transactions come first and nothing else (text,
//!   moderation, roll-up) is written unless all of them held, so a change whose voters fit
//!   one transaction (up to 99 voters over all its questions) is all or nothing. A larger
//!   change commits in several transactions; on a conflict the earlier ones stay applied and
//!   the re-plan finds their voters current and skips them. Answered/hidden are set by
//!   conditional last-writer-wins updates; a vote before its question's `asked` record
//!   upserts the question, and the later `asked` fills the text without touching the count;
//! - every expiry is the event's time plus the deployment's stored retention
//!   ([`settings`]);
//! - `replay --repair` rewrites drifted questions with [`DynamoStore::repair`] (`repair.rs`):
//!   conditional on the state it read, so it is safe while the aggregator runs; the port's
//!   `replace` is a blind overwrite for stores nothing else writes.
//! - the counter a voter transaction writes is, by default, one of
//!   [`schema::COUNTER_SHARDS_DEFAULT`] shard items of the question (in `voters`, sort key
//!   `#c{k}`, with a version), and the question's `votes` is rolled up from its shards once
//!   per batch with a condition on the shard versions it was computed from, so a hot
//!   question's item takes one write per batch and each shard a fraction of the
//!   transactions (see `bench/README.md`). With `counter_shards = 0` the transactions add to
//!   the question item directly (one write per [`schema::TRANSACT_ITEMS_MAX`]` - 1` voters).

pub mod admin;
mod commit;
mod host_tools;
pub mod item;
pub mod layout;
mod ledger_store;
mod projection_store;
mod reads;
pub mod repair;
pub mod schema;
pub mod settings;
pub mod stream;

// The SDK whose client this adapter takes, for hosts that need no other AWS dependency.
pub use aws_sdk_dynamodb;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::Client;
use backon::{BackoffBuilder, ExponentialBuilder};
use ledger::ports::{StoreError, StoreResult};
use ledger::{EventId, Retention};

pub use crate::layout::Layout;
use crate::reads::SCAN_PAGE_LIMIT;
use crate::schema::*;
pub use crate::settings::IfMissing;

/// How many times the SDK tries one call (throttling, 5xx, timeouts) before giving up.
pub const SDK_ATTEMPTS_MAX: u32 = 6;
/// How many rounds of unprocessed BatchGet/BatchWrite keys are retried before giving up.
pub const UNPROCESSED_RETRIES_MAX: u32 = 10;
/// First backoff before retrying unprocessed keys; doubles each round, jittered.
const UNPROCESSED_BACKOFF_MS_FIRST: u64 = 25;
/// Largest backoff between rounds of unprocessed keys.
const UNPROCESSED_BACKOFF_MS_MAX: u64 = 2_000;
/// How many conditional puts one multi-record append keeps in flight (an import's pages).
pub const APPEND_PUTS_IN_FLIGHT_MAX: usize = 32;

/// The names of the four tables and the layout events are created with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tables {
    pub events: String,
    pub ledger: String,
    pub questions: String,
    pub voters: String,
    /// How many ledger partitions an event created by this store spreads over (stored on
    /// the event, see `layout.rs`); reads cover at least this many shards of every event.
    pub ledger_shards: u32,
    /// How many partition keys the voter states of a question of an event created by this
    /// store spread over (0: all under the question id, the legacy layout).
    pub voter_partitions: u32,
    /// See [`schema::COUNTER_SHARDS_DEFAULT`] (0: the count lives on the question item only).
    pub counter_shards: u32,
}

impl Default for Tables {
    fn default() -> Self {
        Self {
            events: EVENTS_TABLE.to_owned(),
            ledger: LEDGER_TABLE.to_owned(),
            questions: QUESTIONS_TABLE.to_owned(),
            voters: VOTERS_TABLE.to_owned(),
            ledger_shards: LEDGER_SHARDS_DEFAULT,
            voter_partitions: VOTER_PARTITIONS_DEFAULT,
            counter_shards: COUNTER_SHARDS_DEFAULT,
        }
    }
}

impl Tables {
    /// The default names, each overridden by its environment variable when set.
    pub fn from_env() -> Self {
        let var = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
        Self {
            events: var(EVENTS_TABLE_ENV, EVENTS_TABLE),
            ledger: var(LEDGER_TABLE_ENV, LEDGER_TABLE),
            questions: var(QUESTIONS_TABLE_ENV, QUESTIONS_TABLE),
            voters: var(VOTERS_TABLE_ENV, VOTERS_TABLE),
            ledger_shards: LEDGER_SHARDS_DEFAULT,
            voter_partitions: VOTER_PARTITIONS_DEFAULT,
            counter_shards: COUNTER_SHARDS_DEFAULT,
        }
    }

    /// The default names behind a prefix (isolated table sets in one account, for tests).
    pub fn prefixed(prefix: &str) -> Self {
        let d = Self::default();
        Self {
            events: format!("{prefix}{}", d.events),
            ledger: format!("{prefix}{}", d.ledger),
            questions: format!("{prefix}{}", d.questions),
            voters: format!("{prefix}{}", d.voters),
            ledger_shards: d.ledger_shards,
            voter_partitions: d.voter_partitions,
            counter_shards: d.counter_shards,
        }
    }
}

/// The SDK configuration every AWS client of the service uses: the default credential and
/// region chain, standard retries, and an optional endpoint (a local emulator).
pub async fn sdk_config(endpoint_url: Option<&str>) -> aws_config::SdkConfig {
    let retry = aws_config::retry::RetryConfig::standard()
        .with_max_attempts(SDK_ATTEMPTS_MAX)
        .with_initial_backoff(Duration::from_millis(20));
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).retry_config(retry);
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// The adapter: one DynamoDB client and the table names, implementing every port.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    tables: Tables,
    /// The deployment's stored retention (see [`settings`]): every expiry this store stamps.
    retention: Retention,
    /// The counter shard the next voter transaction writes: round-robin within this store,
    /// from a random start, so one instance spreads evenly and instances rarely collide.
    next_shard: Arc<AtomicU32>,
    /// Each event's layout as read from (or written to) its item: an event's layout never
    /// changes, so it is read once per process (at most [`LAYOUTS_CACHED_MAX`] kept).
    layouts: Arc<Mutex<HashMap<EventId, Layout>>>,
    /// How long a throttled or contended transaction is retried (see [`THROTTLE_RETRY_BUDGET`]).
    throttle_budget: Duration,
    /// Voter transactions this store ran that DynamoDB cancelled for a failed condition.
    conditions_failed: Arc<AtomicU64>,
}

/// How many events' layouts one store remembers before it forgets them all (each is one
/// strongly consistent read of the event's item to learn again).
pub const LAYOUTS_CACHED_MAX: usize = 10_000;
/// How long a voter transaction that DynamoDB throttled (a cancellation with reason
/// `ThrottlingError`, or a throttling error after the SDK's own retries) or that collided
/// with another transaction in flight (`TransactionConflict`) is retried, with exponential
/// backoff and jitter, before the batch gives up with a throttling error (which the queue
/// handler sends back to the queue as a new message, never towards the dead-letter queue).
pub const THROTTLE_RETRY_BUDGET: Duration = Duration::from_secs(5);
/// First pause before retrying a throttled or contended transaction.
const THROTTLE_BACKOFF_MS_FIRST: u64 = 10;
/// Largest pause between such retries.
const THROTTLE_BACKOFF_MS_MAX: u64 = 1_000;
/// The start of the message of every [`StoreError::Unavailable`] this adapter reports for
/// throttling, which [`is_throttled`] recognises.
const THROTTLED: &str = "throttled: ";

impl DynamoStore {
    /// A store stamping expiries with `retention`, which the caller has read from the store
    /// ([`settings::resolve_retention`]; [`DynamoStore::open`] does both).
    pub fn new(client: Client, tables: Tables, retention: Retention) -> Self {
        Self {
            client,
            tables,
            retention,
            next_shard: Arc::new(AtomicU32::new(rand::random())),
            layouts: Arc::default(),
            throttle_budget: THROTTLE_RETRY_BUDGET,
            conditions_failed: Arc::default(),
        }
    }

    /// This store with its round-robin over counter shards starting at `shard` instead of a
    /// random one: a seeded simulation (the scale model) gives each aggregator its own start
    /// so that two runs make the same requests.
    pub fn with_first_counter_shard(self, shard: u32) -> Self {
        self.next_shard.store(shard, Ordering::Relaxed);
        self
    }

    /// How many of this store's voter transactions were cancelled because a condition
    /// failed (another aggregator had moved a voter, or a counter write was conditional):
    /// each cost a re-plan of its questions.
    pub fn transactions_with_failed_conditions(&self) -> u64 {
        self.conditions_failed.load(Ordering::Relaxed)
    }

    /// This store with throttled transactions retried for `budget` instead of
    /// [`THROTTLE_RETRY_BUDGET`]. Zero: it never waits, neither to retry a throttled or
    /// contended transaction nor before planning conflicted questions again (the scale model
    /// runs in simulated time and counts those instead).
    pub fn with_throttle_budget(mut self, budget: Duration) -> Self {
        self.throttle_budget = budget;
        self
    }

    /// How many shards of every event's ledger a reader walks: at least every shard count
    /// an event may have been created with (see `layout.rs`).
    pub fn ledger_read_shards(&self) -> u32 {
        self.tables.ledger_shards.max(LEDGER_SHARDS_LEGACY)
    }

    /// The layout events created by this store get.
    pub fn new_event_layout(&self) -> Layout {
        Layout { ledger_shards: self.tables.ledger_shards.max(1), voter_partitions: self.tables.voter_partitions }
    }

    pub(crate) fn remember_layout(&self, event: EventId, layout: Layout) {
        if let Ok(mut layouts) = self.layouts.lock() {
            if layouts.len() >= LAYOUTS_CACHED_MAX {
                layouts.clear();
            }
            layouts.insert(event, layout);
        }
    }

    /// An event's layout: remembered, or read from its item (strongly consistent). An event
    /// with no item (never created here, or expired) gets this store's new-event layout,
    /// not remembered: if it is created later, its item says.
    pub async fn layout_of(&self, event: EventId) -> StoreResult<Layout> {
        if let Some(&layout) = self.layouts.lock().ok().and_then(|l| l.get(&event).copied()).as_ref() {
            return Ok(layout);
        }
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.events)
            .key(EVENTS_KEY, item::string_attr(event))
            .projection_expression("#l, #v")
            .expression_attribute_names("#l", EVENT_LEDGER_SHARDS_ATTRIBUTE)
            .expression_attribute_names("#v", EVENT_VOTER_PARTITIONS_ATTRIBUTE)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("read an event's layout", e))?;
        match out.item {
            Some(item) => {
                let layout = Layout::from_event_item(&item)?;
                self.remember_layout(event, layout);
                Ok(layout)
            }
            None => Ok(self.new_event_layout()),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn tables(&self) -> &Tables {
        &self.tables
    }
}

/// The pauses before each retry of a batch's unprocessed part: exponential from
/// [`UNPROCESSED_BACKOFF_MS_FIRST`] to [`UNPROCESSED_BACKOFF_MS_MAX`], jittered, at most
/// [`UNPROCESSED_RETRIES_MAX`] of them.
pub(crate) fn unprocessed_pauses() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(UNPROCESSED_BACKOFF_MS_FIRST))
        .with_max_delay(Duration::from_millis(UNPROCESSED_BACKOFF_MS_MAX))
        .with_max_times(UNPROCESSED_RETRIES_MAX as usize)
        .with_jitter()
        .build()
}

/// Waits the next of `pauses` before a retry of unprocessed items, or gives up (the store
/// is overloaded: the caller answers unavailable) when there is none left.
async fn pause_for_unprocessed(pauses: &mut impl Iterator<Item = Duration>, what: &str) -> StoreResult<()> {
    let Some(pause) = pauses.next() else {
        return Err(StoreError::Unavailable(format!(
            "{what}: items still unprocessed after {UNPROCESSED_RETRIES_MAX} retries"
        )));
    };
    tracing::debug!(what, ?pause, "unprocessed items (throttled); retrying them");
    tokio::time::sleep(pause).await;
    Ok(())
}

/// A request the SDK's builder refused (a required field missing): a bug here, reported as
/// a rejected operation rather than a panic.
pub(crate) fn invalid_request(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Rejected(e.to_string())
}

/// Whether a conditional write went through: `Ok(true)` if it was applied, `Ok(false)` if
/// its condition did not hold (nothing was written), an error otherwise.
pub(crate) fn condition_held<T, E, R>(result: Result<T, SdkError<E, R>>, what: &str) -> StoreResult<bool>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(e) if is_condition_failed(&e) => Ok(false),
        Err(e) => Err(store_error(what, e)),
    }
}

pub(crate) fn is_condition_failed<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    e.as_service_error().and_then(|s| s.code()) == Some("ConditionalCheckFailedException")
}

/// Maps an SDK failure (after the SDK's own retries) to the port's error: a request the
/// service refuses as malformed or aimed at a missing table is `Rejected`, anything else
/// (throttling, network, 5xx) is `Unavailable`.
pub fn store_error<E, R>(doing: &str, e: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let code = e.as_service_error().and_then(|s| s.code()).map(str::to_owned);
    let detail = format!("{doing}: {}", DisplayErrorContext(&e));
    match code.as_deref() {
        Some("ValidationException" | "ResourceNotFoundException" | "ItemCollectionSizeLimitExceededException") => {
            StoreError::Rejected(detail)
        }
        Some(code) if is_throttling_code(code) => throttled(detail),
        _ => StoreError::Unavailable(detail),
    }
}

/// The error codes (and transaction cancellation reasons) with which DynamoDB throttles.
pub fn is_throttling_code(code: &str) -> bool {
    matches!(
        code,
        "ProvisionedThroughputExceededException"
            | "ProvisionedThroughputExceeded"
            | "ThrottlingException"
            | "ThrottlingError"
            | "RequestLimitExceeded"
    )
}

/// The error of work DynamoDB throttled for longer than this adapter retries it: retryable,
/// and recognised by [`is_throttled`].
pub fn throttled(detail: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("{THROTTLED}{detail}"))
}

/// Whether a store error says DynamoDB throttled the work: it is to be retried later, and
/// it says nothing against the records (the queue handler never lets it count towards the
/// dead-letter queue).
pub fn is_throttled(error: &StoreError) -> bool {
    matches!(error, StoreError::Unavailable(detail) if detail.starts_with(THROTTLED))
}

/// The pauses before each retry of a throttled or contended transaction, exponential and
/// jittered; the caller stops when its budget is spent.
pub(crate) fn throttle_pauses() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(THROTTLE_BACKOFF_MS_FIRST))
        .with_max_delay(Duration::from_millis(THROTTLE_BACKOFF_MS_MAX))
        .without_max_times()
        .with_jitter()
        .build()
}

/// Fresh, isolated tables on an emulator (or any endpoint) for tests: the default names
/// behind a random prefix, created and active, with the default retention stored.
pub async fn fresh_tables(endpoint_url: &str) -> StoreResult<DynamoStore> {
    fresh_tables_with(endpoint_url, Retention::DEFAULT).await
}

/// [`fresh_tables`] storing `retention` as the deployment's retention.
pub async fn fresh_tables_with(endpoint_url: &str, retention: Retention) -> StoreResult<DynamoStore> {
    let config = sdk_config(Some(endpoint_url)).await;
    let client = Client::new(&config);
    let tables = Tables::prefixed(&format!("t{:016x}-", rand::random::<u64>()));
    admin::create_tables(&client, &tables).await?;
    DynamoStore::open(client, tables, Some(retention), IfMissing::Store).await
}

impl DynamoStore {
    /// The store over `tables`, with the retention stored there (see
    /// [`settings::resolve_retention`] for `wanted` and `if_missing`).
    pub async fn open(
        client: Client,
        tables: Tables,
        wanted: Option<Retention>,
        if_missing: IfMissing,
    ) -> StoreResult<Self> {
        let retention = settings::resolve_retention(&client, &tables, wanted, if_missing).await?;
        Ok(Self::new(client, tables, retention))
    }

    /// The store a Lambda with write access to the `events` table uses (ingest): the default
    /// AWS configuration (optionally another endpoint), table names from the environment, the
    /// stored retention, stored first from `RETENTION_DAYS` (or the default) if missing.
    pub async fn from_env(endpoint_url: Option<&str>) -> Result<Self, String> {
        Self::from_env_if_missing(endpoint_url, IfMissing::Store).await
    }

    /// [`from_env`](Self::from_env) for roles that may only read the `events` table (the
    /// aggregator and query Lambdas): a missing retention is assumed, not stored.
    pub async fn from_env_read_only(endpoint_url: Option<&str>) -> Result<Self, String> {
        Self::from_env_if_missing(endpoint_url, IfMissing::Assume).await
    }

    /// [`from_env`](Self::from_env) with the choice of what to do when no retention is stored.
    pub async fn from_env_if_missing(endpoint_url: Option<&str>, if_missing: IfMissing) -> Result<Self, String> {
        let wanted = settings::retention_from_env()?;
        let config = sdk_config(endpoint_url).await;
        Self::open(Client::new(&config), Tables::from_env(), wanted, if_missing).await.map_err(|e| e.to_string())
    }

    /// The deployment's retention, as stored (every expiry this store stamps).
    pub fn retention(&self) -> Retention {
        self.retention
    }
}

#[cfg(test)]
mod pause_tests {
    use super::*;

    #[test]
    fn unprocessed_items_are_retried_a_bounded_number_of_times_with_bounded_pauses() {
        let pauses: Vec<Duration> = unprocessed_pauses().collect();
        assert_eq!(pauses.len(), UNPROCESSED_RETRIES_MAX as usize);
        let first = Duration::from_millis(UNPROCESSED_BACKOFF_MS_FIRST);
        let cap = Duration::from_millis(UNPROCESSED_BACKOFF_MS_MAX);
        assert!(pauses.iter().all(|&p| p >= first && p <= cap * 2), "jittered, within bounds: {pauses:?}");
        assert!(pauses[pauses.len() - 1] >= cap, "the last pauses reach the cap: {pauses:?}");
    }
}
