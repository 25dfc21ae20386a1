//! What changed between two versions of a list, as the delta live stream sends it (design
//! §7, "deltas=1"): the items that left (`del`), the items that are new or differ (`set`,
//! whole, `hidden` only when true), and the moves that put the result in the new rank order
//! (`mv`, each question with the index it ends at). Applied in that order to the list of
//! version `base` ([`apply`] is the reference), a delta gives exactly the list of `seq`.
//!
//! The moves are few: the items whose relative order is kept form the longest increasing
//! run of old positions and stay where they are; only the others are moved, so a question
//! climbing three places is one move.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use axum::http::HeaderValue;
use ledger::QuestionId;
use parking_lot::Mutex;
use serde::Serialize;

use crate::lists::{ListItem, Rendered, Variant};

/// How many versions each event keeps per list, for streams that are behind by a few.
pub const VERSIONS_KEPT: usize = 64;

/// One delta, ready to render: version `seq` from version `base`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delta {
    pub seq: u64,
    pub base: u64,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub del: Vec<QuestionId>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub set: Vec<SetItem>,
    /// `(qid, index)`: the question ends at `index` of the new list.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub mv: Vec<(QuestionId, usize)>,
}

/// A list item as a delta carries it: like the list's, but `hidden` only when true (a guest
/// list never holds a hidden question, so it would be `false` in every item). The host's
/// tools' fields are as in the list: each only when it says something.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SetItem {
    pub qid: QuestionId,
    pub votes: u64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub hidden: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answered: Option<u64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub spotlight: bool,
    #[serde(skip_serializing_if = "is_true")]
    pub approved: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply: Option<Box<str>>,
}

fn is_true(value: &bool) -> bool {
    *value
}

impl From<&ListItem> for SetItem {
    fn from(item: &ListItem) -> Self {
        Self {
            qid: item.qid,
            votes: item.votes,
            hidden: item.hidden,
            answered: item.answered,
            spotlight: item.spotlight,
            approved: item.approved,
            reply: item.reply.clone(),
        }
    }
}

impl Delta {
    /// The delta that turns `old` (version `base`) into `new` (version `seq`).
    pub fn between(old: &[ListItem], new: &[ListItem], base: u64, seq: u64) -> Self {
        let new_ids: HashSet<QuestionId> = new.iter().map(|item| item.qid).collect();
        let old_by_id: HashMap<QuestionId, &ListItem> = old.iter().map(|item| (item.qid, item)).collect();
        let del: Vec<QuestionId> = old.iter().map(|item| item.qid).filter(|qid| !new_ids.contains(qid)).collect();
        let set = new.iter().filter(|item| old_by_id.get(&item.qid) != Some(item)).map(SetItem::from).collect();
        // The list once `del` and `set` are applied: the kept old items in their old order,
        // then the new ones appended in their new order.
        let mut working: Vec<QuestionId> =
            old.iter().map(|item| item.qid).filter(|qid| new_ids.contains(qid)).collect();
        working.extend(new.iter().map(|item| item.qid).filter(|qid| !old_by_id.contains_key(qid)));
        let position: HashMap<QuestionId, usize> = working.iter().enumerate().map(|(i, qid)| (*qid, i)).collect();
        let positions: Vec<usize> = new.iter().map(|item| position[&item.qid]).collect();
        let stays = longest_increasing_run(&positions);
        let mv = new.iter().enumerate().filter(|(i, _)| !stays[*i]).map(|(i, item)| (item.qid, i)).collect();
        Delta { seq, base, del, set, mv }
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.del.is_empty() && self.set.is_empty() && self.mv.is_empty()
    }
}

/// Marks the members of one longest strictly increasing subsequence of `values`
/// (patience sorting, O(n log n)).
fn longest_increasing_run(values: &[usize]) -> Vec<bool> {
    // tails[k]: the index of the smallest value ending an increasing run of length k + 1.
    let mut tails: Vec<usize> = Vec::new();
    let mut previous: Vec<Option<usize>> = vec![None; values.len()];
    for (i, &value) in values.iter().enumerate() {
        let k = tails.partition_point(|&t| values[t] < value);
        previous[i] = k.checked_sub(1).map(|p| tails[p]);
        if k == tails.len() {
            tails.push(i);
        } else {
            tails[k] = i;
        }
    }
    let mut member = vec![false; values.len()];
    let mut at = tails.last().copied();
    while let Some(i) = at {
        member[i] = true;
        at = previous[i];
    }
    member
}

/// Applies a delta to `old` exactly as a client must (design §7): the reference the tests
/// hold [`Delta::between`] to (the client's `client/src/lib/deltas.js` follows the same rules).
#[cfg(test)]
pub fn apply(old: &[ListItem], delta: &Delta) -> Vec<ListItem> {
    let mut list: Vec<ListItem> = old.iter().filter(|item| !delta.del.contains(&item.qid)).cloned().collect();
    for set in &delta.set {
        let item = ListItem {
            hidden: set.hidden,
            answered: set.answered,
            spotlight: set.spotlight,
            approved: set.approved,
            reply: set.reply.clone(),
            ..ListItem::new(set.qid, set.votes)
        };
        match list.iter_mut().find(|held| held.qid == set.qid) {
            Some(held) => *held = item,
            None => list.push(item),
        }
    }
    // Every moved question out first, then each in at its index, lowest index first.
    let moved: HashMap<QuestionId, ListItem> = delta
        .mv
        .iter()
        .filter_map(|(qid, _)| list.iter().find(|item| item.qid == *qid).cloned().map(|item| (*qid, item)))
        .collect();
    list.retain(|item| !moved.contains_key(&item.qid));
    for (qid, index) in &delta.mv {
        if let Some(item) = moved.get(qid) {
            list.insert((*index).min(list.len()), item.clone());
        }
    }
    list
}

/// The versions of one event's two lists, shared by its delta streams.
#[derive(Default)]
pub(crate) struct ListVersions {
    guest: Mutex<Versions>,
    host: Mutex<Versions>,
}

impl ListVersions {
    pub(crate) fn of(&self, variant: Variant) -> &Mutex<Versions> {
        match variant {
            Variant::Guest => &self.guest,
            Variant::Host => &self.host,
        }
    }
}

/// One list's latest versions, and the deltas from each of them to the latest.
#[derive(Default)]
pub(crate) struct Versions {
    /// The latest version (0: none yet).
    seq: u64,
    etag: Option<HeaderValue>,
    /// `(seq, items)` of the last [`VERSIONS_KEPT`] versions, the latest last.
    kept: VecDeque<(u64, Arc<[ListItem]>)>,
    /// The latest version's `list` message.
    whole: String,
    /// The `delta` messages to the latest version, by the version they start from: each
    /// rendered once, for the first stream that needs it.
    deltas: HashMap<u64, String>,
}

/// What a delta stream must send to reach the latest version.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CatchUp {
    Nothing,
    /// The `delta` message from the version it has.
    Delta(String),
    /// The `list` message: it has none yet, it is further behind than the kept versions, or
    /// the delta would be longer than the list.
    Whole(String),
}

impl Versions {
    /// Makes `rendered` the latest version if it differs from it, then says what a stream
    /// that has version `seen` must be sent, and the version it then has.
    pub(crate) fn catch_up(
        &mut self,
        rendered: &Rendered,
        seen: Option<u64>,
    ) -> Result<(CatchUp, u64), serde_json::Error> {
        if self.etag.as_ref() != Some(&rendered.etag) {
            self.seq += 1;
            let list = std::str::from_utf8(&rendered.body).map_err(serde::ser::Error::custom)?;
            self.whole = format!(r#"{{"seq":{},"list":{list}}}"#, self.seq);
            self.etag = Some(rendered.etag.clone());
            self.kept.push_back((self.seq, rendered.items.clone()));
            if self.kept.len() > VERSIONS_KEPT {
                self.kept.pop_front();
            }
            self.deltas.clear();
        }
        let Some(seen) = seen else { return Ok((CatchUp::Whole(self.whole.clone()), self.seq)) };
        if seen == self.seq {
            return Ok((CatchUp::Nothing, self.seq));
        }
        let (Some((_, from)), Some((_, latest))) = (self.kept.iter().find(|(seq, _)| *seq == seen), self.kept.back())
        else {
            return Ok((CatchUp::Whole(self.whole.clone()), self.seq));
        };
        let delta = match self.deltas.get(&seen) {
            Some(delta) => delta.clone(),
            None => {
                let delta = serde_json::to_string(&Delta::between(from, latest, seen, self.seq))?;
                self.deltas.insert(seen, delta.clone());
                delta
            }
        };
        let catch_up =
            if delta.len() < self.whole.len() { CatchUp::Delta(delta) } else { CatchUp::Whole(self.whole.clone()) };
        Ok((catch_up, self.seq))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn item(id: u128, votes: u64) -> ListItem {
        ListItem::new(QuestionId::from_u128(id), votes)
    }

    #[test]
    fn a_vote_that_lifts_a_question_is_one_set_and_one_move() {
        let old = [item(1, 5), item(2, 4), item(3, 3), item(4, 3)];
        let new = [item(4, 6), item(1, 5), item(2, 4), item(3, 3)];
        let delta = Delta::between(&old, &new, 7, 8);
        assert_eq!(delta.set, vec![SetItem::from(&new[0])]);
        assert_eq!(delta.mv, vec![(QuestionId::from_u128(4), 0)]);
        assert!(delta.del.is_empty());
        assert_eq!(apply(&old, &delta), new);
        let json = serde_json::to_string(&delta).expect("json");
        let q4 = QuestionId::from_u128(4);
        assert_eq!(json, format!(r#"{{"seq":8,"base":7,"set":[{{"qid":"{q4}","votes":6}}],"mv":[["{q4}",0]]}}"#));
    }

    #[test]
    fn the_host_tools_fields_travel_in_deltas_only_when_they_say_something() {
        let old = [item(1, 3), item(2, 1)];
        let lit = ListItem { spotlight: true, reply: Some("Soon.".into()), ..item(2, 1) };
        let new = [lit.clone(), item(1, 3)];
        let delta = Delta::between(&old, &new, 1, 2);
        assert_eq!(apply(&old, &delta), new);
        let json = serde_json::to_string(&delta).expect("json");
        let q2 = QuestionId::from_u128(2);
        assert!(json.contains(&format!(r#"{{"qid":"{q2}","votes":1,"spotlight":true,"reply":"Soon."}}"#)), "{json}");
        // Approved again (the host list): the item loses its `"approved": false`.
        let waiting = [ListItem { approved: false, ..item(3, 1) }];
        let approved = [item(3, 1)];
        let delta = Delta::between(&waiting, &approved, 2, 3);
        assert_eq!(apply(&waiting, &delta), approved);
        assert!(!serde_json::to_string(&delta).expect("json").contains("approved"));
        assert!(serde_json::to_string(&Delta::between(&approved, &waiting, 3, 4))
            .expect("json")
            .contains(r#""approved":false"#));
    }

    #[test]
    fn an_unchanged_list_is_an_empty_delta_and_a_new_last_question_needs_no_move() {
        let old = [item(1, 2), item(2, 1)];
        assert!(Delta::between(&old, &old, 1, 2).is_empty());
        let new = [item(1, 2), item(2, 1), item(3, 0)];
        let delta = Delta::between(&old, &new, 2, 3);
        assert_eq!((delta.set.len(), delta.mv.len(), delta.del.len()), (1, 0, 0));
        assert_eq!(serde_json::to_string(&Delta::between(&old, &old, 1, 2)).expect("json"), r#"{"seq":2,"base":1}"#);
    }

    #[test]
    fn a_hidden_question_leaves_the_guest_list_as_a_deletion_and_the_host_sees_it_hidden() {
        let old = [item(1, 2), item(2, 1), item(3, 0)];
        let new = [item(1, 2), item(3, 0)];
        let delta = Delta::between(&old, &new, 4, 5);
        assert_eq!(delta.del, vec![QuestionId::from_u128(2)]);
        assert!(delta.set.is_empty() && delta.mv.is_empty());
        assert_eq!(apply(&old, &delta), new);
        // On the host's list it stays, hidden (and ranked last): `hidden` is sent when true.
        let host = [item(1, 2), item(3, 0), ListItem { hidden: true, ..item(2, 1) }];
        let delta = Delta::between(&old, &host, 4, 5);
        assert_eq!(apply(&old, &delta), host);
        assert!(serde_json::to_string(&delta).expect("json").contains(r#""hidden":true"#));
    }

    fn list(max_len: usize) -> impl Strategy<Value = Vec<ListItem>> {
        // Distinct ids from a small pool, so that old and new lists share many of them.
        (proptest::sample::subsequence((1..=40u128).collect::<Vec<_>>(), 0..=max_len), any::<u64>()).prop_map(
            |(ids, seed)| {
                let mut ids = ids;
                // Shuffle deterministically by the seed (the rank order is arbitrary here).
                let mut state = seed | 1;
                for i in (1..ids.len()).rev() {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    ids.swap(i, (state % (i as u64 + 1)) as usize);
                }
                ids.into_iter().map(|id| item(id, seed.rotate_left(id as u32) % 4)).collect()
            },
        )
    }

    proptest! {
        #[test]
        fn applying_the_delta_between_two_lists_gives_the_second(old in list(30), new in list(30)) {
            let delta = Delta::between(&old, &new, 1, 2);
            prop_assert_eq!(apply(&old, &delta), new.clone());
            // Every move is needed: no item that kept its relative order is moved.
            prop_assert!(delta.mv.len() <= new.len());
        }
    }

    /// A render of a list whose question 1 has `votes` votes.
    fn rendered(votes: u64) -> Rendered {
        let items: Arc<[ListItem]> = Arc::from(vec![ListItem::new(QuestionId::from_u128(1), votes)]);
        let body = bytes::Bytes::from(serde_json::to_vec(&items[..]).expect("json"));
        Rendered::for_test(items, body)
    }

    #[test]
    fn a_stream_gets_the_whole_list_first_then_one_delta_from_its_version_or_the_list_again() {
        let mut versions = Versions::default();
        let (first, seq) = versions.catch_up(&rendered(1), None).expect("render");
        assert!(matches!(first, CatchUp::Whole(ref list) if list.starts_with(r#"{"seq":1,"list":[{"#)), "{first:?}");
        assert_eq!(versions.catch_up(&rendered(1), Some(seq)).expect("render"), (CatchUp::Nothing, 1));
        // Two new versions: a stream at version 1 gets one delta from 1 to 3, rendered once.
        versions.catch_up(&rendered(2), Some(1)).expect("render");
        let (missed, seq) = versions.catch_up(&rendered(3), Some(1)).expect("render");
        assert_eq!(seq, 3);
        let CatchUp::Delta(delta) = missed else { panic!("{missed:?}") };
        assert!(delta.starts_with(r#"{"seq":3,"base":1,"#), "{delta}");
        assert_eq!(versions.deltas.len(), 1);
        assert_eq!(versions.catch_up(&rendered(3), Some(1)).expect("render").0, CatchUp::Delta(delta));
        assert_eq!(versions.deltas.len(), 1, "the same delta, not rendered again");
        // A stream further behind than the kept versions gets the whole list again.
        for votes in 4..(4 + VERSIONS_KEPT as u64) {
            versions.catch_up(&rendered(votes), Some(votes - 1)).expect("render");
        }
        assert_eq!(versions.kept.len(), VERSIONS_KEPT, "the kept versions are bounded");
        let (behind, _) = versions.catch_up(&rendered(3 + VERSIONS_KEPT as u64), Some(1)).expect("render");
        assert!(matches!(behind, CatchUp::Whole(_)), "{behind:?}");
    }
}
