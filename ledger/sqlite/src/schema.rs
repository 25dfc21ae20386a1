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
    // 2: write fewer pages per commit. Voters are keyed voter first: voter ids are minted in
    // time order, so one commit's new voters land on the last pages of the table instead of
    // on one page per question they voted for (measured: vote POST 19k -> 35k req/s). The
    // question index no longer holds `votes`, which changes with every batch; the ranked
    // list is served from memory and only needs an event's questions found.
    r#"
    CREATE TABLE voters_by_voter (
        voter  BLOB NOT NULL,
        qid    BLOB NOT NULL,
        up     INTEGER NOT NULL,
        rec    BLOB NOT NULL,
        expire INTEGER NOT NULL,
        PRIMARY KEY (voter, qid)
    ) WITHOUT ROWID;
    INSERT INTO voters_by_voter (voter, qid, up, rec, expire) SELECT voter, qid, up, rec, expire FROM voters;
    DROP TABLE voters;
    ALTER TABLE voters_by_voter RENAME TO voters;

    DROP INDEX questions_top;
    CREATE INDEX questions_by_event ON questions (eid);
    "#,
    // 3: a ledger sequence that is never reused. Without AUTOINCREMENT SQLite hands out
    // max(seq) + 1, so once a sweep deleted the newest rows it reused numbers the aggregator's
    // cursor had already passed, and every record appended after that was never folded.
    // The copy keeps every row and its number; the high-water mark starts at the largest of
    // the last number and the cursor. Files written before this migration may already hold
    // records numbered at or below the cursor that were never folded, and nothing tells them
    // apart: the cursor goes back to 0 and the aggregator folds the whole ledger once more,
    // which changes nothing for records already folded (the fold ignores duplicates).
    // Also new: the store's settings (its retention) and the dead letters of the aggregator.
    r#"
    CREATE TABLE ledger_v3 (
        seq      INTEGER PRIMARY KEY AUTOINCREMENT,
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
    INSERT INTO ledger_v3 (seq, id, event, question, region, kind, voter, flag, text, who, expire)
        SELECT seq, id, event, question, region, kind, voter, flag, text, who, expire FROM ledger ORDER BY seq;
    DROP TABLE ledger;
    ALTER TABLE ledger_v3 RENAME TO ledger;
    CREATE INDEX ledger_by_event ON ledger (event, seq);
    DELETE FROM sqlite_sequence WHERE name IN ('ledger', 'ledger_v3');
    INSERT INTO sqlite_sequence (name, seq) VALUES ('ledger', max(
        coalesce((SELECT max(seq) FROM ledger), 0),
        coalesce((SELECT seq FROM cursors WHERE name = 'aggregator'), 0)));
    UPDATE cursors SET seq = 0 WHERE name = 'aggregator';

    -- `retention_days`: how long every event of this store is kept (set at creation, changed
    -- only by the operator's `retention --set`).
    CREATE TABLE settings (
        name  TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) WITHOUT ROWID;

    -- Records the aggregator could not fold after repeated attempts, set aside with the
    -- reason so that every other record keeps flowing. The columns are the ledger row's,
    -- copied as stored (a row that does not parse is kept as it is).
    CREATE TABLE quarantine (
        seq          INTEGER PRIMARY KEY,
        id           BLOB,
        event        BLOB,
        question     BLOB,
        kind         INTEGER,
        reason       TEXT NOT NULL,
        at           INTEGER NOT NULL,
        acknowledged INTEGER NOT NULL DEFAULT 0
    );
    "#,
    // 4: who asked each question (a guest's own view, `GET /api/event/{eid}/mine`), filled
    // in from the ledger's asked records for the questions stored before.
    r#"
    ALTER TABLE questions ADD COLUMN asker BLOB;
    UPDATE questions SET asker = (
        SELECT voter FROM ledger WHERE ledger.question = questions.id AND ledger.kind = 0 ORDER BY seq LIMIT 1
    ) WHERE text IS NOT NULL;
    "#,
    // 5: the host's tools (design §2, §5). Per question the approval, the spotlight and the
    // written answer, each with the id of the record that set it (last writer wins); per
    // event its settings, each with its stamp, and its co-host links by their secret's hash
    // (`valid` only ever goes from 1 to 0: a revocation is final). The ledger's new kinds:
    // 4 approved, 5 spotlight, 6 reply, 7 title, 8 moderation, 9 asking, 10 blocked_words,
    // 11 cohost_minted, 12 cohost_revoked.
    r#"
    ALTER TABLE questions ADD COLUMN approved INTEGER;
    ALTER TABLE questions ADD COLUMN approved_at BLOB;
    ALTER TABLE questions ADD COLUMN spotlight INTEGER;
    ALTER TABLE questions ADD COLUMN spotlight_at BLOB;
    ALTER TABLE questions ADD COLUMN reply TEXT;
    ALTER TABLE questions ADD COLUMN reply_at BLOB;

    CREATE TABLE event_states (
        eid              BLOB PRIMARY KEY,
        title            TEXT,
        title_at         BLOB,
        moderation       INTEGER,
        moderation_at    BLOB,
        asking           INTEGER,
        asking_at        BLOB,
        blocked_words    TEXT,
        blocked_words_at BLOB,
        expire           INTEGER NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE cohosts (
        eid    BLOB NOT NULL,
        hash   BLOB NOT NULL,
        valid  INTEGER NOT NULL,
        expire INTEGER NOT NULL,
        PRIMARY KEY (eid, hash)
    ) WITHOUT ROWID;
    "#,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    migrate_to(conn, SCHEMA_VERSION)
}

fn migrate_to(conn: &mut Connection, target: usize) -> rusqlite::Result<()> {
    let current: usize = conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as usize;
    if current > SCHEMA_VERSION {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "database schema version {current} is newer than this build's {SCHEMA_VERSION}"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().take(target).skip(current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An in-memory database after the first `migrations` migrations, holding `rows`.
    fn file_at(migrations: usize, rows: &str) -> Connection {
        let mut conn = Connection::open_in_memory().expect("open");
        migrate_to(&mut conn, migrations).expect("the earlier migrations");
        conn.execute_batch(rows).expect("rows of that version");
        conn
    }

    fn version(conn: &Connection) -> i64 {
        conn.query_row("PRAGMA user_version", [], |r| r.get(0)).expect("user_version")
    }

    #[test]
    fn a_version_1_database_keeps_its_projection_through_every_migration() {
        let mut conn = file_at(
            1,
            "INSERT INTO questions (id, eid, text, votes, expire) VALUES (x'01', x'0e', 'why?', 2, 99);
             INSERT INTO voters (qid, voter, up, rec, expire) VALUES (x'01', x'a1', 1, x'f1', 99), (x'01', x'a2', 1, x'f2', 99);",
        );

        migrate(&mut conn).expect("migrate");
        assert_eq!(version(&conn), SCHEMA_VERSION as i64);
        let voters: Vec<(Vec<u8>, Vec<u8>, bool)> = conn
            .prepare("SELECT voter, qid, up FROM voters ORDER BY voter")
            .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect())
            .expect("voters");
        assert_eq!(voters, vec![(vec![0xa1], vec![0x01], true), (vec![0xa2], vec![0x01], true)]);
        let votes: i64 =
            conn.query_row("SELECT votes FROM questions WHERE eid = x'0e'", [], |r| r.get(0)).expect("question");
        assert_eq!(votes, 2);
        // Running again is a no-op, and a newer file than this build is refused.
        migrate(&mut conn).expect("idempotent");
        conn.pragma_update(None, "user_version", SCHEMA_VERSION as i64 + 1).expect("bump");
        assert!(migrate(&mut conn).is_err());
    }

    #[test]
    fn migration_4_fills_in_each_stored_questions_asker_from_its_asked_record() {
        let mut conn = file_at(
            3,
            "INSERT INTO ledger (id, event, question, region, kind, voter, flag, text, expire) VALUES
                (x'01', x'0e', x'0a', 'r', 1, x'b2', 1, NULL, 99),
                (x'02', x'0e', x'0a', 'r', 0, x'a1', NULL, 'why?', 99);
             INSERT INTO questions (id, eid, text, votes, expire) VALUES (x'0a', x'0e', 'why?', 2, 99);
             INSERT INTO questions (id, eid, votes, expire) VALUES (x'0b', x'0e', 1, 99);",
        );
        migrate(&mut conn).expect("migrate");
        let askers: Vec<(Vec<u8>, Option<Vec<u8>>)> = conn
            .prepare("SELECT id, asker FROM questions ORDER BY id")
            .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
            .expect("questions");
        assert_eq!(askers, vec![(vec![0x0a], Some(vec![0xa1])), (vec![0x0b], None)], "the asker, not the voter");
    }

    #[test]
    fn migration_3_keeps_every_record_and_never_reuses_a_number_the_cursor_passed() {
        // A version-2 file after a sweep removed the newest rows and numbers were reused:
        // the cursor (20) is past the last row (3), whose records were never folded.
        let mut conn = file_at(
            2,
            "INSERT INTO ledger (seq, id, event, question, region, kind, voter, flag, expire) VALUES
                (1, x'01', x'0e', x'0a', 'r', 1, x'a1', 1, 99),
                (3, x'03', x'0e', x'0a', 'r', 1, x'a2', 1, 99);
             INSERT INTO cursors (name, seq) VALUES ('aggregator', 20);",
        );
        migrate(&mut conn).expect("migrate");
        let seqs: Vec<i64> = conn
            .prepare("SELECT seq FROM ledger ORDER BY seq")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .expect("rows");
        assert_eq!(seqs, vec![1, 3], "every row kept with its number");
        let cursor: i64 =
            conn.query_row("SELECT seq FROM cursors WHERE name = 'aggregator'", [], |r| r.get(0)).expect("cursor");
        assert_eq!(cursor, 0, "the whole ledger is folded once more");
        conn.execute(
            "INSERT INTO ledger (id, event, question, region, kind, expire) VALUES (x'04', x'0e', x'0a', 'r', 2, 99)",
            [],
        )
        .expect("append");
        assert_eq!(conn.last_insert_rowid(), 21, "the next number is above the old cursor");
        conn.execute("DELETE FROM ledger WHERE seq = 21", []).expect("sweep the newest");
        conn.execute(
            "INSERT INTO ledger (id, event, question, region, kind, expire) VALUES (x'05', x'0e', x'0a', 'r', 2, 99)",
            [],
        )
        .expect("append");
        assert_eq!(conn.last_insert_rowid(), 22, "a swept number is not handed out again");
    }
}
