//! `ledger export|import` (records as NDJSON, one per line) and `inspect` (one question's
//! audit trail). Import is idempotent: records are appended by id, so importing the same
//! file twice, or another region's copy of the same records, changes nothing more.

use std::io::{BufRead, Write};

use std::collections::HashMap;

use anyhow::Context;
use ledger::limits::{QUESTIONS_PER_EVENT_MAX, RECORD_FUTURE_SKEW_MS_MAX, SCAN_PAGE_RECORDS_MAX};
use ledger::ndjson::{self, Line};
use ledger::ports::{EventRow, EventStore, LedgerFeed, LedgerStore, ProjectionReader};
use ledger::retention::is_live;
use ledger::{rules, EventId, Projection, QuestionId, Record, RecordBody, Retention};

/// How many imported records go into one append.
const IMPORT_BATCH_RECORDS: usize = 2_000;

/// Writes the records (of one event, or all) as NDJSON, each event's line (its id and
/// secret hash, as stored) before its first record, so that an import elsewhere can create
/// the event. Returns how many records were written.
pub async fn export(
    events: &dyn EventStore,
    ledger: &dyn LedgerStore,
    event: Option<EventId>,
    out: &mut dyn Write,
) -> anyhow::Result<u64> {
    let mut after = None;
    let mut n = 0u64;
    let mut written = std::collections::HashSet::new();
    loop {
        let page = ledger.scan(event, after, SCAN_PAGE_RECORDS_MAX).await?;
        for r in &page.records {
            if written.insert(r.event) {
                if let Some(row) = events.event(r.event).await? {
                    writeln!(out, "{}", ndjson::event_line(row.id, &row.secret_hash)).context("writing the export")?;
                }
            }
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
    /// Records that passed every rule (those already stored are skipped by the store).
    pub records: u64,
    pub events_created: u64,
    /// Every refused line: its number and why.
    pub refused: Vec<(u64, String)>,
}

/// Where an import goes and by which rules: the store's ports, its retention, and the time
/// the rules are applied at.
pub struct ImportTarget<'a> {
    pub events: &'a dyn EventStore,
    pub ledger: &'a dyn LedgerStore,
    pub projection: &'a dyn ProjectionReader,
    pub retention: Retention,
    pub now_ms: u64,
}

/// What the import knows of one event: when it expires, and its questions so far.
struct KnownEvent {
    expire_unix: u64,
    questions: usize,
}

/// Reads NDJSON lines (event lines and records, as `ledger export` writes them) and appends
/// every record that passes the rules ingest applies: a known kind with all its fields; the
/// record's own rules (`ledger::rules::check_record`: texts, names, regions, no id from the
/// future or before its event); its event known to the store or created by an earlier line
/// of the same file, and not expired; each question in one event only; no event past
/// [`QUESTIONS_PER_EVENT_MAX`] questions. A refused line is reported with its number and
/// reason and changes nothing; every other line is imported. Records already stored are
/// skipped by the store, never overwritten.
pub async fn import(target: &ImportTarget<'_>, input: &mut dyn BufRead) -> anyhow::Result<ImportReport> {
    let mut report = ImportReport::default();
    let mut batch: Vec<Record> = Vec::with_capacity(IMPORT_BATCH_RECORDS);
    let mut events: HashMap<EventId, Option<KnownEvent>> = HashMap::new();
    let mut questions: HashMap<QuestionId, EventId> = HashMap::new();
    let now_unix = target.now_ms / 1_000;
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
        let verdict = match ndjson::parse_any(text) {
            Err(e) => Err(e.to_string()),
            Ok(Line::Event { event, secret_hash }) => {
                import_event(target, &mut events, event, secret_hash, now_unix).await.map(|created| {
                    report.events_created += u64::from(created);
                })
            }
            Ok(Line::Record(record)) => match admit(target, &mut events, &mut questions, &record, now_unix).await {
                Ok(()) => {
                    batch.push(record);
                    Ok(())
                }
                Err(e) => Err(e),
            },
        };
        if let Err(reason) = verdict {
            report.refused.push((report.lines, reason));
        }
        if batch.len() == IMPORT_BATCH_RECORDS {
            target.ledger.append(&batch).await?;
            report.records += batch.len() as u64;
            batch.clear();
        }
    }
    target.ledger.append(&batch).await?;
    report.records += batch.len() as u64;
    Ok(report)
}

/// Creates the event of an event line unless the store has it; refuses one that exists
/// with another secret, or that has expired.
async fn import_event(
    target: &ImportTarget<'_>,
    events: &mut HashMap<EventId, Option<KnownEvent>>,
    event: EventId,
    secret_hash: ledger::secret::SecretHash,
    now_unix: u64,
) -> Result<bool, String> {
    if event.timestamp_ms() > target.now_ms.saturating_add(RECORD_FUTURE_SKEW_MS_MAX) {
        return Err(format!("event {event} is from the future"));
    }
    let expire_unix = target.retention.expire_of(event);
    if !is_live(expire_unix, now_unix) {
        // Its records are refused as expired too, not as of an unknown event.
        events.insert(event, Some(KnownEvent { expire_unix, questions: 0 }));
        return Err(format!(
            "event {event} expired at {} (retention {})",
            time_of(expire_unix * 1_000),
            target.retention
        ));
    }
    let stored = target.events.event(event).await.map_err(|e| format!("cannot read event {event}: {e}"))?;
    let created = match stored {
        Some(row) if row.secret_hash != secret_hash => {
            return Err(format!("event {event} exists here with another secret"))
        }
        Some(_) => false,
        None => {
            let row = EventRow { id: event, secret_hash, expire_unix };
            target.events.create_event(&row).await.map_err(|e| format!("cannot create event {event}: {e}"))?;
            true
        }
    };
    let known =
        target.projection.event_questions(event).await.map_err(|e| format!("cannot read event {event}: {e}"))?;
    events.insert(event, Some(KnownEvent { expire_unix, questions: known.len() }));
    Ok(created)
}

/// Applies the rules to one record; on success it is counted against its event's limit.
async fn admit(
    target: &ImportTarget<'_>,
    events: &mut HashMap<EventId, Option<KnownEvent>>,
    questions: &mut HashMap<QuestionId, EventId>,
    record: &Record,
    now_unix: u64,
) -> Result<(), String> {
    rules::check_record(record, target.now_ms).map_err(|e| e.to_string())?;
    let event = record.event;
    if let std::collections::hash_map::Entry::Vacant(slot) = events.entry(event) {
        let stored = target.events.event(event).await.map_err(|e| format!("cannot read event {event}: {e}"))?;
        let known = match stored {
            Some(row) => {
                let questions = target
                    .projection
                    .event_questions(event)
                    .await
                    .map_err(|e| format!("cannot read event {event}: {e}"))?;
                Some(KnownEvent { expire_unix: row.expire_unix, questions: questions.len() })
            }
            None => None,
        };
        slot.insert(known);
    }
    let Some(Some(known)) = events.get_mut(&event) else {
        return Err(format!(
            "event {event} is unknown here, and no earlier line of this file creates it (`ledger export` writes it)"
        ));
    };
    if !is_live(known.expire_unix, now_unix) {
        return Err(format!("event {event} expired at {}", time_of(known.expire_unix * 1_000)));
    }
    let question = record.question;
    let owner = match questions.get(&question) {
        Some(e) => Some(*e),
        None => target
            .projection
            .question(question)
            .await
            .map_err(|e| format!("cannot read question {question}: {e}"))?
            .map(|c| c.event),
    };
    match owner {
        Some(e) if e != event => return Err(format!("question {question} belongs to event {e}, not {event}")),
        Some(_) => {}
        None => {
            if known.questions >= QUESTIONS_PER_EVENT_MAX {
                return Err(format!("event {event} already holds {QUESTIONS_PER_EVENT_MAX} questions"));
            }
            known.questions += 1;
        }
    }
    questions.insert(question, event);
    Ok(())
}

/// Lines naming the records the aggregator set aside (of one event or one question, or
/// all), for `replay` and `inspect`: their fold includes them, the projection does not.
pub async fn set_aside_of(
    feed: &dyn LedgerFeed,
    event: Option<EventId>,
    question: Option<QuestionId>,
) -> anyhow::Result<Vec<String>> {
    let (event, question) = (event.map(|e| e.to_string()), question.map(|q| q.to_string()));
    Ok(feed
        .quarantined()
        .await?
        .into_iter()
        .filter(|q| event.is_none() || q.event == event)
        .filter(|q| question.is_none() || q.question == question)
        .map(|q| {
            format!(
                "set aside by the aggregator, not in the projection: seq {} record {} ({}): {}",
                q.seq,
                q.record.as_deref().unwrap_or("?"),
                q.kind.as_deref().unwrap_or("?"),
                q.reason
            )
        })
        .collect())
}

/// `quarantine [--ack]`: the rows the aggregator set aside, one a line.
pub async fn quarantine_report(feed: &dyn LedgerFeed, ack: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    let rows = feed.quarantined().await?;
    if rows.is_empty() {
        writeln!(out, "no records were set aside")?;
    }
    for q in &rows {
        writeln!(
            out,
            "seq {}  {}  record {}  event {}  question {}  {}  {}: {}",
            q.seq,
            time_of(q.at_unix * 1_000),
            q.record.as_deref().unwrap_or("?"),
            q.event.as_deref().unwrap_or("?"),
            q.question.as_deref().unwrap_or("?"),
            q.kind.as_deref().unwrap_or("?"),
            if q.acknowledged { "seen" } else { "NEW" },
            q.reason
        )?;
    }
    if ack {
        let n = feed.acknowledge_quarantined().await?;
        writeln!(out, "acknowledged {n}")?;
    }
    Ok(())
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
            RecordBody::Asked(a) => {
                format!("asked by voter {} ({}): {:?}", a.voter, a.who.as_deref().unwrap_or("anonymous"), a.text)
            }
            RecordBody::Voted { voter, up } => format!("voter {voter} votes {}", if *up { "up" } else { "down" }),
            RecordBody::Answered { on } => format!("host marks {}answered", if *on { "" } else { "not " }),
            RecordBody::Hidden { on } => format!("host {}", if *on { "hides it" } else { "unhides it" }),
            RecordBody::Approved { on } => {
                format!("host {}", if *on { "approves it" } else { "holds it for review" })
            }
            RecordBody::Spotlight { on } => {
                format!("host {} the spotlight", if *on { "puts it in" } else { "takes it out of" })
            }
            RecordBody::Replied { text } if text.is_empty() => "host removes the written answer".into(),
            RecordBody::Replied { text } => format!("host answers in writing: {text:?}"),
            // The event's own records never name a question (`inspect` reads one question's).
            other => format!("event record {}", other.kind()),
        };
        let votes = fold.question(question).map_or(0, |q| q.standing.votes);
        writeln!(out, "{}  {}  [{}]  {what}  -> votes {votes}", time_of(r.id.timestamp_ms()), r.id, r.region)?;
    }
    let folded = fold.question(question).map(|q| q.standing);
    writeln!(
        out,
        "stored projection: votes {}, answered {}, hidden {}, waiting for review {}, spotlight stamp {}",
        stored.votes,
        stored.answered_at().is_some(),
        stored.is_hidden(),
        stored.is_pending(),
        stored.spotlight.map_or("none".to_owned(), |s| format!("{} at {}", if s.value { "on" } else { "off" }, s.at))
    )?;
    let agrees = folded == Some(stored);
    writeln!(
        out,
        "{}",
        if agrees { "the fold agrees with the projection" } else { "DRIFT: the fold disagrees with the projection" }
    )?;
    Ok(agrees)
}

fn time_of(ms: u64) -> String {
    humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms)).to_string()
}
