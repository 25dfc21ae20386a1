//! The fold is a join-semilattice: any permutation and any duplication of the same records
//! gives the same projection (design §3). And it is the *right* semilattice: both folds (the
//! pure [`Projection`] and the aggregator's [`BatchPlan`] over stored state) are compared
//! with an oracle written here from the rules alone, after every batch of a shuffled,
//! duplicated delivery.

use std::collections::BTreeMap;

use ledger::rank::spotlight_of;
use ledger::secret::SecretHash;
use ledger::{
    event_subject, Asked, AskedView, Asking, BatchPlan, EventId, EventState, Moderation, Projection, QuestionId,
    QuestionStanding, QuestionState, Record, RecordBody, RecordId, Stamped, VoterId, VoterState,
};
use proptest::prelude::*;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rustc_hash::FxHashMap;
use ulid::Ulid;

const EVENTS: u128 = 2;
const QUESTIONS: u8 = 6;
const VOTERS: u8 = 8;

fn event_of(q: u8) -> EventId {
    EventId(Ulid(9 + q as u128 % EVENTS))
}

/// A co-host link's hash, one of four per test.
fn cohost(v: u8) -> SecretHash {
    ledger::secret::hash_secret(&format!("cohost{}", v % 4))
}

/// Distinct records (unique ids) over two events, six questions and eight voters: asks,
/// votes up and down, every per-question flag (answered, hidden, approved, spotlight) on and
/// off, written answers (some empty), and the events' own records (each setting, co-host
/// links minted and revoked). A question's records all name its event, and all its `asked`
/// records carry its one text and its one asker (ingest mints a fresh question id for every
/// ask); the asker is one of the voters, who may vote on it later. An event's own records
/// name the event as their question.
fn arb_records() -> impl Strategy<Value = Vec<Record>> {
    proptest::collection::btree_map(1u128..2_000, (0..QUESTIONS, 0..VOTERS, 0u8..18), 1..160).prop_map(|m| {
        m.into_iter()
            .map(|(id, (q, v, k))| {
                let voter = VoterId(Ulid(100 + v as u128));
                let body = match k {
                    0 => RecordBody::Asked(Asked {
                        text: format!("q{q}"),
                        who: Some(format!("w{q}")),
                        voter: VoterId(Ulid(100 + (q % VOTERS) as u128)),
                    }),
                    1..=4 => RecordBody::Voted { voter, up: k % 2 == 0 },
                    5 | 6 => RecordBody::Answered { on: k == 5 },
                    7 => RecordBody::Hidden { on: v % 2 == 0 },
                    8 => RecordBody::Approved { on: v % 2 == 0 },
                    9 | 10 => RecordBody::Spotlight { on: k == 9 || v % 3 == 0 },
                    11 => RecordBody::Replied { text: if v == 0 { String::new() } else { format!("reply {v}") } },
                    12 => RecordBody::Titled { title: format!("title {v}") },
                    13 => RecordBody::ModerationSet {
                        moderation: if v % 2 == 0 { Moderation::PreApprove } else { Moderation::Off },
                    },
                    14 => RecordBody::AskingSet { asking: if v % 2 == 0 { Asking::Closed } else { Asking::Open } },
                    15 => RecordBody::BlockedWordsSet { words: (0..v % 3).map(|i| format!("w{i}{v}")).collect() },
                    16 => RecordBody::CohostMinted { secret_hash: cohost(v) },
                    _ => RecordBody::CohostRevoked { secret_hash: cohost(v) },
                };
                let event = event_of(q);
                let question =
                    if body.is_event_level() { event_subject(event) } else { QuestionId(Ulid(1_000 + q as u128)) };
                Record { id: RecordId(Ulid(id)), event, question, region: "r".into(), body }
            })
            .collect()
    })
}

/// The events' own state, the slow and obvious way: each setting the value of the
/// highest-id record of its kind; a co-host link valid if some record minted it and none
/// revoked it.
fn oracle_events(records: &[Record]) -> Vec<EventState> {
    let mut events: BTreeMap<EventId, EventState> = BTreeMap::new();
    let mut latest: BTreeMap<(EventId, &'static str), RecordId> = BTreeMap::new();
    for r in records.iter().filter(|r| r.body.is_event_level()) {
        let e = events.entry(r.event).or_insert_with(|| EventState::new(r.event));
        let kind = r.body.kind();
        let newest = latest.get(&(r.event, kind)).is_none_or(|held| *held < r.id);
        match &r.body {
            RecordBody::CohostMinted { secret_hash } => {
                let revoked = records
                    .iter()
                    .any(|o| o.event == r.event && o.body == RecordBody::CohostRevoked { secret_hash: *secret_hash });
                e.cohosts.insert(*secret_hash, !revoked);
            }
            RecordBody::CohostRevoked { secret_hash } => {
                e.cohosts.insert(*secret_hash, false);
            }
            _ if !newest => {}
            RecordBody::Titled { title } => e.title = Some(Stamped { value: title.clone(), at: r.id }),
            RecordBody::ModerationSet { moderation } => e.moderation = Some(Stamped { value: *moderation, at: r.id }),
            RecordBody::AskingSet { asking } => e.asking = Some(Stamped { value: *asking, at: r.id }),
            RecordBody::BlockedWordsSet { words } => e.blocked_words = Some(Stamped { value: words.clone(), at: r.id }),
            _ => unreachable!("only the event's own kinds"),
        }
        if newest {
            latest.insert((r.event, kind), r.id);
        }
    }
    events.into_values().collect()
}

/// The question in each event's spotlight, from the definition: the event's highest-id
/// spotlight record decides; if it is `on` and its question has not been answered by a
/// later record, is not hidden and does not wait for review, that question; else none.
fn oracle_spotlights(records: &[Record]) -> BTreeMap<EventId, Option<QuestionId>> {
    let mut out = BTreeMap::new();
    for event in records.iter().map(|r| r.event).collect::<std::collections::BTreeSet<_>>() {
        let latest_of = |question: QuestionId, kind: &str| {
            records.iter().filter(|r| r.question == question && r.body.kind() == kind).max_by_key(|r| r.id)
        };
        let newest = records
            .iter()
            .filter(|r| r.event == event && matches!(r.body, RecordBody::Spotlight { .. }))
            .max_by_key(|r| r.id);
        let lit = newest.and_then(|s| {
            let on = |r: Option<&Record>, kind_on: fn(&RecordBody) -> bool| r.is_some_and(|r| kind_on(&r.body));
            let answered_since = latest_of(s.question, "answered")
                .is_some_and(|a| a.id > s.id && matches!(a.body, RecordBody::Answered { on: true }));
            let hidden = on(latest_of(s.question, "hidden"), |b| matches!(b, RecordBody::Hidden { on: true }));
            let pending = on(latest_of(s.question, "approved"), |b| matches!(b, RecordBody::Approved { on: false }));
            let turned_on = matches!(s.body, RecordBody::Spotlight { on: true });
            (turned_on && !answered_since && !hidden && !pending).then_some(s.question)
        });
        out.insert(event, lit);
    }
    out
}

/// Which question each event's lists put in the spotlight, by the one rule.
fn spotlights(
    questions: &[QuestionState],
    events: impl Iterator<Item = EventId>,
) -> BTreeMap<EventId, Option<QuestionId>> {
    events.map(|e| (e, spotlight_of(questions.iter().map(|q| &q.standing).filter(|q| q.event == e)))).collect()
}

/// What a ledger means, computed the slow and obvious way from the raw list (duplicates and
/// order included): per question and voter the choice of their record with the highest id
/// (an `asked` record is its asker's up-vote); per question the number of voters whose
/// choice is up, and `answered`/`hidden` as set by the highest-id record of that kind. A
/// question exists once any record names it, even a vote or a toggle that arrived before
/// its `asked` (then without a text).
fn oracle(records: &[Record]) -> (Vec<QuestionState>, BTreeMap<(QuestionId, VoterId), VoterState>) {
    let mut latest: BTreeMap<(QuestionId, VoterId), VoterState> = BTreeMap::new();
    let mut questions: BTreeMap<QuestionId, QuestionState> = BTreeMap::new();
    let newer = |held: Option<RecordId>, id: RecordId| held.is_none_or(|held| held < id);
    for r in records {
        if r.body.is_event_level() {
            continue;
        }
        let q = questions.entry(r.question).or_insert_with(|| QuestionState {
            standing: QuestionStanding {
                id: r.question,
                event: r.event,
                votes: 0,
                answered: None,
                hidden: None,
                approved: None,
                spotlight: None,
            },
            asked: None,
            reply: None,
        });
        let choice = match &r.body {
            RecordBody::Asked(asked) => {
                q.asked = Some(AskedView { text: asked.text.clone(), who: asked.who.clone(), asker: asked.voter });
                Some((asked.voter, true))
            }
            RecordBody::Voted { voter, up } => Some((*voter, *up)),
            RecordBody::Answered { on } => {
                if newer(q.standing.answered.map(|a| a.at), r.id) {
                    q.standing.answered = Some(Stamped { value: *on, at: r.id });
                }
                None
            }
            RecordBody::Hidden { on } => {
                if newer(q.standing.hidden.map(|h| h.at), r.id) {
                    q.standing.hidden = Some(Stamped { value: *on, at: r.id });
                }
                None
            }
            RecordBody::Approved { on } => {
                if newer(q.standing.approved.map(|h| h.at), r.id) {
                    q.standing.approved = Some(Stamped { value: *on, at: r.id });
                }
                None
            }
            RecordBody::Spotlight { on } => {
                if newer(q.standing.spotlight.map(|h| h.at), r.id) {
                    q.standing.spotlight = Some(Stamped { value: *on, at: r.id });
                }
                None
            }
            RecordBody::Replied { text } => {
                if newer(q.reply.as_ref().map(|h| h.at), r.id) {
                    q.reply = Some(Stamped { value: text.clone(), at: r.id });
                }
                None
            }
            _ => unreachable!("the event's own records were taken above"),
        };
        if let Some((voter, up)) = choice {
            let held = latest.get(&(r.question, voter)).map(|s| s.rec);
            if newer(held, r.id) {
                latest.insert((r.question, voter), VoterState { up, rec: r.id });
            }
        }
    }
    for q in questions.values_mut() {
        q.standing.votes = latest.iter().filter(|((question, _), s)| *question == q.standing.id && s.up).count() as u64;
    }
    (questions.into_values().collect(), latest)
}

fn fold(records: &[Record]) -> (Vec<QuestionState>, Vec<EventState>) {
    let mut p = Projection::new();
    for r in records {
        p.apply(r);
    }
    (p.sorted(), p.events().cloned().collect())
}

fn voters_of(p: &Projection) -> BTreeMap<(QuestionId, VoterId), VoterState> {
    p.voters().collect()
}

/// The projection as an adapter stores it, written the way [`ledger::QuestionChange`] and
/// [`ledger::VoterChange`] tell adapters to commit a change.
#[derive(Default)]
struct Stored {
    questions: BTreeMap<QuestionId, QuestionState>,
    voters: FxHashMap<(QuestionId, VoterId), VoterState>,
    events: BTreeMap<EventId, EventState>,
}

impl Stored {
    /// One aggregator step: plan the batch, read the voter states it names, resolve, commit.
    fn fold_batch(&mut self, batch: &[Record]) {
        let plan = BatchPlan::from_records(batch);
        let read: FxHashMap<_, _> =
            plan.voter_keys().into_iter().filter_map(|k| self.voters.get(&k).map(|s| (k, *s))).collect();
        let change = plan.resolve(&read);
        for v in &change.voters {
            let key = (v.question, v.voter);
            assert_eq!(self.voters.get(&key).map(|s| s.rec), v.expected, "nothing else commits here");
            self.voters.insert(key, v.new);
        }
        for c in change.questions {
            let q = self.questions.entry(c.question).or_insert_with(|| QuestionState::new(c.question, c.event));
            if q.asked.is_none() {
                q.asked = c.asked;
            }
            q.standing.add_votes(c.votes_delta);
            if let Some(a) = c.answered.filter(|a| q.standing.answered.is_none_or(|held| held.at < a.at)) {
                q.standing.answered = Some(a);
            }
            if let Some(h) = c.hidden.filter(|h| q.standing.hidden.is_none_or(|held| held.at < h.at)) {
                q.standing.hidden = Some(h);
            }
            if let Some(a) = c.approved.filter(|a| q.standing.approved.is_none_or(|held| held.at < a.at)) {
                q.standing.approved = Some(a);
            }
            if let Some(s) = c.spotlight.filter(|s| q.standing.spotlight.is_none_or(|held| held.at < s.at)) {
                q.standing.spotlight = Some(s);
            }
            if let Some(r) = c.reply.filter(|r| q.reply.as_ref().is_none_or(|held| held.at < r.at)) {
                q.reply = Some(r);
            }
        }
        for e in change.events {
            self.events.entry(e.event).or_insert_with(|| EventState::new(e.event)).merge(&e);
        }
    }

    fn voters(&self) -> BTreeMap<(QuestionId, VoterId), VoterState> {
        self.voters.iter().map(|(k, v)| (*k, *v)).collect()
    }
}

/// The records as a ledger may deliver them: each repeated 1 to 3 times, shuffled, and cut
/// into batches of 1 to 16.
fn deliver(records: &[Record], seed: u64) -> (Vec<Record>, Vec<usize>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut delivered: Vec<Record> =
        records.iter().flat_map(|r| std::iter::repeat_n(r.clone(), rng.gen_range(1..=3))).collect();
    delivered.shuffle(&mut rng);
    let mut cuts = Vec::new();
    let mut at = 0;
    while at < delivered.len() {
        at = (at + rng.gen_range(1..=16)).min(delivered.len());
        cuts.push(at);
    }
    (delivered, cuts)
}

proptest! {
    #[test]
    fn any_order_and_duplication_gives_the_same_projection(
        records in arb_records(),
        shuffle in any::<u64>(),
    ) {
        let (delivered, _) = deliver(&records, shuffle);
        prop_assert_eq!(fold(&delivered), fold(&records));
    }

    /// Whatever the order and duplication, each event has at most one question in the
    /// spotlight, the same one, and a ranked list puts it first.
    #[test]
    fn the_spotlight_is_unique_and_order_free(records in arb_records(), shuffle in any::<u64>()) {
        let (delivered, _) = deliver(&records, shuffle);
        let (questions, _) = fold(&records);
        let (shuffled, _) = fold(&delivered);
        for e in (0..EVENTS).map(|e| EventId(Ulid(9 + e))) {
            let mut list: Vec<QuestionStanding> =
                shuffled.iter().map(|q| q.standing).filter(|q| q.event == e).collect();
            let lit = spotlight_of(&list);
            prop_assert_eq!(lit, spotlight_of(questions.iter().map(|q| &q.standing).filter(|q| q.event == e)));
            ledger::rank::rank(&mut list, 10_000);
            if let Some(lit) = lit {
                prop_assert_eq!(list.first().map(|q| q.id), Some(lit));
            }
        }
    }

    #[test]
    fn asked_text_is_kept_whatever_the_order(records in arb_records()) {
        let mut reversed = records.clone();
        reversed.reverse();
        prop_assert_eq!(fold(&reversed), fold(&records));
    }

    /// After every batch, both folds hold exactly what the oracle computes from the records
    /// delivered so far: counts, texts, moderation stamps and every voter's state.
    #[test]
    fn both_folds_agree_with_the_oracle_after_every_batch(
        records in arb_records(),
        seed in any::<u64>(),
    ) {
        let (delivered, cuts) = deliver(&records, seed);
        let mut projection = Projection::new();
        let mut stored = Stored::default();
        let mut from = 0;
        for to in cuts {
            let batch = &delivered[from..to];
            for r in batch {
                projection.apply(r);
            }
            stored.fold_batch(batch);
            let (questions, voters) = oracle(&delivered[..to]);
            let events = oracle_events(&delivered[..to]);
            prop_assert_eq!(&projection.sorted(), &questions, "projection after {} records", to);
            prop_assert_eq!(&projection.events().cloned().collect::<Vec<_>>(), &events, "projection's events after {} records", to);
            prop_assert_eq!(&stored.events.values().cloned().collect::<Vec<_>>(), &events, "batch fold's events after {} records", to);
            let all_events = || (0..EVENTS).map(|e| EventId(Ulid(9 + e)));
            let stored_questions: Vec<QuestionState> = stored.questions.values().cloned().collect();
            let expected = oracle_spotlights(&delivered[..to]);
            let expected: BTreeMap<_, _> = all_events().map(|e| (e, expected.get(&e).copied().flatten())).collect();
            prop_assert_eq!(&spotlights(&projection.sorted(), all_events()), &expected, "projection's spotlight after {} records", to);
            prop_assert_eq!(&spotlights(&stored_questions, all_events()), &expected, "batch fold's spotlight after {} records", to);
            prop_assert_eq!(&voters_of(&projection), &voters, "projection's voters after {} records", to);
            prop_assert_eq!(&stored.questions.values().cloned().collect::<Vec<_>>(), &questions, "batch fold after {} records", to);
            prop_assert_eq!(&stored.voters(), &voters, "batch fold's voters after {} records", to);
            from = to;
        }
    }
}

/// The oracle itself, on a hand-worked ledger: it must not merely agree with the fold.
#[test]
fn the_oracle_counts_latest_choices_by_hand() {
    let (e, q) = (EventId(Ulid(9)), QuestionId(Ulid(1_000)));
    let (ann, bob, cat) = (VoterId(Ulid(100)), VoterId(Ulid(101)), VoterId(Ulid(102)));
    let rec =
        |id: u128, body: RecordBody| Record { id: RecordId(Ulid(id)), event: e, question: q, region: "r".into(), body };
    let records = [
        rec(50, RecordBody::Voted { voter: bob, up: true }),
        rec(10, RecordBody::Asked(Asked { text: "why so?".into(), who: None, voter: ann })),
        rec(40, RecordBody::Voted { voter: ann, up: false }),
        rec(30, RecordBody::Voted { voter: cat, up: true }),
        rec(20, RecordBody::Voted { voter: cat, up: false }),
        rec(60, RecordBody::Answered { on: true }),
        rec(55, RecordBody::Answered { on: false }),
        rec(70, RecordBody::Hidden { on: false }),
        rec(50, RecordBody::Voted { voter: bob, up: true }),
    ];
    let (questions, voters) = oracle(&records);
    assert_eq!(questions.len(), 1);
    let c = questions[0].standing;
    // Ann retracted at 40 (after asking at 10); Bob is up (twice delivered); Cat's latest (30) is up.
    assert_eq!(c.votes, 2);
    assert_eq!(c.answered, Some(Stamped { value: true, at: RecordId(Ulid(60)) }));
    assert_eq!(c.hidden, Some(Stamped { value: false, at: RecordId(Ulid(70)) }));
    assert_eq!(questions[0].asked.as_ref().map(|a| a.text.as_str()), Some("why so?"));
    assert_eq!(voters.get(&(q, ann)), Some(&VoterState { up: false, rec: RecordId(Ulid(40)) }));
    assert_eq!(voters.len(), 3);

    // A vote before (or without) the `asked` record: the question exists, counted, no text.
    let (questions, _) = oracle(&records[..1]);
    assert_eq!((questions[0].standing.votes, questions[0].asked.clone()), (1, None));
}

/// The new parts of the oracle, on a hand-worked ledger: each setting's newest record wins,
/// a revocation wins over a later mint, and the event's newest spotlight record decides.
#[test]
fn the_oracle_folds_settings_links_and_the_spotlight_by_hand() {
    let e = EventId(Ulid(9));
    let (q1, q2) = (QuestionId(Ulid(1_000)), QuestionId(Ulid(1_001)));
    let rec = |id: u128, question: QuestionId, body: RecordBody| Record {
        id: RecordId(Ulid(id)),
        event: e,
        question,
        region: "r".into(),
        body,
    };
    let on_event = |id: u128, body: RecordBody| rec(id, event_subject(e), body);
    let records = [
        on_event(20, RecordBody::Titled { title: "newer".into() }),
        on_event(10, RecordBody::Titled { title: "older".into() }),
        on_event(15, RecordBody::AskingSet { asking: Asking::Closed }),
        on_event(30, RecordBody::CohostRevoked { secret_hash: cohost(1) }),
        on_event(40, RecordBody::CohostMinted { secret_hash: cohost(1) }),
        on_event(41, RecordBody::CohostMinted { secret_hash: cohost(2) }),
        rec(50, q1, RecordBody::Spotlight { on: true }),
        rec(60, q2, RecordBody::Spotlight { on: true }),
        rec(55, q2, RecordBody::Spotlight { on: false }),
    ];
    let events = oracle_events(&records);
    assert_eq!(events.len(), 1);
    let s = events[0].settings();
    assert_eq!((s.title.as_deref(), s.asking, s.moderation), (Some("newer"), Asking::Closed, Moderation::Off));
    assert_eq!(events[0].cohosts.get(&cohost(1)), Some(&false), "revoked before it was minted: still revoked");
    assert_eq!(events[0].cohosts.get(&cohost(2)), Some(&true));
    assert_eq!(oracle_spotlights(&records).get(&e), Some(&Some(q2)), "q2's record (60) is the newest");
    // Answered after its spotlight: none is, and q1's older spotlight does not come back.
    let mut answered = records.to_vec();
    answered.push(rec(70, q2, RecordBody::Answered { on: true }));
    assert_eq!(oracle_spotlights(&answered).get(&e), Some(&None));
    // Turned off as the newest spotlight record: none.
    let mut off = records.to_vec();
    off.push(rec(80, q1, RecordBody::Spotlight { on: false }));
    assert_eq!(oracle_spotlights(&off).get(&e), Some(&None));
}
