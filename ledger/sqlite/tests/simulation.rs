//! A deterministic, seeded simulation of the embedded store, in the spirit of TigerBeetle's
//! VOPR: a seed drives a random workload against a real SQLite file under a simulated clock,
//! with crashes and restarts, and after every step the simulation checks invariants that
//! must hold whatever the store's own threads did meanwhile.
//!
//! A seed's workload (a pure function of the seed): events created, questions asked, votes
//! and retractions by a handful of voters, answered/hidden toggles, imports (several records
//! in one append, with duplicates of earlier records that the store must skip), expiry
//! sweeps at the simulated `now`, aggregator steps ([`Tailer::step`], driven by hand), and
//! bursts of these run concurrently so that one writer group holds several commands. The
//! clock (Unix ms, from 2026-01-01) moves by small steps, sometimes by hours or days past
//! the store's retention (1 to 3 days, chosen by the seed), and sometimes to exactly an
//! event's expiry second, where an event is dead but must not be swept yet. Every id is
//! minted from that clock, never from the wall clock. Faults, at random points:
//! - a kill: the store is dropped without `close()` while a burst is in flight (the burst's
//!   tasks are cancelled; what the writer had committed stays, as SQLite's WAL keeps it);
//! - a writer panic (`inject_writer_panic`) while a burst is in flight: the group holding it
//!   never commits and every later write fails;
//! - a graceful restart (`close()`).
//!
//! After each fault the same file is reopened and a new tailer starts from the stored cursor.
//!
//! Invariants. After every step:
//! 1. durable: every acknowledged record (its append returned `Ok`) is in the ledger, unless
//!    a sweep was started at a `now` past its event's expiry;
//! 2. swept: no record of an event that a completed sweep found expired is in the ledger;
//! 3. sequence: the high-water mark never decreases (across restarts too), no row's number
//!    and not the cursor is above it, and every row's number is above the high-water mark
//!    seen before the record was first sent (numbers are never handed out again);
//! 4. nothing invented: every ledger row is a record the simulation sent, unchanged; a paged
//!    scan, an export of one event and the counts agree with the rows.
//!
//! At full checks (random steps, after the last step and after a final restart), once the
//! tailer has folded everything (`Step::Idle`):
//! 5. folded: the cursor is the last row's number or past it, and no row was quarantined;
//! 6. projection = fold: for every event no sweep may have touched, the stored questions
//!    (text, votes, answered, hidden), the in-memory mirror the hot reads use, the texts
//!    served and the voter states equal the pure fold (`ledger::Projection`) of the ledger's
//!    records; and a completed sweep left nothing of the events it found expired (questions,
//!    mirror, events).
//!
//! How the store's threads group commands, when the checkpointer runs and which of the
//! writes in flight at a crash committed is not under the seed's control. The checks do not
//! depend on it: the workload never looks at an outcome, and an unacknowledged record may be
//! present or absent. A failing seed prints itself, its step and the last operations, and
//! replays the same workload.
//!
//! Running it:
//! - `cargo test -p ledger-sqlite --test simulation -- --nocapture`: the default seeds, on
//!   two threads; the summary line (seeds, steps, faults, invariants) prints either way.
//! - `SIM_SEED=<n> cargo test -p ledger-sqlite --test simulation -- --nocapture`: one seed.
//! - A longer run is one command: `SIM_SEEDS=5000 cargo test -p ledger-sqlite --test simulation`
//!   (`SIM_FIRST_SEED=<n>` starts elsewhere, `SIM_STEPS=<n>` sets the steps per seed,
//!   `SIM_THREADS=<n>` the threads, `SIM_VERBOSE=1` prints each seed as it ends).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aggregator::tail::{Step, TailState, Tailer};
use ledger::ports::{EventRow, EventStore, LedgerFeed, LedgerStore, ProjectionReader, ProjectionStore, ScanToken};
use ledger::{Asked, EventId, Projection, QuestionId, QuestionState, Record, RecordBody, RecordId, Retention, VoterId};
use ledger_sqlite::{Durability, Options, SqliteStore};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tokio::sync::{broadcast, watch, Notify};
use tokio::task::JoinSet;
use ulid::Ulid;

/// Seeds a plain `cargo test` runs, and the steps of each.
const SEEDS_DEFAULT: u64 = 256;
const STEPS_DEFAULT: usize = 40;
/// Seeds run on this many threads at most (each seed is one runtime, one store, one file).
const THREADS_DEFAULT_MAX: usize = 2;
/// 2026-01-01T00:00:00Z: where every seed's clock starts.
const START_UNIX_MS: u64 = 1_767_225_600_000;
const MS_PER_HOUR: u64 = 3_600_000;
const MS_PER_DAY: u64 = 86_400_000;
const VOTERS: usize = 5;
/// How many of the latest operations a failure report shows.
const TRACE_KEPT: usize = 30;
/// More tailer steps than this without reaching `Idle` is a failure (a cursor that loops).
const TAIL_STEPS_MAX: usize = 1_000;
/// How long a dropped store's threads may take to finish what they had queued.
const STOP_WAIT_MAX: Duration = Duration::from_secs(10);

const INVARIANTS: &[&str] = &[
    "durable (acknowledged => in the ledger or legitimately swept)",
    "swept (a completed sweep left no expired record)",
    "sequence (high-water mark monotone, never reused, cursor not past it)",
    "nothing invented (every row was sent, unchanged; count = scan)",
    "folded (cursor reaches the last row, nothing quarantined)",
    "projection = pure fold (questions, mirror, voter states; swept events gone)",
];

#[test]
fn seeded_simulation_keeps_every_acknowledged_record() {
    let plan = RunPlan::from_env();
    let started = Instant::now();
    // Seeds are independent: workers take the next one until all ran or one failed.
    let next = AtomicU64::new(plan.seeds.start);
    let stop = AtomicBool::new(false);
    let totals = Mutex::new(Stats::default());
    let failures = Mutex::new(Vec::<Failure>::new());
    std::thread::scope(|scope| {
        for _ in 0..plan.threads {
            scope.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= plan.seeds.end || stop.load(Ordering::Relaxed) {
                    return;
                }
                let outcome = std::panic::catch_unwind(|| run_seed(seed, plan.steps));
                let result = outcome.unwrap_or_else(|panic| {
                    Err(Failure {
                        seed,
                        step: None,
                        invariant: "no panic",
                        detail: panic_message(&panic),
                        trace: Vec::new(),
                    })
                });
                if plan.verbose {
                    let verdict = if result.is_ok() { "ok" } else { "FAILED" };
                    let _ = writeln!(
                        std::io::stderr(),
                        "seed {seed}: {verdict} at {:.1} s",
                        started.elapsed().as_secs_f64()
                    );
                }
                match result {
                    Ok(stats) => totals.lock().expect("totals").add(&stats),
                    Err(failure) => {
                        stop.store(true, Ordering::Relaxed);
                        failures.lock().expect("failures").push(failure);
                    }
                }
            });
        }
    });
    let summary = totals.into_inner().expect("totals").summary(&plan, started.elapsed());
    let mut failures = failures.into_inner().expect("failures");
    // The lowest failing seed, whichever worker found it first.
    failures.sort_by_key(|f| f.seed);
    if let Some(failure) = failures.first() {
        panic!("{failure}\n(the seeds run until then: {summary})");
    }
    // Straight to the process's stderr: the test harness captures `eprintln!` of passing
    // tests, and the seed count and invariants belong in every CI log.
    let _ = writeln!(std::io::stderr(), "{summary}");
}

struct RunPlan {
    seeds: std::ops::Range<u64>,
    steps: usize,
    threads: usize,
    /// Prints each seed as it finishes (`SIM_VERBOSE=1`).
    verbose: bool,
}

impl RunPlan {
    fn from_env() -> Self {
        let number = |name: &str| -> Option<u64> {
            let text = std::env::var(name).ok()?;
            Some(text.trim().parse().unwrap_or_else(|_| panic!("{name}={text:?} is not a number")))
        };
        let steps = number("SIM_STEPS").map_or(STEPS_DEFAULT, |n| n as usize);
        let seeds = match number("SIM_SEED") {
            Some(one) => one..one + 1,
            None => {
                let first = number("SIM_FIRST_SEED").unwrap_or(0);
                first..first + number("SIM_SEEDS").unwrap_or(SEEDS_DEFAULT)
            }
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = number("SIM_THREADS").map_or(cores.min(THREADS_DEFAULT_MAX), |n| (n as usize).max(1));
        let verbose = number("SIM_VERBOSE").is_some_and(|n| n != 0);
        Self { seeds, steps, threads, verbose }
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// What a failed seed reports: enough to replay it and to see what led up to it.
struct Failure {
    seed: u64,
    step: Option<usize>,
    invariant: &'static str,
    detail: String,
    trace: Vec<String>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = self.step.map_or_else(|| "setup".to_owned(), |s| format!("step {s}"));
        writeln!(f, "simulation seed {} failed at {at}: {}: {}", self.seed, self.invariant, self.detail)?;
        writeln!(f, "replay: SIM_SEED={} cargo test -p ledger-sqlite --test simulation -- --nocapture", self.seed)?;
        if !self.trace.is_empty() {
            writeln!(f, "last operations:")?;
            for line in &self.trace {
                writeln!(f, "  {line}")?;
            }
        }
        Ok(())
    }
}

/// Declares the run's counters once: the struct, and `add`, which sums two runs' counters
/// field by field.
macro_rules! counters {
    ($($field:ident),* $(,)?) => {
        #[derive(Debug, Default, Clone)]
        struct Stats {
            $($field: u64,)*
        }

        impl Stats {
            fn add(&mut self, o: &Stats) {
                $(self.$field += o.$field;)*
            }
        }
    };
}

counters!(
    seeds,
    steps,
    records_sent,
    records_acknowledged,
    appends,
    bursts,
    kills,
    writer_panics,
    restarts,
    sweeps_completed,
    rows_swept,
    full_checks,
    tail_batches,
);

impl Stats {
    fn summary(&self, plan: &RunPlan, elapsed: Duration) -> String {
        format!(
            "simulation: {} seeds ({}..{}), {} steps each, {:.1} s: {} records sent, {} acknowledged, {} appends, \
             {} concurrent bursts, {} kills, {} writer panics, {} graceful restarts, {} sweeps ({} rows), \
             {} tailer batches, {} full checks; invariants checked: {}",
            self.seeds,
            plan.seeds.start,
            plan.seeds.end,
            plan.steps,
            elapsed.as_secs_f64(),
            self.records_sent,
            self.records_acknowledged,
            self.appends,
            self.bursts,
            self.kills,
            self.writer_panics,
            self.restarts,
            self.sweeps_completed,
            self.rows_swept,
            self.tail_batches,
            self.full_checks,
            INVARIANTS.join("; "),
        )
    }
}

fn run_seed(seed: u64, steps: usize) -> Result<Stats, Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async move {
        let mut sim = Sim::new(seed).await.map_err(|(invariant, detail)| Failure {
            seed,
            step: None,
            invariant,
            detail,
            trace: Vec::new(),
        })?;
        let outcome = sim.run(steps).await;
        let trace: Vec<String> = sim.trace.iter().cloned().collect();
        let step = sim.step;
        let stats = sim.stats.clone();
        sim.shut_down().await;
        match outcome {
            Ok(()) => Ok(stats),
            Err((invariant, detail)) => Err(Failure { seed, step: Some(step), invariant, detail, trace }),
        }
    })
}

/// A violated invariant (its name) and what was found.
type Violation = (&'static str, String);

/// Whether anything of an event may still be stored, given the sweeps so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// No sweep has been started past its expiry: everything of it must be kept.
    Kept,
    /// A sweep past its expiry completed with no fold beside it: nothing of it may remain.
    Gone,
    /// A sweep past its expiry was started but may not have finished (a crash, a fold
    /// running beside it): some of it may remain.
    Unsettled,
}

/// One unit of concurrent work: a task of a burst.
#[derive(Debug, Clone)]
enum Task {
    Append(Vec<Record>),
    CreateEvent(EventRow),
    Sweep(u64),
    Tail,
}

/// How a burst ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Every task finishes; the store is healthy, so every task must succeed.
    Join,
    /// The process is killed after the tasks got going: the store is dropped without `close()`.
    Kill,
    /// The writer thread panics while the tasks are in flight.
    WriterPanic,
}

/// What the burst's tasks report as they finish (written before the task can be cancelled).
#[derive(Debug)]
enum Report {
    Appended(Vec<RecordId>),
    Created(EventId),
    Swept { now: u64, removed: u64, beside_fold: bool },
    Failed(String),
}

struct Attempt {
    record: Record,
    /// The high-water mark last seen before the record was first sent: its row's number
    /// must be above it.
    high_water_before: u64,
}

/// What the simulation knows, independent of the store.
struct Model {
    retention: Retention,
    /// Every event the simulation tried to create, in order.
    events: Vec<EventRow>,
    expiry: HashMap<EventId, u64>,
    /// Every question asked (or voted on), with its event, in order.
    questions: Vec<(QuestionId, EventId)>,
    voters: Vec<VoterId>,
    sent: HashMap<RecordId, Attempt>,
    /// Record ids in the order first sent (duplicates are drawn from here).
    sent_order: Vec<RecordId>,
    acknowledged: HashSet<RecordId>,
    events_acknowledged: HashSet<EventId>,
    /// The latest `now` a sweep was started at.
    sweep_started: u64,
    /// The latest `now` a sweep completed at with no fold running beside it.
    sweep_completed: u64,
    high_water: u64,
}

impl Model {
    fn fate(&self, event: EventId) -> Fate {
        let expire = self.retention.expire_of(event);
        if expire >= self.sweep_started {
            Fate::Kept
        } else if expire < self.sweep_completed {
            Fate::Gone
        } else {
            Fate::Unsettled
        }
    }
}

/// The store as one process has it open.
struct Running {
    store: Arc<SqliteStore>,
    tailer: Arc<Tailer>,
    tail: TailState,
}

struct Sim {
    rng: StdRng,
    clock_ms: u64,
    last_id: u128,
    durability: Durability,
    _dir: tempfile::TempDir,
    path: PathBuf,
    /// A read-only connection to the file, for what the ports do not show (row numbers).
    rows_reader: Option<rusqlite::Connection>,
    model: Model,
    running: Option<Running>,
    reports: Arc<Mutex<Vec<Report>>>,
    opens: u64,
    step: usize,
    trace: VecDeque<String>,
    stats: Stats,
}

fn tailer_for(store: &Arc<SqliteStore>) -> Arc<Tailer> {
    Arc::new(Tailer {
        feed: store.clone(),
        store: store.clone(),
        appended: store.appended(),
        changes: broadcast::channel(16).0,
        caught_up: watch::channel(0).0,
        trouble: watch::channel(None).0,
    })
}

impl Sim {
    async fn new(seed: u64) -> Result<Self, Violation> {
        let mut rng = StdRng::seed_from_u64(seed);
        let retention = Retention::from_days(rng.gen_range(1..=3)).map_err(|e| ("setup", e.to_string()))?;
        // Mostly the fast setting; sometimes fsync on every commit, as `serve` runs by default.
        let durability = if rng.gen_ratio(1, 8) { Durability::Full } else { Durability::Normal };
        let voters = (0..VOTERS).map(|_| VoterId(Ulid(rng.gen()))).collect();
        let dir = tempfile::tempdir().map_err(|e| ("setup", e.to_string()))?;
        let path = dir.path().join("simulated.db");
        let mut sim = Sim {
            rng,
            clock_ms: START_UNIX_MS,
            last_id: 0,
            durability,
            _dir: dir,
            path,
            rows_reader: None,
            model: Model {
                retention,
                events: Vec::new(),
                expiry: HashMap::new(),
                questions: Vec::new(),
                voters,
                sent: HashMap::new(),
                sent_order: Vec::new(),
                acknowledged: HashSet::new(),
                events_acknowledged: HashSet::new(),
                sweep_started: 0,
                sweep_completed: 0,
                high_water: 0,
            },
            running: None,
            reports: Arc::new(Mutex::new(Vec::new())),
            opens: 0,
            step: 0,
            trace: VecDeque::new(),
            stats: Stats { seeds: 1, ..Stats::default() },
        };
        sim.note(format!("retention {retention}, durability {durability:?}"));
        sim.start().await?;
        Ok(sim)
    }

    fn now_unix(&self) -> u64 {
        self.clock_ms / 1_000
    }

    fn note(&mut self, line: String) {
        if self.trace.len() == TRACE_KEPT {
            self.trace.pop_front();
        }
        let at = self.clock_ms - START_UNIX_MS;
        self.trace.push_back(format!("#{} t+{}.{:03}s: {line}", self.step, at / 1_000, at % 1_000));
    }

    fn running(&self) -> Result<&Running, Violation> {
        self.running.as_ref().ok_or(("harness", "the store is not open".into()))
    }

    /// A ULID at the simulated clock, strictly above every id minted before.
    fn mint(&mut self) -> Ulid {
        let candidate = Ulid::from_parts(self.clock_ms, self.rng.gen());
        let id = if candidate.0 > self.last_id { candidate.0 } else { self.last_id + 1 };
        self.last_id = id;
        Ulid(id)
    }

    // ---------------------------------------------------------------- the workload

    async fn run(&mut self, steps: usize) -> Result<(), Violation> {
        for step in 0..steps {
            self.step = step;
            self.stats.steps += 1;
            self.clock_ms += self.rng.gen_range(0..=1_500);
            let full = self.act().await?;
            self.check(full).await?;
        }
        self.step = steps;
        self.note("final check".into());
        self.check(true).await?;
        self.note("graceful restart, then a last check".into());
        self.restart(Ending::Join).await?;
        self.check(true).await
    }

    /// Plans and runs one operation; returns whether a full check follows.
    async fn act(&mut self) -> Result<bool, Violation> {
        match self.rng.gen_range(0..100) {
            0..=2 => {
                let ms = self.rng.gen_range(1..=12) * MS_PER_HOUR;
                self.clock_ms += ms;
                self.note(format!("clock +{} h", ms / MS_PER_HOUR));
            }
            3..=5 => {
                // Often past the retention: every event alive now may be dead after this.
                let days = self.rng.gen_range(1..=self.model.retention.days() + 1);
                self.clock_ms += days * MS_PER_DAY + self.rng.gen_range(0..MS_PER_HOUR);
                self.note(format!("clock +{days} days"));
            }
            6..=8 => {
                // To exactly an event's expiry second: it is dead, but a sweep must keep it.
                let later: Vec<u64> =
                    self.model.events.iter().map(|e| e.expire_unix).filter(|&x| x * 1_000 > self.clock_ms).collect();
                if let Some(&expire) = later.choose(&mut self.rng) {
                    self.clock_ms = expire * 1_000 + self.rng.gen_range(0..1_000);
                    self.note(format!("clock to an expiry second ({expire})"));
                    let now = self.now_unix();
                    self.burst(vec![Task::Sweep(now)], Ending::Join).await?;
                }
            }
            9..=13 => {
                let now = self.now_unix();
                self.burst(vec![Task::Sweep(now)], Ending::Join).await?;
            }
            14..=21 => {
                let n = self.rng.gen_range(1..=3);
                for _ in 0..n {
                    self.burst(vec![Task::Tail], Ending::Join).await?;
                }
            }
            22..=23 => {
                let tasks = self.plan_burst();
                self.restart_after(tasks, Ending::Kill).await?;
            }
            24..=25 => {
                let tasks = self.plan_burst();
                self.restart_after(tasks, Ending::WriterPanic).await?;
            }
            26..=27 => self.restart(Ending::Join).await?,
            28..=35 => {
                self.note("full check".into());
                return Ok(true);
            }
            36..=50 => {
                let tasks = self.plan_burst();
                self.burst(tasks, Ending::Join).await?;
            }
            _ => {
                let task = self.plan_write();
                self.burst(vec![task], Ending::Join).await?;
            }
        }
        Ok(false)
    }

    /// Two to six tasks at once: mostly writes, maybe a sweep, at most one tailer step.
    fn plan_burst(&mut self) -> Vec<Task> {
        let n = self.rng.gen_range(2..=6);
        let mut tasks = Vec::with_capacity(n);
        let mut tailing = false;
        for _ in 0..n {
            match self.rng.gen_range(0..100) {
                0..=7 => tasks.push(Task::Sweep(self.now_unix())),
                8..=15 if !tailing => {
                    tailing = true;
                    tasks.push(Task::Tail);
                }
                _ => tasks.push(self.plan_write()),
            }
        }
        tasks
    }

    fn live_events(&self) -> Vec<EventId> {
        let now = self.now_unix();
        self.model.events.iter().filter(|e| ledger::retention::is_live(e.expire_unix, now)).map(|e| e.id).collect()
    }

    fn live_questions(&self) -> Vec<(QuestionId, EventId)> {
        let now = self.now_unix();
        self.model
            .questions
            .iter()
            .filter(|(_, e)| self.model.expiry.get(e).is_some_and(|&x| ledger::retention::is_live(x, now)))
            .copied()
            .collect()
    }

    /// One write, as ingest or an import would send it: only to events alive at `now`.
    fn plan_write(&mut self) -> Task {
        let roll = self.rng.gen_range(0..100);
        if roll < 8 || self.live_events().is_empty() {
            return Task::CreateEvent(self.plan_event());
        }
        if roll >= 88 {
            return Task::Append(self.plan_import());
        }
        Task::Append(vec![self.plan_record(roll)])
    }

    fn plan_event(&mut self) -> EventRow {
        let id = EventId(self.mint());
        let secret = format!("host secret {}", self.rng.gen::<u64>());
        let row = EventRow {
            id,
            secret_hash: ledger::secret::hash_secret(&secret),
            expire_unix: self.model.retention.expire_of(id),
        };
        self.model.expiry.insert(id, row.expire_unix);
        self.model.events.push(row.clone());
        row
    }

    /// An ask (roll < 35), a vote or retraction (< 75) or a toggle, on a live event.
    fn plan_record(&mut self, roll: u32) -> Record {
        let questions = self.live_questions();
        let voter = *self.model.voters.choose(&mut self.rng).expect("voters");
        if roll < 35 || questions.is_empty() {
            let event = *self.live_events().choose(&mut self.rng).expect("a live event (checked by the caller)");
            let question = QuestionId(self.mint());
            self.model.questions.push((question, event));
            let who = self.rng.gen_bool(0.3).then(|| format!("guest {}", self.rng.gen_range(0..100)));
            let text = format!("question {} of the simulation?", self.model.questions.len());
            let body = RecordBody::Asked(Asked { text, who, voter });
            return self.record(event, question, body);
        }
        let (question, event) = *questions.choose(&mut self.rng).expect("not empty");
        let body = if roll < 75 {
            RecordBody::Voted { voter, up: self.rng.gen_bool(0.7) }
        } else if self.rng.gen_bool(0.5) {
            RecordBody::Answered { on: self.rng.gen_bool(0.6) }
        } else {
            RecordBody::Hidden { on: self.rng.gen_bool(0.5) }
        };
        self.record(event, question, body)
    }

    fn record(&mut self, event: EventId, question: QuestionId, body: RecordBody) -> Record {
        let record = Record { id: RecordId(self.mint()), event, question, region: "sim".into(), body };
        self.model.sent_order.push(record.id);
        self.model.sent.insert(record.id, Attempt { record: record.clone(), high_water_before: self.model.high_water });
        record
    }

    /// Several new records and some already sent (of live events), shuffled: the store
    /// must keep the first copy of each and skip the rest.
    fn plan_import(&mut self) -> Vec<Record> {
        let fresh = self.rng.gen_range(1..=5);
        let mut records: Vec<Record> = (0..fresh)
            .map(|_| {
                let roll = self.rng.gen_range(0..88);
                self.plan_record(roll)
            })
            .collect();
        let now = self.now_unix();
        let earlier: Vec<RecordId> =
            self.model
                .sent_order
                .iter()
                .filter(|id| {
                    self.model.sent.get(id).is_some_and(|a| {
                        ledger::retention::is_live(self.model.retention.expire_of(a.record.event), now)
                    })
                })
                .copied()
                .collect();
        let duplicates = self.rng.gen_range(0..=3).min(earlier.len());
        for id in earlier.choose_multiple(&mut self.rng, duplicates) {
            records.push(self.model.sent[id].record.clone());
        }
        records.shuffle(&mut self.rng);
        records
    }

    fn describe(task: &Task) -> String {
        match task {
            Task::Append(records) => {
                let kinds: Vec<&str> = records.iter().map(|r| r.body.kind()).collect();
                format!("append [{}]", kinds.join(","))
            }
            Task::CreateEvent(row) => {
                format!("create event {} (expires {})", row.id, row.expire_unix)
            }
            Task::Sweep(now) => format!("sweep at {now}"),
            Task::Tail => "tailer step".into(),
        }
    }

    /// Runs `tasks` concurrently and ends as `ending` says. The store is down afterwards
    /// unless the ending is `Join`.
    async fn burst(&mut self, tasks: Vec<Task>, ending: Ending) -> Result<(), Violation> {
        let described: Vec<String> = tasks.iter().map(Self::describe).collect();
        self.note(format!("{ending:?}: {}", described.join(" | ")));
        if tasks.len() > 1 {
            self.stats.bursts += 1;
        }
        let beside_fold = tasks.iter().any(|t| matches!(t, Task::Tail));
        let running = self.running()?;
        let (store, tailer, tail) = (running.store.clone(), running.tailer.clone(), running.tail.clone());
        let now = self.now_unix();
        let mut set = JoinSet::new();
        for task in tasks {
            let (store, tailer, mut tail, reports) =
                (store.clone(), tailer.clone(), tail.clone(), self.reports.clone());
            match &task {
                Task::Append(records) => {
                    self.stats.appends += 1;
                    self.stats.records_sent += records.len() as u64;
                }
                Task::Sweep(at) => self.model.sweep_started = self.model.sweep_started.max(*at),
                _ => {}
            }
            set.spawn(async move {
                // Each report is written in the same poll the store's answer arrives in, so a
                // task cancelled by a kill has reported everything that was acknowledged.
                let report = |r| reports.lock().expect("reports").push(r);
                match task {
                    Task::Append(records) => match store.append(&records).await {
                        Ok(()) => report(Report::Appended(records.iter().map(|r| r.id).collect())),
                        Err(e) => report(Report::Failed(format!("append of {} records: {e}", records.len()))),
                    },
                    Task::CreateEvent(row) => match store.create_event(&row).await {
                        Ok(()) => report(Report::Created(row.id)),
                        Err(e) => report(Report::Failed(format!("create event {}: {e}", row.id))),
                    },
                    Task::Sweep(at) => match store.sweep_expired(at).await {
                        Ok(removed) => report(Report::Swept { now: at, removed, beside_fold }),
                        Err(e) => report(Report::Failed(format!("sweep at {at}: {e}"))),
                    },
                    Task::Tail => {
                        let step = tailer.step(&mut tail, now).await;
                        if let Step::Failed(e) = &step {
                            report(Report::Failed(format!("tailer step: {e}")));
                        }
                        return Some((tail, step));
                    }
                }
                None
            });
        }
        drop((store, tailer));
        match ending {
            Ending::Join => {
                for (tail, step) in set.join_all().await.into_iter().flatten() {
                    if let Step::Advanced { quarantined, .. } = step {
                        self.stats.tail_batches += 1;
                        if quarantined > 0 {
                            return Err(("folded", format!("{quarantined} valid records were quarantined: {step:?}")));
                        }
                    }
                    if let Some(running) = self.running.as_mut() {
                        running.tail = tail;
                    }
                }
            }
            Ending::Kill => {
                // Let the tasks get going (0 to 3 turns each, and maybe a moment for the
                // writer), then the process dies: the tasks are cancelled mid-flight.
                for _ in 0..self.rng.gen_range(0..4) {
                    tokio::task::yield_now().await;
                }
                if self.rng.gen_bool(0.3) {
                    tokio::time::sleep(Duration::from_micros(self.rng.gen_range(50..800))).await;
                }
                set.shutdown().await;
            }
            Ending::WriterPanic => {
                for _ in 0..self.rng.gen_range(0..3) {
                    tokio::task::yield_now().await;
                }
                self.running()?.store.inject_writer_panic();
                let _ = set.join_all().await;
            }
        }
        self.absorb_reports(ending)
    }

    /// Folds the tasks' reports into the model. A failure is a violation unless the writer
    /// was made to panic.
    fn absorb_reports(&mut self, ending: Ending) -> Result<(), Violation> {
        let reports = std::mem::take(&mut *self.reports.lock().expect("reports"));
        for report in reports {
            match report {
                Report::Appended(ids) => {
                    for id in ids {
                        if self.model.acknowledged.insert(id) {
                            self.stats.records_acknowledged += 1;
                        }
                    }
                }
                Report::Created(id) => {
                    self.model.events_acknowledged.insert(id);
                }
                Report::Swept { now, removed, beside_fold } => {
                    self.stats.sweeps_completed += 1;
                    self.stats.rows_swept += removed;
                    if !beside_fold {
                        self.model.sweep_completed = self.model.sweep_completed.max(now);
                    }
                }
                Report::Failed(why) if ending != Ending::WriterPanic => {
                    return Err(("healthy store", format!("failed with no fault injected: {why}")));
                }
                Report::Failed(_) => {}
            }
        }
        Ok(())
    }

    // ---------------------------------------------------------------- faults and restarts

    async fn restart_after(&mut self, tasks: Vec<Task>, ending: Ending) -> Result<(), Violation> {
        match ending {
            Ending::Kill => self.stats.kills += 1,
            Ending::WriterPanic => self.stats.writer_panics += 1,
            Ending::Join => {}
        }
        self.burst(tasks, ending).await?;
        if ending == Ending::WriterPanic {
            let store = &self.running()?.store;
            // The panic is the writer's next group: wait for it, then every write must fail.
            let why = tokio::time::timeout(STOP_WAIT_MAX, store.writer_died())
                .await
                .map_err(|_| ("writer panic", "the injected panic did not stop the writer".to_owned()))?;
            if store.acknowledge_quarantined().await.is_ok() {
                return Err(("writer panic", format!("a write succeeded after the writer died ({why})")));
            }
        }
        self.restart(ending).await
    }

    /// Stops the store (gracefully for `Join`, else as a crash already left it) and opens
    /// the same file again.
    async fn restart(&mut self, ending: Ending) -> Result<(), Violation> {
        if ending == Ending::Join {
            self.stats.restarts += 1;
            self.note("graceful restart".into());
        }
        self.stop(ending == Ending::Join).await?;
        self.start().await
    }

    async fn stop(&mut self, graceful: bool) -> Result<(), Violation> {
        let Some(running) = self.running.take() else {
            return Ok(());
        };
        if graceful {
            running.store.close().await;
        }
        // The writer thread holds the store's shared state, which holds this: once only we
        // hold it, the old writer has finished whatever was queued (a killed process would
        // not have; what it commits here is unacknowledged, which the checks allow).
        let probe: Arc<Notify> = running.store.appended();
        drop(running);
        let deadline = Instant::now() + STOP_WAIT_MAX;
        while Arc::strong_count(&probe) > 1 {
            if Instant::now() > deadline {
                return Err(("restart", "the dropped store's writer thread did not finish".into()));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok(())
    }

    async fn start(&mut self) -> Result<(), Violation> {
        self.opens += 1;
        // Every other open names the retention; the rest take whatever the file says.
        let retention = (self.opens % 2 == 1).then_some(self.model.retention);
        let store = SqliteStore::open(&self.path, Options { durability: self.durability, retention })
            .map_err(|e| ("restart", format!("cannot reopen the store: {e}")))?;
        if store.retention() != self.model.retention {
            return Err(("restart", format!("the store keeps {}, not {}", store.retention(), self.model.retention)));
        }
        let high_water = store.high_water().await.map_err(|e| ("restart", e.to_string()))?;
        if high_water < self.model.high_water {
            return Err((
                "sequence",
                format!("the high-water mark went down across a restart: {} -> {high_water}", self.model.high_water),
            ));
        }
        self.model.high_water = high_water;
        let cursor = store.cursor().await.map_err(|e| ("restart", e.to_string()))?;
        let tailer = tailer_for(&store);
        self.running = Some(Running { store, tailer, tail: TailState::at(cursor) });
        Ok(())
    }

    async fn shut_down(&mut self) {
        if let Some(running) = self.running.take() {
            running.store.close().await;
        }
    }

    // ---------------------------------------------------------------- the invariants

    /// Checks invariants 1 to 4 and, when `full`, folds everything and checks 5 and 6.
    async fn check(&mut self, full: bool) -> Result<(), Violation> {
        let unavailable = |what: &str, e: ledger::ports::StoreError| ("store readable", format!("{what}: {e}"));
        let store = self.running()?.store.clone();

        // 3. sequence.
        let high_water = store.high_water().await.map_err(|e| unavailable("high_water", e))?;
        if high_water < self.model.high_water {
            return Err((
                "sequence",
                format!("the high-water mark went down: {} -> {high_water}", self.model.high_water),
            ));
        }
        let cursor = store.cursor().await.map_err(|e| unavailable("cursor", e))?;
        if cursor > high_water {
            return Err(("sequence", format!("the cursor {cursor} is past the high-water mark {high_water}")));
        }
        if self.rows_reader.is_none() {
            let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
            let conn = rusqlite::Connection::open_with_flags(&self.path, flags)
                .map_err(|e| ("store readable", format!("opening the file to read its rows: {e}")))?;
            self.rows_reader = Some(conn);
        }
        let rows = ledger_rows(self.rows_reader.as_ref().ok_or(("harness", "no reader".to_owned()))?)?;
        for &(seq, id) in &rows {
            if seq > high_water {
                return Err(("sequence", format!("row {seq} ({id}) is above the high-water mark {high_water}")));
            }
            if let Some(attempt) = self.model.sent.get(&id) {
                if seq <= attempt.high_water_before {
                    return Err((
                        "sequence",
                        format!(
                            "record {id} got number {seq}, but {} had been handed out before it was sent",
                            attempt.high_water_before
                        ),
                    ));
                }
            }
        }
        let last_seq = store.last_seq().await.map_err(|e| unavailable("last_seq", e))?;
        if last_seq != rows.last().map_or(0, |r| r.0) {
            return Err(("sequence", format!("last_seq {last_seq}, but the last row is {:?}", rows.last())));
        }
        self.model.high_water = high_water;

        // 4. nothing invented, read through the port in pages.
        let page = self.rng.gen_range(16..=256);
        let records = scan_all(store.as_ref(), None, page).await?;
        let scanned: Vec<RecordId> = records.iter().map(|r| r.id).collect();
        let stored: Vec<RecordId> = rows.iter().map(|r| r.1).collect();
        if scanned != stored {
            return Err((
                "nothing invented",
                format!("a paged scan ({} records) differs from the ledger's rows ({})", scanned.len(), stored.len()),
            ));
        }
        let count = store.count(None).await.map_err(|e| unavailable("count", e))?;
        if count != records.len() as u64 {
            return Err(("nothing invented", format!("count says {count}, the scan found {}", records.len())));
        }
        // An export of one event: the same records, in the same order, as the whole scan has.
        if let Some(row) = self.model.events.choose(&mut self.rng) {
            let event = row.id;
            let exported = scan_all(store.as_ref(), Some(event), page).await?;
            let expected: Vec<&Record> = records.iter().filter(|r| r.event == event).collect();
            if exported.iter().collect::<Vec<_>>() != expected {
                return Err((
                    "nothing invented",
                    format!(
                        "event {event}: an export of {} records, the ledger holds {}",
                        exported.len(),
                        expected.len()
                    ),
                ));
            }
            let count = store.count(Some(event)).await.map_err(|e| unavailable("count", e))?;
            if count != expected.len() as u64 {
                return Err((
                    "nothing invented",
                    format!("event {event}: count says {count}, the ledger holds {}", expected.len()),
                ));
            }
        }
        for r in &records {
            match self.model.sent.get(&r.id) {
                None => return Err(("nothing invented", format!("record {} was never sent: {r:?}", r.id))),
                Some(a) if a.record != *r => {
                    return Err((
                        "nothing invented",
                        format!("record {} changed: sent {:?}, stored {r:?}", r.id, a.record),
                    ))
                }
                Some(_) => {}
            }
        }

        // 1. durable and 2. swept.
        let present: HashSet<RecordId> = scanned.iter().copied().collect();
        for id in &self.model.acknowledged {
            let event = self.model.sent[id].record.event;
            if !present.contains(id) && self.model.fate(event) == Fate::Kept {
                return Err((
                    "durable",
                    format!(
                        "acknowledged record {id} of event {event} (expires {}) is missing; no sweep went past it (latest at {})",
                        self.model.retention.expire_of(event),
                        self.model.sweep_started
                    ),
                ));
            }
        }
        for r in &records {
            if self.model.fate(r.event) == Fate::Gone {
                return Err((
                    "swept",
                    format!(
                        "record {} of event {} (expired {}) is still in the ledger after a sweep at {}",
                        r.id,
                        r.event,
                        self.model.retention.expire_of(r.event),
                        self.model.sweep_completed
                    ),
                ));
            }
        }
        if full {
            self.stats.full_checks += 1;
            self.check_folded(&records).await?;
        }
        Ok(())
    }

    /// Drives the tailer to `Idle`, then compares the projection with the pure fold.
    async fn check_folded(&mut self, records: &[Record]) -> Result<(), Violation> {
        let now = self.now_unix();
        let running = self.running.as_mut().ok_or(("harness", "the store is not open".to_owned()))?;
        let mut steps = 0;
        loop {
            match running.tailer.step(&mut running.tail, now).await {
                Step::Idle => break,
                Step::Advanced { quarantined: 0, .. } => self.stats.tail_batches += 1,
                step @ Step::Advanced { .. } => {
                    return Err(("folded", format!("valid records were quarantined: {step:?}")))
                }
                Step::Failed(e) => return Err(("folded", format!("the tailer failed on a healthy store: {e}"))),
            }
            steps += 1;
            if steps > TAIL_STEPS_MAX {
                return Err(("folded", format!("the tailer did not reach Idle in {TAIL_STEPS_MAX} steps")));
            }
        }
        let store = running.store.clone();
        let tail_cursor = running.tail.cursor;
        let unavailable = |what: &str, e: ledger::ports::StoreError| ("store readable", format!("{what}: {e}"));

        // 5. folded.
        let cursor = store.cursor().await.map_err(|e| unavailable("cursor", e))?;
        let last_seq = store.last_seq().await.map_err(|e| unavailable("last_seq", e))?;
        if cursor != tail_cursor || cursor < last_seq {
            return Err((
                "folded",
                format!("idle with the stored cursor {cursor} (tailer's {tail_cursor}) behind the last row {last_seq}"),
            ));
        }
        let quarantined = store.quarantined().await.map_err(|e| unavailable("quarantined", e))?;
        if !quarantined.is_empty() {
            return Err(("folded", format!("valid records were quarantined: {quarantined:?}")));
        }

        // 6. projection = pure fold, event by event.
        let mut reference = Projection::new();
        for r in records {
            reference.apply(r);
        }
        let folded: BTreeMap<QuestionId, QuestionState> = reference
            .sorted()
            .into_iter()
            .filter(|q| self.model.fate(q.standing.event) == Fate::Kept)
            .map(|q| (q.standing.id, q))
            .collect();
        let stored_all = store.questions(None).await.map_err(|e| unavailable("questions", e))?;
        let mut stored = BTreeMap::new();
        for q in stored_all {
            let event = q.standing.event;
            if !self.model.expiry.contains_key(&event) {
                return Err((
                    "projection = fold",
                    format!("question {} of event {event}, which the simulation never made", q.standing.id),
                ));
            }
            match self.model.fate(event) {
                Fate::Kept => {
                    stored.insert(q.standing.id, q);
                }
                Fate::Gone => {
                    return Err((
                        "projection = fold",
                        format!(
                            "question {} of event {event} (expired {}) is still in the projection after a sweep at {} removed its records: {q:?}",
                            q.standing.id,
                            self.model.retention.expire_of(event),
                            self.model.sweep_completed
                        ),
                    ))
                }
                Fate::Unsettled => {}
            }
        }
        for id in folded.keys().chain(stored.keys()) {
            let (f, s) = (folded.get(id), stored.get(id));
            if f != s {
                return Err((
                    "projection = fold",
                    format!("question {id}: the fold of the ledger says {f:?}, the projection {s:?}"),
                ));
            }
            let mirrored = store.question(*id).await.map_err(|e| unavailable("question", e))?;
            if mirrored != f.map(|q| q.standing) {
                return Err((
                    "projection = fold",
                    format!("question {id}: the in-memory mirror says {mirrored:?}, the fold {f:?}"),
                ));
            }
        }
        let ids: Vec<QuestionId> = folded.keys().copied().collect();
        let texts = store.question_texts(&ids).await.map_err(|e| unavailable("question_texts", e))?;
        let texts: BTreeMap<QuestionId, (EventId, String, Option<String>)> =
            texts.into_iter().map(|t| (t.id, (t.event, t.text, t.who))).collect();
        for (id, q) in &folded {
            let expected = q.asked.as_ref().map(|a| (q.standing.event, a.text.clone(), a.who.clone()));
            if texts.get(id) != expected.as_ref() {
                return Err((
                    "projection = fold",
                    format!("question {id}: the text served is {:?}, the fold's {expected:?}", texts.get(id)),
                ));
            }
        }
        let keys: Vec<(QuestionId, VoterId)> =
            folded.keys().flat_map(|&q| self.model.voters.iter().map(move |&v| (q, v))).collect();
        let voters = store.voters(&keys).await.map_err(|e| unavailable("voters", e))?;
        for &(q, v) in &keys {
            let (f, s) = (reference.voter(q, v), voters.get(&(q, v)).copied());
            if f != s {
                return Err((
                    "projection = fold",
                    format!("voter {v} on question {q}: the fold says {f:?}, the store {s:?}"),
                ));
            }
        }
        for row in &self.model.events {
            let fate = self.model.fate(row.id);
            let mut listed: Vec<_> =
                store.event_questions(row.id).await.map_err(|e| unavailable("event_questions", e))?;
            listed.sort_by_key(|c| c.id);
            let stored_event = store.event(row.id).await.map_err(|e| unavailable("event", e))?;
            match fate {
                Fate::Kept => {
                    let expected: Vec<_> =
                        folded.values().filter(|q| q.standing.event == row.id).map(|q| q.standing).collect();
                    if listed != expected {
                        return Err((
                            "projection = fold",
                            format!("event {}: the mirror lists {listed:?}, the fold {expected:?}", row.id),
                        ));
                    }
                    let acknowledged = self.model.events_acknowledged.contains(&row.id);
                    if (acknowledged && stored_event.as_ref() != Some(row))
                        || stored_event.as_ref().is_some_and(|s| s != row)
                    {
                        return Err(("durable", format!("event {}: created {row:?}, stored {stored_event:?}", row.id)));
                    }
                }
                Fate::Gone => {
                    if !listed.is_empty() || stored_event.is_some() {
                        return Err((
                            "projection = fold",
                            format!(
                                "event {} expired before a sweep at {}, yet: event {stored_event:?}, listed {listed:?}",
                                row.id, self.model.sweep_completed
                            ),
                        ));
                    }
                }
                Fate::Unsettled => {}
            }
        }
        Ok(())
    }
}

/// Every record of the ledger (or of one event) through the port, `page` records at a time.
async fn scan_all(store: &SqliteStore, event: Option<EventId>, page: usize) -> Result<Vec<Record>, Violation> {
    let mut out = Vec::new();
    let mut after: Option<ScanToken> = None;
    loop {
        let got = store.scan(event, after, page).await.map_err(|e| ("store readable", format!("scan: {e}")))?;
        out.extend(got.records);
        match got.next {
            Some(token) => after = Some(token),
            None => return Ok(out),
        }
    }
}

/// The ledger's rows as (sequence number, record id), read from the file itself: the ports
/// do not show sequence numbers, and invariant 3 is about them.
fn ledger_rows(conn: &rusqlite::Connection) -> Result<Vec<(u64, RecordId)>, Violation> {
    let fail = |e: rusqlite::Error| ("store readable", format!("reading the ledger's rows: {e}"));
    let mut stmt = conn.prepare_cached("SELECT seq, id FROM ledger ORDER BY seq").map_err(fail)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))
        .map_err(fail)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(fail)?;
    rows.into_iter()
        .map(|(seq, id)| {
            let bytes: [u8; 16] =
                id.try_into().map_err(|_| ("nothing invented", format!("row {seq} has an id that is not 16 bytes")))?;
            Ok((
                u64::try_from(seq).map_err(|_| ("sequence", format!("a negative row number {seq}")))?,
                RecordId::from_bytes(bytes),
            ))
        })
        .collect()
}
