//! `ledger export|import` (records as NDJSON, one per line) and `inspect` (one question's
//! audit trail). Import is idempotent: records are appended by id, so importing the same
//! file twice, or another region's copy of the same records, changes nothing more.

use std::io::{BufRead, Write};

use anyhow::Context;
use ledger::limits::SCAN_PAGE_RECORDS_MAX;
use ledger::ndjson;
use ledger::ports::{LedgerStore, ProjectionReader};
use ledger::{Body, EventId, Projection, QuestionId, Record};

/// How many imported records go into one append.
const IMPORT_BATCH_RECORDS: usize = 2_000;

pub async fn export(ledger: &dyn LedgerStore, event: Option<EventId>, out: &mut dyn Write) -> anyhow::Result<u64> {
    let mut after = None;
    let mut n = 0u64;
    loop {
        let page = ledger.scan(event, after, SCAN_PAGE_RECORDS_MAX).await?;
        for r in &page.records {
            writeln!(out, "{}", ndjson::to_line(r)).context("writing the export")?;
            n += 1;
        }
        match page.next {
            Some(t) => after = Some(t),
            None => break,
        }
    }
    out.flush().context("writing the export")?;
    Ok(n)
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub lines: u64,
    pub records: u64,
}

/// Reads NDJSON records and appends them. Stops at the first line that is not a record,
/// naming it; everything before that line is committed (and importing again is harmless).
pub async fn import(ledger: &dyn LedgerStore, input: &mut dyn BufRead) -> anyhow::Result<ImportReport> {
    let mut report = ImportReport::default();
    let mut batch: Vec<Record> = Vec::with_capacity(IMPORT_BATCH_RECORDS);
    let mut line = String::new();
    loop {
        line.clear();
        let read = input.read_line(&mut line).context("reading the import")?;
        if read == 0 {
            break;
        }
        report.lines += 1;
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        match ndjson::parse_line(text) {
            Ok(r) => batch.push(r),
            Err(e) => {
                ledger.append(&batch).await?;
                report.records += batch.len() as u64;
                anyhow::bail!("line {}: {e} ({} records before it were imported)", report.lines, report.records);
            }
        }
        if batch.len() == IMPORT_BATCH_RECORDS {
            ledger.append(&batch).await?;
            report.records += batch.len() as u64;
            batch.clear();
        }
    }
    ledger.append(&batch).await?;
    report.records += batch.len() as u64;
    Ok(report)
}

/// One question's records in id order, with what each did, and the fold's verdict next to
/// the stored projection.
pub async fn inspect(
    ledger: &dyn LedgerStore,
    projection: &dyn ProjectionReader,
    question: QuestionId,
    out: &mut dyn Write,
) -> anyhow::Result<bool> {
    let Some(stored) = projection.question(question).await? else {
        writeln!(out, "question {question} is not in the projection")?;
        return Ok(false);
    };
    let mut records = Vec::new();
    let mut after = None;
    loop {
        let page = ledger.scan(Some(stored.event), after, SCAN_PAGE_RECORDS_MAX).await?;
        records.extend(page.records.into_iter().filter(|r| r.question == question));
        match page.next {
            Some(t) => after = Some(t),
            None => break,
        }
    }
    records.sort_by_key(|r| r.id);
    writeln!(out, "question {question} of event {}", stored.event)?;
    let mut fold = Projection::new();
    for r in &records {
        fold.apply(r);
        let what = match &r.body {
            Body::Asked(a) => format!("asked by voter {} ({}): {:?}", a.voter, a.who.as_deref().unwrap_or("anonymous"), a.text),
            Body::Voted { voter, up } => format!("voter {voter} votes {}", if *up { "up" } else { "down" }),
            Body::Answered { on } => format!("host marks {}answered", if *on { "" } else { "not " }),
            Body::Hidden { on } => format!("host {}", if *on { "hides it" } else { "unhides it" }),
        };
        let votes = fold.question(question).map_or(0, |q| q.counters.votes);
        writeln!(out, "{}  {}  [{}]  {what}  -> votes {votes}", time_of(r.id.timestamp_ms()), r.id, r.region)?;
    }
    let folded = fold.question(question).map(|q| q.counters);
    writeln!(out, "stored projection: votes {}, answered {}, hidden {}", stored.votes, stored.answered_at().is_some(), stored.is_hidden())?;
    let agrees = folded == Some(stored);
    writeln!(out, "{}", if agrees { "the fold agrees with the projection" } else { "DRIFT: the fold disagrees with the projection" })?;
    Ok(agrees)
}

fn time_of(ms: u64) -> String {
    humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms)).to_string()
}
