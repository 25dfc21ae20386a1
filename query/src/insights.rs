//! The host's insights (design §7): what only the ledger can show, read from one event's
//! records rather than from the projection. The host's list at a past instant (`?at=`),
//! the votes over the session (`timeline`), the moderation audit (`audit`) and bursts of
//! never-seen voters (`bursts`). Host-only, never cached by anyone but this process.
//!
//! An event's records are read once through [`LedgerStore::event_records`] (SQLite: the
//! ledger's event index on a reader connection; DynamoDB: every shard partition in
//! parallel) and kept for [`HISTORY_FRESH_MS`], so a host scrubbing through the session
//! costs one read, and the write path never waits for any of it. The pure parts (the fold
//! up to an instant, the step rule, the burst rule) are in `ledger::history`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use ledger::history::{BurstThresholds, History};
use ledger::ndjson::RecordLine;
use ledger::ports::{LedgerStore, StoreError};
use ledger::{EventId, QuestionId, Record};
use quick_cache::sync::Cache;
use quick_cache::{OptionsBuilder, Weighter};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::export::QueryParams;
use crate::handlers::{hosted_event, AppState};
use crate::lists::{render_items, Variant};
use crate::QueryContext;
use http_edge::PathParams;

/// How long an event's records, once read, answer insights requests (ms). A host looking
/// back at a session sees what was recorded up to a few seconds ago.
pub const HISTORY_FRESH_MS: u64 = 5_000;
/// How many records the insights cache holds in all (each record weighs one, an event at
/// least one); an event with more is read again for every request.
pub const HISTORY_CACHED_RECORDS_MAX: u64 = 300_000;
/// The timeline's step when the request names none (seconds).
pub const TIMELINE_STEP_S_DEFAULT: u64 = 60;
/// Every insights answer is the host's alone and may change with the next record.
pub const INSIGHTS_CACHE_CONTROL: &str = "private, no-store";

/// One event's records as read, and when.
#[derive(Clone)]
pub(crate) struct Fetched {
    history: Arc<History>,
    read_at: Instant,
}

#[derive(Clone, Copy, Default)]
pub(crate) struct RecordsWeight;

impl Weighter<EventId, Fetched> for RecordsWeight {
    fn weight(&self, _: &EventId, fetched: &Fetched) -> u64 {
        u64::try_from(fetched.history.len()).unwrap_or(u64::MAX).max(1)
    }
}

/// The events' records, read at most once per [`HISTORY_FRESH_MS`] per event; concurrent
/// misses of one event share one read.
pub(crate) struct HistoryCache {
    entries: Cache<EventId, Fetched, RecordsWeight>,
}

impl HistoryCache {
    pub(crate) fn new(records_max: u64) -> Self {
        // One shard: a sharded cache splits the budget, and an event heavier than a shard's
        // part would never be kept. Few events are looked back at at once, so one lock is
        // no contention. Sized for events of about a thousand records.
        let estimated = usize::try_from(records_max / 1_000).unwrap_or(usize::MAX).max(1);
        let options = OptionsBuilder::new()
            .shards(1)
            .estimated_items_capacity(estimated)
            .weight_capacity(records_max)
            .build()
            .unwrap_or_else(|_| unreachable!("both capacities are set"));
        Self { entries: Cache::with_options(options, RecordsWeight, Default::default(), Default::default()) }
    }

    fn fresh(fetched: &Fetched) -> bool {
        fetched.read_at.elapsed().as_millis() < u128::from(HISTORY_FRESH_MS)
    }

    pub(crate) async fn get(&self, ledger: &dyn LedgerStore, event: EventId) -> Result<Arc<History>, StoreError> {
        if let Some(hit) = self.entries.get(&event).filter(Self::fresh) {
            return Ok(hit.history);
        }
        self.entries.remove_if(&event, |fetched| !Self::fresh(fetched));
        let guard = match self.entries.get_value_or_guard_async(&event).await {
            Ok(fetched) if Self::fresh(&fetched) => return Ok(fetched.history),
            Ok(_) => None,
            Err(guard) => Some(guard),
        };
        let read_at = Instant::now();
        let history = Arc::new(History::new(ledger.event_records(event).await?));
        let fetched = Fetched { history: history.clone(), read_at };
        match guard {
            Some(guard) => {
                let _ = guard.insert(fetched);
            }
            None => self.entries.insert(event, fetched),
        }
        Ok(history)
    }
}

/// The event's records, for a host who gave the right secret.
async fn hosted_history(shared: &QueryContext, eid: &str, secret: &str) -> Result<Arc<History>, ApiError> {
    let event = hosted_event(shared, eid, secret).await?;
    let ledger = shared.ledger.as_ref().ok_or(ApiError::NotAvailable)?;
    Ok(shared.history.get(ledger.as_ref(), event.id).await?)
}

fn json_response(body: Vec<u8>) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(INSIGHTS_CACHE_CONTROL));
    response
}

fn render<T: Serialize + ?Sized>(value: &T) -> Result<Response, ApiError> {
    let body = serde_json::to_vec(value).map_err(|e| {
        tracing::error!(error = %e, "cannot render an insights answer");
        ApiError::Unavailable
    })?;
    Ok(json_response(body))
}

/// `GET /api/event/{eid}/questions/{secret}?at={unix_ms}`: the host's list as it stood at
/// that instant, the fold of the records whose id time is at or before it (written answers
/// included), ranked with "now" = `at`.
pub(crate) async fn host_list_at(
    shared: &QueryContext,
    eid: &str,
    secret: &str,
    at_ms: u64,
) -> Result<Response, ApiError> {
    let history = hosted_history(shared, eid, secret).await?;
    let projection = history.projection_at(at_ms);
    let standings = projection.questions().map(|q| q.standing).collect();
    let replies: HashMap<QuestionId, String> =
        projection.questions().filter_map(|q| Some((q.standing.id, q.reply_text()?.to_owned()))).collect();
    let (_, body) = render_items(standings, &replies, Variant::Host, at_ms)?;
    Ok(json_response(body.to_vec()))
}

#[derive(Deserialize)]
pub struct TimelineParams {
    step: Option<u64>,
    /// Only the series of this many questions, those with the most votes at the end.
    top: Option<usize>,
}

#[derive(Serialize)]
struct TimelineBody<'a> {
    start: u64,
    step: u64,
    questions: &'a BTreeMap<QuestionId, Vec<u64>>,
    asked: &'a [u64],
    new_voters: &'a [u64],
}

/// `GET /api/event/{eid}/timeline/{secret}?step={seconds}[&top={n}]`: every question's (or
/// the top `n`'s) votes at the end of each step, the questions asked and the first-time
/// voters per step. A chart asks for the top few: every series of a large event would be
/// megabytes (5,000 questions × 1,000 points), more than a Lambda may answer.
pub async fn timeline(
    State(shared): AppState,
    PathParams((eid, secret)): PathParams<(String, String)>,
    QueryParams(params): QueryParams<TimelineParams>,
) -> Result<Response, ApiError> {
    let requested = params.step.unwrap_or(TIMELINE_STEP_S_DEFAULT);
    // A bad step or top is refused before any read, whatever the event.
    ledger::history::timeline_step_s(requested, 0).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if params.top == Some(0) {
        return Err(ApiError::BadRequest("top is a number of questions, at least 1".into()));
    }
    let history = hosted_history(&shared, &eid, &secret).await?;
    let mut timeline = history.timeline(requested).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if let Some(top) = params.top {
        timeline.retain_top(top);
    }
    render(&TimelineBody {
        start: timeline.start_ms,
        step: timeline.step_s,
        questions: &timeline.questions,
        asked: &timeline.asked,
        new_voters: &timeline.new_voters,
    })
}

/// The fields of a record's interchange form that the audit leaves out: the ids and region
/// (the record itself, not what it did), a guest's identity, and secrets' hashes.
const AUDIT_HIDDEN_FIELDS: &[&str] = &["id", "event", "region", "voter", "up", "secret_hash"];

/// One moderation record as the audit lists it: `at` (Unix ms), its kind, its question
/// (absent for the event's own records) and the fields of its kind (`on`, a reply's text,
/// a setting's value...), taken from the record's interchange form so that every kind
/// carries what it says.
pub(crate) fn audit_entry(record: &Record) -> Result<serde_json::Value, ApiError> {
    let mut entry = match serde_json::to_value(RecordLine::from(record)) {
        Ok(serde_json::Value::Object(fields)) => fields,
        _ => {
            tracing::error!(record = %record.id, "a record does not render as an object");
            return Err(ApiError::Unavailable);
        }
    };
    for field in AUDIT_HIDDEN_FIELDS {
        entry.remove(*field);
    }
    // The event's own records name the event as their question (design §2).
    if record.question.to_u128() == record.event.to_u128() {
        entry.remove("question");
    }
    entry.insert("at".into(), record.id.timestamp_ms().into());
    Ok(serde_json::Value::Object(entry))
}

/// `GET /api/event/{eid}/audit/{secret}`: every moderation record (anything but asks and
/// votes) in order, undoing ones included.
pub async fn audit(
    State(shared): AppState,
    PathParams((eid, secret)): PathParams<(String, String)>,
) -> Result<Response, ApiError> {
    let history = hosted_history(&shared, &eid, &secret).await?;
    let entries = history.moderation().map(audit_entry).collect::<Result<Vec<_>, _>>()?;
    render(&entries)
}

#[derive(Serialize)]
struct BurstItem {
    question: QuestionId,
    start: u64,
    end: u64,
    new_voters: u64,
    still_up: u64,
    votes: u64,
    share: f64,
}

/// `GET /api/event/{eid}/bursts/{secret}`: the windows of never-seen voters on one
/// question, by the default thresholds (`ledger::history::BurstThresholds`).
pub async fn bursts(
    State(shared): AppState,
    PathParams((eid, secret)): PathParams<(String, String)>,
) -> Result<Response, ApiError> {
    let history = hosted_history(&shared, &eid, &secret).await?;
    let items: Vec<BurstItem> = history
        .bursts(&BurstThresholds::default())
        .into_iter()
        .map(|b| BurstItem {
            question: b.question,
            start: b.start_ms,
            end: b.end_ms,
            new_voters: b.new_voters,
            still_up: b.still_up,
            votes: b.votes,
            share: b.share,
        })
        .collect();
    render(&items)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use ledger::ports::{ScanPage, ScanToken, StoreResult};
    use ledger::{QuestionId, RecordBody, RecordId, VoterId};

    use super::*;

    /// A ledger whose every event holds `records` votes, counting the reads of an event.
    struct CountingLedger {
        records: usize,
        reads: AtomicUsize,
    }

    #[async_trait]
    impl LedgerStore for CountingLedger {
        async fn append(&self, _: &[Record]) -> StoreResult<()> {
            Ok(())
        }
        async fn scan(&self, _: Option<EventId>, _: Option<ScanToken>, _: usize) -> StoreResult<ScanPage> {
            Ok(ScanPage::default())
        }
        async fn count(&self, _: Option<EventId>) -> StoreResult<u64> {
            Ok(0)
        }
        async fn event_records(&self, event: EventId) -> StoreResult<Vec<Record>> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            Ok((0..self.records as u128)
                .map(|i| Record {
                    id: RecordId::from_u128((1 << 80) + i),
                    event,
                    question: QuestionId::from_u128(7),
                    region: "test".into(),
                    body: RecordBody::Voted { voter: VoterId::from_u128(i), up: true },
                })
                .collect())
        }
    }

    #[tokio::test]
    async fn an_event_of_a_hundred_thousand_records_is_read_once_and_a_heavier_one_each_time() {
        let cache = HistoryCache::new(HISTORY_CACHED_RECORDS_MAX);
        let big = CountingLedger { records: 100_000, reads: AtomicUsize::new(0) };
        for _ in 0..3 {
            assert_eq!(cache.get(&big, EventId::from_u128(1)).await.unwrap().len(), 100_000);
        }
        assert_eq!(big.reads.load(Ordering::SeqCst), 1, "read once, then from memory");
        // Another event of the same size fits beside it.
        cache.get(&big, EventId::from_u128(2)).await.unwrap();
        cache.get(&big, EventId::from_u128(2)).await.unwrap();
        assert_eq!(big.reads.load(Ordering::SeqCst), 2);

        let small = HistoryCache::new(1_000);
        let heavy = CountingLedger { records: 2_000, reads: AtomicUsize::new(0) };
        small.get(&heavy, EventId::from_u128(3)).await.unwrap();
        small.get(&heavy, EventId::from_u128(3)).await.unwrap();
        assert_eq!(heavy.reads.load(Ordering::SeqCst), 2, "over the budget: never kept");
        assert!(small.entries.weight() <= 1_000);
    }
}
