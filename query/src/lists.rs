//! The ranked question lists, the hot read path: rendered once and then served from memory.
//!
//! A rendered list (its JSON bytes and their ETag) is kept per event and per variant. An
//! entry is served while it is younger than [`LIST_FRESH_MS`] (ranking moves with time, and
//! on AWS nothing tells us about changes) and was rendered after the last change of its event
//! that the [`LiveHub`](crate::LiveHub) announced. Invalidation is a timestamp, not a removal:
//! a render that raced with a change is simply never valid, whichever finished first.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::http::HeaderValue;
use bytes::Bytes;
use ledger::ports::{ProjectionReader, StoreError};
use ledger::rank::rank;
use ledger::{EventId, QuestionId};
use parking_lot::Mutex;
use quick_cache::sync::Cache;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::broadcast::{self, error::TryRecvError};

/// The longest a rendered list is served without rendering it again.
pub const LIST_FRESH_MS: u64 = 1_000;
/// How many (event, variant) lists are kept; the least used are dropped beyond it.
pub const LISTS_CACHED_MAX: usize = 10_000;

/// Which list: the guests' (hidden questions left out) or the host's (all of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    Guest,
    Host,
}

/// One list as sent: the body and its strong ETag.
#[derive(Clone)]
pub struct Rendered {
    pub body: Bytes,
    pub etag: HeaderValue,
    /// When the render began (nanoseconds since the cache's epoch).
    started_ns: u64,
}

/// An item of a list, as the original API spells it.
#[derive(Serialize)]
struct ListItem {
    qid: QuestionId,
    votes: u64,
    hidden: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    answered: Option<u64>,
}

pub struct ListCache {
    epoch: Instant,
    entries: Cache<(EventId, Variant), Rendered>,
    /// When each event last changed, as announced by the hub (nanoseconds since `epoch`).
    changed_ns: Cache<EventId, u64>,
    /// Entries rendered before this are stale (set when the hub's receiver lagged).
    everything_changed_ns: AtomicU64,
    /// The hub's announcements, drained before every lookup so that a change the aggregator
    /// announced before a request arrived is always seen by that request.
    changes: Option<Mutex<broadcast::Receiver<EventId>>>,
}

impl ListCache {
    pub fn new(changes: Option<broadcast::Receiver<EventId>>) -> Self {
        Self {
            epoch: Instant::now(),
            entries: Cache::new(LISTS_CACHED_MAX),
            changed_ns: Cache::new(LISTS_CACHED_MAX),
            everything_changed_ns: AtomicU64::new(0),
            changes: changes.map(Mutex::new),
        }
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Marks an event's lists stale.
    pub fn invalidate(&self, event: EventId) {
        self.changed_ns.insert(event, self.now_ns());
    }

    fn drain_changes(&self) {
        let Some(changes) = &self.changes else { return };
        let mut changes = changes.lock();
        loop {
            match changes.try_recv() {
                Ok(event) => self.invalidate(event),
                Err(TryRecvError::Lagged(_)) => {
                    self.everything_changed_ns
                        .store(self.now_ns(), Ordering::Release);
                }
                Err(TryRecvError::Empty | TryRecvError::Closed) => return,
            }
        }
    }

    fn fresh(&self, event: EventId, variant: Variant) -> Option<Rendered> {
        let entry = self.entries.get(&(event, variant))?;
        let now = self.now_ns();
        let young = now.saturating_sub(entry.started_ns) < LIST_FRESH_MS * 1_000_000;
        let after_changes = entry.started_ns >= self.everything_changed_ns.load(Ordering::Acquire)
            && self
                .changed_ns
                .get(&event)
                .is_none_or(|changed| entry.started_ns >= changed);
        (young && after_changes).then_some(entry)
    }

    /// The list from memory if it is still valid, else rendered from the projection.
    pub async fn get(
        &self,
        projection: &dyn ProjectionReader,
        event: EventId,
        variant: Variant,
    ) -> Result<Rendered, StoreError> {
        self.drain_changes();
        if let Some(hit) = self.fresh(event, variant) {
            metrics::counter!("query_list_cache_total", "outcome" => "hit").increment(1);
            return Ok(hit);
        }
        metrics::counter!("query_list_cache_total", "outcome" => "miss").increment(1);
        let started_ns = self.now_ns();
        let body = render(projection, event, variant, wall_clock_ms()).await?;
        let rendered = Rendered {
            etag: etag(&body),
            body,
            started_ns,
        };
        self.entries.insert((event, variant), rendered.clone());
        Ok(rendered)
    }
}

/// Reads and ranks an event's questions and renders them as the list's JSON.
pub async fn render(
    projection: &dyn ProjectionReader,
    event: EventId,
    variant: Variant,
    now_ms: u64,
) -> Result<Bytes, StoreError> {
    let mut questions = projection.event_questions(event).await?;
    if variant == Variant::Guest {
        questions.retain(|q| !q.is_hidden());
    }
    rank(&mut questions, now_ms);
    let items: Vec<ListItem> = questions
        .iter()
        .map(|q| ListItem {
            qid: q.id,
            votes: q.votes,
            hidden: q.is_hidden(),
            answered: q.answered_at().map(|at| at.unix_seconds()),
        })
        .collect();
    serde_json::to_vec(&items)
        .map(Bytes::from)
        .map_err(|e| StoreError::Corrupt(format!("cannot render a list: {e}")))
}

/// A strong ETag: the first 128 bits of the body's SHA-256, quoted.
pub fn etag(body: &[u8]) -> HeaderValue {
    let digest = Sha256::digest(body);
    let mut tag = String::with_capacity(34);
    tag.push('"');
    for byte in &digest[..16] {
        tag.push_str(&format!("{byte:02x}"));
    }
    tag.push('"');
    HeaderValue::try_from(tag).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// Whether an `If-None-Match` header names this ETag (weak comparison, as RFC 9110 asks for
/// `If-None-Match`; `*` matches any current representation).
pub fn etag_matches(if_none_match: &HeaderValue, etag: &HeaderValue) -> bool {
    let (Ok(candidates), Ok(etag)) = (if_none_match.to_str(), etag.to_str()) else {
        return false;
    };
    candidates
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

pub fn wall_clock_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_match_exactly_weakly_and_by_star() {
        let tag = etag(b"[]");
        assert_eq!(tag.len(), 34);
        assert_ne!(tag, etag(b"[1]"));
        assert!(etag_matches(&tag, &tag));
        let weak = HeaderValue::from_str(&format!("\"x\", W/{}", tag.to_str().unwrap())).unwrap();
        assert!(etag_matches(&weak, &tag));
        assert!(etag_matches(&HeaderValue::from_static("*"), &tag));
        assert!(!etag_matches(&HeaderValue::from_static("\"other\""), &tag));
    }
}
