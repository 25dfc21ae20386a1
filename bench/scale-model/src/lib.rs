//! The scale model: what a vote burst does to DynamoDB on the AWS path, counted from the
//! requests the real code issues, in simulated time.
//!
//! Ingest's appends (`LedgerStore::append`, one conditional put per vote) and five
//! concurrent aggregators (`aggregator::apply_batch` over `ledger_dynamodb::DynamoStore`,
//! unchanged) run against a simulated DynamoDB behind the SDK's HTTP client. It parses every
//! request (DynamoDB's JSON protocol) and answers as DynamoDB would, with:
//! - **simulated time**: each actor (ingest, each aggregator) has its own clock in
//!   milliseconds, advanced by a fixed latency per request ([`Latency`]); the driver always
//!   steps the actor that is furthest behind, so their requests interleave in time;
//! - **the partition limit**: each partition key (of a table, or of the `top` index) takes
//!   at most [`PARTITION_WCU_PER_S_MAX`] WCU in any simulated second (one key lives in one
//!   partition; split-for-heat is not modelled: DynamoDB does not split a key's item
//!   collection whose sort keys only grow, like the ledger's, and makes no promise for
//!   others). A write beyond it is throttled: `ProvisionedThroughputExceededException`, or
//!   a transaction cancelled with reason `ThrottlingError`;
//! - **conflicts**: a transaction touching an item that another actor's transaction holds
//!   at the same simulated moment is cancelled with `TransactionConflict`; in the "before"
//!   design, whose counter shards were written with a version condition read just before
//!   the transaction, a counter write also fails its condition if another actor wrote that
//!   shard since ([`Latency::get`] before the transaction);
//! - **costs**: write request units (1 per item put or updated, 2 in a transaction, 2 for a
//!   `top` index entry moved; a cancelled transaction is charged, a throttled one is not)
//!   and read request units (1 per item read strongly consistent, 0.5 eventually; an item
//!   not found is charged too), priced at on-demand rates ([`WRU_USD_PER_MILLION`]).
//!
//! The adapter runs without waiting (`DynamoStore::with_throttle_budget(ZERO)`): a throttled
//! transaction fails the batch at once, as it would after its retries in production, and the
//! batch goes back to the queue [`REQUEUE_DELAY_MS`] later (the queue handler's requeue). A
//! throttled append is a vote ingest refuses (503). Throttled requests are counted.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_types::body::SdkBody;
use ledger::ports::{EventRow, EventStore, LedgerStore};
use ledger::{Asked, EventId, QuestionId, Record, RecordBody, RecordId, VoterId};
use ledger_dynamodb::aws_sdk_dynamodb;
use ledger_dynamodb::schema::{HOT_KEY_WRITES_PER_S_MAX, PARTITION_WCU_PER_S_MAX};
use ledger_dynamodb::{DynamoStore, Tables};
use serde_json::{json, Value};
use ulid::Ulid;

/// On-demand prices (us-east-1, from November 2024): per million write / read request units.
pub const WRU_USD_PER_MILLION: f64 = 0.625;
pub const RRU_USD_PER_MILLION: f64 = 0.125;
/// How long a batch whose records were throttled waits before it is delivered again (the
/// queue handler sends it back with this delay: `aggregator_queue::requeue::REQUEUE_DELAY_S`).
pub const REQUEUE_DELAY_MS: u64 = 10_000;
/// From an append to the record's message in the queue (stream, Pipe).
pub const PIPE_DELAY_MS: u64 = 200;
/// How long the queue's poller waits to fill a batch (the template's batching window).
pub const BATCHING_WINDOW_MS: u64 = 1_000;

/// Simulated latency of each request kind, in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Latency {
    pub get: u64,
    pub batch_get: u64,
    pub put: u64,
    pub update: u64,
    pub transact: u64,
    pub batch_write: u64,
}

pub const LATENCY: Latency = Latency { get: 3, batch_get: 5, put: 4, update: 5, transact: 12, batch_write: 8 };

/// The two layouts compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Design {
    /// Before: 8 ledger shards, every voter state and counter shard of a question under the
    /// partition key `qid`, counter shards written with a version condition.
    Before,
    /// After: the defaults (32 ledger shards, voter states over 32 keys per question,
    /// counter shards on keys of their own, added to).
    After,
}

impl Design {
    pub fn name(self) -> &'static str {
        match self {
            Design::Before => "before",
            Design::After => "after",
        }
    }

    fn tables(self) -> Tables {
        match self {
            Design::Before => Tables { ledger_shards: 8, voter_partitions: 0, counter_shards: 8, ..Tables::default() },
            Design::After => Tables::default(),
        }
    }
}

/// Where the votes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mix {
    /// Every vote on one question.
    OneQuestion,
    /// Votes spread evenly at random over this many questions of one event.
    Spread(u32),
}

impl Mix {
    pub fn name(self) -> String {
        match self {
            Mix::OneQuestion => "one question".to_owned(),
            Mix::Spread(n) => format!("{n} questions"),
        }
    }

    fn questions(self) -> u32 {
        match self {
            Mix::OneQuestion => 1,
            Mix::Spread(n) => n.max(1),
        }
    }
}

/// One run: `votes_per_s` first-time up-votes (distinct voters) for `seconds`.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    pub design: Design,
    pub mix: Mix,
    pub votes_per_s: u64,
    pub seconds: u64,
    /// Most records per aggregator batch (the template's default: 1,000).
    pub batch_records: usize,
    /// Concurrent aggregators (the template's default: 5).
    pub aggregators: usize,
    /// How long after the burst the aggregators may still catch up (simulated ms).
    pub drain_ms: u64,
}

impl Scenario {
    pub fn new(design: Design, mix: Mix, votes_per_s: u64, seconds: u64) -> Self {
        Self { design, mix, votes_per_s, seconds, batch_records: 1_000, aggregators: 5, drain_ms: 30_000 }
    }
}

/// What one table's or index's hottest partition key took in its busiest second.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HotKey {
    /// The key, with the event and question ids written `{eid}` and `{qid}`.
    pub key: String,
    /// Writes the design sent to the key in that second (throttled ones included).
    pub writes: u64,
    /// Write capacity it consumed in that second.
    pub wcu: u64,
    /// Writes to the key refused as throttled over the whole run.
    pub throttled: u64,
}

/// One run's result.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The hottest partition key of each table and index (`events`, `ledger`, `questions`,
    /// `questions/top`, `voters`), by writes in its busiest second.
    pub hottest: BTreeMap<String, HotKey>,
    pub votes: u64,
    /// Votes ingest could not append (throttled: the guest got a 503).
    pub votes_refused: u64,
    /// Votes folded into the projection by the end of the run.
    pub votes_folded: u64,
    /// Aggregator batches delivered (again after a throttle or a give-up included).
    pub batches: u64,
    /// Batches that failed because DynamoDB throttled them (sent back to the queue).
    pub batches_throttled: u64,
    /// Batches that gave up on conflicts.
    pub batches_conflicted: u64,
    /// Transactions cancelled: another in flight on an item / a failed condition.
    pub transaction_conflicts: u64,
    pub condition_failures: u64,
    /// Requests DynamoDB refused as throttled.
    pub throttled_requests: u64,
    pub requests: u64,
    pub wru: f64,
    pub rru: f64,
    /// Simulated time the last aggregator finished at (ms).
    pub finished_ms: u64,
}

impl Outcome {
    /// DynamoDB's price of a million votes at this run's request units per vote folded.
    pub fn usd_per_million_votes(&self) -> f64 {
        let votes = self.votes_folded.max(1) as f64;
        (self.wru / votes) * WRU_USD_PER_MILLION + (self.rru / votes) * RRU_USD_PER_MILLION
    }

    /// The largest number of writes any partition key of any table or index took in a second.
    pub fn hottest_writes(&self) -> u64 {
        self.hottest.values().map(|h| h.writes).max().unwrap_or(0)
    }
}

/// Per (table or index, partition key, second): writes sent, WCU consumed.
#[derive(Default, Clone, Copy)]
struct Load {
    writes: u64,
    wcu: u64,
}

/// An item's key and where it lives.
#[derive(Clone)]
struct Target {
    table: String,
    partition: String,
    item: String,
}

/// What the simulated DynamoDB holds and has counted.
#[derive(Default)]
struct State {
    events: HashMap<String, Value>,
    /// Voter states and counter shards by item key, as last written.
    voters: HashMap<String, Value>,
    /// Which event each question item belongs to (for the `top` index).
    question_events: HashMap<String, String>,
    /// Per (table, partition, second).
    load: HashMap<(String, String, u64), Load>,
    throttled_by_table: HashMap<(String, String), u64>,
    /// Per item: transactions holding it (actor, from, until) and writes (actor, at).
    held: HashMap<String, Vec<(usize, u64, u64)>>,
    written: HashMap<String, Vec<(usize, u64)>>,
    transaction_conflicts: u64,
    condition_failures: u64,
    throttled_requests: u64,
    requests: u64,
    wru: f64,
    rru: f64,
}

/// The simulated DynamoDB shared by every actor's client.
pub struct Simulated {
    versioned_counters: bool,
    clocks: Mutex<Vec<u64>>,
    state: Mutex<State>,
}

/// Only the last few holds and writes of an item matter for conflicts.
const HISTORY_PER_ITEM: usize = 16;

fn s_attr(value: &Value, name: &str) -> String {
    value.get(name).and_then(|a| a.get("S")).and_then(Value::as_str).unwrap_or("").to_owned()
}

fn table_key_names(table: &str) -> (&'static str, Option<&'static str>) {
    if table.ends_with("voters") {
        ("qid", Some("voter"))
    } else if table.ends_with("ledger") {
        ("pk", Some("id"))
    } else {
        ("id", None)
    }
}

fn target(table: &str, key_or_item: &Value) -> Target {
    let (partition, sort) = table_key_names(table);
    let partition = s_attr(key_or_item, partition);
    let item = match sort {
        Some(sort) => format!("{table}/{partition}/{}", s_attr(key_or_item, sort)),
        None => format!("{table}/{partition}"),
    };
    Target { table: table.to_owned(), partition, item }
}

fn error(kind: &str, extra: Value) -> (u16, Value) {
    let mut body = json!({ "__type": format!("com.amazonaws.dynamodb.v20120810#{kind}"), "message": kind });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    (400, body)
}

/// The expression with its `#name` placeholders replaced by the names.
fn expression(request: &Value, field: &str) -> String {
    let mut text = request[field].as_str().unwrap_or("").to_owned();
    if let Some(names) = request.get("ExpressionAttributeNames").and_then(Value::as_object) {
        // Longest placeholders first, so `#v` does not eat into `#votes`.
        let mut names: Vec<_> = names.iter().collect();
        names.sort_by_key(|(alias, _)| std::cmp::Reverse(alias.len()));
        for (alias, name) in names {
            text = text.replace(alias.as_str(), name.as_str().unwrap_or(""));
        }
    }
    text
}

fn number(value: &Value) -> i64 {
    value.get("N").and_then(Value::as_str).and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// One write of a request, ready to be checked and applied.
struct Write {
    target: Target,
    /// WCU in the base table.
    wcu: u64,
    /// The `top` index partition (event) it moves an entry in, if any (2 WCU there).
    index: Option<String>,
    /// The item as written (a put), or the update request.
    put: Option<Value>,
    update: Option<Value>,
    counter_shard: bool,
}

impl Simulated {
    pub fn new(versioned_counters: bool, actors: usize) -> Self {
        Self { versioned_counters, clocks: Mutex::new(vec![0; actors]), state: Mutex::default() }
    }

    pub fn clock(&self, actor: usize) -> u64 {
        self.clocks.lock().map(|c| c[actor]).unwrap_or(0)
    }

    pub fn set_clock(&self, actor: usize, ms: u64) {
        if let Ok(mut c) = self.clocks.lock() {
            c[actor] = ms;
        }
    }

    /// Takes the request's simulated start and advances the actor's clock past it.
    fn tick(&self, actor: usize, latency: u64) -> u64 {
        let mut clocks = match self.clocks.lock() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        let start = clocks[actor];
        clocks[actor] = start + latency;
        start
    }

    fn write_of(&self, state: &State, table: &str, request: &Value, transactional: bool) -> Write {
        let per_item = if transactional { 2 } else { 1 };
        let (key_or_item, put, update) = match request.get("Item") {
            Some(item) => (item, Some(item.clone()), None),
            None => (&request["Key"], None, Some(request.clone())),
        };
        let target = target(table, key_or_item);
        let counter_shard = table.ends_with("voters") && s_attr(key_or_item, "voter").starts_with('#');
        let mut index = None;
        if table.ends_with("questions") {
            let moves = match &put {
                Some(item) => item.get("votes").is_some(),
                None => expression(request, "UpdateExpression").contains("votes"),
            };
            let event = put
                .as_ref()
                .map(|i| s_attr(i, "eid"))
                .filter(|e| !e.is_empty())
                .or_else(|| request.get("ExpressionAttributeValues").map(|v| s_attr(v, ":eid")))
                .filter(|e| !e.is_empty())
                .or_else(|| state.question_events.get(&target.partition).cloned());
            if moves {
                index = event;
            }
        }
        Write { target, wcu: per_item, index, put, update, counter_shard }
    }

    /// Whether `writes` fit the partition limit at `second` (all or nothing).
    fn fits(state: &State, writes: &[Write], second: u64) -> Vec<bool> {
        let mut extra: HashMap<(String, String), u64> = HashMap::new();
        for w in writes {
            *extra.entry((w.target.table.clone(), w.target.partition.clone())).or_default() += w.wcu;
            if let Some(event) = &w.index {
                *extra.entry(("questions/top".to_owned(), event.clone())).or_default() += 2;
            }
        }
        let over = |table: &str, partition: &str| {
            let used = state.load.get(&(table.to_owned(), partition.to_owned(), second)).map_or(0, |l| l.wcu);
            used + extra.get(&(table.to_owned(), partition.to_owned())).copied().unwrap_or(0)
                > u64::from(PARTITION_WCU_PER_S_MAX)
        };
        writes
            .iter()
            .map(|w| {
                !over(&w.target.table, &w.target.partition)
                    && w.index.as_ref().is_none_or(|e| !over("questions/top", e))
            })
            .collect()
    }

    /// Counts the writes as sent (and, if `applied`, their capacity as consumed).
    fn count(state: &mut State, writes: &[Write], second: u64, applied: bool) {
        for w in writes {
            let load = state.load.entry((w.target.table.clone(), w.target.partition.clone(), second)).or_default();
            load.writes += 1;
            if applied {
                load.wcu += w.wcu;
            }
            if let Some(event) = &w.index {
                let load = state.load.entry(("questions/top".to_owned(), event.clone(), second)).or_default();
                load.writes += 1;
                if applied {
                    load.wcu += 2;
                }
            }
        }
    }

    fn throttle(state: &mut State, writes: &[Write], fits: &[bool]) {
        state.throttled_requests += 1;
        for (w, ok) in writes.iter().zip(fits) {
            if !ok {
                *state.throttled_by_table.entry((w.target.table.clone(), w.target.partition.clone())).or_default() += 1;
            }
        }
    }

    fn apply(&self, state: &mut State, writes: &[Write], actor: usize, at: u64) {
        for w in writes {
            state.wru += w.wcu as f64 + if w.index.is_some() { 2.0 } else { 0.0 };
            let history = state.written.entry(w.target.item.clone()).or_default();
            history.push((actor, at));
            if history.len() > HISTORY_PER_ITEM {
                history.remove(0);
            }
            if w.target.table.ends_with("questions") {
                if let Some(event) = &w.index {
                    state.question_events.insert(w.target.partition.clone(), event.clone());
                }
            }
            if w.target.table.ends_with("voters") {
                if let Some(item) = &w.put {
                    state.voters.insert(w.target.item.clone(), item.clone());
                } else if let Some(update) = &w.update {
                    // A counter shard's `ADD #part :delta, #ver :one`.
                    let values = &update["ExpressionAttributeValues"];
                    let entry = state.voters.entry(w.target.item.clone()).or_insert_with(|| {
                        let mut item = update["Key"].clone();
                        item["part"] = json!({"N": "0"});
                        item["ver"] = json!({"N": "0"});
                        item
                    });
                    let part = number(&entry["part"]) + number(&values[":delta"]);
                    let ver = number(&entry["ver"]) + number(&values[":one"]);
                    entry["part"] = json!({ "N": part.to_string() });
                    entry["ver"] = json!({ "N": ver.to_string() });
                }
            }
            if w.target.table.ends_with("events") {
                if let Some(item) = &w.put {
                    state.events.insert(w.target.partition.clone(), item.clone());
                }
            }
        }
    }

    /// Why a transaction's item cannot be written now, if it cannot.
    fn cancellation(
        &self,
        state: &State,
        w: &Write,
        request: &Value,
        actor: usize,
        from: u64,
        until: u64,
    ) -> &'static str {
        let held = state.held.get(&w.target.item).into_iter().flatten();
        if held.clone().any(|&(other, a, b)| other != actor && a < until && from < b) {
            return "TransactionConflict";
        }
        if w.counter_shard && self.versioned_counters {
            let since = from.saturating_sub(LATENCY.batch_get);
            let written = state.written.get(&w.target.item).into_iter().flatten();
            if written.clone().any(|&(other, at)| other != actor && at >= since && at < until) {
                return "ConditionalCheckFailed";
            }
        }
        if w.target.table.ends_with("voters") && !w.counter_shard {
            let stored = state.voters.get(&w.target.item).map(|item| s_attr(item, "rec"));
            let condition = expression(request, "ConditionExpression");
            let expected = request.get("ExpressionAttributeValues").map(|v| s_attr(v, ":expected"));
            let holds = if condition.contains("attribute_not_exists") {
                stored.is_none()
            } else {
                stored.is_some() && stored == expected
            };
            if !holds {
                return "ConditionalCheckFailed";
            }
        }
        "None"
    }

    /// Answers one request of `actor`: (HTTP status, JSON body).
    fn respond(&self, actor: usize, request: &http::Request<SdkBody>) -> (u16, Value) {
        let operation = request
            .headers()
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("")
            .to_owned();
        let body: Value = request.body().bytes().and_then(|b| serde_json::from_slice(b).ok()).unwrap_or(Value::Null);
        let mut state = match self.state.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        state.requests += 1;
        match operation.as_str() {
            "GetItem" => {
                self.tick(actor, LATENCY.get);
                state.rru += if body["ConsistentRead"].as_bool() == Some(true) { 1.0 } else { 0.5 };
                let table = body["TableName"].as_str().unwrap_or("");
                let key = s_attr(&body["Key"], table_key_names(table).0);
                match state.events.get(&key).filter(|_| table.ends_with("events")) {
                    Some(item) => (200, json!({ "Item": item })),
                    None => (200, json!({})),
                }
            }
            "BatchGetItem" => {
                self.tick(actor, LATENCY.batch_get);
                let mut responses = serde_json::Map::new();
                for (table, request) in body["RequestItems"].as_object().into_iter().flatten() {
                    let consistent = request["ConsistentRead"].as_bool() == Some(true);
                    let mut found = Vec::new();
                    for key in request["Keys"].as_array().into_iter().flatten() {
                        state.rru += if consistent { 1.0 } else { 0.5 };
                        if let Some(item) = state.voters.get(&target(table, key).item) {
                            found.push(item.clone());
                        }
                    }
                    responses.insert(table.clone(), Value::Array(found));
                }
                (200, json!({ "Responses": responses, "UnprocessedKeys": {} }))
            }
            "PutItem" | "UpdateItem" => {
                let at = self.tick(actor, if operation == "PutItem" { LATENCY.put } else { LATENCY.update });
                let table = body["TableName"].as_str().unwrap_or("").to_owned();
                let writes = vec![self.write_of(&state, &table, &body, false)];
                let second = at / 1_000;
                let fits = Self::fits(&state, &writes, second);
                Self::count(&mut state, &writes, second, fits[0]);
                if !fits[0] {
                    Self::throttle(&mut state, &writes, &fits);
                    return error("ProvisionedThroughputExceededException", json!({}));
                }
                self.apply(&mut state, &writes, actor, at);
                (200, json!({}))
            }
            "TransactWriteItems" => {
                let from = self.tick(actor, LATENCY.transact);
                let until = from + LATENCY.transact;
                let entries: Vec<Value> = body["TransactItems"].as_array().cloned().unwrap_or_default();
                let mut writes = Vec::with_capacity(entries.len());
                for entry in &entries {
                    let request = entry.get("Put").or_else(|| entry.get("Update")).cloned().unwrap_or(Value::Null);
                    let table = request["TableName"].as_str().unwrap_or("").to_owned();
                    writes.push((self.write_of(&state, &table, &request, true), request));
                }
                let second = from / 1_000;
                let reasons: Vec<&str> =
                    writes.iter().map(|(w, r)| self.cancellation(&state, w, r, actor, from, until)).collect();
                let writes: Vec<Write> = writes.into_iter().map(|(w, _)| w).collect();
                if reasons.iter().any(|r| *r != "None") {
                    if reasons.contains(&"ConditionalCheckFailed") {
                        state.condition_failures += 1;
                    } else {
                        state.transaction_conflicts += 1;
                    }
                    Self::count(&mut state, &writes, second, false);
                    // A cancelled transaction is charged.
                    state.wru += writes.iter().map(|w| w.wcu as f64).sum::<f64>();
                    let reasons: Vec<Value> = reasons.iter().map(|r| json!({ "Code": r })).collect();
                    return error("TransactionCanceledException", json!({ "CancellationReasons": reasons }));
                }
                let fits = Self::fits(&state, &writes, second);
                let applied = fits.iter().all(|&ok| ok);
                Self::count(&mut state, &writes, second, applied);
                if !applied {
                    Self::throttle(&mut state, &writes, &fits);
                    let reasons: Vec<Value> =
                        fits.iter().map(|&ok| json!({ "Code": if ok { "None" } else { "ThrottlingError" } })).collect();
                    return error("TransactionCanceledException", json!({ "CancellationReasons": reasons }));
                }
                for w in &writes {
                    let held = state.held.entry(w.target.item.clone()).or_default();
                    held.push((actor, from, until));
                    if held.len() > HISTORY_PER_ITEM {
                        held.remove(0);
                    }
                }
                self.apply(&mut state, &writes, actor, from);
                (200, json!({}))
            }
            "BatchWriteItem" => {
                let at = self.tick(actor, LATENCY.batch_write);
                let mut writes = Vec::new();
                for (table, requests) in body["RequestItems"].as_object().into_iter().flatten() {
                    for r in requests.as_array().into_iter().flatten() {
                        if let Some(item) = r.get("PutRequest").and_then(|p| p.get("Item")) {
                            writes.push(self.write_of(
                                &state,
                                table,
                                &json!({ "TableName": table, "Item": item }),
                                false,
                            ));
                        }
                    }
                }
                Self::count(&mut state, &writes, at / 1_000, true);
                self.apply(&mut state, &writes, actor, at);
                (200, json!({ "UnprocessedItems": {} }))
            }
            _ => {
                self.tick(actor, LATENCY.get);
                (200, json!({}))
            }
        }
    }
}

/// A DynamoDB client for `actor` whose every request the simulated DynamoDB answers.
pub fn simulated_client(dynamo: Arc<Simulated>, actor: usize) -> aws_sdk_dynamodb::Client {
    let http_client = aws_smithy_http_client::test_util::infallible_client_fn(move |request| {
        let (status, body) = dynamo.respond(actor, &request);
        http::Response::builder()
            .status(status)
            .header("content-type", "application/x-amz-json-1.0")
            .body(SdkBody::from(body.to_string()))
            .unwrap_or_else(|_| http::Response::new(SdkBody::empty()))
    });
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("model", "model", None, None, "scale-model"))
        .endpoint_url("http://scale-model.invalid")
        // Throttling is counted, not retried: the model runs in simulated time.
        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
        .http_client(http_client)
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// A small deterministic generator (xorshift), so runs repeat exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A record id at `ms` into the run, unique by `n`.
fn id_at(start_ms: u64, ms: u64, n: u64) -> RecordId {
    RecordId(Ulid::from_parts(start_ms + ms, u128::from(n) << 32 | 1))
}

/// Records waiting in the queue, each from when it can be received.
struct Queue {
    waiting: VecDeque<(u64, Record)>,
    /// Sent back (requeued) records, by when they come back.
    later: Vec<(u64, Record)>,
}

impl Queue {
    /// A batch for a poller at `now`: up to `max` records, once `max` are there or the
    /// oldest has waited the batching window.
    fn take(&mut self, now: u64, max: usize) -> Option<Vec<Record>> {
        let mut back: Vec<(u64, Record)> = Vec::new();
        self.later.retain(|(at, r)| {
            if *at <= now {
                back.push((*at, r.clone()));
                false
            } else {
                true
            }
        });
        for entry in back.into_iter().rev() {
            self.waiting.push_front(entry);
        }
        let ready = self.waiting.iter().take_while(|(at, _)| *at <= now).count();
        let oldest = self.waiting.front().map(|(at, _)| *at)?;
        if ready == 0 || (ready < max && oldest + BATCHING_WINDOW_MS > now) {
            return None;
        }
        Some(self.waiting.drain(..ready.min(max)).map(|(_, r)| r).collect())
    }

    fn is_empty(&self) -> bool {
        self.waiting.is_empty() && self.later.is_empty()
    }
}

/// The simulated burst's ids are minted from this instant (2026-11-01T00:00:00Z).
const MODEL_START_MS: u64 = 1_793_491_200_000;

/// Actor 0 is ingest; actors 1..=n the aggregators.
const INGEST: usize = 0;

/// Runs one scenario.
pub async fn run(scenario: Scenario) -> anyhow::Result<Outcome> {
    let actors = scenario.aggregators.max(1) + 1;
    let dynamo = Arc::new(Simulated::new(scenario.design == Design::Before, actors));
    let tables = scenario.design.tables();
    // Seeded, so that two runs of a scenario make the same requests: each aggregator starts
    // its round-robin over counter shards where this sequence says (a real one starts at random).
    let mut starts = Rng(0x2545_f491_4f6c_dd1d);
    let first_shards: Vec<u32> = (0..actors).map(|_| starts.next() as u32).collect();
    let store = |actor: usize| {
        DynamoStore::new(simulated_client(dynamo.clone(), actor), tables.clone(), ledger::Retention::DEFAULT)
            .with_throttle_budget(Duration::ZERO)
            .with_first_counter_shard(first_shards[actor])
    };
    let ingest = store(INGEST);
    let aggregators: Vec<DynamoStore> = (1..actors).map(store).collect();

    // Set-up, before the burst's first second: the event and its questions.
    // A fixed instant, so that every id (and so every ledger shard an id picks) is the same in
    // every run; nothing in the paths modelled compares ids with the clock.
    let start_ms = MODEL_START_MS;
    let event = EventId(Ulid::from_parts(start_ms, 7));
    ingest
        .create_event(&EventRow {
            id: event,
            secret_hash: ledger::secret::hash_secret("model"),
            expire_unix: ledger::Retention::DEFAULT.expire_of(event),
        })
        .await?;
    let questions: Vec<QuestionId> =
        (0..scenario.mix.questions()).map(|i| QuestionId(Ulid::from_parts(start_ms, 1_000 + u128::from(i)))).collect();
    let asked: Vec<Record> = questions
        .iter()
        .enumerate()
        .map(|(i, &q)| Record {
            id: id_at(start_ms, 0, i as u64),
            event,
            question: q,
            region: "model".into(),
            body: RecordBody::Asked(Asked { text: "A question?".into(), who: None, voter: VoterId::random() }),
        })
        .collect();
    ingest.append(&asked).await?;
    aggregator::apply_batch(&aggregators[0], &asked, None).await?;
    // The burst starts at second 1000 of the simulated clock, so set-up writes stay apart.
    let burst_start = 1_000_000;
    for actor in 0..actors {
        dynamo.set_clock(actor, burst_start);
    }
    let setup = dynamo.state.lock().map(|s| (s.requests, s.wru, s.rru)).unwrap_or_default();

    let total_votes = scenario.votes_per_s * scenario.seconds;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut queue = Queue { waiting: VecDeque::new(), later: Vec::new() };
    let mut outcome = Outcome { votes: total_votes, ..Outcome::default() };
    let end = burst_start + scenario.seconds * 1_000 + scenario.drain_ms;
    let mut next_vote = 0u64;
    loop {
        // Step whichever is furthest behind: ingest (its next vote) or an aggregator.
        let (k, clock) = (1..actors).map(|k| (k, dynamo.clock(k))).min_by_key(|&(_, c)| c).unwrap_or((1, end));
        let vote_at = burst_start + next_vote * 1_000 / scenario.votes_per_s.max(1);
        if next_vote < total_votes && vote_at <= clock {
            dynamo.set_clock(INGEST, vote_at);
            let question = questions[(rng.next() % questions.len() as u64) as usize];
            let record = Record {
                id: id_at(start_ms, vote_at - burst_start + 1_000, next_vote + 1_000_000),
                event,
                question,
                region: "model".into(),
                body: RecordBody::Voted {
                    voter: VoterId::from_u128(u128::from(rng.next()) << 64 | u128::from(next_vote)),
                    up: true,
                },
            };
            match ingest.append(std::slice::from_ref(&record)).await {
                Ok(()) => queue.waiting.push_back((vote_at + PIPE_DELAY_MS, record)),
                Err(_) => outcome.votes_refused += 1,
            }
            next_vote += 1;
            continue;
        }
        if clock > end || (next_vote >= total_votes && queue.is_empty()) {
            break;
        }
        let Some(batch) = queue.take(clock, scenario.batch_records) else {
            dynamo.set_clock(k, clock + 20);
            continue;
        };
        outcome.batches += 1;
        let aggregator = &aggregators[k - 1];
        match aggregator::apply_batch(aggregator, &batch, None).await {
            Ok(_) => {}
            Err(e) => {
                if ledger_dynamodb::is_throttled(&e) {
                    outcome.batches_throttled += 1;
                } else {
                    outcome.batches_conflicted += 1;
                }
                let back = dynamo.clock(k) + REQUEUE_DELAY_MS;
                queue.later.extend(batch.into_iter().map(|r| (back, r)));
            }
        }
    }
    outcome.finished_ms = (1..actors).map(|k| dynamo.clock(k)).max().unwrap_or(0).saturating_sub(burst_start);

    let state = dynamo.state.lock().map_err(|_| anyhow::anyhow!("the simulation panicked"))?;
    outcome.requests = state.requests - setup.0;
    outcome.wru = state.wru - setup.1;
    outcome.rru = state.rru - setup.2;
    outcome.transaction_conflicts = state.transaction_conflicts;
    outcome.condition_failures = state.condition_failures;
    outcome.throttled_requests = state.throttled_requests;
    // Every vote is a first-time voter's: one voter state each, beside the askers' states.
    let voter_states = state.voters.keys().filter(|k| !k.rsplit('/').next().unwrap_or("").starts_with('#')).count();
    outcome.votes_folded = (voter_states as u64).saturating_sub(questions.len() as u64);
    let name = |partition: &str| {
        let mut name = partition.replace(&event.to_string(), "{eid}");
        for q in &questions {
            name = name.replace(&q.to_string(), "{qid}");
        }
        name
    };
    // In key order, so that of two keys as hot as each other the same one is named every run.
    let mut loads: Vec<_> = state.load.iter().collect();
    loads.sort_unstable_by(|a, b| a.0.cmp(b.0));
    for ((table, partition, second), load) in loads {
        if *second < burst_start / 1_000 {
            continue;
        }
        let hot = outcome.hottest.entry(table.clone()).or_default();
        if load.writes > hot.writes {
            *hot = HotKey { key: name(partition), writes: load.writes, wcu: load.wcu, throttled: 0 };
        }
    }
    for ((table, partition), throttled) in &state.throttled_by_table {
        if let Some(hot) = outcome.hottest.get_mut(table.as_str()) {
            if hot.key == name(partition) {
                hot.throttled += throttled;
            }
        }
    }
    Ok(outcome)
}

/// The tables and index every report lists, in order.
pub const TARGETS: &[&str] = &["events", "ledger", "questions", "questions/top", "voters"];

fn cell(hot: Option<&HotKey>) -> String {
    match hot {
        None => "—".to_owned(),
        Some(h) => {
            let mark = if h.writes > u64::from(HOT_KEY_WRITES_PER_S_MAX) { " **over 500**" } else { "" };
            let throttled = if h.throttled > 0 { format!(", {} throttled", h.throttled) } else { String::new() };
            format!("`{}`: {} writes/s{mark} ({} WCU/s{throttled})", h.key, h.writes, h.wcu)
        }
    }
}

/// The hottest partition key of each table and index, before and after, as a Markdown table.
pub fn hot_keys_table(before: &Outcome, after: &Outcome) -> String {
    let mut out = String::from("| table / index | before | after |\n|---|---|---|\n");
    for t in TARGETS {
        out.push_str(&format!("| `{t}` | {} | {} |\n", cell(before.hottest.get(*t)), cell(after.hottest.get(*t))));
    }
    out
}

/// What each run did and cost, as a Markdown table.
pub fn runs_table(runs: &[(Scenario, Outcome)]) -> String {
    let mut out = String::from(
        "| design | votes on | hottest key: writes/s | votes refused by ingest | folded by the end | batches (throttled, gave up) | transactions cancelled (in flight, condition) | WRU / vote | RRU / vote | DynamoDB $ per million votes |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for (s, o) in runs {
        let votes = o.votes_folded.max(1) as f64;
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} of {} (at {:.1} s) | {} ({}, {}) | {} + {} | {:.2} | {:.2} | {:.2} |\n",
            s.design.name(),
            s.mix.name(),
            o.hottest_writes(),
            o.votes_refused,
            o.votes_folded,
            o.votes,
            o.finished_ms as f64 / 1_000.0,
            o.batches,
            o.batches_throttled,
            o.batches_conflicted,
            o.transaction_conflicts,
            o.condition_failures,
            o.wru / votes,
            o.rru / votes,
            o.usd_per_million_votes(),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// At 10,000 votes/s on one question the new layout keeps every partition key of every
    /// table and index within 500 writes/s; the old one does not (its ledger shards and its
    /// `qid` voter key take far more), and it throttles.
    #[tokio::test]
    async fn the_new_layout_keeps_every_partition_key_within_500_writes_a_second_and_the_old_does_not() {
        // One second of the burst, and time to catch up (simulated).
        let scenario = |design| Scenario { drain_ms: 12_000, ..Scenario::new(design, Mix::OneQuestion, 10_000, 1) };
        let before = run(scenario(Design::Before)).await.expect("before");
        let after = run(scenario(Design::After)).await.expect("after");
        for t in TARGETS.iter().filter(|t| **t != "events") {
            assert!(after.hottest.contains_key(*t), "no writes counted on {t}: {:?}", after.hottest);
        }
        for (t, hot) in &after.hottest {
            assert!(
                hot.writes <= u64::from(HOT_KEY_WRITES_PER_S_MAX),
                "after: {t} key {} takes {} writes/s",
                hot.key,
                hot.writes
            );
            assert_eq!(hot.throttled, 0, "after: {t} throttled");
        }
        assert_eq!(after.throttled_requests, 0, "after: nothing throttled");
        assert_eq!(after.votes_refused, 0);
        assert_eq!(after.votes_folded, 10_000, "after: every vote folded once");
        assert_eq!(after.condition_failures, 0, "after: counter shards are added to, never conditioned");

        let ledger = &before.hottest["ledger"];
        assert!(ledger.writes > 1_000, "before: a ledger shard takes ~1,250 writes/s: {ledger:?}");
        let voters = &before.hottest["voters"];
        assert_eq!(voters.key, "{qid}", "before: the hot voters key is the question");
        assert!(voters.writes > u64::from(HOT_KEY_WRITES_PER_S_MAX) && voters.throttled > 0, "before: {voters:?}");
        assert!(before.hottest_writes() > u64::from(HOT_KEY_WRITES_PER_S_MAX));
        assert!(before.throttled_requests > 0 && before.votes_refused > 0, "before: throttled: {before:?}");
        assert!(before.votes_folded < after.votes_folded, "before: the backlog is not folded by the end");
        assert!(hot_keys_table(&before, &after).contains("| `voters` |"));
    }

    /// A seeded simulation: the same scenario twice makes the same requests, so every figure
    /// it reports is the scenario's, not the run's.
    #[tokio::test]
    async fn a_scenario_run_twice_gives_the_same_figures() {
        let scenario = || Scenario { drain_ms: 12_000, ..Scenario::new(Design::After, Mix::OneQuestion, 10_000, 1) };
        let (first, second) = (run(scenario()).await.expect("first"), run(scenario()).await.expect("second"));
        // FAILS IF anything in a run depends on the clock or an unseeded random choice.
        assert_eq!(format!("{first:?}"), format!("{second:?}"));
        assert!(first.transaction_conflicts > 0, "no contention at all: the check would be empty");
    }
}
