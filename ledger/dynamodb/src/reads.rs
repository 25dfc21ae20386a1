//! Reading and batch-writing the tables: a ledger shard or a scan segment, an event's `top`
//! index, a question's voters, whole-table scans, and BatchGetItem/BatchWriteItem with their
//! unprocessed parts retried.

use std::collections::HashSet;

use aws_sdk_dynamodb::types::{KeysAndAttributes, WriteRequest};
use ledger::ports::StoreResult;
use ledger::{EventId, QuestionId, Record};

use crate::item::{ledger_partition, record_from_item, string_attr, Item};
use crate::schema::{
    BATCH_GET_KEYS_MAX, BATCH_WRITE_ITEMS_MAX, LEDGER_PARTITION_KEY, TOP_INDEX, TOP_PARTITION_KEY, VOTERS_PARTITION_KEY,
};
use crate::{invalid_request, pause_for_unprocessed, store_error, unprocessed_pauses, DynamoStore};

impl DynamoStore {
    /// One shard of one event's ledger records, every page, for parallel export and replay.
    pub async fn shard_records(&self, event: EventId, shard: u32) -> StoreResult<Vec<Record>> {
        Ok(self.shard_records_counted(event, shard).await?.0)
    }

    /// [`shard_records`](Self::shard_records), and how many Query requests it took.
    async fn shard_records_counted(&self, event: EventId, shard: u32) -> StoreResult<(Vec<Record>, u64)> {
        let mut out = Vec::new();
        let mut start = None;
        let mut queries = 0;
        loop {
            let page = self.query_shard(event, shard, start, SCAN_PAGE_LIMIT, false).await?;
            queries += 1;
            out.extend(page.0);
            match page.1 {
                Some(next) => start = Some(next),
                None => return Ok((out, queries)),
            }
        }
    }

    /// Every record of one event: every shard partition any event may use
    /// ([`ledger_read_shards`](Self::ledger_read_shards)) queried in parallel, each to its
    /// last page (eventually consistent reads), and how many Query requests that took.
    pub async fn event_records_counted(&self, event: EventId) -> StoreResult<(Vec<Record>, u64)> {
        let shards = (0..self.ledger_read_shards()).map(|shard| self.shard_records_counted(event, shard));
        let mut records = Vec::new();
        let mut queries = 0;
        for (part, n) in futures::future::try_join_all(shards).await? {
            records.extend(part);
            queries += n;
        }
        Ok((records, queries))
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
            page(out.items().iter().map(record_from_item).collect::<StoreResult<Vec<_>>>()?);
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(()),
            }
        }
    }

    pub(crate) async fn query_shard(
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
            .expression_attribute_values(":pk", string_attr(ledger_partition(event, shard)))
            .set_exclusive_start_key(start)
            .limit(page_limit(limit))
            .send()
            .await
            .map_err(|e| store_error("query the ledger", e))?;
        let records = out.items().iter().map(record_from_item).collect::<StoreResult<Vec<_>>>()?;
        Ok((records, out.last_evaluated_key.filter(|k| !k.is_empty())))
    }

    /// Every item of a Query on `top` for one event, following `LastEvaluatedKey`.
    pub(crate) async fn top_items(&self, event: EventId) -> StoreResult<Vec<Item>> {
        // The SDK's paginator follows `LastEvaluatedKey` to the last page.
        self.client
            .query()
            .table_name(&self.tables.questions)
            .index_name(TOP_INDEX)
            .key_condition_expression("#eid = :eid")
            .expression_attribute_names("#eid", TOP_PARTITION_KEY)
            .expression_attribute_values(":eid", string_attr(event))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| store_error("query the top index", e))
    }

    /// Every item of a Scan of one table, following `LastEvaluatedKey`.
    pub(crate) async fn scan_all(&self, table: &str) -> StoreResult<Vec<Item>> {
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
    pub(crate) async fn question_voter_items(&self, question: QuestionId) -> StoreResult<Vec<Item>> {
        self.client
            .query()
            .table_name(&self.tables.voters)
            .consistent_read(true)
            .key_condition_expression("#qid = :qid")
            .expression_attribute_names("#qid", VOTERS_PARTITION_KEY)
            .expression_attribute_values(":qid", string_attr(question))
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
            let mut pauses = unprocessed_pauses();
            while !pending.is_empty() {
                let mut request = KeysAndAttributes::builder().set_keys(Some(pending)).consistent_read(consistent);
                if let Some(p) = projection {
                    request = request.projection_expression(p);
                }
                for (alias, name) in names {
                    request = request.expression_attribute_names(*alias, *name);
                }
                let request = request.build().map_err(invalid_request)?;
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
                pending = out.unprocessed_keys.and_then(|mut u| u.remove(table)).map(|ka| ka.keys).unwrap_or_default();
                if !pending.is_empty() {
                    pause_for_unprocessed(&mut pauses, "batch-get").await?;
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
            let mut pauses = unprocessed_pauses();
            while !pending.is_empty() {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(table, pending)
                    .send()
                    .await
                    .map_err(|e| store_error("batch-write items", e))?;
                pending = out.unprocessed_items.and_then(|mut u| u.remove(table)).unwrap_or_default();
                if !pending.is_empty() {
                    pause_for_unprocessed(&mut pauses, "batch-write").await?;
                }
            }
        }
        Ok(())
    }
}

/// A Query/Scan page size: what is asked, bounded by the scan limit, at least 1.
pub(crate) fn page_limit(limit: usize) -> i32 {
    limit.clamp(1, SCAN_PAGE_LIMIT) as i32
}

pub(crate) const SCAN_PAGE_LIMIT: usize = ledger::limits::SCAN_PAGE_RECORDS_MAX;
