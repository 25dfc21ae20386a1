//! A local stand-in for the EventBridge Pipe between the ledger table's stream and the
//! aggregator's queue: it reads every shard of the stream and sends each stream record to the
//! queue as one message, in the shape the real Pipe delivers (the stream record's JSON:
//! `eventID`, `eventName`, `dynamodb.Keys/NewImage/SequenceNumber/...`, `eventSourceARN`;
//! see `tests/fixtures/pipe-stream-record.json`). Delivery is at least once, like the Pipe's:
//! a shard's position advances only after the queue accepted the records.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use anyhow::Context;
use aws_sdk_dynamodbstreams::primitives::Blob;
use aws_sdk_dynamodbstreams::types::{AttributeValue, Record as StreamRecord, ShardIteratorType};
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use base64::Engine;
use serde_json::{json, Map, Value};
use tokio::sync::watch;

/// Most records one GetRecords returns (DynamoDB Streams API reference: Limit ≤ 1000).
pub const GET_RECORDS_MAX: i32 = 1_000;
/// Most entries in one SendMessageBatch (SQS API reference: 10).
pub const SEND_BATCH_MAX: usize = 10;
/// Pause between polls of an idle stream (the real Pipe polls about 4 times a second).
const IDLE_POLL_MS: u64 = 250;
/// How often a failed SendMessageBatch entry is retried within one pump.
const SEND_RETRIES_MAX: u32 = 5;

#[derive(Debug, Default)]
struct ShardState {
    iterator: Option<String>,
    last_sequence: Option<String>,
    closed: bool,
}

pub struct Pipe {
    pub streams: aws_sdk_dynamodbstreams::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub stream_arn: String,
    pub queue_url: String,
    /// The region written into each message (`awsRegion`), as the real stream does.
    pub region: String,
    shards: BTreeMap<String, ShardState>,
    idle_passes: Option<watch::Sender<u64>>,
}

impl Pipe {
    pub fn new(
        streams: aws_sdk_dynamodbstreams::Client,
        sqs: aws_sdk_sqs::Client,
        stream_arn: String,
        queue_url: String,
        region: String,
    ) -> Self {
        Self { streams, sqs, stream_arn, queue_url, region, shards: BTreeMap::new(), idle_passes: None }
    }

    /// Counts, on `passes`, each pass of [`run`](Self::run) that found nothing new: once it
    /// advanced twice after a write, that write has been forwarded (tests wait on it).
    pub fn with_idle_signal(mut self, passes: watch::Sender<u64>) -> Self {
        self.idle_passes = Some(passes);
        self
    }

    /// Forwards until `shutdown` turns true.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            let forwarded = match self.pump().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "pipe stand-in failed a round; retrying");
                    0
                }
            };
            if forwarded == 0 {
                if let Some(passes) = &self.idle_passes {
                    passes.send_modify(|n| *n += 1);
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(IDLE_POLL_MS)) => {}
                    _ = shutdown.changed() => return,
                }
            }
        }
    }

    /// One pass over every shard: forwards what the stream holds past each shard's position.
    /// Returns how many records were sent to the queue.
    pub async fn pump(&mut self) -> anyhow::Result<usize> {
        self.discover_shards().await?;
        let mut forwarded = 0;
        let ids: Vec<String> = self.shards.iter().filter(|(_, s)| !s.closed).map(|(id, _)| id.clone()).collect();
        for shard_id in ids {
            forwarded += self.pump_shard(&shard_id).await?;
        }
        Ok(forwarded)
    }

    async fn discover_shards(&mut self) -> anyhow::Result<()> {
        let mut start: Option<String> = None;
        loop {
            let out = self
                .streams
                .describe_stream()
                .stream_arn(&self.stream_arn)
                .set_exclusive_start_shard_id(start.take())
                .send()
                .await
                .context("describe the ledger stream")?;
            let description = out.stream_description.context("stream has no description")?;
            for shard in description.shards.unwrap_or_default() {
                if let Some(id) = shard.shard_id {
                    self.shards.entry(id).or_default();
                }
            }
            match description.last_evaluated_shard_id {
                Some(id) => start = Some(id),
                None => return Ok(()),
            }
        }
    }

    async fn pump_shard(&mut self, shard_id: &str) -> anyhow::Result<usize> {
        let mut forwarded = 0;
        loop {
            let Some(state) = self.shards.get_mut(shard_id) else {
                return Ok(forwarded);
            };
            let iterator = match state.iterator.clone() {
                Some(it) => it,
                None => {
                    let (kind, after) = match &state.last_sequence {
                        None => (ShardIteratorType::TrimHorizon, None),
                        Some(seq) => (ShardIteratorType::AfterSequenceNumber, Some(seq.clone())),
                    };
                    let out = self
                        .streams
                        .get_shard_iterator()
                        .stream_arn(&self.stream_arn)
                        .shard_id(shard_id)
                        .shard_iterator_type(kind)
                        .set_sequence_number(after)
                        .send()
                        .await
                        .context("get a shard iterator")?;
                    match out.shard_iterator {
                        Some(it) => it,
                        None => {
                            state.closed = true;
                            return Ok(forwarded);
                        }
                    }
                }
            };
            let out = match self.streams.get_records().shard_iterator(&iterator).limit(GET_RECORDS_MAX).send().await {
                Ok(out) => out,
                Err(e) if e.as_service_error().is_some_and(|s| s.is_expired_iterator_exception()) => {
                    // Start again right after the last record forwarded.
                    if let Some(state) = self.shards.get_mut(shard_id) {
                        state.iterator = None;
                    }
                    continue;
                }
                Err(e) => return Err(e).context("read stream records"),
            };
            let records = out.records.unwrap_or_default();
            let count = records.len();
            if count > 0 {
                let bodies: Vec<String> =
                    records.iter().map(|r| message_body(r, &self.stream_arn, &self.region).to_string()).collect();
                self.send(&bodies).await?;
                forwarded += count;
            }
            let last = records.iter().rev().find_map(|r| r.dynamodb.as_ref().and_then(|d| d.sequence_number.clone()));
            let Some(state) = self.shards.get_mut(shard_id) else {
                return Ok(forwarded);
            };
            if last.is_some() {
                state.last_sequence = last;
            }
            match out.next_shard_iterator {
                Some(next) => state.iterator = Some(next),
                None => {
                    state.closed = true;
                    return Ok(forwarded);
                }
            }
            if count == 0 {
                return Ok(forwarded);
            }
        }
    }

    /// Sends bodies in batches of ten, retrying the entries the queue refused.
    async fn send(&self, bodies: &[String]) -> anyhow::Result<()> {
        for chunk in bodies.chunks(SEND_BATCH_MAX) {
            let mut pending: HashMap<String, &String> =
                chunk.iter().enumerate().map(|(i, b)| (i.to_string(), b)).collect();
            for attempt in 0..=SEND_RETRIES_MAX {
                if pending.is_empty() {
                    break;
                }
                if attempt == SEND_RETRIES_MAX {
                    anyhow::bail!("the queue refused {} messages {SEND_RETRIES_MAX} times", pending.len());
                }
                let entries = pending
                    .iter()
                    .map(|(id, body)| {
                        SendMessageBatchRequestEntry::builder().id(id).message_body(body.as_str()).build()
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .context("build a send request")?;
                let out = self
                    .sqs
                    .send_message_batch()
                    .queue_url(&self.queue_url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .context("send stream records to the queue")?;
                for ok in out.successful {
                    pending.remove(&ok.id);
                }
                if !pending.is_empty() {
                    tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
                }
            }
        }
        Ok(())
    }
}

/// One stream record as the Pipe's message body.
pub fn message_body(record: &StreamRecord, stream_arn: &str, region: &str) -> Value {
    let mut dynamodb = Map::new();
    if let Some(d) = &record.dynamodb {
        if let Some(t) = d.approximate_creation_date_time {
            dynamodb.insert("ApproximateCreationDateTime".into(), json!(t.secs()));
        }
        if let Some(keys) = &d.keys {
            dynamodb.insert("Keys".into(), image_to_json(keys));
        }
        if let Some(image) = &d.new_image {
            dynamodb.insert("NewImage".into(), image_to_json(image));
        }
        if let Some(seq) = &d.sequence_number {
            dynamodb.insert("SequenceNumber".into(), json!(seq));
        }
        if let Some(size) = d.size_bytes {
            dynamodb.insert("SizeBytes".into(), json!(size));
        }
        if let Some(view) = &d.stream_view_type {
            dynamodb.insert("StreamViewType".into(), json!(view.as_str()));
        }
    }
    json!({
        "eventID": record.event_id,
        "eventName": record.event_name.as_ref().map(|n| n.as_str()),
        "eventVersion": record.event_version,
        "eventSource": record.event_source.clone().unwrap_or_else(|| "aws:dynamodb".to_owned()),
        "awsRegion": record.aws_region.clone().unwrap_or_else(|| region.to_owned()),
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    })
}

fn image_to_json(image: &HashMap<String, AttributeValue>) -> Value {
    Value::Object(image.iter().map(|(k, v)| (k.clone(), attribute_to_json(v))).collect())
}

fn attribute_to_json(value: &AttributeValue) -> Value {
    let b64 = |b: &Blob| Value::String(base64::engine::general_purpose::STANDARD.encode(b.as_ref()));
    let one = |tag: &str, v: Value| Value::Object(Map::from_iter([(tag.to_owned(), v)]));
    match value {
        AttributeValue::S(s) => one("S", json!(s)),
        AttributeValue::N(n) => one("N", json!(n)),
        AttributeValue::Bool(b) => one("BOOL", json!(b)),
        AttributeValue::B(b) => one("B", b64(b)),
        AttributeValue::Ss(v) => one("SS", json!(v)),
        AttributeValue::Ns(v) => one("NS", json!(v)),
        AttributeValue::Bs(v) => one("BS", v.iter().map(b64).collect()),
        AttributeValue::L(v) => one("L", v.iter().map(attribute_to_json).collect()),
        AttributeValue::M(m) => one("M", image_to_json(m)),
        _ => one("NULL", json!(true)),
    }
}
