//! The rules a record must satisfy to enter the ledger, written once: ingest applies them to
//! what guests and hosts send, `ledger import` to every line of a file. A record that breaks
//! one never reaches a store. Also the one rule a projection replacement (replay's repair)
//! must satisfy, which both adapters check before they write.

use crate::fold::{QuestionState, VoterState};
use crate::ids::{EventId, QuestionId, VoterId};
use crate::limits::{
    ASKER_NAME_CHARS_MAX, BLOCKED_WORDS_MAX, BLOCKED_WORD_CHARS_MAX, EVENT_TITLE_CHARS_MAX, QUESTION_TEXT_CHARS_MAX,
    QUESTION_WORDS_MIN, RECORD_FUTURE_SKEW_MS_MAX, REGION_CHARS_MAX, REPLY_CHARS_MAX,
};
use crate::ports::StoreError;
use crate::record::{event_subject, Record, RecordBody};

/// Why a record (or the text of one) is refused. The messages are the API's 400 reasons.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("a question needs at least {QUESTION_WORDS_MIN} words")]
    TooFewWords,
    #[error("a question may have at most {QUESTION_TEXT_CHARS_MAX} characters")]
    TextTooLong,
    #[error("a name may have at most {ASKER_NAME_CHARS_MAX} characters")]
    NameTooLong,
    #[error("a question's text and name are stored trimmed, and an empty name as none")]
    NotNormalized,
    #[error("the region must be 1 to {REGION_CHARS_MAX} characters")]
    BadRegion,
    #[error(
        "record id {id} is from {ahead_ms} ms in the future (at most {RECORD_FUTURE_SKEW_MS_MAX} ms of clock skew)"
    )]
    FromTheFuture { id: String, ahead_ms: u64 },
    #[error("record id {id} is older than its event")]
    BeforeItsEvent { id: String },
    #[error("an asked record is newer than its question id")]
    AskedBeforeQuestion,
    #[error("a title may have at most {EVENT_TITLE_CHARS_MAX} characters")]
    TitleTooLong,
    #[error("a written answer may have at most {REPLY_CHARS_MAX} characters")]
    ReplyTooLong,
    #[error("at most {BLOCKED_WORDS_MAX} blocked words, each 1 to {BLOCKED_WORD_CHARS_MAX} characters")]
    BadBlockedWords,
    #[error("a record of the event itself names the event as its question, and only such a record does")]
    WrongSubject,
    #[error("a title, an answer and blocked words are stored trimmed, and blocked words in lowercase")]
    SettingNotNormalized,
}

/// The stored form of a question: trimmed, at least [`QUESTION_WORDS_MIN`] words, at most
/// [`QUESTION_TEXT_CHARS_MAX`] characters.
pub fn question_text(raw: &str) -> Result<String, RuleError> {
    let text = raw.trim();
    if text.split_whitespace().count() < QUESTION_WORDS_MIN {
        return Err(RuleError::TooFewWords);
    }
    if text.chars().count() > QUESTION_TEXT_CHARS_MAX {
        return Err(RuleError::TextTooLong);
    }
    Ok(text.to_owned())
}

/// The stored form of an asker's name: trimmed, an empty one meaning anonymous.
pub fn asker_name(raw: Option<&str>) -> Result<Option<String>, RuleError> {
    let who = raw.map(str::trim).filter(|name| !name.is_empty());
    if who.is_some_and(|name| name.chars().count() > ASKER_NAME_CHARS_MAX) {
        return Err(RuleError::NameTooLong);
    }
    Ok(who.map(str::to_owned))
}

/// The stored form of an event title: trimmed, at most [`EVENT_TITLE_CHARS_MAX`]
/// characters; empty means no title.
pub fn event_title(raw: &str) -> Result<String, RuleError> {
    let title = raw.trim();
    if title.chars().count() > EVENT_TITLE_CHARS_MAX {
        return Err(RuleError::TitleTooLong);
    }
    Ok(title.to_owned())
}

/// The stored form of a written answer: trimmed, at most [`REPLY_CHARS_MAX`] characters;
/// empty removes the answer.
pub fn reply_text(raw: &str) -> Result<String, RuleError> {
    let text = raw.trim();
    if text.chars().count() > REPLY_CHARS_MAX {
        return Err(RuleError::ReplyTooLong);
    }
    Ok(text.to_owned())
}

/// The stored form of a blocked word list: each entry trimmed, lowercase, its inner spaces
/// collapsed, empty entries dropped, duplicates removed, in the order first given.
pub fn blocked_words<S: AsRef<str>>(raw: &[S]) -> Result<Vec<String>, RuleError> {
    let mut out: Vec<String> = Vec::new();
    for entry in raw {
        let word = words_of(entry.as_ref()).join(" ");
        if word.is_empty() {
            continue;
        }
        if word.chars().count() > BLOCKED_WORD_CHARS_MAX {
            return Err(RuleError::BadBlockedWords);
        }
        if !out.contains(&word) {
            out.push(word);
        }
    }
    if out.len() > BLOCKED_WORDS_MAX {
        return Err(RuleError::BadBlockedWords);
    }
    Ok(out)
}

/// A text's words, lowercase (letters and digits; everything else separates).
fn words_of(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

/// Whether a question contains one of the blocked words (or phrases), as whole words and
/// whatever the case: such a question waits for the host's review.
pub fn has_blocked_word(text: &str, blocked: &[String]) -> bool {
    if blocked.is_empty() {
        return false;
    }
    let padded = format!(" {} ", words_of(text).join(" "));
    blocked.iter().any(|word| padded.contains(&format!(" {word} ")))
}

/// Checks a whole record as ingest would have minted it, at wall-clock time `now_ms`: its
/// id not ahead of the clock by more than the allowed skew (an id far in the future would
/// win every last-writer-wins comparison forever), not older than its event, an asked
/// record's text and name in their stored form.
pub fn check_record(record: &Record, now_ms: u64) -> Result<(), RuleError> {
    let at = record.id.timestamp_ms();
    if at > now_ms.saturating_add(RECORD_FUTURE_SKEW_MS_MAX) {
        return Err(RuleError::FromTheFuture { id: record.id.to_string(), ahead_ms: at - now_ms });
    }
    if at < record.event.timestamp_ms() {
        return Err(RuleError::BeforeItsEvent { id: record.id.to_string() });
    }
    if record.region.is_empty() || record.region.chars().count() > REGION_CHARS_MAX {
        return Err(RuleError::BadRegion);
    }
    if let RecordBody::Asked(asked) = &record.body {
        if record.question.0 > record.id.0 {
            return Err(RuleError::AskedBeforeQuestion);
        }
        let text = question_text(&asked.text)?;
        let who = asker_name(asked.who.as_deref())?;
        if text != asked.text || who != asked.who {
            return Err(RuleError::NotNormalized);
        }
    }
    if record.body.is_event_level() != (record.question == event_subject(record.event)) {
        return Err(RuleError::WrongSubject);
    }
    let normalized = match &record.body {
        RecordBody::Titled { title } => event_title(title)? == *title,
        RecordBody::Replied { text } => reply_text(text)? == *text,
        RecordBody::BlockedWordsSet { words } => blocked_words(words)? == *words,
        _ => true,
    };
    if !normalized {
        return Err(RuleError::SettingNotNormalized);
    }
    Ok(())
}

/// A replacement of one event's projection (`ProjectionStore::replace` with `Some(event)`)
/// may hold only that event's questions, and voter states only of those questions: written
/// in its scope, anything else would land in another event's projection, outside what the
/// replacement deletes first.
pub fn check_replacement(
    event: Option<EventId>,
    questions: &[QuestionState],
    voters: &[((QuestionId, VoterId), VoterState)],
) -> Result<(), StoreError> {
    let Some(event) = event else { return Ok(()) };
    if let Some(q) = questions.iter().find(|q| q.standing.event != event) {
        return Err(StoreError::Rejected(format!("question {} is not of event {event}", q.standing.id)));
    }
    let ids: std::collections::HashSet<QuestionId> = questions.iter().map(|q| q.standing.id).collect();
    if let Some(((question, voter), _)) = voters.iter().find(|((question, _), _)| !ids.contains(question)) {
        return Err(StoreError::Rejected(format!(
            "voter {voter} of question {question}, which the replacement of event {event} does not hold"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{EventId, QuestionId, RecordId, VoterId};
    use crate::record::Asked;
    use ulid::Ulid;

    const NOW_MS: u64 = 1_767_225_600_000;

    fn asked(text: &str, who: Option<&str>) -> Record {
        Record {
            id: RecordId(Ulid::from_parts(NOW_MS - 10, 2)),
            event: EventId(Ulid::from_parts(NOW_MS - 1_000, 1)),
            question: QuestionId(Ulid::from_parts(NOW_MS - 10, 1)),
            region: "local".into(),
            body: RecordBody::Asked(Asked { text: text.into(), who: who.map(Into::into), voter: VoterId(Ulid(9)) }),
        }
    }

    #[test]
    fn texts_are_trimmed_and_bounded() {
        assert_eq!(question_text("  why not?  "), Ok("why not?".into()));
        assert_eq!(question_text("why"), Err(RuleError::TooFewWords));
        assert_eq!(question_text(&"a ".repeat(251)), Err(RuleError::TextTooLong));
        assert_eq!(question_text(&format!("a {}", "b".repeat(498))).map(|t| t.chars().count()), Ok(500));
        assert_eq!(asker_name(Some("  ")), Ok(None));
        assert_eq!(asker_name(Some(&"n".repeat(51))), Err(RuleError::NameTooLong));
        assert_eq!(asker_name(Some(" Ann ")), Ok(Some("Ann".into())));
    }

    #[test]
    fn a_record_from_the_future_or_before_its_event_is_refused() {
        assert_eq!(check_record(&asked("why not?", Some("Ann")), NOW_MS), Ok(()));
        let mut r = asked("why not?", None);
        r.id = RecordId(Ulid::from_parts(NOW_MS + RECORD_FUTURE_SKEW_MS_MAX, 0));
        r.question = QuestionId(Ulid::from_parts(NOW_MS, 0));
        assert_eq!(check_record(&r, NOW_MS), Ok(()), "exactly the allowed skew");
        r.id = RecordId(Ulid::from_parts(NOW_MS + RECORD_FUTURE_SKEW_MS_MAX + 1, 0));
        assert!(
            matches!(check_record(&r, NOW_MS), Err(RuleError::FromTheFuture { ahead_ms, .. }) if ahead_ms == RECORD_FUTURE_SKEW_MS_MAX + 1)
        );
        // The id of the issue's repro: the largest time a ULID holds.
        r.id = "7ZZZZZZZZZZZZZZZZZZZZZZZZZ".parse().expect("id");
        assert!(matches!(check_record(&r, NOW_MS), Err(RuleError::FromTheFuture { .. })));
        let mut early = asked("why not?", None);
        early.id = RecordId(Ulid::from_parts(NOW_MS - 2_000, 0));
        early.question = QuestionId(Ulid::from_parts(NOW_MS - 2_000, 0));
        assert!(matches!(check_record(&early, NOW_MS), Err(RuleError::BeforeItsEvent { .. })));
    }

    #[test]
    fn an_asked_record_must_hold_a_valid_stored_text() {
        assert_eq!(check_record(&asked(" why not?", None), NOW_MS), Err(RuleError::NotNormalized));
        assert_eq!(check_record(&asked("why not?", Some("")), NOW_MS), Err(RuleError::NotNormalized));
        assert_eq!(check_record(&asked("why", None), NOW_MS), Err(RuleError::TooFewWords));
        assert_eq!(check_record(&asked(&"x ".repeat(300), None), NOW_MS), Err(RuleError::TextTooLong));
        let mut r = asked("why not?", None);
        r.region = String::new();
        assert_eq!(check_record(&r, NOW_MS), Err(RuleError::BadRegion));
        let mut r = asked("why not?", None);
        r.question = QuestionId(Ulid::from_parts(NOW_MS, 0));
        assert_eq!(check_record(&r, NOW_MS), Err(RuleError::AskedBeforeQuestion));
    }

    #[test]
    fn host_texts_are_trimmed_and_bounded() {
        assert_eq!(event_title("  Town hall "), Ok("Town hall".into()));
        assert_eq!(event_title(&"t".repeat(120)).map(|t| t.len()), Ok(120));
        assert_eq!(event_title(&"t".repeat(121)), Err(RuleError::TitleTooLong));
        assert_eq!(reply_text(&"r".repeat(1_000)).map(|t| t.len()), Ok(1_000));
        assert_eq!(reply_text(&"r".repeat(1_001)), Err(RuleError::ReplyTooLong));
        assert_eq!(blocked_words(&[" Foo  Bar ", "", "foo bar", "BAZ"]), Ok(vec!["foo bar".into(), "baz".into()]));
        assert_eq!(blocked_words(&["x".repeat(51)]), Err(RuleError::BadBlockedWords));
        let many: Vec<String> = (0..101).map(|i| format!("w{i}")).collect();
        assert_eq!(blocked_words(&many), Err(RuleError::BadBlockedWords));
    }

    #[test]
    fn blocked_words_match_whole_words_whatever_the_case() {
        let blocked = blocked_words(&["spam", "buy now"]).expect("valid");
        assert!(has_blocked_word("Is this SPAM?", &blocked));
        assert!(has_blocked_word("why not Buy, now!", &blocked));
        assert!(!has_blocked_word("what about spammers", &blocked), "a word inside another is not it");
        assert!(!has_blocked_word("buy it now", &blocked));
        assert!(!has_blocked_word("anything at all", &[]));
    }

    #[test]
    fn the_events_own_records_name_the_event_and_hold_stored_forms() {
        let mut r = asked("why not?", None);
        r.body = RecordBody::Titled { title: "Hi".into() };
        assert_eq!(check_record(&r, NOW_MS), Err(RuleError::WrongSubject), "a title on a question");
        r.question = event_subject(r.event);
        assert_eq!(check_record(&r, NOW_MS), Ok(()));
        r.body = RecordBody::Titled { title: " Hi".into() };
        assert_eq!(check_record(&r, NOW_MS), Err(RuleError::SettingNotNormalized));
        r.body = RecordBody::BlockedWordsSet { words: vec!["Spam".into()] };
        assert_eq!(check_record(&r, NOW_MS), Err(RuleError::SettingNotNormalized));
        r.body = RecordBody::Spotlight { on: true };
        assert_eq!(check_record(&r, NOW_MS), Err(RuleError::WrongSubject), "a spotlight on the event");
        let mut reply = asked("why not?", None);
        reply.body = RecordBody::Replied { text: "r".repeat(1_001) };
        assert_eq!(check_record(&reply, NOW_MS), Err(RuleError::ReplyTooLong));
    }

    #[test]
    fn a_replacement_holds_only_its_events_questions_and_their_voters() {
        use crate::fold::{QuestionState, VoterState};
        use crate::ports::{Replacement, StoreError};
        let (event, other) = (EventId(Ulid(1)), EventId(Ulid(2)));
        let question = |id: u128, event: EventId| QuestionState::new(QuestionId(Ulid(id)), event);
        let mine = [question(10, event)];
        let theirs = [question(20, other)];
        let vote = |q: u128| ((QuestionId(Ulid(q)), VoterId(Ulid(7))), VoterState { up: true, rec: RecordId(Ulid(8)) });
        assert!(Replacement::new(Some(event), &mine, &[vote(10)]).is_ok());
        assert!(Replacement::new(None, &theirs, &[vote(20)]).is_ok(), "the whole projection holds every event");
        let refused = |r: Result<Replacement<'_>, StoreError>| matches!(r, Err(StoreError::Rejected(_)));
        assert!(refused(Replacement::new(Some(event), &theirs, &[])), "another event's question");
        assert!(refused(Replacement::new(Some(event), &mine, &[vote(20)])), "a voter of a question not held");
    }
}
