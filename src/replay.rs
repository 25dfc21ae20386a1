//! `replay`: fold the ledger from scratch with the pure fold and compare the result with the
//! stored projection, question by question; `--repair` writes the fold's result back.
//! The SQLite ledger is read here ([`fold_ledger`]); DynamoDB reads its own
//! (`dynamodb_backend::replay`), and both compare and repair through [`reconcile`].

use std::sync::Arc;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use ledger::limits::SCAN_PAGE_RECORDS_MAX;
use ledger::ports::{ProjectionStore, Replacement, StoreResult};
use ledger::{EventId, EventState, Projection, QuestionId, QuestionState};
use ledger_sqlite::SqliteStore;

/// One question whose stored state differs from the fold's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    pub question: QuestionId,
    pub stored: Option<QuestionState>,
    pub folded: Option<QuestionState>,
}

/// One event whose own stored state (settings, co-host links) differs from the fold's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventDrift {
    pub event: EventId,
    pub stored: Option<EventState>,
    pub folded: Option<EventState>,
}

#[derive(Debug, Clone)]
pub struct ReplayReport {
    pub records: u64,
    pub questions: usize,
    pub drift: Vec<Drift>,
    /// Events whose settings or co-host links drifted.
    pub event_drift: Vec<EventDrift>,
    pub repaired: bool,
    pub fold_seconds: f64,
}

impl ReplayReport {
    pub fn records_per_second(&self) -> f64 {
        self.records as f64 / self.fold_seconds.max(1e-9)
    }
}

/// A bar of `len` records; `hidden` draws nothing but still knows `len`, which sizes the fold.
pub fn progress_bar(len: u64, hidden: bool) -> ProgressBar {
    if hidden {
        return ProgressBar::with_draw_target(Some(len), indicatif::ProgressDrawTarget::hidden());
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {msg} [{bar:40}] {human_pos}/{human_len} records ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar
}

/// How many threads read the ledger side by side while `replay` folds what they read.
const REPLAY_READERS: u64 = 2;
/// Pages read ahead of the fold, per reader, at most.
const REPLAY_PAGES_AHEAD: usize = 2;

/// Folds every record of the ledger (or of one event) with the pure fold. The sequence is
/// cut into [`REPLAY_READERS`] ranges read side by side, and pages are folded as they come:
/// the fold gives the same projection in any order, and reading, not folding, was what held
/// replay back (measured, `bench/README.md`).
pub async fn fold_ledger(
    store: &Arc<SqliteStore>,
    event: Option<EventId>,
    bar: &ProgressBar,
) -> StoreResult<(Projection, u64)> {
    let last = store.last_seq().await?;
    let (pages, mut folded) = tokio::sync::mpsc::channel(REPLAY_READERS as usize * REPLAY_PAGES_AHEAD);
    let mut readers = tokio::task::JoinSet::new();
    for part in 0..REPLAY_READERS {
        let (store, pages) = (store.clone(), pages.clone());
        let (from, until) = (last * part / REPLAY_READERS, last * (part + 1) / REPLAY_READERS);
        readers.spawn(async move {
            let mut after = from;
            while after < until {
                let page = store.scan_seq_range(event, after, Some(until), SCAN_PAGE_RECORDS_MAX).await;
                let next = match &page {
                    Ok(rows) if rows.len() == SCAN_PAGE_RECORDS_MAX => rows.last().map_or(until, |(seq, _)| *seq),
                    _ => until,
                };
                let failed = page.is_err();
                if pages.send(page).await.is_err() || failed {
                    return;
                }
                after = next;
            }
        });
    }
    drop(pages);
    let mut projection = Projection::with_capacity(bar.length().unwrap_or(0) as usize);
    let mut records = 0u64;
    while let Some(page) = folded.recv().await {
        let page = page?;
        for (_, r) in &page {
            projection.apply(r);
        }
        records += page.len() as u64;
        bar.inc(page.len() as u64);
    }
    readers.join_all().await;
    Ok((projection, records))
}

/// Compares two canonical (id-sorted) question lists.
pub fn compare(stored: &[QuestionState], folded: &[QuestionState]) -> Vec<Drift> {
    let mut drift = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < stored.len() || j < folded.len() {
        let s = stored.get(i);
        let f = folded.get(j);
        match (s, f) {
            (Some(s), Some(f)) if s.standing.id == f.standing.id => {
                if s != f {
                    drift.push(Drift { question: s.standing.id, stored: Some(s.clone()), folded: Some(f.clone()) });
                }
                i += 1;
                j += 1;
            }
            (Some(s), Some(f)) if s.standing.id < f.standing.id => {
                drift.push(Drift { question: s.standing.id, stored: Some(s.clone()), folded: None });
                i += 1;
            }
            (Some(s), None) => {
                drift.push(Drift { question: s.standing.id, stored: Some(s.clone()), folded: None });
                i += 1;
            }
            (_, Some(f)) => {
                drift.push(Drift { question: f.standing.id, stored: None, folded: Some(f.clone()) });
                j += 1;
            }
            (None, None) => break,
        }
    }
    drift
}

/// `replay` over SQLite: the fold of the ledger against the stored projection.
pub async fn replay(
    store: &Arc<SqliteStore>,
    event: Option<EventId>,
    repair: bool,
    bar: &ProgressBar,
) -> StoreResult<ReplayReport> {
    bar.set_message("folding");
    let started = Instant::now();
    let (folded, records) = fold_ledger(store, event, bar).await?;
    let fold_seconds = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    reconcile(store.as_ref(), event, &folded, records, fold_seconds, repair).await
}

/// Compares a fold of the ledger with the stored projection (of one event, or all) and,
/// with `repair`, replaces the projection by the fold. Any adapter's replay ends here.
pub async fn reconcile(
    projection: &dyn ProjectionStore,
    event: Option<EventId>,
    folded: &Projection,
    records: u64,
    fold_seconds: f64,
    repair: bool,
) -> StoreResult<ReplayReport> {
    let folded_sorted: Vec<_> =
        folded.sorted().into_iter().filter(|q| event.is_none_or(|e| q.standing.event == e)).collect();
    let mut stored = projection.questions(event).await?;
    stored.sort_by_key(|q| q.standing.id);
    let drift = compare(&stored, &folded_sorted);
    let folded_events: Vec<EventState> =
        folded.events().filter(|e| event.is_none_or(|scope| e.event == scope)).cloned().collect();
    let event_drift = compare_events(&projection.event_states(event).await?, &folded_events);
    let repaired = repair && !(drift.is_empty() && event_drift.is_empty());
    if repaired {
        let voters: Vec<_> = folded.voters().collect();
        let replacement = Replacement::new(event, &folded_sorted, &voters)?.with_events(&folded_events)?;
        projection.replace(&replacement).await?;
    }
    Ok(ReplayReport { records, questions: folded_sorted.len(), drift, event_drift, repaired, fold_seconds })
}

/// The events whose stored own state differs from the fold's (either side may lack one).
pub fn compare_events(stored: &[EventState], folded: &[EventState]) -> Vec<EventDrift> {
    let stored: std::collections::BTreeMap<EventId, &EventState> = stored.iter().map(|e| (e.event, e)).collect();
    let folded: std::collections::BTreeMap<EventId, &EventState> = folded.iter().map(|e| (e.event, e)).collect();
    let events: std::collections::BTreeSet<EventId> = stored.keys().chain(folded.keys()).copied().collect();
    events
        .into_iter()
        .filter_map(|event| {
            let (s, f) = (stored.get(&event).copied(), folded.get(&event).copied());
            (s != f).then(|| EventDrift { event, stored: s.cloned(), folded: f.cloned() })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger::ports::LedgerStore;
    use ledger::{Asked, QuestionId, Record, RecordBody, RecordId, VoterId};
    use ulid::Ulid;

    /// Reading the ledger in ranges side by side must fold every record once: a ledger of a
    /// little over two pages (so each range spans pages) folds to what the pure fold of all
    /// its records gives, and counts each record once.
    #[tokio::test]
    async fn replay_folds_every_page_of_the_ledger_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = ledger_sqlite::SqliteStore::open(dir.path().join("ledger.db"), Default::default()).expect("open");
        let event = EventId(Ulid::from_parts(1_700_000_000_000, 1));
        let questions: Vec<QuestionId> =
            (0..3).map(|i| QuestionId(Ulid::from_parts(1_700_000_000_000, 10 + i))).collect();
        let total = 2 * SCAN_PAGE_RECORDS_MAX + 7;
        let records: Vec<Record> = (0..total)
            .map(|i| {
                let voter = VoterId(Ulid::from_parts(1_700_000_000_000, 1_000 + i as u128));
                let question = questions[i % questions.len()];
                let body = if i < questions.len() {
                    RecordBody::Asked(Asked { text: format!("question {i}?"), who: None, voter })
                } else {
                    RecordBody::Voted { voter, up: i % 5 != 0 }
                };
                let id = RecordId(Ulid::from_parts(1_700_000_000_000 + i as u64, i as u128));
                Record { id, event, question, region: "test".into(), body }
            })
            .collect();
        for chunk in records.chunks(5_000) {
            store.append(chunk).await.expect("append");
        }
        let (folded, count) = fold_ledger(&store, Some(event), &ProgressBar::hidden()).await.expect("replay");
        let mut expected = Projection::default();
        for r in &records {
            expected.apply(r);
        }
        assert_eq!(count, total as u64);
        assert_eq!(folded.sorted(), expected.sorted());
        store.close().await;
    }
}
