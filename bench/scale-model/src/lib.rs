//! The scale model: how hard a vote burst on one question hits DynamoDB, counted from the
//! writes the real adapter issues rather than estimated on paper.
//!
//! The DynamoDB adapter (`ledger_dynamodb::DynamoStore`) runs unchanged, with the SDK's HTTP
//! client replaced by a counting one: every request is parsed (it is DynamoDB's JSON
//! protocol), each item it writes is counted against the simulated second it was issued in,
//! and it is answered as DynamoDB would answer when nothing conflicts (reads find no voter
//! state yet: every vote in the burst is a guest's first). The aggregator's own batch
//! function (`aggregator::apply_batch`) drives the adapter, batch by batch, as the queue
//! would deliver the burst. The original design (one `UpdateItem ADD votes 1` per vote) is
//! driven through the same counting client for comparison.
//!
//! What is counted, per simulated second:
//! - writes to each item (table + key), with their write capacity: 2 WCU per item written in
//!   a transaction, 1 WCU otherwise (every item here is under 1 KB);
//! - writes to each partition of the `top` index: a base-table write that changes `votes`
//!   (the index's sort key) moves the index entry, a delete and a put (2 WCU);
//! - writes to each partition key of the `voters` table (one item per voter, so DynamoDB
//!   can split that key's item collection by sort key when it runs hot).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aws_smithy_types::body::SdkBody;
use ledger::{Asked, EventId, QuestionId, Record, RecordBody, RecordId, VoterId};
use ledger_dynamodb::aws_sdk_dynamodb;
use ledger_dynamodb::schema::{PARTITION_WCU_PER_S_MAX, TRANSACT_ITEMS_MAX};
use ledger_dynamodb::{DynamoStore, Tables};
use serde_json::{json, Value};
use ulid::Ulid;

/// What a write lands on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    Item { table: String, key: String },
    IndexPartition { index: String, partition: String },
    PartitionKey { table: String, partition: String },
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub writes: u64,
    pub wcu: u64,
}

/// Counts writes per target per simulated second.
#[derive(Default)]
pub struct Counter {
    now_s: AtomicU64,
    tallies: Mutex<HashMap<(Target, u64), Tally>>,
    /// Which event each question belongs to (learned from writes carrying `eid`), to place
    /// `top` index writes in their partition.
    events: Mutex<HashMap<String, String>>,
    requests: AtomicU64,
    /// Counter shard items as last written (the adapter reads them back to add to them).
    shards: Mutex<HashMap<String, Value>>,
}

impl Counter {
    pub fn set_second(&self, second: u64) {
        self.now_s.store(second, Ordering::SeqCst);
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    fn add(&self, target: Target, wcu: u64) {
        let second = self.now_s.load(Ordering::SeqCst);
        if let Ok(mut t) = self.tallies.lock() {
            let tally = t.entry((target, second)).or_default();
            tally.writes += 1;
            tally.wcu += wcu;
        }
    }

    /// The busiest second of the busiest target of each kind: (target, writes, WCU).
    pub fn peaks(&self) -> Peaks {
        let tallies = self.tallies.lock().map(|t| t.clone()).unwrap_or_default();
        let mut peaks = Peaks::default();
        for ((target, _second), tally) in tallies {
            let slot = match &target {
                Target::Item { .. } => &mut peaks.item,
                Target::IndexPartition { .. } => &mut peaks.index_partition,
                Target::PartitionKey { .. } => &mut peaks.partition_key,
            };
            if slot.as_ref().is_none_or(|(_, best)| tally.writes > best.writes) {
                *slot = Some((target, tally));
            }
        }
        peaks
    }

    /// Writes per second to one target, over every simulated second seen (0 where none).
    pub fn series(&self, target: &Target, seconds: u64) -> Vec<u64> {
        let tallies = self.tallies.lock().map(|t| t.clone()).unwrap_or_default();
        (0..seconds).map(|s| tallies.get(&(target.clone(), s)).map_or(0, |t| t.writes)).collect()
    }

    fn learn_event(&self, question: &str, event: &str) {
        if let Ok(mut e) = self.events.lock() {
            e.entry(question.to_owned()).or_insert_with(|| event.to_owned());
        }
    }

    fn event_of(&self, question: &str) -> Option<String> {
        self.events.lock().ok().and_then(|e| e.get(question).cloned())
    }

    /// Counts a put (a `PutItem` request, or a `Put` of a transaction).
    fn count_put(&self, put: &Value, transactional: bool) {
        self.count_write(put["TableName"].as_str().unwrap_or(""), &put["Item"], None, &Value::Null, transactional);
    }

    /// Counts an update (an `UpdateItem` request, or an `Update` of a transaction), with its
    /// expression's placeholders (#votes) resolved so that "touches votes" is visible.
    fn count_update(&self, update: &Value, transactional: bool) {
        let mut expression = update["UpdateExpression"].as_str().unwrap_or("").to_owned();
        if let Some(names) = update.get("ExpressionAttributeNames").and_then(Value::as_object) {
            for (alias, name) in names {
                expression = expression.replace(alias.as_str(), name.as_str().unwrap_or(""));
            }
        }
        let values = update.get("ExpressionAttributeValues").cloned().unwrap_or(Value::Null);
        let table = update["TableName"].as_str().unwrap_or("");
        self.count_write(table, &update["Key"], Some(&expression), &values, transactional);
    }

    /// Counts one written item. `values` are the request's expression attribute values.
    fn count_write(&self, table: &str, key_or_item: &Value, update: Option<&str>, values: &Value, transactional: bool) {
        let item_wcu = if transactional { 2 } else { 1 };
        let s = |v: &Value, name: &str| v.get(name).and_then(|a| a.get("S")).and_then(Value::as_str).map(str::to_owned);
        let key_names: &[&str] = if table.ends_with("voters") {
            &["qid", "voter"]
        } else if table.ends_with("ledger") {
            &["pk", "id"]
        } else {
            &["id"]
        };
        let key = key_names.iter().map(|n| s(key_or_item, n).unwrap_or_default()).collect::<Vec<_>>().join("/");
        if table.ends_with("voters") && key.contains("/#") && update.is_none() {
            if let Ok(mut shards) = self.shards.lock() {
                shards.insert(key.clone(), key_or_item.clone());
            }
        }
        self.add(Target::Item { table: table.to_owned(), key }, item_wcu);
        if table.ends_with("voters") {
            if let Some(qid) = s(key_or_item, "qid") {
                self.add(Target::PartitionKey { table: table.to_owned(), partition: qid }, item_wcu);
            }
        }
        if table.ends_with("questions") {
            let Some(id) = s(key_or_item, "id") else {
                return;
            };
            if let Some(eid) = s(key_or_item, "eid").or_else(|| s(values, ":eid")) {
                self.learn_event(&id, &eid);
            }
            // A put writes the index entry; an update moves it if it touches `votes`.
            let moves_index = match update {
                None => key_or_item.get("votes").is_some(),
                Some(expression) => expression.contains("votes"),
            };
            if moves_index {
                if let Some(eid) = self.event_of(&id) {
                    self.add(Target::IndexPartition { index: "top".to_owned(), partition: eid }, 2);
                }
            }
        }
    }

    /// Answers one DynamoDB request as a conflict-free DynamoDB would, counting its writes.
    fn respond(&self, request: &http::Request<SdkBody>) -> Value {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let target = request.headers().get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("");
        let operation = target.rsplit('.').next().unwrap_or("");
        let body: Value = request.body().bytes().and_then(|b| serde_json::from_slice(b).ok()).unwrap_or(Value::Null);
        match operation {
            "TransactWriteItems" => {
                for entry in body["TransactItems"].as_array().into_iter().flatten() {
                    if let Some(put) = entry.get("Put") {
                        self.count_put(put, true);
                    }
                    if let Some(update) = entry.get("Update") {
                        self.count_update(update, true);
                    }
                }
                json!({})
            }
            "UpdateItem" => {
                self.count_update(&body, false);
                json!({})
            }
            "PutItem" => {
                self.count_put(&body, false);
                json!({})
            }
            "BatchWriteItem" => {
                if let Some(tables) = body["RequestItems"].as_object() {
                    for (table, requests) in tables {
                        for r in requests.as_array().into_iter().flatten() {
                            if let Some(item) = r.get("PutRequest").and_then(|p| p.get("Item")) {
                                self.count_write(table, item, None, &Value::Null, false);
                            }
                        }
                    }
                }
                json!({ "UnprocessedItems": {} })
            }
            "BatchGetItem" => {
                // No voter has state yet (every vote of the burst is that guest's first);
                // counter shards are as last written.
                let shards = self.shards.lock().map(|s| s.clone()).unwrap_or_default();
                let mut responses = serde_json::Map::new();
                for (table, request) in body["RequestItems"].as_object().into_iter().flatten() {
                    let found: Vec<Value> = request["Keys"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|k| {
                            let part =
                                |n: &str| k.get(n).and_then(|a| a.get("S")).and_then(Value::as_str).unwrap_or("");
                            shards.get(&format!("{}/{}", part("qid"), part("voter"))).cloned()
                        })
                        .collect();
                    responses.insert(table.clone(), Value::Array(found));
                }
                json!({ "Responses": responses, "UnprocessedKeys": {} })
            }
            _ => json!({}),
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct Peaks {
    pub item: Option<(Target, Tally)>,
    pub index_partition: Option<(Target, Tally)>,
    pub partition_key: Option<(Target, Tally)>,
}

/// A DynamoDB client whose every request is answered and counted by `counter`.
pub fn counting_client(counter: Arc<Counter>) -> aws_sdk_dynamodb::Client {
    let http_client = aws_smithy_http_client::test_util::infallible_client_fn(move |request| {
        let body = counter.respond(&request).to_string();
        http::Response::builder()
            .status(200)
            .header("content-type", "application/x-amz-json-1.0")
            .body(SdkBody::from(body))
            .unwrap_or_else(|_| http::Response::new(SdkBody::empty()))
    });
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("model", "model", None, None, "scale-model"))
        .endpoint_url("http://scale-model.invalid")
        .http_client(http_client)
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// The burst: `votes_per_s` first-time up-votes on one question for `seconds`.
#[derive(Debug, Clone, Copy)]
pub struct Burst {
    pub votes_per_s: u64,
    pub seconds: u64,
    /// Records per aggregator batch (the queue's batch size; the template's default is 1,000).
    pub batch_records: usize,
    /// The adapter's counter shards per question (0: counts on the question item).
    pub counter_shards: u32,
}

/// The "second" the question is created in, kept apart from the burst's seconds.
const SETUP_SECOND: u64 = u64::MAX;

/// One design's result.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub design: String,
    pub peaks: Peaks,
    pub requests: u64,
    pub hot_item_series: Vec<u64>,
}

fn fixture() -> (EventId, QuestionId, Record) {
    let event = EventId(Ulid::new());
    let question = QuestionId(Ulid::new());
    let asked = Record {
        id: RecordId(Ulid::new()),
        event,
        question,
        region: "us-east-1".into(),
        body: RecordBody::Asked(Asked { text: "The hot question?".into(), who: None, voter: VoterId::random() }),
    };
    (event, question, asked)
}

fn votes(event: EventId, question: QuestionId, second: u64, n: u64) -> Vec<Record> {
    let base_ms = Ulid::new().timestamp_ms() + second * 1_000;
    (0..n)
        .map(|i| Record {
            id: RecordId(Ulid::from_parts(base_ms + i * 1_000 / n.max(1), u128::from(i) << 16 | 1)),
            event,
            question,
            region: "us-east-1".into(),
            body: RecordBody::Voted { voter: VoterId::random(), up: true },
        })
        .collect()
}

/// This design: the aggregator folds the burst batch by batch through the real adapter.
pub async fn ledger_design(burst: Burst) -> anyhow::Result<Outcome> {
    let counter = Arc::new(Counter::default());
    let tables = Tables { counter_shards: burst.counter_shards, ..Tables::default() };
    let store = DynamoStore::new(counting_client(counter.clone()), tables, ledger::Retention::DEFAULT);
    let (event, question, asked) = fixture();
    counter.set_second(SETUP_SECOND);
    aggregator::apply_batch(&store, &[asked], None).await?;
    for second in 0..burst.seconds {
        counter.set_second(second);
        for batch in votes(event, question, second, burst.votes_per_s).chunks(burst.batch_records.max(1)) {
            aggregator::apply_batch(&store, batch, None).await?;
        }
    }
    let hot = Target::Item { table: "questions".into(), key: question.to_string() };
    Ok(Outcome {
        design: match burst.counter_shards {
            0 => format!("ledger, no counter shards, batches of {}", burst.batch_records),
            k => format!("ledger, {k} counter shards, batches of {}", burst.batch_records),
        },
        peaks: counter.peaks(),
        requests: counter.requests(),
        hot_item_series: counter.series(&hot, burst.seconds),
    })
}

/// The original: one `UpdateItem ADD votes 1` on the question per vote, through the same
/// counting client.
pub async fn original_design(burst: Burst) -> anyhow::Result<Outcome> {
    let counter = Arc::new(Counter::default());
    let client = counting_client(counter.clone());
    let (event, question, _) = fixture();
    counter.set_second(SETUP_SECOND);
    client
        .put_item()
        .table_name("questions")
        .item("id", aws_sdk_dynamodb::types::AttributeValue::S(question.to_string()))
        .item("eid", aws_sdk_dynamodb::types::AttributeValue::S(event.to_string()))
        .item("votes", aws_sdk_dynamodb::types::AttributeValue::N("1".into()))
        .send()
        .await?;
    for second in 0..burst.seconds {
        counter.set_second(second);
        for _ in 0..burst.votes_per_s {
            client
                .update_item()
                .table_name("questions")
                .key("id", aws_sdk_dynamodb::types::AttributeValue::S(question.to_string()))
                .update_expression("ADD #votes :one")
                .expression_attribute_names("#votes", "votes")
                .expression_attribute_values(":one", aws_sdk_dynamodb::types::AttributeValue::N("1".into()))
                .send()
                .await?;
        }
    }
    let hot = Target::Item { table: "questions".into(), key: question.to_string() };
    Ok(Outcome {
        design: "original (UpdateItem per vote)".into(),
        peaks: counter.peaks(),
        requests: counter.requests(),
        hot_item_series: counter.series(&hot, burst.seconds),
    })
}

/// The hottest-item target (writes per second) the design aims for.
pub const HOT_ITEM_WRITES_PER_S_TARGET: u64 = 20;

fn mark(wcu: u64) -> &'static str {
    if wcu > u64::from(PARTITION_WCU_PER_S_MAX) {
        "**over** the 1,000 WCU/s partition limit"
    } else {
        "within 1,000 WCU/s"
    }
}

/// The result as a Markdown table, one row per design.
pub fn report(burst: Burst, outcomes: &[Outcome]) -> String {
    let mut out = format!(
        "Burst: {} votes/s on one question for {} s (distinct first-time voters). \
         Transactions hold at most {TRANSACT_ITEMS_MAX} items; partition limit {PARTITION_WCU_PER_S_MAX} WCU/s; \
         target ≤ {HOT_ITEM_WRITES_PER_S_TARGET} writes/s to the hottest item.\n\n",
        burst.votes_per_s, burst.seconds
    );
    out.push_str("| design | hottest item: writes/s (WCU/s) | `top` partition: writes/s (WCU/s) | hottest `voters` partition key: writes/s (WCU/s) | DynamoDB requests |\n");
    out.push_str("|---|---|---|---|---|\n");
    let cell = |peak: &Option<(Target, Tally)>| match peak {
        Some((_, t)) => format!("{} ({}; {})", t.writes, t.wcu, mark(t.wcu)),
        None => "0".to_owned(),
    };
    for o in outcomes {
        let hot = o.peaks.item.as_ref().map_or(0, |(_, t)| t.writes);
        let target = if hot <= HOT_ITEM_WRITES_PER_S_TARGET { "meets" } else { "misses" };
        out.push_str(&format!(
            "| {} | {} — {target} the ≤ {HOT_ITEM_WRITES_PER_S_TARGET}/s target | {} | {} | {} |\n",
            o.design,
            cell(&o.peaks.item),
            cell(&o.peaks.index_partition),
            cell(&o.peaks.partition_key),
            o.requests
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_counts_follow_from_the_adapters_writes() {
        let burst = Burst { votes_per_s: 500, seconds: 2, batch_records: 250, counter_shards: 0 };
        let original = original_design(burst).await.expect("original");
        let (_, hot) = original.peaks.item.clone().expect("a hot item");
        assert_eq!(hot.writes, 500, "one write per vote");
        let (_, index) = original.peaks.index_partition.clone().expect("index writes");
        assert_eq!(index.writes, 500, "each vote moves the index entry");

        let ledger = ledger_design(burst).await.expect("ledger design");
        let (target, hot) = ledger.peaks.item.clone().expect("a hot item");
        assert!(
            matches!(&target, Target::Item { table, .. } if table == "questions"),
            "hottest is the question: {target:?}"
        );
        // Per batch of 250 distinct voters: ceil(250 / 99) = 3 transactions, each one
        // counter write (2 WCU); 2 batches per second.
        let per_batch = 250u64.div_ceil(TRANSACT_ITEMS_MAX as u64 - 1);
        assert_eq!(hot.writes, 2 * per_batch);
        assert_eq!(hot.wcu, 2 * hot.writes, "transactional writes cost 2 WCU");
        let (_, voters) = ledger.peaks.partition_key.clone().expect("voter writes");
        assert_eq!(voters.writes, 500, "one voter item per vote");
        // With counter shards the question takes one roll-up per batch, each shard a share
        // of the transactions.
        let sharded = ledger_design(Burst { counter_shards: 3, ..burst }).await.expect("sharded");
        let series = &sharded.hot_item_series;
        assert_eq!(series, &vec![2, 2], "one roll-up per batch on the question item");
        let (_, hot) = sharded.peaks.item.clone().expect("a hot item");
        assert!(hot.writes <= 2 * per_batch, "no item busier than without shards: {hot:?}");
        assert!(report(burst, &[original, ledger, sharded]).contains("| original"));
    }
}
