//! The storage ports over the SQLite file: writes go to the single writer thread
//! (`writer.rs`), hot reads to the in-memory mirror the writer keeps, the rest to a pooled
//! reader connection.

use async_trait::async_trait;
use ledger::ports::{
    Commit, EventRow, EventStore, LedgerStore, ProjectionReader, ProjectionStore, QuestionText, Replacement, ScanPage,
    ScanToken, StoreError, StoreResult, VoterView,
};
use ledger::{
    AskedView, BatchPlan, EventId, EventState, ProjectionChange, QuestionId, QuestionStanding, QuestionState, Record,
    RecordId, Stamped, VoterId, VoterStates,
};
use rusqlite::{params, OptionalExtension};

use crate::rows::{blob16, corrupt, opt_blob16};
use crate::shared::{standing_from_row, STANDING_COLUMNS};
use crate::writer::Command;
use crate::{unavailable, SqliteStore};

#[async_trait]
impl EventStore for SqliteStore {
    async fn create_event(&self, event: &EventRow) -> StoreResult<()> {
        let row = event.clone();
        self.send(|reply| Command::CreateEvent { row, reply }).await
    }

    async fn event(&self, id: EventId) -> StoreResult<Option<EventRow>> {
        if let Some(row) = self.shared.events.read().get(&id) {
            return Ok(Some(row.clone()));
        }
        let found = self
            .read(move |c| {
                c.query_row("SELECT secret_hash, expire FROM events WHERE id = ?1", params![id.to_bytes()], |r| {
                    Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?))
                })
                .optional()
                .map_err(unavailable)
            })
            .await?;
        let Some((hash, expire)) = found else { return Ok(None) };
        let secret_hash = hash.try_into().map_err(|_| corrupt(format!("secret hash of event {id}")))?;
        let row = EventRow { id, secret_hash, expire_unix: expire as u64 };
        // Events never change once created, so a found one can be remembered for good.
        self.shared.events.write().insert(id, row.clone());
        Ok(Some(row))
    }
}

#[async_trait]
impl LedgerStore for SqliteStore {
    async fn append(&self, records: &[Record]) -> StoreResult<()> {
        if records.is_empty() {
            return Ok(());
        }
        let records = records.to_vec();
        self.send(|reply| Command::Append { records, reply }).await
    }

    async fn scan(&self, event: Option<EventId>, after: Option<ScanToken>, limit: usize) -> StoreResult<ScanPage> {
        let after: u64 = match after {
            None => 0,
            Some(ScanToken(t)) => t.parse().map_err(|_| StoreError::Rejected(format!("bad scan token {t:?}")))?,
        };
        let limit = limit.clamp(1, ledger::limits::SCAN_PAGE_RECORDS_MAX);
        let rows = self.scan_seq_range(event, after, None, limit).await?;
        let next = if rows.len() == limit { rows.last().map(|(seq, _)| ScanToken(seq.to_string())) } else { None };
        Ok(ScanPage { records: rows.into_iter().map(|(_, r)| r).collect(), next })
    }

    async fn count(&self, event: Option<EventId>) -> StoreResult<u64> {
        self.read(move |c| {
            let n: i64 = match event {
                Some(e) => {
                    c.query_row("SELECT COUNT(*) FROM ledger WHERE event = ?1", params![e.to_bytes()], |r| r.get(0))
                }
                None => c.query_row("SELECT COUNT(*) FROM ledger", [], |r| r.get(0)),
            }
            .map_err(unavailable)?;
            Ok(n as u64)
        })
        .await
    }
}

#[async_trait]
impl ProjectionStore for SqliteStore {
    async fn voters(&self, keys: &[(QuestionId, VoterId)]) -> StoreResult<VoterStates> {
        let keys = keys.to_vec();
        self.read(move |c| crate::rows::read_voters(c, &keys)).await
    }

    async fn resolve_and_commit(&self, plan: &BatchPlan, cursor: Option<u64>) -> StoreResult<Option<ProjectionChange>> {
        let plan = plan.clone();
        self.send(|reply| Command::Fold { plan, cursor, reply }).await.map(Some)
    }

    async fn commit(&self, change: &ProjectionChange, cursor: Option<u64>) -> StoreResult<Commit> {
        let change = change.clone();
        self.send(|reply| Command::Commit { change, cursor, reply }).await
    }

    async fn cursor(&self) -> StoreResult<u64> {
        self.read(|c| {
            c.query_row("SELECT seq FROM cursors WHERE name = 'aggregator'", [], |r| r.get::<_, i64>(0))
                .optional()
                .map(|s| s.unwrap_or(0) as u64)
                .map_err(unavailable)
        })
        .await
    }

    async fn questions(&self, event: Option<EventId>) -> StoreResult<Vec<QuestionState>> {
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT {STANDING_COLUMNS}, text, who, asker, reply, reply_at FROM questions
                     WHERE ?1 IS NULL OR eid = ?1 ORDER BY id"
                ))
                .map_err(unavailable)?;
            let mut rows = stmt.query(params![event.map(|e| e.to_bytes())]).map_err(unavailable)?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(unavailable)? {
                let standing = standing_from_row(row, 0)?;
                let text: Option<String> = row.get(11).map_err(corrupt)?;
                let who: Option<String> = row.get(12).map_err(corrupt)?;
                // No asker: a question stored before askers were (and no asked record found).
                let asker = opt_blob16(row, 13)?.map_or(VoterId::from_u128(0), VoterId::from_bytes);
                let reply_text: Option<String> = row.get(14).map_err(corrupt)?;
                let reply = match (reply_text, opt_blob16(row, 15)?) {
                    (Some(value), Some(at)) => Some(Stamped { value, at: RecordId::from_bytes(at) }),
                    _ => None,
                };
                out.push(QuestionState { standing, asked: text.map(|text| AskedView { text, who, asker }), reply });
            }
            Ok(out)
        })
        .await
    }

    async fn replace(&self, replacement: &Replacement<'_>) -> StoreResult<()> {
        let (event, questions, voters, events) = (
            replacement.event(),
            replacement.questions().to_vec(),
            replacement.voters().to_vec(),
            replacement.events().to_vec(),
        );
        self.send(|reply| Command::Replace { event, questions, voters, events, reply }).await
    }

    async fn event_states(&self, event: Option<EventId>) -> StoreResult<Vec<EventState>> {
        self.read(move |c| crate::event_states::read_all(c, event)).await
    }
}

#[async_trait]
impl ProjectionReader for SqliteStore {
    async fn event_questions(&self, event: EventId) -> StoreResult<Vec<QuestionStanding>> {
        let m = self.shared.counters.read();
        Ok(m.by_event
            .get(&event)
            .map(|ids| ids.iter().filter_map(|id| m.questions.get(id).copied()).collect())
            .unwrap_or_default())
    }

    async fn question(&self, id: QuestionId) -> StoreResult<Option<QuestionStanding>> {
        Ok(self.shared.counters.read().questions.get(&id).copied())
    }

    async fn question_texts(&self, ids: &[QuestionId]) -> StoreResult<Vec<QuestionText>> {
        let ids = ids.to_vec();
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached("SELECT eid, text, who FROM questions WHERE id = ?1 AND text IS NOT NULL")
                .map_err(unavailable)?;
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                let found = stmt
                    .query_row(params![id.to_bytes()], |r| {
                        Ok((blob16(r, 0), r.get::<_, String>(1)?, r.get::<_, Option<String>>(2)?))
                    })
                    .optional()
                    .map_err(unavailable)?;
                if let Some((event, text, who)) = found {
                    out.push(QuestionText { id, event: EventId::from_bytes(event?), text, who });
                }
            }
            Ok(out)
        })
        .await
    }

    async fn event_state(&self, event: EventId) -> StoreResult<EventState> {
        self.read(move |c| crate::event_states::read(c, event)).await
    }

    async fn askers(&self, ids: &[QuestionId]) -> StoreResult<Vec<(QuestionId, VoterId)>> {
        let ids = ids.to_vec();
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached("SELECT asker FROM questions WHERE id = ?1 AND asker IS NOT NULL")
                .map_err(unavailable)?;
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                let found =
                    stmt.query_row(params![id.to_bytes()], |r| Ok(blob16(r, 0))).optional().map_err(unavailable)?;
                if let Some(asker) = found {
                    out.push((id, VoterId::from_bytes(asker?)));
                }
            }
            Ok(out)
        })
        .await
    }

    async fn replies(&self, event: EventId) -> StoreResult<Vec<(QuestionId, String)>> {
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached("SELECT id, reply FROM questions WHERE eid = ?1 AND reply IS NOT NULL AND reply != ''")
                .map_err(unavailable)?;
            let mut rows = stmt.query(params![event.to_bytes()]).map_err(unavailable)?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(unavailable)? {
                out.push((QuestionId::from_bytes(blob16(row, 0)?), row.get::<_, String>(1).map_err(corrupt)?));
            }
            Ok(out)
        })
        .await
    }

    async fn voter_view(&self, event: EventId, voter: VoterId) -> StoreResult<VoterView> {
        self.read(move |c| {
            let ids = |sql: &str| -> StoreResult<Vec<QuestionId>> {
                let mut stmt = c.prepare_cached(sql).map_err(unavailable)?;
                let mut rows = stmt.query(params![event.to_bytes(), voter.to_bytes()]).map_err(unavailable)?;
                let mut out = Vec::new();
                while let Some(row) = rows.next().map_err(unavailable)? {
                    out.push(QuestionId::from_bytes(blob16(row, 0)?));
                }
                Ok(out)
            };
            Ok(VoterView {
                asked: ids("SELECT id FROM questions WHERE eid = ?1 AND asker = ?2 ORDER BY id")?,
                voted: ids("SELECT voters.qid FROM voters JOIN questions ON questions.id = voters.qid
                     WHERE voters.voter = ?2 AND voters.up = 1 AND questions.eid = ?1 ORDER BY voters.qid")?,
            })
        })
        .await
    }
}
