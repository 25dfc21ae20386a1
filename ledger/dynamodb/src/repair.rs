//! `replay --repair` beside a running aggregator: questions rewritten to the fold of their
//! event's ledger, each write conditional on the state the repair read, so a commit the
//! aggregator makes meanwhile is never overwritten.
//!
//! The port's `replace` writes a fold computed earlier, unconditionally: whatever the
//! aggregator commits between that fold's scan and the writes is lost, and its queue messages
//! are already deleted. [`DynamoStore::repair`] instead, for each round:
//!
//! 1. reads each question's stored state (item, voter states, counter shards), strongly
//!    consistent;
//! 2. then reads the event's ledger, strongly consistent, and folds it. Every record folded
//!    into the state read in step 1 was appended before the aggregator committed it, so it is
//!    in this read too: the fold is never older than the stored state;
//! 3. writes each voter state the fold changes, conditional on the stored record id read in
//!    step 1, then in one transaction the counter shards (conditional on their versions) and
//!    the question item (conditional on its count, shard versions, moderation stamps and text
//!    as read).
//!
//! A failed condition means the aggregator committed to that question after step 1: the
//! question is read and folded again in the next round. Records appended after step 2 and
//! folded after step 3 are applied by the aggregator on top of the repaired state, as on any
//! other: their voters' states tell it what is already counted. A repair that dies between
//! the voter writes and the transaction leaves that question's count off until the next
//! repair (`replay` reports it).

use std::collections::{BTreeSet, HashMap};
use std::future::Future;

use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};
use futures::StreamExt;
use ledger::ports::{Commit, StoreError, StoreResult};
use ledger::{EventId, Projection, QuestionId, QuestionState, VoterId, VoterState};

use crate::item::*;
use crate::layout::Layout;
use crate::schema::*;
use crate::{condition_held, invalid_request, store_error, DynamoStore, APPEND_PUTS_IN_FLIGHT_MAX};

/// How many rounds a repair reads, folds and writes the questions a concurrent commit changed
/// before it gives up (the operator runs it again).
pub const REPAIR_ROUNDS_MAX: u32 = 8;

/// What a repair did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Repaired {
    /// Questions rewritten to the fold.
    pub questions: usize,
    /// Rounds it took: 1 unless the aggregator committed to a question being repaired.
    pub rounds: u32,
}

/// One question as stored, read before the ledger.
struct Stored {
    item: Option<Item>,
    voters: HashMap<VoterId, VoterState>,
    shards: HashMap<u32, ShardState>,
}

impl DynamoStore {
    /// Makes `questions` of `event` exactly the fold of the event's ledger, safely beside a
    /// running aggregator (see the module's documentation).
    pub async fn repair(&self, event: EventId, questions: &[QuestionId]) -> StoreResult<Repaired> {
        self.repair_observed(event, questions, |_| async {}).await
    }

    /// [`repair`](Self::repair), calling `after_reading(round)` between a round's reads and
    /// its writes (tests commit a competing change there).
    #[doc(hidden)]
    pub async fn repair_observed<F, Fut>(
        &self,
        event: EventId,
        questions: &[QuestionId],
        mut after_reading: F,
    ) -> StoreResult<Repaired>
    where
        F: FnMut(u32) -> Fut + Send,
        Fut: Future<Output = ()> + Send,
    {
        let mut pending: BTreeSet<QuestionId> = questions.iter().copied().collect();
        let mut repaired = 0;
        let layout = self.layout_of(event).await?;
        for round in 1..=REPAIR_ROUNDS_MAX {
            let mut stored = HashMap::with_capacity(pending.len());
            for &q in &pending {
                stored.insert(q, self.stored_question(layout, q).await?);
            }
            let fold = self.fold_event_consistently(event).await?;
            let mut folded_voters: HashMap<QuestionId, Vec<(VoterId, VoterState)>> = HashMap::new();
            for ((q, v), state) in fold.voters() {
                if pending.contains(&q) {
                    folded_voters.entry(q).or_default().push((v, state));
                }
            }
            after_reading(round).await;
            let mut changed = BTreeSet::new();
            for (&q, stored) in &stored {
                let voters = folded_voters.get(&q).map(Vec::as_slice).unwrap_or(&[]);
                match self.rewrite_question(event, layout, q, stored, fold.question(q), voters).await? {
                    Commit::Applied => repaired += 1,
                    Commit::Conflict => {
                        changed.insert(q);
                    }
                }
            }
            if changed.is_empty() {
                return Ok(Repaired { questions: repaired, rounds: round });
            }
            tracing::info!(%event, questions = changed.len(), round, "the aggregator committed to questions under repair; reading them again");
            pending = changed;
        }
        Err(StoreError::Unavailable(format!(
            "{} questions of event {event} kept changing during the repair ({REPAIR_ROUNDS_MAX} rounds); run it again",
            pending.len()
        )))
    }

    async fn stored_question(&self, layout: Layout, question: QuestionId) -> StoreResult<Stored> {
        let item = self
            .client
            .get_item()
            .table_name(&self.tables.questions)
            .set_key(Some(question_key(question)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("read a question", e))?
            .item;
        let mut voters = HashMap::new();
        let mut shards = HashMap::new();
        for item in self.voter_items_of(layout, question).await? {
            match shard_from_item(&item)? {
                Some((_, k, state)) => {
                    shards.insert(k, state);
                }
                None => {
                    let ((_, voter), state) = voter_from_item(&item)?;
                    voters.insert(voter, state);
                }
            }
        }
        Ok(Stored { item, voters, shards })
    }

    async fn fold_event_consistently(&self, event: EventId) -> StoreResult<Projection> {
        let mut fold = Projection::new();
        // Every shard any layout may use (see `layout.rs`).
        for shard in 0..self.ledger_read_shards() {
            let mut start = None;
            loop {
                let (records, next) = self.query_shard(event, shard, start, crate::SCAN_PAGE_LIMIT, true).await?;
                for r in &records {
                    fold.apply(r);
                }
                match next {
                    Some(key) => start = Some(key),
                    None => break,
                }
            }
        }
        Ok(fold)
    }

    /// One question to its fold, conditional on `stored`: `Conflict` when a condition failed.
    async fn rewrite_question(
        &self,
        event: EventId,
        layout: Layout,
        question: QuestionId,
        stored: &Stored,
        folded: Option<&QuestionState>,
        folded_voters: &[(VoterId, VoterState)],
    ) -> StoreResult<Commit> {
        let expire = self.expire(event);
        // The voter states, each on condition that it is still the one read.
        let mut writes = Vec::new();
        for &(voter, state) in folded_voters {
            let was = stored.voters.get(&voter).copied();
            if was != Some(state) {
                writes.push(self.put_voter(layout, question, voter, state, was, expire));
            }
        }
        let kept: BTreeSet<VoterId> = folded_voters.iter().map(|&(v, _)| v).collect();
        let mut deletes = Vec::new();
        for (&voter, &was) in &stored.voters {
            if !kept.contains(&voter) {
                deletes.push(self.delete_voter(layout, question, voter, was));
            }
        }
        let mut held = true;
        let mut puts = futures::stream::iter(writes).buffer_unordered(APPEND_PUTS_IN_FLIGHT_MAX);
        while let Some(result) = puts.next().await {
            held &= result?;
        }
        let mut dels = futures::stream::iter(deletes).buffer_unordered(APPEND_PUTS_IN_FLIGHT_MAX);
        while let Some(result) = dels.next().await {
            held &= result?;
        }
        if !held {
            return Ok(Commit::Conflict);
        }

        // The count: its shards and the question item, together, each as read.
        let shards = self.tables.counter_shards;
        let mut items = Vec::new();
        match folded {
            Some(f) => {
                let mut item = question_to_item(f, self.retention);
                for k in 0..shards {
                    let was = stored.shards.get(&k).copied();
                    let next = ShardState {
                        part: if k == 0 { f.standing.votes as i64 } else { 0 },
                        ver: was.map_or(0, |s| s.ver) + 1,
                    };
                    item.insert(a_shard_version(k), number_attr(next.ver));
                    items.push(put_if(
                        &self.tables.voters,
                        shard_to_item(layout, question, k, next, expire),
                        shard_as_read(was),
                    )?);
                }
                for (&k, &was) in stored.shards.iter().filter(|(&k, _)| k >= shards) {
                    items.push(delete_if(
                        &self.tables.voters,
                        layout.counter_shard_key(question, k),
                        shard_as_read(Some(was)),
                    )?);
                }
                items.push(put_if(
                    &self.tables.questions,
                    item,
                    question_as_read(stored.item.as_ref(), &stored.shards),
                )?);
            }
            None => {
                for (&k, &was) in &stored.shards {
                    items.push(delete_if(
                        &self.tables.voters,
                        layout.counter_shard_key(question, k),
                        shard_as_read(Some(was)),
                    )?);
                }
                if stored.item.is_some() {
                    items.push(delete_if(
                        &self.tables.questions,
                        question_key(question),
                        question_as_read(stored.item.as_ref(), &stored.shards),
                    )?);
                }
            }
        }
        if items.is_empty() {
            return Ok(Commit::Applied);
        }
        self.transact(items).await
    }

    /// A voter's state, if the stored one is still `was`: `false` if it was not.
    async fn put_voter(
        &self,
        layout: Layout,
        question: QuestionId,
        voter: VoterId,
        state: VoterState,
        was: Option<VoterState>,
        expire: u64,
    ) -> StoreResult<bool> {
        let (condition, names, values) = voter_as_read(was);
        let result = self
            .client
            .put_item()
            .table_name(&self.tables.voters)
            .set_item(Some(voter_to_item(layout, question, voter, state, expire)))
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(values)
            .send()
            .await;
        condition_held(result, "repair a voter")
    }

    async fn delete_voter(
        &self,
        layout: Layout,
        question: QuestionId,
        voter: VoterId,
        was: VoterState,
    ) -> StoreResult<bool> {
        let (condition, names, values) = voter_as_read(Some(was));
        let result = self
            .client
            .delete_item()
            .table_name(&self.tables.voters)
            .set_key(Some(layout.voter_key(question, voter)))
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(values)
            .send()
            .await;
        condition_held(result, "repair a voter")
    }
}

/// A condition expression with its names and values (`None` when it uses no value).
type Condition = (String, HashMap<String, String>, Option<HashMap<String, AttributeValue>>);

fn voter_as_read(was: Option<VoterState>) -> Condition {
    let names = HashMap::from([("#rec".to_owned(), A_REC.to_owned())]);
    match was {
        None => ("attribute_not_exists(#rec)".to_owned(), names, None),
        Some(state) => {
            ("#rec = :rec".to_owned(), names, Some(HashMap::from([(":rec".to_owned(), string_attr(state.rec))])))
        }
    }
}

fn shard_as_read(was: Option<ShardState>) -> Condition {
    let names = HashMap::from([("#ver".to_owned(), A_VER.to_owned())]);
    match was {
        None => ("attribute_not_exists(#ver)".to_owned(), names, None),
        Some(state) => {
            ("#ver = :ver".to_owned(), names, Some(HashMap::from([(":ver".to_owned(), number_attr(state.ver))])))
        }
    }
}

/// The question item is as read: every attribute a commit changes (the count and the shard
/// versions it was rolled up from, the moderation stamps, the text) still has the value read,
/// or is still absent.
fn question_as_read(item: Option<&Item>, shards: &HashMap<u32, ShardState>) -> Condition {
    let mut names = HashMap::from([("#id".to_owned(), QUESTIONS_KEY.to_owned())]);
    let Some(item) = item else {
        return ("attribute_not_exists(#id)".to_owned(), names, None);
    };
    let mut attributes: Vec<String> =
        [A_VOTES, A_ANSWERED_AT, A_HIDDEN_AT, A_TEXT].iter().map(|a| a.to_string()).collect();
    let stamped = item.keys().filter(|k| k.starts_with("sv")).cloned();
    attributes.extend(stamped.chain(shards.keys().map(|&k| a_shard_version(k))));
    attributes.sort();
    attributes.dedup();
    let mut terms = vec!["attribute_exists(#id)".to_owned()];
    let mut values = HashMap::new();
    for (i, attribute) in attributes.into_iter().enumerate() {
        let (name, value) = (format!("#a{i}"), format!(":a{i}"));
        match item.get(&attribute) {
            Some(v) => {
                terms.push(format!("{name} = {value}"));
                values.insert(value, v.clone());
            }
            None => terms.push(format!("attribute_not_exists({name})")),
        }
        names.insert(name, attribute);
    }
    (terms.join(" AND "), names, (!values.is_empty()).then_some(values))
}

fn put_if(table: &str, item: Item, (condition, names, values): Condition) -> StoreResult<TransactWriteItem> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(condition)
        .set_expression_attribute_names(Some(names))
        .set_expression_attribute_values(values)
        .build()
        .map_err(invalid_request)?;
    Ok(TransactWriteItem::builder().put(put).build())
}

fn delete_if(table: &str, key: Item, (condition, names, values): Condition) -> StoreResult<TransactWriteItem> {
    let delete = Delete::builder()
        .table_name(table)
        .set_key(Some(key))
        .condition_expression(condition)
        .set_expression_attribute_names(Some(names))
        .set_expression_attribute_values(values)
        .build()
        .map_err(invalid_request)?;
    Ok(TransactWriteItem::builder().delete(delete).build())
}
