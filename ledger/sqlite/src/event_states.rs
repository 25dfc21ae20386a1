//! The events' own part of the projection (design §5): each event's settings with their
//! stamps (`event_states`) and its co-host links by hash (`cohosts`). Written only by the
//! writer thread, which reads the stored state, joins the change in by the fold's one rule
//! (`EventState::merge`) and writes the result, so nothing can slip in between.

use std::collections::BTreeMap;

use ledger::ports::StoreResult;
use ledger::{Asking, EventId, EventState, Moderation, RecordId, Stamped};
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::rows::{blob16, corrupt, opt_blob16, words_from_text};
use crate::shared::StoreState;
use crate::unavailable;

const COLUMNS: &str =
    "eid, title, title_at, moderation, moderation_at, asking, asking_at, blocked_words, blocked_words_at";

fn stamped<T>(value: Option<T>, at: Option<[u8; 16]>) -> Option<Stamped<T>> {
    match (value, at) {
        (Some(value), Some(at)) => Some(Stamped { value, at: RecordId::from_bytes(at) }),
        _ => None,
    }
}

fn state_from_row(row: &Row<'_>) -> StoreResult<EventState> {
    let event = EventId::from_bytes(blob16(row, 0)?);
    let mut state = EventState::new(event);
    state.title = stamped(row.get::<_, Option<String>>(1).map_err(corrupt)?, opt_blob16(row, 2)?);
    let moderation = row.get::<_, Option<bool>>(3).map_err(corrupt)?;
    state.moderation =
        stamped(moderation.map(|pre| if pre { Moderation::PreApprove } else { Moderation::Off }), opt_blob16(row, 4)?);
    let asking = row.get::<_, Option<bool>>(5).map_err(corrupt)?;
    state.asking =
        stamped(asking.map(|closed| if closed { Asking::Closed } else { Asking::Open }), opt_blob16(row, 6)?);
    let words = row.get::<_, Option<String>>(7).map_err(corrupt)?;
    state.blocked_words = stamped(words.as_deref().map(words_from_text), opt_blob16(row, 8)?);
    Ok(state)
}

fn cohosts_of(conn: &Connection, event: EventId) -> StoreResult<BTreeMap<ledger::secret::SecretHash, bool>> {
    let mut stmt = conn.prepare_cached("SELECT hash, valid FROM cohosts WHERE eid = ?1").map_err(unavailable)?;
    let mut rows = stmt.query(params![event.to_bytes()]).map_err(unavailable)?;
    let mut out = BTreeMap::new();
    while let Some(row) = rows.next().map_err(unavailable)? {
        let hash: Vec<u8> = row.get(0).map_err(corrupt)?;
        let hash = hash.try_into().map_err(|_| corrupt(format!("a co-host hash of event {event}")))?;
        out.insert(hash, row.get::<_, bool>(1).map_err(corrupt)?);
    }
    Ok(out)
}

/// One event's own state as stored (empty when it has none).
pub(crate) fn read(conn: &Connection, event: EventId) -> StoreResult<EventState> {
    let found = conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM event_states WHERE eid = ?1"))
        .and_then(|mut s| s.query_row(params![event.to_bytes()], |row| Ok(state_from_row(row))).optional())
        .map_err(unavailable)?
        .transpose()?;
    let mut state = found.unwrap_or_else(|| EventState::new(event));
    state.cohosts = cohosts_of(conn, event)?;
    Ok(state)
}

/// Every stored event state (or one event's), in event order; events without any are absent.
pub(crate) fn read_all(conn: &Connection, event: Option<EventId>) -> StoreResult<Vec<EventState>> {
    let mut ids: Vec<EventId> = Vec::new();
    for sql in [
        "SELECT eid FROM event_states WHERE ?1 IS NULL OR eid = ?1",
        "SELECT DISTINCT eid FROM cohosts WHERE ?1 IS NULL OR eid = ?1",
    ] {
        let mut stmt = conn.prepare_cached(sql).map_err(unavailable)?;
        let mut rows = stmt.query(params![event.map(|e| e.to_bytes())]).map_err(unavailable)?;
        while let Some(row) = rows.next().map_err(unavailable)? {
            ids.push(EventId::from_bytes(blob16(row, 0)?));
        }
    }
    ids.sort();
    ids.dedup();
    ids.into_iter().map(|e| read(conn, e)).collect()
}

fn write(conn: &Connection, state: &EventState, expire: i64) -> StoreResult<()> {
    let at = |s: Option<RecordId>| s.map(|at| at.to_bytes());
    conn.prepare_cached(&format!(
        "INSERT OR REPLACE INTO event_states ({COLUMNS}, expire) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
    ))
    .and_then(|mut s| {
        s.execute(params![
            state.event.to_bytes(),
            state.title.as_ref().map(|t| t.value.as_str()),
            at(state.title.as_ref().map(|t| t.at)),
            state.moderation.map(|m| m.value == Moderation::PreApprove),
            at(state.moderation.map(|m| m.at)),
            state.asking.map(|a| a.value == Asking::Closed),
            at(state.asking.map(|a| a.at)),
            state.blocked_words.as_ref().map(|w| w.value.join("\n")),
            at(state.blocked_words.as_ref().map(|w| w.at)),
            expire,
        ])
    })
    .map_err(unavailable)?;
    let mut put = conn
        .prepare_cached(
            "INSERT INTO cohosts (eid, hash, valid, expire) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (eid, hash) DO UPDATE SET valid = valid AND excluded.valid",
        )
        .map_err(unavailable)?;
    for (hash, valid) in &state.cohosts {
        put.execute(params![state.event.to_bytes(), &hash[..], valid, expire]).map_err(unavailable)?;
    }
    Ok(())
}

/// Joins each event's part of a change into what is stored.
pub(crate) fn commit(conn: &Connection, changes: &[EventState], shared: &StoreState) -> StoreResult<()> {
    for change in changes {
        if shared.swept(change.event) {
            continue;
        }
        let mut stored = read(conn, change.event)?;
        stored.merge(change);
        write(conn, &stored, shared.expire_of(change.event) as i64)?;
    }
    Ok(())
}

/// Replaces the stored event states (all, or one event's) with a fold's.
pub(crate) fn replace(
    conn: &Connection,
    event: Option<EventId>,
    states: &[EventState],
    shared: &StoreState,
) -> StoreResult<()> {
    let scope = event.map(|e| e.to_bytes());
    conn.execute("DELETE FROM event_states WHERE ?1 IS NULL OR eid = ?1", params![scope]).map_err(unavailable)?;
    conn.execute("DELETE FROM cohosts WHERE ?1 IS NULL OR eid = ?1", params![scope]).map_err(unavailable)?;
    for state in states {
        write(conn, state, shared.expire_of(state.event) as i64)?;
    }
    Ok(())
}

/// Removes what the sweep's events step took away with their events.
pub(crate) fn sweep(conn: &Connection, events: &[EventId]) -> StoreResult<u64> {
    let mut removed = 0;
    for e in events {
        for sql in ["DELETE FROM event_states WHERE eid = ?1", "DELETE FROM cohosts WHERE eid = ?1"] {
            removed +=
                conn.prepare_cached(sql).and_then(|mut d| d.execute(params![e.to_bytes()])).map_err(unavailable)?
                    as u64;
        }
    }
    Ok(removed)
}
