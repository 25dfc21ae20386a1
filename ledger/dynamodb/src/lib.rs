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
pub mod item;
pub mod repair;
pub mod schema;
pub mod settings;
pub mod stream;

// The SDK whose client this adapter takes, for hosts that need no other AWS dependency.
pub use aws_sdk_dynamodb;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, KeysAndAttributes, Put, PutRequest, Select, TransactWriteItem,
    Update, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use ledger::ports::{
    Commit, EventRow, EventStore, LedgerStore, ProjectionReader, ProjectionStore, QuestionText,
    ScanPage, ScanToken, StoreError, StoreResult,
};
use ledger::{
    EventId, ProjectionChange, Retention, QuestionChange, QuestionCounters, QuestionId, QuestionState, Record,
    VoterChange, VoterId, VoterState,
};
use rustc_hash::FxHashMap;

use crate::item::*;
use crate::schema::*;
pub use crate::settings::IfMissing;

/// How many times the SDK tries one call (throttling, 5xx, timeouts) before giving up.
pub const SDK_ATTEMPTS_MAX: u32 = 6;
/// How many rounds of unprocessed BatchGet/BatchWrite keys are retried before giving up.
pub const UNPROCESSED_RETRIES_MAX: u32 = 10;
/// First backoff before retrying unprocessed keys; doubles each round, full jitter.
const UNPROCESSED_BACKOFF_MS_FIRST: u64 = 25;
/// Largest backoff between rounds of unprocessed keys.
const UNPROCESSED_BACKOFF_MS_MAX: u64 = 2_000;
/// How many conditional puts one multi-record append keeps in flight (an import's pages).
pub const APPEND_PUTS_IN_FLIGHT_MAX: usize = 32;

/// The names of the four tables and how many ledger partitions one event spreads over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tables {
    pub events: String,
    pub ledger: String,
    pub questions: String,
    pub voters: String,
    pub ledger_shards: u32,
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
            counter_shards: COUNTER_SHARDS_DEFAULT,
        }
    }
}

impl Tables {
    /// The default names, each overridden by its environment variable when set.
    pub fn from_env() -> Self {
        let var =
            |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
        Self {
            events: var(EVENTS_TABLE_ENV, EVENTS_TABLE),
            ledger: var(LEDGER_TABLE_ENV, LEDGER_TABLE),
            questions: var(QUESTIONS_TABLE_ENV, QUESTIONS_TABLE),
            voters: var(VOTERS_TABLE_ENV, VOTERS_TABLE),
            ledger_shards: LEDGER_SHARDS_DEFAULT,
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
    let mut loader =
        aws_config::defaults(aws_config::BehaviorVersion::latest()).retry_config(retry);
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
}

impl DynamoStore {
    /// A store stamping expiries with `retention`, which the caller has read from the store
    /// ([`settings::resolve_retention`]; [`DynamoStore::open`] does both).
    pub fn new(client: Client, tables: Tables, retention: Retention) -> Self {
        Self {
            client,
            tables,
            retention,
            next_shard: Arc::new(AtomicU32::new(rand::random())),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn tables(&self) -> &Tables {
        &self.tables
    }

    /// One shard of one event's ledger records, every page, for parallel export and replay.
    pub async fn shard_records(&self, event: EventId, shard: u32) -> StoreResult<Vec<Record>> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .query_shard(event, shard, start, SCAN_PAGE_LIMIT, false)
                .await?;
            out.extend(page.0);
            match page.1 {
                Some(next) => start = Some(next),
                None => return Ok(out),
            }
        }
    }

    /// One segment of a parallel Scan of the whole ledger, every page of it, handing each
    /// page to `page` as it arrives (for progress bars).
    pub async fn scan_segment(
        &self,
        segment: i32,
        total_segments: i32,
        mut page: impl FnMut(Vec<Record>) + Send,
    ) -> StoreResult<()> {
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.tables.ledger)
                .segment(segment)
                .total_segments(total_segments)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| store_error("scan the ledger", e))?;
            page(
                out.items()
                    .iter()
                    .map(record_from_item)
                    .collect::<StoreResult<Vec<_>>>()?,
            );
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(()),
            }
        }
    }

    async fn query_shard(
        &self,
        event: EventId,
        shard: u32,
        start: Option<Item>,
        limit: usize,
        consistent: bool,
    ) -> StoreResult<(Vec<Record>, Option<Item>)> {
        let out = self
            .client
            .query()
            .table_name(&self.tables.ledger)
            .consistent_read(consistent)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", LEDGER_PARTITION_KEY)
            .expression_attribute_values(":pk", s(ledger_partition(event, shard)))
            .set_exclusive_start_key(start)
            .limit(page_limit(limit))
            .send()
            .await
            .map_err(|e| store_error("query the ledger", e))?;
        let records = out
            .items()
            .iter()
            .map(record_from_item)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok((records, out.last_evaluated_key.filter(|k| !k.is_empty())))
    }

    /// Every item of a Query on `top` for one event, following `LastEvaluatedKey`.
    async fn top_items(&self, event: EventId) -> StoreResult<Vec<Item>> {
        // The SDK's paginator follows `LastEvaluatedKey` to the last page.
        self.client
            .query()
            .table_name(&self.tables.questions)
            .index_name(TOP_INDEX)
            .key_condition_expression("#eid = :eid")
            .expression_attribute_names("#eid", TOP_PARTITION_KEY)
            .expression_attribute_values(":eid", s(event))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| store_error("query the top index", e))
    }

    /// Every item of a Scan of one table, following `LastEvaluatedKey`.
    async fn scan_all(&self, table: &str) -> StoreResult<Vec<Item>> {
        self.client
            .scan()
            .table_name(table)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| store_error("scan a table", e))
    }

    /// Every voter item of one question (strongly consistent), following `LastEvaluatedKey`.
    async fn question_voter_items(&self, question: QuestionId) -> StoreResult<Vec<Item>> {
        self.client
            .query()
            .table_name(&self.tables.voters)
            .consistent_read(true)
            .key_condition_expression("#qid = :qid")
            .expression_attribute_names("#qid", VOTERS_PARTITION_KEY)
            .expression_attribute_values(":qid", s(question))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| store_error("query voters", e))
    }

    /// BatchGetItem over any number of keys: chunks of [`BATCH_GET_KEYS_MAX`], unprocessed
    /// keys retried with backoff. Duplicate keys are asked once.
    pub async fn batch_get(
        &self,
        table: &str,
        keys: Vec<Item>,
        consistent: bool,
        projection: Option<&str>,
        names: &[(&str, &str)],
    ) -> StoreResult<Vec<Item>> {
        let mut seen = HashSet::new();
        let keys: Vec<Item> = keys
            .into_iter()
            .filter(|k| {
                let mut sig: Vec<_> = k.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
                sig.sort();
                seen.insert(sig.join("|"))
            })
            .collect();
        let mut found = Vec::new();
        for chunk in keys.chunks(BATCH_GET_KEYS_MAX) {
            let mut pending = chunk.to_vec();
            let mut round = 0;
            while !pending.is_empty() {
                let mut request = KeysAndAttributes::builder()
                    .set_keys(Some(pending))
                    .consistent_read(consistent);
                if let Some(p) = projection {
                    request = request.projection_expression(p);
                }
                for (alias, name) in names {
                    request = request.expression_attribute_names(*alias, *name);
                }
                let request = request
                    .build()
                    .map_err(|e| StoreError::Rejected(e.to_string()))?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(table, request)
                    .send()
                    .await
                    .map_err(|e| store_error("batch-get items", e))?;
                if let Some(mut responses) = out.responses {
                    found.extend(responses.remove(table).unwrap_or_default());
                }
                pending = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(table))
                    .map(|ka| ka.keys)
                    .unwrap_or_default();
                if !pending.is_empty() {
                    backoff_unprocessed(&mut round, "batch-get").await?;
                }
            }
        }
        Ok(found)
    }

    /// BatchWriteItem over any number of requests: chunks of [`BATCH_WRITE_ITEMS_MAX`],
    /// unprocessed requests retried with backoff.
    pub async fn batch_write(&self, table: &str, requests: Vec<WriteRequest>) -> StoreResult<()> {
        for chunk in requests.chunks(BATCH_WRITE_ITEMS_MAX) {
            let mut pending = chunk.to_vec();
            let mut round = 0;
            while !pending.is_empty() {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(table, pending)
                    .send()
                    .await
                    .map_err(|e| store_error("batch-write items", e))?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(table))
                    .unwrap_or_default();
                if !pending.is_empty() {
                    backoff_unprocessed(&mut round, "batch-write").await?;
                }
            }
        }
        Ok(())
    }

    /// One record put if its key is free: `true` if written, `false` if a record with its id
    /// was already stored (the stored one is kept).
    async fn append_one(&self, record: &Record) -> StoreResult<bool> {
        let result = self
            .client
            .put_item()
            .table_name(&self.tables.ledger)
            .set_item(Some(record_to_item(record, self.tables.ledger_shards, self.retention)))
            .condition_expression("attribute_not_exists(#id)")
            .expression_attribute_names("#id", LEDGER_SORT_KEY)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(store_error("append a record", e)),
        }
    }

    fn expire(&self, event: EventId) -> u64 {
        self.retention.expire_of(event)
    }

    /// The voter writes of a change as transactions. Each unit is some voters of one question
    /// (at most [`TRANSACT_ITEMS_MAX`]` - 1`) with the one counter write carrying their delta
    /// (a counter shard, or the question item without shards); units are packed into
    /// transactions of at most [`TRANSACT_ITEMS_MAX`] items, one unit per question each (a
    /// transaction may not write an item twice). A change of up to 99 voters thus always
    /// commits in one transaction.
    fn pack<'c>(
        change: &'c ProjectionChange,
        by_question: &BTreeMap<QuestionId, Vec<&'c VoterChange>>,
    ) -> Vec<Vec<VoterUnit<'c>>> {
        let mut transactions: Vec<Vec<VoterUnit<'c>>> = Vec::new();
        let mut current: Vec<VoterUnit<'c>> = Vec::new();
        let mut items = 0;
        for q in &change.questions {
            let Some(voters) = by_question.get(&q.question) else { continue };
            for (i, chunk) in voters.chunks(TRANSACT_ITEMS_MAX - 1).enumerate() {
                let need = chunk.len() + 1;
                let taken = current.iter().any(|u| u.question.question == q.question);
                if !current.is_empty() && (items + need > TRANSACT_ITEMS_MAX || taken) {
                    transactions.push(std::mem::take(&mut current));
                    items = 0;
                }
                current.push(VoterUnit { question: q, voters: chunk.to_vec(), first: i == 0 });
                items += need;
            }
        }
        if !current.is_empty() {
            transactions.push(current);
        }
        transactions
    }

    /// One transaction of voter units: every voter's state conditional on the state the plan
    /// read, and each unit's counter delta, all or nothing. A failed condition is `Conflict`.
    async fn commit_units(&self, units: &[VoterUnit<'_>]) -> StoreResult<Commit> {
        let shards = self.tables.counter_shards;
        // Each unit's counter shard (round-robin) and its stored state, read in one request.
        let mut current: HashMap<(QuestionId, u32), ShardState> = HashMap::new();
        let chosen: Vec<u32> = units
            .iter()
            .map(|_| if shards > 0 { self.next_shard.fetch_add(1, Ordering::Relaxed) % shards } else { 0 })
            .collect();
        if shards > 0 {
            let keys = units.iter().zip(&chosen).map(|(u, &k)| shard_key(u.question.question, k)).collect();
            for item in self.batch_get(&self.tables.voters, keys, true, None, &[]).await? {
                if let Some((q, k, state)) = shard_from_item(&item)? {
                    current.insert((q, k), state);
                }
            }
        }
        let mut items = Vec::with_capacity(TRANSACT_ITEMS_MAX);
        for (unit, &k) in units.iter().zip(&chosen) {
            let q = unit.question;
            let expire = self.expire(q.event);
            for v in &unit.voters {
                items.push(voter_put(&self.tables.voters, v, expire)?);
            }
            let delta: i64 = unit.voters.iter().map(|v| v.votes_delta).sum();
            if shards > 0 {
                let was = current.get(&(q.question, k)).copied().unwrap_or_default();
                items.push(self.shard_put(q, k, was, delta)?);
            } else {
                let update = question_update(&self.tables.questions, q, delta, expire, unit.first)
                    .build()
                    .map_err(|e| StoreError::Rejected(e.to_string()))?;
                items.push(TransactWriteItem::builder().update(update).build());
            }
        }
        self.transact(items).await
    }

    /// Counter shard `shard` of a question with `delta` added, written only if it is still at
    /// the version `was` read (versions only grow, so a roll-up can tell fresher reads).
    fn shard_put(&self, q: &QuestionChange, shard: u32, was: ShardState, delta: i64) -> StoreResult<TransactWriteItem> {
        let next = ShardState { part: was.part + delta, ver: was.ver + 1 };
        let mut put = Put::builder()
            .table_name(&self.tables.voters)
            .set_item(Some(shard_to_item(q.question, shard, next, self.expire(q.event))))
            .expression_attribute_names("#ver", A_VER);
        put = if was.ver == 0 {
            put.condition_expression("attribute_not_exists(#ver)")
        } else {
            put.condition_expression("#ver = :ver").expression_attribute_values(":ver", n(was.ver))
        };
        let put = put.build().map_err(|e| StoreError::Rejected(e.to_string()))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Every counter shard of a question, as stored now (strongly consistent).
    async fn read_shards(&self, question: QuestionId) -> StoreResult<Vec<ShardState>> {
        let keys = (0..self.tables.counter_shards)
            .map(|k| shard_key(question, k))
            .collect();
        let items = self
            .batch_get(&self.tables.voters, keys, true, None, &[])
            .await?;
        let mut shards = vec![ShardState::default(); self.tables.counter_shards as usize];
        for item in &items {
            if let Some((_, k, state)) = shard_from_item(item)? {
                if let Some(slot) = shards.get_mut(k as usize) {
                    *slot = state;
                }
            }
        }
        Ok(shards)
    }

    /// Sets the question's `votes` to the sum of its shards, if this read of the shards is
    /// newer than the one the stored count came from. The item remembers each shard's
    /// version; a shard's version only grows, so "every version at least the stored one,
    /// and one of them greater" means this read is fresher, and the last roll-up (which
    /// reads after the last shard write) always lands: the count converges.
    async fn roll_up(&self, q: &QuestionChange) -> StoreResult<()> {
        let mut previous: Option<Vec<ShardState>> = None;
        for _ in 0..=UNPROCESSED_RETRIES_MAX {
            let shards = self.read_shards(q.question).await?;
            if shards.iter().all(|s| s.ver == 0) || previous.as_ref() == Some(&shards) {
                // Nothing to roll up, or the stored count already reflects this very read.
                return Ok(());
            }
            let sum: i64 = shards.iter().map(|s| s.part).sum();
            if sum < 0 {
                return Err(StoreError::Corrupt(format!(
                    "counter shards of {} sum to {sum}",
                    q.question
                )));
            }
            let mut set = vec![
                "#votes = :sum".to_owned(),
                "#eid = :eid".to_owned(),
                "#exp = :exp".to_owned(),
            ];
            let mut at_least = Vec::new();
            let mut newer = Vec::new();
            let mut update = self
                .client
                .update_item()
                .table_name(&self.tables.questions)
                .set_key(Some(question_key(q.question)))
                .expression_attribute_names("#votes", A_VOTES)
                .expression_attribute_names("#eid", A_EVENT)
                .expression_attribute_names("#exp", TTL_ATTRIBUTE)
                .expression_attribute_values(":sum", n(sum))
                .expression_attribute_values(":eid", s(q.event))
                .expression_attribute_values(":exp", n(self.expire(q.event)));
            for (k, shard) in shards.iter().enumerate() {
                if shard.ver == 0 {
                    continue;
                }
                let (name, value) = (format!("#sv{k}"), format!(":sv{k}"));
                update = update
                    .expression_attribute_names(&name, a_shard_version(k as u32))
                    .expression_attribute_values(&value, n(shard.ver));
                set.push(format!("{name} = {value}"));
                at_least.push(format!(
                    "(attribute_not_exists({name}) OR {name} <= {value})"
                ));
                newer.push(format!("attribute_not_exists({name}) OR {name} < {value}"));
            }
            let condition = format!("{} AND ({})", at_least.join(" AND "), newer.join(" OR "));
            let result = update
                .update_expression(format!("SET {}", set.join(", ")))
                .condition_expression(condition)
                .send()
                .await;
            match result {
                Ok(_) => return Ok(()),
                // Either another roll-up stored a fresher read of some shard (read again),
                // or the stored count is already this read's (the next read is unchanged).
                Err(e) if is_condition_failed(&e) => previous = Some(shards),
                Err(e) => return Err(store_error("roll up a vote count", e)),
            }
        }
        Err(StoreError::Unavailable(format!(
            "the vote count of {} kept racing other roll-ups",
            q.question
        )))
    }

    /// Runs one transaction; a failed condition (or a conflicting transaction) is `Conflict`.
    async fn transact(&self, items: Vec<TransactWriteItem>) -> StoreResult<Commit> {
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(Commit::Applied),
            Err(e) => {
                if let Some(aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c)) =
                    e.as_service_error()
                {
                    let lost = c.cancellation_reasons().iter().any(|r| {
                        matches!(r.code(), Some("ConditionalCheckFailed") | Some("TransactionConflict"))
                    });
                    if lost {
                        return Ok(Commit::Conflict);
                    }
                }
                Err(store_error("commit voters", e))
            }
        }
    }

    /// Fills a question's text (creating the question if missing) when no voter changed.
    async fn commit_asked_only(&self, q: &QuestionChange) -> StoreResult<()> {
        let update = question_update(&self.tables.questions, q, 0, self.expire(q.event), true);
        let request = self
            .client
            .update_item()
            .table_name(&self.tables.questions)
            .set_key(update.get_key().clone())
            .set_update_expression(update.get_update_expression().clone())
            .set_expression_attribute_names(update.get_expression_attribute_names().clone())
            .set_expression_attribute_values(update.get_expression_attribute_values().clone())
            // Already filled: nothing to write (a redelivered `asked`).
            .condition_expression("attribute_not_exists(#text)");
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Ok(()),
            Err(e) => Err(store_error("fill a question's text", e)),
        }
    }

    /// Sets `answered` or `hidden` if `stamp` is newer than what is stored (last writer wins).
    async fn commit_moderation(
        &self,
        q: &QuestionChange,
        value_attr: &str,
        at_attr: &str,
        stamp: ledger::Stamped<bool>,
    ) -> StoreResult<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.questions)
            .set_key(Some(question_key(q.question)))
            .update_expression("SET #v = :v, #at = :at, #eid = :eid, #exp = :exp ADD #votes :zero")
            .condition_expression("attribute_not_exists(#at) OR #at < :at")
            .expression_attribute_names("#v", value_attr)
            .expression_attribute_names("#at", at_attr)
            .expression_attribute_names("#eid", A_EVENT)
            .expression_attribute_names("#exp", TTL_ATTRIBUTE)
            .expression_attribute_names("#votes", A_VOTES)
            .expression_attribute_values(":v", AttributeValue::Bool(stamp.value))
            .expression_attribute_values(":at", s(stamp.at))
            .expression_attribute_values(":eid", s(q.event))
            .expression_attribute_values(":exp", n(self.expire(q.event)))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // A newer stamp is already stored: this older record loses, as it should.
            Err(e) if is_condition_failed(&e) => Ok(()),
            Err(e) => Err(store_error("set a moderation flag", e)),
        }
    }
}

/// Some voters of one question, committed in one transaction with their counter delta;
/// `first` is the question's first unit (without shards, it fills the text).
struct VoterUnit<'c> {
    question: &'c QuestionChange,
    voters: Vec<&'c VoterChange>,
    first: bool,
}

/// A voter's new state, written only if the stored state is still the one the plan read.
fn voter_put(table: &str, v: &VoterChange, expire: u64) -> StoreResult<TransactWriteItem> {
    let mut put = Put::builder()
        .table_name(table)
        .set_item(Some(voter_to_item(v.question, v.voter, v.new, expire)))
        .expression_attribute_names("#rec", A_REC);
    put = match v.expected {
        None => put.condition_expression("attribute_not_exists(#rec)"),
        Some(rec) => put
            .condition_expression("#rec = :expected")
            .expression_attribute_values(":expected", s(rec)),
    };
    let put = put
        .build()
        .map_err(|e| StoreError::Rejected(e.to_string()))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// A Query/Scan page size: what is asked, bounded by the scan limit, at least 1.
fn page_limit(limit: usize) -> i32 {
    limit.clamp(1, SCAN_PAGE_LIMIT) as i32
}

const SCAN_PAGE_LIMIT: usize = ledger::limits::SCAN_PAGE_RECORDS_MAX;

/// The question part of a commit: upsert with the event and expiry, add the delta, and fill
/// text/who if absent. Every question item thus carries `votes`, so it is in `top`.
fn question_update(
    table: &str,
    q: &QuestionChange,
    delta: i64,
    expire: u64,
    fill_asked: bool,
) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
    let mut set = vec!["#eid = :eid", "#exp = :exp"];
    let mut update = Update::builder()
        .table_name(table)
        .set_key(Some(question_key(q.question)))
        .expression_attribute_names("#eid", A_EVENT)
        .expression_attribute_names("#exp", TTL_ATTRIBUTE)
        .expression_attribute_names("#votes", A_VOTES)
        .expression_attribute_values(":eid", s(q.event))
        .expression_attribute_values(":exp", n(expire))
        .expression_attribute_values(":delta", n(delta));
    if let (true, Some(asked)) = (fill_asked, &q.asked) {
        set.push("#text = if_not_exists(#text, :text)");
        update = update
            .expression_attribute_names("#text", A_TEXT)
            .expression_attribute_values(":text", s(&asked.text));
        if let Some(who) = &asked.who {
            set.push("#who = if_not_exists(#who, :who)");
            update = update
                .expression_attribute_names("#who", A_WHO)
                .expression_attribute_values(":who", s(who));
        }
    }
    update.update_expression(format!("SET {} ADD #votes :delta", set.join(", ")))
}

async fn backoff_unprocessed(round: &mut u32, what: &str) -> StoreResult<()> {
    *round += 1;
    if *round > UNPROCESSED_RETRIES_MAX {
        return Err(StoreError::Unavailable(format!(
            "{what}: items still unprocessed after {UNPROCESSED_RETRIES_MAX} retries"
        )));
    }
    tracing::debug!(
        what,
        round = *round,
        "unprocessed items (throttled); retrying them"
    );
    let cap = (UNPROCESSED_BACKOFF_MS_FIRST << (*round).min(10)).min(UNPROCESSED_BACKOFF_MS_MAX);
    let pause = rand::random::<u64>() % (cap + 1);
    tokio::time::sleep(Duration::from_millis(pause.max(1))).await;
    Ok(())
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
    let code = e
        .as_service_error()
        .and_then(|s| s.code())
        .map(str::to_owned);
    let detail = format!("{doing}: {}", DisplayErrorContext(&e));
    match code.as_deref() {
        Some(
            "ValidationException"
            | "ResourceNotFoundException"
            | "ItemCollectionSizeLimitExceededException",
        ) => StoreError::Rejected(detail),
        _ => StoreError::Unavailable(detail),
    }
}

#[async_trait]
impl EventStore for DynamoStore {
    async fn create_event(&self, event: &EventRow) -> StoreResult<()> {
        let result = self
            .client
            .put_item()
            .table_name(&self.tables.events)
            .set_item(Some(event_to_item(event)))
            .condition_expression("attribute_not_exists(#id)")
            .expression_attribute_names("#id", EVENTS_KEY)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Err(StoreError::Rejected(format!(
                "event {} already exists",
                event.id
            ))),
            Err(e) => Err(store_error("create an event", e)),
        }
    }

    async fn event(&self, id: EventId) -> StoreResult<Option<EventRow>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.events)
            .key(EVENTS_KEY, s(id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("read an event", e))?;
        out.item.as_ref().map(event_from_item).transpose()
    }
}

/// Scan positions: `e/{shard}/{last id or empty}` within one event's shards, `a/{pk}/{id}`
/// for the whole table.
fn parse_token(token: &ScanToken) -> StoreResult<(char, String, String)> {
    let bad = || StoreError::Rejected("malformed scan token".to_owned());
    let mut parts = token.0.splitn(3, '/');
    let kind = parts
        .next()
        .and_then(|k| k.chars().next())
        .ok_or_else(bad)?;
    let a = parts.next().ok_or_else(bad)?.to_owned();
    let b = parts.next().ok_or_else(bad)?.to_owned();
    Ok((kind, a, b))
}

#[async_trait]
impl LedgerStore for DynamoStore {
    async fn append(&self, records: &[Record]) -> StoreResult<()> {
        // Every record is a put conditional on its key being free: a stored record is never
        // overwritten (a retried append, or an import of a line whose id is already taken by
        // another record, changes nothing and emits no stream record), as SQLite's INSERT OR
        // IGNORE keeps the first. Within one call the first record of an id wins for the same
        // reason. Several records are put concurrently, a bounded number at a time.
        let mut seen = HashSet::with_capacity(records.len());
        let unique: Vec<&Record> = records.iter().filter(|r| seen.insert(r.id)).collect();
        match unique.as_slice() {
            [] => Ok(()),
            [record] => self.append_one(record).await.map(drop),
            many => {
                let mut puts = Vec::with_capacity(many.len());
                for record in many {
                    puts.push(self.append_one(record));
                }
                futures::stream::iter(puts)
                    .buffer_unordered(APPEND_PUTS_IN_FLIGHT_MAX)
                    .try_for_each(|_written: bool| futures::future::ready(Ok(())))
                    .await
            }
        }
    }

    async fn scan(
        &self,
        event: Option<EventId>,
        after: Option<ScanToken>,
        limit: usize,
    ) -> StoreResult<ScanPage> {
        let limit = limit.clamp(1, SCAN_PAGE_LIMIT);
        let mut records = Vec::new();
        match event {
            Some(event) => {
                let (mut shard, mut start) = match &after {
                    None => (0, None),
                    Some(t) => match parse_token(t)? {
                        ('e', shard, last) => {
                            let shard = shard
                                .parse()
                                .map_err(|_| StoreError::Rejected("malformed scan token".into()))?;
                            let start = (!last.is_empty()).then(|| {
                                HashMap::from([
                                    (
                                        LEDGER_PARTITION_KEY.to_owned(),
                                        s(ledger_partition(event, shard)),
                                    ),
                                    (LEDGER_SORT_KEY.to_owned(), s(last)),
                                ])
                            });
                            (shard, start)
                        }
                        _ => return Err(StoreError::Rejected("scan token of another scan".into())),
                    },
                };
                while shard < self.tables.ledger_shards {
                    let (page, next) = self
                        .query_shard(event, shard, start.take(), limit - records.len(), false)
                        .await?;
                    records.extend(page);
                    match next {
                        Some(key) => start = Some(key),
                        None => shard += 1,
                    }
                    if records.len() >= limit {
                        break;
                    }
                }
                let next = (shard < self.tables.ledger_shards).then(|| {
                    let last = start
                        .as_ref()
                        .and_then(|k| k.get(LEDGER_SORT_KEY))
                        .and_then(|v| v.as_s().ok())
                        .cloned()
                        .unwrap_or_default();
                    ScanToken(format!("e/{shard}/{last}"))
                });
                Ok(ScanPage { records, next })
            }
            None => {
                let mut start = match &after {
                    None => None,
                    Some(t) => match parse_token(t)? {
                        ('a', pk, id) => Some(HashMap::from([
                            (LEDGER_PARTITION_KEY.to_owned(), s(pk)),
                            (LEDGER_SORT_KEY.to_owned(), s(id)),
                        ])),
                        _ => return Err(StoreError::Rejected("scan token of another scan".into())),
                    },
                };
                loop {
                    let out = self
                        .client
                        .scan()
                        .table_name(&self.tables.ledger)
                        .set_exclusive_start_key(start.take())
                        .limit(page_limit(limit - records.len()))
                        .send()
                        .await
                        .map_err(|e| store_error("scan the ledger", e))?;
                    for item in out.items() {
                        records.push(record_from_item(item)?);
                    }
                    start = out.last_evaluated_key.filter(|k| !k.is_empty());
                    if start.is_none() || records.len() >= limit {
                        break;
                    }
                }
                let next = match start {
                    None => None,
                    Some(key) => {
                        let part = |name: &str| key.get(name).and_then(|v| v.as_s().ok()).cloned();
                        match (part(LEDGER_PARTITION_KEY), part(LEDGER_SORT_KEY)) {
                            (Some(pk), Some(id)) => Some(ScanToken(format!("a/{pk}/{id}"))),
                            _ => {
                                return Err(StoreError::Corrupt(
                                    "ledger scan key lacks pk or id".into(),
                                ))
                            }
                        }
                    }
                };
                Ok(ScanPage { records, next })
            }
        }
    }

    async fn count(&self, event: Option<EventId>) -> StoreResult<u64> {
        // The SDK's paginators follow `LastEvaluatedKey`; each page says how many it counted.
        let mut total = 0u64;
        match event {
            Some(event) => {
                for shard in 0..self.tables.ledger_shards {
                    let mut pages = self
                        .client
                        .query()
                        .table_name(&self.tables.ledger)
                        .key_condition_expression("#pk = :pk")
                        .expression_attribute_names("#pk", LEDGER_PARTITION_KEY)
                        .expression_attribute_values(":pk", s(ledger_partition(event, shard)))
                        .select(Select::Count)
                        .into_paginator()
                        .send();
                    while let Some(page) = pages.next().await {
                        total += page.map_err(|e| store_error("count the ledger", e))?.count.max(0) as u64;
                    }
                }
            }
            None => {
                let mut pages = self.client.scan().table_name(&self.tables.ledger).select(Select::Count).into_paginator().send();
                while let Some(page) = pages.next().await {
                    total += page.map_err(|e| store_error("count the ledger", e))?.count.max(0) as u64;
                }
            }
        }
        Ok(total)
    }
}

#[async_trait]
impl ProjectionStore for DynamoStore {
    async fn voters(
        &self,
        keys: &[(QuestionId, VoterId)],
    ) -> StoreResult<FxHashMap<(QuestionId, VoterId), VoterState>> {
        let keys = keys.iter().map(|&(q, v)| voter_key(q, v)).collect();
        // Strongly consistent: a stale read would only cost a conflict and a retry, but why pay it.
        let items = self
            .batch_get(&self.tables.voters, keys, true, None, &[])
            .await?;
        items.iter().map(voter_from_item).collect()
    }

    async fn commit(&self, change: &ProjectionChange, cursor: Option<u64>) -> StoreResult<Commit> {
        if cursor.is_some() {
            return Err(StoreError::Rejected(
                "the DynamoDB projection keeps no feed cursor (the queue tracks delivery)"
                    .to_owned(),
            ));
        }
        let mut by_question: BTreeMap<QuestionId, Vec<&VoterChange>> = BTreeMap::new();
        for v in &change.voters {
            by_question.entry(v.question).or_default().push(v);
        }
        if let Some(question) = by_question.keys().find(|&&id| !change.questions.iter().any(|q| q.question == id)) {
            return Err(StoreError::Rejected(format!(
                "change has voters of question {question} but no question part"
            )));
        }
        let sharded = self.tables.counter_shards > 0;
        // The voters first: nothing else is written unless every voter condition held, so a
        // change that fits one transaction is all or nothing. A bigger one commits in several;
        // on a conflict the earlier ones stay applied and the re-plan finds their voters
        // current and skips them (exactly once in effect); their counts are rolled up now.
        let mut written: BTreeSet<QuestionId> = BTreeSet::new();
        for units in Self::pack(change, &by_question) {
            if self.commit_units(&units).await? == Commit::Conflict {
                if sharded {
                    for q in change.questions.iter().filter(|q| written.contains(&q.question)) {
                        self.roll_up(q).await?;
                    }
                }
                return Ok(Commit::Conflict);
            }
            written.extend(units.iter().map(|u| u.question.question));
        }
        for q in &change.questions {
            // Without shards the first voter transaction filled the text.
            if q.asked.is_some() && (sharded || !by_question.contains_key(&q.question)) {
                self.commit_asked_only(q).await?;
            }
            if let Some(stamp) = q.answered {
                self.commit_moderation(q, A_ANSWERED, A_ANSWERED_AT, stamp).await?;
            }
            if let Some(stamp) = q.hidden {
                self.commit_moderation(q, A_HIDDEN, A_HIDDEN_AT, stamp).await?;
            }
            // Also when no voter changed: a redelivered batch whose first delivery died
            // between its transactions and its roll-up; then it writes nothing unless a shard
            // moved.
            if sharded {
                self.roll_up(q).await?;
            }
        }
        Ok(Commit::Applied)
    }

    async fn cursor(&self) -> StoreResult<u64> {
        Ok(0)
    }

    async fn questions(&self, event: Option<EventId>) -> StoreResult<Vec<QuestionState>> {
        let items = match event {
            Some(event) => {
                let keys = self
                    .top_items(event)
                    .await?
                    .iter()
                    .map(|i| counters_from_item(i).map(|c| question_key(c.id)))
                    .collect::<StoreResult<Vec<_>>>()?;
                self.batch_get(&self.tables.questions, keys, true, None, &[])
                    .await?
            }
            None => self.scan_all(&self.tables.questions).await?,
        };
        items.iter().map(question_from_item).collect()
    }

    /// Writes the given fold over the projection unconditionally (new state first, then the
    /// leftovers deleted). Safe only while no aggregator commits: on a live stack whatever it
    /// commits between the caller's read of the ledger and these writes is overwritten.
    /// `replay --repair` uses [`DynamoStore::repair`] instead (`repair.rs`).
    async fn replace(
        &self,
        event: Option<EventId>,
        questions: &[QuestionState],
        voters: &[((QuestionId, VoterId), VoterState)],
    ) -> StoreResult<()> {
        if let Some(e) = event {
            if let Some(q) = questions.iter().find(|q| q.counters.event != e) {
                return Err(StoreError::Rejected(format!(
                    "question {} is not of event {e}",
                    q.counters.id
                )));
            }
        }
        let events: HashMap<QuestionId, EventId> = questions
            .iter()
            .map(|q| (q.counters.id, q.counters.event))
            .collect();
        // What is stored now in scope, to delete what the new projection lacks.
        let old_questions = self.questions(event).await?;
        let old_voter_items = match event {
            None => self.scan_all(&self.tables.voters).await?,
            Some(_) => {
                let mut ids: Vec<QuestionId> =
                    old_questions.iter().map(|q| q.counters.id).collect();
                ids.extend(events.keys().copied());
                ids.sort();
                ids.dedup();
                let mut items = Vec::new();
                for id in ids {
                    items.extend(self.question_voter_items(id).await?);
                }
                items
            }
        };
        // Counter shards stored now, to restart each kept question's shards from its
        // replayed count with versions above every version a roll-up may have seen.
        let mut old_shards: HashMap<(QuestionId, u32), ShardState> = HashMap::new();
        let mut old_voter_keys = Vec::with_capacity(old_voter_items.len());
        for item in &old_voter_items {
            match shard_from_item(item)? {
                Some((q, k, state)) => {
                    old_shards.insert((q, k), state);
                }
                None => old_voter_keys.push(voter_from_item(item)?.0),
            }
        }
        let mut puts = Vec::with_capacity(questions.len());
        let mut shard_puts = Vec::new();
        for q in questions {
            let mut item = question_to_item(q, self.retention);
            let expire = self.expire(q.counters.event);
            for k in 0..self.tables.counter_shards {
                let ver = old_shards.get(&(q.counters.id, k)).map_or(0, |s| s.ver) + 1;
                let part = if k == 0 { q.counters.votes as i64 } else { 0 };
                item.insert(a_shard_version(k), n(ver));
                let put = PutRequest::builder()
                    .set_item(Some(shard_to_item(
                        q.counters.id,
                        k,
                        ShardState { part, ver },
                        expire,
                    )))
                    .build();
                shard_puts.push(
                    WriteRequest::builder()
                        .put_request(put.map_err(|e| StoreError::Rejected(e.to_string()))?)
                        .build(),
                );
            }
            let put = PutRequest::builder().set_item(Some(item)).build();
            puts.push(
                WriteRequest::builder()
                    .put_request(put.map_err(|e| StoreError::Rejected(e.to_string()))?)
                    .build(),
            );
        }
        let mut voter_puts = Vec::with_capacity(voters.len());
        let mut kept_voters = HashSet::with_capacity(voters.len());
        for &((question, voter), state) in voters {
            let Some(&event) = events.get(&question) else {
                return Err(StoreError::Rejected(format!(
                    "voter state for question {question}, which is not replaced"
                )));
            };
            kept_voters.insert((question, voter));
            let put = PutRequest::builder()
                .set_item(Some(voter_to_item(
                    question,
                    voter,
                    state,
                    self.expire(event),
                )))
                .build();
            voter_puts.push(
                WriteRequest::builder()
                    .put_request(put.map_err(|e| StoreError::Rejected(e.to_string()))?)
                    .build(),
            );
        }
        // Write the new state first, then delete leftovers: readers never see an empty list.
        self.batch_write(&self.tables.voters, shard_puts).await?;
        self.batch_write(&self.tables.questions, puts).await?;
        self.batch_write(&self.tables.voters, voter_puts).await?;
        let mut deletes = Vec::new();
        for q in old_questions
            .iter()
            .filter(|q| !events.contains_key(&q.counters.id))
        {
            let del = DeleteRequest::builder()
                .set_key(Some(question_key(q.counters.id)))
                .build();
            deletes.push(
                WriteRequest::builder()
                    .delete_request(del.map_err(|e| StoreError::Rejected(e.to_string()))?)
                    .build(),
            );
        }
        self.batch_write(&self.tables.questions, deletes).await?;
        let mut deletes = Vec::new();
        for key in old_voter_keys {
            if !kept_voters.contains(&key) {
                let del = DeleteRequest::builder()
                    .set_key(Some(voter_key(key.0, key.1)))
                    .build();
                deletes.push(
                    WriteRequest::builder()
                        .delete_request(del.map_err(|e| StoreError::Rejected(e.to_string()))?)
                        .build(),
                );
            }
        }
        for &(q, k) in old_shards.keys() {
            if !events.contains_key(&q) || k >= self.tables.counter_shards {
                let del = DeleteRequest::builder()
                    .set_key(Some(shard_key(q, k)))
                    .build();
                deletes.push(
                    WriteRequest::builder()
                        .delete_request(del.map_err(|e| StoreError::Rejected(e.to_string()))?)
                        .build(),
                );
            }
        }
        self.batch_write(&self.tables.voters, deletes).await
    }
}

#[async_trait]
impl ProjectionReader for DynamoStore {
    async fn event_questions(&self, event: EventId) -> StoreResult<Vec<QuestionCounters>> {
        self.top_items(event)
            .await?
            .iter()
            .map(counters_from_item)
            .collect()
    }

    async fn question(&self, id: QuestionId) -> StoreResult<Option<QuestionCounters>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.questions)
            .set_key(Some(question_key(id)))
            .send()
            .await
            .map_err(|e| store_error("read a question", e))?;
        out.item.as_ref().map(counters_from_item).transpose()
    }

    async fn question_texts(&self, ids: &[QuestionId]) -> StoreResult<Vec<QuestionText>> {
        let keys = ids.iter().map(|&id| question_key(id)).collect();
        let names = [
            ("#id", QUESTIONS_KEY),
            ("#eid", A_EVENT),
            ("#text", A_TEXT),
            ("#who", A_WHO),
        ];
        let items = self
            .batch_get(
                &self.tables.questions,
                keys,
                false,
                Some("#id, #eid, #text, #who"),
                &names,
            )
            .await?;
        let mut texts = Vec::with_capacity(items.len());
        for item in &items {
            if let Some(t) = text_from_item(item)? {
                texts.push(t);
            }
        }
        Ok(texts)
    }
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
        Self::open(Client::new(&config), Tables::from_env(), wanted, if_missing)
            .await
            .map_err(|e| e.to_string())
    }

    /// The deployment's retention, as stored (every expiry this store stamps).
    pub fn retention(&self) -> Retention {
        self.retention
    }
}
