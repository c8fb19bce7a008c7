//! Randomized fault runs: a seeded generator writes a run as a list of events (up to 8
//! concurrent transactions of several clients through several coordinators, with reads,
//! reads for update, appends and deletes over a small key set, interleaved step by step;
//! long read-only snapshots; crashes; crash points armed; restarts; whole-process
//! restarts; clock ticks; manual and automatic checkpoints; messages held back on a link
//! and released later), and one driver (`support::faults::driver`) executes it on one
//! of two backends. After every event at rest the driver checks that no wait-for cycle
//! survives, that no read-only read waits on a crashed coordinator, that each deadlock
//! victim began last of its cycle, and that no transaction with a failed operation is
//! told it committed. Each run ends by restarting every node and finishing every
//! transaction, and then proves DESIGN.md's invariants: nothing in doubt, no lock held,
//! no decision unacknowledged, no transaction left open; every append a client was told
//! committed is visible, none told aborted is, an unknown outcome is all or nothing, a
//! write whose node died under it never appears; and the recorded list-append history is
//! serializable.
//!
//! Half the seeds commit in parallel mode (`SET commit parallel`) with its crash points
//! (`staging`, `staged`), the other half classic; a seed names its mode in its report,
//! and `KV2PC_CLASSIC_ONLY=1` runs every seed classic (the scenarios are otherwise the
//! same). Parallel mode at first failed the reader check (simulated seed 28; threaded
//! seed 6, and 14 of 200 threaded seeds): a snapshot chosen while a participant was
//! down rose above that participant's staged prepare (`node::floors` says how it is
//! fixed and what is left); with the fix's clock bound taken out, simulated seed 468
//! fails it again.
//!
//! # Two backends
//!
//! - **The simulator** (`random_fault_runs_keep_every_invariant`, the default run):
//!   the real node state machines and logs of `kv2pc::sim` on one thread, each
//!   transaction a scripted session that answers as the client library does. After
//!   each event the run flows to rest in an order of deliveries, fsyncs and client
//!   steps the seed picks, so every seed also tries another interleaving of the
//!   messages. Its scenarios add power losses (`Event::PowerLoss`), which strike in the
//!   middle of the next event's flow and tear what the node's log holds unsynced, and
//!   its runs end with a power loss of every node: each must start, and keep every
//!   acknowledged commit. About 2.5 ms a seed: 8,000 seeds by default, in about 17 s in
//!   release on two cores. `KV2PC_SEEDS=N` runs N seeds, `KV2PC_SEED=S` replays seed S
//!   and prints what each event did; `KV2PC_SIM_TRACE=1` prints a failing run's whole
//!   simulator trace, step by step.
//! - **The threaded cluster** (`threaded_random_fault_runs_keep_every_invariant`): the
//!   node threads, outboxes and syncers of a manual-clock `Cluster`, each client call on
//!   its transaction's thread. The driver issues one event at a time and waits until
//!   every client thread has its answer or is blocked in the cluster, and the cluster
//!   is settled, so a seed replays the same run; but only this backend runs the
//!   runtime's threads and the client library itself, so it keeps finding what the
//!   simulator cannot: races between a node's threads, and faults of the library. 200
//!   seeds by default (about 18 s), `KV2PC_THREADED_SEEDS=N` and `KV2PC_THREADED_SEED=S`.
//!   Its scenarios have no power losses (its disks are real).
//!
//! A failure prints the seed and the full event list. Two tests replay seeds to prove
//! they run the same (`KV2PC_REPLAYS=N` replays N on the threaded cluster; on the
//! simulator every answer must replay word for word), and another proves what the
//! threaded replay rests on: the cluster settles only once the clients of a node that
//! died have been told.
//!
//! Known fault, open: a threaded seed under heavy load can still replay differently.
//! With `KV2PC_REPLAYS=300` and `KV2PC_SIM_SEEDS=20000` runs of `tests/sim.rs` looping
//! beside it, seed 33 still diverges at times (one of two such runs) at event #205, a
//! COMMIT told "aborted" in one run and "outcome unknown" in the other: commit 61e8c7c
//! (stale waits kept by a node that no longer waited, `node::detect`) made
//! `KV2PC_REPLAYS=100` pass under load, but did not close this. Every invariant still holds on both runs; what varies is the outcome.
//! Fixed: seed 123, whose `RELEASE 0 -> 2` let out 0 messages in one run and 3 in the
//! other. A message sent on a held link to a node already down was kept for its next
//! incarnation (VOTE YES, then the INQUIRE and RESTART ACK behind it), while one sent a
//! moment before the node died was dropped with it; now it is lost either way, as on
//! any link and in the simulator (`net::held`), and seed 123 replays alike 300 times
//! under that load.
//!
//! Finally, a free-running test lets clients and faults race (`KV2PC_CHAOS=N` rounds):
//! not replayable, but it reaches interleavings that stepping one event at a time cannot.
//!
//! # What the default seeds find
//!
//! Each fault of issue 9, with its fix reverted alone, makes a default run fail; the
//! first seed that fails, on which backend, and how (how many of the default seeds fail
//! in brackets). The seeds are those of the generator `kv2pc::rng::Rng`; a simulated
//! seed's scenario is the threaded one's plus power losses, so the same seed often
//! fails the same way on both. Faults 1 and 3 still show the seed and failure found on
//! the threaded cluster with an older generator, whose runs were different: revert
//! them again to know their seed now.
//!
//! | fault (fix reverted) | seed (backend) | the failure it reports |
//! |---|---|---|
//! | 1 detector reports one cycle per search (shared `done`, no re-search) | 8 (threads, old generator) | a wait-for cycle survives the deadlock detector at rest: T7 -> T10 -> T7 |
//! | 2 a key unseen since the checkpoint reads as not set (`complete_from` ignored) | 4 (sim: 915 of 8,000; also the threaded runs' seed, not re-run) | G2 anti-dependency cycle: t0/snapshot@1 -rw(k3)-> t1/T5 -wr(k3)-> t0/snapshot@1 |
//! | 3 read locks lost at a restart (no rejoin handshake, no abort on the announcement) | 0 (threads, old generator) | G2 anti-dependency cycle: t0/T4 -rw(k2)-> t1/T2 -wr(k2)-> t2/snapshot@2 -rw(k7)-> t0/T4 |
//! | 4 a down node publishes no prepare floor | none (sim and threads) | (issue 10 replaced the mechanism: see below) |
//! | 5 outbox lets a later item out first | none | (not found: see below) |
//! | 6 a failed operation leaves its transaction open (`Transaction::abort_on_error`) | 2 (threads: 39 of 200); sim: none, see below | t3/T4005 was told Committed, although its GET k4 failed (node 2 is down ...) |
//! | 7 victim chosen by id, not by begin (`deadlock::choose`) | 20 (sim: 601 of 8,000; also the threaded runs' seed, not re-run) | t2 (T2001) was told it is the deadlock victim (deadlock T2001 -> T6 -> T2001; ...), but t5 (T6) of that cycle began after it |
//!
//! Fault 6 lives in the client library, which the simulator does not run: its sessions
//! (`sim::session`) follow the library's steps in a copy of their own. Reverting the
//! library's fix fails the threaded runs alone; reverting the same rule in the session
//! (a failed operation sends no abort and leaves the transaction open) fails the
//! simulated ones at seed 2, the same failure (1,369 of 8,000). Keeping the two in step
//! is the price of a simulator that runs on one thread.
//!
//! Fault 4's fix lived in the shared floors that issue 10 removed: seed 1 found it then
//! (a read-only GET waiting at an in-doubt node whose coordinator was down). Now a
//! snapshot's floors come by messages (`node::floors`): a down node's last answer stands
//! for it, and coordinators answer for participants that voted or were asked. With the
//! last-answer cache reverted, the threaded seeds and the 8,000 simulated ones still
//! pass (the coordinators' part covers the episodes' in-doubt cases); the coordinators'
//! part is caught by the crash isolation transcripts (`crash-fekete-3-nodes.txt`
//! printed snapshot 8 for 7).
//!
//! What the simulated runs found that the threaded ones had not, on the way in: a
//! false alarm of the checker (an unknown transaction that deleted one key and wrote
//! another, whose delete a later read saw, was not counted as committed where the
//! delete rule places versions: simulated seed 355), and that the at-rest reader check
//! must exempt a snapshot whose client chose the timestamp because every node was down
//! (the limit `node::floors` states; simulated seed 588).
//!
//! Faults 1 to 3 are found by the generator's episodes (see `episodes`), 6 by the
//! careless clients and 7 by the victim check, among many seeds each. Fault 5 is a race
//! between two threads of one node: the syncer raising the durable LSN between a
//! `hold` of an earlier item and of a later one to the same destination (a `Begun` and
//! the `Forward` of the first operation, both held at the lease LSN); every pair of
//! items one thread holds in order has non-decreasing LSNs, so without that race the
//! old `hold` keeps their order. A stepped run issues one event at a time and cannot
//! time a window of a few instructions, and the simulator has an outbox of its own
//! (`sim::node`, stricter than the runtime's) and no syncer thread; the outbox's unit
//! tests, with a syncer that advances by jumps, are what find it. Faults 8 (a session forgets a transaction
//! aborted in the background) and 9 (a flaky process test, temporary directories left
//! by signals) live in the shell and the test infrastructure, and are covered by their
//! own transcripts and process tests.

mod support;

use support::env_number;

use kv2pc::history::{self, History, Outcome};
use kv2pc::{CrashPoint, Error, NodeId};
use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use support::Harness;
use support::faults::backend::{Backend, Failure};
use support::faults::client::Blocked;
use support::faults::driver::{Driver, settings};
use support::faults::free;
use support::faults::generate::{generate, generate_with_power_losses};
use support::faults::scenario::Scenario;
use support::faults::simulated::Simulated;
use support::faults::threaded::Threaded;

/// Seeds the simulated runs take when `KV2PC_SEEDS` is not set.
const DEFAULT_SEEDS: u64 = 8000;
/// Seeds the threaded runs take when `KV2PC_THREADED_SEEDS` is not set.
const DEFAULT_THREADED_SEEDS: u64 = 200;

/// Where a scenario runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum On {
    /// The deterministic simulator, with power losses added to the scenario.
    Sim,
    /// The threaded cluster on a manual clock.
    Threads,
}

/// What one successful run did.
struct Summary {
    events: usize,
    /// Transactions by what their clients were told.
    told: BTreeMap<&'static str, usize>,
    /// Reads made by lock-free snapshot transactions.
    snapshot_reads: usize,
    /// What must be the same when the seed runs again.
    fingerprint: String,
    /// What each event did.
    log: Vec<String>,
    /// The same, as one text: what a simulated run must replay exactly.
    log_text: String,
}

/// Runs one seed and checks everything; an error carries a full report.
fn run_seed(seed: u64, on: On) -> Result<Summary, String> {
    let scenario = match on {
        On::Sim => generate_with_power_losses(seed),
        On::Threads => generate(seed),
    };
    let backend: Box<dyn Backend> = match on {
        On::Sim => match Simulated::new(seed, scenario.nodes, settings(&scenario)) {
            Ok(sim) => Box::new(sim),
            Err(failure) => return Err(report(&scenario, on, &[], &failure)),
        },
        On::Threads => Box::new(Threaded::new(seed, scenario.nodes, settings(&scenario))),
    };
    let mut driver = Driver::new(&scenario, backend);
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let (history, lists) = driver.run()?;
        check(&driver, &history, &lists)?;
        Ok((history, lists))
    }));
    let failure = match outcome {
        Ok(Ok((history, lists))) => return Ok(summarize(&scenario, &driver, &history, &lists)),
        Ok(Err(failure)) => failure,
        Err(panic) => panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic".into()),
    };
    if std::env::var_os("KV2PC_SIM_TRACE").is_some() {
        eprintln!("{}", driver.backend.trace().join("\n"));
    }
    Err(report(&scenario, on, &driver.log, &failure))
}

fn summarize(
    scenario: &Scenario,
    driver: &Driver,
    history: &History,
    lists: &BTreeMap<String, Vec<String>>,
) -> Summary {
    let mut told = BTreeMap::new();
    for txn in &history.txns {
        let name = match txn.outcome {
            Outcome::Committed => "committed",
            Outcome::Aborted => "aborted",
            Outcome::Unknown => "unknown",
        };
        *told.entry(name).or_default() += 1;
    }
    let snapshot_reads = (history.txns.iter())
        .filter(|t| t.name.contains("snapshot"))
        .map(|t| t.ops.len())
        .sum();
    let outcomes: Vec<String> = (history.txns.iter())
        .map(|t| format!("{}:{:?}", t.name, t.outcome))
        .collect();
    Summary {
        events: scenario.events.len(),
        told,
        snapshot_reads,
        fingerprint: format!("{}\n{outcomes:?}\n{lists:?}", driver.trace.join("\n")),
        log_text: driver.log.join("\n"),
        log: driver.log.clone(),
    }
}

/// Every invariant a finished run must keep.
fn check(
    driver: &Driver,
    history: &History,
    lists: &BTreeMap<String, Vec<String>>,
) -> Result<(), Failure> {
    let mut problems = history::check_final(history, lists);
    problems.extend(history::vanished_reads(history, lists));
    for (key, elem) in &driver.lost {
        if lists.get(key).is_some_and(|l| l.contains(elem)) {
            problems.push(format!(
                "{elem} in {key} was written to a node that died, yet it is visible"
            ));
        }
    }
    let report = history::check(history);
    if !report.is_serializable() {
        problems.push(format!("not serializable:\n{}", report.explain(history)));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

fn report(scenario: &Scenario, on: On, log: &[String], failure: &str) -> String {
    let replay = match on {
        On::Sim => "KV2PC_SEED",
        On::Threads => "KV2PC_THREADED_SEED",
    };
    let mut text = format!(
        "seed {} failed on {on:?} (replay it with {replay}={}):\n{failure}\n\n{} nodes, keys \
         {:?}, eager checkpoints {}, {:?} commit; events:\n",
        scenario.seed,
        scenario.seed,
        scenario.nodes,
        scenario.keys,
        scenario.eager_checkpoints,
        scenario.commit
    );
    for (index, event) in scenario.events.iter().enumerate() {
        text.push_str(&format!("  #{index:<3} {event}\n"));
    }
    if !log.is_empty() {
        text.push_str("what each event did:\n");
        for line in log {
            text.push_str(&format!("  {line}\n"));
        }
    }
    text
}

/// The fixed seeds on the simulator (or `KV2PC_SEEDS`, or the one `KV2PC_SEED`), run on
/// every core.
#[test]
fn random_fault_runs_keep_every_invariant() {
    run_seeds(On::Sim, "KV2PC_SEED", "KV2PC_SEEDS", DEFAULT_SEEDS);
}

/// The same scenarios, less their power losses, on the threaded cluster, fewer seeds
/// (`KV2PC_THREADED_SEEDS`, or the one `KV2PC_THREADED_SEED`): what races between a
/// node's threads only these runs can meet.
#[test]
fn threaded_random_fault_runs_keep_every_invariant() {
    run_seeds(
        On::Threads,
        "KV2PC_THREADED_SEED",
        "KV2PC_THREADED_SEEDS",
        DEFAULT_THREADED_SEEDS,
    );
}

fn run_seeds(on: On, one: &str, many: &str, default: u64) {
    if let Some(seed) = env_number(one) {
        match run_seed(seed, on) {
            Ok(summary) => {
                println!("{}", summary.log.join("\n"));
                println!(
                    "seed {seed} passed: transactions {:?}, {} snapshot reads",
                    summary.told, summary.snapshot_reads
                );
            }
            Err(report) => panic!("{report}"),
        }
        return;
    }
    let seeds = env_number(many).unwrap_or(default);
    let started = Instant::now();
    let next = AtomicU64::new(0);
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .max(2);
    let results: Vec<Vec<(u64, Result<Summary, String>)>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut results = Vec::new();
                    loop {
                        let seed = next.fetch_add(1, Ordering::SeqCst);
                        if seed >= seeds {
                            return results;
                        }
                        results.push((seed, run_seed(seed, on)));
                    }
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let mut failures = Vec::new();
    let (mut events, mut snapshot_reads) = (0, 0);
    let mut told = BTreeMap::<&str, usize>::new();
    for (seed, result) in results.into_iter().flatten() {
        match result {
            Ok(summary) => {
                events += summary.events;
                snapshot_reads += summary.snapshot_reads;
                for (name, count) in summary.told {
                    *told.entry(name).or_default() += count;
                }
            }
            Err(report) => failures.push((seed, report)),
        }
    }
    failures.sort_by_key(|(seed, _)| *seed);
    if let Some((_, report)) = failures.first() {
        eprintln!("{report}");
    }
    let failed: Vec<u64> = failures.iter().map(|(seed, _)| *seed).collect();
    assert!(
        failed.is_empty(),
        "seeds {failed:?} failed on {on:?} (the first one's report above; {one}=S replays S)"
    );
    println!(
        "random faults on {on:?}: {seeds} seeds, {events} events, transactions {told:?} (one \
         final read per seed included), {snapshot_reads} snapshot reads, in {:.1?}",
        started.elapsed()
    );
}

/// Seeds run twice by `a_seed_replays_the_same_run` (`KV2PC_REPLAYS=N` replays seeds 0 to
/// N - 1 instead).
const REPLAYED: [u64; 8] = [0, 1, 2, 3, 5, 8, 13, 21];

/// Replaying a seed runs the same events to the same answers (up to an error's wording),
/// outcomes and data: what makes a failing seed worth printing.
#[test]
fn a_seed_replays_the_same_run() {
    let seeds: Vec<u64> = match env_number("KV2PC_REPLAYS") {
        Some(count) => (0..count).collect(),
        None => REPLAYED.to_vec(),
    };
    for seed in seeds {
        let first = run_seed(seed, On::Threads).unwrap_or_else(|report| panic!("{report}"));
        let second = run_seed(seed, On::Threads).unwrap_or_else(|report| panic!("{report}"));
        if first.fingerprint != second.fingerprint {
            let diverged =
                (first.fingerprint.lines().zip(second.fingerprint.lines())).find(|(a, b)| a != b);
            panic!("seed {seed} ran differently; first difference: {diverged:#?}");
        }
    }
}

/// On the simulator a seed replays exactly: every answer in full, every outcome, the
/// data (and, since the flow's order comes from the seed, the same history).
#[test]
fn a_simulated_seed_replays_exactly() {
    for seed in REPLAYED {
        let first = run_seed(seed, On::Sim).unwrap_or_else(|report| panic!("{report}"));
        let second = run_seed(seed, On::Sim).unwrap_or_else(|report| panic!("{report}"));
        assert_eq!(first.fingerprint, second.fingerprint, "seed {seed}");
        assert_eq!(first.log_text, second.log_text, "seed {seed}");
    }
}

/// The driver's determinism rests on this: once the cluster settles, a client that was
/// waiting on a node that died (at a crash point, or killed outright) has been answered
/// "node down", not merely had its channel dropped, which wakes it at some unknown later
/// moment. A race, so each way is tried a few times.
#[test]
fn a_client_waiting_on_a_node_that_dies_is_answered_before_settle_returns() {
    for attempt in 0..8 {
        waiter_on_a_dying_node(attempt % 2 == 0);
    }
}

/// A reader, coordinated by `coordinator`, queued for a key of node 1 that `holder`
/// wrote: `waiting` is the wait it is in.
struct QueuedReader {
    holder: kv2pc::client::Transaction,
    blocked: Arc<Blocked>,
    reading: std::thread::JoinHandle<kv2pc::Result<Option<String>>>,
    waiting: u64,
}

fn queue_reader(harness: &Harness, coordinator: NodeId) -> QueuedReader {
    let cluster = harness.cluster();
    let key = harness.keys_on(1, 1, "k").remove(0);
    let mut holder = cluster.client(0).unwrap().begin().unwrap();
    holder.put(&key, "held").unwrap();
    let blocked = Arc::new(Blocked::default());
    let mut waiter = cluster.client(coordinator).unwrap();
    waiter.observe(blocked.clone());
    let reading = std::thread::spawn(move || waiter.begin()?.get(&key));
    let deadline = Instant::now() + Duration::from_secs(10);
    let queued = || (cluster.locks().iter()).any(|(_, locks)| !locks.waiters.is_empty());
    // Queued, and told so (the `Waiting` answer wakes it once more before it blocks for
    // good): the same wait through ten pauses in a row (one was not enough on a loaded
    // machine, where the `Waiting` answer can come later than a pause).
    let (mut waiting, mut same) = (0, 0);
    while same < 10 {
        assert!(
            Instant::now() < deadline,
            "the reader never queued for the lock"
        );
        let state = blocked.state();
        let settled = blocked.is_blocked() && queued() && state == waiting;
        same = if settled { same + 1 } else { 0 };
        waiting = state;
        std::thread::sleep(Duration::from_millis(2));
    }
    QueuedReader {
        holder,
        blocked,
        reading,
        waiting,
    }
}

fn waiter_on_a_dying_node(at_point: bool) {
    let harness = Harness::open(2);
    let cluster = harness.cluster();
    let QueuedReader {
        holder,
        blocked,
        reading,
        waiting,
    } = queue_reader(&harness, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    let committing = if at_point {
        // Node 1 dies at the holder's one-phase commit, with the reader queued there.
        cluster.arm_crash(1, CrashPoint::Commit).unwrap();
        let committing = std::thread::spawn(move || holder.commit());
        while cluster.is_up(1) {
            assert!(Instant::now() < deadline, "node 1 never reached the point");
            std::thread::yield_now();
        }
        Some(committing)
    } else {
        cluster.crash(1).unwrap();
        None
    };
    harness.settle(&"the crash");
    // (It may be blocked again by now, in the abort it sends when its read failed.)
    assert_ne!(
        blocked.state(),
        waiting,
        "the cluster settled while a client of the dead node still waited"
    );
    let read = harness.join(reading, &"the reader");
    assert!(
        matches!(read, Err(Error::NodeDown { node: 1, .. })),
        "{read:?}"
    );
    if let Some(committing) = committing {
        harness.finish(committing, &"the holder").unwrap_err();
    }
}

/// A client the dead node told "node down" finds that node down at once: the abort its
/// failed read sends to its coordinator, the same dead node, must not wait in the inbox
/// of a node that is leaving (a wait `Cluster::settle` cannot see, which made a seed's
/// replay answer that client one event later). A race, so it is tried many times.
#[test]
fn a_client_told_its_node_died_finds_it_down_at_once() {
    for _ in 0..ABORT_AFTER_DOWN_ATTEMPTS {
        let harness = Harness::open(2);
        let cluster = harness.cluster();
        // Coordinated by node 1, the node that dies: its abort goes there.
        let QueuedReader {
            holder,
            blocked,
            reading,
            waiting,
        } = queue_reader(&harness, 1);
        cluster.crash(1).unwrap();
        harness.settle(&"the crash");
        let read = harness.join(reading, &"the reader");
        assert!(
            matches!(read, Err(Error::NodeDown { node: 1, .. })),
            "{read:?}"
        );
        assert_eq!(
            blocked.state(),
            waiting + 1,
            "told node 1 was down, the reader then waited on node 1 for its abort"
        );
        drop(holder);
    }
}

/// Attempts of `a_client_told_its_node_died_finds_it_down_at_once`.
const ABORT_AFTER_DOWN_ATTEMPTS: usize = 64;

/// Rounds of `free_running_clients_under_faults_keep_every_invariant` (`KV2PC_CHAOS=N`
/// runs N).
const CHAOS_ROUNDS: u64 = 4;

/// The seeded runs step one event at a time, so two things never race in them. Here they
/// do: client threads run transactions freely (retrying aborts) while a fault thread
/// crashes, arms, restarts, ticks and checkpoints at random. Not replayable, but it finds
/// what only a race shows (it found an acknowledgement that outran its `Commit` record);
/// the same invariants and the serializability checker judge it.
#[test]
fn free_running_clients_under_faults_keep_every_invariant() {
    let rounds = env_number("KV2PC_CHAOS").unwrap_or(CHAOS_ROUNDS);
    let (mut txns, mut committed) = (0, 0);
    for round in 0..rounds {
        match free::run(round) {
            Ok((history, report)) => {
                txns += history.txns.len();
                committed += report.committed;
            }
            Err(failure) => panic!("free-running round {round}: {failure}"),
        }
    }
    println!(
        "free-running faults: {rounds} rounds, {txns} transactions ({committed} committed or \
         seen) checked"
    );
}
