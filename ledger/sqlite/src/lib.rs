//! The embedded store: the ledger, the events, the projection and the aggregator cursor in
//! one SQLite file (WAL mode), implementing every port of `ledger::ports`.
//!
//! Writes go through one writer thread that group-commits (see [`writer`]); an acknowledged
//! write is committed before its reply. Reads use a small pool of read-only connections on
//! the blocking pool, except the two hot ones: the per-question counters and the events are
//! mirrored in memory. The mirror is exact, not a cache that can go stale: this process is
//! the projection's only writer, and the writer thread updates the mirror from the rows it
//! just committed, before anyone is told the commit happened.

mod event_states;
mod feed;
mod ports;
mod rows;
mod schema;
mod settings;
mod shared;
mod sweep;
mod writer;

use std::path::Path;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use ledger::ports::{StoreError, StoreResult};
use ledger::Retention;
use parking_lot::{Mutex, RwLock};
use rusqlite::{Connection, OpenFlags};
use rustc_hash::FxHashMap;
use tokio::sync::{oneshot, Notify};

pub use crate::schema::SCHEMA_VERSION;
use crate::settings::{check_cursor, settle_retention};
use crate::shared::{load_mirror, StoreState, RECENT_RECORDS_MAX};
use crate::sweep::SweepPosition;
use crate::writer::Command;

/// How many commands may wait for the writer before callers wait to enqueue (backpressure).
const WRITER_QUEUE_COMMANDS_MAX: usize = 65_536;
/// How long a connection waits on a lock held by another connection before giving up.
const BUSY_TIMEOUT_MS: u64 = 5_000;
/// How long the writer sleeps between tries while a checkpoint holds the write lock.
/// SQLite's own busy handler sleeps 1, 2, 5, 10, 15, ... ms between tries, which turned each
/// checkpoint of a few milliseconds into a write stall of ~20 ms (measured).
const WRITER_BUSY_RETRY_US: u64 = 100;
const WAL_BYTES_KEPT_MAX: i64 = 64 << 20;
/// Page cache per connection, in KiB (SQLite's negative `cache_size` unit). Memory-mapping
/// the file instead measured no faster and counted the mapped file in the resident size.
const PAGE_CACHE_KIB: i64 = 2 * 1024;
/// The writer's page cache, larger than a reader's: a fold batch of random voters dirties
/// thousands of `voters` pages, and with 2 MiB they were spilled to the WAL mid-transaction
/// and read back (aggregator catch-up over 1M records: 61,000 -> 82,000 records/s, measured
/// in `bench/ledger.sh`; 64 MiB bought nothing more and cost its size in resident memory).
const WRITER_PAGE_CACHE_KIB: i64 = 16 * 1024;

/// When an acknowledged write reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync on every commit: survives power loss. The default.
    Full,
    /// WAL without fsync on commit: survives a crash of this process (SIGKILL), not of the
    /// machine. Much faster on slow disks.
    Normal,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub durability: Durability,
    /// How long events are kept. A new file is created with this (or the default); an
    /// existing file keeps the retention it was created with, and opening it with another
    /// one is refused (change it with [`SqliteStore::set_retention`]). `None`: whatever the
    /// file says.
    pub retention: Option<Retention>,
}

impl Default for Options {
    fn default() -> Self {
        Self { durability: Durability::Full, retention: None }
    }
}

pub struct SqliteStore {
    writer: Mutex<Option<SyncSender<Command>>>,
    writer_thread: Mutex<Option<JoinHandle<()>>>,
    checkpointer: Mutex<Option<Checkpointer>>,
    shared: Arc<StoreState>,
}

/// Most idle read-only connections kept for reuse; a burst of reads opens more, and closes
/// them when done.
const READERS_IDLE_MAX: usize = 8;
/// An idle read-only connection unused for this long is closed (its page cache with it).
const READER_IDLE_SECONDS_MAX: u64 = 60;

pub(crate) fn open_error(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("cannot open {}: {e}", path.display()))
}

fn configure(conn: &Connection, durability: Durability) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_millis(BUSY_TIMEOUT_MS))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(
        None,
        "synchronous",
        match durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        },
    )?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "cache_size", -PAGE_CACHE_KIB)?;
    // After a checkpoint resets the WAL, truncate it back to this size instead of keeping
    // the largest it ever grew to.
    conn.pragma_update(None, "journal_size_limit", WAL_BYTES_KEPT_MAX)?;
    Ok(())
}

/// The writer's busy handler: retry every [`WRITER_BUSY_RETRY_US`] until [`BUSY_TIMEOUT_MS`].
fn writer_busy(tries: i32) -> bool {
    if u64::try_from(tries).unwrap_or(u64::MAX).saturating_mul(WRITER_BUSY_RETRY_US) >= BUSY_TIMEOUT_MS * 1_000 {
        return false;
    }
    std::thread::sleep(std::time::Duration::from_micros(WRITER_BUSY_RETRY_US));
    true
}

pub(crate) fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(std::time::Duration::from_millis(BUSY_TIMEOUT_MS))?;
    conn.pragma_update(None, "cache_size", -PAGE_CACHE_KIB)?;
    Ok(conn)
}

/// How often the checkpointer folds the WAL back into the database file.
const CHECKPOINT_INTERVAL_MS: u64 = 500;

struct Checkpointer {
    stop: SyncSender<()>,
    thread: JoinHandle<()>,
}

fn spawn_checkpointer(path: &Path, durability: Durability, shared: Arc<StoreState>) -> StoreResult<Checkpointer> {
    let conn = Connection::open(path).map_err(|e| open_error(path, e))?;
    configure(&conn, durability).map_err(|e| open_error(path, e))?;
    let (stop, stopped) = sync_channel::<()>(1);
    let thread = std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(std::time::Duration::from_millis(CHECKPOINT_INTERVAL_MS))
            {
                // RESTART also waits (briefly: reads here are short) until no reader still
                // uses the WAL, so the next write starts it over. A checkpoint that only copies
                // (PASSIVE) let the WAL and its shared-memory index grow under steady load. A
                // PASSIVE one before each RESTART (so RESTART holds the write lock only for
                // what came meanwhile) halved the vote p99 again but cost ~6% of votes/s.
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(())) {
                    tracing::warn!(error = %e, "WAL checkpoint failed");
                }
                shared.close_idle_readers(
                    std::time::Instant::now(),
                    std::time::Duration::from_secs(READER_IDLE_SECONDS_MAX),
                );
            }
        })
        .map_err(|e| open_error(path, e))?;
    Ok(Checkpointer { stop, thread })
}

impl SqliteStore {
    /// Opens (creating and migrating if needed) the store at `path`.
    pub fn open(path: impl AsRef<Path>, options: Options) -> StoreResult<Arc<Self>> {
        let path = path.as_ref().to_path_buf();
        let mut conn = Connection::open(&path).map_err(|e| open_error(&path, e))?;
        configure(&conn, options.durability).map_err(|e| open_error(&path, e))?;
        conn.busy_handler(Some(writer_busy)).map_err(|e| open_error(&path, e))?;
        conn.pragma_update(None, "cache_size", -WRITER_PAGE_CACHE_KIB).map_err(|e| open_error(&path, e))?;
        schema::migrate(&mut conn).map_err(|e| open_error(&path, e))?;
        let retention = settle_retention(&conn, &path, options.retention)?;
        check_cursor(&conn, &path)?;
        let shared = Arc::new(StoreState {
            counters: RwLock::new(load_mirror(&path)?),
            events: RwLock::new(FxHashMap::default()),
            appended: Arc::new(Notify::new()),
            recent: Mutex::new(std::collections::VecDeque::with_capacity(RECENT_RECORDS_MAX)),
            retention_days: std::sync::atomic::AtomicU64::new(retention.days()),
            swept_before: std::sync::atomic::AtomicU64::new(0),
            failing_commits: Mutex::new(None),
            failure: tokio::sync::watch::channel(None).0,
            readers: Mutex::new(std::collections::VecDeque::new()),
            path: path.clone(),
        });
        // Checkpoints run on their own thread and connection, so the writer never stalls
        // copying the WAL into the database file in the middle of a group.
        conn.pragma_update(None, "wal_autocheckpoint", 0).map_err(|e| open_error(&path, e))?;
        let checkpointer = spawn_checkpointer(&path, options.durability, shared.clone())?;
        let (tx, rx) = sync_channel(WRITER_QUEUE_COMMANDS_MAX);
        let thread_shared = shared.clone();
        let handle = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer::run(conn, rx, thread_shared))
            .map_err(|e| open_error(&path, e))?;
        Ok(Arc::new(Self {
            writer: Mutex::new(Some(tx)),
            writer_thread: Mutex::new(Some(handle)),
            checkpointer: Mutex::new(Some(checkpointer)),
            shared,
        }))
    }

    /// Signalled after every commit that appended records (the embedded aggregator waits on it).
    pub fn appended(&self) -> Arc<Notify> {
        self.shared.appended.clone()
    }

    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Stops taking writes, lets the writer finish what is queued, checkpoints the WAL
    /// into the main file and joins the writer thread. Later writes get `Unavailable`.
    pub async fn close(&self) {
        let checkpointer = self.checkpointer.lock().take();
        if let Some(c) = checkpointer {
            let _ = c.stop.send(());
            let _ = tokio::task::spawn_blocking(move || c.thread.join()).await;
        }
        drop(self.writer.lock().take());
        let handle = self.writer_thread.lock().take();
        if let Some(h) = handle {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
        self.shared.readers.lock().clear();
    }

    /// Deletes everything that expired before `now_unix`; returns how many rows went. The
    /// sweep goes through each table in steps of at most [`sweep::SWEEP_CHUNK_ROWS`] rows,
    /// each its own command to the writer, so writes queued meanwhile wait for one step at
    /// most, never for the whole sweep.
    pub async fn sweep_expired(&self, now_unix: u64) -> StoreResult<u64> {
        // From now on, folds store nothing for the events this sweep removes.
        self.shared.swept_before.fetch_max(now_unix, std::sync::atomic::Ordering::AcqRel);
        let mut from = SweepPosition::START;
        let mut removed = 0;
        loop {
            let step = self.send(|reply| Command::SweepChunk { now_unix, from, reply }).await?;
            removed += step.removed;
            match step.next {
                Some(next) => from = next,
                None => return Ok(removed),
            }
        }
    }

    /// The store's retention (stored in the file).
    pub fn retention(&self) -> Retention {
        self.shared.retention()
    }

    /// Changes the store's retention and restamps the expiry of every stored row with it.
    /// An operator's command: run it with `serve` stopped (another process holding the
    /// file keeps stamping with the retention it read at start).
    pub async fn set_retention(&self, retention: Retention) -> StoreResult<()> {
        self.send(|reply| Command::SetRetention { retention, reply }).await
    }

    /// Why the writer thread died, if it has. A store whose writer died refuses every write.
    pub fn writer_failure(&self) -> Option<String> {
        self.shared.failure.borrow().clone()
    }

    /// While transactions keep failing (a full disk, an I/O error): for how long, and the
    /// latest error. `None` once one commits.
    pub fn commits_failing(&self) -> Option<(std::time::Duration, String)> {
        self.shared.failing_commits.lock().as_ref().map(|(since, e)| (since.elapsed(), e.clone()))
    }

    /// Resolves (with the reason) when the writer thread dies; never, while it is healthy.
    pub async fn writer_died(&self) -> String {
        let mut rx = self.shared.failure.subscribe();
        let why = match rx.wait_for(Option::is_some).await {
            Ok(why) => why.clone().unwrap_or_default(),
            // The store itself is gone.
            Err(_) => "the store was dropped".into(),
        };
        why
    }

    /// Fault injection for tests: makes the writer thread panic, as a bug in it would.
    #[doc(hidden)]
    pub fn inject_writer_panic(&self) {
        if let Some(sender) = self.writer.lock().clone() {
            let _ = sender.try_send(Command::Panic);
        }
    }

    /// The highest sequence number in the ledger's rows (0 when empty). The aggregator has
    /// folded everything once its cursor is at least this.
    /// Up to `limit` records (of one event, or all) with a sequence number above `after` and,
    /// if `until` is set, not above it, in sequence order, each with its number. Reading
    /// several ranges side by side is how `replay` reads a large ledger on more than one
    /// thread (readers do not block each other under WAL).
    pub async fn scan_seq_range(
        &self,
        event: Option<ledger::EventId>,
        after: u64,
        until: Option<u64>,
        limit: usize,
    ) -> StoreResult<Vec<(u64, ledger::Record)>> {
        self.read(move |c| {
            // Two statements, so that one event's scan walks the `(event, seq)` index.
            let of_records = match event {
                Some(_) => "event = ?1",
                None => "?1 IS NULL",
            };
            let sql = format!(
                "SELECT {} FROM ledger WHERE {of_records} AND seq > ?2 AND seq <= ?3 ORDER BY seq LIMIT ?4",
                rows::LEDGER_COLUMNS
            );
            let mut stmt = c.prepare_cached(&sql).map_err(unavailable)?;
            let until = until.map_or(i64::MAX, |u| i64::try_from(u).unwrap_or(i64::MAX));
            let mut rows = stmt
                .query(rusqlite::params![event.map(|e| e.to_bytes()), after as i64, until, limit as i64])
                .map_err(unavailable)?;
            let mut out = Vec::with_capacity(limit);
            while let Some(row) = rows.next().map_err(unavailable)? {
                out.push(rows::record_from_row(row)?);
            }
            Ok(out)
        })
        .await
    }

    pub async fn last_seq(&self) -> StoreResult<u64> {
        self.read_number("SELECT COALESCE(MAX(seq), 0) FROM ledger").await
    }

    /// The highest sequence number ever handed out: never decreases, even when the newest
    /// rows were swept, and every new record gets a larger one.
    pub async fn high_water(&self) -> StoreResult<u64> {
        self.read(writer::high_water).await
    }

    /// How many rows the aggregator set aside that no operator has acknowledged yet.
    pub async fn unacknowledged_quarantined(&self) -> StoreResult<u64> {
        self.read_number("SELECT count(*) FROM quarantine WHERE acknowledged = 0").await
    }

    /// The one number a query answers (negative ones read as 0), on a reader connection.
    async fn read_number(&self, sql: &'static str) -> StoreResult<u64> {
        self.read(move |c| c.query_row(sql, [], |r| r.get::<_, i64>(0)).map(|n| n.max(0) as u64).map_err(unavailable))
            .await
    }

    async fn send<T>(&self, make: impl FnOnce(writer::Reply<T>) -> Command) -> StoreResult<T> {
        if let Some(why) = self.writer_failure() {
            return Err(StoreError::Unavailable(format!("the ledger writer died: {why}")));
        }
        let (reply, answer) = oneshot::channel();
        let sender = self.writer.lock().clone().ok_or_else(|| StoreError::Unavailable("store is closed".into()))?;
        let cmd = make(reply);
        // `try_send` first: the queue is almost never full, and this avoids a blocking hop.
        match sender.try_send(cmd) {
            Ok(()) => {}
            Err(std::sync::mpsc::TrySendError::Full(cmd)) => {
                tokio::task::spawn_blocking(move || sender.send(cmd))
                    .await
                    .map_err(|e| StoreError::Unavailable(e.to_string()))?
                    .map_err(|_| StoreError::Unavailable("store is closed".into()))?;
            }
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => {
                return Err(StoreError::Unavailable("store is closed".into()))
            }
        }
        answer.await.map_err(|_| StoreError::Unavailable("the writer stopped".into()))?
    }

    /// Runs `f` on a pooled read-only connection on the blocking pool.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let pooled = self.shared.readers.lock().pop_back().map(|(c, _)| c);
        let path = self.shared.path.clone();
        let (result, conn) = tokio::task::spawn_blocking(move || {
            let conn = match pooled {
                Some(c) => c,
                None => match open_reader(&path) {
                    Ok(c) => c,
                    Err(e) => return (Err(open_error(&path, e)), None),
                },
            };
            (f(&conn), Some(conn))
        })
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        if let Some(c) = conn {
            let mut readers = self.shared.readers.lock();
            if readers.len() < READERS_IDLE_MAX {
                readers.push_back((c, std::time::Instant::now()));
            }
        }
        result
    }
}

pub(crate) fn unavailable(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

#[cfg(test)]
mod tests {
    use ledger::{EventId, ProjectionChange, QuestionId, RecordBody, RecordId, VoterId};
    use ulid::Ulid;

    use super::*;
    use ledger::ports::LedgerStore;
    use ledger::Record;

    #[test]
    fn the_writer_gives_up_on_a_lock_after_the_busy_timeout() {
        assert!(writer_busy(0));
        let last_try = i32::try_from(BUSY_TIMEOUT_MS * 1_000 / WRITER_BUSY_RETRY_US).expect("fits");
        assert!(!writer_busy(last_try));
        assert!(!writer_busy(i32::MAX));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_reader_pool_keeps_a_few_connections_and_closes_idle_ones() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(dir.path().join("t.db"), Options::default()).expect("open");
        // A burst of concurrent reads opens many connections at once...
        let reads = (0..32).map(|_| {
            let store = store.clone();
            async move { store.count(None).await }
        });
        for n in futures_join_all(reads).await {
            assert_eq!(n.expect("count"), 0);
        }
        // ...but only a few stay pooled afterwards,
        let pooled = store.shared.readers.lock().len();
        assert!((1..=READERS_IDLE_MAX).contains(&pooled), "{pooled} pooled");
        // and those go once idle for long enough.
        let later = std::time::Instant::now() + std::time::Duration::from_secs(READER_IDLE_SECONDS_MAX);
        assert_eq!(store.shared.close_idle_readers(later, std::time::Duration::from_secs(READER_IDLE_SECONDS_MAX)), 0);
        store.close().await;
    }

    /// Runs the futures concurrently on the runtime and collects their outputs in order.
    async fn futures_join_all<F: std::future::Future + Send + 'static>(
        futures: impl Iterator<Item = F>,
    ) -> Vec<F::Output>
    where
        F::Output: Send + 'static,
    {
        let handles: Vec<_> = futures.map(tokio::spawn).collect();
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.expect("task"));
        }
        out
    }

    /// One vote for `question` by a new voter, as a change to commit.
    fn first_vote(
        event: EventId,
        question: QuestionId,
        voter: VoterId,
        expected: Option<RecordId>,
    ) -> ProjectionChange {
        use ledger::{QuestionChange, VoterChange, VoterState};
        ProjectionChange {
            questions: vec![QuestionChange {
                question,
                event,
                asked: None,
                votes_delta: 1,
                answered: None,
                hidden: None,
                approved: None,
                spotlight: None,
                reply: None,
            }],
            voters: vec![VoterChange {
                question,
                voter,
                expected,
                new: VoterState { up: true, rec: RecordId(Ulid::new()) },
                votes_delta: 1,
            }],
            events: Vec::new(),
        }
    }

    /// A group runs without savepoints first; when one of its commands conflicts, the group
    /// is rolled back and run again so that only that command is undone. Every command of
    /// the group here queues while another connection holds the write lock, so the writer
    /// takes them as one group.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_conflicting_command_is_undone_alone_and_the_rest_of_its_group_commits() {
        use ledger::ports::{Commit, ProjectionStore};
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("t.db");
        let store = SqliteStore::open(&path, Options::default()).expect("open");
        let event = EventId(Ulid::new());
        let (q1, q2, q3) = (QuestionId(Ulid::new()), QuestionId(Ulid::new()), QuestionId(Ulid::new()));
        let before = first_vote(event, q1, VoterId(Ulid::new()), None);
        // Two voters: the first would be written before the second's condition fails.
        let mut conflicting = first_vote(event, q2, VoterId(Ulid::new()), None);
        let stale = first_vote(event, q2, VoterId(Ulid::new()), Some(RecordId(Ulid::new())));
        conflicting.voters.extend(stale.voters);
        let after = first_vote(event, q3, VoterId(Ulid::new()), None);
        let vote = Record {
            id: RecordId(Ulid::new()),
            event,
            question: q1,
            region: "test".into(),
            body: RecordBody::Voted { voter: VoterId(Ulid::new()), up: true },
        };

        let blocker = Connection::open(&path).expect("second connection");
        blocker.execute_batch("BEGIN IMMEDIATE").expect("take the write lock");
        let commit = |change: ProjectionChange| {
            let store = store.clone();
            tokio::spawn(async move { store.commit(&change, None).await })
        };
        let appended = {
            let store = store.clone();
            tokio::spawn(async move { store.append(&[vote]).await })
        };
        let (before, conflicting, after) = (commit(before), commit(conflicting), commit(after));
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        blocker.execute_batch("COMMIT").expect("release the write lock");

        appended.await.expect("task").expect("the append commits");
        assert_eq!(before.await.expect("task").expect("commit"), Commit::Applied);
        // FAILS IF a conflict is reported as applied.
        assert_eq!(conflicting.await.expect("task").expect("commit"), Commit::Conflict);
        assert_eq!(after.await.expect("task").expect("commit"), Commit::Applied);
        let stored: Vec<QuestionId> =
            store.questions(Some(event)).await.expect("questions").into_iter().map(|q| q.standing.id).collect();
        // FAILS IF the conflicting command's first voter and question stay (nothing undone),
        // or if the rest of the group was undone with it.
        assert_eq!(stored.len(), 2, "{stored:?}");
        assert!(stored.contains(&q1) && stored.contains(&q3) && !stored.contains(&q2), "{stored:?}");
        let voters: i64 = blocker.query_row("SELECT count(*) FROM voters", [], |r| r.get(0)).expect("count voters");
        assert_eq!(voters, 2, "only the two applied commands' voters are stored");
        assert_eq!(store.count(None).await.expect("count"), 1);
        store.close().await;
    }

    #[tokio::test]
    async fn a_write_waits_out_another_connections_lock_and_then_commits() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("t.db");
        let store = SqliteStore::open(&path, Options::default()).expect("open");
        let other = Connection::open(&path).expect("second connection");
        other.execute_batch("BEGIN IMMEDIATE").expect("take the write lock");
        let release = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            other.execute_batch("COMMIT").expect("release the write lock");
        });
        let vote = Record {
            id: RecordId(Ulid(10)),
            event: EventId(Ulid(1)),
            question: QuestionId(Ulid(2)),
            region: "test".into(),
            body: RecordBody::Voted { voter: VoterId(Ulid(3)), up: true },
        };
        let started = std::time::Instant::now();
        store.append(&[vote]).await.expect("committed once the lock was released");
        assert!(started.elapsed() >= std::time::Duration::from_millis(40), "the append did not wait for the lock");
        release.join().expect("lock holder");
        assert_eq!(store.count(None).await.expect("count"), 1);
        store.close().await;
    }
}
