//! The event and ledger ports: events by key, conditional appends, and ledger scans (one
//! event's shards or the whole table) with their continuation tokens.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::Select;
use futures::{StreamExt, TryStreamExt};
use ledger::ports::{EventRow, EventStore, LedgerStore, ScanPage, ScanToken, StoreError, StoreResult};
use ledger::{EventId, Record};

use crate::item::{event_from_item, event_to_item, ledger_partition, record_from_item, string_attr};
use crate::layout::Layout;
use crate::reads::{page_limit, SCAN_PAGE_LIMIT};
use crate::schema::{EVENTS_KEY, LEDGER_PARTITION_KEY, LEDGER_SORT_KEY};
use crate::{is_condition_failed, store_error, DynamoStore, APPEND_PUTS_IN_FLIGHT_MAX};

#[async_trait]
impl EventStore for DynamoStore {
    async fn create_event(&self, event: &EventRow) -> StoreResult<()> {
        // The event's layout is fixed now, on its item (see `layout.rs`).
        let layout = self.new_event_layout();
        let mut item = event_to_item(event);
        item.extend(layout.to_event_attributes());
        let result = self
            .client
            .put_item()
            .table_name(&self.tables.events)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#id)")
            .expression_attribute_names("#id", EVENTS_KEY)
            .send()
            .await;
        match result {
            Ok(_) => {
                self.remember_layout(event.id, layout);
                Ok(())
            }
            Err(e) if is_condition_failed(&e) => {
                Err(StoreError::Rejected(format!("event {} already exists", event.id)))
            }
            Err(e) => Err(store_error("create an event", e)),
        }
    }

    async fn event(&self, id: EventId) -> StoreResult<Option<EventRow>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.events)
            .key(EVENTS_KEY, string_attr(id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("read an event", e))?;
        let Some(item) = out.item else { return Ok(None) };
        // Ingest reads the event before it appends: its layout is then at hand for the append.
        self.remember_layout(id, Layout::from_event_item(&item)?);
        event_from_item(&item).map(Some)
    }
}

/// Scan positions: `e/{shard}/{last id or empty}` within one event's shards, `a/{pk}/{id}`
/// for the whole table.
fn parse_token(token: &ScanToken) -> StoreResult<(char, String, String)> {
    let bad = || StoreError::Rejected("malformed scan token".to_owned());
    let mut parts = token.0.splitn(3, '/');
    let kind = parts.next().and_then(|k| k.chars().next()).ok_or_else(bad)?;
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
        // Each record under its event's layout, read once per event.
        let layouts = self.layouts_of(unique.iter().map(|r| r.event)).await?;
        let layout = |r: &Record| layouts.get(&r.event).copied().unwrap_or_else(|| self.new_event_layout());
        match unique.as_slice() {
            [] => Ok(()),
            [record] => self.append_one(record, layout(record)).await.map(drop),
            many => {
                let mut puts = Vec::with_capacity(many.len());
                for record in many {
                    puts.push(self.append_one(record, layout(record)));
                }
                futures::stream::iter(puts)
                    .buffer_unordered(APPEND_PUTS_IN_FLIGHT_MAX)
                    .try_for_each(|_written: bool| futures::future::ready(Ok(())))
                    .await
            }
        }
    }

    async fn scan(&self, event: Option<EventId>, after: Option<ScanToken>, limit: usize) -> StoreResult<ScanPage> {
        let limit = limit.clamp(1, SCAN_PAGE_LIMIT);
        let mut records = Vec::new();
        match event {
            Some(event) => {
                let (mut shard, mut start) = match &after {
                    None => (0, None),
                    Some(t) => match parse_token(t)? {
                        ('e', shard, last) => {
                            let shard =
                                shard.parse().map_err(|_| StoreError::Rejected("malformed scan token".into()))?;
                            let start = (!last.is_empty()).then(|| {
                                HashMap::from([
                                    (LEDGER_PARTITION_KEY.to_owned(), string_attr(ledger_partition(event, shard))),
                                    (LEDGER_SORT_KEY.to_owned(), string_attr(last)),
                                ])
                            });
                            (shard, start)
                        }
                        _ => return Err(StoreError::Rejected("scan token of another scan".into())),
                    },
                };
                // Every shard any layout may use (see `layout.rs`).
                let shards = self.ledger_read_shards();
                while shard < shards {
                    let (page, next) =
                        self.query_shard(event, shard, start.take(), limit - records.len(), false).await?;
                    records.extend(page);
                    match next {
                        Some(key) => start = Some(key),
                        None => shard += 1,
                    }
                    if records.len() >= limit {
                        break;
                    }
                }
                let next = (shard < shards).then(|| {
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
                            (LEDGER_PARTITION_KEY.to_owned(), string_attr(pk)),
                            (LEDGER_SORT_KEY.to_owned(), string_attr(id)),
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
                            _ => return Err(StoreError::Corrupt("ledger scan key lacks pk or id".into())),
                        }
                    }
                };
                Ok(ScanPage { records, next })
            }
        }
    }

    async fn event_records(&self, event: EventId) -> StoreResult<Vec<Record>> {
        Ok(self.event_records_counted(event).await?.0)
    }

    async fn count(&self, event: Option<EventId>) -> StoreResult<u64> {
        // The SDK's paginators follow `LastEvaluatedKey`; each page says how many it counted.
        let mut total = 0u64;
        match event {
            Some(event) => {
                for shard in 0..self.ledger_read_shards() {
                    let mut pages = self
                        .client
                        .query()
                        .table_name(&self.tables.ledger)
                        .key_condition_expression("#pk = :pk")
                        .expression_attribute_names("#pk", LEDGER_PARTITION_KEY)
                        .expression_attribute_values(":pk", string_attr(ledger_partition(event, shard)))
                        .select(Select::Count)
                        .into_paginator()
                        .send();
                    while let Some(page) = pages.next().await {
                        total += page.map_err(|e| store_error("count the ledger", e))?.count.max(0) as u64;
                    }
                }
            }
            None => {
                let mut pages =
                    self.client.scan().table_name(&self.tables.ledger).select(Select::Count).into_paginator().send();
                while let Some(page) = pages.next().await {
                    total += page.map_err(|e| store_error("count the ledger", e))?.count.max(0) as u64;
                }
            }
        }
        Ok(total)
    }
}
