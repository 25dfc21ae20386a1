//! How long an event and its records are kept, and the one place expiry is computed.
//!
//! Retention is a setting of the store, not of a process: every command that opens a store
//! reads it from there, so `serve`, `replay --repair`, `ledger import` and `inspect` stamp
//! the same expiry on the same event. An event expires `days` after its id's time, and every
//! row belonging to it (records, questions, voter states) carries that same expiry.

use std::fmt;
use std::str::FromStr;

use crate::ids::EventId;

const SECONDS_PER_DAY: u64 = 86_400;

/// A validated retention: whole days in [`Retention::DAYS_MIN`]`..=`[`Retention::DAYS_MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Retention {
    days: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("retention must be {min} to {max} days, not {given}", min = Retention::DAYS_MIN, max = Retention::DAYS_MAX)]
pub struct RetentionError {
    pub given: String,
}

impl Retention {
    /// Shorter would expire an event while its talk may still be going on.
    pub const DAYS_MIN: u64 = 1;
    /// Ten years: longer is a mistake, and keeps expiry arithmetic far from any overflow.
    pub const DAYS_MAX: u64 = 3_650;
    /// The default for a new store (design §2: events are kept for a month).
    pub const DEFAULT: Retention = Retention { days: 30 };

    pub fn from_days(days: u64) -> Result<Self, RetentionError> {
        if !(Self::DAYS_MIN..=Self::DAYS_MAX).contains(&days) {
            return Err(RetentionError { given: days.to_string() });
        }
        // In range, so it fits u16 (3,650 < 65,535).
        Ok(Self { days: days as u16 })
    }

    pub fn days(self) -> u64 {
        u64::from(self.days)
    }

    pub fn seconds(self) -> u64 {
        self.days() * SECONDS_PER_DAY
    }

    /// When `event` and everything that belongs to it expires, in Unix seconds. An id's time
    /// is at most 2^48 ms (~2.8e11 s) and the retention at most ~3.2e8 s: the sum cannot
    /// overflow, so this is plain addition.
    pub fn expire_of(self, event: EventId) -> u64 {
        event.unix_seconds() + self.seconds()
    }
}

impl Default for Retention {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl fmt::Display for Retention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} days", self.days)
    }
}

impl FromStr for Retention {
    type Err = RetentionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let days: u64 = s.trim().parse().map_err(|_| RetentionError { given: s.to_owned() })?;
        Self::from_days(days)
    }
}

/// Whether an event that expires at `expire_unix` is still live at `now_unix`: the one rule
/// ingest (asks, votes, toggles) and query (lists, streams) apply.
pub fn is_live(expire_unix: u64, now_unix: u64) -> bool {
    expire_unix > now_unix
}

/// The wall clock in Unix seconds, for the callers that decide liveness (never the fold).
pub fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ulid::Ulid;

    #[test]
    fn only_one_to_3650_days_are_accepted() {
        for bad in [0, 3_651, u64::MAX] {
            assert!(Retention::from_days(bad).is_err(), "{bad} days accepted");
        }
        assert!("-1".parse::<Retention>().is_err());
        assert!("thirty".parse::<Retention>().is_err());
        assert_eq!("1".parse::<Retention>().map(Retention::days), Ok(1));
        assert_eq!(" 3650 ".parse::<Retention>().map(Retention::days), Ok(3_650));
        assert_eq!(Retention::default().days(), 30);
    }

    #[test]
    fn expiry_is_the_event_time_plus_whole_days() {
        // An event minted at 2026-01-01T00:00:00.999Z.
        let event = EventId(Ulid::from_parts(1_767_225_600_999, 7));
        assert_eq!(Retention::from_days(30).map(|r| r.expire_of(event)), Ok(1_767_225_600 + 2_592_000));
        assert_eq!(Retention::from_days(1).map(|r| r.expire_of(event)), Ok(1_767_312_000));
        // The latest id there is, with the longest retention: no wrap.
        let last = EventId(Ulid::from_parts((1 << 48) - 1, 0));
        assert_eq!(Retention::from_days(3_650).map(|r| r.expire_of(last)), Ok(281_474_976_710 + 315_360_000));
    }

    #[test]
    fn an_event_is_live_until_its_expiry_second() {
        assert!(is_live(100, 99));
        assert!(!is_live(100, 100));
        assert!(!is_live(100, 101));
    }
}
