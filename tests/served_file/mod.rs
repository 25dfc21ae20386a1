//! The SQLite file a stopped server left, read directly and without changing it.

#![allow(dead_code)]

use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

/// A read-only connection to the file at `db`.
pub fn open_read_only(db: &Path) -> Connection {
    Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open read-only")
}

/// The aggregator's cursor and the ledger's last sequence number (each `None` when there is
/// none yet): equal once everything in the ledger is folded.
pub fn cursor_and_last(conn: &Connection) -> (Option<i64>, Option<i64>) {
    let cursor: Option<i64> = conn
        .query_row("SELECT seq FROM cursors WHERE name = 'aggregator'", [], |r| r.get(0))
        .optional()
        .expect("read the cursor");
    let last: Option<i64> = conn.query_row("SELECT max(seq) FROM ledger", [], |r| r.get(0)).expect("read the last seq");
    (cursor, last)
}
