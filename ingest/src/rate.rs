//! Rate limits on writes: token buckets (`governor`'s GCRA) per client address on event
//! creation, asks and votes, and per voter and event on asks. Over a limit a write is
//! refused with 429 and `Retry-After` before anything is read or appended.
//!
//! Memory: a keyed limiter keeps one small state per key it has seen. Every
//! [`RETAIN_EVERY`] a request prunes the keys whose bucket has refilled completely
//! (`retain_recent`: their state is indistinguishable from a fresh one), so a limiter holds
//! only the keys active within about one refill of a full burst. If a limiter still holds
//! more than [`KEYS_MAX`] keys after that, it is cleared (and `rate_limit_resets_total`
//! counts it): forgetting some buckets early is the lesser harm than unbounded memory, and
//! that many distinct sources within minutes is a flood that only the network edge (the
//! WAF on AWS) can stop anyway. The pruning runs on the request path, not on a timer, so it
//! works the same in a Lambda, whose background tasks are frozen between requests.

use std::fmt;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota};
use ledger::{EventId, VoterId};
use parking_lot::RwLock;

use crate::error::ApiError;

/// How often a limiter prunes the keys whose buckets are full again.
pub const RETAIN_EVERY: Duration = Duration::from_secs(10);
/// The most keys one limiter holds after pruning (about 100 bytes each, so about 20 MB
/// for the four limiters together at worst).
pub const KEYS_MAX: usize = 50_000;

/// One token bucket: `burst` writes at once, refilled at `count` per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: NonZeroU32,
    pub per: Duration,
    pub burst: NonZeroU32,
}

impl Rate {
    /// `count` per `per`, with bursts of `burst`. `None` when a count, the period or the
    /// burst is zero.
    pub fn new(count: u32, per: Duration, burst: u32) -> Option<Self> {
        if per.is_zero() {
            return None;
        }
        Some(Self { count: NonZeroU32::new(count)?, per, burst: NonZeroU32::new(burst)? })
    }

    fn quota(&self) -> Quota {
        // One token per `per / count`, never below a nanosecond (governor refuses zero).
        let period = (self.per / self.count.get()).max(Duration::from_nanos(1));
        Quota::with_period(period).unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX)).allow_burst(self.burst)
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.per.as_secs() {
            1 => "s",
            60 => "min",
            3600 => "h",
            _ => return write!(f, "{}/{}ms:{}", self.count, self.per.as_millis(), self.burst),
        };
        write!(f, "{}/{unit}:{}", self.count, self.burst)
    }
}

/// Why a rate could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a rate is COUNT/UNIT:BURST with UNIT s, min, h or ms (e.g. 50/s:500), or off: {0}")]
pub struct RateError(String);

/// A limit as written on the command line: `COUNT/UNIT:BURST` (`50/s:500`, `3/min:10`;
/// `UNIT` is `s`, `min`, `h` or `Nms`, e.g. `1/200ms:1`), or `off` (no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateSetting(pub Option<Rate>);

impl FromStr for RateSetting {
    type Err = RateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("off") {
            return Ok(Self(None));
        }
        let bad = |why: &str| RateError(format!("{s:?}: {why}"));
        let (rate, burst) = s.split_once(':').ok_or_else(|| bad("no :BURST"))?;
        let (count, unit) = rate.split_once('/').ok_or_else(|| bad("no /UNIT"))?;
        let count: u32 = count.trim().parse().map_err(|_| bad("COUNT is not a whole number"))?;
        let burst: u32 = burst.trim().parse().map_err(|_| bad("BURST is not a whole number"))?;
        let per = match unit.trim() {
            "s" => Duration::from_secs(1),
            "min" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            ms => {
                let n = ms.strip_suffix("ms").ok_or_else(|| bad("UNIT is s, min, h or Nms"))?;
                Duration::from_millis(n.parse().map_err(|_| bad("UNIT is s, min, h or Nms"))?)
            }
        };
        Rate::new(count, per, burst).map(|r| Self(Some(r))).ok_or_else(|| bad("COUNT, UNIT and BURST must not be zero"))
    }
}

impl fmt::Display for RateSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(rate) => rate.fmt(f),
            None => f.write_str("off"),
        }
    }
}

/// The write limits of the ingest role; `None` turns one off.
///
/// The defaults are set for a whole venue behind one NAT address (a conference hall's
/// wifi): several hundred guests who open the link at the same moment, vote within the
/// same minute and ask in waves at the end of a talk must all get through, while one script
/// cannot fill an event (5,000 questions) in seconds or mint voters without end.
/// - votes, per address: 50/s with bursts of 500. 500 guests each voting once on the
///   question just shown fit in the burst; 50/s sustained is 3,000 votes a minute, six per
///   guest. One address cannot vote faster than that, and every cookie-less vote (a new
///   voter each) counts here.
/// - asks, per address: 5/s with bursts of 100. A hall rarely asks more than a question
///   per guest at a time; 100 at once and 300 a minute is generous for a venue, and it
///   would still take one address over 16 minutes to fill an event.
/// - event creation, per address: 10/min with bursts of 20. A room of speakers or a class
///   creating events together; a script cannot create thousands.
/// - asks per voter and event: 3/min with bursts of 10. One guest's cookie: ten questions
///   at once, then one every 20 s. A guest without a cookie (a new voter) counts by
///   address only, since the server cannot tell such guests apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    pub create_event: Option<Rate>,
    pub ask: Option<Rate>,
    pub vote: Option<Rate>,
    pub voter_ask: Option<Rate>,
}

const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            create_event: Rate::new(10, MINUTE, 20),
            ask: Rate::new(5, SECOND, 100),
            vote: Rate::new(50, SECOND, 500),
            voter_ask: Rate::new(3, MINUTE, 10),
        }
    }
}

impl RateLimits {
    /// No limit at all (tests and benchmarks that drive the store from one address).
    pub const OFF: Self = Self { create_event: None, ask: None, vote: None, voter_ask: None };
}

/// One keyed limiter with its pruning schedule.
struct Keyed<K: Hash + Eq + Clone> {
    name: &'static str,
    quota: Quota,
    /// Behind a lock only so that it can be replaced by an empty one (governor's keyed
    /// limiters have no `clear`); checks share the read side.
    limiter: RwLock<DefaultKeyedRateLimiter<K>>,
    /// Milliseconds since `epoch` at the last pruning.
    last_retain_ms: AtomicU64,
    epoch: Instant,
}

impl<K: Hash + Eq + Clone> Keyed<K> {
    fn new(name: &'static str, rate: Rate) -> Self {
        let quota = rate.quota();
        Self {
            name,
            quota,
            limiter: RwLock::new(DefaultKeyedRateLimiter::keyed(quota)),
            last_retain_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    /// Takes a token for `key`, or says how long until one is there (whole seconds, at least 1).
    fn check(&self, key: &K) -> Result<(), u64> {
        self.prune_if_due();
        let limiter = self.limiter.read();
        limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(limiter.clock().now());
            (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
        })
    }

    fn prune_if_due(&self) {
        let now_ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.last_retain_ms.load(Ordering::Relaxed);
        let due = now_ms.saturating_sub(last) >= RETAIN_EVERY.as_millis() as u64;
        // One request prunes; the others go on.
        if due && self.last_retain_ms.compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            self.prune(KEYS_MAX);
        }
    }

    /// Drops the keys whose buckets are full again; clears the limiter if more than
    /// `keys_max` remain.
    fn prune(&self, keys_max: usize) {
        let keys = {
            let limiter = self.limiter.read();
            limiter.retain_recent();
            limiter.shrink_to_fit();
            limiter.len()
        };
        if keys > keys_max {
            tracing::warn!(limit = self.name, keys, "rate limiter over its key bound; cleared");
            metrics::counter!("rate_limit_resets_total", "limit" => self.name).increment(1);
            *self.limiter.write() = DefaultKeyedRateLimiter::keyed(self.quota);
        }
        metrics::gauge!("rate_limit_keys", "limit" => self.name).set(self.limiter.read().len() as f64);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.limiter.read().len()
    }
}

/// The limiters of one ingest router, built from its [`RateLimits`].
pub(crate) struct RateLimiters {
    create_event: Option<Keyed<IpAddr>>,
    ask: Option<Keyed<IpAddr>>,
    vote: Option<Keyed<IpAddr>>,
    voter_ask: Option<Keyed<(VoterId, EventId)>>,
}

/// What a refused write was limited by, for the message and the metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    CreateEvent,
    Ask,
    Vote,
    VoterAsk,
}

impl Limited {
    pub fn label(self) -> &'static str {
        match self {
            Limited::CreateEvent => "create_event",
            Limited::Ask => "ask",
            Limited::Vote => "vote",
            Limited::VoterAsk => "voter_ask",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Limited::CreateEvent => "too many events created from this address; try again later",
            Limited::Ask => "too many questions from this address; try again later",
            Limited::Vote => "too many votes from this address; try again later",
            Limited::VoterAsk => "too many questions from you in this event; try again later",
        }
    }
}

impl RateLimiters {
    pub fn new(limits: &RateLimits) -> Self {
        Self {
            create_event: limits.create_event.map(|r| Keyed::new("create_event", r)),
            ask: limits.ask.map(|r| Keyed::new("ask", r)),
            vote: limits.vote.map(|r| Keyed::new("vote", r)),
            voter_ask: limits.voter_ask.map(|r| Keyed::new("voter_ask", r)),
        }
    }

    fn by_address(limiter: &Option<Keyed<IpAddr>>, ip: IpAddr, what: Limited) -> Result<(), ApiError> {
        match limiter {
            Some(l) => l.check(&http_edge::ClientAddr(ip).key()).map_err(|retry_after_s| limited(what, retry_after_s)),
            None => Ok(()),
        }
    }

    pub fn create_event(&self, ip: IpAddr) -> Result<(), ApiError> {
        Self::by_address(&self.create_event, ip, Limited::CreateEvent)
    }

    pub fn vote(&self, ip: IpAddr) -> Result<(), ApiError> {
        Self::by_address(&self.vote, ip, Limited::Vote)
    }

    /// An ask: the address's bucket, then (for a guest with a cookie) the voter's bucket in
    /// this event.
    pub fn ask(&self, ip: IpAddr, voter: Option<VoterId>, event: EventId) -> Result<(), ApiError> {
        Self::by_address(&self.ask, ip, Limited::Ask)?;
        match (&self.voter_ask, voter) {
            (Some(l), Some(voter)) => l.check(&(voter, event)).map_err(|s| limited(Limited::VoterAsk, s)),
            _ => Ok(()),
        }
    }
}

fn limited(what: Limited, retry_after_s: u64) -> ApiError {
    metrics::counter!("rate_limited_total", "limit" => what.label()).increment(1);
    ApiError::RateLimited { what, retry_after_s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_as_written_and_bad_ones_are_refused() {
        let r: RateSetting = "50/s:500".parse().expect("a rate");
        assert_eq!(r.0, Rate::new(50, SECOND, 500));
        assert_eq!(r.to_string(), "50/s:500");
        assert_eq!("3/min:10".parse::<RateSetting>().expect("a rate").0, Rate::new(3, MINUTE, 10));
        assert_eq!("1/250ms:2".parse::<RateSetting>().expect("a rate").0, Rate::new(1, Duration::from_millis(250), 2));
        assert_eq!("off".parse::<RateSetting>().expect("off").0, None);
        for bad in ["", "50", "50/s", "0/s:5", "5/s:0", "5/day:5", "x/s:5", "5/0ms:5", "-1/s:5"] {
            assert!(bad.parse::<RateSetting>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn pruning_forgets_full_buckets_keeps_used_ones_and_clears_past_the_bound() {
        let keyed: Keyed<u32> = Keyed::new("test", Rate::new(1, Duration::from_secs(3600), 2).expect("rate"));
        for key in 0..10 {
            assert!(keyed.check(&key).is_ok());
        }
        assert!(keyed.check(&0).is_ok());
        assert_eq!(keyed.check(&0), Err(3600), "the third ask within the hour waits for the next token");
        assert_eq!(keyed.len(), 10);
        // Nothing refilled within an hour: every key is kept.
        keyed.prune(100);
        assert_eq!(keyed.len(), 10);
        assert_eq!(keyed.check(&0), Err(3600), "pruning kept the used bucket");
        // More keys than the bound: cleared, so key 0 starts afresh.
        keyed.prune(5);
        assert_eq!(keyed.len(), 0);
        assert!(keyed.check(&0).is_ok());

        let fast: Keyed<u32> = Keyed::new("test", Rate::new(1, Duration::from_millis(20), 1).expect("rate"));
        assert!(fast.check(&1).is_ok());
        assert!(fast.check(&2).is_ok());
        std::thread::sleep(Duration::from_millis(60));
        fast.prune(100);
        assert_eq!(fast.len(), 0, "full buckets are indistinguishable from fresh ones and dropped");
    }
}
