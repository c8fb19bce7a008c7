//! Free-running fault runs: client threads run list-append transactions freely (some of
//! them lock-free snapshots, every abort retried) while the caller's thread crashes, arms
//! crash points, restarts, ticks and checkpoints at random. Unlike the seeded runs nothing
//! waits between two steps, so races happen; a run cannot be replayed, but a failure
//! shows the faults and the trace of the transactions involved.

use super::scenario::{Call, keys, plan};
use crate::support::{Harness, TICK};
use kv2pc::history::{self, History, Op, Outcome, Report, Txn};
use kv2pc::rng::Rng;
use kv2pc::{Client, Cluster, CrashPoint, Error, TraceEvent};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const NODES: u32 = 3;
const CLIENTS: usize = 6;
/// The most faults per run, one every 0.5 to 2 ms while the clients work.
const FAULTS: usize = 150;
/// Transactions each client attempts (a `TICK` settles the cluster, so the faults alone
/// would not bound how much the clients do).
const ATTEMPTS: usize = 300;

/// Everything that happened in a run: the cluster's trace and the faults, in order.
type Journal = Arc<Mutex<Vec<String>>>;

/// What one free-running client recorded.
#[derive(Default)]
struct Recorded {
    txns: Vec<Txn>,
    /// Elements whose write failed with the node down: they must never appear.
    lost: Vec<(String, String)>,
}

/// Runs one free-running round and judges it; the error explains a failure.
pub fn run(seed: u64) -> Result<(History, Report), String> {
    let harness = Harness::open(NODES);
    let keys: Arc<Vec<String>> = Arc::new(keys(NODES, 2));
    let journal = Journal::default();
    let tracing = journal.clone();
    let hook = move |event: &TraceEvent| tracing.lock().push(event.to_string());
    harness.cluster().set_trace(Some(Arc::new(hook)));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<JoinHandle<Recorded>> = (0..CLIENTS)
        .map(|number| {
            let client = harness.cluster().client(number as u32 % NODES).unwrap();
            let (keys, stop) = (keys.clone(), stop.clone());
            let seed = seed * 1000 + number as u64;
            std::thread::spawn(move || free_client(&client, &keys, &stop, number, seed))
        })
        .collect();
    let working = || clients.iter().any(|client| !client.is_finished());
    inject_faults(harness.cluster(), &mut Rng::new(seed), &journal, working);
    stop.store(true, Ordering::SeqCst);
    let recorded = finish_clients(harness.cluster(), clients)?;
    harness
        .recover(&"the run's end")
        .map_err(|left| format!("left over after recovery: {left:?}"))?;
    let (history, problems) = judge(&harness, &keys, recorded);
    let report = history::check(&history);
    if problems.is_empty() && report.is_serializable() {
        return Ok((history, report));
    }
    Err(explain(&history, &report, &problems, &journal.lock()))
}

/// Crashes, arms, restarts, ticks and checkpoints at random while the clients work.
fn inject_faults(cluster: &Cluster, rng: &mut Rng, journal: &Journal, working: impl Fn() -> bool) {
    let note = |text: String| journal.lock().push(text);
    for _ in 0..FAULTS {
        if !working() {
            return;
        }
        std::thread::sleep(Duration::from_micros(500 + rng.below(1500) as u64));
        let node = rng.below(NODES as usize) as u32;
        match rng.below(10) {
            0 => note(format!(
                "FAULT crash node {node}: {:?}",
                cluster.crash(node).err()
            )),
            1 | 2 => {
                let point = *rng.pick(&CrashPoint::ALL);
                let result = cluster.arm_crash(node, point).err();
                note(format!("FAULT arm node {node} at {point}: {result:?}"))
            }
            3..=5 => note(format!(
                "FAULT restart node {node}: {:?}",
                cluster.restart(node)
            )),
            6 | 7 => note(format!("FAULT tick: {:?}", cluster.tick(TICK).err())),
            _ => note(format!(
                "FAULT checkpoint node {node}: {:?}",
                cluster.checkpoint(node)
            )),
        }
    }
}

/// Waits for the clients to stop, restarting nodes and ticking so none stays blocked.
fn finish_clients(
    cluster: &Cluster,
    clients: Vec<JoinHandle<Recorded>>,
) -> Result<Vec<Recorded>, String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut recorded = Vec::new();
    for client in clients {
        while !client.is_finished() {
            if Instant::now() > deadline {
                return Err(format!(
                    "a client never finished; status {:?}; locks {:?}",
                    cluster.status(),
                    cluster.locks()
                ));
            }
            for node in 0..NODES {
                if !cluster.is_up(node) {
                    let _ = cluster.restart(node);
                }
            }
            let _ = cluster.tick(TICK);
            std::thread::sleep(Duration::from_millis(1));
        }
        recorded.push(client.join().map_err(|_| "a client thread panicked")?);
    }
    Ok(recorded)
}

/// The history (ending with a read of every key) and every problem with the final data.
fn judge(harness: &Harness, keys: &[String], recorded: Vec<Recorded>) -> (History, Vec<String>) {
    let lists: BTreeMap<String, Vec<String>> = (harness.data().into_iter())
        .map(|(key, value)| (key, history::parse_list(Some(&value))))
        .collect();
    let mut history = History::default();
    let mut problems = Vec::new();
    for client in recorded {
        for (key, elem) in client.lost {
            if lists.get(&key).is_some_and(|l| l.contains(&elem)) {
                problems.push(format!(
                    "{elem} in {key} was written to a dead node, yet is visible"
                ));
            }
        }
        history.txns.extend(client.txns);
    }
    let mut final_read = Txn::new("final", Outcome::Committed);
    for key in keys {
        let list = lists.get(key).cloned().unwrap_or_default();
        final_read.ops.push(Op::Read {
            key: key.clone(),
            list,
        });
    }
    history.txns.push(final_read);
    problems.extend(history::check_final(&history, &lists));
    (history, problems)
}

/// The problems, the anomalies, and the faults, crashes and trace of the transactions
/// involved (named `client/T<n>`).
fn explain(history: &History, report: &Report, problems: &[String], journal: &[String]) -> String {
    let mut involved: Vec<String> = (report.anomalies.iter())
        .flat_map(|anomaly| anomaly.transactions())
        .chain(
            problems
                .iter()
                .filter_map(|p| Some(p.split_whitespace().next()?.to_string())),
        )
        .filter_map(|name| Some(name.split_once('/')?.1.to_string()))
        .collect();
    involved.sort();
    involved.dedup();
    let mentions = |line: &str| {
        (involved.iter())
            .any(|tid| line.ends_with(tid.as_str()) || line.contains(&format!("{tid} ")))
    };
    let relevant: Vec<String> = (journal.iter())
        .filter(|line| line.starts_with("FAULT") || line.contains("CRASH") || mentions(line))
        .map(|line| format!("  {line}"))
        .collect();
    format!(
        "{}\n{}\nfaults, crashes and the trace of {involved:?}:\n{}",
        problems.join("\n"),
        report.explain(history),
        relevant.join("\n")
    )
}

/// One client of the free-running test: runs list-append transactions (some of them
/// lock-free snapshots) until it has made [`ATTEMPTS`] or is told to stop, recording
/// each attempt.
fn free_client(
    client: &Client,
    keys: &[String],
    stop: &AtomicBool,
    number: usize,
    seed: u64,
) -> Recorded {
    let mut rng = Rng::new(seed);
    let mut recorded = Recorded::default();
    let mut elems = 0;
    while recorded.txns.len() < ATTEMPTS && !stop.load(Ordering::SeqCst) {
        let snapshot = rng.chance(15);
        let calls = plan(&mut rng, keys, snapshot);
        let txn = if snapshot {
            snapshot_attempt(client, &calls, recorded.txns.len(), number)
        } else {
            locking_attempt(client, &calls, number, &mut elems, &mut recorded.lost)
        };
        if let Some(txn) = txn {
            recorded.txns.push(txn);
        } else {
            // The coordinator is down: wait for the fault thread to restart it.
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    recorded
}

fn snapshot_attempt(client: &Client, calls: &[Call], count: usize, number: usize) -> Option<Txn> {
    let snapshot = client.begin_read_only();
    let name = format!("c{number}.{count}/snapshot@{}", snapshot.read_ts());
    let mut txn = Txn::new(name, Outcome::Committed);
    for call in calls {
        let Call::Read(key) = call else { continue };
        match snapshot.get(key) {
            Ok(value) => txn.ops.push(Op::Read {
                key: key.clone(),
                list: history::parse_list(value.as_deref()),
            }),
            // A node down, or a snapshot older than a recovered node keeps.
            Err(Error::NodeDown { .. } | Error::InvalidInput(_)) => break,
            Err(other) => panic!("{}: a snapshot read failed: {other}", txn.name),
        }
    }
    snapshot.commit();
    Some(txn)
}

/// One attempt of a locking transaction; `None` if it could not even begin.
fn locking_attempt(
    client: &Client,
    calls: &[Call],
    number: usize,
    elems: &mut usize,
    lost: &mut Vec<(String, String)>,
) -> Option<Txn> {
    let mut txn = client.begin().ok()?;
    let tid = txn.id().map(|tid| tid.to_string()).unwrap_or_default();
    let mut record = Txn::new(format!("c{number}/{tid}"), Outcome::Unknown);
    let mut known: BTreeMap<&str, Option<String>> = BTreeMap::new();
    for call in calls {
        let result = match call {
            Call::Read(key) => txn.get(key).map(|value| {
                record.ops.push(Op::Read {
                    key: key.clone(),
                    list: history::parse_list(value.as_deref()),
                });
                known.insert(key, value);
            }),
            Call::ReadForUpdate(_) | Call::Delete(_) => {
                unreachable!("`plan` makes only reads and appends")
            }
            Call::Append(key) => {
                *elems += 1;
                let elem = format!("c{number}.{elems}");
                let value = history::appended(known[key.as_str()].as_deref(), &elem);
                let result = txn.put(key, &value);
                match &result {
                    Ok(()) => {
                        record.ops.push(Op::Append {
                            key: key.clone(),
                            elem,
                        });
                        known.insert(key, Some(value));
                    }
                    Err(Error::NodeDown { .. }) => lost.push((key.clone(), elem)),
                    Err(_) => {}
                }
                result
            }
        };
        match result {
            Ok(()) => {}
            // Dropping the transaction aborts it: it never commits.
            Err(Error::Aborted { .. } | Error::NodeDown { .. }) => {
                record.outcome = Outcome::Aborted;
                return Some(record);
            }
            Err(other) => panic!("{}: unexpected error: {other}", record.name),
        }
    }
    record.outcome = match txn.commit() {
        Ok(()) => Outcome::Committed,
        Err(Error::Aborted { .. }) => Outcome::Aborted,
        Err(Error::OutcomeUnknown { .. } | Error::NodeDown { .. }) => Outcome::Unknown,
        Err(other) => panic!("{}: commit failed unexpectedly: {other}", record.name),
    };
    Some(record)
}
