//! The write machinery: conditional appends, and the aggregator's commit (voter units
//! packed into transactions with their counter deltas, counter shards and their roll-up,
//! text and moderation), each write conditional as design §4 describes.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use ledger::ports::{Commit, StoreError, StoreResult};
use ledger::{EventId, ProjectionChange, QuestionChange, QuestionId, Record, VoterChange};

use crate::item::{
    a_shard_version, number_attr, question_key, record_to_item, shard_from_item, shard_key, shard_to_item, string_attr,
    voter_to_item, ShardState, A_ASKER, A_EVENT, A_REC, A_TEXT, A_VER, A_VOTES, A_WHO,
};
use crate::schema::{LEDGER_SORT_KEY, TRANSACT_ITEMS_MAX, TTL_ATTRIBUTE};
use crate::{condition_held, invalid_request, is_condition_failed, store_error, DynamoStore, UNPROCESSED_RETRIES_MAX};

impl DynamoStore {
    /// One record put if its key is free: `true` if written, `false` if a record with its id
    /// was already stored (the stored one is kept).
    pub(crate) async fn append_one(&self, record: &Record) -> StoreResult<bool> {
        let result = self
            .client
            .put_item()
            .table_name(&self.tables.ledger)
            .set_item(Some(record_to_item(record, self.tables.ledger_shards, self.retention)))
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
    pub(crate) async fn commit_units(&self, units: &[VoterUnit<'_>]) -> StoreResult<Commit> {
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
                    .map_err(invalid_request)?;
                items.push(TransactWriteItem::builder().update(update).build());
            }
        }
        self.transact(items).await
    }

    /// Counter shard `shard` of a question with `delta` added, written only if it is still at
    /// the version `was` read (versions only grow, so a roll-up can tell fresher reads).
    pub(crate) fn shard_put(
        &self,
        q: &QuestionChange,
        shard: u32,
        was: ShardState,
        delta: i64,
    ) -> StoreResult<TransactWriteItem> {
        let next = ShardState { part: was.part + delta, ver: was.ver + 1 };
        let mut put = Put::builder()
            .table_name(&self.tables.voters)
            .set_item(Some(shard_to_item(q.question, shard, next, self.expire(q.event))))
            .expression_attribute_names("#ver", A_VER);
        put = if was.ver == 0 {
            put.condition_expression("attribute_not_exists(#ver)")
        } else {
            put.condition_expression("#ver = :ver").expression_attribute_values(":ver", number_attr(was.ver))
        };
        let put = put.build().map_err(invalid_request)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Every counter shard of a question, as stored now (strongly consistent).
    pub(crate) async fn read_shards(&self, question: QuestionId) -> StoreResult<Vec<ShardState>> {
        let keys = (0..self.tables.counter_shards).map(|k| shard_key(question, k)).collect();
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
    pub(crate) async fn roll_up(&self, q: &QuestionChange) -> StoreResult<()> {
        let mut previous: Option<Vec<ShardState>> = None;
        for _ in 0..=UNPROCESSED_RETRIES_MAX {
            let shards = self.read_shards(q.question).await?;
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

    /// Runs one transaction; a failed condition (or a conflicting transaction) is `Conflict`.
    pub(crate) async fn transact(&self, items: Vec<TransactWriteItem>) -> StoreResult<Commit> {
        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
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

    /// Sets `answered` or `hidden` if `stamp` is newer than what is stored (last writer wins).
    pub(crate) async fn commit_moderation(
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
            .expression_attribute_values(":at", string_attr(stamp.at))
            .expression_attribute_values(":eid", string_attr(q.event))
            .expression_attribute_values(":exp", number_attr(self.expire(q.event)))
            .expression_attribute_values(":zero", number_attr(0))
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
pub(crate) struct VoterUnit<'c> {
    pub(crate) question: &'c QuestionChange,
    pub(crate) voters: Vec<&'c VoterChange>,
    pub(crate) first: bool,
}

/// A voter's new state, written only if the stored state is still the one the plan read.
pub(crate) fn voter_put(table: &str, v: &VoterChange, expire: u64) -> StoreResult<TransactWriteItem> {
    let mut put = Put::builder()
        .table_name(table)
        .set_item(Some(voter_to_item(v.question, v.voter, v.new, expire)))
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
