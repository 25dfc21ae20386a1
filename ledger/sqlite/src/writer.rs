//! The single writer. One OS thread owns the only writing connection and drains a queue of
//! commands: whatever has queued up while the previous transaction was committing becomes
//! the next transaction (group commit), so many concurrent votes cost one commit. One failing
//! or conflicting command never takes the rest of its group down: the group is rolled back
//! and run again with each multi-statement command in its own savepoint (`execute_group`).
//! Replies go out only after the COMMIT returns.

use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ledger::ports::{Commit, EventRow, StoreError, StoreResult};
use ledger::{
    BatchPlan, EventId, ProjectionChange, QuestionId, QuestionStanding, QuestionState, Record, Retention, VoterId,
    VoterState,
};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use tokio::sync::oneshot;

use crate::rows::{corrupt, opt_blob16, record_columns, stamp};
use crate::shared::StoreState;
use crate::sweep::{sweep_chunk, SweepPosition, SweepStep};

/// Most commands folded into one transaction; bounds the latency of the first in line.
pub const GROUP_COMMANDS_MAX: usize = 4_096;
/// While the previous group held more than one command (concurrent writers), a group smaller
/// than this waits up to [`GROUP_LINGER_US`] for more before committing.
const GROUP_LINGER_BELOW: usize = 32;
const GROUP_LINGER_US: u64 = 400;

pub(crate) type Reply<T> = oneshot::Sender<StoreResult<T>>;

pub(crate) enum Command {
    Append {
        records: Vec<Record>,
        reply: Reply<()>,
    },
    CreateEvent {
        row: EventRow,
        reply: Reply<()>,
    },
    Commit {
        change: ProjectionChange,
        cursor: Option<u64>,
        reply: Reply<Commit>,
    },
    /// Read the voters a plan touches, resolve it and commit the change, in one savepoint.
    Fold {
        plan: BatchPlan,
        cursor: Option<u64>,
        reply: Reply<ProjectionChange>,
    },
    Replace {
        event: Option<EventId>,
        questions: Vec<QuestionState>,
        voters: Vec<((QuestionId, VoterId), VoterState)>,
        events: Vec<ledger::EventState>,
        reply: Reply<()>,
    },
    /// Deletes what expired before `now_unix` among the next [`crate::sweep::SWEEP_CHUNK_ROWS`] rows of
    /// one table after `from`, so a sweep never holds the writer for long.
    SweepChunk {
        now_unix: u64,
        from: SweepPosition,
        reply: Reply<SweepStep>,
    },
    /// Sets a ledger row aside and moves the cursor to it.
    Quarantine {
        seq: u64,
        reason: String,
        now_unix: u64,
        reply: Reply<()>,
    },
    AcknowledgeQuarantined {
        reply: Reply<u64>,
    },
    /// Changes the store's retention and restamps every row's expiry with it.
    SetRetention {
        retention: Retention,
        reply: Reply<()>,
    },
    /// Fault injection for tests: the writer thread panics, as a bug in it would.
    Panic,
}

/// What a command did inside the transaction, to be made visible once it commits.
enum Done {
    /// The rows actually inserted (duplicates skipped), with their sequence numbers.
    Appended(Vec<(u64, Record)>),
    EventCreated(EventRow),
    Committed(Vec<QuestionStanding>),
    Folded(ProjectionChange, Vec<QuestionStanding>),
    Conflict,
    Replaced,
    Swept(SweepStep),
    Quarantined,
    Acknowledged(u64),
    RetentionSet(Retention),
}

fn unavailable(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// The writer thread's body. A panic inside a group (a bug) rolls that group back, answers
/// its callers with errors, and ends the thread with the store marked failed: every later
/// write is refused at once and whoever watches [`StoreState::writer_failed`] (the `serve`
/// command, `/healthz`) learns of it. Nothing is left half-alive.
pub(crate) fn run(conn: Connection, queue: Receiver<Command>, shared: Arc<StoreState>) {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_groups(conn, queue, &shared)));
    if let Err(panic) = outcome {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        tracing::error!(panic = %message, "the ledger writer died");
        shared.writer_failed(message);
    }
}

fn run_groups(mut conn: Connection, queue: Receiver<Command>, shared: &StoreState) {
    let mut busy = false;
    while let Ok(first) = queue.recv() {
        let mut group = vec![first];
        let linger_until = Instant::now() + Duration::from_micros(GROUP_LINGER_US);
        while group.len() < GROUP_COMMANDS_MAX {
            match queue.try_recv() {
                Ok(c) => group.push(c),
                Err(TryRecvError::Disconnected) => break,
                Err(TryRecvError::Empty) => {
                    // Under concurrent load, wait a moment for the writes that are on their
                    // way: one commit for many of them writes far fewer pages than several.
                    let now = Instant::now();
                    if !busy || group.len() >= GROUP_LINGER_BELOW || now >= linger_until {
                        break;
                    }
                    match queue.recv_timeout(linger_until - now) {
                        Ok(c) => group.push(c),
                        Err(_) => break,
                    }
                }
            }
        }
        busy = group.len() > 1;
        if group.iter().any(|c| matches!(c, Command::Panic)) {
            panic!("fault injected: the writer panics");
        }
        execute_group(&mut conn, group, shared);
    }
    // Every sender is gone: the store is closing. Fold the WAL back into the main file.
    if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA optimize;") {
        tracing::warn!(error = %e, "checkpoint on close failed");
    }
}

fn execute_group(conn: &mut Connection, group: Vec<Command>, shared: &StoreState) {
    let started = Instant::now();
    metrics::histogram!("sqlite_writer_group_commands").record(group.len() as f64);
    // First without savepoints: a savepoint copies every page a command first touches into a
    // journal of its own (12-18 % of the writer's time in a fold), and commands almost never
    // fail. If one that needs undoing does, the whole transaction is rolled back and the group
    // runs again with each such command in its own savepoint, so it alone is undone.
    let mut outcome = run_group(conn, &group, shared, Undo::Whole);
    if matches!(outcome, Ok(None)) {
        metrics::counter!("sqlite_writer_groups_rerun_total").increment(1);
        outcome = run_group(conn, &group, shared, Undo::PerCommand);
    }
    metrics::histogram!("sqlite_writer_transaction_seconds").record(started.elapsed().as_secs_f64());
    let committed = outcome.map(|results| results.unwrap_or_default());
    shared.commit_outcome(committed.as_ref().err());
    let results = match committed {
        Ok(results) => results,
        Err(e) => {
            tracing::error!(error = %e, commands = group.len(), "ledger transaction failed");
            for cmd in group {
                reply_err(cmd, StoreError::Unavailable(e.to_string()));
            }
            return;
        }
    };
    let mut appended = false;
    for (cmd, result) in group.into_iter().zip(results) {
        if let Ok(done) = &result {
            appended |= matches!(done, Done::Appended(_) | Done::Replaced);
            shared.publish(done_effect(done));
        }
        reply(cmd, result);
    }
    if appended {
        shared.appended.notify_one();
    }
}

/// How a group undoes a command that failed or conflicted.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Undo {
    /// Roll the whole transaction back (the caller runs the group again per command); or,
    /// for a command alone in its group, the transaction is its own and is simply undone.
    Whole,
    /// Each multi-statement command in a savepoint of its own.
    PerCommand,
}

/// Runs `group` in one transaction. `Ok(None)`: a command needed undoing under
/// [`Undo::Whole`] in a group of several, and everything was rolled back.
fn run_group(
    conn: &mut Connection,
    group: &[Command],
    shared: &StoreState,
    undo: Undo,
) -> rusqlite::Result<Option<Vec<StoreResult<Done>>>> {
    let mut results: Vec<StoreResult<Done>> = Vec::with_capacity(group.len());
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let alone = group.len() == 1;
    for cmd in group {
        // One INSERT OR IGNORE: it either wrote its row or nothing, never needs undoing.
        let single_insert = matches!(cmd, Command::Append { records, .. } if records.len() == 1)
            || matches!(cmd, Command::CreateEvent { .. });
        if single_insert {
            results.push(execute(&tx, cmd, shared));
            continue;
        }
        let failed = |r: &StoreResult<Done>| matches!(r, Ok(Done::Conflict) | Err(_));
        if undo == Undo::Whole {
            let r = execute(&tx, cmd, shared);
            if failed(&r) {
                if !alone {
                    tx.rollback()?;
                    return Ok(None);
                }
                results.push(r);
                tx.rollback()?;
                return Ok(Some(results));
            }
            results.push(r);
            continue;
        }
        let mut sp = tx.savepoint()?;
        let r = execute(&sp, cmd, shared);
        if failed(&r) {
            sp.rollback()?;
        }
        sp.commit()?;
        results.push(r);
    }
    tx.commit()?;
    Ok(Some(results))
}

pub(crate) enum Effect<'a> {
    None,
    Event(&'a EventRow),
    Counters(&'a [QuestionStanding]),
    Reload,
    Appended(&'a [(u64, Record)]),
    Swept { questions: &'a [(QuestionId, EventId)], events: &'a [EventId] },
    RetentionSet(Retention),
}

fn done_effect(done: &Done) -> Effect<'_> {
    match done {
        Done::EventCreated(row) => Effect::Event(row),
        Done::Committed(counters) | Done::Folded(_, counters) => Effect::Counters(counters),
        Done::Replaced => Effect::Reload,
        Done::RetentionSet(r) => Effect::RetentionSet(*r),
        Done::Swept(step) => Effect::Swept { questions: &step.questions, events: &step.events },
        Done::Appended(rows) => Effect::Appended(rows),
        Done::Conflict | Done::Quarantined | Done::Acknowledged(_) => Effect::None,
    }
}

fn reply(cmd: Command, result: StoreResult<Done>) {
    // A dropped receiver means the caller gave up (request cancelled): nothing to do.
    match cmd {
        Command::Append { reply, .. }
        | Command::CreateEvent { reply, .. }
        | Command::Replace { reply, .. }
        | Command::Quarantine { reply, .. }
        | Command::SetRetention { reply, .. } => {
            let _ = reply.send(result.map(|_| ()));
        }
        Command::AcknowledgeQuarantined { reply } => {
            let _ = reply.send(result.map(|d| if let Done::Acknowledged(n) = d { n } else { 0 }));
        }
        Command::Panic => {}
        Command::Commit { reply, .. } => {
            let _ =
                reply
                    .send(result.map(|d| if matches!(d, Done::Conflict) { Commit::Conflict } else { Commit::Applied }));
        }
        Command::Fold { reply, .. } => {
            let _ = reply.send(result.and_then(|d| match d {
                Done::Folded(change, _) => Ok(change),
                _ => Err(StoreError::Corrupt("a fold committed something other than its change".into())),
            }));
        }
        Command::SweepChunk { reply, .. } => {
            let _ = reply.send(result.map(|d| if let Done::Swept(step) = d { step } else { SweepStep::default() }));
        }
    }
}

fn reply_err(cmd: Command, e: StoreError) {
    reply(cmd, Err(e))
}

fn execute(conn: &Connection, cmd: &Command, shared: &StoreState) -> StoreResult<Done> {
    match cmd {
        Command::Append { records, .. } => append(conn, records, shared).map(Done::Appended),
        Command::CreateEvent { row, .. } => create_event(conn, row).map(|_| Done::EventCreated(row.clone())),
        Command::Commit { change, cursor, .. } => commit(conn, change, *cursor, shared),
        Command::Fold { plan, cursor, .. } => {
            let stored = crate::rows::read_voters(conn, &plan.voter_keys())?;
            let change = plan.resolve(&stored);
            match commit(conn, &change, *cursor, shared)? {
                Done::Committed(counters) => Ok(Done::Folded(change, counters)),
                // Read and written inside one transaction of the only writer: a failed
                // condition here means the file was changed under us.
                _ => Err(StoreError::Corrupt("a voter changed inside the writer's own transaction".into())),
            }
        }
        Command::Replace { event, questions, voters, events, .. } => {
            replace(conn, *event, questions, voters, shared)?;
            crate::event_states::replace(conn, *event, events, shared).map(|_| Done::Replaced)
        }
        Command::SweepChunk { now_unix, from, .. } => sweep_chunk(conn, *now_unix, from).map(Done::Swept),
        Command::Quarantine { seq, reason, now_unix, .. } => {
            quarantine(conn, *seq, reason, *now_unix).map(|_| Done::Quarantined)
        }
        Command::AcknowledgeQuarantined { .. } => conn
            .execute("UPDATE quarantine SET acknowledged = 1 WHERE acknowledged = 0", [])
            .map(|n| Done::Acknowledged(n as u64))
            .map_err(unavailable),
        Command::SetRetention { retention, .. } => {
            set_retention(conn, *retention).map(|_| Done::RetentionSet(*retention))
        }
        Command::Panic => Err(StoreError::Unavailable("fault injected".into())),
    }
}

fn append(conn: &Connection, records: &[Record], shared: &StoreState) -> StoreResult<Vec<(u64, Record)>> {
    let mut insert = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO ledger (id, event, question, region, kind, voter, flag, text, who, expire)
             VALUES (?1, ?2, ?3, ?4, max(?5, 0), ?6, ?7, ?8, ?9, ?10)",
        )
        .map_err(unavailable)?;
    let mut inserted = Vec::with_capacity(records.len());
    for r in records {
        let (kind, voter, flag, text, who) = record_columns(r);
        let added = insert
            .execute(params![
                r.id.to_bytes(),
                r.event.to_bytes(),
                r.question.to_bytes(),
                r.region,
                kind,
                voter,
                flag,
                text,
                who,
                shared.expire_of(r.event) as i64,
            ])
            .map_err(unavailable)?;
        if added == 1 {
            inserted.push((conn.last_insert_rowid() as u64, r.clone()));
        }
    }
    Ok(inserted)
}

fn create_event(conn: &Connection, row: &EventRow) -> StoreResult<()> {
    let inserted = conn
        .prepare_cached("INSERT OR IGNORE INTO events (id, secret_hash, expire) VALUES (?1, ?2, ?3)")
        .and_then(|mut s| s.execute(params![row.id.to_bytes(), &row.secret_hash[..], row.expire_unix as i64]))
        .map_err(unavailable)?;
    if inserted == 0 {
        return Err(StoreError::Rejected(format!("event {} already exists", row.id)));
    }
    Ok(())
}

fn commit(conn: &Connection, change: &ProjectionChange, cursor: Option<u64>, shared: &StoreState) -> StoreResult<Done> {
    // Each voter write carries its own condition, so checking and writing is one statement:
    // a first vote inserts only if nothing is stored, a later one updates only if the stored
    // record is still the one the change was planned against.
    let mut insert_voter = conn
        .prepare_cached(
            "INSERT INTO voters (qid, voter, up, rec, expire) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (qid, voter) DO NOTHING",
        )
        .map_err(unavailable)?;
    let mut update_voter = conn
        .prepare_cached("UPDATE voters SET up = ?3, rec = ?4 WHERE qid = ?1 AND voter = ?2 AND rec = ?5")
        .map_err(unavailable)?;
    let mut events_of_voters = rustc_hash::FxHashMap::default();
    for q in &change.questions {
        events_of_voters.insert(q.question, q.event);
    }
    // In key order (voter, then question), so the writes walk the table's B-tree forward.
    let mut voters: Vec<_> = change.voters.iter().collect();
    voters.sort_unstable_by_key(|v| (v.voter, v.question));
    for v in voters {
        let event = events_of_voters.get(&v.question).copied().ok_or_else(|| {
            StoreError::Rejected(format!("voter change for question {} outside the change", v.question))
        })?;
        if shared.swept(event) {
            continue;
        }
        let (q, voter, rec) = (v.question.to_bytes(), v.voter.to_bytes(), v.new.rec.to_bytes());
        let written = match v.expected {
            None => insert_voter.execute(params![q, voter, v.new.up, rec, shared.expire_of(event) as i64]),
            Some(expected) => update_voter.execute(params![q, voter, v.new.up, rec, expected.to_bytes()]),
        }
        .map_err(unavailable)?;
        if written != 1 {
            return Ok(Done::Conflict);
        }
    }
    // One statement per question: create it if missing, fill the text if not yet known, add
    // the votes, apply each moderation stamp only where it is newer than the stored one (the
    // LWW rule as a condition; SET expressions see the row as it was), and read the result
    // back for the in-memory mirror. The inserted row starts at no fewer than 0 votes because
    // SQLite checks it against CHECK (votes >= 0) even when it goes on to update instead; a
    // retraction for a question not stored yet could only come from a corrupt projection,
    // which `replay` reports as drift.
    let mut upsert = conn
        .prepare_cached(
            "INSERT INTO questions (id, eid, text, who, votes, answered, answered_at, hidden, hidden_at, expire, asker,
                approved, approved_at, spotlight, spotlight_at, reply, reply_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?12, ?13, ?14, ?15, ?16, ?17, ?18)
             ON CONFLICT (id) DO UPDATE SET
                text = coalesce(text, excluded.text),
                who = CASE WHEN text IS NULL THEN excluded.who ELSE who END,
                asker = CASE WHEN text IS NULL THEN excluded.asker ELSE asker END,
                votes = votes + ?11,
                answered = CASE WHEN excluded.answered_at > coalesce(answered_at, x'') THEN excluded.answered ELSE answered END,
                answered_at = CASE WHEN excluded.answered_at > coalesce(answered_at, x'') THEN excluded.answered_at ELSE answered_at END,
                hidden = CASE WHEN excluded.hidden_at > coalesce(hidden_at, x'') THEN excluded.hidden ELSE hidden END,
                hidden_at = CASE WHEN excluded.hidden_at > coalesce(hidden_at, x'') THEN excluded.hidden_at ELSE hidden_at END,
                approved = CASE WHEN excluded.approved_at > coalesce(approved_at, x'') THEN excluded.approved ELSE approved END,
                approved_at = CASE WHEN excluded.approved_at > coalesce(approved_at, x'') THEN excluded.approved_at ELSE approved_at END,
                spotlight = CASE WHEN excluded.spotlight_at > coalesce(spotlight_at, x'') THEN excluded.spotlight ELSE spotlight END,
                spotlight_at = CASE WHEN excluded.spotlight_at > coalesce(spotlight_at, x'') THEN excluded.spotlight_at ELSE spotlight_at END,
                reply = CASE WHEN excluded.reply_at > coalesce(reply_at, x'') THEN excluded.reply ELSE reply END,
                reply_at = CASE WHEN excluded.reply_at > coalesce(reply_at, x'') THEN excluded.reply_at ELSE reply_at END
             RETURNING eid, votes, answered, answered_at, hidden, hidden_at, approved, approved_at, spotlight, spotlight_at",
        )
        .map_err(unavailable)?;
    let mut counters = Vec::with_capacity(change.questions.len());
    for q in &change.questions {
        // Records of an event a sweep removed, folded late: nothing of it comes back.
        if shared.swept(q.event) {
            continue;
        }
        let c = upsert
            .query_row(
                params![
                    q.question.to_bytes(),
                    q.event.to_bytes(),
                    q.asked.as_ref().map(|a| a.text.as_str()),
                    q.asked.as_ref().and_then(|a| a.who.as_deref()),
                    q.votes_delta.max(0),
                    q.answered.map(|a| a.value),
                    q.answered.map(|a| a.at.to_bytes()),
                    q.hidden.map(|h| h.value),
                    q.hidden.map(|h| h.at.to_bytes()),
                    shared.expire_of(q.event) as i64,
                    q.votes_delta,
                    q.asked.as_ref().map(|a| a.asker.to_bytes()),
                    q.approved.map(|a| a.value),
                    q.approved.map(|a| a.at.to_bytes()),
                    q.spotlight.map(|s| s.value),
                    q.spotlight.map(|s| s.at.to_bytes()),
                    q.reply.as_ref().map(|r| r.value.as_str()),
                    q.reply.as_ref().map(|r| r.at.to_bytes()),
                ],
                |row| {
                    Ok((|| -> StoreResult<QuestionStanding> {
                        let event = EventId::from_bytes(crate::rows::blob16(row, 0)?);
                        Ok(QuestionStanding {
                            id: q.question,
                            event,
                            votes: row.get::<_, i64>(1).map_err(corrupt)? as u64,
                            answered: stamp(row.get(2).map_err(corrupt)?, opt_blob16(row, 3)?),
                            hidden: stamp(row.get(4).map_err(corrupt)?, opt_blob16(row, 5)?),
                            approved: stamp(row.get(6).map_err(corrupt)?, opt_blob16(row, 7)?),
                            spotlight: stamp(row.get(8).map_err(corrupt)?, opt_blob16(row, 9)?),
                        })
                    })())
                },
            )
            .map_err(|e| match e.sqlite_error_code() {
                // The CHECK (votes >= 0) constraint turns a lost or doubled record into an
                // error here instead of a silently wrong count.
                Some(rusqlite::ErrorCode::ConstraintViolation) => corrupt(format!("votes of {}: {e}", q.question)),
                _ => unavailable(e),
            })??;
        counters.push(c);
    }
    crate::event_states::commit(conn, &change.events, shared)?;
    if let Some(seq) = cursor {
        conn.prepare_cached("INSERT OR REPLACE INTO cursors (name, seq) VALUES ('aggregator', ?1)")
            .and_then(|mut s| s.execute(params![seq as i64]))
            .map_err(unavailable)?;
    }
    Ok(Done::Committed(counters))
}

fn replace(
    conn: &Connection,
    event: Option<EventId>,
    questions: &[QuestionState],
    voters: &[((QuestionId, VoterId), VoterState)],
    shared: &StoreState,
) -> StoreResult<()> {
    match event {
        Some(e) => {
            let eid = e.to_bytes();
            conn.execute("DELETE FROM voters WHERE qid IN (SELECT id FROM questions WHERE eid = ?1)", params![eid])
                .map_err(unavailable)?;
            conn.execute("DELETE FROM questions WHERE eid = ?1", params![eid]).map_err(unavailable)?;
        }
        None => {
            conn.execute_batch("DELETE FROM voters; DELETE FROM questions;").map_err(unavailable)?;
        }
    }
    let mut put_q = conn
        .prepare_cached(
            "INSERT OR REPLACE INTO questions (id, eid, text, who, votes, answered, answered_at, hidden, hidden_at, expire, asker,
                approved, approved_at, spotlight, spotlight_at, reply, reply_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
        )
        .map_err(unavailable)?;
    let mut events = rustc_hash::FxHashMap::default();
    for q in questions {
        let c = &q.standing;
        events.insert(c.id, c.event);
        put_q
            .execute(params![
                c.id.to_bytes(),
                c.event.to_bytes(),
                q.asked.as_ref().map(|a| a.text.as_str()),
                q.asked.as_ref().and_then(|a| a.who.as_deref()),
                c.votes as i64,
                c.answered.map(|s| s.value),
                c.answered.map(|s| s.at.to_bytes()),
                c.hidden.map(|s| s.value),
                c.hidden.map(|s| s.at.to_bytes()),
                shared.expire_of(c.event) as i64,
                q.asked.as_ref().map(|a| a.asker.to_bytes()),
                c.approved.map(|s| s.value),
                c.approved.map(|s| s.at.to_bytes()),
                c.spotlight.map(|s| s.value),
                c.spotlight.map(|s| s.at.to_bytes()),
                q.reply.as_ref().map(|r| r.value.as_str()),
                q.reply.as_ref().map(|r| r.at.to_bytes()),
            ])
            .map_err(unavailable)?;
    }
    let mut put_v = conn
        .prepare_cached("INSERT OR REPLACE INTO voters (qid, voter, up, rec, expire) VALUES (?1, ?2, ?3, ?4, ?5)")
        .map_err(unavailable)?;
    for ((q, voter), state) in voters {
        let event = events
            .get(q)
            .copied()
            .ok_or_else(|| StoreError::Rejected(format!("voter state for question {q} outside the replacement")))?;
        put_v
            .execute(params![
                q.to_bytes(),
                voter.to_bytes(),
                state.up,
                state.rec.to_bytes(),
                shared.expire_of(event) as i64
            ])
            .map_err(unavailable)?;
    }
    Ok(())
}

/// The highest ledger sequence number ever handed out (AUTOINCREMENT's high-water mark).
pub(crate) fn high_water(conn: &Connection) -> StoreResult<u64> {
    conn.prepare_cached("SELECT seq FROM sqlite_sequence WHERE name = 'ledger'")
        .and_then(|mut q| q.query_row([], |r| r.get::<_, i64>(0)).optional())
        .map(|s| s.unwrap_or(0).max(0) as u64)
        .map_err(unavailable)
}

fn quarantine(conn: &Connection, seq: u64, reason: &str, now_unix: u64) -> StoreResult<()> {
    let seq = i64::try_from(seq).map_err(|_| StoreError::Rejected(format!("no ledger row {seq}")))?;
    let copied = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO quarantine (seq, id, event, question, kind, reason, at)
             SELECT seq, id, event, question, kind, ?2, ?3 FROM ledger WHERE seq = ?1",
        )
        .and_then(|mut q| q.execute(params![seq, reason, i64::try_from(now_unix).unwrap_or(i64::MAX)]))
        .map_err(unavailable)?;
    if copied == 0 {
        let already: bool = conn
            .query_row("SELECT EXISTS (SELECT 1 FROM quarantine WHERE seq = ?1)", params![seq], |r| r.get(0))
            .map_err(unavailable)?;
        if !already {
            return Err(StoreError::Rejected(format!("no ledger row {seq} to set aside")));
        }
    }
    conn.prepare_cached(
        "INSERT INTO cursors (name, seq) VALUES ('aggregator', ?1)
         ON CONFLICT (name) DO UPDATE SET seq = max(seq, excluded.seq)",
    )
    .and_then(|mut q| q.execute(params![seq]))
    .map_err(unavailable)?;
    Ok(())
}

fn set_retention(conn: &Connection, retention: Retention) -> StoreResult<()> {
    conn.execute(
        "INSERT OR REPLACE INTO settings (name, value) VALUES ('retention_days', ?1)",
        params![retention.days().to_string()],
    )
    .map_err(unavailable)?;
    // Every row of an event carries the event's expiry: restamp them all, event by event.
    let events: Vec<Vec<u8>> = conn
        .prepare(
            "SELECT id FROM events UNION SELECT DISTINCT event FROM ledger UNION SELECT DISTINCT eid FROM questions",
        )
        .and_then(|mut q| q.query_map([], |r| r.get(0))?.collect())
        .map_err(unavailable)?;
    for blob in events {
        let Ok(bytes) = <[u8; 16]>::try_from(blob.as_slice()) else {
            return Err(corrupt(format!("an event id of {} bytes", blob.len())));
        };
        let expire = retention.expire_of(EventId::from_bytes(bytes)) as i64;
        for sql in [
            "UPDATE events SET expire = ?1 WHERE id = ?2",
            "UPDATE ledger SET expire = ?1 WHERE event = ?2",
            "UPDATE questions SET expire = ?1 WHERE eid = ?2",
            "UPDATE event_states SET expire = ?1 WHERE eid = ?2",
            "UPDATE cohosts SET expire = ?1 WHERE eid = ?2",
        ] {
            conn.prepare_cached(sql).and_then(|mut u| u.execute(params![expire, blob])).map_err(unavailable)?;
        }
    }
    conn.execute(
        "UPDATE voters SET expire = (SELECT q.expire FROM questions q WHERE q.id = voters.qid)
         WHERE EXISTS (SELECT 1 FROM questions q WHERE q.id = voters.qid)",
        [],
    )
    .map_err(unavailable)?;
    Ok(())
}
