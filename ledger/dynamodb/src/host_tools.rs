//! The host's tools in the DynamoDB projection (design §5): written answers on question
//! items, and each event's own state (settings, co-host links) on an item of the questions
//! table keyed by the event's id. Every write is conditional the way the fold's rules are:
//! a setting or an answer only where the stored stamp is older (last writer wins), a co-host
//! link added if missing and revoked for good, so aggregators in any order and any number
//! store the same state.

use aws_sdk_dynamodb::types::AttributeValue;
use ledger::ports::StoreResult;
use ledger::{EventId, EventState, RecordId};

use crate::is_condition_failed;
use crate::item::{
    cohost_attr, event_state_from_item, is_event_state_item, number_attr, question_key, string_attr, A_ASKING,
    A_ASKING_AT, A_EVENT_STATE, A_MODERATION, A_MODERATION_AT, A_TITLE, A_TITLE_AT, A_WORDS, A_WORDS_AT,
};
use crate::schema::TTL_ATTRIBUTE;
use crate::{store_error, DynamoStore};

/// One setting of an event as written: its value's and its stamp's attribute names, and
/// the value with its stamp if the change sets it.
type EventField<'a> = (&'a str, &'a str, Option<(AttributeValue, RecordId)>);

impl DynamoStore {
    /// Joins each event's part of a change into its stored state: every setting where it is
    /// newer, every co-host link (a revocation for good).
    pub(crate) async fn commit_event_states(&self, states: &[EventState]) -> StoreResult<()> {
        for state in states {
            let fields: [EventField<'_>; 4] = [
                (A_TITLE, A_TITLE_AT, state.title.as_ref().map(|t| (string_attr(&t.value), t.at))),
                (A_MODERATION, A_MODERATION_AT, state.moderation.map(|m| (string_attr(m.value.as_str()), m.at))),
                (A_ASKING, A_ASKING_AT, state.asking.map(|a| (string_attr(a.value.as_str()), a.at))),
                (
                    A_WORDS,
                    A_WORDS_AT,
                    state
                        .blocked_words
                        .as_ref()
                        .map(|w| (AttributeValue::L(w.value.iter().map(string_attr).collect()), w.at)),
                ),
            ];
            for (value_attr, at_attr, field) in fields {
                if let Some((value, at)) = field {
                    self.set_event_field(state.event, value_attr, at_attr, value, at).await?;
                }
            }
            if !state.cohosts.is_empty() {
                self.set_cohosts(state).await?;
            }
        }
        Ok(())
    }

    async fn set_event_field(
        &self,
        event: EventId,
        value_attr: &str,
        at_attr: &str,
        value: AttributeValue,
        at: RecordId,
    ) -> StoreResult<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.questions)
            .set_key(Some(question_key(ledger::event_subject(event))))
            .update_expression("SET #v = :v, #at = :at, #mark = :true, #exp = :exp")
            .condition_expression("attribute_not_exists(#at) OR #at < :at")
            .expression_attribute_names("#v", value_attr)
            .expression_attribute_names("#at", at_attr)
            .expression_attribute_names("#mark", A_EVENT_STATE)
            .expression_attribute_names("#exp", TTL_ATTRIBUTE)
            .expression_attribute_values(":v", value)
            .expression_attribute_values(":at", string_attr(at))
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":exp", number_attr(self.expire(event)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Ok(()),
            Err(e) => Err(store_error("set an event setting", e)),
        }
    }

    /// One unconditional update: a valid link is added only if missing
    /// (`if_not_exists`), a revoked one set to false whatever was there.
    async fn set_cohosts(&self, state: &EventState) -> StoreResult<()> {
        let mut sets = vec!["#mark = :true".to_owned(), "#exp = :exp".to_owned()];
        let mut request = self
            .client
            .update_item()
            .table_name(&self.tables.questions)
            .set_key(Some(question_key(ledger::event_subject(state.event))))
            .expression_attribute_names("#mark", A_EVENT_STATE)
            .expression_attribute_names("#exp", TTL_ATTRIBUTE)
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":exp", number_attr(self.expire(state.event)));
        // DynamoDB refuses a value no expression uses.
        if state.cohosts.values().any(|valid| !valid) {
            request = request.expression_attribute_values(":false", AttributeValue::Bool(false));
        }
        for (i, (hash, valid)) in state.cohosts.iter().enumerate() {
            let name = format!("#c{i}");
            request = request.expression_attribute_names(&name, cohost_attr(hash));
            sets.push(if *valid {
                format!("{name} = if_not_exists({name}, :true)")
            } else {
                format!("{name} = :false")
            });
        }
        request
            .update_expression(format!("SET {}", sets.join(", ")))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| store_error("set co-host links", e))
    }

    /// Joins a fold's event states into what is stored (`replay --repair`): each write is
    /// the aggregator's own conditional one, so it is safe while the aggregator runs, and a
    /// stored state can only grow towards the fold (a newer setting stays, a revocation
    /// stays).
    pub async fn join_event_states(&self, states: &[EventState]) -> StoreResult<()> {
        self.commit_event_states(states).await
    }

    /// One event's own state as stored (empty when it has none).
    pub(crate) async fn read_event_state(&self, event: EventId) -> StoreResult<EventState> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.questions)
            .set_key(Some(question_key(ledger::event_subject(event))))
            .send()
            .await
            .map_err(|e| store_error("read an event's state", e))?;
        match out.item {
            Some(item) if is_event_state_item(&item) => event_state_from_item(&item),
            _ => Ok(EventState::new(event)),
        }
    }

    /// Every stored event state (or one event's), in event order.
    pub(crate) async fn read_event_states(&self, event: Option<EventId>) -> StoreResult<Vec<EventState>> {
        let mut states = match event {
            Some(event) => {
                let state = self.read_event_state(event).await?;
                if state.is_empty() {
                    Vec::new()
                } else {
                    vec![state]
                }
            }
            None => self
                .scan_all(&self.tables.questions)
                .await?
                .iter()
                .filter(|item| is_event_state_item(item))
                .map(event_state_from_item)
                .collect::<StoreResult<Vec<_>>>()?,
        };
        states.sort_by_key(|s| s.event);
        Ok(states)
    }
}
