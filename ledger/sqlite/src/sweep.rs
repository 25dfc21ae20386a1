//! Sweeping expired events out of the store in small steps: each step examines at most
//! [`SWEEP_CHUNK_ROWS`] rows of one table in key order and is its own writer command, so a
//! write queued behind a sweep waits for one step, never for the whole sweep.

use ledger::ports::StoreResult;
use ledger::{EventId, QuestionId};
use rusqlite::{params, Connection, OptionalExtension};

use crate::rows::blob16;
use crate::unavailable;
use crate::writer::high_water;

/// How many rows one sweep step examines at most: a few milliseconds of the writer's time.
pub const SWEEP_CHUNK_ROWS: i64 = 2_000;

/// Where a sweep goes on from: the table, and the last key the previous step examined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SweepPosition {
    Ledger { after_seq: i64 },
    Voters { after: Option<(Vec<u8>, Vec<u8>)> },
    Questions { after: Option<Vec<u8>> },
    Events { after: Option<Vec<u8>> },
}

impl SweepPosition {
    pub const START: SweepPosition = SweepPosition::Ledger { after_seq: 0 };
}

/// What one sweep step removed, and where the next one starts (`None`: the sweep is done).
#[derive(Debug, Clone, Default)]
pub struct SweepStep {
    pub removed: u64,
    pub next: Option<SweepPosition>,
    pub(crate) questions: Vec<(QuestionId, EventId)>,
    pub(crate) events: Vec<EventId>,
}

pub(crate) fn sweep_chunk(conn: &Connection, now_unix: u64, from: &SweepPosition) -> StoreResult<SweepStep> {
    let now = i64::try_from(now_unix).unwrap_or(i64::MAX);
    let mut step = SweepStep::default();
    match from {
        SweepPosition::Ledger { after_seq } => {
            let until = after_seq.saturating_add(SWEEP_CHUNK_ROWS);
            step.removed = conn
                .prepare_cached("DELETE FROM ledger WHERE seq > ?1 AND seq <= ?2 AND expire < ?3")
                .and_then(|mut d| d.execute(params![after_seq, until, now]))
                .map_err(unavailable)? as u64;
            let last = high_water(conn)?;
            step.next = Some(if until < last as i64 {
                SweepPosition::Ledger { after_seq: until }
            } else {
                SweepPosition::Voters { after: None }
            });
        }
        SweepPosition::Voters { after } => {
            let (v0, q0) = after.clone().unwrap_or_default();
            // The last key of this chunk (none: the chunk runs to the end of the table).
            let end: Option<(Vec<u8>, Vec<u8>)> = conn
                .prepare_cached(
                    "SELECT voter, qid FROM voters WHERE (voter, qid) > (?1, ?2) ORDER BY voter, qid LIMIT 1 OFFSET ?3",
                )
                .and_then(|mut q| {
                    q.query_row(params![v0, q0, SWEEP_CHUNK_ROWS - 1], |r| Ok((r.get(0)?, r.get(1)?))).optional()
                })
                .map_err(unavailable)?;
            let (v1, q1) = end.clone().unwrap_or_default();
            step.removed = conn
                .prepare_cached(
                    "DELETE FROM voters WHERE (voter, qid) > (?1, ?2) AND (?5 OR (voter, qid) <= (?3, ?4)) AND expire < ?6",
                )
                .and_then(|mut d| d.execute(params![v0, q0, v1, q1, end.is_none(), now]))
                .map_err(unavailable)? as u64;
            step.next =
                Some(go_on(end, |after| SweepPosition::Voters { after }, SweepPosition::Questions { after: None }));
        }
        SweepPosition::Questions { after } => {
            let questions = &mut step.questions;
            let end = sweep_by_id(conn, "questions", "id, eid", after, now, |row| {
                questions.push((QuestionId::from_bytes(blob16(row, 0)?), EventId::from_bytes(blob16(row, 1)?)));
                Ok(())
            })?;
            step.removed = step.questions.len() as u64;
            step.next =
                Some(go_on(end, |after| SweepPosition::Questions { after }, SweepPosition::Events { after: None }));
        }
        SweepPosition::Events { after } => {
            let events = &mut step.events;
            let end = sweep_by_id(conn, "events", "id", after, now, |row| {
                events.push(EventId::from_bytes(blob16(row, 0)?));
                Ok(())
            })?;
            step.removed = step.events.len() as u64;
            crate::event_states::sweep(conn, &step.events)?;
            step.next = end.map(|key| SweepPosition::Events { after: Some(key) });
        }
    }
    Ok(step)
}

/// Where a sweep goes on after a step through one table that ended at `end`: that table
/// again after `end`, or `next` (the following table, from its start) once the step
/// reached the table's end.
fn go_on<K>(end: Option<K>, same: impl FnOnce(Option<K>) -> SweepPosition, next: SweepPosition) -> SweepPosition {
    match end {
        Some(key) => same(Some(key)),
        None => next,
    }
}

/// One step through a table keyed by `id` (`questions`, `events`): deletes the expired rows
/// among the next [`SWEEP_CHUNK_ROWS`] after `after`, handing each deleted row's `returning`
/// columns to `deleted`. Returns the step's last key (`None`: the step reached the table's end).
fn sweep_by_id(
    conn: &Connection,
    table: &'static str,
    returning: &'static str,
    after: &Option<Vec<u8>>,
    now: i64,
    mut deleted: impl FnMut(&rusqlite::Row<'_>) -> StoreResult<()>,
) -> StoreResult<Option<Vec<u8>>> {
    let from = after.clone().unwrap_or_default();
    let end: Option<Vec<u8>> = conn
        .prepare_cached(&format!("SELECT id FROM {table} WHERE id > ?1 ORDER BY id LIMIT 1 OFFSET ?2"))
        .and_then(|mut q| q.query_row(params![from, SWEEP_CHUNK_ROWS - 1], |r| r.get(0)).optional())
        .map_err(unavailable)?;
    let mut delete = conn
        .prepare_cached(&format!(
            "DELETE FROM {table} WHERE id > ?1 AND (?3 OR id <= ?2) AND expire < ?4 RETURNING {returning}"
        ))
        .map_err(unavailable)?;
    let mut rows =
        delete.query(params![from, end.clone().unwrap_or_default(), end.is_none(), now]).map_err(unavailable)?;
    while let Some(row) = rows.next().map_err(unavailable)? {
        deleted(row)?;
    }
    Ok(end)
}
