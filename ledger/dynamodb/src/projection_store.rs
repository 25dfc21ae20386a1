//! The projection ports: the aggregator's side (voter states, the conditional commit,
//! questions for replay, the blind replacement) and the read side (`top`, questions, texts).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, PutRequest, WriteRequest};
use ledger::ports::{
    Commit, ProjectionReader, ProjectionStore, QuestionText, Replacement, StoreError, StoreResult, VoterView,
};
use ledger::{
    BatchPlan, EventId, ProjectionChange, QuestionChange, QuestionId, QuestionStanding, QuestionState, VoterChange,
    VoterId, VoterStates,
};

use crate::item::{
    a_shard_version, number_attr, question_from_item, question_id_of, question_key, question_to_item, shard_from_item,
    shard_to_item, standing_from_item, text_from_item, voter_from_item, voter_to_item, Item, ShardState, A_ANSWERED,
    A_ANSWERED_AT, A_ASKER, A_EVENT, A_HIDDEN, A_HIDDEN_AT, A_TEXT, A_WHO,
};
use crate::item::{
    is_event_state_item, reply_from_item, string_attr, A_APPROVED, A_APPROVED_AT, A_REPLY, A_REPLY_AT, A_SPOTLIGHT,
    A_SPOTLIGHT_AT,
};
use crate::layout::Layout;
use crate::schema::{QUESTIONS_KEY, VOTERS_PARTITION_KEY, VOTERS_SORT_KEY};
use crate::{invalid_request, store_error, DynamoStore};

/// How many times the questions of a cancelled voter transaction are read and planned again
/// before the batch gives up (the queue handler then retries its questions one by one).
pub const QUESTION_REPLANS_MAX: u32 = 8;
/// First pause before planning conflicted questions again; doubles each time, jittered.
const REPLAN_BACKOFF_MS_FIRST: u64 = 2;

/// What committing a change's voter transactions did.
struct VotersCommitted {
    /// Questions whose transactions were all applied.
    written: BTreeSet<QuestionId>,
    /// Questions with a transaction whose condition failed (nothing of that transaction
    /// was written; earlier transactions of the same question may have been).
    conflicted: BTreeSet<QuestionId>,
}

#[async_trait]
impl ProjectionStore for DynamoStore {
    /// Without the events of the questions (the port does not say them), each voter is
    /// looked up under both layouts' keys; at most one holds a state (an event has one
    /// layout). The aggregator reads through [`resolve_and_commit`](Self::resolve_and_commit),
    /// which knows the events and reads one key per voter.
    async fn voters(&self, keys: &[(QuestionId, VoterId)]) -> StoreResult<VoterStates> {
        let mut layouts = vec![Layout::LEGACY, self.new_event_layout()];
        layouts.dedup_by_key(|l| l.voter_partitions);
        let keys = keys.iter().flat_map(|&(q, v)| layouts.iter().map(move |layout| layout.voter_key(q, v))).collect();
        self.read_voter_items(keys).await
    }

    async fn commit(&self, change: &ProjectionChange, cursor: Option<u64>) -> StoreResult<Commit> {
        if cursor.is_some() {
            return Err(StoreError::Rejected(
                "the DynamoDB projection keeps no feed cursor (the queue tracks delivery)".to_owned(),
            ));
        }
        let layouts = self.layouts_of(change.questions.iter().map(|q| q.event)).await?;
        let committed = self.commit_voters(change, &layouts, true).await?;
        if !committed.conflicted.is_empty() {
            return Ok(Commit::Conflict);
        }
        self.commit_questions(change.questions.iter(), &layouts, &committed.written).await?;
        self.commit_event_states(&change.events).await?;
        Ok(Commit::Applied)
    }

    /// The aggregator's read, resolve and conditional commit, with the events known: each
    /// voter is read under its event's layout only, and a conflict (another aggregator moved
    /// a voter of the batch) plans again only the questions whose transaction was cancelled,
    /// reading only their voters; the other questions' writes stand.
    async fn resolve_and_commit(&self, plan: &BatchPlan, cursor: Option<u64>) -> StoreResult<Option<ProjectionChange>> {
        if cursor.is_some() {
            return Err(StoreError::Rejected(
                "the DynamoDB projection keeps no feed cursor (the queue tracks delivery)".to_owned(),
            ));
        }
        self.resolve_and_commit_observed(plan, |_, _| async {}).await.map(Some)
    }

    async fn cursor(&self) -> StoreResult<u64> {
        Ok(0)
    }

    async fn event_states(&self, event: Option<EventId>) -> StoreResult<Vec<ledger::EventState>> {
        self.read_event_states(event).await
    }

    async fn questions(&self, event: Option<EventId>) -> StoreResult<Vec<QuestionState>> {
        let items = match event {
            Some(event) => {
                let keys = self
                    .top_items(event)
                    .await?
                    .iter()
                    .map(|i| standing_from_item(i).map(|c| question_key(c.id)))
                    .collect::<StoreResult<Vec<_>>>()?;
                self.batch_get(&self.tables.questions, keys, true, None, &[]).await?
            }
            None => self.scan_all(&self.tables.questions).await?,
        };
        // The events' own states share the table (host_tools.rs); they are not questions.
        items.iter().filter(|item| !is_event_state_item(item)).map(question_from_item).collect()
    }

    /// Writes the given fold over the projection unconditionally (new state first, then the
    /// leftovers deleted). Safe only while no aggregator commits: on a live stack whatever it
    /// commits between the caller's read of the ledger and these writes is overwritten.
    /// `replay --repair` uses [`DynamoStore::repair`] instead (`repair.rs`).
    async fn replace(&self, replacement: &Replacement<'_>) -> StoreResult<()> {
        let (event, questions, voters) = (replacement.event(), replacement.questions(), replacement.voters());
        let events: HashMap<QuestionId, EventId> =
            questions.iter().map(|q| (q.standing.id, q.standing.event)).collect();
        let layouts = self.layouts_of(events.values().copied().chain(event)).await?;
        let layout_of = |e: &EventId| layouts.get(e).copied().unwrap_or_else(|| self.new_event_layout());
        // What is stored now in scope, to delete what the new projection lacks.
        let old_questions = self.questions(event).await?;
        let old_voter_items = match event {
            None => self.scan_all(&self.tables.voters).await?,
            Some(event) => {
                let mut ids: Vec<QuestionId> = old_questions.iter().map(|q| q.standing.id).collect();
                ids.extend(events.keys().copied());
                ids.sort();
                ids.dedup();
                let mut items = Vec::new();
                for id in ids {
                    items.extend(self.voter_items_of(layout_of(&event), id).await?);
                }
                items
            }
        };
        // Counter shards stored now, to restart each kept question's shards from its
        // replayed count with versions above every version a roll-up may have seen.
        let mut old_shards: HashMap<(QuestionId, u32), ShardState> = HashMap::new();
        let mut old_keys: Vec<(String, Item)> = Vec::with_capacity(old_voter_items.len());
        for item in &old_voter_items {
            if let Some((q, k, state)) = shard_from_item(item)? {
                old_shards.insert((q, k), state);
            } else {
                voter_from_item(item)?;
            }
            old_keys.push((key_signature(item), key_of(item)));
        }
        let mut kept: HashSet<String> = HashSet::with_capacity(voters.len());
        let mut puts = Vec::with_capacity(questions.len());
        let mut shard_puts = Vec::new();
        for q in questions {
            let mut item = question_to_item(q, self.retention);
            let expire = self.expire(q.standing.event);
            let layout = layout_of(&q.standing.event);
            for k in 0..self.tables.counter_shards {
                let ver = old_shards.get(&(q.standing.id, k)).map_or(0, |s| s.ver) + 1;
                let part = if k == 0 { q.standing.votes as i64 } else { 0 };
                item.insert(a_shard_version(k), number_attr(ver));
                let shard = shard_to_item(layout, q.standing.id, k, ShardState { part, ver }, expire);
                kept.insert(key_signature(&shard));
                let put = PutRequest::builder().set_item(Some(shard)).build();
                shard_puts.push(WriteRequest::builder().put_request(put.map_err(invalid_request)?).build());
            }
            let put = PutRequest::builder().set_item(Some(item)).build();
            puts.push(WriteRequest::builder().put_request(put.map_err(invalid_request)?).build());
        }
        let mut voter_puts = Vec::with_capacity(voters.len());
        for &((question, voter), state) in voters {
            let Some(event) = events.get(&question) else {
                return Err(StoreError::Rejected(format!(
                    "voter state for question {question}, which is not replaced"
                )));
            };
            let item = voter_to_item(layout_of(event), question, voter, state, self.expire(*event));
            kept.insert(key_signature(&item));
            let put = PutRequest::builder().set_item(Some(item)).build();
            voter_puts.push(WriteRequest::builder().put_request(put.map_err(invalid_request)?).build());
        }
        // Write the new state first, then delete leftovers: readers never see an empty list.
        self.batch_write(&self.tables.voters, shard_puts).await?;
        self.batch_write(&self.tables.questions, puts).await?;
        self.batch_write(&self.tables.voters, voter_puts).await?;
        let mut deletes = Vec::new();
        for q in old_questions.iter().filter(|q| !events.contains_key(&q.standing.id)) {
            let del = DeleteRequest::builder().set_key(Some(question_key(q.standing.id))).build();
            deletes.push(WriteRequest::builder().delete_request(del.map_err(invalid_request)?).build());
        }
        self.batch_write(&self.tables.questions, deletes).await?;
        // The events' own states are joined in (their rules only ever grow them), not
        // rewritten: a replacement never loses a revocation.
        self.commit_event_states(replacement.events()).await?;
        let mut deletes = Vec::new();
        for (signature, key) in old_keys {
            if !kept.contains(&signature) {
                let del = DeleteRequest::builder().set_key(Some(key)).build();
                deletes.push(WriteRequest::builder().delete_request(del.map_err(invalid_request)?).build());
            }
        }
        self.batch_write(&self.tables.voters, deletes).await
    }
}

/// A `voters` item's key.
fn key_of(item: &Item) -> Item {
    [VOTERS_PARTITION_KEY, VOTERS_SORT_KEY]
        .iter()
        .filter_map(|&name| item.get(name).map(|v| (name.to_owned(), v.clone())))
        .collect()
}

/// A `voters` item's key as one string, to compare keys.
fn key_signature(item: &Item) -> String {
    let part = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).map_or("", String::as_str);
    format!("{}\n{}", part(VOTERS_PARTITION_KEY), part(VOTERS_SORT_KEY))
}

/// The part of `change` about `questions`.
fn only(change: &ProjectionChange, questions: &BTreeSet<QuestionId>) -> ProjectionChange {
    let mut part = change.clone();
    part.questions.retain(|q| questions.contains(&q.question));
    part.voters.retain(|v| questions.contains(&v.question));
    part
}

impl DynamoStore {
    /// [`ProjectionStore::resolve_and_commit`], calling `after_reading(round, keys)` after
    /// each read of voter states, before the commit that follows it (round 0 reads the whole
    /// plan's voters; a later round only those of the questions that conflicted; `keys` is how
    /// many were read). Tests commit a competing change there.
    #[doc(hidden)]
    pub async fn resolve_and_commit_observed<F, Fut>(
        &self,
        plan: &BatchPlan,
        mut after_reading: F,
    ) -> StoreResult<ProjectionChange>
    where
        F: FnMut(u32, usize) -> Fut + Send,
        Fut: std::future::Future<Output = ()> + Send,
    {
        // The plan resolved against nothing names every question with its event.
        let events: HashMap<QuestionId, EventId> =
            plan.resolve(&VoterStates::default()).questions.iter().map(|q| (q.question, q.event)).collect();
        let layouts = self.layouts_of(events.values().copied()).await?;
        let keys = plan.voter_keys();
        let mut stored = self.voters_in(&keys, &events, &layouts).await?;
        after_reading(0, keys.len()).await;
        let mut change = plan.resolve(&stored);
        let mut pending: Option<BTreeSet<QuestionId>> = None;
        for attempt in 0..=QUESTION_REPLANS_MAX {
            let part = match &pending {
                None => change.clone(),
                Some(questions) => only(&change, questions),
            };
            let committed = self.commit_voters(&part, &layouts, false).await?;
            let done = part.questions.iter().filter(|q| !committed.conflicted.contains(&q.question));
            self.commit_questions(done, &layouts, &committed.written).await?;
            if committed.conflicted.is_empty() {
                self.commit_event_states(&change.events).await?;
                return Ok(change);
            }
            if attempt == QUESTION_REPLANS_MAX {
                break;
            }
            tracing::debug!(
                questions = committed.conflicted.len(),
                attempt,
                "voter conditions failed; planning those questions again"
            );
            if !self.throttle_budget.is_zero() {
                let backoff = REPLAN_BACKOFF_MS_FIRST << (attempt + 1).min(6);
                tokio::time::sleep(Duration::from_millis(backoff / 2 + rand::random::<u64>() % (backoff + 1))).await;
            }
            // Only the conflicted questions' voters are read again.
            let again: Vec<(QuestionId, VoterId)> =
                keys.iter().filter(|(q, _)| committed.conflicted.contains(q)).copied().collect();
            stored.retain(|(q, _), _| !committed.conflicted.contains(q));
            stored.extend(self.voters_in(&again, &events, &layouts).await?);
            after_reading(attempt + 1, again.len()).await;
            change = plan.resolve(&stored);
            pending = Some(committed.conflicted);
        }
        Err(StoreError::Unavailable(format!(
            "questions still conflicted after {QUESTION_REPLANS_MAX} plans: {:?}",
            pending.unwrap_or_default()
        )))
    }

    /// The layouts of these events, each read once.
    pub(crate) async fn layouts_of(
        &self,
        events: impl Iterator<Item = EventId>,
    ) -> StoreResult<HashMap<EventId, Layout>> {
        let mut layouts = HashMap::new();
        for event in events {
            if let std::collections::hash_map::Entry::Vacant(slot) = layouts.entry(event) {
                slot.insert(self.layout_of(event).await?);
            }
        }
        Ok(layouts)
    }

    /// Every `voters` item of one question (its voter states and counter shards) in
    /// `layout`, strongly consistent.
    pub(crate) async fn voter_items_of(&self, layout: Layout, question: QuestionId) -> StoreResult<Vec<Item>> {
        if layout.voter_partitions == 0 {
            return self.question_voter_items(question).await;
        }
        let partitions = layout.question_partitions(question, self.tables.counter_shards);
        let queries = partitions.iter().map(|partition| self.partition_items(&self.tables.voters, partition));
        Ok(futures::future::try_join_all(queries).await?.into_iter().flatten().collect())
    }

    /// Every item under one partition key of `voters` (strongly consistent), every page.
    async fn partition_items(&self, table: &str, partition: &str) -> StoreResult<Vec<Item>> {
        self.client
            .query()
            .table_name(table)
            .consistent_read(true)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", VOTERS_PARTITION_KEY)
            .expression_attribute_values(":pk", crate::item::string_attr(partition))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| store_error("query voters", e))
    }

    /// Voter states by key (strongly consistent: a stale read would only cost a conflict and
    /// a retry, but why pay it).
    async fn read_voter_items(&self, keys: Vec<Item>) -> StoreResult<VoterStates> {
        let items = self.batch_get(&self.tables.voters, keys, true, None, &[]).await?;
        items.iter().map(voter_from_item).collect()
    }

    /// Voter states, each under its question's event's layout.
    async fn voters_in(
        &self,
        keys: &[(QuestionId, VoterId)],
        events: &HashMap<QuestionId, EventId>,
        layouts: &HashMap<EventId, Layout>,
    ) -> StoreResult<VoterStates> {
        let layout = |q: &QuestionId| events.get(q).and_then(|e| layouts.get(e)).copied();
        let mut items = Vec::with_capacity(keys.len());
        for (q, v) in keys {
            let Some(layout) = layout(q) else {
                return Err(StoreError::Rejected(format!("voter of question {q}, which the plan does not name")));
            };
            items.push(layout.voter_key(*q, *v));
        }
        self.read_voter_items(items).await
    }

    /// A change's voter transactions. With `stop_at_conflict`, nothing after a cancelled
    /// transaction is tried (the port's `commit`: the whole batch is planned again);
    /// otherwise every transaction is tried and the cancelled ones' questions reported.
    async fn commit_voters(
        &self,
        change: &ProjectionChange,
        layouts: &HashMap<EventId, Layout>,
        stop_at_conflict: bool,
    ) -> StoreResult<VotersCommitted> {
        let mut by_question: BTreeMap<QuestionId, Vec<&VoterChange>> = BTreeMap::new();
        for v in &change.voters {
            by_question.entry(v.question).or_default().push(v);
        }
        if let Some(question) = by_question.keys().find(|&&id| !change.questions.iter().any(|q| q.question == id)) {
            return Err(StoreError::Rejected(format!("change has voters of question {question} but no question part")));
        }
        let mut touched = BTreeSet::new();
        let mut conflicted = BTreeSet::new();
        for units in Self::pack(change, &by_question, layouts) {
            let questions: Vec<QuestionId> = units.iter().map(|u| u.question.question).collect();
            touched.extend(questions.iter().copied());
            if conflicted.iter().any(|q| questions.contains(q)) {
                // An earlier transaction of this question was cancelled: it is planned again.
                continue;
            }
            if self.commit_units(&units).await? == Commit::Conflict {
                conflicted.extend(questions);
                if stop_at_conflict {
                    break;
                }
            }
        }
        let written = touched.difference(&conflicted).copied().collect();
        if self.tables.counter_shards > 0 {
            // A question with transactions applied before one was cancelled: its counter
            // shards moved, so its count is rolled up now (the re-plan skips those voters).
            for q in change.questions.iter().filter(|q| conflicted.contains(&q.question)) {
                self.roll_up(layouts.get(&q.event).copied().unwrap_or(Layout::DEFAULT), q).await?;
            }
        }
        Ok(VotersCommitted { written, conflicted })
    }

    /// Everything of these questions beyond their voters (text, moderation, the roll-up of
    /// their counter shards), once their voter transactions were all applied.
    async fn commit_questions(
        &self,
        questions: impl Iterator<Item = &QuestionChange>,
        layouts: &HashMap<EventId, Layout>,
        with_voters: &BTreeSet<QuestionId>,
    ) -> StoreResult<()> {
        let sharded = self.tables.counter_shards > 0;
        for q in questions {
            let layout = layouts.get(&q.event).copied().unwrap_or(Layout::DEFAULT);
            // Without shards the first voter transaction filled the text.
            if q.asked.is_some() && (sharded || !with_voters.contains(&q.question)) {
                self.commit_asked_only(q).await?;
            }
            let flags = [
                (q.answered, (A_ANSWERED, A_ANSWERED_AT)),
                (q.hidden, (A_HIDDEN, A_HIDDEN_AT)),
                (q.approved, (A_APPROVED, A_APPROVED_AT)),
                (q.spotlight, (A_SPOTLIGHT, A_SPOTLIGHT_AT)),
            ];
            for (stamp, attrs) in flags {
                if let Some(stamp) = stamp {
                    let value = AttributeValue::Bool(stamp.value);
                    self.commit_stamped(q, attrs, value, stamp.at, "set a moderation flag").await?;
                }
            }
            if let Some(stamp) = &q.reply {
                let value = string_attr(&stamp.value);
                self.commit_stamped(q, (A_REPLY, A_REPLY_AT), value, stamp.at, "set a written answer").await?;
            }
            // Also when no voter changed: a redelivered batch whose first delivery died
            // between its transactions and its roll-up; then it writes nothing unless a shard
            // moved.
            if sharded {
                self.roll_up(layout, q).await?;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl ProjectionReader for DynamoStore {
    async fn event_questions(&self, event: EventId) -> StoreResult<Vec<QuestionStanding>> {
        self.top_items(event).await?.iter().map(standing_from_item).collect()
    }

    async fn question(&self, id: QuestionId) -> StoreResult<Option<QuestionStanding>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.questions)
            .set_key(Some(question_key(id)))
            .send()
            .await
            .map_err(|e| store_error("read a question", e))?;
        // An event's own state item (keyed by the event's id) is no question.
        out.item.as_ref().filter(|item| !is_event_state_item(item)).map(standing_from_item).transpose()
    }

    async fn event_state(&self, event: EventId) -> StoreResult<ledger::EventState> {
        self.read_event_state(event).await
    }

    /// One batch read of the questions' items, only `asker`.
    async fn askers(&self, ids: &[QuestionId]) -> StoreResult<Vec<(QuestionId, VoterId)>> {
        let keys = ids.iter().map(|&id| question_key(id)).collect();
        let names = [("#id", QUESTIONS_KEY), ("#asker", A_ASKER)];
        let items = self.batch_get(&self.tables.questions, keys, false, Some("#id, #asker"), &names).await?;
        let mut out = Vec::with_capacity(items.len());
        for item in &items {
            if let Some(asker) = item.get(A_ASKER).and_then(|a| a.as_s().ok()) {
                let asker = asker.parse().map_err(|_| StoreError::Corrupt(format!("asker {asker:?}")))?;
                out.push((question_id_of(item)?, asker));
            }
        }
        Ok(out)
    }

    /// From the `top` index, which projects `reply`.
    async fn replies(&self, event: EventId) -> StoreResult<Vec<(QuestionId, String)>> {
        let mut out = Vec::new();
        for item in self.top_items(event).await? {
            if let Some(reply) = reply_from_item(&item)? {
                out.push((question_id_of(&item)?, reply));
            }
        }
        Ok(out)
    }

    async fn question_texts(&self, ids: &[QuestionId]) -> StoreResult<Vec<QuestionText>> {
        let keys = ids.iter().map(|&id| question_key(id)).collect();
        let names = [("#id", QUESTIONS_KEY), ("#eid", A_EVENT), ("#text", A_TEXT), ("#who", A_WHO)];
        let items = self.batch_get(&self.tables.questions, keys, false, Some("#id, #eid, #text, #who"), &names).await?;
        let mut texts = Vec::with_capacity(items.len());
        for item in &items {
            if let Some(t) = text_from_item(item)? {
                texts.push(t);
            }
        }
        Ok(texts)
    }

    /// From the event's questions (the `top` index): the asker of each (one batch read of the
    /// question items, only `asker`) and this voter's state on each (one batch read of
    /// `voters`): two reads of up to as many items as the event has questions.
    async fn voter_view(&self, event: EventId, voter: VoterId) -> StoreResult<VoterView> {
        let questions: Vec<QuestionId> = self
            .top_items(event)
            .await?
            .iter()
            .map(|item| standing_from_item(item).map(|q| q.id))
            .collect::<Result<_, _>>()?;
        let keys = questions.iter().map(|&id| question_key(id)).collect();
        let names = [("#id", QUESTIONS_KEY), ("#asker", A_ASKER)];
        let askers = self.batch_get(&self.tables.questions, keys, false, Some("#id, #asker"), &names).await?;
        let mut asked = Vec::new();
        for item in &askers {
            if item.get(A_ASKER).and_then(|a| a.as_s().ok()) == Some(&voter.to_string()) {
                asked.push(question_id_of(item)?);
            }
        }
        let layout = self.layout_of(event).await?;
        let keys = questions.iter().map(|&id| layout.voter_key(id, voter)).collect();
        let mut voted = Vec::new();
        for item in self.batch_get(&self.tables.voters, keys, false, None, &[]).await? {
            let ((question, _), state) = voter_from_item(&item)?;
            if state.up {
                voted.push(question);
            }
        }
        asked.sort();
        voted.sort();
        Ok(VoterView { asked, voted })
    }
}
