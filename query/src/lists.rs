//! The ranked question lists, the hot read path: rendered once and then served from memory.
//!
//! A rendered list (its JSON bytes and their ETag) is kept per event and per variant. An
//! entry is served while it is younger than [`LIST_FRESH_MS`] (ranking moves with time, and
//! on AWS nothing tells us about changes) and was rendered after the last change of its event
//! that the [`LiveHub`](crate::LiveHub) announced. Invalidation is a timestamp, not a removal:
//! a render that raced with a change is simply never valid, whichever finished first.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::http::HeaderValue;
use bytes::Bytes;
use ledger::ports::{ProjectionReader, StoreError};
use ledger::rank::{rank, spotlight_of};
use ledger::{EventId, QuestionId, QuestionStanding};
use parking_lot::Mutex;
use quick_cache::sync::Cache;
use quick_cache::Weighter;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::broadcast::{self, error::TryRecvError};

/// The longest a rendered list is served without rendering it again.
pub const LIST_FRESH_MS: u64 = 1_000;
/// How many events' last-change times are kept (a fixed-size entry each); an event whose
/// time was dropped is still bounded by [`LIST_FRESH_MS`].
pub const CHANGES_REMEMBERED_MAX: usize = 10_000;

/// Which list: the guests' (hidden questions and those waiting for review left out) or the
/// host's (all of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    Guest,
    Host,
}

/// One list as sent: its items, the body and its strong ETag.
#[derive(Clone)]
pub struct Rendered {
    /// The list's items in rank order (what live-stream deltas are computed from).
    pub items: Arc<[ListItem]>,
    pub body: Bytes,
    pub etag: HeaderValue,
    /// When the render began (nanoseconds since the cache's epoch).
    started_ns: u64,
}

impl Rendered {
    /// A render made outside the cache, for tests.
    #[cfg(test)]
    pub(crate) fn for_test(items: Arc<[ListItem]>, body: Bytes) -> Self {
        Self { etag: etag(&body), items, body, started_ns: 0 }
    }
}

/// An item of a list, as the original API spells it, plus what the host's tools add, each
/// only when it says something: `"spotlight": true`, `"approved": false` (waiting for
/// review, host lists only), `"reply"` (the written answer) and `"pending": true` (a guest's
/// own question waiting for review, in that guest's list only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListItem {
    pub qid: QuestionId,
    pub votes: u64,
    pub hidden: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answered: Option<u64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub spotlight: bool,
    #[serde(skip_serializing_if = "is_true")]
    pub approved: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply: Option<Box<str>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub pending: bool,
}

fn is_true(value: &bool) -> bool {
    *value
}

impl ListItem {
    /// A plain item: open, approved, no spotlight, no reply.
    pub fn new(qid: QuestionId, votes: u64) -> Self {
        Self {
            qid,
            votes,
            hidden: false,
            answered: None,
            spotlight: false,
            approved: true,
            reply: None,
            pending: false,
        }
    }
}

/// Weighs a cached list by its rendered bytes (body and ETag).
#[derive(Clone, Copy, Default)]
pub struct ListBytes;

impl Weighter<(EventId, Variant), Rendered> for ListBytes {
    fn weight(&self, _: &(EventId, Variant), list: &Rendered) -> u64 {
        let replies: usize = list.items.iter().filter_map(|i| i.reply.as_ref().map(|r| r.len())).sum();
        let items = list.items.len().saturating_mul(std::mem::size_of::<ListItem>()).saturating_add(replies);
        let bytes = list.body.len().saturating_add(list.etag.len()).saturating_add(items);
        u64::try_from(bytes).unwrap_or(u64::MAX).saturating_add(crate::CACHE_ENTRY_OVERHEAD_BYTES)
    }
}

pub struct ListCache {
    epoch: Instant,
    /// At most the byte budget given to [`ListCache::new`], the least used dropped beyond it.
    entries: Cache<(EventId, Variant), Rendered, ListBytes>,
    /// When each event last changed, as announced by the hub (nanoseconds since `epoch`).
    changed_ns: Cache<EventId, u64>,
    /// Entries rendered before this are stale (set when the hub's receiver lagged).
    everything_changed_ns: AtomicU64,
    /// The hub's announcements, drained before every lookup so that a change the aggregator
    /// announced before a request arrived is always seen by that request.
    changes: Option<Mutex<broadcast::Receiver<EventId>>>,
}

impl ListCache {
    /// A cache invalidated by `changes` (the hub's announcements, if any) that holds at
    /// most `bytes_max` bytes of lists.
    pub fn new(changes: Option<broadcast::Receiver<EventId>>, bytes_max: u64) -> Self {
        // Sized for lists of about 4 KiB (a few dozen questions).
        let estimated_lists = usize::try_from(bytes_max / 4_096).unwrap_or(usize::MAX).max(1);
        Self {
            epoch: Instant::now(),
            entries: Cache::with_weighter(estimated_lists, bytes_max, ListBytes),
            changed_ns: Cache::new(CHANGES_REMEMBERED_MAX),
            everything_changed_ns: AtomicU64::new(0),
            changes: changes.map(Mutex::new),
        }
    }

    /// How many bytes the cached lists weigh now (never more than the budget).
    pub fn weight(&self) -> u64 {
        self.entries.weight()
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
                    self.everything_changed_ns.store(self.now_ns(), Ordering::Release);
                }
                Err(TryRecvError::Empty | TryRecvError::Closed) => return,
            }
        }
    }

    /// Whether a rendered list may still be served: young enough, and rendered after the last
    /// change of its event that the hub announced.
    fn valid(&self, event: EventId, entry: &Rendered) -> bool {
        let young = self.now_ns().saturating_sub(entry.started_ns) < LIST_FRESH_MS * 1_000_000;
        young
            && entry.started_ns >= self.everything_changed_ns.load(Ordering::Acquire)
            && self.changed_ns.get(&event).is_none_or(|changed| entry.started_ns >= changed)
    }

    /// The list from memory if it is still valid, else rendered from the projection. Concurrent
    /// misses for the same list wait for one render instead of each reading the store.
    pub async fn get(
        &self,
        projection: &dyn ProjectionReader,
        event: EventId,
        variant: Variant,
    ) -> Result<Rendered, StoreError> {
        self.drain_changes();
        let key = (event, variant);
        if let Some(hit) = self.entries.get(&key).filter(|entry| self.valid(event, entry)) {
            metrics::counter!("query_list_cache_total", "outcome" => "hit").increment(1);
            return Ok(hit);
        }
        metrics::counter!("query_list_cache_total", "outcome" => "miss").increment(1);
        // Drop the stale entry, so that the misses queue behind the first one's render.
        self.entries.remove_if(&key, |entry| !self.valid(event, entry));
        let guard = match self.entries.get_value_or_guard_async(&key).await {
            // Another request's render, which may have begun before a change this request
            // already knows about: only serve it if it is still valid now.
            Ok(rendered) if self.valid(event, &rendered) => return Ok(rendered),
            Ok(_) => None,
            Err(guard) => Some(guard),
        };
        let started_ns = self.now_ns();
        let (items, body) = render(projection, event, variant, wall_clock_ms()).await?;
        let rendered = Rendered { items, etag: etag(&body), body, started_ns };
        match guard {
            Some(guard) => {
                let _ = guard.insert(rendered.clone());
            }
            None => self.entries.insert(key, rendered.clone()),
        }
        Ok(rendered)
    }
}

/// Reads and ranks an event's questions: the list's items and its JSON.
pub async fn render(
    projection: &dyn ProjectionReader,
    event: EventId,
    variant: Variant,
    now_ms: u64,
) -> Result<(Arc<[ListItem]>, Bytes), StoreError> {
    let questions = projection.event_questions(event).await?;
    let replies: HashMap<QuestionId, String> = projection.replies(event).await?.into_iter().collect();
    render_items(questions, &replies, variant, now_ms)
}

/// Ranks questions at `now_ms` and renders them as the list of `variant` (also the host's
/// list at a past instant, `?at=`, from the ledger's fold), without written answers.
pub fn render_standings(
    questions: Vec<QuestionStanding>,
    variant: Variant,
    now_ms: u64,
) -> Result<(Arc<[ListItem]>, Bytes), StoreError> {
    render_items(questions, &HashMap::new(), variant, now_ms)
}

/// Ranks questions at `now_ms` and renders them, with their written answers, as the list of
/// `variant`. The spotlight is decided over all of the event's questions (`rank`).
pub fn render_items(
    mut questions: Vec<QuestionStanding>,
    replies: &HashMap<QuestionId, String>,
    variant: Variant,
    now_ms: u64,
) -> Result<(Arc<[ListItem]>, Bytes), StoreError> {
    let lit = spotlight_of(&questions);
    if variant == Variant::Guest {
        questions.retain(|q| !q.is_hidden() && !q.is_pending());
    }
    rank(&mut questions, now_ms);
    let items: Arc<[ListItem]> = questions
        .iter()
        .map(|q| ListItem {
            qid: q.id,
            votes: q.votes,
            hidden: q.is_hidden(),
            answered: q.answered_at().map(|at| at.unix_seconds()),
            spotlight: lit == Some(q.id),
            approved: !q.is_pending(),
            reply: replies.get(&q.id).filter(|r| !r.is_empty()).map(|r| r.as_str().into()),
            pending: false,
        })
        .collect();
    let body = serialize(&items)?;
    Ok((items, Bytes::from(body)))
}

/// A list's JSON.
pub fn serialize(items: &[ListItem]) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(items).map_err(|e| StoreError::Corrupt(format!("cannot render a list: {e}")))
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
    candidates.split(',').map(str::trim).any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

pub fn wall_clock_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    use ledger::ports::{QuestionText, StoreResult};
    use ledger::QuestionStanding;

    use super::*;

    /// A projection of `questions` questions per event that counts its list reads, each
    /// taking `read_ms`, as a DynamoDB Query would.
    #[derive(Default)]
    struct StubReader {
        questions: u128,
        read_ms: u64,
        reads: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl ProjectionReader for StubReader {
        async fn event_questions(&self, event: EventId) -> StoreResult<Vec<QuestionStanding>> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(self.read_ms)).await;
            Ok((0..self.questions).map(|i| QuestionStanding::new(QuestionId::from_u128(i + 1), event)).collect())
        }
        async fn question(&self, _: QuestionId) -> StoreResult<Option<QuestionStanding>> {
            Ok(None)
        }
        async fn question_texts(&self, _: &[QuestionId]) -> StoreResult<Vec<QuestionText>> {
            Ok(Vec::new())
        }
    }

    #[tokio::test]
    async fn concurrent_misses_share_one_read_and_a_change_forces_the_next() {
        let hub = tokio::sync::broadcast::channel(16).0;
        let cache = Arc::new(ListCache::new(Some(hub.subscribe()), 1024 * 1024));
        let reader = Arc::new(StubReader { questions: 1, read_ms: 20, ..StubReader::default() });
        let event = EventId::from_u128(42);
        let gets: Vec<_> = (0..16)
            .map(|_| {
                let (cache, reader) = (cache.clone(), reader.clone());
                tokio::spawn(async move { cache.get(reader.as_ref(), event, Variant::Guest).await.map(|r| r.etag) })
            })
            .collect();
        for get in gets {
            assert!(get.await.unwrap().is_ok());
        }
        assert_eq!(reader.reads.load(Ordering::SeqCst), 1);

        cache.get(reader.as_ref(), event, Variant::Guest).await.unwrap();
        assert_eq!(reader.reads.load(Ordering::SeqCst), 1, "served from memory");
        cache.get(reader.as_ref(), event, Variant::Host).await.unwrap();
        assert_eq!(reader.reads.load(Ordering::SeqCst), 2, "each variant is its own list");

        hub.send(event).unwrap();
        cache.get(reader.as_ref(), event, Variant::Guest).await.unwrap();
        assert_eq!(reader.reads.load(Ordering::SeqCst), 3, "an announced change is never served stale");
        hub.send(EventId::from_u128(7)).unwrap();
        cache.get(reader.as_ref(), event, Variant::Guest).await.unwrap();
        assert_eq!(reader.reads.load(Ordering::SeqCst), 3, "another event's change does not matter");
    }

    #[tokio::test]
    async fn the_list_cache_stays_within_its_byte_budget() {
        const BUDGET: u64 = 128 * 1024;
        let cache = ListCache::new(None, BUDGET);
        // Every event has 40 questions: each rendered list is a few KiB.
        let wide = StubReader { questions: 40, ..StubReader::default() };
        let mut rendered_bytes = 0;
        for event in 0..200u128 {
            for variant in [Variant::Guest, Variant::Host] {
                let list = cache.get(&wide, EventId::from_u128(event), variant).await.unwrap();
                rendered_bytes += list.body.len() as u64;
                assert!(cache.weight() <= BUDGET, "{} bytes held", cache.weight());
            }
        }
        assert!(rendered_bytes > 4 * BUDGET, "the test renders only {rendered_bytes} bytes");
        // What the entries really hold, counted apart from the weigher.
        // The items (what deltas are computed from) weigh about as much as the bodies since
        // they carry the host's tools' fields too, so the bodies are a little under half.
        let held_bytes: u64 = cache.entries.iter().map(|(_, list)| list.body.len() as u64).sum();
        assert!(held_bytes <= BUDGET, "{held_bytes} bytes of lists held");
        assert!(held_bytes >= BUDGET * 2 / 5, "only {held_bytes} bytes held");
    }

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
