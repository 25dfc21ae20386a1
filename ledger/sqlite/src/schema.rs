//! The SQLite schema and its migrations. `PRAGMA user_version` holds how many migrations
//! have run; each runs once, in order, in its own transaction. Never edit a migration that
//! has shipped: append a new one.

use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    // 1: the ledger, events, the projection and the aggregator cursor.
    r#"
    CREATE TABLE events (
        id          BLOB PRIMARY KEY,
        secret_hash BLOB NOT NULL,
        expire      INTEGER NOT NULL
    ) WITHOUT ROWID;

    -- One row per record, in append order (`seq`). `kind`: 0 asked, 1 vote, 2 answered,
    -- 3 hidden. `flag` is `up` for votes and `on` for answered/hidden.
    CREATE TABLE ledger (
        seq      INTEGER PRIMARY KEY,
        id       BLOB NOT NULL UNIQUE,
        event    BLOB NOT NULL,
        question BLOB NOT NULL,
        region   TEXT NOT NULL,
        kind     INTEGER NOT NULL,
        voter    BLOB,
        flag     INTEGER,
        text     TEXT,
        who      TEXT,
        expire   INTEGER NOT NULL
    );
    CREATE INDEX ledger_by_event ON ledger (event, seq);

    CREATE TABLE questions (
        id          BLOB PRIMARY KEY,
        eid         BLOB NOT NULL,
        text        TEXT,
        who         TEXT,
        votes       INTEGER NOT NULL DEFAULT 0 CHECK (votes >= 0),
        answered    INTEGER,
        answered_at BLOB,
        hidden      INTEGER,
        hidden_at   BLOB,
        expire      INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX questions_top ON questions (eid, votes);

    CREATE TABLE voters (
        qid    BLOB NOT NULL,
        voter  BLOB NOT NULL,
        up     INTEGER NOT NULL,
        rec    BLOB NOT NULL,
        expire INTEGER NOT NULL,
        PRIMARY KEY (qid, voter)
    ) WITHOUT ROWID;

    CREATE TABLE cursors (
        name TEXT PRIMARY KEY,
        seq  INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let current: usize = conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as usize;
    if current > SCHEMA_VERSION {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "database schema version {current} is newer than this build's {SCHEMA_VERSION}"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}
