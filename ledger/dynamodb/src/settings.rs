//! The deployment's retention, stored once in the store itself: one reserved item of the
//! `events` table (key [`RETENTION_ITEM_KEY`], see `schema.rs`). Every process (the Lambdas,
//! `serve --backend dynamodb`, the operator commands) reads it at start and stamps every
//! expiry with it, so a command run without `RETENTION_DAYS` cannot stamp 30 days on the
//! records of a 90-day deployment.
//!
//! The first process that finds no stored retention and may write the `events` table stores
//! the one it was given (`RETENTION_DAYS`, or the default) with a conditional put, so of two
//! such processes starting at once exactly one wins and both then use the winner's value. A
//! process given a retention that disagrees with the stored one logs a warning and uses the
//! stored one. Changing it later is an explicit operator step ([`set_retention`]); items
//! already written keep the expiry they were stamped with.
//!
//! `events` is a global table, so the setting is one for all regions. Two regions storing it
//! at the same moment both succeed locally and replication keeps the later write; in a
//! deployment both write the template's one `RETENTION_DAYS`, so the value is the same.

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use ledger::ports::{StoreError, StoreResult};
use ledger::Retention;

use crate::item::{number_attr, string_attr};
use crate::schema::{EVENTS_KEY, RETENTION_DAYS_ATTRIBUTE, RETENTION_DAYS_ENV, RETENTION_ITEM_KEY};
use crate::{is_condition_failed, store_error, Tables};

/// Whether a process may store the retention when none is stored yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfMissing {
    /// Store the wanted retention (conditionally: the first writer wins). Processes that may
    /// write the `events` table: the ingest Lambda, `serve`, the operator commands.
    Store,
    /// Use the wanted retention for now and store nothing: roles without write access to the
    /// `events` table (the aggregator and query Lambdas). In a deployment they share the
    /// ingest Lambda's `RETENTION_DAYS`, and ingest stores it before the first record exists.
    Assume,
    /// Refuse: an operator command run without `RETENTION_DAYS` against a deployment that
    /// stores none must not guess one and stamp it on what it writes.
    Refuse,
}

/// The retention `RETENTION_DAYS` asks for, validated; `None` when it is not set.
pub fn retention_from_env() -> Result<Option<Retention>, String> {
    match std::env::var(RETENTION_DAYS_ENV) {
        Err(_) => Ok(None),
        Ok(raw) => raw.parse().map(Some).map_err(|e| format!("{RETENTION_DAYS_ENV}: {e}")),
    }
}

/// The stored retention, if any (a strongly consistent read).
pub async fn stored_retention(client: &Client, tables: &Tables) -> StoreResult<Option<Retention>> {
    let out = client
        .get_item()
        .table_name(&tables.events)
        .key(EVENTS_KEY, string_attr(RETENTION_ITEM_KEY))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| store_error("read the stored retention", e))?;
    let Some(item) = out.item else { return Ok(None) };
    let days = match item.get(RETENTION_DAYS_ATTRIBUTE) {
        Some(AttributeValue::N(days)) => days,
        _ => {
            return Err(StoreError::Corrupt(format!(
                "the retention item `{RETENTION_ITEM_KEY}` has no `{RETENTION_DAYS_ATTRIBUTE}` number"
            )))
        }
    };
    days.parse::<Retention>().map(Some).map_err(|e| StoreError::Corrupt(format!("the stored retention: {e}")))
}

/// Stores `wanted` unless a retention is stored already; returns the one stored now (ours,
/// or the one another process stored first).
pub async fn store_retention_if_missing(client: &Client, tables: &Tables, wanted: Retention) -> StoreResult<Retention> {
    let result = client
        .put_item()
        .table_name(&tables.events)
        .item(EVENTS_KEY, string_attr(RETENTION_ITEM_KEY))
        .item(RETENTION_DAYS_ATTRIBUTE, number_attr(wanted.days()))
        .condition_expression("attribute_not_exists(#id)")
        .expression_attribute_names("#id", EVENTS_KEY)
        .send()
        .await;
    match result {
        Ok(_) => {
            tracing::info!(retention = %wanted, "stored the deployment's retention");
            Ok(wanted)
        }
        Err(e) if is_condition_failed(&e) => stored_retention(client, tables)
            .await?
            .ok_or_else(|| StoreError::Unavailable("the stored retention vanished while it was being read".into())),
        Err(e) => Err(store_error("store the retention", e)),
    }
}

/// Replaces the stored retention (an explicit operator step). Items already written keep
/// their expiry; only later writes use the new one.
pub async fn set_retention(client: &Client, tables: &Tables, retention: Retention) -> StoreResult<()> {
    client
        .put_item()
        .table_name(&tables.events)
        .item(EVENTS_KEY, string_attr(RETENTION_ITEM_KEY))
        .item(RETENTION_DAYS_ATTRIBUTE, number_attr(retention.days()))
        .send()
        .await
        .map_err(|e| store_error("store the retention", e))?;
    Ok(())
}

/// The retention this process uses: the stored one; when none is stored, `wanted` (or the
/// default), stored first if `if_missing` allows. A `wanted` that disagrees with the stored
/// retention is logged as a warning and ignored.
pub async fn resolve_retention(
    client: &Client,
    tables: &Tables,
    wanted: Option<Retention>,
    if_missing: IfMissing,
) -> StoreResult<Retention> {
    let stored = match stored_retention(client, tables).await? {
        Some(stored) => stored,
        None => match if_missing {
            IfMissing::Store => store_retention_if_missing(client, tables, wanted.unwrap_or_default()).await?,
            IfMissing::Assume => {
                let assumed = wanted.unwrap_or_default();
                tracing::warn!(
                    retention = %assumed,
                    "no retention is stored in this deployment yet; using {RETENTION_DAYS_ENV} (or the default) until one is"
                );
                return Ok(assumed);
            }
            IfMissing::Refuse => {
                return Err(StoreError::Rejected(format!(
                    "no retention is stored in table {} yet: start the service once (the ingest Lambda and \
                     `serve --backend dynamodb` store theirs), or run this command with {RETENTION_DAYS_ENV}=<days> to store it",
                    tables.events
                )))
            }
        },
    };
    if let Some(wanted) = wanted.filter(|&w| w != stored) {
        tracing::warn!(
            stored = %stored,
            given = %wanted,
            "{RETENTION_DAYS_ENV} disagrees with the retention stored in this deployment; using the stored one"
        );
    }
    Ok(stored)
}
