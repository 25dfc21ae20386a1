//! The projection ports: the aggregator's side (voter states, the conditional commit,
//! questions for replay, the blind replacement) and the read side (`top`, questions, texts).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{DeleteRequest, PutRequest, WriteRequest};
use ledger::ports::{
    Commit, ProjectionReader, ProjectionStore, QuestionText, Replacement, StoreError, StoreResult, VoterView,
};
use ledger::{
    EventId, ProjectionChange, QuestionId, QuestionStanding, QuestionState, VoterChange, VoterId, VoterStates,
};

use crate::item::{
    a_shard_version, number_attr, question_from_item, question_id_of, question_key, question_to_item, shard_from_item,
    shard_key, shard_to_item, standing_from_item, text_from_item, voter_from_item, voter_key, voter_to_item,
    ShardState, A_ANSWERED, A_ANSWERED_AT, A_ASKER, A_EVENT, A_HIDDEN, A_HIDDEN_AT, A_TEXT, A_WHO,
};
use crate::schema::QUESTIONS_KEY;
use crate::{invalid_request, store_error, DynamoStore};

#[async_trait]
impl ProjectionStore for DynamoStore {
    async fn voters(&self, keys: &[(QuestionId, VoterId)]) -> StoreResult<VoterStates> {
        let keys = keys.iter().map(|&(q, v)| voter_key(q, v)).collect();
        // Strongly consistent: a stale read would only cost a conflict and a retry, but why pay it.
        let items = self.batch_get(&self.tables.voters, keys, true, None, &[]).await?;
        items.iter().map(voter_from_item).collect()
    }

    async fn commit(&self, change: &ProjectionChange, cursor: Option<u64>) -> StoreResult<Commit> {
        if cursor.is_some() {
            return Err(StoreError::Rejected(
                "the DynamoDB projection keeps no feed cursor (the queue tracks delivery)".to_owned(),
            ));
        }
        let mut by_question: BTreeMap<QuestionId, Vec<&VoterChange>> = BTreeMap::new();
        for v in &change.voters {
            by_question.entry(v.question).or_default().push(v);
        }
        if let Some(question) = by_question.keys().find(|&&id| !change.questions.iter().any(|q| q.question == id)) {
            return Err(StoreError::Rejected(format!("change has voters of question {question} but no question part")));
        }
        let sharded = self.tables.counter_shards > 0;
        // The voters first: nothing else is written unless every voter condition held, so a
        // change that fits one transaction is all or nothing. A bigger one commits in several;
        // on a conflict the earlier ones stay applied and the re-plan finds their voters
        // current and skips them (exactly once in effect); their counts are rolled up now.
        let mut written: BTreeSet<QuestionId> = BTreeSet::new();
        for units in Self::pack(change, &by_question) {
            if self.commit_units(&units).await? == Commit::Conflict {
                if sharded {
                    for q in change.questions.iter().filter(|q| written.contains(&q.question)) {
                        self.roll_up(q).await?;
                    }
                }
                return Ok(Commit::Conflict);
            }
            written.extend(units.iter().map(|u| u.question.question));
        }
        for q in &change.questions {
            // Without shards the first voter transaction filled the text.
            if q.asked.is_some() && (sharded || !by_question.contains_key(&q.question)) {
                self.commit_asked_only(q).await?;
            }
            if let Some(stamp) = q.answered {
                self.commit_moderation(q, A_ANSWERED, A_ANSWERED_AT, stamp).await?;
            }
            if let Some(stamp) = q.hidden {
                self.commit_moderation(q, A_HIDDEN, A_HIDDEN_AT, stamp).await?;
            }
            // Also when no voter changed: a redelivered batch whose first delivery died
            // between its transactions and its roll-up; then it writes nothing unless a shard
            // moved.
            if sharded {
                self.roll_up(q).await?;
            }
        }
        Ok(Commit::Applied)
    }

    async fn cursor(&self) -> StoreResult<u64> {
        Ok(0)
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
        items.iter().map(question_from_item).collect()
    }

    /// Writes the given fold over the projection unconditionally (new state first, then the
    /// leftovers deleted). Safe only while no aggregator commits: on a live stack whatever it
    /// commits between the caller's read of the ledger and these writes is overwritten.
    /// `replay --repair` uses [`DynamoStore::repair`] instead (`repair.rs`).
    async fn replace(&self, replacement: &Replacement<'_>) -> StoreResult<()> {
        let (event, questions, voters) = (replacement.event(), replacement.questions(), replacement.voters());
        let events: HashMap<QuestionId, EventId> =
            questions.iter().map(|q| (q.standing.id, q.standing.event)).collect();
        // What is stored now in scope, to delete what the new projection lacks.
        let old_questions = self.questions(event).await?;
        let old_voter_items = match event {
            None => self.scan_all(&self.tables.voters).await?,
            Some(_) => {
                let mut ids: Vec<QuestionId> = old_questions.iter().map(|q| q.standing.id).collect();
                ids.extend(events.keys().copied());
                ids.sort();
                ids.dedup();
                let mut items = Vec::new();
                for id in ids {
                    items.extend(self.question_voter_items(id).await?);
                }
                items
            }
        };
        // Counter shards stored now, to restart each kept question's shards from its
        // replayed count with versions above every version a roll-up may have seen.
        let mut old_shards: HashMap<(QuestionId, u32), ShardState> = HashMap::new();
        let mut old_voter_keys = Vec::with_capacity(old_voter_items.len());
        for item in &old_voter_items {
            match shard_from_item(item)? {
                Some((q, k, state)) => {
                    old_shards.insert((q, k), state);
                }
                None => old_voter_keys.push(voter_from_item(item)?.0),
            }
        }
        let mut puts = Vec::with_capacity(questions.len());
        let mut shard_puts = Vec::new();
        for q in questions {
            let mut item = question_to_item(q, self.retention);
            let expire = self.expire(q.standing.event);
            for k in 0..self.tables.counter_shards {
                let ver = old_shards.get(&(q.standing.id, k)).map_or(0, |s| s.ver) + 1;
                let part = if k == 0 { q.standing.votes as i64 } else { 0 };
                item.insert(a_shard_version(k), number_attr(ver));
                let put = PutRequest::builder()
                    .set_item(Some(shard_to_item(q.standing.id, k, ShardState { part, ver }, expire)))
                    .build();
                shard_puts.push(WriteRequest::builder().put_request(put.map_err(invalid_request)?).build());
            }
            let put = PutRequest::builder().set_item(Some(item)).build();
            puts.push(WriteRequest::builder().put_request(put.map_err(invalid_request)?).build());
        }
        let mut voter_puts = Vec::with_capacity(voters.len());
        let mut kept_voters = HashSet::with_capacity(voters.len());
        for &((question, voter), state) in voters {
            let Some(&event) = events.get(&question) else {
                return Err(StoreError::Rejected(format!(
                    "voter state for question {question}, which is not replaced"
                )));
            };
            kept_voters.insert((question, voter));
            let put =
                PutRequest::builder().set_item(Some(voter_to_item(question, voter, state, self.expire(event)))).build();
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
        let mut deletes = Vec::new();
        for key in old_voter_keys {
            if !kept_voters.contains(&key) {
                let del = DeleteRequest::builder().set_key(Some(voter_key(key.0, key.1))).build();
                deletes.push(WriteRequest::builder().delete_request(del.map_err(invalid_request)?).build());
            }
        }
        for &(q, k) in old_shards.keys() {
            if !events.contains_key(&q) || k >= self.tables.counter_shards {
                let del = DeleteRequest::builder().set_key(Some(shard_key(q, k))).build();
                deletes.push(WriteRequest::builder().delete_request(del.map_err(invalid_request)?).build());
            }
        }
        self.batch_write(&self.tables.voters, deletes).await
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
        out.item.as_ref().map(standing_from_item).transpose()
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
        let keys = questions.iter().map(|&id| voter_key(id, voter)).collect();
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
