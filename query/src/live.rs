//! Live lists over Server-Sent Events (embedded mode only). A stream sends the current list
//! on connect and again whenever the aggregator announces a change of its event. Bursts are
//! coalesced: at most one push per [`PUSH_INTERVAL_MIN_MS`], and since each push renders the
//! list as it is then, the last push of a burst always carries the latest state.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use ledger::EventId;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::broadcast::Receiver;
use tokio::time::Instant;

use crate::error::ApiError;
use crate::handlers::{existing_event, hosted_event, AppState, PathParams};
use crate::lists::Variant;
use crate::Shared;

/// The shortest time between two pushes on one stream.
pub const PUSH_INTERVAL_MIN_MS: u64 = 100;
/// How often an idle stream sends a comment, so proxies keep it open.
pub const KEEP_ALIVE_S: u64 = 15;
/// How long to wait before trying again when the store failed to render a push.
const RETRY_PAUSE_MS: u64 = 1_000;

type LiveResponse = Response;

/// `GET /api/live/{eid}`: the guest list, live.
pub async fn guest(
    State(shared): AppState,
    PathParams(eid): PathParams<String>,
) -> Result<LiveResponse, ApiError> {
    let row = existing_event(&shared, &eid).await?;
    open(shared, row.id, Variant::Guest)
}

/// `GET /api/live/{eid}/{secret}`: the host list, live.
pub async fn host(
    State(shared): AppState,
    PathParams((eid, secret)): PathParams<(String, String)>,
) -> Result<LiveResponse, ApiError> {
    let row = hosted_event(&shared, &eid, &secret).await?;
    open(shared, row.id, Variant::Host)
}

struct LiveStream {
    shared: Arc<Shared>,
    event: EventId,
    variant: Variant,
    changes: Receiver<EventId>,
    /// When the last push was sent (`None` before the first).
    pushed_at: Option<Instant>,
    /// The last push failed: push again without waiting for a change.
    retry: bool,
}

fn open(shared: Arc<Shared>, event: EventId, variant: Variant) -> Result<LiveResponse, ApiError> {
    // Subscribe before the first render, so a change in between is not missed.
    let changes = shared
        .live
        .as_ref()
        .ok_or(ApiError::NotAvailable)?
        .subscribe();
    metrics::counter!("live_streams_opened_total").increment(1);
    let state = LiveStream {
        shared,
        event,
        variant,
        changes,
        pushed_at: None,
        retry: false,
    };
    let stream = futures::stream::unfold(state, next_push);
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(KEEP_ALIVE_S)))
        .into_response())
}

async fn next_push(mut s: LiveStream) -> Option<(Result<Event, Infallible>, LiveStream)> {
    if let Some(pushed_at) = s.pushed_at {
        if s.retry {
            tokio::time::sleep_until(pushed_at + Duration::from_millis(RETRY_PAUSE_MS)).await;
        } else {
            wait_for_change(&mut s.changes, s.event).await?;
            tokio::time::sleep_until(pushed_at + Duration::from_millis(PUSH_INTERVAL_MIN_MS)).await;
        }
        // Whatever arrived meanwhile is covered by the render below.
        while !matches!(
            s.changes.try_recv(),
            Err(TryRecvError::Empty | TryRecvError::Closed)
        ) {}
    }
    s.pushed_at = Some(Instant::now());
    let push = match s
        .shared
        .lists
        .get(s.shared.projection.as_ref(), s.event, s.variant)
        .await
    {
        Ok(rendered) => match std::str::from_utf8(&rendered.body) {
            Ok(json) => {
                s.retry = false;
                Event::default().data(json)
            }
            Err(_) => {
                s.retry = true;
                Event::default().comment("unavailable")
            }
        },
        // Already logged by the error conversion; the stream stays open and tries again.
        Err(error) => {
            let _ = ApiError::from(error);
            s.retry = true;
            Event::default().comment("unavailable")
        }
    };
    Some((Ok(push), s))
}

/// Waits until `event` changes (or announcements were lost, which may include it).
/// `None` when the hub is gone, which ends the stream.
async fn wait_for_change(changes: &mut Receiver<EventId>, event: EventId) -> Option<()> {
    loop {
        match changes.recv().await {
            Ok(changed) if changed == event => return Some(()),
            Ok(_) => continue,
            Err(RecvError::Lagged(_)) => return Some(()),
            Err(RecvError::Closed) => return None,
        }
    }
}
