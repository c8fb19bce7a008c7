//! Isolation (DESIGN.md invariant 3): every history of committed transactions is
//! serializable.
//!
//! The checker (`kv2pc::history`) proves it can fail in `tests/history.rs`: hand-made
//! histories with each of Adya's anomalies are caught and named. Here, concurrent
//! list-append workloads (many client threads over several nodes; read-modify-append
//! transactions over keys on different nodes, read-only transactions, double appends,
//! reads for update; every aborted attempt retried) are recorded and checked: the dependency graph has no cycle, no committed
//! transaction read an aborted or intermediate write, and the final lists hold exactly
//! the committed appends.

mod support;

use kv2pc::history::{self, History, Op, Outcome, Txn, appended, parse_list};
#[path = "serializability/scan.rs"]
mod scan;

use kv2pc::rng::Rng;
use kv2pc::{Client, CommitMode, DeadlockPolicy, Error, NodeId, Settings};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::Harness;

// ---- The cluster's histories are serializable ---------------------------------------

/// One client thread's planned operation.
#[derive(Clone, Debug)]
enum Planned {
    Read(String),
    /// A locked read under an exclusive lock (`Transaction::get_for_update`).
    ReadForUpdate(String),
    Append(String),
}

/// How a transaction runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Under strict two-phase locking (`Client::begin`), reading and appending.
    Locking,
    /// A lock-free read-only snapshot (`Client::begin_read_only`).
    Snapshot,
    /// One lock-free read in a transaction of its own (`Client::get`).
    Autocommit,
}

/// A transaction to run until it commits.
struct Plan {
    kind: Kind,
    ops: Vec<Planned>,
}

/// A transaction's plan over random keys, and so usually several nodes: reads followed
/// by appends to the keys read (some twice, then read again), or only reads, under locks
/// or in a snapshot. A third of the locking plans read for update (their read-only ones
/// too, which then vote READ-ONLY holding exclusive locks).
fn plan(rng: &mut Rng, keys: &[String]) -> Plan {
    let kind = match rng.below(100) {
        0..=14 => Kind::Snapshot,
        15..=24 => Kind::Autocommit,
        _ => Kind::Locking,
    };
    if kind == Kind::Autocommit {
        let ops = vec![Planned::Read(rng.pick(keys).clone())];
        return Plan { kind, ops };
    }
    let count = (1 + rng.below(3)).min(keys.len());
    let mut chosen: Vec<&String> = Vec::new();
    while chosen.len() < count {
        let key = rng.pick(keys);
        if !chosen.contains(&key) {
            chosen.push(key);
        }
    }
    let read_only = kind == Kind::Snapshot || rng.chance(20);
    let for_update = kind == Kind::Locking && rng.chance(33);
    let mut ops = Vec::new();
    for key in chosen {
        ops.push(match for_update {
            true => Planned::ReadForUpdate(key.clone()),
            false => Planned::Read(key.clone()),
        });
        if !read_only {
            ops.push(Planned::Append(key.clone()));
            if rng.chance(10) {
                ops.push(Planned::Append(key.clone()));
                ops.push(Planned::Read(key.clone()));
            }
        }
    }
    Plan { kind, ops }
}

/// Runs a lock-free read-only plan: it takes no lock, so it never aborts. `name` names it
/// in the history (it has no transaction id).
fn read_lock_free(client: &Client, plan: &Plan, name: String) -> Txn {
    let mut record = Txn::new(name, Outcome::Committed);
    let snapshot = (plan.kind == Kind::Snapshot).then(|| client.begin_read_only());
    for op in &plan.ops {
        let Planned::Read(key) = op else {
            unreachable!("lock-free plans only read")
        };
        let value = match &snapshot {
            Some(snapshot) => snapshot.get(key),
            None => client.get(key),
        };
        let value =
            value.unwrap_or_else(|e| panic!("{}: a lock-free read failed: {e}", record.name));
        record.ops.push(Op::Read {
            key: key.clone(),
            list: parse_list(value.as_deref()),
        });
    }
    if let Some(snapshot) = snapshot {
        snapshot.commit();
    }
    record
}

/// Runs one attempt of a locking `plan`, recording it; `elems` numbers this thread's
/// elements.
///
/// Every other attempt begins lazily (with its first operation, `Request::BeginAnd`), so
/// both ways of beginning are checked; its name is its id once it has one.
fn attempt(client: &Client, plan: &[Planned], thread: usize, elems: &mut usize) -> Txn {
    let lazily = elems.is_multiple_of(2);
    let mut txn = if lazily {
        client.begin_lazily()
    } else {
        client.begin().expect("begin: no node is down")
    };
    let name = |txn: &kv2pc::Transaction| match txn.id() {
        Some(tid) => tid.to_string(),
        None => format!("thread {thread}'s unbegun transaction"),
    };
    let mut record = Txn::new(name(&txn), Outcome::Unknown);
    let mut known: BTreeMap<String, Option<String>> = BTreeMap::new();
    for op in plan {
        let result = match op {
            Planned::Read(key) | Planned::ReadForUpdate(key) => {
                let value = match op {
                    Planned::ReadForUpdate(_) => txn.get_for_update(key),
                    _ => txn.get(key),
                };
                value.map(|value| {
                    record.ops.push(Op::Read {
                        key: key.clone(),
                        list: parse_list(value.as_deref()),
                    });
                    known.insert(key.clone(), value);
                })
            }
            Planned::Append(key) => {
                *elems += 1;
                let elem = format!("{thread}.{elems}");
                let value = appended(known[key].as_deref(), &elem);
                txn.put(key, &value).map(|()| {
                    record.ops.push(Op::Append {
                        key: key.clone(),
                        elem,
                    });
                    known.insert(key.clone(), Some(value));
                })
            }
        };
        if lazily {
            record.name = name(&txn);
        }
        match result {
            Ok(()) => {}
            Err(Error::Aborted { .. }) => {
                record.outcome = Outcome::Aborted;
                return record;
            }
            Err(other) => panic!("{}: unexpected error: {other}", record.name),
        }
    }
    record.outcome = match txn.commit() {
        Ok(()) => Outcome::Committed,
        Err(Error::Aborted { .. }) => Outcome::Aborted,
        Err(other) => panic!("{}: commit failed unexpectedly: {other}", record.name),
    };
    record
}

/// The lock timeout under `SET deadlock timeout`, which is also how far the manual clock
/// moves at each of the test's ticks.
const LOCK_TIMEOUT: Duration = Duration::from_millis(10);

/// The most attempts of one transaction before a thread gives it up.
const MAX_ATTEMPTS: usize = 200;

/// What one workload ran.
struct Workload {
    nodes: u32,
    threads: usize,
    txns_per_thread: usize,
    keys: usize,
    seed: u64,
}

/// Runs `workload` concurrently under the deadlock policy `deadlock` and returns its
/// history, ending with a read of every key. Under `timeout` the manual clock is moved
/// on while the clients run, so that waits time out.
fn record(
    workload: &Workload,
    deadlock: DeadlockPolicy,
    commit: CommitMode,
) -> (History, BTreeMap<String, Vec<String>>, usize) {
    let settings = Settings {
        deadlock,
        commit,
        lock_timeout: LOCK_TIMEOUT,
        ..Settings::default()
    };
    let harness = Harness::open_with(workload.nodes, settings);
    // The same number of keys on every node.
    let per_node = workload.keys.div_ceil(workload.nodes as usize);
    let keys: Arc<Vec<String>> = Arc::new(
        (0..workload.nodes)
            .flat_map(|node| harness.keys_on(node, per_node, "key"))
            .collect(),
    );
    let workers: Vec<_> = (0..workload.threads)
        .map(|thread| {
            let coordinator = thread as NodeId % workload.nodes;
            let client = harness.cluster().client(coordinator).unwrap();
            let keys = keys.clone();
            let mut rng = Rng::new(workload.seed ^ ((thread as u64 + 1) * 0x1000_0001));
            let count = workload.txns_per_thread;
            let backs_off = deadlock != DeadlockPolicy::Detect;
            std::thread::spawn(move || {
                let mut txns = Vec::new();
                let mut elems = 0;
                let mut gave_up = 0;
                for number in 0..count {
                    let plan = plan(&mut rng, &keys);
                    if plan.kind != Kind::Locking {
                        let name = format!("{:?}{thread}.{number}", plan.kind);
                        txns.push(read_lock_free(&client, &plan, name));
                        continue;
                    }
                    let done = (0..MAX_ATTEMPTS).any(|tries| {
                        let txn = attempt(&client, &plan.ops, thread, &mut elems);
                        let committed = txn.outcome == Outcome::Committed;
                        txns.push(txn);
                        // Policies that abort instead of waiting would otherwise have
                        // the retries collide again at once: back off a random while.
                        if !committed && backs_off {
                            let most = 50 * (tries as u64 + 1).min(20);
                            std::thread::sleep(Duration::from_micros(
                                rng.below(most as usize) as u64
                            ));
                        }
                        committed
                    });
                    gave_up += usize::from(!done);
                }
                (txns, gave_up)
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut history = History::default();
    let mut gave_up = 0;
    for worker in workers {
        while !worker.is_finished() {
            assert!(
                Instant::now() < deadline,
                "the workload is stuck: locks {:?}",
                harness.cluster().locks()
            );
            std::thread::sleep(Duration::from_millis(1));
            if deadlock == DeadlockPolicy::Timeout {
                harness.cluster().tick(LOCK_TIMEOUT).unwrap();
            }
        }
        let (txns, given_up) = worker.join().expect("a client thread panicked");
        history.txns.extend(txns);
        gave_up += given_up;
    }
    harness.settle(&"the workload's end");
    let reader = harness.cluster().client(0).unwrap();
    let mut last = reader.begin().unwrap();
    let tid = last.id().expect("an eager begin has an id");
    let mut final_read = Txn::new(format!("{tid}(final)"), Outcome::Committed);
    let mut lists = BTreeMap::new();
    for key in keys.iter() {
        let list = parse_list(last.get(key).unwrap().as_deref());
        final_read.ops.push(Op::Read {
            key: key.clone(),
            list: list.clone(),
        });
        lists.insert(key.clone(), list);
    }
    last.commit().unwrap();
    history.txns.push(final_read);
    // In parallel mode the client hears COMMIT before the Decision and the COMMITs
    // leave: they settle before the check.
    harness.settle(&format!("the last commit of seed {}", workload.seed));
    assert_eq!(harness.leftovers(), Vec::<String>::new());
    (history, lists, gave_up)
}

/// The checker is not vacuous on real histories: make one committed read-modify-append
/// read a stale list (as if the update it raced with were lost) and it must find a cycle.
fn assert_a_lost_update_would_be_caught(history: &History) {
    let writer: BTreeMap<String, String> = (history.txns.iter())
        .flat_map(|t| t.ops.iter().map(move |op| (t, op)))
        .filter_map(|(t, op)| match op {
            Op::Append { elem, .. } => Some((elem.clone(), t.name.clone())),
            Op::Read { .. } | Op::Delete { .. } => None,
        })
        .collect();
    // Dropping the last element must not leave an intermediate version of its writer.
    let droppable = |list: &[String]| match list {
        [] => false,
        [_] => true,
        [.., before, last] => writer.get(before) != writer.get(last),
    };
    let mut mutated = history.clone();
    let victim = (mutated.txns.iter_mut())
        .filter(|t| t.outcome == Outcome::Committed)
        .find_map(|t| {
            let appends_to = |key: &String| {
                (t.ops.iter()).any(|op| matches!(op, Op::Append { key: k, .. } if k == key))
            };
            let index = t.ops.iter().position(
                |op| matches!(op, Op::Read { key, list } if droppable(list) && appends_to(key)),
            )?;
            Some((t.name.clone(), &mut t.ops[index]))
        });
    let Some((name, Op::Read { list, .. })) = victim else {
        panic!("the history has no committed read-modify-append of a non-empty list");
    };
    list.pop();
    let report = history::check(&mutated);
    assert!(
        report.names().contains(&"G2"),
        "a stale read by {name} went unnoticed: {:?}",
        report.names()
    );
}

#[test]
fn concurrent_list_append_histories_are_serializable() {
    let workload = |nodes, threads, txns_per_thread, keys, seed| Workload {
        nodes,
        threads,
        txns_per_thread,
        keys,
        seed,
    };
    let workloads = [
        workload(3, 8, 30, 12, 1),
        workload(4, 10, 25, 16, 2),
        // Hot keys: most transactions conflict.
        workload(3, 8, 20, 4, 3),
        workload(3, 12, 25, 6, 4),
        // Many clients over many nodes.
        workload(5, 16, 15, 10, 5),
        workload(4, 8, 40, 8, 6),
    ];
    // `KV2PC_HISTORIES=N` checks N more, shaped by their seeds, to hunt for rare ones.
    let more = std::env::var("KV2PC_HISTORIES").map_or(0, |n| n.parse().unwrap_or(0));
    let workloads: Vec<Workload> = (workloads.into_iter())
        .chain((0..more).map(|n: u64| {
            let mut rng = Rng::new(1000 + n);
            let nodes = 3 + rng.below(3) as u32;
            let keys = nodes as usize + rng.below(12);
            workload(nodes, 8 + rng.below(9), 10 + rng.below(20), keys, 1000 + n)
        }))
        .collect();
    let mut totals = Totals::default();
    for workload in &workloads {
        totals.add(check_workload(
            workload,
            DeadlockPolicy::Detect,
            CommitMode::Classic,
        ));
    }
    println!("serializability: {}", totals.line());
}

/// Parallel commits (`SET commit parallel`) keep the same histories serializable: the
/// client told COMMIT before the Decision is logged, a read-only participant prepared
/// durably, and snapshot reads beside staged transactions.
#[test]
fn parallel_commit_histories_are_serializable() {
    let spread = Workload {
        nodes: 3,
        threads: 8,
        txns_per_thread: 30,
        keys: 12,
        seed: 1,
    };
    let workloads: Vec<Workload> = [spread].into_iter().chain(hot_and_wide()).collect();
    let mut totals = Totals::default();
    for workload in &workloads {
        totals.add(check_workload(
            workload,
            DeadlockPolicy::Detect,
            CommitMode::Parallel,
        ));
    }
    println!("serializability, parallel commits: {}", totals.line());
}

/// Each deadlock policy but `off` (which would leave deadlocks for good) keeps the
/// histories serializable: one hot workload and one spread over many nodes each, so the
/// extra time stays small.
#[test]
fn each_deadlock_policy_keeps_histories_serializable() {
    let workloads = hot_and_wide();
    for policy in DeadlockPolicy::ALL {
        if matches!(policy, DeadlockPolicy::Detect | DeadlockPolicy::Off) {
            continue;
        }
        let mut totals = Totals::default();
        for workload in &workloads {
            totals.add(check_workload(workload, policy, CommitMode::Classic));
        }
        println!("serializability under {}: {}", policy.name(), totals.line());
    }
}

/// Two small workloads that stress different things: hot keys (most transactions
/// conflict) and many clients over many nodes.
fn hot_and_wide() -> [Workload; 2] {
    [
        Workload {
            nodes: 3,
            threads: 8,
            txns_per_thread: 20,
            keys: 4,
            seed: 3,
        },
        Workload {
            nodes: 5,
            threads: 12,
            txns_per_thread: 12,
            keys: 10,
            seed: 5,
        },
    ]
}

/// What the checked histories held.
#[derive(Default)]
struct Totals {
    histories: usize,
    txns: usize,
    committed: usize,
    edges: usize,
}

impl Totals {
    fn add(&mut self, (txns, committed, edges): (usize, usize, usize)) {
        self.histories += 1;
        self.txns += txns;
        self.committed += committed;
        self.edges += edges;
    }

    fn line(&self) -> String {
        format!(
            "{} histories, {} transactions ({} committed) checked, {} dependency edges",
            self.histories, self.txns, self.committed, self.edges
        )
    }
}

/// Records `workload` under `policy` and checks its history: serializable, the final
/// lists exactly the committed appends, no transaction starved, and the checker able to
/// catch a lost update in it. Returns its transactions, commits and dependency edges.
fn check_workload(
    workload: &Workload,
    policy: DeadlockPolicy,
    commit: CommitMode,
) -> (usize, usize, usize) {
    let (history, lists, gave_up) = record(workload, policy, commit);
    let name = format!("{} in {} mode", policy.name(), commit.name());
    let report = history::check(&history);
    assert!(
        report.is_serializable(),
        "seed {} under {name}: the history is not serializable:\n{}",
        workload.seed,
        report.explain(&history)
    );
    let problems = history::check_final(&history, &lists);
    assert!(
        problems.is_empty(),
        "seed {} under {name}: {problems:#?}",
        workload.seed
    );
    let read_only = (history.txns.iter())
        .filter(|t| t.outcome == Outcome::Committed)
        .filter(|t| t.ops.iter().all(|op| matches!(op, Op::Read { .. })))
        .count();
    let multi_node = (history.txns.iter())
        .filter(|t| t.outcome == Outcome::Committed && t.ops.len() > 2)
        .count();
    assert!(read_only > 0 && multi_node > 0);
    assert!(
        gave_up <= workload.threads,
        "too many transactions starved under {name}"
    );
    assert_a_lost_update_would_be_caught(&history);
    (history.txns.len(), report.committed, report.edges)
}
