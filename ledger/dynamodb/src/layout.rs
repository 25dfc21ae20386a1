//! Where an event's items live: the partition keys of design §5, written once.
//!
//! An event's [`Layout`] is fixed when the event is created and stored on its item in
//! `events` (the ledger shard count and the voter partition count); an event item that
//! stores none is an event created before the layout was stored, and has
//! [`Layout::LEGACY`]. So a change of the defaults never moves an existing event's items,
//! and every event keeps one layout for its whole life: a record appended twice lands on
//! the same key, and a voter's state is always under the same key.
//!
//! Reading an event's ledger never needs its layout: the keys `{event}#0` to
//! `{event}#{n-1}` of any layout are among those of a larger one, so [`ledger_partitions`]
//! (up to the largest shard count in use) covers every event.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use ledger::ports::StoreError;
use ledger::{EventId, QuestionId, RecordId, VoterId};

pub use crate::item::{ledger_partition, shard_of};
use crate::item::{number_attr, string_attr, Item};
use crate::schema::{
    COUNTER_SHARD_PREFIX, EVENT_LEDGER_SHARDS_ATTRIBUTE, EVENT_VOTER_PARTITIONS_ATTRIBUTE, LEDGER_SHARDS_DEFAULT,
    LEDGER_SHARDS_LEGACY, VOTERS_PARTITION_KEY, VOTERS_SORT_KEY, VOTER_PARTITIONS_DEFAULT, VOTER_PARTITIONS_LEGACY,
    VOTER_PARTITION_PREFIX,
};

/// How one event's items spread over partition keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Layout {
    /// The event's ledger partitions: a record is under `"{event}#{hash(id) mod n}"`.
    pub ledger_shards: u32,
    /// The partitions of each of its questions' voter states: a voter's state is under
    /// `"{qid}#v{hash(voter) mod n}"` and counter shard k under `"{qid}#c{k}"`; 0 puts
    /// both under `"{qid}"` (the legacy layout).
    pub voter_partitions: u32,
}

impl Layout {
    /// The layout of an event whose item stores none (created before layouts were stored).
    pub const LEGACY: Layout =
        Layout { ledger_shards: LEDGER_SHARDS_LEGACY, voter_partitions: VOTER_PARTITIONS_LEGACY };
    /// The layout events are created with by default.
    pub const DEFAULT: Layout =
        Layout { ledger_shards: LEDGER_SHARDS_DEFAULT, voter_partitions: VOTER_PARTITIONS_DEFAULT };

    /// The ledger partition key of a record of this event.
    pub fn ledger_partition_of(&self, event: EventId, record: RecordId) -> String {
        ledger_partition(event, shard_of(record, self.ledger_shards))
    }

    /// The key of a voter's state on a question.
    pub fn voter_key(&self, question: QuestionId, voter: VoterId) -> Item {
        let partition = match self.voter_partitions {
            0 => question.to_string(),
            n => format!("{question}{VOTER_PARTITION_PREFIX}{}", fnv1a(&voter.to_bytes()) % n),
        };
        HashMap::from([
            (VOTERS_PARTITION_KEY.to_owned(), string_attr(partition)),
            (VOTERS_SORT_KEY.to_owned(), string_attr(voter)),
        ])
    }

    /// The key of a question's counter shard `shard` (its sort key is `#c{shard}` in both
    /// layouts; with voter partitions it also has a partition key of its own).
    pub fn counter_shard_key(&self, question: QuestionId, shard: u32) -> Item {
        let partition = match self.voter_partitions {
            0 => question.to_string(),
            _ => format!("{question}{COUNTER_SHARD_PREFIX}{shard}"),
        };
        HashMap::from([
            (VOTERS_PARTITION_KEY.to_owned(), string_attr(partition)),
            (VOTERS_SORT_KEY.to_owned(), string_attr(format!("{COUNTER_SHARD_PREFIX}{shard}"))),
        ])
    }

    /// Every `voters` partition key a question's items (voter states and `counter_shards`
    /// counter shards) are under in this layout.
    pub fn question_partitions(&self, question: QuestionId, counter_shards: u32) -> Vec<String> {
        match self.voter_partitions {
            0 => vec![question.to_string()],
            n => (0..n)
                .map(|p| format!("{question}{VOTER_PARTITION_PREFIX}{p}"))
                .chain((0..counter_shards).map(|k| format!("{question}{COUNTER_SHARD_PREFIX}{k}")))
                .collect(),
        }
    }

    /// The attributes an event's item stores its layout in.
    pub fn to_event_attributes(&self) -> [(String, AttributeValue); 2] {
        [
            (EVENT_LEDGER_SHARDS_ATTRIBUTE.to_owned(), number_attr(self.ledger_shards)),
            (EVENT_VOTER_PARTITIONS_ATTRIBUTE.to_owned(), number_attr(self.voter_partitions)),
        ]
    }

    /// The layout an event's item stores ([`Layout::LEGACY`] if it stores none).
    pub fn from_event_item(item: &Item) -> Result<Layout, StoreError> {
        let number = |name: &str, default: u32| match item.get(name) {
            None => Ok(default),
            Some(AttributeValue::N(n)) => {
                n.parse::<u32>().map_err(|_| StoreError::Corrupt(format!("event item: `{name}` is not a count ({n})")))
            }
            Some(_) => Err(StoreError::Corrupt(format!("event item: `{name}` is not a number"))),
        };
        let layout = Layout {
            ledger_shards: number(EVENT_LEDGER_SHARDS_ATTRIBUTE, LEDGER_SHARDS_LEGACY)?,
            voter_partitions: number(EVENT_VOTER_PARTITIONS_ATTRIBUTE, VOTER_PARTITIONS_LEGACY)?,
        };
        if layout.ledger_shards == 0 {
            return Err(StoreError::Corrupt("event item: 0 ledger shards".into()));
        }
        Ok(layout)
    }
}

/// FNV-1a over bytes: stable across versions and platforms (a key function must never move).
pub(crate) fn fnv1a(bytes: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for &byte in bytes {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// Every ledger partition key an event's records may be under, whatever its layout: shards
/// `0..shards` where `shards` is at least every shard count in use (a store reads with
/// `DynamoStore::ledger_read_shards`). The one list every reader of an event's ledger walks.
pub fn ledger_partitions(event: EventId, shards: u32) -> Vec<String> {
    (0..shards.max(LEDGER_SHARDS_LEGACY)).map(|shard| ledger_partition(event, shard)).collect()
}

/// The question id of a `voters` item's partition key (`"{qid}"`, `"{qid}#v{n}"` or
/// `"{qid}#c{k}"`).
pub fn question_of_partition(partition: &str) -> &str {
    partition.split('#').next().unwrap_or(partition)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ulid::Ulid;

    #[test]
    fn shards_are_stable_and_spread() {
        let mut seen = [0u32; 32];
        for i in 0..32_000u128 {
            seen[shard_of(RecordId(Ulid(i * 7919 + 1)), 32) as usize] += 1;
        }
        assert!(seen.iter().all(|&c| c > 800), "uneven spread: {seen:?}");
        assert_eq!(shard_of(RecordId(Ulid(42)), 8), shard_of(RecordId(Ulid(42)), 8));
        assert_eq!(shard_of(RecordId(Ulid(42)), 0), 0);
    }

    #[test]
    fn the_legacy_keys_are_among_the_keys_every_reader_reads() {
        let event = EventId(Ulid::new());
        let all = ledger_partitions(event, LEDGER_SHARDS_DEFAULT);
        assert_eq!(all.len(), LEDGER_SHARDS_DEFAULT as usize);
        for i in 0..1_000u128 {
            let record = RecordId(Ulid(i * 104_729 + 3));
            assert!(all.contains(&Layout::LEGACY.ledger_partition_of(event, record)));
            assert!(all.contains(&Layout::DEFAULT.ledger_partition_of(event, record)));
        }
        assert_eq!(ledger_partitions(event, 2).len(), LEDGER_SHARDS_LEGACY as usize, "never fewer than the legacy 8");
    }

    #[test]
    fn voter_keys_spread_one_question_and_name_it() {
        let q = QuestionId(Ulid::new());
        let mut partitions = std::collections::HashSet::new();
        for _ in 0..2_000 {
            let key = Layout::DEFAULT.voter_key(q, VoterId::random());
            let partition = key[VOTERS_PARTITION_KEY].as_s().expect("string").clone();
            assert_eq!(question_of_partition(&partition), q.to_string());
            partitions.insert(partition);
        }
        assert_eq!(partitions.len(), VOTER_PARTITIONS_DEFAULT as usize);
        let legacy = Layout::LEGACY.voter_key(q, VoterId::random());
        assert_eq!(legacy[VOTERS_PARTITION_KEY].as_s().expect("string"), &q.to_string());
        let shard = Layout::DEFAULT.counter_shard_key(q, 3);
        assert_eq!(shard[VOTERS_PARTITION_KEY].as_s().expect("string"), &format!("{q}#c3"));
        assert!(Layout::DEFAULT.question_partitions(q, 8).contains(&format!("{q}#c3")));
    }

    #[test]
    fn an_event_item_without_a_layout_is_legacy() {
        assert_eq!(Layout::from_event_item(&Item::new()), Ok(Layout::LEGACY));
        let item: Item = Layout::DEFAULT.to_event_attributes().into_iter().collect();
        assert_eq!(Layout::from_event_item(&item), Ok(Layout::DEFAULT));
        let bad: Item = [(EVENT_LEDGER_SHARDS_ATTRIBUTE.to_owned(), number_attr(0))].into_iter().collect();
        assert!(matches!(Layout::from_event_item(&bad), Err(StoreError::Corrupt(_))));
    }
}
