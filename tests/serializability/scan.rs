//! Range reads in the serializability suite: concurrent scan-then-insert workloads
//! (bookings: scan a prefix, then append to a key of it, which may not exist yet) are
//! serializable under range locks, and are not with `SET mistake no-range-locks`.
//!
//! # How a scan enters a list-append history
//!
//! A phantom is a read-write anti-dependency on a predicate: the scan read "the keys
//! with prefix p", and a later transaction changed that set. The list-append checker
//! knows only reads of keys. The bridge is a finite universe: every key any
//! transaction of the workload may write under the prefix is fixed in advance (the
//! `room/` keys below), and no other key has it. Over a finite universe U, the
//! predicate "starts with p" returns exactly the keys of U that exist, so a scan is
//! equivalent to a read of every key of U, those it did not return being read as
//! absent, the empty list. An insert into the range after the scan is then an append
//! to a key the scan read as empty: an item anti-dependency the checker sees. So a
//! predicate G2 cycle (each of two transactions scans, finds room, and inserts) is an
//! item G2 cycle in the recorded history, and a history with no item cycle has no
//! predicate cycle over this prefix either.

use super::support::Harness;
use kv2pc::history::{self, History, Op, Outcome, Txn, appended, parse_list};
use kv2pc::rng::Rng;
use kv2pc::{Client, Error, KeyRange, Mistake, NodeId, Settings};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The prefix every key of the workload has.
const PREFIX: &str = "room/";

/// A scan of the prefix, recorded as reads of the whole universe (see the module doc).
fn scan_reads(rows: &[(String, String)], universe: &[String]) -> Vec<Op> {
    let found: BTreeMap<&str, &str> = (rows.iter())
        .map(|(key, value)| (key.as_str(), value.as_str()))
        .collect();
    assert!(
        found.keys().all(|key| universe.iter().any(|k| k == key)),
        "a scan returned a key outside the universe: {rows:?}"
    );
    (universe.iter())
        .map(|key| Op::Read {
            key: key.clone(),
            list: parse_list(found.get(key.as_str()).copied()),
        })
        .collect()
}

/// One attempt of a locking transaction: a scan of the prefix then, in most, an append
/// to a key of the universe decided by what the scan saw (the booking).
fn attempt(client: &Client, universe: &[String], rng: &mut Rng, elem: String) -> Txn {
    let mut txn = client.begin().expect("begin: no node is down");
    let name = txn.id().expect("an eager begin has an id").to_string();
    let mut record = Txn::new(name, Outcome::Unknown);
    let range = KeyRange::Prefix(PREFIX.into());
    let rows = match txn.scan(&range) {
        Ok(rows) => rows,
        Err(Error::Aborted { .. }) => return record.ended(Outcome::Aborted),
        Err(other) => panic!("{}: the scan failed: {other}", record.name),
    };
    record.ops.extend(scan_reads(&rows, universe));
    if rng.chance(80) {
        let key = rng.pick(universe).clone();
        let seen = rows
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str());
        match txn.put(&key, &appended(seen, &elem)) {
            Ok(()) => record.ops.push(Op::Append { key, elem }),
            Err(Error::Aborted { .. }) => return record.ended(Outcome::Aborted),
            Err(other) => panic!("{}: the insert failed: {other}", record.name),
        }
    }
    match txn.commit() {
        Ok(()) => record.ended(Outcome::Committed),
        Err(Error::Aborted { .. }) => record.ended(Outcome::Aborted),
        Err(other) => panic!("{}: commit failed: {other}", record.name),
    }
}

trait Ended {
    fn ended(self, outcome: Outcome) -> Txn;
}

impl Ended for Txn {
    fn ended(mut self, outcome: Outcome) -> Txn {
        self.outcome = outcome;
        self
    }
}

/// Runs `threads` clients of `per_thread` bookings each over a universe of `keys` keys
/// spread over 3 nodes, with read-only snapshot scans mixed in, and returns the history
/// (ending with a scan of everything) and how many bookings were given up.
fn record(
    settings: Settings,
    threads: usize,
    per_thread: usize,
    keys: usize,
    seed: u64,
) -> History {
    let harness = Harness::open_with(3, settings);
    let per_node = keys.div_ceil(3);
    let universe: Arc<Vec<String>> = Arc::new(
        (0..3)
            .flat_map(|node| harness.keys_on(node, per_node, PREFIX))
            .collect(),
    );
    let workers: Vec<_> = (0..threads)
        .map(|thread| {
            let client = harness.cluster().client(thread as NodeId % 3).unwrap();
            let universe = universe.clone();
            let mut rng = Rng::new(seed ^ ((thread as u64 + 1) * 0x2000_0003));
            std::thread::spawn(move || {
                let mut txns = Vec::new();
                for number in 0..per_thread {
                    if rng.chance(15) {
                        let snapshot = client.begin_read_only();
                        let range = KeyRange::Prefix(PREFIX.into());
                        let rows = snapshot.scan(&range).expect("a snapshot scan");
                        let mut record =
                            Txn::new(format!("S{thread}.{number}"), Outcome::Committed);
                        record.ops.extend(scan_reads(&rows, &universe));
                        txns.push(record);
                        continue;
                    }
                    for attempt_number in 0..200 {
                        let elem = format!("{thread}.{number}.{attempt_number}");
                        let txn = attempt(&client, &universe, &mut rng, elem);
                        let committed = txn.outcome == Outcome::Committed;
                        txns.push(txn);
                        if committed {
                            break;
                        }
                    }
                }
                txns
            })
        })
        .collect();
    let mut history = History::default();
    for worker in workers {
        history
            .txns
            .extend(harness.join(worker, &"a booking client"));
    }
    harness.settle(&"the workload's end");
    let mut last = harness.cluster().client(0).unwrap().begin().unwrap();
    let rows = last.scan(&KeyRange::Prefix(PREFIX.into())).unwrap();
    last.commit().unwrap();
    let mut final_read = Txn::new("final", Outcome::Committed);
    final_read.ops.extend(scan_reads(&rows, &universe));
    history.txns.push(final_read);
    assert_eq!(harness.leftovers(), Vec::<String>::new());
    history
}

fn no_range_locks() -> Settings {
    Settings {
        mistake: Some(Mistake::NoRangeLocks),
        ..Settings::default()
    }
}

#[test]
fn concurrent_scan_then_insert_histories_are_serializable_under_range_locks() {
    for (threads, per_thread, keys, seed) in [(6, 15, 6, 11), (8, 10, 3, 12)] {
        let history = record(Settings::default(), threads, per_thread, keys, seed);
        let report = history::check(&history);
        assert!(
            report.is_serializable(),
            "seed {seed}: {}",
            report.explain(&history)
        );
        let committed = (history.txns.iter())
            .filter(|t| t.outcome == Outcome::Committed)
            .count();
        assert!(
            committed > threads * per_thread / 2,
            "seed {seed}: too few committed"
        );
    }
}

#[test]
fn without_range_locks_scan_then_insert_is_not_serializable() {
    // Deterministically first: nothing waits under the mistake, so one thread can
    // interleave two bookings of one free slot. Each scan finds the slot empty; each
    // books a different key in it; both commit: a predicate G2 cycle.
    let harness = Harness::open_with(3, no_range_locks());
    let universe: Vec<String> = (0..3)
        .flat_map(|node| harness.keys_on(node, 1, PREFIX))
        .collect();
    let client = harness.cluster().client(0).unwrap();
    let range = KeyRange::Prefix(PREFIX.into());
    let (mut a, mut b) = (client.begin().unwrap(), client.begin().unwrap());
    let (mut ra, mut rb) = (
        Txn::new("A", Outcome::Committed),
        Txn::new("B", Outcome::Committed),
    );
    ra.ops
        .extend(scan_reads(&a.scan(&range).unwrap(), &universe));
    rb.ops
        .extend(scan_reads(&b.scan(&range).unwrap(), &universe));
    for (txn, record, key) in [
        (&mut a, &mut ra, &universe[0]),
        (&mut b, &mut rb, &universe[1]),
    ] {
        let elem = format!("{}'s booking", record.name);
        txn.put(key, &appended(None, &elem)).unwrap();
        let key = key.clone();
        record.ops.push(Op::Append { key, elem });
    }
    a.commit().expect("no lock stops A under the mistake");
    b.commit().expect("no lock stops B under the mistake");
    let mut last = client.begin().unwrap();
    let mut final_read = Txn::new("final", Outcome::Committed);
    final_read
        .ops
        .extend(scan_reads(&last.scan(&range).unwrap(), &universe));
    last.commit().unwrap();
    let history = History {
        txns: vec![ra, rb, final_read],
    };
    assert_eq!(history::check(&history).names(), ["G2"]);
    drop(harness);
    // And the concurrent workload: contention on three keys makes a phantom all but
    // certain within a few histories.
    let caught = (0..5).any(|seed| {
        let history = record(no_range_locks(), 8, 10, 3, 100 + seed);
        !history::check(&history).is_serializable()
    });
    assert!(
        caught,
        "five histories without range locks were all serializable"
    );
}

#[test]
fn a_range_lock_lost_in_a_crash_lets_no_phantom_through() {
    // A restarted node rebuilds no shared lock, range locks included (see
    // `lock::range`). The scanner does not get to see the insert the lost lock let
    // through: the node lost its part of the scan's transaction, so the scanner's next
    // scan there, or its commit, aborts it.
    let harness = Harness::open(3);
    let cluster = harness.cluster();
    let key = harness.keys_on(1, 1, PREFIX).remove(0);
    let range = KeyRange::Prefix(PREFIX.into());
    let mut scanner = cluster.client(0).unwrap().begin().unwrap();
    assert_eq!(scanner.scan(&range).unwrap(), vec![]);
    cluster.crash(1).unwrap();
    cluster.restart(1).unwrap();
    harness.settle(&"node 1's restart");
    let inserter = cluster.client(2).unwrap();
    inserter
        .put(&key, "phantom")
        .expect("the lost range lock does not hold the insert");
    match scanner.scan(&range) {
        Err(Error::Aborted { reason, .. }) => {
            assert!(reason.contains("crashed and restarted"), "{reason}")
        }
        other => panic!("the scanner went on after losing its range lock: {other:?}"),
    }
    harness.settle(&"the abort");
    assert_eq!(harness.leftovers(), Vec::<String>::new());
}
