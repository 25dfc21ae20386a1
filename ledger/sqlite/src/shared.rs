//! What the writer thread shares with the readers: the in-memory mirror of the projection's
//! counters and of the events (exact, since the writer updates it from the rows it just
//! committed), the latest appended records for the aggregator, the store's retention, the
//! watermark of the latest sweep, and the writer's health.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ledger::ports::{EventRow, StoreError, StoreResult};
use ledger::{EventId, QuestionId, QuestionStanding, Record, Retention};
use parking_lot::{Mutex, RwLock};
use rusqlite::Connection;
use rustc_hash::FxHashMap;
use tokio::sync::Notify;

use crate::rows::{blob16, corrupt, opt_blob16, stamp};
use crate::writer::Effect;
use crate::{open_error, open_reader};

/// How many of the latest appended records are kept in memory for the aggregator, which
/// then folds them without reading back what was just written.
pub(crate) const RECENT_RECORDS_MAX: usize = 16_384;

/// The store's state in memory, shared by the writer thread (which updates it from the rows
/// it commits) and every reader: the mirror, the latest appends, the retention, the reader
/// pool and the writer's health.
pub(crate) struct StoreState {
    pub(crate) counters: RwLock<Mirror>,
    pub(crate) events: RwLock<FxHashMap<EventId, EventRow>>,
    pub(crate) appended: Arc<Notify>,
    /// The latest records this process appended, in sequence order.
    pub(crate) recent: Mutex<std::collections::VecDeque<(u64, Record)>>,
    /// The store's retention in days (changes only through `set_retention`).
    pub(crate) retention_days: std::sync::atomic::AtomicU64,
    /// The `now` of the latest sweep (Unix seconds, 0 before the first): events that expired
    /// before it are gone, and a fold of their records that arrives later (read before the
    /// sweep, or still in [`StoreState::recent`]) stores nothing for them.
    pub(crate) swept_before: std::sync::atomic::AtomicU64,
    /// Idle read-only connections, least recently used first, with when each was returned.
    pub(crate) readers: Mutex<std::collections::VecDeque<(Connection, std::time::Instant)>>,
    /// While the latest transaction failed (disk full, I/O error): since when (the first
    /// failure in a row) and the latest error; `None` once one commits.
    pub(crate) failing_commits: Mutex<Option<(std::time::Instant, String)>>,
    /// Why the writer thread died, once it has (see [`writer::run`]).
    pub(crate) failure: tokio::sync::watch::Sender<Option<String>>,
    pub(crate) path: PathBuf,
}

#[derive(Default)]
pub(crate) struct Mirror {
    pub(crate) questions: FxHashMap<QuestionId, QuestionStanding>,
    pub(crate) by_event: FxHashMap<EventId, Vec<QuestionId>>,
}

impl Mirror {
    pub(crate) fn upsert(&mut self, c: QuestionStanding) {
        if self.questions.insert(c.id, c).is_none() {
            self.by_event.entry(c.event).or_default().push(c.id);
        }
    }

    fn remove(&mut self, question: QuestionId, event: EventId) {
        self.questions.remove(&question);
        if let Some(ids) = self.by_event.get_mut(&event) {
            ids.retain(|id| *id != question);
            if ids.is_empty() {
                self.by_event.remove(&event);
            }
        }
    }
}

impl StoreState {
    /// The records after `seq` from memory, if memory holds them without a gap (another
    /// process may append to the same file; then the ledger itself is read).
    pub(crate) fn recent_after(&self, seq: u64, limit: usize) -> Option<Vec<(u64, Record)>> {
        let recent = self.recent.lock();
        let first = recent.front()?.0;
        if first > seq + 1 {
            return None;
        }
        let start = usize::try_from(seq + 1 - first).ok()?;
        if recent.get(start)?.0 != seq + 1 {
            return None;
        }
        let mut out = Vec::with_capacity(limit.min(recent.len() - start));
        for (expected, (s, r)) in (seq + 1..).zip(recent.iter().skip(start).take(limit)) {
            if *s != expected {
                break;
            }
            out.push((*s, r.clone()));
        }
        Some(out)
    }

    pub(crate) fn retention(&self) -> Retention {
        // Only ever stored from a valid `Retention`.
        Retention::from_days(self.retention_days.load(std::sync::atomic::Ordering::Relaxed)).unwrap_or_default()
    }

    pub(crate) fn expire_of(&self, event: EventId) -> u64 {
        self.retention().expire_of(event)
    }

    /// Whether a sweep has removed (or is removing) `event`: its projection rows must not
    /// come back.
    pub(crate) fn swept(&self, event: EventId) -> bool {
        self.expire_of(event) < self.swept_before.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Closes the pooled read-only connections idle since before `now - idle_max`; returns
    /// how many are left. The checkpointer calls it on every tick, so a pool grown by a
    /// burst shrinks back once the burst is over.
    pub(crate) fn close_idle_readers(&self, now: std::time::Instant, idle_max: std::time::Duration) -> usize {
        let mut readers = self.readers.lock();
        // The least recently used are at the front.
        while readers.front().is_some_and(|(_, since)| now.saturating_duration_since(*since) >= idle_max) {
            readers.pop_front();
        }
        readers.len()
    }

    /// Records the outcome of a transaction for [`SqliteStore::commits_failing`].
    pub(crate) fn commit_outcome(&self, error: Option<&rusqlite::Error>) {
        let mut failing = self.failing_commits.lock();
        match error {
            None => *failing = None,
            Some(e) => failing.get_or_insert_with(|| (std::time::Instant::now(), String::new())).1 = e.to_string(),
        }
    }

    pub(crate) fn writer_failed(&self, why: String) {
        self.failure.send_replace(Some(why));
    }

    pub(crate) fn publish(&self, effect: Effect<'_>) {
        match effect {
            Effect::None => {}
            Effect::Event(row) => {
                self.events.write().insert(row.id, row.clone());
            }
            Effect::Counters(counters) => {
                let mut m = self.counters.write();
                for c in counters {
                    m.upsert(*c);
                }
            }
            Effect::Appended(rows) => {
                let mut recent = self.recent.lock();
                for row in rows {
                    if recent.len() == RECENT_RECORDS_MAX {
                        recent.pop_front();
                    }
                    recent.push_back(row.clone());
                }
            }
            Effect::Swept { questions, events } => {
                // The swept records left the ledger: the feed must not serve them from memory.
                self.recent.lock().clear();
                if !questions.is_empty() {
                    let mut m = self.counters.write();
                    for &(q, e) in questions {
                        m.remove(q, e);
                    }
                }
                if !events.is_empty() {
                    let mut cached = self.events.write();
                    for e in events {
                        cached.remove(e);
                    }
                }
            }
            Effect::RetentionSet(r) => {
                self.retention_days.store(r.days(), std::sync::atomic::Ordering::Relaxed);
                self.events.write().clear();
            }
            Effect::Reload => {
                self.recent.lock().clear();
                // Rare (replay --repair, expiry): rebuild from disk rather than patch.
                match load_mirror(&self.path) {
                    Ok(m) => *self.counters.write() = m,
                    Err(e) => tracing::error!(error = %e, "cannot reload the projection mirror"),
                }
                self.events.write().clear();
            }
        }
    }
}

pub(crate) fn load_mirror(path: &Path) -> StoreResult<Mirror> {
    let conn = open_reader(path).map_err(|e| open_error(path, e))?;
    let mut stmt = conn
        .prepare(&format!("SELECT {STANDING_COLUMNS} FROM questions"))
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    let mut rows = stmt.query([]).map_err(|e| StoreError::Unavailable(e.to_string()))?;
    let mut mirror = Mirror::default();
    while let Some(row) = rows.next().map_err(|e| StoreError::Unavailable(e.to_string()))? {
        mirror.upsert(standing_from_row(row, 0)?);
    }
    Ok(mirror)
}

/// The columns [`standing_from_row`] reads, in its order.
pub(crate) const STANDING_COLUMNS: &str =
    "id, eid, votes, answered, answered_at, hidden, hidden_at, approved, approved_at, spotlight, spotlight_at";

/// Reads [`STANDING_COLUMNS`] starting at column `at`.
pub(crate) fn standing_from_row(row: &rusqlite::Row<'_>, at: usize) -> StoreResult<QuestionStanding> {
    Ok(QuestionStanding {
        id: QuestionId::from_bytes(blob16(row, at)?),
        event: EventId::from_bytes(blob16(row, at + 1)?),
        votes: row.get::<_, i64>(at + 2).map_err(corrupt)?.max(0) as u64,
        answered: stamp(row.get(at + 3).map_err(corrupt)?, opt_blob16(row, at + 4)?),
        hidden: stamp(row.get(at + 5).map_err(corrupt)?, opt_blob16(row, at + 6)?),
        approved: stamp(row.get(at + 7).map_err(corrupt)?, opt_blob16(row, at + 8)?),
        spotlight: stamp(row.get(at + 9).map_err(corrupt)?, opt_blob16(row, at + 10)?),
    })
}
