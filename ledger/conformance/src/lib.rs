//! The storage conformance suite: what every adapter of `ledger::ports` must do, written
//! once as async checks over the ports and run by each adapter's tests (SQLite in
//! `ledger/sqlite/tests/conformance.rs`, DynamoDB on a local emulator in
//! `ledger/dynamodb/tests/conformance.rs`).
//!
//! Every check works on fresh event ids, so all of them can share one store (and one set of
//! tables); whole-store reads are only checked to *contain* what a check wrote. The
//! randomized checks are seeded: the seed is printed in every failure message, and
//! `CONFORMANCE_SEED=n` replays one.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;
use std::sync::Arc;

use ledger::ports::{
    Commit, EventRow, EventStore, LedgerStore, ProjectionReader, ProjectionStore, Replacement, ScanToken, StoreError,
};
use ledger::secret::hash_secret;
use ledger::{
    Asked, Asking, BatchPlan, EventId, Moderation, Projection, QuestionId, QuestionStanding, QuestionState, Record,
    RecordBody, RecordId, VoterId,
};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use ulid::Ulid;

/// The ports of one store under test (usually the same object four times).
#[derive(Clone)]
pub struct Stores {
    pub events: Arc<dyn EventStore>,
    pub ledger: Arc<dyn LedgerStore>,
    pub projection: Arc<dyn ProjectionStore>,
    pub reader: Arc<dyn ProjectionReader>,
}

impl Stores {
    /// All four ports from one adapter object.
    pub fn of<S>(store: Arc<S>) -> Self
    where
        S: EventStore + LedgerStore + ProjectionStore + ProjectionReader + 'static,
    {
        Self { events: store.clone(), ledger: store.clone(), projection: store.clone(), reader: store }
    }
}

/// How big the randomized checks are. Emulators are slow: keep it small there.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    pub records: usize,
    pub questions: usize,
    pub voters: usize,
    pub batch_records_max: usize,
    /// Records appended for the paging check (read back in pages of `page_records`).
    pub paging_records: usize,
    pub page_records: usize,
    /// Distinct voters on one question in one batch (more than one DynamoDB transaction holds).
    pub crowd_voters: usize,
}

impl Scale {
    /// For an in-process store.
    pub const LOCAL: Scale = Scale {
        records: 400,
        questions: 6,
        voters: 12,
        batch_records_max: 40,
        paging_records: 250,
        page_records: 17,
        crowd_voters: 1_000,
    };
    /// For a store behind a slow emulator.
    pub const EMULATOR: Scale = Scale {
        records: 70,
        questions: 4,
        voters: 8,
        batch_records_max: 12,
        paging_records: 45,
        page_records: 7,
        crowd_voters: 230,
    };
}

/// The seed for the randomized checks: `CONFORMANCE_SEED` or a fresh one.
pub fn seed() -> u64 {
    std::env::var("CONFORMANCE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random)
}

/// One `#[tokio::test]` per conformance check, so that every failure shows rather than the
/// first one hiding the rest. Every check takes the stores, the scale and the seed (the
/// checks with fixed data ignore the last two), so each test calls its check directly. `$stores` is an async expression giving
/// `Option<(guard, Stores)>` (`None` skips the test, e.g. without an emulator; the guard,
/// such as a temporary directory, lives as long as the test).
#[macro_export]
macro_rules! conformance_tests {
    ($stores:expr, $scale:expr) => {
        $crate::conformance_tests!(@each $stores, $scale;
            events_round_trip_and_unknown,
            append_and_read_back,
            an_append_never_overwrites_a_stored_record,
            reads_past_one_page,
            unknown_questions_and_early_votes,
            a_voters_own_view_is_what_they_asked_and_vote_up,
            a_stale_commit_is_a_conflict_and_changes_nothing,
            a_commit_is_all_or_nothing_across_questions,
            a_competing_commit_between_read_and_commit_is_replanned,
            a_batch_that_always_conflicts_is_given_up_and_changes_nothing,
            duplicate_and_out_of_order_delivery,
            concurrent_aggregators,
            replace_restores_a_fold,
            a_crowd_on_one_question,
            the_host_tools_fold_like_the_rest
        );
    };
    (@each $stores:expr, $scale:expr; $($check:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let Some((_guard, stores)) = $stores.await else { return };
                $crate::$check(&stores, $scale, $crate::seed()).await;
            }
        )*
    };
}

fn must<T, E: Display>(what: &str, result: Result<T, E>) -> T {
    result.unwrap_or_else(|e| panic!("{what}: {e}"))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// A fresh id stamped `offset_ms` after now (a real time, so expiry lies in the future).
fn ulid_at(rng: &mut impl Rng, offset_ms: u64) -> Ulid {
    Ulid::from_parts(now_ms() + offset_ms, rng.gen())
}

fn record(rng: &mut impl Rng, event: EventId, question: QuestionId, offset_ms: u64, body: RecordBody) -> Record {
    Record { id: RecordId(ulid_at(rng, offset_ms)), event, question, region: "conformance".into(), body }
}

/// A random history of one event: each question asked once, then votes (up and down) from a
/// small set of voters so they collide, and some answered/hidden toggles.
pub fn history(rng: &mut impl Rng, event: EventId, scale: Scale) -> Vec<Record> {
    let questions: Vec<QuestionId> = (0..scale.questions).map(|_| QuestionId(ulid_at(rng, 0))).collect();
    let voters: Vec<VoterId> = (0..scale.voters).map(|_| VoterId::random()).collect();
    let mut records = Vec::with_capacity(scale.records);
    for (i, &q) in questions.iter().enumerate() {
        let who = (i % 2 == 0).then(|| format!("Asker {i}"));
        let asked = Asked { text: format!("Question number {i}, why?"), who, voter: voters[i % voters.len()] };
        let offset = rng.gen_range(0..1_000);
        records.push(record(rng, event, q, offset, RecordBody::Asked(asked)));
    }
    while records.len() < scale.records {
        let q = questions[rng.gen_range(0..questions.len())];
        let offset = rng.gen_range(0..60_000);
        let body = match rng.gen_range(0..10) {
            0 => RecordBody::Answered { on: rng.gen_bool(0.7) },
            1 => RecordBody::Hidden { on: rng.gen_bool(0.3) },
            _ => RecordBody::Voted { voter: voters[rng.gen_range(0..voters.len())], up: rng.gen_bool(0.7) },
        };
        records.push(record(rng, event, q, offset, body));
    }
    records
}

/// A delivery of `records`: shuffled, with duplicates, cut into random batches.
pub fn delivery(rng: &mut impl Rng, records: &[Record], batch_records_max: usize) -> Vec<Vec<Record>> {
    let mut all = records.to_vec();
    for _ in 0..records.len() / 4 {
        all.push(records[rng.gen_range(0..records.len())].clone());
    }
    all.shuffle(rng);
    let mut batches = Vec::new();
    while !all.is_empty() {
        let n = rng.gen_range(1..=batch_records_max.max(1)).min(all.len());
        batches.push(all.drain(..n).collect());
    }
    batches
}

/// Asserts that the stored projection of `event` is the pure fold of `records`: question
/// states (with texts), the `top` counters, and every voter's state.
pub async fn assert_projection_is_fold(s: &Stores, event: EventId, records: &[Record], context: &str) {
    let mut fold = Projection::new();
    for r in records {
        fold.apply(r);
    }
    let expected: Vec<QuestionState> = fold.sorted().into_iter().filter(|q| q.standing.event == event).collect();
    let mut stored = must("read the projection's questions", s.projection.questions(Some(event)).await);
    stored.sort_by_key(|q| q.standing.id);
    assert_eq!(stored, expected, "{context}: stored questions differ from the pure fold");
    let mut counters = must("read the event's counters", s.reader.event_questions(event).await);
    counters.sort_by_key(|c| c.id);
    let expected_counters: Vec<QuestionStanding> = expected.iter().map(|q| q.standing).collect();
    assert_eq!(counters, expected_counters, "{context}: the event's list differs from the pure fold");
    let keys: BTreeSet<(QuestionId, VoterId)> = records
        .iter()
        .filter_map(|r| match &r.body {
            RecordBody::Asked(a) => Some((r.question, a.voter)),
            RecordBody::Voted { voter, .. } => Some((r.question, *voter)),
            _ => None,
        })
        .collect();
    let keys: Vec<_> = keys.into_iter().collect();
    let voters = must("read voter states", s.projection.voters(&keys).await);
    for key in &keys {
        assert_eq!(voters.get(key).copied(), fold.voter(key.0, key.1), "{context}: voter {key:?} differs");
    }
}

async fn deliver(s: &Stores, batches: &[Vec<Record>], context: &str) {
    for batch in batches {
        must(context, aggregator::apply_batch(s.projection.as_ref(), batch, None).await);
    }
}

/// Events: create and read back; a taken id is refused and changes nothing; unknown is none.
pub async fn events_round_trip_and_unknown(s: &Stores, _scale: Scale, _seed: u64) {
    let id = EventId(Ulid::new());
    let row = EventRow { id, secret_hash: hash_secret("sesame"), expire_unix: id.unix_seconds() + 30 * 86_400 };
    must("create an event", s.events.create_event(&row).await);
    assert_eq!(must("read the event", s.events.event(id).await), Some(row.clone()), "event round trip (with expiry)");
    let impostor = EventRow { secret_hash: hash_secret("other"), ..row.clone() };
    assert!(
        matches!(s.events.create_event(&impostor).await, Err(StoreError::Rejected(_))),
        "creating an event with a taken id must be Rejected"
    );
    assert_eq!(must("re-read the event", s.events.event(id).await), Some(row), "a refused create changed the event");
    assert_eq!(must("read an unknown event", s.events.event(EventId(Ulid::new())).await), None);
}

/// The ledger: every kind of record appended (alone and in batches) reads back as written;
/// appending again changes nothing.
pub async fn append_and_read_back(s: &Stores, _scale: Scale, _seed: u64) {
    let rng = &mut StdRng::seed_from_u64(7);
    let event = EventId(Ulid::new());
    let q = QuestionId(Ulid::new());
    let voter = VoterId::random();
    let records = vec![
        record(
            rng,
            event,
            q,
            0,
            RecordBody::Asked(Asked {
                text: "Who? — naïve “quotes” 🎉".into(), who: Some("Zoë".into()), voter
            }),
        ),
        record(rng, event, q, 1, RecordBody::Voted { voter: VoterId::random(), up: true }),
        record(rng, event, q, 2, RecordBody::Voted { voter, up: false }),
        record(rng, event, q, 3, RecordBody::Answered { on: true }),
        record(rng, event, q, 4, RecordBody::Hidden { on: false }),
        record(
            rng,
            event,
            QuestionId(Ulid::new()),
            5,
            RecordBody::Asked(Asked { text: "No name here".into(), who: None, voter }),
        ),
    ];
    must("append one record", s.ledger.append(&records[..1]).await);
    must("append a batch", s.ledger.append(&records[1..]).await);
    must("append duplicates", s.ledger.append(&records).await);
    must("append one duplicate", s.ledger.append(&records[2..3]).await);
    let page = must("scan the event", s.ledger.scan(Some(event), None, 1_000).await);
    assert!(page.next.is_none(), "a small event fits one page");
    let mut got = page.records;
    got.sort_by_key(|r| r.id);
    let mut want = records.clone();
    want.sort_by_key(|r| r.id);
    assert_eq!(got, want, "records read back differ from those appended (or duplicates were stored)");
    assert_eq!(must("count the event", s.ledger.count(Some(event)).await), records.len() as u64);
    assert!(must("count all", s.ledger.count(None).await) >= records.len() as u64);
    let mut everything = BTreeSet::new();
    let mut after = None;
    loop {
        let page = must("scan the whole ledger", s.ledger.scan(None, after, 500).await);
        everything.extend(page.records.iter().map(|r| r.id));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert!(records.iter().all(|r| everything.contains(&r.id)), "a whole-ledger scan misses records");
    assert_eq!(
        must("scan an unknown event", s.ledger.scan(Some(EventId(Ulid::new())), None, 10).await).records,
        vec![]
    );
    assert!(
        s.ledger.scan(Some(event), Some(ScanToken("not a token".into())), 10).await.is_err(),
        "a malformed scan token must be an error"
    );
}

/// A record whose id is already stored is skipped, never written over: appending (alone or
/// among others, as `ledger import` does) a different record under a stored id leaves the
/// stored one, and within one call the first record of an id is the one kept.
pub async fn an_append_never_overwrites_a_stored_record(s: &Stores, _scale: Scale, _seed: u64) {
    let rng = &mut StdRng::seed_from_u64(19);
    let event = EventId(Ulid::new());
    let q = QuestionId(Ulid::new());
    let voter = VoterId::random();
    let first = record(rng, event, q, 0, RecordBody::Voted { voter, up: true });
    let impostor = Record { body: RecordBody::Hidden { on: true }, region: "impostor".into(), ..first.clone() };
    let bystander = record(rng, event, q, 1, RecordBody::Voted { voter: VoterId::random(), up: true });
    let twin = record(rng, event, q, 2, RecordBody::Answered { on: true });
    let twin_impostor = Record { body: RecordBody::Answered { on: false }, ..twin.clone() };
    must("append the first record", s.ledger.append(std::slice::from_ref(&first)).await);
    must(
        "append another record under a stored id, among others",
        s.ledger.append(&[bystander.clone(), impostor.clone(), twin.clone(), twin_impostor]).await,
    );
    must("append it alone", s.ledger.append(std::slice::from_ref(&impostor)).await);
    let mut got = must("scan the event", s.ledger.scan(Some(event), None, 100).await).records;
    got.sort_by_key(|r| r.id);
    let mut want = vec![first, bystander, twin];
    want.sort_by_key(|r| r.id);
    assert_eq!(got, want, "an append overwrote a stored record (or kept the second of two records with one id)");
}

/// Scans in small pages return every record exactly once, for one event and for all.
pub async fn reads_past_one_page(s: &Stores, scale: Scale, _seed: u64) {
    let rng = &mut StdRng::seed_from_u64(11);
    let event = EventId(Ulid::new());
    let q = QuestionId(Ulid::new());
    let records: Vec<Record> = (0..scale.paging_records)
        .map(|i| record(rng, event, q, i as u64, RecordBody::Voted { voter: VoterId::random(), up: true }))
        .collect();
    must("append", s.ledger.append(&records).await);
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut after = None;
    loop {
        let page = must("scan a page", s.ledger.scan(Some(event), after, scale.page_records).await);
        assert!(page.records.len() <= scale.page_records, "a page holds more than asked for");
        pages += 1;
        assert!(pages <= scale.paging_records + 2, "the scan does not end");
        seen.extend(page.records.into_iter().map(|r| r.id));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert!(pages > 1, "expected several pages");
    let unique: BTreeSet<_> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "a record was returned twice across pages");
    let want: BTreeSet<_> = records.iter().map(|r| r.id).collect();
    assert_eq!(unique, want, "paging lost records");
}

/// Reads of unknown ids are empty, not errors; a vote that arrives before its question's
/// `asked` record counts, and the later `asked` fills the text without touching the count.
pub async fn unknown_questions_and_early_votes(s: &Stores, _scale: Scale, _seed: u64) {
    let rng = &mut StdRng::seed_from_u64(13);
    let event = EventId(Ulid::new());
    let q = QuestionId(Ulid::new());
    let unknown = QuestionId(Ulid::new());
    assert_eq!(must("read an unknown question", s.reader.question(unknown).await), None);
    assert!(must("texts of unknown ids", s.reader.question_texts(&[unknown]).await).is_empty());
    assert!(must("list an unknown event", s.reader.event_questions(event).await).is_empty());
    let asker = VoterId::random();
    let asked =
        record(rng, event, q, 0, RecordBody::Asked(Asked { text: "Late arrival?".into(), who: None, voter: asker }));
    let early = [
        record(rng, event, q, 10, RecordBody::Voted { voter: VoterId::random(), up: true }),
        record(rng, event, q, 11, RecordBody::Voted { voter: VoterId::random(), up: true }),
        record(rng, event, q, 12, RecordBody::Answered { on: true }),
    ];
    deliver(s, &[early.to_vec()], "apply votes before their question").await;
    let counters = must("read the question", s.reader.question(q).await);
    assert_eq!(counters.map(|c| c.votes), Some(2), "votes before `asked` must count");
    assert!(must("texts before asked", s.reader.question_texts(&[q]).await).is_empty(), "no text before `asked`");
    deliver(s, &[vec![asked.clone()]], "apply the asked record").await;
    let texts = must("texts after asked", s.reader.question_texts(&[q, unknown]).await);
    assert_eq!(texts.len(), 1, "only the known question has a text");
    assert_eq!(
        (texts[0].id, texts[0].event, texts[0].text.as_str(), texts[0].who.clone()),
        (q, event, "Late arrival?", None)
    );
    let mut all = early.to_vec();
    all.push(asked);
    assert_projection_is_fold(s, event, &all, "early votes").await;
}

/// A voter's own view of an event: the questions they asked and those they vote up (a vote
/// taken back does not count), nothing of another voter's or another event's.
pub async fn a_voters_own_view_is_what_they_asked_and_vote_up(s: &Stores, _scale: Scale, _seed: u64) {
    let rng = &mut StdRng::seed_from_u64(41);
    let (event, other_event) = (EventId(Ulid::new()), EventId(Ulid::new()));
    let (guest, neighbour) = (VoterId::random(), VoterId::random());
    let mut ids: Vec<QuestionId> = (0..4).map(|_| QuestionId(Ulid::new())).collect();
    ids.sort();
    let (mine, theirs, taken_back, elsewhere) = (ids[0], ids[1], ids[2], ids[3]);
    let ask = |rng: &mut StdRng, event, q, voter| {
        record(rng, event, q, 0, RecordBody::Asked(Asked { text: "Whose question is this?".into(), who: None, voter }))
    };
    let vote =
        |rng: &mut StdRng, event, q, offset, up| record(rng, event, q, offset, RecordBody::Voted { voter: guest, up });
    let records = vec![
        ask(rng, event, mine, guest),
        ask(rng, event, theirs, neighbour),
        ask(rng, event, taken_back, neighbour),
        ask(rng, other_event, elsewhere, guest),
        vote(rng, event, theirs, 10, true),
        vote(rng, event, taken_back, 10, true),
        vote(rng, event, taken_back, 20, false),
    ];
    deliver(s, &[records], "a voter's own view").await;
    let view = must("the guest's view", s.reader.voter_view(event, guest).await);
    assert_eq!(view.asked, vec![mine], "asked in this event, by this guest only");
    // The asker's own question counts as voted up: asking is a vote.
    assert_eq!(view.voted, vec![mine, theirs], "voted up now, in this event");
    let neighbours = must("the neighbour's view", s.reader.voter_view(event, neighbour).await);
    assert_eq!((neighbours.asked, neighbours.voted), (vec![theirs, taken_back], vec![theirs, taken_back]));
    let stranger = must("a stranger's view", s.reader.voter_view(event, VoterId::random()).await);
    assert_eq!(stranger, ledger::ports::VoterView::default());
}

/// A change planned against state that has since moved is refused whole: `Conflict`, and
/// neither the voters nor the counter move.
pub async fn a_stale_commit_is_a_conflict_and_changes_nothing(s: &Stores, _scale: Scale, _seed: u64) {
    let rng = &mut StdRng::seed_from_u64(17);
    let event = EventId(Ulid::new());
    let q = QuestionId(Ulid::new());
    let voters: Vec<VoterId> = (0..3).map(|_| VoterId::random()).collect();
    let records: Vec<Record> = voters
        .iter()
        .enumerate()
        .map(|(i, &v)| record(rng, event, q, i as u64, RecordBody::Voted { voter: v, up: true }))
        .collect();
    let plan = BatchPlan::from_records(&records);
    let stale = plan.resolve(&Default::default());
    assert_eq!(must("commit", s.projection.commit(&stale, None).await), Commit::Applied);
    assert_eq!(
        must("commit the same change again", s.projection.commit(&stale, None).await),
        Commit::Conflict,
        "a change whose voter expectations no longer hold must conflict"
    );
    assert_projection_is_fold(s, event, &records, "after a conflicting commit").await;
}

/// One change touching two questions, the first with a fresh voter condition and the second
/// with a stale one, commits nothing at all: `Conflict`, and the fresh question's votes and
/// voter are as before (a store committing question by question would have applied it).
pub async fn a_commit_is_all_or_nothing_across_questions(s: &Stores, _scale: Scale, _seed: u64) {
    let rng = &mut StdRng::seed_from_u64(29);
    let event = EventId(Ulid::new());
    // The fresh question is minted first, so it comes first in any order a store may use.
    let fresh_q = QuestionId(ulid_at(rng, 0));
    let stale_q = QuestionId(ulid_at(rng, 1));
    let (u, w) = (VoterId::random(), VoterId::random());
    let fresh = record(rng, event, fresh_q, 2, RecordBody::Voted { voter: u, up: true });
    let stale = record(rng, event, stale_q, 3, RecordBody::Voted { voter: w, up: true });
    let change = BatchPlan::from_records([&fresh, &stale]).resolve(&Default::default());
    assert_eq!(change.questions.len(), 2, "the change must touch both questions");
    // Meanwhile w's vote on the second question is committed: the change's view of it is stale.
    let w_alone = BatchPlan::from_records([&stale]).resolve(&Default::default());
    assert_eq!(must("commit w's vote", s.projection.commit(&w_alone, None).await), Commit::Applied);
    assert_eq!(
        must("commit the half-stale change", s.projection.commit(&change, None).await),
        Commit::Conflict,
        "a change with one stale voter condition must conflict"
    );
    assert_eq!(
        must("read the fresh question", s.reader.question(fresh_q).await).map(|c| c.votes).unwrap_or(0),
        0,
        "a conflicting change applied its other question's votes"
    );
    assert!(
        must("read the fresh voter", s.projection.voters(&[(fresh_q, u)]).await).is_empty(),
        "a conflicting change stored its other question's voter"
    );
    assert_projection_is_fold(s, event, std::slice::from_ref(&stale), "after a half-stale change").await;
}

/// A projection store in front of the real one whose commits another aggregator contests;
/// everything else passes through.
struct Contested {
    inner: Arc<dyn ProjectionStore>,
    rival: Rival,
    commits: std::sync::atomic::AtomicU32,
}

/// How the other aggregator contests [`Contested`]'s commits.
enum Rival {
    /// On the first commit handed over, it first commits a competing change (the fold of
    /// these records) through the real store: the change being committed was planned
    /// before it, so its voter conditions no longer hold.
    Once(tokio::sync::Mutex<Option<Vec<Record>>>),
    /// It always wins: every commit conflicts.
    Always,
}

impl Contested {
    fn new(inner: Arc<dyn ProjectionStore>, rival: Rival) -> Self {
        Self { inner, rival, commits: Default::default() }
    }

    fn commits(&self) -> u32 {
        self.commits.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl ProjectionStore for Contested {
    async fn voters(
        &self,
        keys: &[(QuestionId, VoterId)],
    ) -> Result<rustc_hash::FxHashMap<(QuestionId, VoterId), ledger::VoterState>, StoreError> {
        self.inner.voters(keys).await
    }
    async fn commit(&self, change: &ledger::ProjectionChange, cursor: Option<u64>) -> Result<Commit, StoreError> {
        self.commits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        match &self.rival {
            Rival::Always => return Ok(Commit::Conflict),
            Rival::Once(competing) => {
                if let Some(competing) = competing.lock().await.take() {
                    let plan = BatchPlan::from_records(&competing);
                    let stored = self.inner.voters(&plan.voter_keys()).await?;
                    let theirs = plan.resolve(&stored);
                    let committed = self.inner.commit(&theirs, None).await?;
                    assert_eq!(committed, Commit::Applied, "the competing change must commit");
                }
            }
        }
        self.inner.commit(change, cursor).await
    }
    async fn cursor(&self) -> Result<u64, StoreError> {
        self.inner.cursor().await
    }
    async fn questions(&self, event: Option<EventId>) -> Result<Vec<QuestionState>, StoreError> {
        self.inner.questions(event).await
    }
    async fn replace(&self, replacement: &Replacement<'_>) -> Result<(), StoreError> {
        self.inner.replace(replacement).await
    }
}

/// The aggregator's conflict loop, driven: between `apply_batch`'s read of the voters and its
/// commit, another aggregator commits a newer vote of one of the batch's voters. The commit
/// conflicts, the batch is planned again from fresh state, and the projection ends at the
/// pure fold of everything (the competing vote wins, being newer).
pub async fn a_competing_commit_between_read_and_commit_is_replanned(s: &Stores, _scale: Scale, _seed: u64) {
    let rng = &mut StdRng::seed_from_u64(31);
    let event = EventId(Ulid::new());
    let q = QuestionId(ulid_at(rng, 0));
    let voters: Vec<VoterId> = (0..3).map(|_| VoterId::random()).collect();
    let batch: Vec<Record> = voters
        .iter()
        .enumerate()
        .map(|(i, &v)| record(rng, event, q, 1 + i as u64, RecordBody::Voted { voter: v, up: true }))
        .collect();
    let competing = vec![record(rng, event, q, 10, RecordBody::Voted { voter: voters[0], up: false })];
    let interloper =
        Contested::new(s.projection.clone(), Rival::Once(tokio::sync::Mutex::new(Some(competing.clone()))));
    let applied = must("apply the batch", aggregator::apply_batch(&interloper, &batch, None).await);
    assert!(applied.conflicts >= 1, "the competing commit did not make the batch conflict: {applied:?}");
    assert_eq!(interloper.commits(), applied.conflicts + 1, "one commit per conflict, and the last one applied");
    let mut all = batch.clone();
    all.extend(competing);
    assert_projection_is_fold(s, event, &all, "a competing commit between read and commit").await;
    assert_eq!(
        must("read the question", s.reader.question(q).await).map(|c| c.votes),
        Some(2),
        "the competing retraction is newer than the batch's vote and wins"
    );
}

/// A batch whose every commit conflicts is given up after `CONFLICT_RETRIES_MAX` retries
/// (returned as an error for the queue to redeliver) and leaves the projection unchanged.
pub async fn a_batch_that_always_conflicts_is_given_up_and_changes_nothing(s: &Stores, _scale: Scale, _seed: u64) {
    let rng = &mut StdRng::seed_from_u64(37);
    let event = EventId(Ulid::new());
    let q = QuestionId(ulid_at(rng, 0));
    let asker = VoterId::random();
    let batch = vec![
        record(
            rng,
            event,
            q,
            1,
            RecordBody::Asked(Asked { text: "Will this ever land?".into(), who: None, voter: asker }),
        ),
        record(rng, event, q, 2, RecordBody::Voted { voter: VoterId::random(), up: true }),
        record(rng, event, q, 3, RecordBody::Answered { on: true }),
    ];
    let outrun = Contested::new(s.projection.clone(), Rival::Always);
    let result = aggregator::apply_batch(&outrun, &batch, None).await;
    assert!(matches!(result, Err(StoreError::Unavailable(_))), "expected the batch given up, got {result:?}");
    assert_eq!(outrun.commits(), aggregator::CONFLICT_RETRIES_MAX + 1, "the first commit and one per retry");
    assert_eq!(must("read the question", s.reader.question(q).await), None, "a given-up batch changed the projection");
    assert!(must("list the event", s.reader.event_questions(event).await).is_empty());
    assert!(must("read the asker", s.projection.voters(&[(q, asker)]).await).is_empty());
}

/// Any order, any duplication, any batching of a history gives the pure fold.
pub async fn duplicate_and_out_of_order_delivery(s: &Stores, scale: Scale, seed: u64) {
    let rng = &mut StdRng::seed_from_u64(seed);
    let event = EventId(Ulid::new());
    let records = history(rng, event, scale);
    let batches = delivery(rng, &records, scale.batch_records_max);
    let context = format!("duplicate and out-of-order delivery (CONFORMANCE_SEED={seed})");
    deliver(s, &batches, &context).await;
    assert_projection_is_fold(s, event, &records, &context).await;
    // Delivering everything again changes nothing.
    let again = delivery(rng, &records, scale.batch_records_max * 2);
    deliver(s, &again, &context).await;
    assert_projection_is_fold(s, event, &records, &format!("{context}, redelivered")).await;
}

/// The host's tools (design §2, §3): approvals, spotlights, written answers and the event's
/// own records (settings, co-host links minted and revoked), mixed into a history and
/// delivered shuffled, duplicated and in batches by two aggregators at once: the ledger
/// reads every record back as written, and the stored questions (stamps and answers), the
/// lists' answers and the event's own state are the pure fold's.
pub async fn the_host_tools_fold_like_the_rest(s: &Stores, scale: Scale, seed: u64) {
    let rng = &mut StdRng::seed_from_u64(seed);
    let event = EventId(Ulid::new());
    let mut records = history(rng, event, scale);
    let questions: Vec<QuestionId> =
        records.iter().filter(|r| matches!(r.body, RecordBody::Asked(_))).map(|r| r.question).collect();
    let cohosts = [hash_secret("cohost one"), hash_secret("cohost two")];
    for i in 0..(scale.records / 4).max(24) {
        let q = questions[rng.gen_range(0..questions.len())];
        let offset = rng.gen_range(1_000..60_000);
        let body = match i % 10 {
            0 => RecordBody::Approved { on: rng.gen_bool(0.5) },
            1 => RecordBody::Spotlight { on: rng.gen_bool(0.7) },
            2 => RecordBody::Replied { text: if rng.gen_bool(0.2) { String::new() } else { format!("Answer {i}.") } },
            3 => RecordBody::Titled { title: format!("Title {i}") },
            4 => RecordBody::ModerationSet {
                moderation: if rng.gen_bool(0.5) { Moderation::PreApprove } else { Moderation::Off },
            },
            5 => RecordBody::AskingSet { asking: if rng.gen_bool(0.5) { Asking::Closed } else { Asking::Open } },
            6 => RecordBody::BlockedWordsSet { words: (0..rng.gen_range(0..3)).map(|w| format!("word{w}")).collect() },
            7 | 8 => RecordBody::CohostMinted { secret_hash: cohosts[rng.gen_range(0..2)] },
            _ => RecordBody::CohostRevoked { secret_hash: cohosts[0] },
        };
        let question = if body.is_event_level() { ledger::event_subject(event) } else { q };
        records.push(record(rng, event, question, offset, body));
    }
    let context = format!("the host's tools (CONFORMANCE_SEED={seed})");
    must("append", s.ledger.append(&records).await);
    let mut read_back = Vec::new();
    let mut after = None;
    loop {
        let page = must("scan", s.ledger.scan(Some(event), after, 10_000).await);
        read_back.extend(page.records);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    read_back.sort_by_key(|r| r.id);
    let mut written = records.clone();
    written.sort_by_key(|r| r.id);
    assert_eq!(read_back, written, "{context}: the ledger reads back every kind as written");

    let (first, second) =
        (delivery(rng, &records, scale.batch_records_max), delivery(rng, &records, scale.batch_records_max));
    tokio::join!(deliver(s, &first, &context), deliver(s, &second, &context));
    assert_projection_is_fold(s, event, &records, &context).await;
    let mut fold = Projection::new();
    for r in &records {
        fold.apply(r);
    }
    let expected = fold.event(event).cloned().unwrap_or_else(|| ledger::EventState::new(event));
    assert_eq!(must("read the event's state", s.reader.event_state(event).await), expected, "{context}: event state");
    let stored_states = must("read event states", s.projection.event_states(Some(event)).await);
    assert_eq!(stored_states, fold.event(event).cloned().into_iter().collect::<Vec<_>>(), "{context}: event states");
    let mut replies = must("read the answers", s.reader.replies(event).await);
    replies.sort();
    let mut expected_replies: Vec<(QuestionId, String)> =
        fold.sorted().into_iter().filter_map(|q| q.reply_text().map(|t| (q.standing.id, t.to_owned()))).collect();
    expected_replies.sort();
    assert_eq!(replies, expected_replies, "{context}: the lists' written answers");
    let mut askers = must("read the askers", s.reader.askers(&questions).await);
    askers.sort();
    let mut expected_askers: Vec<(QuestionId, VoterId)> =
        fold.sorted().into_iter().filter_map(|q| q.asked.map(|a| (q.standing.id, a.asker))).collect();
    expected_askers.sort();
    assert_eq!(askers, expected_askers, "{context}: the questions' askers");
}

/// Two aggregators folding overlapping deliveries at the same time end at the pure fold.
pub async fn concurrent_aggregators(s: &Stores, scale: Scale, seed: u64) {
    let rng = &mut StdRng::seed_from_u64(seed);
    let event = EventId(Ulid::new());
    let records = history(rng, event, scale);
    // Each record goes to one aggregator or both; together they see everything.
    let (mut left, mut right) = (Vec::new(), Vec::new());
    for r in &records {
        match rng.gen_range(0..3) {
            0 => left.push(r.clone()),
            1 => right.push(r.clone()),
            _ => {
                left.push(r.clone());
                right.push(r.clone());
            }
        }
    }
    let left = delivery(rng, &left, scale.batch_records_max);
    let right = delivery(rng, &right, scale.batch_records_max);
    let context = format!("concurrent aggregators (CONFORMANCE_SEED={seed})");
    tokio::join!(deliver(s, &left, &context), deliver(s, &right, &context));
    assert_projection_is_fold(s, event, &records, &context).await;
}

/// A crowd votes on one question: batches bigger than one atomic write can hold, folded by
/// two aggregators at once, redelivered, and some votes retracted, end at the pure fold.
pub async fn a_crowd_on_one_question(s: &Stores, scale: Scale, seed: u64) {
    let rng = &mut StdRng::seed_from_u64(seed);
    let event = EventId(Ulid::new());
    let q = QuestionId(Ulid::new());
    let voters: Vec<VoterId> = (0..scale.crowd_voters).map(|_| VoterId::random()).collect();
    let asked = Asked { text: "The crowd's question?".into(), who: None, voter: voters[0] };
    let mut records = vec![record(rng, event, q, 0, RecordBody::Asked(asked))];
    for (i, &voter) in voters.iter().enumerate() {
        records.push(record(rng, event, q, 10 + i as u64, RecordBody::Voted { voter, up: true }));
    }
    let context = format!("a crowd on one question (CONFORMANCE_SEED={seed})");
    let (first, second) = records.split_at(records.len() * 2 / 3);
    let overlap = &records[records.len() / 3..];
    let (left, right) = (vec![first.to_vec()], vec![overlap.to_vec(), second.to_vec()]);
    tokio::join!(deliver(s, &left, &context), deliver(s, &right, &context));
    assert_projection_is_fold(s, event, &records, &context).await;
    let retractions: Vec<Record> = voters
        .iter()
        .step_by(3)
        .enumerate()
        .map(|(i, &voter)| record(rng, event, q, 100_000 + i as u64, RecordBody::Voted { voter, up: false }))
        .collect();
    deliver(s, &[retractions.clone(), records.clone()], &context).await;
    records.extend(retractions);
    assert_projection_is_fold(s, event, &records, &format!("{context}, after retractions")).await;
}

/// `replace` (replay's repair) makes one event's projection exactly a fold's result,
/// removing what the fold lacks and leaving other events alone.
pub async fn replace_restores_a_fold(s: &Stores, scale: Scale, seed: u64) {
    let rng = &mut StdRng::seed_from_u64(seed);
    let event = EventId(Ulid::new());
    let bystander = EventId(Ulid::new());
    let small = Scale { records: scale.records / 2, ..scale };
    let records = history(rng, event, small);
    let others = history(rng, bystander, Scale { records: 12, questions: 2, ..small });
    let context = format!("replace (CONFORMANCE_SEED={seed})");
    deliver(s, &delivery(rng, &records, scale.batch_records_max), &context).await;
    deliver(s, std::slice::from_ref(&others), &context).await;
    // Drift: records the projection has but the ledger (the truth) does not.
    let truth: Vec<Record> = records.iter().filter(|r| !matches!(r.body, RecordBody::Hidden { .. })).cloned().collect();
    let mut fold = Projection::new();
    for r in &truth {
        fold.apply(r);
    }
    let questions = fold.sorted();
    let mut voters = BTreeMap::new();
    for r in &truth {
        let voter = match &r.body {
            RecordBody::Asked(a) => a.voter,
            RecordBody::Voted { voter, .. } => *voter,
            _ => continue,
        };
        if let Some(state) = fold.voter(r.question, voter) {
            voters.insert((r.question, voter), state);
        }
    }
    let voters: Vec<_> = voters.into_iter().collect();
    let replacement = must("a replacement of one event", Replacement::new(Some(event), &questions, &voters));
    must("replace", s.projection.replace(&replacement).await);
    assert_projection_is_fold(s, event, &truth, &context).await;
    assert_projection_is_fold(s, bystander, &others, &format!("{context}: another event")).await;
    // An empty fold removes the event's projection entirely.
    must("replace with nothing", s.projection.replace(&must("nothing", Replacement::new(Some(event), &[], &[]))).await);
    assert!(
        must("list", s.reader.event_questions(event).await).is_empty(),
        "{context}: replace with nothing left questions"
    );
}

/// The retention check's store retention: a store opened with this many days must stamp
/// every row of an event minted at [`RETENTION_CHECK_EVENT_MS`] with exactly
/// [`RETENTION_CHECK_EXPIRE_UNIX`].
pub const RETENTION_CHECK_DAYS: u64 = 7;
/// 2030-01-01T00:00:00.123Z: in the future, so no expiry sweep removes the rows meanwhile.
pub const RETENTION_CHECK_EVENT_MS: u64 = 1_893_456_000_123;
/// 1,893,456,000 s (the event's second) + 7 × 86,400 s, written out rather than computed by
/// the code under test.
pub const RETENTION_CHECK_EXPIRE_UNIX: u64 = 1_894_060_800;

/// What [`write_retention_fixture`] wrote, for the adapter's own test to read the expiry it
/// stamped on each row (no port exposes it).
#[derive(Debug, Clone)]
pub struct RetentionFixture {
    pub event: EventId,
    pub question: QuestionId,
    /// The asker and a voter: each has a voter state.
    pub voters: [VoterId; 2],
    pub records: Vec<Record>,
}

/// Writes, on a store opened with [`RETENTION_CHECK_DAYS`] of retention, an event minted at
/// [`RETENTION_CHECK_EVENT_MS`], a question asked a millisecond later and a vote three days
/// later (the expiry is the event's, whatever the record's time), appended together and
/// folded. The adapter's test then asserts [`RETENTION_CHECK_EXPIRE_UNIX`] on every row.
pub async fn write_retention_fixture(s: &Stores) -> RetentionFixture {
    let rng = &mut StdRng::seed_from_u64(23);
    let at = |ms: u64, rng: &mut StdRng| Ulid::from_parts(RETENTION_CHECK_EVENT_MS + ms, rng.gen());
    let event = EventId(at(0, rng));
    let question = QuestionId(at(1, rng));
    let voters = [VoterId::random(), VoterId::random()];
    let records = vec![
        Record {
            id: RecordId(at(1, rng)),
            event,
            question,
            region: "conformance".into(),
            body: RecordBody::Asked(Asked { text: "When does this expire?".into(), who: None, voter: voters[0] }),
        },
        Record {
            id: RecordId(at(3 * 86_400_000, rng)),
            event,
            question,
            region: "conformance".into(),
            body: RecordBody::Voted { voter: voters[1], up: true },
        },
        // The host's tools: a written answer, and the event's own records.
        Record {
            id: RecordId(at(4 * 86_400_000, rng)),
            event,
            question,
            region: "conformance".into(),
            body: RecordBody::Replied { text: "Never before its event.".into() },
        },
        Record {
            id: RecordId(at(5 * 86_400_000, rng)),
            event,
            question: ledger::event_subject(event),
            region: "conformance".into(),
            body: RecordBody::Titled { title: "Retention".into() },
        },
        Record {
            id: RecordId(at(5 * 86_400_000 + 1, rng)),
            event,
            question: ledger::event_subject(event),
            region: "conformance".into(),
            body: RecordBody::CohostMinted { secret_hash: hash_secret("retention co-host") },
        },
    ];
    let row = EventRow { id: event, secret_hash: hash_secret("retention"), expire_unix: RETENTION_CHECK_EXPIRE_UNIX };
    must("create the retention check's event", s.events.create_event(&row).await);
    must("append the retention check's records", s.ledger.append(&records).await);
    deliver(s, std::slice::from_ref(&records), "fold the retention check's records").await;
    assert_projection_is_fold(s, event, &records, "the retention check").await;
    RetentionFixture { event, question, voters, records }
}

/// The local DynamoDB/SQS emulator endpoint from `var` (`MOTO_ENDPOINT_A` or `_B`, set by
/// `.ci/with-moto`). Without it the calling test fails, unless `WWW_SKIP_MOTO=1`, which
/// makes it return `None` with a note so the test can end early (quick local runs).
pub fn moto_endpoint(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("WWW_SKIP_MOTO").as_deref() == Ok("1") => {
            eprintln!("note: {var} is not set and WWW_SKIP_MOTO=1: skipping a test that needs moto");
            None
        }
        _ => panic!(
            "{var} is not set: run this test under `.ci/with-moto cargo test ...` (it starts local moto servers), \
             or set WWW_SKIP_MOTO=1 to skip the tests that need them"
        ),
    }
}
