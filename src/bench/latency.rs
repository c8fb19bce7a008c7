//! Latency percentiles without keeping every sample: each client thread records into its
//! own HDR histogram (`hdrhistogram`), and the run adds them up when the threads are done,
//! so a thread's cost per operation is one bucket increment, whatever the run's length.
//!
//! # Precision and limits
//!
//! Values are nanoseconds from 1 ns to [`HIGHEST`] (one minute), kept to 3 significant
//! digits: a percentile is within 0.1% of the true sample (exact below 2048 ns). A
//! latency above a minute is counted as a minute. A histogram of these bounds holds about
//! 27,000 counters (about 220 KB), so a run of 256 clients holds some 56 MB while it
//! lasts: more than a vector of a short run's samples, but fixed, and no sort at the end.

use crate::error::{Error, Result};
use hdrhistogram::Histogram;
use std::time::Duration;

/// The longest latency told apart from longer ones, in nanoseconds.
const HIGHEST: u64 = 60_000_000_000;
/// Significant decimal digits kept of every value.
const DIGITS: u8 = 3;

/// Latencies recorded so far, as a histogram.
#[derive(Clone, Debug)]
pub struct Latencies(Histogram<u64>);

impl Latencies {
    /// An empty record. It fails only if the constant bounds above were made invalid.
    pub fn new() -> Result<Latencies> {
        Histogram::new_with_bounds(1, HIGHEST, DIGITS)
            .map(Latencies)
            .map_err(|e| histogram_error("making", e))
    }

    /// Records one latency (a minute, if longer).
    pub fn record(&mut self, latency: Duration) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.0.saturating_record(nanos.max(1));
    }

    /// Adds another thread's record to this one.
    pub fn merge(&mut self, other: &Latencies) -> Result<()> {
        self.0
            .add(&other.0)
            .map_err(|e| histogram_error("adding", e))
    }

    /// The number of latencies recorded.
    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// The latency that the fraction `quantile` (0 to 1) of the samples do not exceed, in
    /// microseconds; 0 when nothing was recorded.
    pub fn percentile_us(&self, quantile: f64) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        self.0.value_at_quantile(quantile) as f64 / 1000.0
    }
}

fn histogram_error(doing: &str, error: impl std::fmt::Debug) -> Error {
    Error::InvalidInput(format!("{doing} a latency histogram failed: {error:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros(us: u64) -> Duration {
        Duration::from_micros(us)
    }

    #[test]
    fn percentiles_are_within_a_thousandth_of_the_samples() {
        let mut latencies = Latencies::new().unwrap();
        for us in 1..=10_000 {
            latencies.record(micros(us));
        }
        assert_eq!(latencies.count(), 10_000);
        for (quantile, exact) in [(0.5, 5_000.0), (0.99, 9_900.0), (0.999, 9_990.0)] {
            let got = latencies.percentile_us(quantile);
            assert!(
                (got - exact).abs() <= exact / 1000.0,
                "p{quantile}: {got} us, not {exact} us"
            );
        }
    }

    #[test]
    fn merged_threads_count_as_one_run() {
        let (mut a, mut b) = (Latencies::new().unwrap(), Latencies::new().unwrap());
        (0..900).for_each(|_| a.record(micros(10)));
        (0..100).for_each(|_| b.record(micros(2_000)));
        a.merge(&b).unwrap();
        assert_eq!(a.count(), 1000);
        assert!((a.percentile_us(0.5) - 10.0).abs() < 0.01);
        assert!((a.percentile_us(0.95) - 2_000.0).abs() <= 2.0);
    }

    #[test]
    fn nothing_recorded_reads_zero_and_extremes_are_kept() {
        let mut latencies = Latencies::new().unwrap();
        assert_eq!(latencies.percentile_us(0.99), 0.0);
        latencies.record(Duration::ZERO);
        latencies.record(Duration::from_secs(3600));
        assert_eq!(latencies.count(), 2);
        assert!(latencies.percentile_us(1.0) >= 59_000_000.0);
    }
}
