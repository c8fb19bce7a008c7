//! The cluster's one clock (the problem statement assumes synchronized clocks).
//!
//! Timeouts (the coordinator's vote timeout, an in-doubt participant's inquiry interval)
//! are measured on it. Interactive use runs on real time; scripts and tests use a manual
//! clock that moves only when told (`TICK`), so that a timeout happens at the same step of
//! every run. Timestamps in the log are logical: each node's own [`Lamport`] clock,
//! carried on messages; they do not come from here.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A clock that all nodes read: real elapsed time, or a manual one that moves only by
/// [`Clock::advance`]. A real clock can be made manual and back (the shell's step mode):
/// it stops where it is, and runs on from where it was left.
#[derive(Debug)]
pub struct Clock {
    /// A fixed instant the others are measured from.
    origin: Instant,
    /// Nanoseconds after `origin` at which the clock last started running in real time.
    started: AtomicU64,
    /// Whether the clock is manual.
    manual: AtomicBool,
    /// Nanoseconds: the reading when the clock last started running (real), or the
    /// reading (manual).
    base: AtomicU64,
}

impl Clock {
    /// A real-time clock starting now.
    pub fn real() -> Clock {
        Clock {
            origin: Instant::now(),
            started: AtomicU64::new(0),
            manual: AtomicBool::new(false),
            base: AtomicU64::new(0),
        }
    }

    /// A manual clock at zero.
    pub fn manual() -> Clock {
        let clock = Clock::real();
        clock.manual.store(true, Ordering::SeqCst);
        clock
    }

    /// The time since the clock started.
    pub fn now(&self) -> Duration {
        let base = Duration::from_nanos(self.base.load(Ordering::SeqCst));
        if self.is_manual() {
            return base;
        }
        let started = Duration::from_nanos(self.started.load(Ordering::SeqCst));
        base + self.origin.elapsed().saturating_sub(started)
    }

    /// Nanoseconds since `origin`.
    fn since_origin(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Whether this is a manual clock.
    pub fn is_manual(&self) -> bool {
        self.manual.load(Ordering::SeqCst)
    }

    /// Makes the clock manual (it stops at its reading) or real (it runs on from its
    /// reading). Returns whether it was manual. Only one caller switches at a time (the
    /// shell); readers during a switch see either reading.
    pub fn set_manual(&self, manual: bool) -> bool {
        let was = self.is_manual();
        if manual && !was {
            let nanos = u64::try_from(self.now().as_nanos()).unwrap_or(u64::MAX);
            self.base.store(nanos, Ordering::SeqCst);
        } else if !manual && was {
            self.started.store(self.since_origin(), Ordering::SeqCst);
        }
        self.manual.store(manual, Ordering::SeqCst);
        was
    }

    /// Moves a manual clock forward; a real clock cannot be moved, so this returns false.
    pub fn advance(&self, by: Duration) -> bool {
        if !self.is_manual() {
            return false;
        }
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        let _ = (self.base).fetch_update(Ordering::SeqCst, Ordering::SeqCst, |now| {
            Some(now.saturating_add(by))
        });
        true
    }
}

/// The units a duration is written in, largest first, with their length in nanoseconds.
const UNITS: [(&str, u128); 3] = [
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
];

/// Reads a duration the one way the shell writes them, for every command and setting
/// that takes one: a number, with decimals if need be, and a unit in any case: `500ms`,
/// `2s`, `1.5s`, `1m`. The error says what to write instead.
///
/// `duration = digit , { digit } , [ "." , digit , { digit } ] , ( "ms" | "s" | "m" ) ;`
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    const EXAMPLES: &str = "500ms, 2s, 1.5s or 1m";
    let number_end = (text.find(|c: char| !c.is_ascii_digit() && c != '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(number_end);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let well_formed = !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
        && !(number.contains('.') && fraction.is_empty());
    if !well_formed {
        return Err(format!("expected a duration such as {EXAMPLES}"));
    }
    let unit_lower = unit.to_ascii_lowercase();
    let Some((_, nanos_per_unit)) = UNITS.iter().find(|(name, _)| *name == unit_lower) else {
        return Err(if unit.is_empty() {
            format!("a duration needs a unit: write {number}ms, {number}s or {number}m")
        } else {
            format!("unknown unit '{unit}': use ms, s or m, as in {EXAMPLES}")
        });
    };
    let too_long = || format!("{text} is too long a duration");
    let whole: u128 = whole.parse().map_err(|_| too_long())?;
    let mut nanos = whole.checked_mul(*nanos_per_unit).ok_or_else(too_long)?;
    let mut scale = *nanos_per_unit;
    for digit in fraction.bytes() {
        scale /= 10;
        nanos += u128::from(digit - b'0') * scale;
    }
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| too_long())?;
    let subsec = u32::try_from(nanos % 1_000_000_000).map_err(|_| too_long())?;
    Ok(Duration::new(secs, subsec))
}

/// Writes a duration the way [`parse_duration`] reads it, in the largest unit that
/// shows it whole, else with decimals: `2s`, `1500ms`, `2m`, `0ms`, `0.5ms`.
pub fn format_duration(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if nanos == 0 {
        return "0ms".into();
    }
    for (unit, per) in UNITS {
        if nanos.is_multiple_of(per) {
            return format!("{}{unit}", nanos / per);
        }
    }
    let millis = format!("{}.{:06}", nanos / 1_000_000, nanos % 1_000_000);
    format!("{}ms", millis.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = Clock::manual();
        assert_eq!(clock.now(), Duration::ZERO);
        assert!(clock.advance(Duration::from_millis(1500)));
        assert_eq!(clock.now(), Duration::from_millis(1500));
        assert!(!Clock::real().advance(Duration::from_secs(1)));
    }

    #[test]
    fn a_real_clock_made_manual_stops_and_runs_on_from_where_it_was() {
        let clock = Clock::real();
        std::thread::sleep(Duration::from_millis(5));
        assert!(!clock.set_manual(true));
        let stopped = clock.now();
        assert!(stopped >= Duration::from_millis(5));
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(clock.now(), stopped, "a manual clock does not run");
        assert!(clock.advance(Duration::from_secs(10)));
        assert!(clock.set_manual(false));
        let resumed = clock.now();
        assert!(resumed >= stopped + Duration::from_secs(10));
        assert!(
            resumed < stopped + Duration::from_secs(11),
            "it runs on, not from zero"
        );
    }

    #[test]
    fn durations_format_in_shell_units() {
        assert_eq!(format_duration(Duration::from_secs(1)), "1s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::from_secs(120)), "2m");
        assert_eq!(format_duration(Duration::ZERO), "0ms");
        assert_eq!(format_duration(Duration::from_micros(500)), "0.5ms");
    }

    #[test]
    fn durations_read_in_any_case_with_decimals() {
        let ms = |ms| Ok(Duration::from_millis(ms));
        assert_eq!(parse_duration("500ms"), ms(500));
        assert_eq!(parse_duration("2S"), ms(2000));
        assert_eq!(parse_duration("2m"), ms(120_000));
        assert_eq!(parse_duration("1.5s"), ms(1500));
        assert_eq!(parse_duration("0.25M"), ms(15_000));
        assert_eq!(parse_duration("0ms"), ms(0));
        assert!(parse_duration("5").unwrap_err().contains("needs a unit"));
        assert!(
            parse_duration("5h")
                .unwrap_err()
                .contains("unknown unit 'h'")
        );
        assert!(
            parse_duration("soon")
                .unwrap_err()
                .contains("expected a duration")
        );
        assert!(
            parse_duration("1.s")
                .unwrap_err()
                .contains("expected a duration")
        );
        assert!(
            parse_duration(".5s")
                .unwrap_err()
                .contains("expected a duration")
        );
        assert!(
            parse_duration("99999999999999999999m")
                .unwrap_err()
                .contains("too long")
        );
    }

    #[test]
    fn every_duration_written_reads_back_the_same() {
        for nanos in [
            0,
            1_000,
            500_000,
            1_000_000,
            1_500_000_000,
            60_000_000_000,
            90_000_000_000,
        ] {
            let duration = Duration::from_nanos(nanos);
            assert_eq!(parse_duration(&format_duration(duration)), Ok(duration));
        }
    }
}

/// A node's logical clock (Lamport's), from which it takes its prepare and commit
/// timestamps. Every message a node sends carries its reading, and every receipt moves
/// the receiver's clock up to it ([`Lamport::observe`]); a client's request carries the
/// highest timestamp that client has seen. So a timestamp a node takes is above every
/// timestamp that causally precedes it, which is all the snapshot rules need (see the
/// `store` module's doc): a transaction that must be ordered after another has heard of
/// it through a chain of messages (a lock granted after a commit, a read after a write).
///
/// Why Lamport and not a hybrid logical clock: nothing here needs timestamps close to
/// real time (no read is served "as of 5 seconds ago", and timeouts use [`Clock`], not
/// timestamps), and a hybrid clock would make every timestamp a transcript shows depend
/// on when it ran. A Lamport clock moves only when the protocol does, so the same
/// script gives the same timestamps on every run and machine.
///
/// A prepare takes the clock's reading without moving it; a commit moves it past
/// every prepare timestamp of its transaction ([`Lamport::tick_past`]). It is a plain
/// value owned by one node: nothing else reads or writes it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lamport(crate::Timestamp);

impl Lamport {
    /// A clock reading `at` (recovery: the highest timestamp in the log).
    pub fn starting_at(at: crate::Timestamp) -> Lamport {
        Lamport(at)
    }

    /// The clock's reading: at or above every timestamp this node has taken or heard.
    pub fn now(&self) -> crate::Timestamp {
        self.0
    }

    /// Moves the clock up to `ts` if it is behind (a message or request carried `ts`).
    pub fn observe(&mut self, ts: crate::Timestamp) {
        self.0 = self.0.max(ts);
    }

    /// A fresh timestamp above the clock and above `floor`, which the clock then reads.
    pub fn tick_past(&mut self, floor: crate::Timestamp) -> crate::Timestamp {
        self.0 = self.0.max(floor) + 1;
        self.0
    }
}

/// What the clients of one cluster handle know of time, shared by their sessions (it is
/// client state: no node reads it; it lives in this bottom layer so that a cluster
/// handle can hold it for its clients, and hear each node's clock as it starts, without
/// the cluster layer naming the client layer above it). The highest timestamp any of them has been told
/// travels with every commit, so the commit is ordered after everything its clients saw
/// committed, even on nodes that have not heard of it: one client library is one more
/// process in the Lamport order. It also counts the transactions they begin, which
/// orders beginnings for the deadlock detector (`message::Answer::Begun`).
#[derive(Debug, Default)]
pub struct ClientClock {
    /// The highest timestamp any client of this handle has seen.
    seen: AtomicU64,
    /// Transactions begun, for begin stamps.
    begun: AtomicU64,
}

impl ClientClock {
    /// The highest timestamp seen.
    pub fn now(&self) -> crate::Timestamp {
        self.seen.load(Ordering::SeqCst)
    }

    /// Moves the clock up to `ts`, a timestamp a client was told.
    pub(crate) fn observe(&self, ts: crate::Timestamp) {
        self.seen.fetch_max(ts, Ordering::SeqCst);
    }

    /// A begin stamp above every one handed out before.
    pub(crate) fn begin_stamp(&self) -> u64 {
        self.begun.fetch_add(1, Ordering::SeqCst) + 1
    }
}

#[cfg(test)]
mod lamport_tests {
    use super::Lamport;

    #[test]
    fn a_tick_goes_past_the_clock_and_the_floor() {
        let mut clock = Lamport::starting_at(3);
        assert_eq!(clock.tick_past(0), 4);
        assert_eq!(clock.tick_past(9), 10);
        clock.observe(7);
        assert_eq!(clock.now(), 10, "observing the past does not move it back");
        clock.observe(12);
        assert_eq!(clock.now(), 12);
    }
}
