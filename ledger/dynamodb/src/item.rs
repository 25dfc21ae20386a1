//! The DynamoDB items: the only place that knows attribute names and types. Each item kind
//! is converted explicitly to and from the core types; anything stored that does not parse
//! is `StoreError::Corrupt`, never a panic.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use ledger::ports::{EventRow, QuestionText, StoreError};
use ledger::{
    Asked, AskedView, Asking, EventId, Moderation, QuestionId, QuestionStanding, QuestionState, Record, RecordBody,
    RecordId, Retention, Stamped, VoterId, VoterState,
};

use crate::layout::Layout;
use crate::schema::{
    EVENTS_KEY, LEDGER_PARTITION_KEY, LEDGER_SORT_KEY, QUESTIONS_KEY, TOP_PARTITION_KEY, TOP_SORT_KEY, TTL_ATTRIBUTE,
    VOTERS_PARTITION_KEY, VOTERS_SORT_KEY,
};

pub type Item = HashMap<String, AttributeValue>;

// Attribute names beyond the keys (schema.rs names the keys the template must agree on).
pub(crate) const A_EVENT: &str = TOP_PARTITION_KEY; // "eid"
pub(crate) const A_QUESTION: &str = "qid";
pub(crate) const A_REGION: &str = "region";
pub(crate) const A_KIND: &str = "kind";
pub(crate) const A_TEXT: &str = "text";
pub(crate) const A_WHO: &str = "who";
pub(crate) const A_VOTER: &str = "voter";
pub(crate) const A_UP: &str = "up";
pub(crate) const A_ON: &str = "on";
pub(crate) const A_SECRET_HASH: &str = "secret_hash";
pub(crate) const A_WHEN: &str = "when";
pub(crate) const A_VOTES: &str = TOP_SORT_KEY; // "votes"
pub(crate) const A_ANSWERED: &str = "answered";
pub(crate) const A_ANSWERED_AT: &str = "answered_at";
pub(crate) const A_HIDDEN: &str = "hidden";
pub(crate) const A_HIDDEN_AT: &str = "hidden_at";
pub(crate) const A_REC: &str = "rec";
/// On a question item: the approval, spotlight and written answer with their stamps.
pub(crate) const A_APPROVED: &str = "approved";
pub(crate) const A_APPROVED_AT: &str = "approved_at";
pub(crate) const A_SPOTLIGHT: &str = "spotlight";
pub(crate) const A_SPOTLIGHT_AT: &str = "spotlight_at";
pub(crate) const A_REPLY: &str = "reply";
pub(crate) const A_REPLY_AT: &str = "reply_at";
/// On the event's own ledger items: the setting it sets.
pub(crate) const A_TITLE: &str = "title";
pub(crate) const A_MODERATION: &str = "moderation";
pub(crate) const A_ASKING: &str = "asking";
pub(crate) const A_WORDS: &str = "words";
/// On the questions table, the item of an event's own state (settings, co-host links) is
/// keyed by the event's id and marked with this attribute (true); it has no `eid`, so the
/// `top` index never holds it. Each setting sits with its stamp (`title`/`title_at`,
/// `moderation`/`moderation_at`, `asking`/`asking_at`, `words`/`words_at`) and each
/// co-host link as `cohost_{hash in hex}` (true while valid, false once revoked).
pub(crate) const A_EVENT_STATE: &str = "event_state";
pub(crate) const A_TITLE_AT: &str = "title_at";
pub(crate) const A_MODERATION_AT: &str = "moderation_at";
pub(crate) const A_ASKING_AT: &str = "asking_at";
pub(crate) const A_WORDS_AT: &str = "words_at";
pub(crate) const COHOST_PREFIX: &str = "cohost_";
/// On a question item: the voter who asked it.
pub(crate) const A_ASKER: &str = "asker";
/// A counter shard's partial count and version (bumped by every write to it).
pub(crate) const A_PART: &str = "part";
pub(crate) const A_VER: &str = "ver";
/// On a question item: the version of counter shard k its `votes` was rolled up from.
pub(crate) fn a_shard_version(k: u32) -> String {
    format!("sv{k}")
}

/// A string attribute.
pub(crate) fn string_attr(value: impl ToString) -> AttributeValue {
    AttributeValue::S(value.to_string())
}

/// A number attribute (DynamoDB carries numbers as decimal strings).
pub(crate) fn number_attr(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn corrupt(what: &str, item: &Item) -> StoreError {
    let id = item.get("id").and_then(|v| v.as_s().ok()).map(String::as_str).unwrap_or("?");
    StoreError::Corrupt(format!("item {id}: {what}"))
}

fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        _ => Err(corrupt(&format!("`{name}` is missing or not a string"), item)),
    }
}

fn opt_s<'a>(item: &'a Item, name: &str) -> Result<Option<&'a str>, StoreError> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::S(v)) => Ok(Some(v)),
        Some(_) => Err(corrupt(&format!("`{name}` is not a string"), item)),
    }
}

fn get_bool(item: &Item, name: &str) -> Result<bool, StoreError> {
    match item.get(name) {
        Some(AttributeValue::Bool(v)) => Ok(*v),
        _ => Err(corrupt(&format!("`{name}` is missing or not a boolean"), item)),
    }
}

fn get_u64(item: &Item, name: &str) -> Result<u64, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().map_err(|_| corrupt(&format!("`{name}` is not a count ({v})"), item)),
        _ => Err(corrupt(&format!("`{name}` is missing or not a number"), item)),
    }
}

fn get_id<T: std::str::FromStr>(item: &Item, name: &str) -> Result<T, StoreError> {
    let raw = get_s(item, name)?;
    raw.parse().map_err(|_| corrupt(&format!("`{name}` is not an id ({raw})"), item))
}

/// Which of `shards` ledger partitions a record lives in: FNV-1a over the record id's
/// bytes, so the choice is stable across versions and spreads one event's records evenly.
pub fn shard_of(record: RecordId, shards: u32) -> u32 {
    crate::layout::fnv1a(&record.to_bytes()) % shards.max(1)
}

pub fn ledger_partition(event: EventId, shard: u32) -> String {
    format!("{event}#{shard}")
}

pub fn event_to_item(event: &EventRow) -> Item {
    HashMap::from([
        (EVENTS_KEY.to_owned(), string_attr(event.id)),
        (A_SECRET_HASH.to_owned(), AttributeValue::B(event.secret_hash.to_vec().into())),
        (A_WHEN.to_owned(), number_attr(event.id.timestamp_ms())),
        (TTL_ATTRIBUTE.to_owned(), number_attr(event.expire_unix)),
    ])
}

pub fn event_from_item(item: &Item) -> Result<EventRow, StoreError> {
    let secret_hash = match item.get(A_SECRET_HASH) {
        Some(AttributeValue::B(blob)) => {
            <[u8; 32]>::try_from(blob.as_ref()).map_err(|_| corrupt("`secret_hash` is not 32 bytes", item))?
        }
        _ => return Err(corrupt("`secret_hash` is missing or not binary", item)),
    };
    Ok(EventRow { id: get_id(item, EVENTS_KEY)?, secret_hash, expire_unix: get_u64(item, TTL_ATTRIBUTE)? })
}

/// A record as a ledger item, its expiry that of its event (`Retention::expire_of`).
pub fn record_to_item(record: &Record, shards: u32, retention: Retention) -> Item {
    let mut item = HashMap::from([
        (LEDGER_PARTITION_KEY.to_owned(), string_attr(ledger_partition(record.event, shard_of(record.id, shards)))),
        (LEDGER_SORT_KEY.to_owned(), string_attr(record.id)),
        (A_EVENT.to_owned(), string_attr(record.event)),
        (A_QUESTION.to_owned(), string_attr(record.question)),
        (A_REGION.to_owned(), string_attr(&record.region)),
        (A_KIND.to_owned(), string_attr(record.body.kind())),
        (TTL_ATTRIBUTE.to_owned(), number_attr(retention.expire_of(record.event))),
    ]);
    match &record.body {
        RecordBody::Asked(asked) => {
            item.insert(A_TEXT.to_owned(), string_attr(&asked.text));
            if let Some(who) = &asked.who {
                item.insert(A_WHO.to_owned(), string_attr(who));
            }
            item.insert(A_VOTER.to_owned(), string_attr(asked.voter));
        }
        RecordBody::Voted { voter, up } => {
            item.insert(A_VOTER.to_owned(), string_attr(voter));
            item.insert(A_UP.to_owned(), AttributeValue::Bool(*up));
        }
        RecordBody::Answered { on }
        | RecordBody::Hidden { on }
        | RecordBody::Approved { on }
        | RecordBody::Spotlight { on } => {
            item.insert(A_ON.to_owned(), AttributeValue::Bool(*on));
        }
        RecordBody::Replied { text } => {
            item.insert(A_TEXT.to_owned(), string_attr(text));
        }
        RecordBody::Titled { title } => {
            item.insert(A_TITLE.to_owned(), string_attr(title));
        }
        RecordBody::ModerationSet { moderation } => {
            item.insert(A_MODERATION.to_owned(), string_attr(moderation.as_str()));
        }
        RecordBody::AskingSet { asking } => {
            item.insert(A_ASKING.to_owned(), string_attr(asking.as_str()));
        }
        RecordBody::BlockedWordsSet { words } => {
            item.insert(A_WORDS.to_owned(), AttributeValue::L(words.iter().map(string_attr).collect()));
        }
        RecordBody::CohostMinted { secret_hash } | RecordBody::CohostRevoked { secret_hash } => {
            item.insert(A_SECRET_HASH.to_owned(), AttributeValue::B(secret_hash.to_vec().into()));
        }
    }
    item
}

fn get_hash(item: &Item) -> Result<ledger::secret::SecretHash, StoreError> {
    match item.get(A_SECRET_HASH) {
        Some(AttributeValue::B(blob)) => {
            <[u8; 32]>::try_from(blob.as_ref()).map_err(|_| corrupt("`secret_hash` is not 32 bytes", item))
        }
        _ => Err(corrupt("`secret_hash` is missing or not binary", item)),
    }
}

fn get_words(item: &Item) -> Result<Vec<String>, StoreError> {
    match item.get(A_WORDS) {
        Some(AttributeValue::L(list)) => list
            .iter()
            .map(|v| v.as_s().cloned().map_err(|_| corrupt("a blocked word is not a string", item)))
            .collect(),
        _ => Err(corrupt("`words` is missing or not a list", item)),
    }
}

/// A ledger item (from a Query, a Scan or a stream record's NewImage) as a record.
pub fn record_from_item(item: &Item) -> Result<Record, StoreError> {
    let body = match get_s(item, A_KIND)? {
        "asked" => RecordBody::Asked(Asked {
            text: get_s(item, A_TEXT)?.to_owned(),
            who: opt_s(item, A_WHO)?.map(str::to_owned),
            voter: get_id(item, A_VOTER)?,
        }),
        "vote" => RecordBody::Voted { voter: get_id(item, A_VOTER)?, up: get_bool(item, A_UP)? },
        "answered" => RecordBody::Answered { on: get_bool(item, A_ON)? },
        "hidden" => RecordBody::Hidden { on: get_bool(item, A_ON)? },
        "approved" => RecordBody::Approved { on: get_bool(item, A_ON)? },
        "spotlight" => RecordBody::Spotlight { on: get_bool(item, A_ON)? },
        "reply" => RecordBody::Replied { text: get_s(item, A_TEXT)?.to_owned() },
        "title" => RecordBody::Titled { title: get_s(item, A_TITLE)?.to_owned() },
        "moderation" => RecordBody::ModerationSet {
            moderation: Moderation::parse(get_s(item, A_MODERATION)?).ok_or_else(|| corrupt("moderation", item))?,
        },
        "asking" => RecordBody::AskingSet {
            asking: Asking::parse(get_s(item, A_ASKING)?).ok_or_else(|| corrupt("asking", item))?,
        },
        "blocked_words" => RecordBody::BlockedWordsSet { words: get_words(item)? },
        "cohost_minted" => RecordBody::CohostMinted { secret_hash: get_hash(item)? },
        "cohost_revoked" => RecordBody::CohostRevoked { secret_hash: get_hash(item)? },
        other => return Err(corrupt(&format!("unknown record kind `{other}`"), item)),
    };
    Ok(Record {
        id: get_id(item, LEDGER_SORT_KEY)?,
        event: get_id(item, A_EVENT)?,
        question: get_id(item, A_QUESTION)?,
        region: get_s(item, A_REGION)?.to_owned(),
        body,
    })
}

fn stamp_from_item(item: &Item, value: &str, at: &str) -> Result<Option<Stamped<bool>>, StoreError> {
    match item.get(at) {
        None => Ok(None),
        Some(_) => Ok(Some(Stamped { value: get_bool(item, value)?, at: get_id(item, at)? })),
    }
}

/// Whether a questions-table item is an event's own state rather than a question.
pub fn is_event_state_item(item: &Item) -> bool {
    matches!(item.get(A_EVENT_STATE), Some(AttributeValue::Bool(true)))
}

/// The attribute of one co-host link on an event state item.
pub(crate) fn cohost_attr(hash: &ledger::secret::SecretHash) -> String {
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("{COHOST_PREFIX}{hex}")
}

fn stamped_from_item<T>(
    item: &Item,
    at: &str,
    value: impl FnOnce() -> Result<T, StoreError>,
) -> Result<Option<Stamped<T>>, StoreError> {
    match item.get(at) {
        None => Ok(None),
        Some(_) => Ok(Some(Stamped { value: value()?, at: get_id(item, at)? })),
    }
}

/// An event state item as the fold's `EventState`.
pub fn event_state_from_item(item: &Item) -> Result<ledger::EventState, StoreError> {
    let mut state = ledger::EventState::new(get_id(item, QUESTIONS_KEY)?);
    state.title = stamped_from_item(item, A_TITLE_AT, || Ok(get_s(item, A_TITLE)?.to_owned()))?;
    state.moderation = stamped_from_item(item, A_MODERATION_AT, || {
        Moderation::parse(get_s(item, A_MODERATION)?).ok_or_else(|| corrupt("moderation", item))
    })?;
    state.asking = stamped_from_item(item, A_ASKING_AT, || {
        Asking::parse(get_s(item, A_ASKING)?).ok_or_else(|| corrupt("asking", item))
    })?;
    state.blocked_words = stamped_from_item(item, A_WORDS_AT, || get_words(item))?;
    for (name, value) in item {
        let Some(hex) = name.strip_prefix(COHOST_PREFIX) else { continue };
        let hash = parse_hex32(hex).ok_or_else(|| corrupt("a co-host attribute", item))?;
        let valid = match value {
            AttributeValue::Bool(valid) => *valid,
            _ => return Err(corrupt("a co-host attribute is not a boolean", item)),
        };
        state.cohosts.insert(hash, valid);
    }
    Ok(state)
}

fn parse_hex32(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// The written answer of a question item (or its `top` projection), if it has one.
pub fn reply_from_item(item: &Item) -> Result<Option<String>, StoreError> {
    Ok(opt_s(item, A_REPLY)?.filter(|r| !r.is_empty()).map(str::to_owned))
}

/// A question item (or its `top` projection) as counters.
pub fn standing_from_item(item: &Item) -> Result<QuestionStanding, StoreError> {
    Ok(QuestionStanding {
        id: get_id(item, QUESTIONS_KEY)?,
        event: get_id(item, A_EVENT)?,
        votes: get_u64(item, A_VOTES)?,
        answered: stamp_from_item(item, A_ANSWERED, A_ANSWERED_AT)?,
        hidden: stamp_from_item(item, A_HIDDEN, A_HIDDEN_AT)?,
        approved: stamp_from_item(item, A_APPROVED, A_APPROVED_AT)?,
        spotlight: stamp_from_item(item, A_SPOTLIGHT, A_SPOTLIGHT_AT)?,
    })
}

pub fn question_from_item(item: &Item) -> Result<QuestionState, StoreError> {
    let asked = match opt_s(item, A_TEXT)? {
        Some(text) => Some(AskedView {
            text: text.to_owned(),
            who: opt_s(item, A_WHO)?.map(str::to_owned),
            // An item written before askers were stored: nobody.
            asker: opt_s(item, A_ASKER)?
                .map(str::parse)
                .transpose()
                .map_err(|_| corrupt("asker", item))?
                .unwrap_or(VoterId::from_u128(0)),
        }),
        None => None,
    };
    let reply = match item.get(A_REPLY_AT) {
        None => None,
        Some(_) => Some(Stamped { value: get_s(item, A_REPLY)?.to_owned(), at: get_id(item, A_REPLY_AT)? }),
    };
    Ok(QuestionState { standing: standing_from_item(item)?, asked, reply })
}

/// The id of a question item.
pub fn question_id_of(item: &Item) -> Result<QuestionId, StoreError> {
    get_id(item, QUESTIONS_KEY)
}

/// The text of a question item, if its `asked` record has been folded in.
pub fn text_from_item(item: &Item) -> Result<Option<QuestionText>, StoreError> {
    let Some(text) = opt_s(item, A_TEXT)? else {
        return Ok(None);
    };
    Ok(Some(QuestionText {
        id: get_id(item, QUESTIONS_KEY)?,
        event: get_id(item, A_EVENT)?,
        text: text.to_owned(),
        who: opt_s(item, A_WHO)?.map(str::to_owned),
    }))
}

/// A whole question item, as `replace` writes it.
pub fn question_to_item(question: &QuestionState, retention: Retention) -> Item {
    let c = &question.standing;
    let mut item = HashMap::from([
        (QUESTIONS_KEY.to_owned(), string_attr(c.id)),
        (A_EVENT.to_owned(), string_attr(c.event)),
        (A_VOTES.to_owned(), number_attr(c.votes)),
        (TTL_ATTRIBUTE.to_owned(), number_attr(retention.expire_of(c.event))),
    ]);
    if let Some(asked) = &question.asked {
        item.insert(A_TEXT.to_owned(), string_attr(&asked.text));
        item.insert(A_ASKER.to_owned(), string_attr(asked.asker));
        if let Some(who) = &asked.who {
            item.insert(A_WHO.to_owned(), string_attr(who));
        }
    }
    if let Some(a) = c.answered {
        item.insert(A_ANSWERED.to_owned(), AttributeValue::Bool(a.value));
        item.insert(A_ANSWERED_AT.to_owned(), string_attr(a.at));
    }
    if let Some(h) = c.hidden {
        item.insert(A_HIDDEN.to_owned(), AttributeValue::Bool(h.value));
        item.insert(A_HIDDEN_AT.to_owned(), string_attr(h.at));
    }
    if let Some(a) = c.approved {
        item.insert(A_APPROVED.to_owned(), AttributeValue::Bool(a.value));
        item.insert(A_APPROVED_AT.to_owned(), string_attr(a.at));
    }
    if let Some(s) = c.spotlight {
        item.insert(A_SPOTLIGHT.to_owned(), AttributeValue::Bool(s.value));
        item.insert(A_SPOTLIGHT_AT.to_owned(), string_attr(s.at));
    }
    if let Some(r) = &question.reply {
        item.insert(A_REPLY.to_owned(), string_attr(&r.value));
        item.insert(A_REPLY_AT.to_owned(), string_attr(r.at));
    }
    item
}

/// A voter's state as a `voters` item, under its key in `layout`.
pub fn voter_to_item(layout: Layout, question: QuestionId, voter: VoterId, state: VoterState, expire: u64) -> Item {
    let mut item = layout.voter_key(question, voter);
    item.insert(A_UP.to_owned(), AttributeValue::Bool(state.up));
    item.insert(A_REC.to_owned(), string_attr(state.rec));
    item.insert(TTL_ATTRIBUTE.to_owned(), number_attr(expire));
    item
}

/// A voter item (of either layout) as its question, voter and state.
pub fn voter_from_item(item: &Item) -> Result<((QuestionId, VoterId), VoterState), StoreError> {
    let key = (question_of_voters_item(item)?, get_id(item, VOTERS_SORT_KEY)?);
    Ok((key, VoterState { up: get_bool(item, A_UP)?, rec: get_id(item, A_REC)? }))
}

/// The question a `voters` item belongs to, from its partition key (see `layout.rs`).
fn question_of_voters_item(item: &Item) -> Result<QuestionId, StoreError> {
    let raw = crate::layout::question_of_partition(get_s(item, VOTERS_PARTITION_KEY)?);
    raw.parse().map_err(|_| corrupt(&format!("`{VOTERS_PARTITION_KEY}` does not name a question ({raw})"), item))
}

/// A counter shard: its partial count (may be negative: a retraction can land on another
/// shard than the vote it retracts) and version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShardState {
    pub part: i64,
    pub ver: u64,
}

pub fn shard_to_item(layout: Layout, question: QuestionId, shard: u32, state: ShardState, expire: u64) -> Item {
    let mut item = layout.counter_shard_key(question, shard);
    item.insert(A_PART.to_owned(), number_attr(state.part));
    item.insert(A_VER.to_owned(), number_attr(state.ver));
    item.insert(TTL_ATTRIBUTE.to_owned(), number_attr(expire));
    item
}

/// `Some((question, shard, state))` for a counter shard item, `None` for a voter item.
pub fn shard_from_item(item: &Item) -> Result<Option<(QuestionId, u32, ShardState)>, StoreError> {
    let sort = get_s(item, VOTERS_SORT_KEY)?;
    let Some(k) = sort.strip_prefix(crate::schema::COUNTER_SHARD_PREFIX) else {
        return Ok(None);
    };
    let shard = k.parse().map_err(|_| corrupt(&format!("bad counter shard `{sort}`"), item))?;
    let part = match item.get(A_PART) {
        Some(AttributeValue::N(v)) => v.parse().map_err(|_| corrupt("`part` is not a number", item))?,
        _ => return Err(corrupt("`part` is missing", item)),
    };
    Ok(Some((question_of_voters_item(item)?, shard, ShardState { part, ver: get_u64(item, A_VER)? })))
}

pub fn question_key(question: QuestionId) -> Item {
    HashMap::from([(QUESTIONS_KEY.to_owned(), string_attr(question))])
}

#[cfg(test)]
mod tests {
    use super::*;
    use ulid::Ulid;

    #[test]
    fn records_round_trip_and_bad_items_are_corrupt() {
        let voter = VoterId::random();
        for body in [
            RecordBody::Asked(Asked { text: "why so?".into(), who: Some("Ann".into()), voter }),
            RecordBody::Asked(Asked { text: "why not?".into(), who: None, voter }),
            RecordBody::Voted { voter, up: false },
            RecordBody::Answered { on: true },
            RecordBody::Hidden { on: false },
            RecordBody::Approved { on: false },
            RecordBody::Spotlight { on: true },
            RecordBody::Replied { text: "soon".into() },
            RecordBody::Titled { title: "Town hall".into() },
            RecordBody::ModerationSet { moderation: Moderation::PreApprove },
            RecordBody::AskingSet { asking: Asking::Closed },
            RecordBody::BlockedWordsSet { words: vec!["spam".into(), "buy now".into()] },
            RecordBody::BlockedWordsSet { words: vec![] },
            RecordBody::CohostMinted { secret_hash: [7; 32] },
            RecordBody::CohostRevoked { secret_hash: [8; 32] },
        ] {
            let r = Record {
                id: RecordId(Ulid::new()),
                event: EventId(Ulid::new()),
                question: QuestionId(Ulid::new()),
                region: "eu-west-1".into(),
                body,
            };
            let item = record_to_item(&r, 8, Retention::DEFAULT);
            assert_eq!(record_from_item(&item), Ok(r));
        }
        let mut item = record_to_item(
            &Record {
                id: RecordId(Ulid::new()),
                event: EventId(Ulid::new()),
                question: QuestionId(Ulid::new()),
                region: "x".into(),
                body: RecordBody::Hidden { on: true },
            },
            8,
            Retention::DEFAULT,
        );
        item.insert(A_ON.to_owned(), string_attr("yes"));
        assert!(matches!(record_from_item(&item), Err(StoreError::Corrupt(_))));
        item.insert(A_KIND.to_owned(), string_attr("deleted"));
        assert!(matches!(record_from_item(&item), Err(StoreError::Corrupt(_))));
    }
}
