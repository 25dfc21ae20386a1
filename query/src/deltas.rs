//! What changed between two versions of a list, as the delta live stream sends it (design
//! §7, "deltas=1"): the items that left (`del`), the items that are new or differ (`set`,
//! whole), and the moves that put the result in the new rank order (`mv`). Applied in that
//! order to the old list ([`apply`] is the reference), a delta gives exactly the new list.
//!
//! The moves are few: the items whose relative order is kept form the longest increasing
//! run of old positions and stay where they are; each other item is moved right after its
//! new predecessor, in new-list order, so a question climbing three places is one move.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use axum::http::HeaderValue;
use ledger::QuestionId;
use parking_lot::Mutex;
use serde::Serialize;

use crate::lists::{ListItem, Rendered, Variant};

/// How many deltas each event keeps per list for streams that fell behind.
pub const DELTAS_KEPT: usize = 64;

/// One delta, ready to render: version `seq` from version `seq - 1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delta<'a> {
    pub seq: u64,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub del: Vec<QuestionId>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub set: Vec<&'a ListItem>,
    /// `(qid, after)`: take `qid` out and put it right after `after` (`None`: first).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub mv: Vec<(QuestionId, Option<QuestionId>)>,
}

impl<'a> Delta<'a> {
    /// The delta that turns `old` into `new`, numbered `seq`.
    pub fn between(old: &[ListItem], new: &'a [ListItem], seq: u64) -> Self {
        let new_ids: HashSet<QuestionId> = new.iter().map(|item| item.qid).collect();
        let old_by_id: HashMap<QuestionId, &ListItem> = old.iter().map(|item| (item.qid, item)).collect();
        let del: Vec<QuestionId> = old.iter().map(|item| item.qid).filter(|qid| !new_ids.contains(qid)).collect();
        let set: Vec<&ListItem> = new.iter().filter(|item| old_by_id.get(&item.qid) != Some(item)).collect();
        // The list once `del` and `set` are applied: the kept old items in their old order,
        // then the new ones appended in their new order.
        let mut working: Vec<QuestionId> =
            old.iter().map(|item| item.qid).filter(|qid| new_ids.contains(qid)).collect();
        working.extend(new.iter().map(|item| item.qid).filter(|qid| !old_by_id.contains_key(qid)));
        let position: HashMap<QuestionId, usize> = working.iter().enumerate().map(|(i, qid)| (*qid, i)).collect();
        let positions: Vec<usize> = new.iter().map(|item| position[&item.qid]).collect();
        let stays = longest_increasing_run(&positions);
        let mv = new
            .iter()
            .enumerate()
            .filter(|(i, _)| !stays[*i])
            .map(|(i, item)| (item.qid, i.checked_sub(1).map(|before| new[before].qid)))
            .collect();
        Delta { seq, del, set, mv }
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
pub fn apply(old: &[ListItem], delta: &Delta<'_>) -> Vec<ListItem> {
    let mut list: Vec<ListItem> = old.iter().filter(|item| !delta.del.contains(&item.qid)).cloned().collect();
    for item in &delta.set {
        match list.iter_mut().find(|held| held.qid == item.qid) {
            Some(held) => *held = (*item).clone(),
            None => list.push((*item).clone()),
        }
    }
    for (qid, after) in &delta.mv {
        let Some(from) = list.iter().position(|item| item.qid == *qid) else { continue };
        let item = list.remove(from);
        let to = after.and_then(|after| list.iter().position(|held| held.qid == after)).map_or(0, |p| p + 1);
        list.insert(to, item);
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

/// One list's latest version and the deltas that led to it.
#[derive(Default)]
pub(crate) struct Versions {
    /// The latest version (0: none yet).
    seq: u64,
    etag: Option<HeaderValue>,
    items: Option<Arc<[ListItem]>>,
    /// The latest version's `list` message.
    whole: String,
    /// `(seq, message)`: the `delta` messages of the last [`DELTAS_KEPT`] versions.
    deltas: VecDeque<(u64, String)>,
}

/// What a delta stream must send to reach the latest version.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CatchUp {
    Nothing,
    /// The `delta` messages it missed, oldest first.
    Deltas(Vec<String>),
    /// The `list` message: it has none yet, or missed more than the kept deltas.
    Whole(String),
}

impl Versions {
    /// Makes `rendered` the latest version if it differs from it (rendering its delta once),
    /// then says what a stream that has seen version `seen` must be sent, and the version
    /// it then has.
    pub(crate) fn catch_up(
        &mut self,
        rendered: &Rendered,
        seen: Option<u64>,
    ) -> Result<(CatchUp, u64), serde_json::Error> {
        if self.etag.as_ref() != Some(&rendered.etag) {
            let seq = self.seq + 1;
            if let Some(old) = &self.items {
                let delta = Delta::between(old, &rendered.items, seq);
                self.deltas.push_back((seq, serde_json::to_string(&delta)?));
                if self.deltas.len() > DELTAS_KEPT {
                    self.deltas.pop_front();
                }
            }
            let list = std::str::from_utf8(&rendered.body).map_err(serde::ser::Error::custom)?;
            self.whole = format!(r#"{{"seq":{seq},"list":{list}}}"#);
            self.seq = seq;
            self.etag = Some(rendered.etag.clone());
            self.items = Some(rendered.items.clone());
        }
        let catch_up = match seen {
            Some(seen) if seen == self.seq => CatchUp::Nothing,
            Some(seen) if self.deltas.front().is_some_and(|(first, _)| *first <= seen + 1) => CatchUp::Deltas(
                self.deltas.iter().filter(|(seq, _)| *seq > seen).map(|(_, message)| message.clone()).collect(),
            ),
            _ => CatchUp::Whole(self.whole.clone()),
        };
        Ok((catch_up, self.seq))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn item(id: u128, votes: u64) -> ListItem {
        ListItem { qid: QuestionId::from_u128(id), votes, hidden: false, answered: None }
    }

    #[test]
    fn a_vote_that_lifts_a_question_is_one_set_and_one_move() {
        let old = [item(1, 5), item(2, 4), item(3, 3), item(4, 3)];
        let new = [item(4, 6), item(1, 5), item(2, 4), item(3, 3)];
        let delta = Delta::between(&old, &new, 8);
        assert_eq!(delta.set, vec![&new[0]]);
        assert_eq!(delta.mv, vec![(QuestionId::from_u128(4), None)]);
        assert!(delta.del.is_empty());
        assert_eq!(apply(&old, &delta), new);
        let json = serde_json::to_string(&delta).expect("json");
        assert_eq!(
            json,
            format!(
                r#"{{"seq":8,"set":[{{"qid":"{}","votes":6,"hidden":false}}],"mv":[["{}",null]]}}"#,
                QuestionId::from_u128(4),
                QuestionId::from_u128(4)
            )
        );
    }

    #[test]
    fn an_unchanged_list_is_an_empty_delta_and_a_new_last_question_needs_no_move() {
        let old = [item(1, 2), item(2, 1)];
        assert!(Delta::between(&old, &old, 2).is_empty());
        let new = [item(1, 2), item(2, 1), item(3, 0)];
        let delta = Delta::between(&old, &new, 3);
        assert_eq!((delta.set.len(), delta.mv.len(), delta.del.len()), (1, 0, 0));
        assert_eq!(serde_json::to_string(&Delta::between(&old, &old, 2)).expect("json"), r#"{"seq":2}"#);
    }

    #[test]
    fn a_hidden_question_leaves_the_guest_list_as_a_deletion() {
        let old = [item(1, 2), item(2, 1), item(3, 0)];
        let new = [item(1, 2), item(3, 0)];
        let delta = Delta::between(&old, &new, 5);
        assert_eq!(delta.del, vec![QuestionId::from_u128(2)]);
        assert!(delta.set.is_empty() && delta.mv.is_empty());
        assert_eq!(apply(&old, &delta), new);
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
            let delta = Delta::between(&old, &new, 1);
            prop_assert_eq!(apply(&old, &delta), new.clone());
            // Every move is needed: no item that kept its relative order is moved.
            prop_assert!(delta.mv.len() <= new.len());
        }
    }

    /// A render of a list whose question 1 has `votes` votes.
    fn rendered(votes: u64) -> Rendered {
        let items: Arc<[ListItem]> =
            Arc::from(vec![ListItem { qid: QuestionId::from_u128(1), votes, hidden: false, answered: None }]);
        let body = bytes::Bytes::from(serde_json::to_vec(&items[..]).expect("json"));
        Rendered::for_test(items, body)
    }

    #[test]
    fn a_stream_gets_the_whole_list_first_then_the_deltas_it_missed_or_the_list_again() {
        let mut versions = Versions::default();
        let (first, seq) = versions.catch_up(&rendered(1), None).expect("render");
        assert!(matches!(first, CatchUp::Whole(ref list) if list.starts_with(r#"{"seq":1,"list":[{"#)), "{first:?}");
        assert_eq!(versions.catch_up(&rendered(1), Some(seq)).expect("render"), (CatchUp::Nothing, 1));
        // Two new versions; a stream at version 1 gets both deltas, in order, rendered once.
        versions.catch_up(&rendered(2), Some(1)).expect("render");
        let (missed, seq) = versions.catch_up(&rendered(3), Some(1)).expect("render");
        assert_eq!(seq, 3);
        let CatchUp::Deltas(deltas) = missed else { panic!("{missed:?}") };
        assert_eq!(deltas.len(), 2);
        assert!(deltas[0].starts_with(r#"{"seq":2,"#) && deltas[1].starts_with(r#"{"seq":3,"#), "{deltas:?}");
        // A stream further behind than the kept deltas gets the whole list again.
        for votes in 4..(4 + DELTAS_KEPT as u64) {
            versions.catch_up(&rendered(votes), Some(votes - 1)).expect("render");
        }
        assert_eq!(versions.deltas.len(), DELTAS_KEPT, "the kept deltas are bounded");
        let (behind, _) = versions.catch_up(&rendered(3 + DELTAS_KEPT as u64), Some(1)).expect("render");
        assert!(matches!(behind, CatchUp::Whole(_)), "{behind:?}");
    }
}
