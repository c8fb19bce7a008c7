//! The cluster's one clock (the problem statement assumes synchronized clocks).
//!
//! Timeouts (the coordinator's vote timeout, an in-doubt participant's inquiry interval)
//! are measured on it. Interactive use runs on real time; scripts and tests use a manual
//! clock that moves only when told (`TICK`), so that a timeout happens at the same step of
//! every run. Timestamps in the log are logical (Lamport) and do not come from here.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A clock that all nodes read.
#[derive(Debug)]
pub enum Clock {
    /// Real elapsed time since the cluster opened.
    Real(Instant),
    /// Time that moves only by [`Clock::advance`], in nanoseconds.
    Manual(AtomicU64),
}

impl Clock {
    /// A real-time clock starting now.
    pub fn real() -> Clock {
        Clock::Real(Instant::now())
    }

    /// A manual clock at zero.
    pub fn manual() -> Clock {
        Clock::Manual(AtomicU64::new(0))
    }

    /// The time since the clock started.
    pub fn now(&self) -> Duration {
        match self {
            Clock::Real(start) => start.elapsed(),
            Clock::Manual(nanos) => Duration::from_nanos(nanos.load(Ordering::SeqCst)),
        }
    }

    /// Whether this is a manual clock.
    pub fn is_manual(&self) -> bool {
        matches!(self, Clock::Manual(_))
    }

    /// Moves a manual clock forward; a real clock cannot be moved, so this returns false.
    pub fn advance(&self, by: Duration) -> bool {
        match self {
            Clock::Real(_) => false,
            Clock::Manual(nanos) => {
                let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
                let _ = nanos.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |now| {
                    Some(now.saturating_add(by))
                });
                true
            }
        }
    }
}

/// Formats a duration the way the shell reads one: `1s`, `1500ms`, `2m`.
pub fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis == 0 {
        format!("{}us", duration.as_micros())
    } else if millis.is_multiple_of(60_000) {
        format!("{}m", millis / 60_000)
    } else if millis.is_multiple_of(1000) {
        format!("{}s", millis / 1000)
    } else {
        format!("{millis}ms")
    }
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
    fn durations_format_in_shell_units() {
        assert_eq!(format_duration(Duration::from_secs(1)), "1s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::from_secs(120)), "2m");
    }
}

/// The cluster's timestamp source for prepare and commit timestamps (one clock for the
/// cluster, as the problem statement allows): a counter every node shares.
///
/// A commit takes a fresh value ([`Timestamps::next`]); a prepare takes the current one
/// ([`Timestamps::current`]) without moving it, so a commit timestamp is always above
/// every prepare timestamp of its transaction, and concurrent prepares do not race for
/// values (which keeps transcripts identical run to run). Snapshot reads compare against
/// these timestamps: a commit at or below a reader's timestamp has already been taken
/// from this counter.
///
/// A second counter orders the beginnings of transactions across coordinators
/// ([`Timestamps::begin_stamp`]), which transaction ids cannot (each coordinator numbers
/// its own): the deadlock detector aborts the one that began last. It is separate so
/// that beginning a transaction never moves commit timestamps. It need not survive the
/// process: a transaction that waits for a lock is active, and no active transaction
/// outlives the cluster's process.
#[derive(Debug, Default)]
pub struct Timestamps(AtomicU64, AtomicU64);

impl Timestamps {
    /// The latest timestamp handed out.
    pub fn current(&self) -> crate::Timestamp {
        self.0.load(Ordering::SeqCst)
    }

    /// A timestamp above every one handed out before.
    pub fn next(&self) -> crate::Timestamp {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// A begin stamp above every one handed out before (see the type's doc).
    pub fn begin_stamp(&self) -> u64 {
        self.1.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Moves the counter up to at least `ts` (recovery: past everything in the logs).
    pub fn observe(&self, ts: crate::Timestamp) {
        self.0.fetch_max(ts, Ordering::SeqCst);
    }
}
