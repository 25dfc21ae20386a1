//! What only a ledger can show (design §7, "Insights"): one event's records read back in
//! time. The list as it stood at any instant, the votes of every question over the session,
//! the moderation records in order, and bursts of never-seen voters on one question.
//!
//! Everything here is pure: the records come in, time comes from their ids, and every
//! instant ("at", a step, a window) is an argument. The list at an instant is the one fold
//! ([`Projection`]) of the records whose id time is at or before it, ranked by the one
//! ranking ([`rank`]) with "now" set to that instant.

use std::collections::BTreeMap;

use rustc_hash::FxHashSet;

use crate::fold::{Projection, QuestionStanding};
use crate::ids::{QuestionId, VoterId};
use crate::limits::{TIMELINE_POINTS_MAX, TIMELINE_STEP_S_MIN};
use crate::rank::rank;
use crate::record::{Record, RecordBody};

/// One event's records in id order (so in time order), each id once.
#[derive(Debug, Clone, Default)]
pub struct History {
    records: Vec<Record>,
}

/// The voter a record speaks for and, for a vote, its choice (`asked` is its asker's
/// up-vote); `None` for the host's records, whatever their kind.
fn voter_of(body: &RecordBody) -> Option<(VoterId, bool)> {
    match body {
        RecordBody::Asked(asked) => Some((asked.voter, true)),
        RecordBody::Voted { voter, up } => Some((*voter, *up)),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// Whether a record is a host's action on the event (every kind but `asked` and `vote`):
/// what the moderation audit lists. Kinds added later are moderation unless they carry a
/// guest's vote.
pub fn is_moderation(body: &RecordBody) -> bool {
    voter_of(body).is_none()
}

impl History {
    /// The history of these records (one event's), in any order, duplicates allowed.
    pub fn new(mut records: Vec<Record>) -> Self {
        records.sort_unstable_by_key(|r| r.id);
        records.dedup_by_key(|r| r.id);
        Self { records }
    }

    pub fn records(&self) -> &[Record] {
        &self.records
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The records whose id time is at or before `at_ms`.
    pub fn until(&self, at_ms: u64) -> &[Record] {
        let end = self.records.partition_point(|r| r.id.timestamp_ms() <= at_ms);
        &self.records[..end]
    }

    /// The fold of the records up to `at_ms` (inclusive).
    pub fn projection_at(&self, at_ms: u64) -> Projection {
        let records = self.until(at_ms);
        let mut projection = Projection::with_capacity(records.len());
        for record in records {
            projection.apply(record);
        }
        projection
    }

    /// Every question as it stood at `at_ms`, hidden ones included, ranked with "now" =
    /// `at_ms`: the host's list at that instant.
    pub fn ranked_at(&self, at_ms: u64) -> Vec<QuestionStanding> {
        let mut questions: Vec<QuestionStanding> = self.projection_at(at_ms).questions().map(|q| q.standing).collect();
        rank(&mut questions, at_ms);
        questions
    }

    /// The moderation records (see [`is_moderation`]), oldest first.
    pub fn moderation(&self) -> impl Iterator<Item = &Record> {
        self.records.iter().filter(|r| is_moderation(&r.body))
    }

    /// The session step by step (see [`Timeline`]); `requested_step_s` is raised to the
    /// smallest step that keeps the timeline within [`TIMELINE_POINTS_MAX`] points.
    pub fn timeline(&self, requested_step_s: u64) -> Result<Timeline, StepError> {
        let (Some(first), Some(last)) = (self.records.first(), self.records.last()) else {
            let step_s = timeline_step_s(requested_step_s, 0)?;
            return Ok(Timeline { start_ms: 0, step_s, ..Timeline::default() });
        };
        let first_ms = first.id.timestamp_ms();
        let start_ms = first_ms - first_ms % 1_000;
        let span_ms = last.id.timestamp_ms() - start_ms;
        let step_s = timeline_step_s(requested_step_s, span_ms)?;
        let step_ms = step_s.saturating_mul(1_000);
        let points = usize::try_from(span_ms / step_ms + 1).unwrap_or(usize::MAX);

        let mut projection = Projection::with_capacity(self.records.len());
        // Per question, (point, votes at its end) for each point in which the count may move.
        let mut changes: BTreeMap<QuestionId, Vec<(usize, u64)>> = BTreeMap::new();
        let mut asked = vec![0u64; points];
        let mut new_voters = vec![0u64; points];
        let mut seen_asked: FxHashSet<QuestionId> = FxHashSet::default();
        let mut seen_voters: FxHashSet<VoterId> = FxHashSet::default();
        let mut touched: Vec<QuestionId> = Vec::new();
        let mut records = self.records.iter().peekable();
        for point in 0..points {
            let end_ms = start_ms.saturating_add((point as u64 + 1).saturating_mul(step_ms));
            touched.clear();
            while let Some(record) = records.next_if(|r| r.id.timestamp_ms() < end_ms) {
                projection.apply(record);
                if matches!(record.body, RecordBody::Asked(_)) && seen_asked.insert(record.question) {
                    asked[point] += 1;
                }
                // Only a guest's ask or vote moves a count.
                if let Some((voter, _)) = voter_of(&record.body) {
                    touched.push(record.question);
                    if seen_voters.insert(voter) {
                        new_voters[point] += 1;
                    }
                }
            }
            touched.sort_unstable();
            touched.dedup();
            for question in &touched {
                let votes = projection.question(*question).map_or(0, |q| q.standing.votes);
                changes.entry(*question).or_default().push((point, votes));
            }
        }
        let questions = changes
            .into_iter()
            .map(|(question, changes)| {
                let mut series = Vec::with_capacity(points);
                let mut votes = 0;
                for (point, at_end) in changes {
                    series.resize(point, votes);
                    votes = at_end;
                    series.push(votes);
                }
                series.resize(points, votes);
                (question, series)
            })
            .collect();
        Ok(Timeline { start_ms, step_s, questions, asked, new_voters })
    }

    /// Windows in which at least `thresholds.new_voters_min` never-seen voters (their first
    /// record in the event) voted a question up within `thresholds.window_ms`, and whose
    /// voters still voting it up make at least `thresholds.share_min` of its votes now.
    /// Overlapping windows of one question are one burst. Ordered by start, then question.
    pub fn bursts(&self, thresholds: &BurstThresholds) -> Vec<Burst> {
        let mut seen_voters: FxHashSet<VoterId> = FxHashSet::default();
        // Per question, the never-seen voters' first up-votes: (time, voter).
        let mut first_votes: BTreeMap<QuestionId, Vec<(u64, VoterId)>> = BTreeMap::new();
        for record in &self.records {
            let Some((voter, up)) = voter_of(&record.body) else { continue };
            if seen_voters.insert(voter) && up && matches!(record.body, RecordBody::Voted { .. }) {
                first_votes.entry(record.question).or_default().push((record.id.timestamp_ms(), voter));
            }
        }
        let now = self.projection_at(u64::MAX);
        let min = thresholds.new_voters_min.max(1);
        let mut bursts = Vec::new();
        for (question, votes) in first_votes {
            if votes.len() < min {
                continue;
            }
            // Mark every vote that lies in some window of `window_ms` holding `min` of them.
            let mut marked = vec![false; votes.len()];
            let mut from = 0;
            for to in 0..votes.len() {
                while votes[to].0 - votes[from].0 > thresholds.window_ms {
                    from += 1;
                }
                if to + 1 - from >= min {
                    marked[from..=to].iter_mut().for_each(|m| *m = true);
                }
            }
            // Marked votes closer than a window to the previous one belong to one burst.
            let mut i = 0;
            while i < votes.len() {
                if !marked[i] {
                    i += 1;
                    continue;
                }
                let mut j = i;
                while j + 1 < votes.len() && marked[j + 1] && votes[j + 1].0 - votes[j].0 <= thresholds.window_ms {
                    j += 1;
                }
                let voters = &votes[i..=j];
                let still_up =
                    voters.iter().filter(|(_, v)| now.voter(question, *v).is_some_and(|s| s.up)).count() as u64;
                let total = now.question(question).map_or(0, |q| q.standing.votes);
                let share = if total == 0 { 0.0 } else { still_up as f64 / total as f64 };
                if share >= thresholds.share_min {
                    bursts.push(Burst {
                        question,
                        start_ms: voters[0].0,
                        end_ms: voters[voters.len() - 1].0,
                        new_voters: voters.len() as u64,
                        still_up,
                        votes: total,
                        share,
                    });
                }
                i = j + 1;
            }
        }
        bursts.sort_by(|a, b| a.start_ms.cmp(&b.start_ms).then(a.question.cmp(&b.question)));
        bursts
    }
}

/// A requested timeline step that is not allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("step is whole seconds, at least {TIMELINE_STEP_S_MIN}")]
pub struct StepError;

/// The step a timeline spanning `span_ms` is drawn with: the requested one (at least
/// [`TIMELINE_STEP_S_MIN`] seconds), or the smallest whole-second step that keeps the
/// timeline within [`TIMELINE_POINTS_MAX`] points if the requested one would exceed it.
pub fn timeline_step_s(requested_s: u64, span_ms: u64) -> Result<u64, StepError> {
    if requested_s < TIMELINE_STEP_S_MIN {
        return Err(StepError);
    }
    // `span_ms / step_ms + 1` points, at most the maximum: step_ms > span_ms / points_max.
    let fitting_s = span_ms / (TIMELINE_POINTS_MAX * 1_000) + 1;
    Ok(requested_s.max(fitting_s))
}

/// The session step by step: point `i` is the state at the end of the step that begins at
/// `start_ms + i * step_s` seconds, i.e. of every record whose id time is before
/// `start_ms + (i + 1) * step_s` seconds (the list `?at=` that instant minus 1 ms shows).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timeline {
    /// The first record's time, down to the whole second (Unix ms; 0 without records).
    pub start_ms: u64,
    pub step_s: u64,
    /// Every question's votes at the end of each step (0 before it was asked or voted on).
    pub questions: BTreeMap<QuestionId, Vec<u64>>,
    /// Questions asked in each step.
    pub asked: Vec<u64>,
    /// Voters whose first record in the event (an ask or a vote) is in each step.
    pub new_voters: Vec<u64>,
}

impl Timeline {
    /// Keeps only the `n` questions with the most votes at the end (ties: more votes summed
    /// over the steps, then the older question): what a chart of the top questions needs,
    /// without every question's series.
    pub fn retain_top(&mut self, n: usize) {
        if self.questions.len() <= n {
            return;
        }
        let mut ranked: Vec<(QuestionId, u64, u64)> = self
            .questions
            .iter()
            .map(|(q, series)| (*q, series.last().copied().unwrap_or(0), series.iter().sum()))
            .collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.cmp(&a.2)).then(a.0.cmp(&b.0)));
        let kept: FxHashSet<QuestionId> = ranked.into_iter().take(n).map(|(q, _, _)| q).collect();
        self.questions.retain(|q, _| kept.contains(q));
    }
}

/// What makes a burst (see [`History::bursts`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BurstThresholds {
    /// How close together the never-seen voters' votes are (ms).
    pub window_ms: u64,
    /// How many never-seen voters within one window make a burst.
    pub new_voters_min: usize,
    /// The least share of the question's votes now that the burst's voters must make.
    pub share_min: f64,
}

impl Default for BurstThresholds {
    /// Ten never-seen voters within ten seconds on one question, making at least a quarter
    /// of its votes: a room asked to vote spreads over many questions and voters who voted
    /// before; a script that mints cookies does not.
    fn default() -> Self {
        Self { window_ms: 10_000, new_voters_min: 10, share_min: 0.25 }
    }
}

/// A window of never-seen voters on one question. Nothing is changed because of it: it is
/// for the host and the operator to judge.
#[derive(Debug, Clone, PartialEq)]
pub struct Burst {
    pub question: QuestionId,
    /// The first and the last of the burst's votes (Unix ms).
    pub start_ms: u64,
    pub end_ms: u64,
    /// How many never-seen voters voted in it.
    pub new_voters: u64,
    /// How many of them vote the question up now.
    pub still_up: u64,
    /// The question's votes now.
    pub votes: u64,
    /// `still_up / votes` (0 when the question has no votes).
    pub share: f64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{EventId, RecordId};
    use crate::record::Asked;
    use ulid::Ulid;

    const T0: u64 = 1_700_000_000_000;

    fn record(ms: u64, seq: u128, question: u128, body: RecordBody) -> Record {
        Record {
            id: RecordId(Ulid::from_parts(ms, seq)),
            event: EventId(Ulid(1)),
            question: QuestionId(Ulid(question)),
            region: "test".into(),
            body,
        }
    }

    fn vote(ms: u64, seq: u128, question: u128, voter: u128, up: bool) -> Record {
        record(ms, seq, question, RecordBody::Voted { voter: VoterId(Ulid(voter)), up })
    }

    fn ask(ms: u64, seq: u128, question: u128, voter: u128) -> Record {
        record(
            ms,
            seq,
            question,
            RecordBody::Asked(Asked { text: "why so".into(), who: None, voter: VoterId(Ulid(voter)) }),
        )
    }

    #[test]
    fn the_step_is_at_least_ten_seconds_and_grows_past_a_thousand_points() {
        assert_eq!(timeline_step_s(9, 0), Err(StepError));
        assert_eq!(timeline_step_s(10, 0), Ok(10));
        assert_eq!(timeline_step_s(60, 3_600_000), Ok(60));
        // 9,990 s at 10 s: 1,000 points, still allowed; 10,000 s would be 1,001.
        assert_eq!(timeline_step_s(10, 9_999_999), Ok(10));
        assert_eq!(timeline_step_s(10, 10_000_000), Ok(11));
        for span_ms in [0, 1, 999_999, 10_000_000, 86_400_000, 30 * 86_400_000] {
            let step = timeline_step_s(10, span_ms).unwrap();
            assert!(span_ms / (step * 1_000) < TIMELINE_POINTS_MAX, "{span_ms}: {step}");
            if step > 10 {
                assert!(span_ms / ((step - 1) * 1_000) >= TIMELINE_POINTS_MAX, "{span_ms}: {step} is not the smallest");
            }
        }
    }

    #[test]
    fn the_timeline_counts_votes_asks_and_first_time_voters_per_step() {
        let history = History::new(vec![
            vote(T0 + 25_000, 1, 7, 102, true),
            ask(T0 + 500, 1, 7, 101),
            vote(T0 + 12_000, 1, 7, 102, true),
            vote(T0 + 13_000, 1, 7, 101, false),
            ask(T0 + 14_000, 2, 8, 101),
        ]);
        let timeline = history.timeline(10).unwrap();
        assert_eq!(timeline.start_ms, T0);
        assert_eq!(timeline.step_s, 10);
        assert_eq!(timeline.questions[&QuestionId(Ulid(7))], vec![1, 1, 1]);
        assert_eq!(timeline.questions[&QuestionId(Ulid(8))], vec![0, 1, 1]);
        assert_eq!(timeline.asked, vec![1, 1, 0]);
        assert_eq!(timeline.new_voters, vec![1, 1, 0]);
        assert_eq!(History::default().timeline(10).unwrap().asked, Vec::<u64>::new());

        // The top one: question 7 and 8 end with 1 vote each; 7 had more along the way.
        let mut top = timeline.clone();
        top.retain_top(1);
        assert_eq!(top.questions.keys().copied().collect::<Vec<_>>(), vec![QuestionId(Ulid(7))]);
        assert_eq!((top.asked, top.new_voters), (timeline.asked.clone(), timeline.new_voters.clone()));
        let mut all = timeline.clone();
        all.retain_top(5);
        assert_eq!(all, timeline);
    }

    #[test]
    fn the_list_at_an_instant_folds_the_records_up_to_it() {
        let history = History::new(vec![ask(T0, 1, 7, 1), vote(T0 + 1_000, 1, 7, 2, true), ask(T0 + 2_000, 2, 8, 3)]);
        assert!(history.ranked_at(T0 - 1).is_empty());
        let at = history.ranked_at(T0 + 1_000);
        assert_eq!(at.len(), 1);
        assert_eq!(at[0].votes, 2);
        assert_eq!(history.ranked_at(T0 + 2_000).len(), 2);
    }

    #[test]
    fn moderation_is_everything_but_asks_and_votes() {
        let history = History::new(vec![
            ask(T0, 1, 7, 1),
            record(T0 + 5, 1, 7, RecordBody::Hidden { on: true }),
            vote(T0 + 6, 1, 7, 2, true),
            record(T0 + 7, 1, 7, RecordBody::Answered { on: true }),
            record(T0 + 8, 1, 7, RecordBody::Hidden { on: false }),
        ]);
        let kinds: Vec<&str> = history.moderation().map(|r| r.body.kind()).collect();
        assert_eq!(kinds, ["hidden", "answered", "hidden"]);
    }

    #[test]
    fn a_burst_is_many_new_voters_on_one_question_within_a_window() {
        let mut records = vec![ask(T0, 1, 7, 1), ask(T0, 2, 8, 2)];
        // Twelve never-seen voters on question 7 within 6 s; a known voter in between.
        records.push(vote(T0 + 1_000, 1, 8, 500, true));
        for i in 0..12u128 {
            records.push(vote(T0 + 60_000 + i as u64 * 500, 10 + i, 7, 1_000 + i, true));
        }
        records.push(vote(T0 + 61_000, 99, 7, 500, true));
        // Spread-out new voters on question 8: one a minute.
        for i in 0..12u128 {
            records.push(vote(T0 + 120_000 + i as u64 * 60_000, 200 + i, 8, 2_000 + i, true));
        }
        // Two of the burst's voters withdraw.
        records.push(vote(T0 + 900_000, 1, 7, 1_000, false));
        records.push(vote(T0 + 900_000, 2, 7, 1_001, false));
        let history = History::new(records);
        let bursts = history.bursts(&BurstThresholds::default());
        assert_eq!(bursts.len(), 1, "{bursts:?}");
        let burst = &bursts[0];
        assert_eq!(burst.question, QuestionId(Ulid(7)));
        assert_eq!((burst.start_ms, burst.end_ms), (T0 + 60_000, T0 + 65_500));
        assert_eq!((burst.new_voters, burst.still_up, burst.votes), (12, 10, 12));
        assert!((burst.share - 10.0 / 12.0).abs() < 1e-9);
        // Stricter thresholds find nothing; looser ones find question 8's slow stream.
        assert!(history.bursts(&BurstThresholds { new_voters_min: 13, ..BurstThresholds::default() }).is_empty());
        assert!(history.bursts(&BurstThresholds { share_min: 0.9, ..BurstThresholds::default() }).is_empty());
        let slow = history.bursts(&BurstThresholds { window_ms: 3_600_000, ..BurstThresholds::default() });
        assert_eq!(slow.len(), 2);
    }
}
