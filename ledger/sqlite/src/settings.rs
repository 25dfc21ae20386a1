//! What a store file must hold when it is opened: its retention (stored at creation, never
//! silently changed) and a cursor no further than the ledger's high-water mark.

use std::path::Path;

use ledger::ports::{StoreError, StoreResult};
use ledger::Retention;
use rusqlite::{params, Connection, OptionalExtension};

use crate::rows::corrupt;
use crate::{open_error, writer};

/// The retention the file keeps: stored at creation from `wanted` (or the default); an
/// existing file keeps its own, and a different `wanted` is refused with what to do instead.
pub(crate) fn settle_retention(conn: &Connection, path: &Path, wanted: Option<Retention>) -> StoreResult<Retention> {
    let stored: Option<String> = conn
        .query_row("SELECT value FROM settings WHERE name = 'retention_days'", [], |r| r.get(0))
        .optional()
        .map_err(|e| open_error(path, e))?;
    match stored {
        None => {
            let retention = wanted.unwrap_or_default();
            conn.execute(
                "INSERT INTO settings (name, value) VALUES ('retention_days', ?1)",
                params![retention.days().to_string()],
            )
            .map_err(|e| open_error(path, e))?;
            Ok(retention)
        }
        Some(text) => {
            let stored: Retention =
                text.parse().map_err(|e| corrupt(format!("{}: the stored retention {text:?}: {e}", path.display())))?;
            match wanted {
                Some(w) if w != stored => Err(StoreError::Rejected(format!(
                    "{} keeps events for {stored}, not {w}; to change it, stop the service and run \
                     `wewerewondering retention --set {} --db {}`",
                    path.display(),
                    w.days(),
                    path.display()
                ))),
                _ => Ok(stored),
            }
        }
    }
}

/// The invariant the aggregator relies on: its cursor never points past the ledger's
/// high-water mark, so every record appended from now on gets a number above it. A file
/// that breaks it (edited by hand, restored from pieces) gets its high-water mark raised to
/// the cursor, which loses nothing: numbers below the cursor are never handed out again.
pub(crate) fn check_cursor(conn: &Connection, path: &Path) -> StoreResult<()> {
    let cursor: i64 = conn
        .query_row("SELECT coalesce((SELECT seq FROM cursors WHERE name = 'aggregator'), 0)", [], |r| r.get(0))
        .map_err(|e| open_error(path, e))?;
    let high = writer::high_water(conn)? as i64;
    if cursor > high {
        tracing::warn!(
            cursor,
            high_water = high,
            "the aggregator's cursor was past the ledger's end; raising the end to it"
        );
        conn.execute("DELETE FROM sqlite_sequence WHERE name = 'ledger'", []).map_err(|e| open_error(path, e))?;
        conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('ledger', ?1)", params![cursor])
            .map_err(|e| open_error(path, e))?;
    }
    Ok(())
}
