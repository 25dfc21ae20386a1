//! Every limit the service enforces, in one place, named with its unit.

/// Largest request body any route accepts (design §7: larger bodies get 413).
pub const REQUEST_BODY_BYTES_MAX: usize = 1024;
/// Longest question text, in characters (after trimming).
pub const QUESTION_TEXT_CHARS_MAX: usize = 500;
/// Fewest words a question must have (the original rejects one-word questions).
pub const QUESTION_WORDS_MIN: usize = 2;
/// Longest asker name, in characters (after trimming).
pub const ASKER_NAME_CHARS_MAX: usize = 50;
/// Most question ids one `GET /api/questions/{ids}` may name.
pub const QUESTION_IDS_PER_REQUEST_MAX: usize = 100;
/// Most questions one event may hold; beyond it asking is refused (keeps a list bounded).
pub const QUESTIONS_PER_EVENT_MAX: usize = 5_000;
/// Most records the aggregator folds in one batch.
pub const BATCH_RECORDS_MAX: usize = 4_096;
/// Most records one page of a ledger scan returns.
pub const SCAN_PAGE_RECORDS_MAX: usize = 10_000;
/// Default retention of an event and its records, in days (`Retention::DEFAULT`).
pub const RETENTION_DAYS_DEFAULT: u64 = 30;
/// Longest region name stamped on a record, in characters.
pub const REGION_CHARS_MAX: usize = 64;
/// How far ahead of this machine's clock a record id may be, in milliseconds (clock skew
/// between regions and hosts). An id further ahead would win every later comparison.
pub const RECORD_FUTURE_SKEW_MS_MAX: u64 = 5 * 60 * 1_000;
/// The shortest step of an event's timeline (`GET .../timeline/{secret}?step=`), in seconds.
pub const TIMELINE_STEP_S_MIN: u64 = 10;
/// Most points a timeline holds; past it the server picks a larger step.
pub const TIMELINE_POINTS_MAX: u64 = 1_000;
/// Longest event title, in characters (after trimming).
pub const EVENT_TITLE_CHARS_MAX: usize = 120;
/// Longest written answer, in characters (after trimming).
pub const REPLY_CHARS_MAX: usize = 1_000;
/// Most blocked words an event may have.
pub const BLOCKED_WORDS_MAX: usize = 100;
/// Longest blocked word (or phrase), in characters (after trimming).
pub const BLOCKED_WORD_CHARS_MAX: usize = 50;
/// Largest body of the host's text routes (settings, replies): a reply of
/// [`REPLY_CHARS_MAX`] characters of up to 4 UTF-8 bytes each, JSON-escaped, fits.
pub const HOST_TEXT_BODY_BYTES_MAX: usize = 16 * 1024;
/// Most co-host links an event may have had (valid or revoked).
pub const COHOSTS_PER_EVENT_MAX: usize = 20;
