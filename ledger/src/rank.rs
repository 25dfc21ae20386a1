//! The order lists are served in (design §7): open questions (neither answered nor hidden)
//! by votes, the first [`OPEN_BY_VOTES_COUNT`] of them strictly by votes and the rest by
//! `votes / (minutes since asked + 1)` so fresh questions can climb; then answered questions,
//! most recently answered first; then hidden ones by votes. Ties go to the older question,
//! so the order is a pure function of the counters and `now_ms`. The question in the
//! spotlight ([`spotlight_of`]), if any, comes before all of them.

use std::cmp::Ordering;

use crate::fold::QuestionStanding;
use crate::ids::QuestionId;

/// How many open questions are ordered strictly by votes before age starts to count.
pub const OPEN_BY_VOTES_COUNT: usize = 5;

const MINUTE_MS: f64 = 60_000.0;

/// The trending score of an open question past the top few.
pub fn trending_score(q: &QuestionStanding, now_ms: u64) -> f64 {
    let age_minutes = now_ms.saturating_sub(q.id.timestamp_ms()) as f64 / MINUTE_MS;
    q.votes as f64 / (age_minutes + 1.0)
}

fn by_votes(a: &QuestionStanding, b: &QuestionStanding) -> Ordering {
    b.votes.cmp(&a.votes).then(a.id.cmp(&b.id))
}

/// The one question of an event in the spotlight: the event's newest spotlight record
/// (each question's latest, compared across the event) decides. If it is `on`, its question
/// is in the spotlight, unless it has been answered since, or is hidden or waits for
/// review; if it is `off`, none is. So a newer spotlight moves it, and an older one never
/// comes back. At most one, and a pure function of the stamps: any delivery order of the
/// records gives the same answer.
pub fn spotlight_of<'a>(questions: impl IntoIterator<Item = &'a QuestionStanding>) -> Option<QuestionId> {
    let (q, lit) = questions.into_iter().filter_map(|q| q.spotlight.map(|s| (q, s))).max_by_key(|(_, s)| s.at)?;
    let answered_since = q.answered_at().is_some_and(|answered| answered > lit.at);
    (lit.value && !answered_since && !q.is_hidden() && !q.is_pending()).then_some(q.id)
}

/// Ranks `questions` in place.
pub fn rank(questions: &mut [QuestionStanding], now_ms: u64) {
    rank_without_spotlight(questions, now_ms);
    if let Some(lit) = spotlight_of(questions.iter()) {
        if let Some(at) = questions.iter().position(|q| q.id == lit) {
            questions[..=at].rotate_right(1);
        }
    }
}

fn rank_without_spotlight(questions: &mut [QuestionStanding], now_ms: u64) {
    // Bucket first: 0 open, 1 answered, 2 hidden (hidden wins over answered).
    let bucket = |q: &QuestionStanding| {
        if q.is_hidden() {
            2
        } else if q.answered_at().is_some() {
            1
        } else {
            0
        }
    };
    questions.sort_by(|a, b| {
        bucket(a).cmp(&bucket(b)).then_with(|| match bucket(a) {
            1 => b.answered_at().cmp(&a.answered_at()).then(a.id.cmp(&b.id)),
            _ => by_votes(a, b),
        })
    });
    let open = questions.iter().take_while(|q| bucket(q) == 0).count();
    if open > OPEN_BY_VOTES_COUNT {
        questions[OPEN_BY_VOTES_COUNT..open]
            .sort_by(|a, b| trending_score(b, now_ms).total_cmp(&trending_score(a, now_ms)).then(a.id.cmp(&b.id)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fold::Stamped;
    use crate::ids::{EventId, QuestionId, RecordId};
    use ulid::Ulid;

    const MIN: u64 = 60_000;

    fn q(asked_ms: u64, seq: u16, votes: u64) -> QuestionStanding {
        let id = QuestionId(Ulid::from_parts(asked_ms, seq as u128));
        QuestionStanding { votes, ..QuestionStanding::new(id, EventId(Ulid(1))) }
    }

    #[test]
    fn top_five_by_votes_then_trending_then_answered_then_hidden() {
        let now = 1_000 * MIN;
        let mut qs = vec![
            q(now - 100 * MIN, 1, 50),
            q(now - 100 * MIN, 2, 40),
            q(now - 100 * MIN, 3, 30),
            q(now - 100 * MIN, 4, 20),
            q(now - 100 * MIN, 5, 10),
            q(now - 100 * MIN, 6, 9), // old, score 9/101
            q(now - MIN, 7, 3),       // fresh, score 3/2
            q(now - 10 * MIN, 8, 100),
            q(now - 10 * MIN, 9, 100),
        ];
        qs[7].answered = Some(Stamped { value: true, at: RecordId(Ulid::from_parts(now - 5 * MIN, 0)) });
        qs[8].hidden = Some(Stamped { value: true, at: RecordId(Ulid::from_parts(now - 5 * MIN, 0)) });
        rank(&mut qs, now);
        let votes: Vec<u64> = qs.iter().map(|q| q.votes).collect();
        assert_eq!(votes, vec![50, 40, 30, 20, 10, 3, 9, 100, 100]);
        assert!(qs[7].answered_at().is_some());
        assert!(qs[8].is_hidden());
    }

    #[test]
    fn ties_go_to_the_older_question_and_recent_answers_come_first() {
        let now = 100 * MIN;
        let mut qs = vec![q(now - MIN, 2, 5), q(now - 2 * MIN, 1, 5)];
        rank(&mut qs, now);
        assert!(qs[0].id < qs[1].id);

        let mut a = vec![q(now - 9 * MIN, 1, 0), q(now - 9 * MIN, 2, 0)];
        a[0].answered = Some(Stamped { value: true, at: RecordId(Ulid::from_parts(now - 3 * MIN, 0)) });
        a[1].answered = Some(Stamped { value: true, at: RecordId(Ulid::from_parts(now - MIN, 0)) });
        rank(&mut a, now);
        assert_eq!(a[0].id.to_u128() & 0xffff, 2);
    }

    #[test]
    fn the_newest_spotlight_comes_first_until_answered() {
        let now = 100 * MIN;
        let at = |ms: u64| RecordId(Ulid::from_parts(ms, 0));
        let mut qs = vec![q(now - 9 * MIN, 1, 9), q(now - 9 * MIN, 2, 5), q(now - 9 * MIN, 3, 1)];
        qs[2].spotlight = Some(Stamped { value: true, at: at(now - 3 * MIN) });
        qs[1].spotlight = Some(Stamped { value: true, at: at(now - 4 * MIN) });
        let mut ranked = qs.clone();
        rank(&mut ranked, now);
        let order: Vec<u128> = ranked.iter().map(|q| q.id.to_u128() & 0xffff).collect();
        assert_eq!(order, vec![3, 1, 2], "the newer spotlight (3) wins and leads; 2's is older");
        // Answered after the spotlight: cleared, and 2's older spotlight does not come back.
        qs[2].answered = Some(Stamped { value: true, at: at(now - 2 * MIN) });
        assert_eq!(spotlight_of(&qs), None);
        // Spotlighted again after the answer: it shows again.
        qs[2].spotlight = Some(Stamped { value: true, at: at(now - MIN) });
        assert_eq!(spotlight_of(&qs), Some(qs[2].id));
        // Turned off: nothing (the older `on` of 2 does not come back).
        qs[2].spotlight = Some(Stamped { value: false, at: at(now) });
        assert_eq!(spotlight_of(&qs), None);
    }
}
