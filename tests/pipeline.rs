//! Pipelined clients (`client::pipeline`): many transactions in flight on one thread.
//! Every submitted transaction gets exactly one outcome; the committed ones add up as a
//! serial run would; a node crash with many in flight gives each an outcome within a
//! bounded wait; errors say what went wrong.

use kv2pc::client::{Outcome, Pipeline, Step, Steps, Ticket};
use kv2pc::{Cluster, Config, Error, NodeId, Settings};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tempfile::TempDir;

fn cluster(dir: &TempDir) -> Cluster {
    let config = Config {
        nodes: 3,
        manual_clock: false,
        settings: Settings::default(),
    };
    Cluster::open(dir.path(), config).expect("open cluster")
}

fn key_on(cluster: &Cluster, node: NodeId, index: usize) -> String {
    (0..)
        .map(|i| format!("k{i}"))
        .filter(|key| cluster.owner(key) == node)
        .nth(index)
        .expect("a key on every node")
}

/// Collects every outcome, each within `bound`, and checks each ticket comes once.
fn collect_all(pipeline: &mut Pipeline, bound: Duration) -> BTreeMap<Ticket, Outcome> {
    let mut outcomes = BTreeMap::new();
    let start = Instant::now();
    while let Some((ticket, outcome)) = pipeline.collect_timeout(bound) {
        assert!(
            outcomes.insert(ticket, outcome).is_none(),
            "{ticket:?} twice"
        );
        assert!(start.elapsed() < bound * 4, "collecting took too long");
    }
    assert_eq!(pipeline.in_flight(), 0, "no outcome within {bound:?}");
    assert!(pipeline.collect().is_none(), "nothing is left to collect");
    outcomes
}

/// An increment of `key` (a read for update, then a write of one more).
fn increment(key: String) -> impl kv2pc::client::Program {
    let mut wrote = false;
    move |read: Option<Option<String>>| match read {
        None if wrote => Step::Commit,
        None => Step::GetForUpdate(key.clone()),
        Some(value) => {
            wrote = true;
            let value: u64 = value.and_then(|v| v.parse().ok()).unwrap_or(0);
            Step::Put(key.clone(), (value + 1).to_string())
        }
    }
}

#[test]
fn every_transaction_gets_one_outcome_and_counters_add_up() {
    let dir = TempDir::new().expect("a temp dir");
    let cluster = cluster(&dir);
    let client = cluster.client(0).expect("a client");
    let counters: Vec<String> = (0..3).map(|node| key_on(&cluster, node, 0)).collect();
    let mut pipeline = client.pipeline(24);
    let mut submitted = BTreeMap::new();
    let mut outcomes = BTreeMap::new();
    for index in 0..300 {
        let counter = counters[index % counters.len()].clone();
        // Two counters on two nodes in one transaction, every third one.
        let ticket = if index % 3 == 0 {
            let other = counters[(index + 1) % counters.len()].clone();
            let (mut first, mut second) = (increment(counter.clone()), increment(other.clone()));
            let mut half = 0;
            pipeline.submit(move |read: Option<Option<String>>| {
                use kv2pc::client::Program;
                let step = if half == 0 {
                    first.next(read)
                } else {
                    second.next(read)
                };
                match step {
                    Step::Commit if half == 0 => {
                        half = 1;
                        second.next(None)
                    }
                    step => step,
                }
            });
            submitted.insert(Ticket(index as u64), vec![counter, other]);
            Ticket(index as u64)
        } else {
            let ticket = pipeline.submit(increment(counter.clone()));
            submitted.insert(ticket, vec![counter]);
            ticket
        };
        assert_eq!(
            ticket,
            Ticket(index as u64),
            "tickets are numbered in order"
        );
        assert!(
            pipeline.in_flight() <= 24,
            "the limit bounds what is in flight"
        );
        while let Some((ticket, outcome)) = pipeline.poll() {
            assert!(
                outcomes.insert(ticket, outcome).is_none(),
                "{ticket:?} twice"
            );
        }
    }
    for (ticket, outcome) in collect_all(&mut pipeline, Duration::from_secs(30)) {
        assert!(
            outcomes.insert(ticket, outcome).is_none(),
            "{ticket:?} twice"
        );
    }
    assert_eq!(
        outcomes.len(),
        submitted.len(),
        "one outcome per transaction"
    );
    let mut expected: BTreeMap<&str, u64> = BTreeMap::new();
    for (ticket, outcome) in &outcomes {
        match outcome {
            Ok(reads) => {
                assert_eq!(reads.len(), submitted[ticket].len(), "one read per counter");
                for counter in &submitted[ticket] {
                    *expected.entry(counter).or_default() += 1;
                }
            }
            Err(Error::Aborted { .. }) => {}
            Err(other) => panic!("{ticket:?}: {other}"),
        }
    }
    let committed: u64 = expected.values().sum();
    assert!(committed > 200, "most increments commit: {committed}");
    for counter in &counters {
        let value = client.get(counter).expect("a read").unwrap_or_default();
        let want = expected.get(counter.as_str()).copied().unwrap_or(0);
        assert_eq!(
            value,
            want.to_string(),
            "{counter}: one per committed increment"
        );
    }
    cluster.settle();
    assert!(cluster.locks().is_empty(), "{:?}", cluster.locks());
}

/// How a node dies.
#[derive(Clone, Copy)]
enum Crash {
    /// `CRASH node N`: the dying node answers what it held with its death.
    Kill,
    /// Its thread panics: it answers nothing, and its reply channels close.
    Panic,
}

/// Crashes `victim` while 64 two-node writes are in flight from node 0's session: each
/// gets an outcome within a bounded wait, and each reported commit is durable.
fn crash_with_many_in_flight(victim: NodeId, how: Crash) {
    let dir = TempDir::new().expect("a temp dir");
    let cluster = cluster(&dir);
    let client = cluster.client(0).expect("a client");
    let mut pipeline = client.pipeline(64);
    let mut written = BTreeMap::new();
    for index in 0..64 {
        let keys = [key_on(&cluster, 1, index), key_on(&cluster, 2, index)];
        let steps = keys
            .iter()
            .map(|key| Step::Put(key.clone(), format!("v{index}")));
        let ticket = pipeline.submit(Steps::new(steps.collect::<Vec<_>>()));
        written.insert(ticket, keys);
    }
    match how {
        Crash::Kill => cluster.crash(victim).expect("crash"),
        Crash::Panic => (cluster.inject_panic(victim, "a bug")).expect("a panic"),
    }
    let outcomes = collect_all(&mut pipeline, Duration::from_secs(20));
    assert_eq!(outcomes.len(), 64, "every transaction has an outcome");
    let hit = outcomes.values().filter(|outcome| outcome.is_err()).count();
    assert!(hit > 0, "the crash found transactions in flight");
    cluster.restart(victim).expect("restart");
    let reader = cluster.client(1).expect("a client");
    for (ticket, outcome) in &outcomes {
        match outcome {
            Ok(_) => {
                for key in &written[ticket] {
                    let value = reader.get(key).expect("a read after the restart");
                    assert_eq!(
                        value,
                        Some(format!("v{}", ticket.0)),
                        "{key}: a commit lasts"
                    );
                }
            }
            Err(error @ (Error::NodeDown { .. } | Error::OutcomeUnknown { .. })) => {
                let text = error.to_string();
                assert!(text.contains(&format!("node {victim}")), "{text}");
            }
            Err(error @ Error::Aborted { .. }) => assert!(!error.to_string().is_empty()),
            Err(other) => panic!("{ticket:?}: unexpected {other}"),
        }
    }
}

#[test]
fn a_participant_crash_with_many_in_flight_gives_each_an_outcome() {
    crash_with_many_in_flight(1, Crash::Kill);
}

#[test]
fn a_node_thread_that_panics_with_many_in_flight_gives_each_an_outcome() {
    crash_with_many_in_flight(1, Crash::Panic);
    crash_with_many_in_flight(0, Crash::Panic);
}

#[test]
fn a_coordinator_crash_with_many_in_flight_gives_each_an_outcome() {
    crash_with_many_in_flight(0, Crash::Kill);
}

#[test]
fn errors_are_clear_and_abort_the_transaction() {
    let dir = TempDir::new().expect("a temp dir");
    let cluster = cluster(&dir);
    let client = cluster.client(0).expect("a client");
    let mut pipeline = client.pipeline(4);
    let x = key_on(&cluster, 1, 0);
    let bad_key = pipeline.submit(Steps::new([
        Step::Put(x.clone(), "1".into()),
        Step::Put(String::new(), "1".into()),
    ]));
    let long_value = "v".repeat(10 << 20);
    let bad_value = pipeline.submit(Steps::new([Step::Put(x.clone(), long_value)]));
    let nothing = pipeline.submit(Steps::new([]));
    let outcomes = collect_all(&mut pipeline, Duration::from_secs(20));
    match &outcomes[&bad_key] {
        Err(Error::InvalidInput(why)) => assert!(why.contains("empty"), "{why}"),
        other => panic!("an empty key gave {other:?}"),
    }
    assert!(matches!(&outcomes[&bad_value], Err(Error::InvalidInput(_))));
    assert_eq!(outcomes[&nothing].as_ref().ok(), Some(&Vec::new()));
    cluster.settle();
    assert!(cluster.locks().is_empty(), "{:?}", cluster.locks());
    assert_eq!(
        client.get(&x).expect("a read"),
        None,
        "the first write was undone"
    );
    cluster.crash(2).expect("crash");
    let down = pipeline.submit(Steps::new([Step::Put(key_on(&cluster, 2, 0), "1".into())]));
    match pipeline.collect() {
        Some((ticket, Err(error @ Error::NodeDown { node: 2, .. }))) if ticket == down => {
            assert!(error.to_string().contains("RESTART"), "{error}");
        }
        other => panic!("a write to a down node gave {other:?}"),
    }
}
