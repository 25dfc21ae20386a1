//! The write machinery: conditional appends, and the aggregator's commit (voter units
//! packed into transactions with their counter deltas, counter shards and their roll-up,
//! text and moderation), each write conditional as design §4 describes.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::time::Instant;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, CancellationReason, Put, TransactWriteItem, Update};
use ledger::ports::{Commit, StoreError, StoreResult};
use ledger::{EventId, ProjectionChange, QuestionChange, QuestionId, Record, VoterChange};

use crate::item::{
    a_shard_version, number_attr, question_key, record_to_item, shard_from_item, string_attr, voter_to_item,
    ShardState, A_ASKER, A_EVENT, A_PART, A_REC, A_TEXT, A_VER, A_VOTES, A_WHO,
};
use crate::layout::Layout;
use crate::schema::{LEDGER_SORT_KEY, TRANSACT_ITEMS_MAX, TTL_ATTRIBUTE};
use crate::{
    condition_held, invalid_request, is_condition_failed, is_throttling_code, store_error, throttle_pauses, throttled,
    DynamoStore, UNPROCESSED_RETRIES_MAX,
};

/// Why DynamoDB cancelled a transaction, from its cancellation reasons (one per item).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// A condition failed (a voter's state moved): the questions in it are planned again.
    Condition,
    /// Another transaction was in flight on one of its items: the same transaction is tried
    /// again (its conditions make a retry safe).
    Contended,
    /// DynamoDB throttled one of its items: tried again after a pause.
    Throttled,
    /// Anything else: an error.
    Other,
}

/// Classifies a cancellation by its reasons; a failed condition decides first (retrying
/// the same transaction could never succeed), then throttling, then contention.
pub fn cancellation_kind(reasons: &[CancellationReason]) -> Cancelled {
    let has = |wanted: &dyn Fn(&str) -> bool| reasons.iter().any(|r| r.code().is_some_and(wanted));
    if has(&|c| c == "ConditionalCheckFailed") {
        Cancelled::Condition
    } else if has(&is_throttling_code) {
        Cancelled::Throttled
    } else if has(&|c| c == "TransactionConflict") {
        Cancelled::Contended
    } else {
        Cancelled::Other
    }
}

impl DynamoStore {
    /// One record put if its key is free: `true` if written, `false` if a record with its id
    /// was already stored (the stored one is kept). `layout` is its event's.
    pub(crate) async fn append_one(&self, record: &Record, layout: Layout) -> StoreResult<bool> {
        let result = self
            .client
            .put_item()
            .table_name(&self.tables.ledger)
            .set_item(Some(record_to_item(record, layout.ledger_shards, self.retention)))
            .condition_expression("attribute_not_exists(#id)")
            .expression_attribute_names("#id", LEDGER_SORT_KEY)
            .send()
            .await;
        condition_held(result, "append a record")
    }

    pub(crate) fn expire(&self, event: EventId) -> u64 {
        self.retention.expire_of(event)
    }

    /// The voter writes of a change as transactions. Each unit is some voters of one question
    /// (at most [`TRANSACT_ITEMS_MAX`]` - 1`) with the one counter write carrying their delta
    /// (a counter shard, or the question item without shards); units are packed into
    /// transactions of at most [`TRANSACT_ITEMS_MAX`] items, one unit per question each (a
    /// transaction may not write an item twice). A change of up to 99 voters thus always
    /// commits in one transaction.
    pub(crate) fn pack<'c>(
        change: &'c ProjectionChange,
        by_question: &BTreeMap<QuestionId, Vec<&'c VoterChange>>,
        layouts: &HashMap<EventId, Layout>,
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
                let layout = layouts.get(&q.event).copied().unwrap_or(Layout::DEFAULT);
                current.push(VoterUnit { question: q, layout, voters: chunk.to_vec(), first: i == 0 });
                items += need;
            }
        }
        if !current.is_empty() {
            transactions.push(current);
        }
        transactions
    }

    /// One transaction of voter units: every voter's state conditional on the state the plan
    /// read, and each unit's counter delta (an `ADD` to one counter shard, unconditional, so
    /// concurrent aggregators never conflict on it), all or nothing. A failed condition is
    /// `Conflict`.
    pub(crate) async fn commit_units(&self, units: &[VoterUnit<'_>]) -> StoreResult<Commit> {
        let shards = self.tables.counter_shards;
        let mut items = Vec::with_capacity(TRANSACT_ITEMS_MAX);
        for unit in units {
            let q = unit.question;
            let expire = self.expire(q.event);
            for v in &unit.voters {
                items.push(voter_put(&self.tables.voters, unit.layout, v, expire)?);
            }
            let delta: i64 = unit.voters.iter().map(|v| v.votes_delta).sum();
            if shards > 0 {
                // Round-robin within this store, from a random start.
                let k = self.next_shard.fetch_add(1, Ordering::Relaxed) % shards;
                items.push(self.shard_add(unit.layout, q, k, delta)?);
            } else {
                let update = question_update(&self.tables.questions, q, delta, expire, unit.first)
                    .build()
                    .map_err(invalid_request)?;
                items.push(TransactWriteItem::builder().update(update).build());
            }
        }
        self.transact(items).await
    }

    /// Counter shard `shard` of a question: `delta` added to its part and its version bumped
    /// (versions only grow, so a roll-up can tell fresher reads), created if missing.
    pub(crate) fn shard_add(
        &self,
        layout: Layout,
        q: &QuestionChange,
        shard: u32,
        delta: i64,
    ) -> StoreResult<TransactWriteItem> {
        let update = Update::builder()
            .table_name(&self.tables.voters)
            .set_key(Some(layout.counter_shard_key(q.question, shard)))
            .update_expression("SET #exp = :exp ADD #part :delta, #ver :one")
            .expression_attribute_names("#exp", TTL_ATTRIBUTE)
            .expression_attribute_names("#part", A_PART)
            .expression_attribute_names("#ver", A_VER)
            .expression_attribute_values(":exp", number_attr(self.expire(q.event)))
            .expression_attribute_values(":delta", number_attr(delta))
            .expression_attribute_values(":one", number_attr(1))
            .build()
            .map_err(invalid_request)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Every counter shard of a question, as stored now (strongly consistent).
    pub(crate) async fn read_shards(&self, layout: Layout, question: QuestionId) -> StoreResult<Vec<ShardState>> {
        let keys = (0..self.tables.counter_shards).map(|k| layout.counter_shard_key(question, k)).collect();
        let items = self.batch_get(&self.tables.voters, keys, true, None, &[]).await?;
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
    pub(crate) async fn roll_up(&self, layout: Layout, q: &QuestionChange) -> StoreResult<()> {
        let mut previous: Option<Vec<ShardState>> = None;
        for _ in 0..=UNPROCESSED_RETRIES_MAX {
            let shards = self.read_shards(layout, q.question).await?;
            if shards.iter().all(|s| s.ver == 0) || previous.as_ref() == Some(&shards) {
                // Nothing to roll up, or the stored count already reflects this very read.
                return Ok(());
            }
            let sum: i64 = shards.iter().map(|s| s.part).sum();
            if sum < 0 {
                return Err(StoreError::Corrupt(format!("counter shards of {} sum to {sum}", q.question)));
            }
            let mut set = vec!["#votes = :sum".to_owned(), "#eid = :eid".to_owned(), "#exp = :exp".to_owned()];
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
                .expression_attribute_values(":sum", number_attr(sum))
                .expression_attribute_values(":eid", string_attr(q.event))
                .expression_attribute_values(":exp", number_attr(self.expire(q.event)));
            for (k, shard) in shards.iter().enumerate() {
                if shard.ver == 0 {
                    continue;
                }
                let (name, value) = (format!("#sv{k}"), format!(":sv{k}"));
                update = update
                    .expression_attribute_names(&name, a_shard_version(k as u32))
                    .expression_attribute_values(&value, number_attr(shard.ver));
                set.push(format!("{name} = {value}"));
                at_least.push(format!("(attribute_not_exists({name}) OR {name} <= {value})"));
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
        Err(StoreError::Unavailable(format!("the vote count of {} kept racing other roll-ups", q.question)))
    }

    /// Runs one transaction; a failed condition is `Conflict`. A transaction DynamoDB
    /// throttled, or cancelled because another one was in flight on one of its items, is
    /// tried again with backoff for the store's throttle budget; then a throttled one is
    /// the error [`throttled`] (retryable, never the records' fault) and a contended one is
    /// `Conflict` (its questions are planned again).
    pub(crate) async fn transact(&self, items: Vec<TransactWriteItem>) -> StoreResult<Commit> {
        let started = Instant::now();
        let mut pauses = throttle_pauses();
        loop {
            let error = match self.client.transact_write_items().set_transact_items(Some(items.clone())).send().await {
                Ok(_) => return Ok(Commit::Applied),
                Err(e) => e,
            };
            let kind = match error.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(c)) => {
                    cancellation_kind(c.cancellation_reasons())
                }
                Some(other) if other.meta().code().is_some_and(is_throttling_code) => Cancelled::Throttled,
                _ => Cancelled::Other,
            };
            match kind {
                Cancelled::Condition => {
                    self.conditions_failed.fetch_add(1, Ordering::Relaxed);
                    return Ok(Commit::Conflict);
                }
                Cancelled::Other => return Err(store_error("commit voters", error)),
                Cancelled::Contended | Cancelled::Throttled => {
                    let pause = pauses.next().unwrap_or(self.throttle_budget);
                    if started.elapsed() + pause > self.throttle_budget {
                        tracing::warn!(?kind, budget = ?self.throttle_budget, "transaction still throttled or contended; giving up");
                        return match kind {
                            Cancelled::Contended => Ok(Commit::Conflict),
                            _ => Err(throttled(format!(
                                "commit voters: still throttled after {:?}: {}",
                                self.throttle_budget,
                                aws_sdk_dynamodb::error::DisplayErrorContext(&error)
                            ))),
                        };
                    }
                    tracing::debug!(?kind, ?pause, "transaction throttled or contended; trying it again");
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }

    /// Fills a question's text (creating the question if missing) when no voter changed.
    pub(crate) async fn commit_asked_only(&self, q: &QuestionChange) -> StoreResult<()> {
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

    /// Sets one of a question's stamped values (a moderation flag, the written answer) if
    /// `at` is newer than the stamp stored beside it (last writer wins). `what` names the
    /// write in an error.
    pub(crate) async fn commit_stamped(
        &self,
        q: &QuestionChange,
        (value_attr, at_attr): (&str, &str),
        value: AttributeValue,
        at: ledger::RecordId,
        what: &str,
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
            .expression_attribute_values(":v", value)
            .expression_attribute_values(":at", string_attr(at))
            .expression_attribute_values(":eid", string_attr(q.event))
            .expression_attribute_values(":exp", number_attr(self.expire(q.event)))
            .expression_attribute_values(":zero", number_attr(0))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // A newer stamp is already stored: this older record loses, as it should.
            Err(e) if is_condition_failed(&e) => Ok(()),
            Err(e) => Err(store_error(what, e)),
        }
    }
}

/// Some voters of one question, committed in one transaction with their counter delta;
/// `first` is the question's first unit (without shards, it fills the text).
pub(crate) struct VoterUnit<'c> {
    pub(crate) question: &'c QuestionChange,
    /// The layout of the question's event.
    pub(crate) layout: Layout,
    pub(crate) voters: Vec<&'c VoterChange>,
    pub(crate) first: bool,
}

/// A voter's new state, written only if the stored state is still the one the plan read.
pub(crate) fn voter_put(table: &str, layout: Layout, v: &VoterChange, expire: u64) -> StoreResult<TransactWriteItem> {
    let mut put = Put::builder()
        .table_name(table)
        .set_item(Some(voter_to_item(layout, v.question, v.voter, v.new, expire)))
        .expression_attribute_names("#rec", A_REC);
    put = match v.expected {
        None => put.condition_expression("attribute_not_exists(#rec)"),
        Some(rec) => {
            put.condition_expression("#rec = :expected").expression_attribute_values(":expected", string_attr(rec))
        }
    };
    let put = put.build().map_err(invalid_request)?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// The question part of a commit: upsert with the event and expiry, add the delta, and fill
/// text/who if absent. Every question item thus carries `votes`, so it is in `top`.
pub(crate) fn question_update(
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
        .expression_attribute_values(":eid", string_attr(q.event))
        .expression_attribute_values(":exp", number_attr(expire))
        .expression_attribute_values(":delta", number_attr(delta));
    if let (true, Some(asked)) = (fill_asked, &q.asked) {
        set.push("#text = if_not_exists(#text, :text)");
        set.push("#asker = if_not_exists(#asker, :asker)");
        update = update
            .expression_attribute_names("#text", A_TEXT)
            .expression_attribute_values(":text", string_attr(&asked.text))
            .expression_attribute_names("#asker", A_ASKER)
            .expression_attribute_values(":asker", string_attr(asked.asker));
        if let Some(who) = &asked.who {
            set.push("#who = if_not_exists(#who, :who)");
            update =
                update.expression_attribute_names("#who", A_WHO).expression_attribute_values(":who", string_attr(who));
        }
    }
    update.update_expression(format!("SET {} ADD #votes :delta", set.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::is_throttled;

    fn reasons(codes: &[&str]) -> Vec<CancellationReason> {
        codes.iter().map(|c| CancellationReason::builder().code(*c).build()).collect()
    }

    #[test]
    fn a_cancelled_transaction_is_classified_by_its_reasons() {
        assert_eq!(cancellation_kind(&reasons(&["None", "ThrottlingError"])), Cancelled::Throttled);
        assert_eq!(cancellation_kind(&reasons(&["ProvisionedThroughputExceeded"])), Cancelled::Throttled);
        assert_eq!(cancellation_kind(&reasons(&["None", "TransactionConflict"])), Cancelled::Contended);
        // A failed condition can never succeed by retrying the same transaction: it decides.
        assert_eq!(cancellation_kind(&reasons(&["ThrottlingError", "ConditionalCheckFailed"])), Cancelled::Condition);
        assert_eq!(cancellation_kind(&reasons(&["ValidationError"])), Cancelled::Other);
    }

    #[test]
    fn throttling_is_a_retryable_error_of_its_own() {
        let error = throttled("commit voters: still throttled");
        assert!(matches!(error, StoreError::Unavailable(_)), "retryable: {error:?}");
        assert!(is_throttled(&error));
        assert!(!is_throttled(&StoreError::Unavailable("connection reset".into())));
        assert!(!is_throttled(&StoreError::Corrupt("throttled: no".into())));
        for code in ["ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"] {
            assert!(is_throttling_code(code), "{code}");
        }
        assert!(!is_throttling_code("ConditionalCheckFailedException"));
    }
}
