//! The fold: the one definition of what a set of records means (design §3).
//!
//! Per question, `votes` is the number of voters whose latest `asked`/`vote` record is up,
//! and `answered`/`hidden`/`approved`/`spotlight`/`reply` are the value of their latest
//! record (last writer wins by record id). Per event, each setting is the value of its
//! latest record, and a co-host link is valid once minted until revoked (a revocation wins
//! whatever the order). Every rule only keeps a maximum (a record id, or "revoked"), so the
//! fold is a join-semilattice: any order, duplication or interleaving of the same records
//! gives the same projection. Which question is in the spotlight is derived from the
//! stamps at read time (`rank::spotlight_of`), so it needs no rule of its own here.
//!
//! Two users share the rules below, so they cannot drift apart:
//! - [`Projection`], the pure in-memory fold (replay, tests, the reference);
//! - [`BatchPlan`] + [`BatchPlan::resolve`], the incremental fold the aggregator runs
//!   against stored state through the projection port, producing a [`ProjectionChange`]
//!   that an adapter commits conditionally.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use crate::ids::{EventId, QuestionId, RecordId, VoterId};
use crate::record::{Asking, Moderation, Record, RecordBody};
use crate::secret::{secret_matches, SecretHash};

/// A value with the id of the record that set it; the higher id wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamped<T> {
    pub value: T,
    pub at: RecordId,
}

/// A voter's latest choice for one question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VoterState {
    pub up: bool,
    pub rec: RecordId,
}

/// What a newer vote does: the voter's new state and how the question's count moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VoteTransition {
    pub new: VoterState,
    pub votes_delta: i64,
}

/// The vote rule: a record replaces the voter's state only if it is newer; the count moves
/// by the difference between the new and the old choice (a repeat moves nothing).
pub fn vote_transition(current: Option<VoterState>, incoming: VoterState) -> Option<VoteTransition> {
    match current {
        Some(old) if old.rec >= incoming.rec => None,
        _ => {
            let before = current.is_some_and(|c| c.up) as i64;
            Some(VoteTransition { new: incoming, votes_delta: incoming.up as i64 - before })
        }
    }
}

/// The moderation rule: last writer wins by record id. Returns the value to store, if it changes.
pub fn lww<T: Copy>(current: Option<Stamped<T>>, incoming: Stamped<T>) -> Option<Stamped<T>> {
    match current {
        Some(old) if old.at >= incoming.at => None,
        _ => Some(incoming),
    }
}

/// [`lww`] for values that are not `Copy` (texts, word lists): keeps `incoming` in `slot`
/// if it is newer than what the slot holds.
pub fn lww_into<T: Clone>(slot: &mut Option<Stamped<T>>, incoming: &Stamped<T>) {
    if slot.as_ref().is_none_or(|held| held.at < incoming.at) {
        *slot = Some(incoming.clone());
    }
}

/// The immutable part of a question, from its `asked` record. Ingest mints a fresh question
/// id for every ask, so all `asked` records of one question (duplicates, replicas) carry the
/// same text: keeping whichever arrives first is order-independent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AskedView {
    pub text: String,
    pub who: Option<String>,
    /// The voter who asked it (what `GET /api/event/{eid}/mine` answers a guest with).
    pub asker: VoterId,
}

/// Where a question stands: its votes and the moderation flags (answered, hidden,
/// approved, spotlight) with the record that set each, what the `top` index holds and the
/// ranking reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuestionStanding {
    pub id: QuestionId,
    pub event: EventId,
    pub votes: u64,
    pub answered: Option<Stamped<bool>>,
    pub hidden: Option<Stamped<bool>>,
    /// `off` while the question waits for review; none (or `on`) means approved.
    pub approved: Option<Stamped<bool>>,
    pub spotlight: Option<Stamped<bool>>,
}

impl QuestionStanding {
    pub fn new(id: QuestionId, event: EventId) -> Self {
        Self { id, event, votes: 0, answered: None, hidden: None, approved: None, spotlight: None }
    }

    pub fn is_hidden(&self) -> bool {
        self.hidden.is_some_and(|h| h.value)
    }

    /// Whether the question waits for the host's review (shown only to hosts and its asker).
    pub fn is_pending(&self) -> bool {
        self.approved.is_some_and(|a| !a.value)
    }

    /// When the question was (last) marked answered, if it currently is.
    pub fn answered_at(&self) -> Option<RecordId> {
        self.answered.filter(|a| a.value).map(|a| a.at)
    }

    /// Applies a counter delta; a count below zero means a lost or double-applied record.
    pub fn add_votes(&mut self, delta: i64) {
        let next = self.votes as i64 + delta;
        assert!(next >= 0, "votes of {} would go below zero ({next})", self.id);
        self.votes = next as u64;
    }
}

/// Everything the fold knows about a question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuestionState {
    pub standing: QuestionStanding,
    /// `None` until the `asked` record arrives (a vote may come first).
    pub asked: Option<AskedView>,
    /// The host's latest written answer (an empty text: removed).
    pub reply: Option<Stamped<String>>,
}

impl QuestionState {
    pub fn new(id: QuestionId, event: EventId) -> Self {
        Self { standing: QuestionStanding::new(id, event), asked: None, reply: None }
    }

    /// The written answer to show, if any.
    pub fn reply_text(&self) -> Option<&str> {
        self.reply.as_ref().map(|r| r.value.as_str()).filter(|t| !t.is_empty())
    }
}

/// An event's settings as the API shows them (defaults where nothing was set).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pub title: Option<String>,
    pub moderation: Moderation,
    pub asking: Asking,
    pub blocked_words: Vec<String>,
}

/// Everything the fold knows about an event from its own records: each setting with the
/// record that set it, and its co-host links. Also the shape of an event's part of a
/// [`ProjectionChange`]: an adapter stores it by [`EventState::merge`]'s rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventState {
    pub event: EventId,
    pub title: Option<Stamped<String>>,
    pub moderation: Option<Stamped<Moderation>>,
    pub asking: Option<Stamped<Asking>>,
    pub blocked_words: Option<Stamped<Vec<String>>>,
    /// Co-host links by their secret's hash: `true` while valid, `false` once revoked.
    pub cohosts: BTreeMap<SecretHash, bool>,
}

impl EventState {
    pub fn new(event: EventId) -> Self {
        Self { event, title: None, moderation: None, asking: None, blocked_words: None, cohosts: BTreeMap::new() }
    }

    /// Folds one of the event's own records in; other kinds change nothing.
    pub fn apply(&mut self, id: RecordId, body: &RecordBody) {
        match body {
            RecordBody::Titled { title } => lww_into(&mut self.title, &Stamped { value: title.clone(), at: id }),
            RecordBody::ModerationSet { moderation } => {
                lww_into(&mut self.moderation, &Stamped { value: *moderation, at: id })
            }
            RecordBody::AskingSet { asking } => lww_into(&mut self.asking, &Stamped { value: *asking, at: id }),
            RecordBody::BlockedWordsSet { words } => {
                lww_into(&mut self.blocked_words, &Stamped { value: words.clone(), at: id })
            }
            RecordBody::CohostMinted { secret_hash } => {
                self.cohosts.entry(*secret_hash).or_insert(true);
            }
            RecordBody::CohostRevoked { secret_hash } => {
                self.cohosts.insert(*secret_hash, false);
            }
            _ => {}
        }
    }

    /// Joins another state of the same event in: the newer value of each setting, every
    /// co-host link, revoked if either side revoked it.
    pub fn merge(&mut self, other: &EventState) {
        if let Some(t) = &other.title {
            lww_into(&mut self.title, t);
        }
        if let Some(m) = &other.moderation {
            lww_into(&mut self.moderation, m);
        }
        if let Some(a) = &other.asking {
            lww_into(&mut self.asking, a);
        }
        if let Some(w) = &other.blocked_words {
            lww_into(&mut self.blocked_words, w);
        }
        for (hash, valid) in &other.cohosts {
            let held = self.cohosts.entry(*hash).or_insert(*valid);
            *held &= *valid;
        }
    }

    pub fn settings(&self) -> Settings {
        Settings {
            title: self.title.as_ref().map(|t| t.value.clone()).filter(|t| !t.is_empty()),
            moderation: self.moderation.map(|m| m.value).unwrap_or_default(),
            asking: self.asking.map(|a| a.value).unwrap_or_default(),
            blocked_words: self.blocked_words.as_ref().map(|w| w.value.clone()).unwrap_or_default(),
        }
    }

    /// Whether `secret` is a valid co-host link of this event. Every valid link's hash is
    /// compared, each in constant time, so the answer's timing does not tell which differs.
    pub fn cohost_matches(&self, secret: &str) -> bool {
        self.cohosts
            .iter()
            .filter(|(_, valid)| **valid)
            .fold(false, |found, (hash, _)| found | secret_matches(secret, hash))
    }

    /// Whether it holds nothing (no record of the event's own folded yet).
    pub fn is_empty(&self) -> bool {
        self.title.is_none()
            && self.moderation.is_none()
            && self.asking.is_none()
            && self.blocked_words.is_none()
            && self.cohosts.is_empty()
    }
}

/// How many partitions voter states are spread over. Replaying a large ledger is bound by
/// memory latency: one table of a million voter states rehashes and misses the cache on
/// nearly every vote; many small tables, chosen by a hash of (question, voter), measured
/// faster (see the `fold` bench).
const VOTER_PARTITIONS: usize = 4_096;

fn voter_partition(question: QuestionId, voter: VoterId) -> usize {
    let mixed =
        (question.to_u128() as u64) ^ (voter.to_u128() as u64).rotate_left(32) ^ ((voter.to_u128() >> 64) as u64);
    (mixed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 52) as usize % VOTER_PARTITIONS
}

/// Voter states by question and voter: what the fold keeps and a store hands the aggregator.
pub type VoterStates = FxHashMap<(QuestionId, VoterId), VoterState>;

/// The pure fold over any set of records.
#[derive(Debug, Clone)]
pub struct Projection {
    questions: FxHashMap<QuestionId, QuestionState>,
    voters: Vec<VoterStates>,
    events: BTreeMap<EventId, EventState>,
}

impl Default for Projection {
    fn default() -> Self {
        Self {
            questions: FxHashMap::default(),
            voters: vec![VoterStates::default(); VOTER_PARTITIONS],
            events: BTreeMap::new(),
        }
    }
}

/// A vote between [`Projection::apply_non_vote`] and [`Projection::apply_vote`].
#[derive(Clone, Copy)]
struct PendingVote {
    question: QuestionId,
    voter: VoterId,
    state: VoterState,
}

impl Projection {
    pub fn new() -> Self {
        Self::default()
    }

    /// A projection sized for about `records` records, so folding a known-size ledger never
    /// rehashes (most records are votes, and most votes are a new voter's).
    pub fn with_capacity(records: usize) -> Self {
        let per_partition = records / VOTER_PARTITIONS + 1;
        Self {
            questions: FxHashMap::with_capacity_and_hasher(records / 256 + 16, Default::default()),
            voters: (0..VOTER_PARTITIONS)
                .map(|_| VoterStates::with_capacity_and_hasher(per_partition, Default::default()))
                .collect(),
            events: BTreeMap::new(),
        }
    }

    /// The question's state, created empty if this is the first record naming it.
    fn question_mut<'q>(
        questions: &'q mut FxHashMap<QuestionId, QuestionState>,
        record: &Record,
    ) -> &'q mut QuestionState {
        let question =
            questions.entry(record.question).or_insert_with(|| QuestionState::new(record.question, record.event));
        debug_assert_eq!(
            question.standing.event, record.event,
            "record {} names another event for question {}",
            record.id, record.question
        );
        question
    }

    /// Applies everything about a record except its vote, which it returns.
    fn apply_non_vote(question: &mut QuestionState, record: &Record) -> Option<PendingVote> {
        let (voter, up) = match &record.body {
            RecordBody::Asked(asked) => {
                question.asked.get_or_insert_with(|| AskedView {
                    text: asked.text.clone(),
                    who: asked.who.clone(),
                    asker: asked.voter,
                });
                (asked.voter, true)
            }
            RecordBody::Voted { voter, up } => (*voter, *up),
            RecordBody::Answered { on } => {
                if let Some(next) = lww(question.standing.answered, Stamped { value: *on, at: record.id }) {
                    question.standing.answered = Some(next);
                }
                return None;
            }
            RecordBody::Hidden { on } => {
                if let Some(next) = lww(question.standing.hidden, Stamped { value: *on, at: record.id }) {
                    question.standing.hidden = Some(next);
                }
                return None;
            }
            RecordBody::Approved { on } => {
                if let Some(next) = lww(question.standing.approved, Stamped { value: *on, at: record.id }) {
                    question.standing.approved = Some(next);
                }
                return None;
            }
            RecordBody::Spotlight { on } => {
                if let Some(next) = lww(question.standing.spotlight, Stamped { value: *on, at: record.id }) {
                    question.standing.spotlight = Some(next);
                }
                return None;
            }
            RecordBody::Replied { text } => {
                lww_into(&mut question.reply, &Stamped { value: text.clone(), at: record.id });
                return None;
            }
            // The event's own records never reach a question (see `apply`).
            _ => return None,
        };
        Some(PendingVote { question: record.question, voter, state: VoterState { up, rec: record.id } })
    }

    /// Records a vote in its voter's state; returns how the question's count moves.
    fn apply_vote(voters: &mut VoterStates, vote: PendingVote) -> i64 {
        use std::collections::hash_map::Entry;
        match voters.entry((vote.question, vote.voter)) {
            Entry::Occupied(mut held) => match vote_transition(Some(*held.get()), vote.state) {
                Some(t) => {
                    *held.get_mut() = t.new;
                    t.votes_delta
                }
                None => 0,
            },
            Entry::Vacant(slot) => {
                slot.insert(vote.state);
                vote.state.up as i64
            }
        }
    }

    pub fn apply(&mut self, record: &Record) {
        if record.body.is_event_level() {
            self.events
                .entry(record.event)
                .or_insert_with(|| EventState::new(record.event))
                .apply(record.id, &record.body);
            return;
        }
        let question = Self::question_mut(&mut self.questions, record);
        if let Some(vote) = Self::apply_non_vote(question, record) {
            let delta = Self::apply_vote(&mut self.voters[voter_partition(vote.question, vote.voter)], vote);
            question.standing.add_votes(delta);
        }
    }

    pub fn question(&self, id: QuestionId) -> Option<&QuestionState> {
        self.questions.get(&id)
    }

    pub fn questions(&self) -> impl Iterator<Item = &QuestionState> {
        self.questions.values()
    }

    /// Every voter's latest state, in no particular order.
    pub fn voters(&self) -> impl Iterator<Item = ((QuestionId, VoterId), VoterState)> + '_ {
        self.voters.iter().flat_map(|m| m.iter().map(|(k, v)| (*k, *v)))
    }

    pub fn voter(&self, question: QuestionId, voter: VoterId) -> Option<VoterState> {
        self.voters[voter_partition(question, voter)].get(&(question, voter)).copied()
    }

    /// What the event's own records say (settings, co-host links), if any arrived.
    pub fn event(&self, id: EventId) -> Option<&EventState> {
        self.events.get(&id)
    }

    /// Every event that has records of its own, in id order.
    pub fn events(&self) -> impl Iterator<Item = &EventState> {
        self.events.values()
    }

    /// How many questions it holds.
    pub fn len(&self) -> usize {
        self.questions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.questions.is_empty()
    }

    /// The questions sorted by id: a canonical form for comparing projections.
    pub fn sorted(&self) -> Vec<QuestionState> {
        let mut all: Vec<_> = self.questions.values().cloned().collect();
        all.sort_by_key(|q| q.standing.id);
        all
    }
}

/// A batch reduced to what it asks of the projection, before stored state is read: per
/// question the newest moderation stamps and the question text, per voter the newest vote.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchPlan {
    pub questions: BTreeMap<QuestionId, QuestionChange>,
    pub votes: BTreeMap<(QuestionId, VoterId), VoterState>,
    /// The events' own records, folded per event.
    pub events: BTreeMap<EventId, EventState>,
}

/// One question's part of a change. Adapters apply it as: create the question if missing
/// (with `event`), fill `asked` if not yet known, add `votes_delta`, and set `answered` /
/// `hidden` / `approved` / `spotlight` / `reply` only where the stored stamp is older (the
/// [`lww`] rule, as a condition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuestionChange {
    pub question: QuestionId,
    pub event: EventId,
    pub asked: Option<AskedView>,
    pub votes_delta: i64,
    pub answered: Option<Stamped<bool>>,
    pub hidden: Option<Stamped<bool>>,
    pub approved: Option<Stamped<bool>>,
    pub spotlight: Option<Stamped<bool>>,
    pub reply: Option<Stamped<String>>,
}

/// One voter's part of a change, to be written only if the stored state's record id is
/// still `expected` (`None`: no state stored yet). A failed condition means another
/// aggregator got there first: the whole change is a conflict and is planned again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VoterChange {
    pub question: QuestionId,
    pub voter: VoterId,
    pub expected: Option<RecordId>,
    pub new: VoterState,
    /// How this voter's change moves the question's count (-1, 0 or +1), so an adapter that
    /// must split one question's voters over several atomic writes can split the delta too.
    pub votes_delta: i64,
}

/// What one batch does to the projection, ready for an adapter to commit atomically.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ProjectionChange {
    pub questions: Vec<QuestionChange>,
    pub voters: Vec<VoterChange>,
    /// The events' own parts, each stored by [`EventState::merge`] with what is stored.
    pub events: Vec<EventState>,
}

impl ProjectionChange {
    pub fn is_empty(&self) -> bool {
        self.questions.is_empty() && self.voters.is_empty() && self.events.is_empty()
    }
}

impl BatchPlan {
    pub fn from_records<'a>(records: impl IntoIterator<Item = &'a Record>) -> Self {
        let mut plan = BatchPlan::default();
        for record in records {
            if record.body.is_event_level() {
                plan.events
                    .entry(record.event)
                    .or_insert_with(|| EventState::new(record.event))
                    .apply(record.id, &record.body);
                continue;
            }
            let q = plan.questions.entry(record.question).or_insert_with(|| QuestionChange {
                question: record.question,
                event: record.event,
                asked: None,
                votes_delta: 0,
                answered: None,
                hidden: None,
                approved: None,
                spotlight: None,
                reply: None,
            });
            let vote = match &record.body {
                RecordBody::Asked(asked) => {
                    q.asked.get_or_insert_with(|| AskedView {
                        text: asked.text.clone(),
                        who: asked.who.clone(),
                        asker: asked.voter,
                    });
                    Some((asked.voter, true))
                }
                RecordBody::Voted { voter, up } => Some((*voter, *up)),
                RecordBody::Answered { on } => {
                    if let Some(next) = lww(q.answered, Stamped { value: *on, at: record.id }) {
                        q.answered = Some(next);
                    }
                    None
                }
                RecordBody::Hidden { on } => {
                    if let Some(next) = lww(q.hidden, Stamped { value: *on, at: record.id }) {
                        q.hidden = Some(next);
                    }
                    None
                }
                RecordBody::Approved { on } => {
                    if let Some(next) = lww(q.approved, Stamped { value: *on, at: record.id }) {
                        q.approved = Some(next);
                    }
                    None
                }
                RecordBody::Spotlight { on } => {
                    if let Some(next) = lww(q.spotlight, Stamped { value: *on, at: record.id }) {
                        q.spotlight = Some(next);
                    }
                    None
                }
                RecordBody::Replied { text } => {
                    lww_into(&mut q.reply, &Stamped { value: text.clone(), at: record.id });
                    None
                }
                // Event-level kinds were taken above.
                _ => None,
            };
            if let Some((voter, up)) = vote {
                let incoming = VoterState { up, rec: record.id };
                let slot = plan.votes.entry((record.question, voter)).or_insert(incoming);
                if incoming.rec > slot.rec {
                    *slot = incoming;
                }
            }
        }
        plan
    }

    /// The voter states to read before [`resolve`](Self::resolve).
    pub fn voter_keys(&self) -> Vec<(QuestionId, VoterId)> {
        self.votes.keys().copied().collect()
    }

    /// Combines the plan with the stored voter states (as read, possibly missing) into the
    /// change to commit. Votes that are not newer than what is stored drop out here.
    pub fn resolve(&self, stored: &VoterStates) -> ProjectionChange {
        let mut questions = self.questions.clone();
        let mut voters = Vec::new();
        for (&(question, voter), &incoming) in &self.votes {
            let current = stored.get(&(question, voter)).copied();
            if let Some(t) = vote_transition(current, incoming) {
                voters.push(VoterChange {
                    question,
                    voter,
                    expected: current.map(|c| c.rec),
                    new: t.new,
                    votes_delta: t.votes_delta,
                });
                if let Some(q) = questions.get_mut(&question) {
                    q.votes_delta += t.votes_delta;
                }
            }
        }
        ProjectionChange {
            questions: questions.into_values().collect(),
            voters,
            events: self.events.values().cloned().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Asked;
    use ulid::Ulid;

    fn rec(id: u128, body: RecordBody) -> Record {
        Record {
            id: RecordId(Ulid(id)),
            event: EventId(Ulid(1)),
            question: QuestionId(Ulid(2)),
            region: "test".into(),
            body,
        }
    }

    #[test]
    fn repeated_and_older_votes_change_nothing() {
        let v = VoterId(Ulid(9));
        let mut p = Projection::new();
        p.apply(&rec(10, RecordBody::Voted { voter: v, up: true }));
        p.apply(&rec(11, RecordBody::Voted { voter: v, up: true }));
        p.apply(&rec(5, RecordBody::Voted { voter: v, up: false }));
        assert_eq!(p.question(QuestionId(Ulid(2))).unwrap().standing.votes, 1);
        p.apply(&rec(12, RecordBody::Voted { voter: v, up: false }));
        assert_eq!(p.question(QuestionId(Ulid(2))).unwrap().standing.votes, 0);
    }

    #[test]
    fn vote_before_asked_counts_and_asked_fills_text() {
        let mut p = Projection::new();
        p.apply(&rec(20, RecordBody::Voted { voter: VoterId(Ulid(7)), up: true }));
        let asked = Asked { text: "why though".into(), who: None, voter: VoterId(Ulid(8)) };
        p.apply(&rec(3, RecordBody::Asked(asked)));
        let q = p.question(QuestionId(Ulid(2))).unwrap();
        assert_eq!(q.standing.votes, 2);
        assert_eq!(q.asked.as_ref().unwrap().text, "why though");
    }

    #[test]
    fn moderation_is_last_writer_wins() {
        let mut p = Projection::new();
        p.apply(&rec(30, RecordBody::Answered { on: true }));
        p.apply(&rec(20, RecordBody::Answered { on: false }));
        p.apply(&rec(40, RecordBody::Hidden { on: true }));
        p.apply(&rec(41, RecordBody::Hidden { on: false }));
        let c = p.question(QuestionId(Ulid(2))).unwrap().standing;
        assert_eq!(c.answered_at(), Some(RecordId(Ulid(30))));
        assert!(!c.is_hidden());
    }

    #[test]
    fn resolve_skips_stale_votes_and_sets_expectations() {
        let v = VoterId(Ulid(9));
        let q = QuestionId(Ulid(2));
        let plan = BatchPlan::from_records(&[
            rec(10, RecordBody::Voted { voter: v, up: true }),
            rec(12, RecordBody::Voted { voter: v, up: false }),
        ]);
        let mut stored = FxHashMap::default();
        stored.insert((q, v), VoterState { up: true, rec: RecordId(Ulid(11)) });
        let change = plan.resolve(&stored);
        assert_eq!(change.voters.len(), 1);
        assert_eq!(change.voters[0].expected, Some(RecordId(Ulid(11))));
        assert_eq!(change.questions[0].votes_delta, -1);
        stored.insert((q, v), VoterState { up: false, rec: RecordId(Ulid(13)) });
        let change = plan.resolve(&stored);
        assert!(change.voters.is_empty());
        assert_eq!(change.questions[0].votes_delta, 0);
    }
}
