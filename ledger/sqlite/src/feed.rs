//! The embedded aggregator's feed: the ledger in sequence order (from memory when the latest
//! appends are there), and the quarantine of rows it could not fold.

use async_trait::async_trait;
use ledger::ports::{FeedEntry, LedgerFeed, Quarantined, StoreResult};
use rusqlite::params;

use crate::rows::{blob16, corrupt, record_from_row, LEDGER_COLUMNS};
use crate::writer::Command;
use crate::{unavailable, SqliteStore};

#[async_trait]
impl LedgerFeed for SqliteStore {
    async fn read_after(&self, seq: u64, limit: usize) -> StoreResult<Vec<FeedEntry>> {
        if let Some(rows) = self.shared.recent_after(seq, limit) {
            return Ok(rows.into_iter().map(|(seq, r)| FeedEntry { seq, record: Ok(r) }).collect());
        }
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(&format!("SELECT {LEDGER_COLUMNS} FROM ledger WHERE seq > ?1 ORDER BY seq LIMIT ?2"))
                .map_err(unavailable)?;
            let mut rows = stmt.query(params![seq as i64, limit as i64]).map_err(unavailable)?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(unavailable)? {
                // A row that does not read as a record is handed on as such, to be set aside.
                let seq: i64 = row.get(0).map_err(corrupt)?;
                let record = record_from_row(row).map(|(_, r)| r).map_err(|e| e.to_string());
                out.push(FeedEntry { seq: seq.max(0) as u64, record });
            }
            Ok(out)
        })
        .await
    }

    async fn quarantine(&self, seq: u64, reason: &str, now_unix: u64) -> StoreResult<()> {
        let reason = reason.to_owned();
        self.send(|reply| Command::Quarantine { seq, reason, now_unix, reply }).await
    }

    async fn quarantined(&self) -> StoreResult<Vec<Quarantined>> {
        self.read(|c| {
            let mut stmt = c
                .prepare("SELECT seq, id, event, question, kind, reason, at, acknowledged FROM quarantine ORDER BY seq")
                .map_err(unavailable)?;
            let mut rows = stmt.query([]).map_err(unavailable)?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(unavailable)? {
                let id = |i| blob16(row, i).ok().map(|b| ledger::RecordId::from_bytes(b).to_string());
                out.push(Quarantined {
                    seq: row.get::<_, i64>(0).map_err(corrupt)?.max(0) as u64,
                    record: id(1),
                    event: id(2),
                    question: id(3),
                    kind: row.get::<_, Option<i64>>(4).ok().flatten().map(crate::rows::kind_name),
                    reason: row.get(5).map_err(corrupt)?,
                    at_unix: row.get::<_, i64>(6).map_err(corrupt)?.max(0) as u64,
                    acknowledged: row.get(7).map_err(corrupt)?,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn acknowledge_quarantined(&self) -> StoreResult<u64> {
        self.send(|reply| Command::AcknowledgeQuarantined { reply }).await
    }
}
