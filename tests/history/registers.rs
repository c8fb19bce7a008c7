//! The register front end (`history::register`, what `CHECK` runs): the list-append
//! cases again as histories of whole values, each anomaly caught and named, and the
//! cases only registers have: timestamps against reads, a value written twice, deletes,
//! unknown outcomes, and the verdict's words.

use kv2pc::history::{Outcome, RegisterHistory, RegisterReport, RegisterTxn, check_registers};
use std::collections::BTreeMap;

/// A committed transaction of session `alice` (odd numbers) or `bob` (even) at `at`.
fn committed(name: &str, at: u64) -> RegisterTxn {
    let session = match name.trim_start_matches('T').parse::<u32>() {
        Ok(n) if n % 2 == 0 => "bob",
        _ => "alice",
    };
    RegisterTxn::new(name, session, Outcome::Committed).at(at)
}

fn history(txns: Vec<RegisterTxn>) -> RegisterHistory {
    RegisterHistory {
        initial: BTreeMap::new(),
        txns,
    }
}

fn check(history: &RegisterHistory) -> RegisterReport {
    check_registers(history)
}

fn verdict(report: &RegisterReport) -> String {
    report.verdict().join("\n")
}

fn assert_names(history: &RegisterHistory, expected: &[&str]) -> RegisterReport {
    let report = check(history);
    assert_eq!(report.names(), expected, "{}", verdict(&report));
    report
}

#[test]
fn a_serial_history_passes_with_its_serial_order() {
    let history = history(vec![
        committed("T1", 1).write("x", Some("1")),
        committed("T2", 2)
            .read("x", Some("1"))
            .write("x", Some("2"))
            .read("y", None),
        committed("T3", 3).read("y", None).write("y", Some("3")),
        RegisterTxn::new("T4", "alice", Outcome::Aborted)
            .read("x", Some("2"))
            .write("x", Some("4")),
        RegisterTxn::new("T5", "bob", Outcome::Unknown).write("y", Some("5")),
        RegisterTxn::new("snapshot@4", "carol", Outcome::Committed)
            .at(4)
            .read("x", Some("2"))
            .read("y", Some("3")),
    ]);
    let report = assert_names(&history, &[]);
    assert!(report.is_serializable() && report.timestamps_agree());
    assert_eq!(
        report.serial_order,
        Some(["T1", "T2", "T3", "snapshot@4"].map(String::from).to_vec())
    );
    let text = verdict(&report);
    assert!(
        text.starts_with(
            "the history of 4 committed transactions is serializable: an equivalent serial \
             order is T1, T2, T3, snapshot@4"
        ),
        "{text}"
    );
    assert!(
        text.contains("left out: T4 (session alice), aborted"),
        "{text}"
    );
    assert!(
        text.contains("left out: T5 (session bob), its outcome is unknown"),
        "{text}"
    );
}

#[test]
fn g0_a_write_cycle_needs_writes_installed_at_their_own_timestamps() {
    // T1's write of x is installed before T2's, but its write of y after T2's: as if a
    // node had chosen its own timestamp for T1 (a heuristic decision).
    let history = history(vec![
        committed("T1", 1)
            .write("x", Some("x1"))
            .write_at("y", Some("y1"), 3),
        committed("T2", 2)
            .write("x", Some("x2"))
            .write("y", Some("y2")),
    ]);
    let report = assert_names(&history, &["G0"]);
    let text = verdict(&report);
    assert!(text.contains("NOT serializable"), "{text}");
    assert!(text.contains("G0 (write cycle): T"), "{text}");
    assert!(report.serial_order.is_none());
}

#[test]
fn g1a_an_aborted_read_is_caught() {
    let history = history(vec![
        RegisterTxn::new("T1", "alice", Outcome::Aborted).write("x", Some("1")),
        committed("T2", 2).read("x", Some("1")),
    ]);
    let report = assert_names(&history, &["G1a"]);
    let text = verdict(&report);
    assert!(
        text.contains(
            "G1a (aborted read): T2 (session bob) read x = 1, which only T1 (session alice) \
             wrote, and T1 aborted"
        ),
        "{text}"
    );
}

#[test]
fn g1b_an_intermediate_read_is_caught() {
    let history = history(vec![
        committed("T1", 1)
            .write("x", Some("1"))
            .write("x", Some("2")),
        committed("T2", 2).read("x", Some("1")),
        committed("T3", 3).read("x", Some("2")),
    ]);
    assert_names(&history, &["G1b"]);
}

#[test]
fn g1c_circular_information_flow_is_caught() {
    // Each read what the other wrote: T1 at 1 read T2's write at 2, which the
    // timestamps cannot explain either.
    let history = history(vec![
        committed("T1", 1)
            .write("x", Some("1"))
            .read("y", Some("2")),
        committed("T2", 2)
            .write("y", Some("2"))
            .read("x", Some("1")),
    ]);
    let report = assert_names(&history, &["G1c", "timestamp-order"]);
    let text = verdict(&report);
    assert!(
        text.contains("G1c (circular information flow): T"),
        "{text}"
    );
    assert!(
        text.contains(
            "timestamp order broken: T1 (session alice), at timestamp 1, read y = 2, from T2 \
             (session bob); but the newest version of y at or below 1 is y = not set, from \
             the initial state"
        ),
        "{text}"
    );
}

/// Write skew: each read the key the other wrote, before the other's write.
fn write_skew() -> RegisterHistory {
    history(vec![
        committed("T1", 1).read("x", None).write("y", Some("1")),
        committed("T2", 2).read("y", None).write("x", Some("2")),
        committed("T3", 3).read("x", Some("2")).read("y", Some("1")),
    ])
}

#[test]
fn g2_write_skew_is_caught_and_explained_step_by_step() {
    let report = assert_names(&write_skew(), &["G2", "timestamp-order"]);
    let text = verdict(&report);
    assert!(
        text.contains("G2 (anti-dependency cycle): T1 -rw(x)-> T2 -rw(y)-> T1")
            || text.contains("G2 (anti-dependency cycle): T2 -rw(y)-> T1 -rw(x)-> T2"),
        "{text}"
    );
    assert!(
        text.contains(
            "rw: T1 read x = not set before T2 wrote x = 2, so T1 (session alice) comes \
             before T2 (session bob)"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "rw: T2 read y = not set before T1 wrote y = 1, so T2 (session bob) comes \
             before T1 (session alice)"
        ),
        "{text}"
    );
    assert!(text.contains("would come before itself"), "{text}");
    assert!(text.contains("this is write skew"), "{text}");
}

#[test]
fn a_lost_update_is_a_g2_cycle() {
    let mut history = history(vec![
        committed("T1", 1)
            .read("x", Some("0"))
            .write("x", Some("1")),
        committed("T2", 2)
            .read("x", Some("0"))
            .write("x", Some("2")),
    ]);
    history.initial.insert("x".into(), "0".into());
    assert_names(&history, &["G2", "timestamp-order"]);
}

#[test]
fn a_read_must_see_its_own_write() {
    let history = history(vec![
        committed("T1", 1)
            .write("x", Some("1"))
            .read("x", Some("2")),
        committed("T2", 2).write("x", Some("2")),
    ]);
    assert_names(&history, &["internal"]);
}

#[test]
fn a_value_nobody_wrote_is_caught() {
    let history = history(vec![committed("T1", 1).read("x", Some("9"))]);
    let report = assert_names(&history, &["unknown-element"]);
    assert!(verdict(&report).contains("which no transaction of this history wrote"));
}

#[test]
fn a_snapshot_must_read_the_newest_version_at_its_timestamp() {
    let base = || {
        vec![
            committed("T1", 1).write("x", Some("1")),
            committed("T2", 3).write("x", Some("2")),
        ]
    };
    let at = |ts: u64, value: &str| {
        RegisterTxn::new(format!("snapshot@{ts}"), "carol", Outcome::Committed)
            .at(ts)
            .read("x", Some(value))
    };
    let mut good = base();
    good.extend([at(1, "1"), at(2, "1"), at(3, "2")]);
    assert_names(&history(good), &[]);
    // A read of the future and a stale read: the timestamps do not explain them, though
    // a serial order still exists.
    let mut bad = base();
    bad.extend([at(0, "1"), at(4, "1")]);
    let report = assert_names(&history(bad), &["timestamp-order"]);
    assert!(report.is_serializable() && !report.timestamps_agree());
    assert_eq!(report.anomalies.len(), 2, "{}", verdict(&report));
    let text = verdict(&report);
    assert!(text.contains("is serializable"), "{text}");
    assert!(text.contains("but that is not the order of the engine's timestamps"));
}

#[test]
fn a_value_written_twice_is_read_as_the_newest_at_the_readers_timestamp() {
    let txns = || {
        vec![
            committed("T1", 1).write("x", Some("1")),
            committed("T2", 2).write("x", Some("2")),
            committed("T3", 3).write("x", Some("1")),
        ]
    };
    // At 4 it is T3's 1, the newest: fine. At 1 it is T1's: fine, and T2 comes after.
    let mut fine = txns();
    fine.push(committed("T5", 4).read("x", Some("1")));
    fine.push(
        RegisterTxn::new("snapshot@1", "carol", Outcome::Committed)
            .at(1)
            .read("x", Some("1")),
    );
    let report = assert_names(&history(fine), &[]);
    let text = verdict(&report);
    assert!(
        text.contains(
            "note: T5 read x = 1, a value that T1 and T3 each left; CHECK takes it as the \
             version of T3, the newest of them at or below T5's timestamp 4"
        ),
        "{text}"
    );
    let order = report.serial_order.expect("serializable");
    let place = |name: &str| order.iter().position(|n| n == name);
    assert!(place("snapshot@1") < place("T2") && place("T3") < place("T5"));
    // Without a timestamp the read cannot be placed: no edge, and the verdict says so.
    let mut unknown = txns();
    unknown.push(RegisterTxn::new("T7", "carol", Outcome::Committed).read("x", Some("1")));
    let report = assert_names(&history(unknown), &[]);
    assert!(
        verdict(&report).contains(
            "with no timestamp to tell which it saw, CHECK draws no dependency from that read"
        ),
        "{}",
        verdict(&report)
    );
}

#[test]
fn a_delete_is_a_version_and_not_set_is_read_like_a_value() {
    let mut txns = vec![
        committed("T1", 2).write("x", None),
        committed("T2", 4).read("x", None).write("x", Some("again")),
    ];
    let snapshot = |ts: u64, value: Option<&str>| {
        RegisterTxn::new(format!("snapshot@{ts}"), "carol", Outcome::Committed)
            .at(ts)
            .read("x", value)
    };
    txns.extend([
        snapshot(1, Some("5")),
        snapshot(3, None),
        snapshot(5, Some("again")),
    ]);
    let mut good = history(txns.clone());
    good.initial.insert("x".into(), "5".into());
    let report = assert_names(&good, &[]);
    let order = report.serial_order.expect("serializable");
    assert_eq!(
        order,
        ["snapshot@1", "T1", "snapshot@3", "T2", "snapshot@5"].map(String::from)
    );
    // A snapshot after the delete that still sees the old value.
    txns.push(snapshot(6, Some("5")));
    let mut bad = history(txns);
    bad.initial.insert("x".into(), "5".into());
    assert_names(&bad, &["timestamp-order"]);
}

#[test]
fn an_unknown_outcome_counts_only_once_a_read_saw_its_write() {
    let unknown = || RegisterTxn::new("T1", "alice", Outcome::Unknown).write("x", Some("1"));
    let unseen = check(&history(vec![
        unknown(),
        committed("T2", 5).read("x", None),
    ]));
    assert_eq!(unseen.committed, ["T2"]);
    assert_eq!(unseen.left_out.len(), 1);
    let seen = check(&history(vec![
        unknown(),
        committed("T2", 5).read("x", Some("1")),
    ]));
    assert!(seen.is_serializable(), "{}", verdict(&seen));
    assert_eq!(seen.committed, ["T1", "T2"]);
    assert_eq!(
        seen.serial_order,
        Some(vec!["T1".to_string(), "T2".to_string()])
    );
}

#[test]
fn an_empty_history_says_there_is_nothing_to_check() {
    let report = check(&history(Vec::new()));
    assert!(verdict(&report).starts_with("the history has no committed transaction yet"));
}
