//! `inspect --event EID --bursts`: the windows in which an unusual number of voters never
//! seen before in the event voted one question up within seconds, with the share of the
//! question's votes they make up now (the rule is `ledger::history::History::bursts`, the
//! same the host's insights show). It only reports: nothing is changed because of a burst.

use std::io::Write;
use std::time::{Duration, UNIX_EPOCH};

use ledger::history::{BurstThresholds, History};
use ledger::ports::{EventStore, LedgerStore};
use ledger::EventId;

/// Prints the bursts of one event's ledger on `out`; returns how many there are.
pub async fn bursts_report(
    events: &dyn EventStore,
    ledger: &dyn LedgerStore,
    event: EventId,
    thresholds: &BurstThresholds,
    out: &mut dyn Write,
) -> anyhow::Result<usize> {
    if events.event(event).await?.is_none() {
        anyhow::bail!("event {event} is not in this store");
    }
    let history = History::new(ledger.event_records(event).await?);
    let bursts = history.bursts(thresholds);
    writeln!(
        out,
        "event {event}: {} records; a burst is at least {} never-seen voters on one question within {:.1} s, \
         still voting it up, making at least {:.0}% of its votes",
        history.len(),
        thresholds.new_voters_min,
        thresholds.window_ms as f64 / 1_000.0,
        thresholds.share_min * 100.0
    )?;
    if bursts.is_empty() {
        writeln!(out, "no bursts")?;
    }
    for b in &bursts {
        writeln!(
            out,
            "burst on question {}: {} never-seen voters from {} to {} ({:.1} s); {} of them vote it up now, \
             {:.0}% of its {} votes",
            b.question,
            b.new_voters,
            time_of(b.start_ms),
            time_of(b.end_ms),
            (b.end_ms - b.start_ms) as f64 / 1_000.0,
            b.still_up,
            b.share * 100.0,
            b.votes
        )?;
    }
    Ok(bursts.len())
}

fn time_of(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}
