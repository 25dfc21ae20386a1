//! Live lists over Server-Sent Events (embedded mode only). A stream sends the current list
//! on connect and again whenever the aggregator announces a change of its event. Bursts are
//! coalesced: at most one push per [`PUSH_INTERVAL_MIN_MS`] (a guest's delta stream: per
//! [`GUEST_DELTA_INTERVAL_MIN_MS`]), and since each push renders the list as it is then,
//! the last push of a burst always carries the latest state.
//!
//! A delta stream (`?deltas=1`, design §7) sends the whole list once, then only what
//! changed. Each event keeps, while it has streams, the last
//! [`VERSIONS_KEPT`](crate::deltas::VERSIONS_KEPT) versions of its two lists (guest and
//! host): whichever stream first sees a new render makes the new version; a stream is sent
//! one delta from the version it has to the latest, rendered once per starting version and
//! shared by every stream at it, or the whole list if it fell further behind (or the delta
//! would be longer).
//! When the hub closes, every stream sends a last `restarting` event and ends.
//!
//! Each event with open streams has its own wake-up channel in the [`LiveHub`], so a change
//! wakes only the streams of its event. Streams are admitted within three budgets (per
//! client address, per event, in total; see [`QueryConfig`](crate::QueryConfig)), and end
//! when their event expires or when the hub is closed (the process is shutting down).

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use http_edge::ClientAddr;
use ledger::ports::StoreError;
use ledger::EventId;
use parking_lot::Mutex;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

use crate::budgets::StreamPermit;
use crate::deltas::{CatchUp, ListVersions};
use crate::error::ApiError;
use crate::export::QueryParams;
use crate::handlers::{existing_event, hosted_event, AppState};
use crate::lists::{wall_clock_ms, Rendered, Variant};
use crate::QueryContext;
use http_edge::PathParams;

/// The shortest time between two pushes on one stream.
pub const PUSH_INTERVAL_MIN_MS: u64 = 100;
/// The shortest time between two pushes on a guest's delta stream: at most two a second
/// (a phone on a venue's Wi-Fi), while hosts and presenters keep [`PUSH_INTERVAL_MIN_MS`].
pub const GUEST_DELTA_INTERVAL_MIN_MS: u64 = 500;
/// How often an idle stream sends a comment, so proxies keep it open.
pub const KEEP_ALIVE_S: u64 = 15;
/// How long to wait before trying again when the store failed to render a push.
const RETRY_PAUSE_MS: u64 = 1_000;
/// The longest a stream sleeps before it looks at the wall clock again for its event's
/// expiry (so a clock step, or an expiry years away, is never slept through).
const EXPIRY_RECHECK_MS: u64 = 60_000;

/// Where the embedded aggregator announces each event whose projection changed, and where
/// the live streams of each event wait for its changes.
///
/// The aggregator sends on one `broadcast` channel ([`LiveHub::sender`]); the list cache
/// reads it whole. For the streams, a fan-out task (started with the first stream) passes
/// each announcement on to the one event's own `watch` channel, so a change wakes only the
/// streams of its event. An event's channel exists while the event has streams, so there
/// are never more than there are streams (which the stream budgets bound).
#[derive(Clone)]
pub struct LiveHub {
    inner: Arc<HubInner>,
}

struct HubInner {
    sender: broadcast::Sender<EventId>,
    /// The events that have streams, each with the channel that wakes them.
    topics: Mutex<HashMap<EventId, Topic>>,
    fanout_started: AtomicBool,
    /// Set once by [`LiveHub::close`]: every stream ends and no new one opens.
    closed: watch::Sender<bool>,
}

struct Topic {
    wake: watch::Sender<()>,
    streams: usize,
    /// The versions of the event's lists its delta streams share.
    versions: Arc<ListVersions>,
    /// How often a stream of this event was woken by a change (see [`LiveHub::stream_wakes`]).
    wakes: Arc<AtomicU64>,
}

impl LiveHub {
    /// How many announcements a slow listener may fall behind before it just re-reads.
    pub const CAPACITY: usize = 1_024;

    pub fn new() -> Self {
        Self::from_sender(broadcast::channel(Self::CAPACITY).0)
    }

    pub fn from_sender(sender: broadcast::Sender<EventId>) -> Self {
        Self {
            inner: Arc::new(HubInner {
                sender,
                topics: Mutex::new(HashMap::new()),
                fanout_started: AtomicBool::new(false),
                closed: watch::channel(false).0,
            }),
        }
    }

    /// The sender to hand to the aggregator (`aggregator::tail::Tailer::changes`).
    pub fn sender(&self) -> broadcast::Sender<EventId> {
        self.inner.sender.clone()
    }

    /// Every announcement, of every event (the list cache's invalidation reads these).
    pub fn announcements(&self) -> broadcast::Receiver<EventId> {
        self.inner.sender.subscribe()
    }

    /// Ends every live stream promptly and refuses new ones (for a shutting-down process,
    /// whose graceful drain would otherwise wait for streams that never end by themselves).
    pub fn close(&self) {
        self.inner.closed.send_replace(true);
    }

    pub fn is_closed(&self) -> bool {
        *self.inner.closed.borrow()
    }

    /// How many times, since the event's oldest open stream opened, a stream of `event` was
    /// woken by a change of it (0 when it has no streams). Observability for tests and
    /// debugging: a change of another event never counts here.
    pub fn stream_wakes(&self, event: EventId) -> u64 {
        self.inner.topics.lock().get(&event).map_or(0, |topic| topic.wakes.load(Ordering::Relaxed))
    }

    /// How many events have open streams (each has one wake-up channel).
    pub fn events_streamed(&self) -> usize {
        self.inner.topics.lock().len()
    }

    /// Turns true when the hub is closed (and errs when the hub is gone).
    fn closing(&self) -> watch::Receiver<bool> {
        self.inner.closed.subscribe()
    }

    /// Registers a stream of `event`. Subscribe before the first render, so that a change
    /// in between is not missed. `None` once the hub is closed.
    fn subscribe(&self, event: EventId) -> Option<Subscription> {
        if self.is_closed() {
            return None;
        }
        self.start_fanout();
        let (changes, versions, wakes) = {
            let mut topics = self.inner.topics.lock();
            let topic = topics.entry(event).or_insert_with(|| Topic {
                wake: watch::channel(()).0,
                streams: 0,
                versions: Arc::default(),
                wakes: Arc::new(AtomicU64::new(0)),
            });
            topic.streams += 1;
            (topic.wake.subscribe(), topic.versions.clone(), topic.wakes.clone())
        };
        Some(Subscription { hub: self.inner.clone(), event, changes, versions, wakes })
    }

    /// Starts the task that passes announcements on to the events' channels, once. Its
    /// receiver is made here, before the first stream registers, so that stream misses
    /// nothing announced after it subscribed, and is not woken by older announcements.
    fn start_fanout(&self) {
        if self.inner.fanout_started.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut announcements = self.inner.sender.subscribe();
        let mut closed = self.inner.closed.subscribe();
        let hub = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            loop {
                let received = tokio::select! {
                    received = announcements.recv() => received,
                    // Closed, or the hub is gone: nobody is left to wake.
                    _ = closed.wait_for(|closed| *closed) => return,
                };
                let Some(hub) = hub.upgrade() else { return };
                let topics = hub.topics.lock();
                match received {
                    Ok(event) => {
                        if let Some(topic) = topics.get(&event) {
                            topic.wake.send_replace(());
                        }
                    }
                    // Announcements were lost, which may include any event's: wake them all.
                    Err(RecvError::Lagged(_)) => topics.values().for_each(|t| {
                        t.wake.send_replace(());
                    }),
                    Err(RecvError::Closed) => return,
                }
            }
        });
    }
}

impl Default for LiveHub {
    fn default() -> Self {
        Self::new()
    }
}

/// One stream's registration with its event's channel; unregisters on drop, removing the
/// event's channel with its last stream.
struct Subscription {
    hub: Arc<HubInner>,
    event: EventId,
    changes: watch::Receiver<()>,
    versions: Arc<ListVersions>,
    wakes: Arc<AtomicU64>,
}

impl Subscription {
    /// Waits for the next change of the event since [`Self::mark_seen`].
    async fn changed(&mut self) -> Option<()> {
        self.changes.changed().await.ok()?;
        self.wakes.fetch_add(1, Ordering::Relaxed);
        Some(())
    }

    /// Whatever changed until now is covered by the render that follows.
    fn mark_seen(&mut self) {
        self.changes.borrow_and_update();
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut topics = self.hub.topics.lock();
        if let Entry::Occupied(mut topic) = topics.entry(self.event) {
            topic.get_mut().streams = topic.get().streams.saturating_sub(1);
            if topic.get().streams == 0 {
                topic.remove();
            }
        }
    }
}

type LiveResponse = Response;

/// The live routes' query string: `deltas=1` asks for a delta stream.
#[derive(Debug, Default, Deserialize)]
pub struct LiveQuery {
    #[serde(default)]
    deltas: Option<u8>,
}

impl LiveQuery {
    fn deltas(&self) -> Result<bool, ApiError> {
        match self.deltas {
            None | Some(0) => Ok(false),
            Some(1) => Ok(true),
            Some(_) => Err(ApiError::BadRequest("deltas must be 0 or 1".into())),
        }
    }
}

/// `GET /api/live/{eid}[?deltas=1]`: the guest list, live.
pub async fn guest(
    State(shared): AppState,
    client: ClientAddr,
    PathParams(eid): PathParams<String>,
    QueryParams(query): QueryParams<LiveQuery>,
) -> Result<LiveResponse, ApiError> {
    let row = existing_event(&shared, &eid).await?;
    open(shared, client, row.id, row.expire_unix, Variant::Guest, query.deltas()?)
}

/// `GET /api/live/{eid}/{secret}[?deltas=1]`: the host list, live.
pub async fn host(
    State(shared): AppState,
    client: ClientAddr,
    PathParams((eid, secret)): PathParams<(String, String)>,
    QueryParams(query): QueryParams<LiveQuery>,
) -> Result<LiveResponse, ApiError> {
    let row = hosted_event(&shared, &eid, &secret).await?;
    open(shared, client, row.id, row.expire_unix, Variant::Host, query.deltas()?)
}

struct LiveStream {
    shared: Arc<QueryContext>,
    event: EventId,
    variant: Variant,
    /// A delta stream (`deltas=1`): the version it has sent (`None` before the first).
    delta: Option<Option<u64>>,
    subscription: Subscription,
    end: StreamEnd,
    /// Messages rendered and not yet sent (a delta stream catching up sends several).
    queue: VecDeque<Event>,
    /// The hub closed: the `restarting` message is queued and the stream ends after it.
    ending: bool,
    /// When the last push was sent (`None` before the first).
    pushed_at: Option<Instant>,
    /// The ETag of the last list pushed: a render that equals it is not pushed again.
    pushed_etag: Option<HeaderValue>,
    /// The last push failed: push again without waiting for a change.
    retry: bool,
    /// Held for as long as the stream lives.
    _permit: StreamPermit,
}

/// What ends a stream besides its client leaving: the hub closing, its event expiring.
struct StreamEnd {
    closed: watch::Receiver<bool>,
    expire_unix: u64,
}

/// Why a stream ends.
enum Ended {
    /// The hub closed (the process is shutting down): the client should reconnect.
    Closed,
    /// The event expired: there is nothing left to stream.
    Expired,
}

impl StreamEnd {
    /// `work`'s output, or why the stream must end first.
    async fn unless_ended<T>(&mut self, work: impl Future<Output = T>) -> Result<T, Ended> {
        tokio::select! {
            output = work => Ok(output),
            // An error means the hub itself is gone: end as well.
            _ = self.closed.wait_for(|closed| *closed) => Err(Ended::Closed),
            () = expiry(self.expire_unix) => Err(Ended::Expired),
        }
    }
}

/// Resolves once the wall clock has reached `expire_unix`.
async fn expiry(expire_unix: u64) {
    let at_ms = expire_unix.saturating_mul(1_000);
    loop {
        let now_ms = wall_clock_ms();
        if now_ms >= at_ms {
            return;
        }
        let wait_ms = (at_ms - now_ms).min(EXPIRY_RECHECK_MS);
        tokio::time::sleep(Duration::from_millis(wait_ms)).await;
    }
}

fn open(
    shared: Arc<QueryContext>,
    client: ClientAddr,
    event: EventId,
    expire_unix: u64,
    variant: Variant,
    deltas: bool,
) -> Result<LiveResponse, ApiError> {
    let hub = shared.live.as_ref().ok_or(ApiError::NotAvailable)?;
    let permit = shared.streams.admit(client, event).map_err(|budget| {
        metrics::counter!("live_streams_refused_total", "budget" => budget.name()).increment(1);
        ApiError::StreamBudgetSpent(budget)
    })?;
    // Subscribe before the first render, so a change in between is not missed.
    let subscription = hub.subscribe(event).ok_or(ApiError::Unavailable)?;
    metrics::counter!("live_streams_opened_total").increment(1);
    let end = StreamEnd { closed: hub.closing(), expire_unix };
    let state = LiveStream {
        shared,
        event,
        variant,
        delta: deltas.then_some(None),
        subscription,
        end,
        queue: VecDeque::new(),
        ending: false,
        pushed_at: None,
        pushed_etag: None,
        retry: false,
        _permit: permit,
    };
    let stream = futures::stream::unfold(state, next_push);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(KEEP_ALIVE_S))).into_response())
}

/// The stream's next message, or `None` to end it (after `restarting` when the hub closed;
/// at once when the event expired).
async fn next_push(mut s: LiveStream) -> Option<(Result<Event, Infallible>, LiveStream)> {
    loop {
        if let Some(message) = s.queue.pop_front() {
            return Some((Ok(message), s));
        }
        if s.ending {
            return None;
        }
        match next_render(&mut s).await {
            Err(Ended::Closed) => {
                s.ending = true;
                s.queue.push_back(Event::default().event("restarting").data("{}"));
            }
            Err(Ended::Expired) => return None,
            Ok(Ok(rendered)) => match s.delta {
                Some(seen) => queue_catch_up(&mut s, &rendered, seen),
                None => queue_whole(&mut s, rendered),
            },
            // Already logged by the error conversion; the stream stays open and tries again.
            Ok(Err(error)) => {
                let _ = ApiError::from(error);
                s.retry = true;
                s.queue.push_back(Event::default().comment("unavailable"));
            }
        }
    }
}

/// Waits until the stream should push (the first push at once; then after a change and the
/// stream's interval, or after a pause when the last push failed) and renders its list.
async fn next_render(s: &mut LiveStream) -> Result<Result<Rendered, StoreError>, Ended> {
    if let Some(pushed_at) = s.pushed_at {
        if s.retry {
            let pause = pushed_at + Duration::from_millis(RETRY_PAUSE_MS);
            s.end.unless_ended(tokio::time::sleep_until(pause)).await?;
        } else {
            s.end.unless_ended(s.subscription.changed()).await?.ok_or(Ended::Closed)?;
            let interval = match (s.delta, s.variant) {
                (Some(_), Variant::Guest) => GUEST_DELTA_INTERVAL_MIN_MS,
                _ => PUSH_INTERVAL_MIN_MS,
            };
            s.end.unless_ended(tokio::time::sleep_until(pushed_at + Duration::from_millis(interval))).await?;
        }
    }
    // Whatever arrived meanwhile is covered by the render below.
    s.subscription.mark_seen();
    let rendered = s.end.unless_ended(s.shared.lists.get(s.shared.projection.as_ref(), s.event, s.variant)).await?;
    s.pushed_at = Some(Instant::now());
    Ok(rendered)
}

/// A whole-list stream: the list, unless it is the one pushed last.
fn queue_whole(s: &mut LiveStream, rendered: Rendered) {
    // A late or repeated wake-up that changed nothing is not pushed again.
    if !s.retry && s.pushed_etag.as_ref() == Some(&rendered.etag) {
        return;
    }
    match std::str::from_utf8(&rendered.body) {
        Ok(json) => {
            s.retry = false;
            s.queue.push_back(Event::default().data(json));
            s.pushed_etag = Some(rendered.etag);
        }
        Err(_) => {
            s.retry = true;
            s.queue.push_back(Event::default().comment("unavailable"));
        }
    }
}

/// A delta stream: whatever brings it from the version it has to the latest.
fn queue_catch_up(s: &mut LiveStream, rendered: &Rendered, seen: Option<u64>) {
    let caught_up = s.subscription.versions.of(s.variant).lock().catch_up(rendered, seen);
    match caught_up {
        Ok((catch_up, seq)) => {
            s.retry = false;
            s.delta = Some(Some(seq));
            match catch_up {
                CatchUp::Nothing => {}
                CatchUp::Delta(delta) => s.queue.push_back(Event::default().event("delta").data(delta)),
                CatchUp::Whole(list) => s.queue.push_back(Event::default().event("list").data(list)),
            }
        }
        Err(error) => {
            tracing::error!(%error, "cannot render a list version");
            s.retry = true;
            s.queue.push_back(Event::default().comment("unavailable"));
        }
    }
}
