//! Repeated sweeps (`kv2pc bench --repeat N`): each point of the sweep runs once per
//! round, the rounds one after another (so a slow drift of the machine touches every
//! point alike, rather than the last ones), each round with its own measured limits;
//! the report gives, for every figure, its median over the rounds.
//!
//! Every field is a median on its own: a point's p50 and its ops/s may come from
//! different rounds. The ratios (per fsync time, p50 over fsync) are computed within
//! each round, against that round's limits, and then their medians taken, which is what
//! makes them comparable across machines; they are not the ratio of the medians.

use super::Run;
use super::limits::Limits;

/// The median of `values` (the mean of the middle two for an even count); 0 if empty.
pub fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    }
}

fn median_u64(values: Vec<u64>) -> u64 {
    median(values.into_iter().map(|v| v as f64).collect()).round() as u64
}

/// The limits of every round, as one: each figure's median.
pub fn limits(rounds: &[Limits]) -> Limits {
    let of = |field: fn(&Limits) -> f64| median(rounds.iter().map(field).collect());
    Limits {
        fsync_p50_us: of(|l| l.fsync_p50_us),
        fsync_p99_us: of(|l| l.fsync_p99_us),
        fsync_preallocated_p50_us: of(|l| l.fsync_preallocated_p50_us),
        round_trip_p50_us: of(|l| l.round_trip_p50_us),
        round_trip_parked_p50_us: of(|l| l.round_trip_parked_p50_us),
        tcp_round_trip_p50_us: of(|l| l.tcp_round_trip_p50_us),
    }
}

/// One point's runs, one per round (at least one), as one: each figure's median.
pub fn run(runs: &[Run]) -> Run {
    let of = |field: fn(&Run) -> f64| median(runs.iter().map(field).collect());
    let count = |field: fn(&Run) -> u64| median_u64(runs.iter().map(field).collect());
    Run {
        operations: count(|r| r.operations),
        per_second: of(|r| r.per_second),
        p50_us: of(|r| r.p50_us),
        p99_us: of(|r| r.p99_us),
        p999_us: of(|r| r.p999_us),
        fsyncs_per_op: of(|r| r.fsyncs_per_op),
        fsyncs_per_op_busiest_log: of(|r| r.fsyncs_per_op_busiest_log),
        aborts: count(|r| r.aborts),
        lock_waits: count(|r| r.lock_waits),
        per_fsync_time: of(|r| r.per_fsync_time),
        p50_over_fsync: of(|r| r.p50_over_fsync),
        p50_over_round_trip: of(|r| r.p50_over_round_trip),
        ..runs[0].clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::Workload;

    fn a_run(per_second: f64, p50_us: f64, aborts: u64) -> Run {
        Run {
            workload: Workload::Cross2,
            deadlock: "detect",
            commit: "classic",
            transport: "embedded",
            clients: 16,
            operations: per_second as u64,
            per_second,
            p50_us,
            p99_us: p50_us * 2.0,
            p999_us: p50_us * 3.0,
            fsyncs_per_op: 1.0,
            fsyncs_per_op_busiest_log: 0.5,
            aborts,
            lock_waits: 0,
            per_fsync_time: per_second / 1e4,
            p50_over_fsync: p50_us / 100.0,
            p50_over_round_trip: p50_us / 5.0,
        }
    }

    #[test]
    fn medians_are_taken_field_by_field() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(Vec::new()), 0.0);
        let runs = [
            a_run(100.0, 900.0, 7),
            a_run(300.0, 100.0, 1),
            a_run(200.0, 500.0, 3),
        ];
        let one = run(&runs);
        assert_eq!(one.per_second, 200.0);
        assert_eq!(one.p50_us, 500.0, "the p50 of its own round order");
        assert_eq!(one.aborts, 3);
        assert_eq!(one.per_fsync_time, 0.02);
        assert_eq!(one.clients, 16);
    }
}
