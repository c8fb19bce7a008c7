//! `kv2pc bench`: measures the embedded cluster and, in the same run, the machine limits
//! it is bound by, so every figure can be read as a ratio to those limits on whatever
//! machine it ran (these machines are shared and noisy; absolute numbers alone mislead).
//!
//! # What is measured
//!
//! First the limits (`limits`): the latency of an fsync of a small append (the floor under
//! every forced log record), growing the file and over preallocated bytes, and of a
//! channel round trip between two threads (the floor under every message), to a parked
//! thread and back to back. Then each workload, on a fresh cluster per run, for each
//! client count of the sweep, each client a thread with its own session (from 32
//! clients up, the read-write workloads instead run their clients pipelined, a few
//! threads each keeping many transactions in flight: see `pipelined`):
//!
//! | workload | one operation |
//! |---|---|
//! | `get` | an autocommit `GET` of a random key |
//! | `read-only` | a read-only transaction (`BEGIN READ ONLY`: one snapshot, no locks) reading 3 keys on 3 nodes |
//! | `write-one` | an autocommit `PUT` (one participant: one-phase commit) |
//! | `cross-2` | a transaction writing one key on each of 2 nodes |
//! | `cross-3` | a transaction writing one key on each of 3 nodes |
//! | `read-mix` | 90% `get`, 10% `cross-2` |
//! | `get-hot` | an autocommit `GET` of one of 16 keys that one more client keeps rewriting in 2-node transactions, so they are often prepared and undecided |
//! | `hot-key` | a transaction incrementing one shared counter (a read for update, then a write) |
//!
//! Last, `recovery`: the replay of a long log, and of the same state after a checkpoint.
//!
//! Reported per run: operations per second, latency p50/p99/p999, fsyncs per operation
//! (all logs together, and of the busiest log), aborts (deadlock victims and other
//! aborted attempts, which are retried) and lock waits. Latency is measured per
//! operation with `Instant` and kept in a histogram per client thread ([`Latencies`]);
//! no figure is ever asserted by a test. The report is laid out by the crate's own
//! `text::table`, as the shell's tables are, without reaching up into the shell.
//!
//! Every random choice (keys, nodes, the mix of `read-mix`) comes from the project's
//! seeded generator, [`crate::rng::Rng`], one stream per client thread, so a sweep makes
//! the same choices on every run.

mod latency;
mod limits;
mod pipelined;
pub mod plot;
mod recovery;
mod repeat;

pub use latency::Latencies;
pub use limits::Limits;
pub use recovery::RecoveryRun;

use crate::Cluster;
use crate::client::{Client, ClientObserver, WaitInfo};
use crate::config::{CommitMode, Config, DeadlockPolicy, Settings};
use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::types::NodeId;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A workload of the bench.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// Autocommit reads.
    Get,
    /// Read-only transactions over 3 nodes.
    ReadOnly,
    /// Autocommit writes (one participant).
    WriteOne,
    /// Transactions writing on 2 nodes.
    #[serde(rename = "cross-2")]
    Cross2,
    /// Transactions writing on 3 nodes.
    #[serde(rename = "cross-3")]
    Cross3,
    /// 90% reads, 10% 2-node transactions.
    ReadMix,
    /// Increments of one shared counter.
    HotKey,
    /// Autocommit reads of keys a writer keeps rewriting.
    GetHot,
}

impl Workload {
    /// Every workload, in report order.
    pub const ALL: [Workload; 8] = [
        Workload::Get,
        Workload::ReadOnly,
        Workload::WriteOne,
        Workload::Cross2,
        Workload::Cross3,
        Workload::ReadMix,
        Workload::HotKey,
        Workload::GetHot,
    ];

    /// The workload's name, as `--workload` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Get => "get",
            Workload::ReadOnly => "read-only",
            Workload::WriteOne => "write-one",
            Workload::Cross2 => "cross-2",
            Workload::Cross3 => "cross-3",
            Workload::ReadMix => "read-mix",
            Workload::HotKey => "hot-key",
            Workload::GetHot => "get-hot",
        }
    }
}

impl std::str::FromStr for Workload {
    type Err = Error;

    fn from_str(text: &str) -> Result<Workload> {
        Workload::ALL
            .into_iter()
            .find(|w| w.name() == text)
            .ok_or_else(|| {
                let names: Vec<_> = Workload::ALL.iter().map(|w| w.name()).collect();
                Error::InvalidInput(format!(
                    "unknown workload '{text}'; the workloads are {}, and recovery (the \
                     replay of a long log)",
                    names.join(", ")
                ))
            })
    }
}

/// How to run the bench.
#[derive(Clone, Debug)]
pub struct Options {
    /// The workloads to run.
    pub workloads: Vec<Workload>,
    /// The client counts of the sweep.
    pub clients: Vec<usize>,
    /// How long each run lasts.
    pub duration: Duration,
    /// Nodes per cluster (at least 3, for the 3-node workloads).
    pub nodes: u32,
    /// Where to make the clusters' directories (default: the system's temp directory).
    pub dir: Option<PathBuf>,
    /// Records in the log of the recovery measurement, or `None` to skip it.
    pub recovery_records: Option<u64>,
    /// The deadlock policy every run's cluster uses (`SET deadlock`).
    pub deadlock: DeadlockPolicy,
    /// The commit modes to sweep (`SET commit`), each over every workload and client
    /// count.
    pub commits: Vec<CommitMode>,
    /// Rounds of the whole sweep; each figure reported is its median over the rounds
    /// (see `repeat`).
    pub repeat: usize,
    /// Where the runs' nodes are: threads of this process, node processes over loopback
    /// TCP, or both, each over the whole sweep.
    pub transports: Vec<Transport>,
    /// What opens a cluster of node processes, for [`Transport::Processes`]: the binary
    /// gives it (it knows how to start itself), the library cannot.
    pub processes: Option<Opener>,
}

/// Where a run's nodes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// Threads of this process, on channels (`Cluster::open`).
    Embedded,
    /// One OS process per node on loopback TCP, the clients in this process
    /// (`Cluster::connect`); p50/rtt is then to the loopback TCP round trip.
    Processes,
}

impl Transport {
    /// The name `kv2pc bench --transport` takes.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Embedded => "embedded",
            Transport::Processes => "processes",
        }
    }

    /// The transport named `name`.
    pub fn named(name: &str) -> Option<Transport> {
        [Transport::Embedded, Transport::Processes]
            .into_iter()
            .find(|transport| transport.name() == name)
    }
}

/// Opens a cluster of node processes with their data under a directory, for the runs
/// over [`Transport::Processes`]; the cluster stops its processes when dropped.
#[derive(Clone)]
pub struct Opener(pub Arc<OpenFn>);

/// What an [`Opener`] calls.
pub type OpenFn = dyn Fn(&Path, Config) -> Result<Cluster> + Send + Sync;

impl std::fmt::Debug for Opener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Opener")
    }
}

impl Options {
    /// The full sweep: every workload at 1, 4, 16, 64 and 256 clients, 1 s each.
    pub fn full() -> Options {
        Options {
            workloads: Workload::ALL.to_vec(),
            clients: vec![1, 4, 16, 64, 256],
            duration: Duration::from_secs(1),
            nodes: 3,
            dir: None,
            recovery_records: Some(1_000_000),
            deadlock: DeadlockPolicy::Detect,
            commits: vec![CommitMode::Classic],
            repeat: 1,
            transports: vec![Transport::Embedded],
            processes: None,
        }
    }

    /// `--quick`: every workload at 1 and 16 clients, 250 ms each (under 30 s in all).
    pub fn quick() -> Options {
        Options {
            clients: vec![1, 16],
            duration: Duration::from_millis(250),
            recovery_records: Some(100_000),
            ..Options::full()
        }
    }
}

/// One run: a workload at a client count.
#[derive(Clone, Debug, Serialize)]
pub struct Run {
    /// The workload.
    pub workload: Workload,
    /// The deadlock policy, as `SET deadlock` names it.
    pub deadlock: &'static str,
    /// The commit mode, as `SET commit` names it.
    pub commit: &'static str,
    /// Where the nodes were, as `--transport` names it.
    pub transport: &'static str,
    /// Concurrent clients.
    pub clients: usize,
    /// Operations completed.
    pub operations: u64,
    /// Operations per second.
    pub per_second: f64,
    /// Latency percentiles, microseconds.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// fsyncs of all logs per operation.
    pub fsyncs_per_op: f64,
    /// fsyncs of the busiest log per operation.
    pub fsyncs_per_op_busiest_log: f64,
    /// Aborted attempts (retried).
    pub aborts: u64,
    /// Requests that waited for a lock.
    pub lock_waits: u64,
    /// Throughput in operations per preallocated-fsync time: `per_second` times this
    /// run's fsync p50 over preallocated bytes, in seconds. It moves far less between
    /// machines than operations per second: 1.0 is one operation per fsync's time.
    pub per_fsync_time: f64,
    /// p50 latency as a multiple of the fsync p50 over preallocated bytes.
    pub p50_over_fsync: f64,
    /// p50 latency as a multiple of a channel round trip to a parked thread.
    pub p50_over_round_trip: f64,
}

/// A whole bench report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The deadlock policy of every run, as `SET deadlock` names it.
    pub deadlock: &'static str,
    /// Rounds of the sweep that every figure is the median of (1: one run each).
    pub repeat: usize,
    /// The limits measured first (with several rounds: each one's median).
    pub limits: Limits,
    /// Every run, in order.
    pub runs: Vec<Run>,
    /// The recovery measurement, if it ran.
    pub recovery: Option<RecoveryRun>,
}

/// Runs the bench, calling `progress` with a label before each step.
pub fn run(options: &Options, mut progress: impl FnMut(&str)) -> Result<Report> {
    if options.nodes < 3 {
        return Err(Error::InvalidInput(
            "the bench needs at least 3 nodes".into(),
        ));
    }
    let base = options.dir.clone().unwrap_or_else(std::env::temp_dir);
    progress("measuring fsync and channel round trips");
    let probe_dir = tempfile::Builder::new()
        .prefix("kv2pc-bench")
        .tempdir_in(&base)
        .map_err(|e| Error::io(format!("creating a directory in {}", base.display()), e))?;
    let rounds = options.repeat.max(1);
    let mut measured = Vec::new();
    let mut points: Vec<Vec<Run>> = Vec::new();
    for round in 0..rounds {
        if round > 0 {
            progress(&format!(
                "round {} of {rounds}: measuring fsync and channel round trips",
                round + 1
            ));
        }
        let limits = limits::measure(probe_dir.path())?;
        let mut point = 0;
        for transport in &options.transports {
            for commit in &options.commits {
                for workload in &options.workloads {
                    for clients in &options.clients {
                        progress(&format!(
                            "{} with {clients} clients, {} commit, {}",
                            workload.name(),
                            commit.name(),
                            transport.name()
                        ));
                        let how = How {
                            workload: *workload,
                            clients: *clients,
                            commit: *commit,
                            transport: *transport,
                        };
                        let run = run_one(how, options, &base, &limits)?;
                        match points.get_mut(point) {
                            Some(runs) => runs.push(run),
                            None => points.push(vec![run]),
                        }
                        point += 1;
                    }
                }
            }
        }
        measured.push(limits);
    }
    let limits = repeat::limits(&measured);
    let runs = points.iter().map(|runs| repeat::run(runs)).collect();
    let recovery = match options.recovery_records {
        Some(records) => {
            progress(&format!("recovery of a {records}-record log"));
            Some(recovery::measure(probe_dir.path(), records)?)
        }
        None => None,
    };
    Ok(Report {
        deadlock: options.deadlock.name(),
        repeat: rounds,
        limits,
        runs,
        recovery,
    })
}

/// The number of steps `run` reports to `progress`.
pub fn steps(options: &Options) -> u64 {
    let recovery = u64::from(options.recovery_records.is_some());
    let points = options.transports.len()
        * options.commits.len()
        * options.workloads.len()
        * options.clients.len();
    (options.repeat.max(1) * (1 + points)) as u64 + recovery
}

pub(crate) fn micros(duration: Duration) -> f64 {
    duration.as_nanos() as f64 / 1000.0
}

/// Counts lock waits of a client.
struct Waits(Arc<AtomicU64>);

impl ClientObserver for Waits {
    fn waiting(&self, _: &WaitInfo) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    fn blocking(&self) {}
    fn resumed(&self) {}
}

/// Keys grouped by the node that owns them.
struct Keys {
    by_node: Vec<Vec<String>>,
}

const KEYS_PER_NODE: usize = 1000;
const HOT_KEY: &str = "hot";

impl Keys {
    fn new(cluster: &Cluster) -> Keys {
        let mut by_node = vec![Vec::new(); cluster.nodes() as usize];
        let mut index = 0;
        while by_node.iter().any(|keys| keys.len() < KEYS_PER_NODE) {
            let key = format!("key{index}");
            let node = cluster.owner(&key) as usize;
            if by_node[node].len() < KEYS_PER_NODE {
                by_node[node].push(key);
            }
            index += 1;
        }
        Keys { by_node }
    }

    fn pick(&self, node: NodeId, rng: &mut Rng) -> &str {
        rng.pick(&self.by_node[node as usize]).as_str()
    }

    fn any(&self, rng: &mut Rng) -> &str {
        let node = rng.below(self.by_node.len());
        self.pick(node as NodeId, rng)
    }

    /// `count` distinct nodes, at random.
    fn nodes(&self, count: usize, rng: &mut Rng) -> Vec<NodeId> {
        let n = self.by_node.len();
        let first = rng.below(n);
        (0..count).map(|i| ((first + i) % n) as NodeId).collect()
    }
}

fn preload(cluster: &Cluster, keys: &Keys) -> Result<()> {
    let client = cluster.client(0)?;
    for chunk in keys.by_node.concat().chunks(200) {
        let mut txn = client.begin_lazily();
        for key in chunk {
            txn.put(key, "0")?;
        }
        txn.commit()?;
    }
    client.put(HOT_KEY, "0")
}

/// One point of the sweep.
struct How {
    workload: Workload,
    clients: usize,
    commit: CommitMode,
    transport: Transport,
}

fn run_one(how: How, options: &Options, base: &Path, limits: &Limits) -> Result<Run> {
    let How {
        workload,
        clients,
        commit,
        transport,
    } = how;
    let dir = tempfile::Builder::new()
        .prefix("kv2pc-bench")
        .tempdir_in(base)
        .map_err(|e| Error::io(format!("creating a directory in {}", base.display()), e))?;
    let config = Config {
        nodes: options.nodes,
        manual_clock: false,
        settings: Settings {
            deadlock: options.deadlock,
            commit,
            ..Settings::default()
        },
    };
    let (cluster, round_trip) = match (transport, &options.processes) {
        (Transport::Embedded, _) => (
            Cluster::open(dir.path(), config)?,
            limits.round_trip_parked_p50_us,
        ),
        (Transport::Processes, Some(Opener(open))) => {
            (open(dir.path(), config)?, limits.tcp_round_trip_p50_us)
        }
        (Transport::Processes, None) => {
            return Err(Error::InvalidInput(
                "this bench cannot start node processes (run it as kv2pc bench)".into(),
            ));
        }
    };
    let cluster = Arc::new(cluster);
    let keys = Arc::new(Keys::new(&cluster));
    preload(&cluster, &keys)?;
    let fsyncs_before: Vec<u64> = cluster.status().iter().map(|s| s.fsyncs).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let (aborts, waits) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let started = Instant::now();
    let shared = pipelined::Shared {
        keys: keys.clone(),
        stop: stop.clone(),
        aborts: aborts.clone(),
        waits: waits.clone(),
    };
    let threads: Vec<_> = if pipelined::pipelines(workload, clients) {
        pipelined::spawn(&cluster, workload, clients, &shared)?
    } else {
        spawn_threads(&cluster, workload, clients, &shared)?
    };
    let writer = (workload == Workload::GetHot)
        .then(|| start_hot_writer(&cluster, keys.clone(), stop.clone()))
        .transpose()?;
    std::thread::sleep(options.duration);
    stop.store(true, Ordering::Relaxed);
    if let Some(writer) = writer {
        let _ = writer.join();
    }
    let mut latencies = Latencies::new()?;
    for thread in threads {
        if let Ok(client) = thread.join() {
            latencies.merge(&client)?;
        }
    }
    let elapsed = started.elapsed();
    let fsyncs: Vec<u64> = (cluster.status().iter().zip(&fsyncs_before))
        .map(|(status, before)| status.fsyncs.saturating_sub(*before))
        .collect();
    let operations = latencies.count();
    let ops = operations.max(1) as f64;
    let p50 = latencies.percentile_us(0.5);
    let per_second = operations as f64 / elapsed.as_secs_f64();
    Ok(Run {
        workload,
        deadlock: options.deadlock.name(),
        commit: commit.name(),
        transport: transport.name(),
        clients,
        operations,
        per_second,
        per_fsync_time: per_second * limits.fsync_preallocated_p50_us / 1e6,
        p50_us: p50,
        p99_us: latencies.percentile_us(0.99),
        p999_us: latencies.percentile_us(0.999),
        fsyncs_per_op: fsyncs.iter().sum::<u64>() as f64 / ops,
        fsyncs_per_op_busiest_log: fsyncs.iter().copied().max().unwrap_or(0) as f64 / ops,
        aborts: aborts.load(Ordering::Relaxed),
        lock_waits: waits.load(Ordering::Relaxed),
        p50_over_fsync: p50 / limits.fsync_preallocated_p50_us.max(0.001),
        p50_over_round_trip: p50 / round_trip.max(0.001),
    })
}

/// Starts one thread per client, each with its own session, running `workload`'s
/// operations (retrying an aborted one) until `stop`.
fn spawn_threads(
    cluster: &Cluster,
    workload: Workload,
    clients: usize,
    shared: &pipelined::Shared,
) -> Result<Vec<std::thread::JoinHandle<Latencies>>> {
    (0..clients)
        .map(|index| {
            let mut client = cluster.client((index % cluster.nodes() as usize) as NodeId)?;
            client.observe(Arc::new(Waits(shared.waits.clone())));
            let (keys, stop) = (shared.keys.clone(), shared.stop.clone());
            let aborts = shared.aborts.clone();
            let mut latencies = Latencies::new()?;
            Ok(std::thread::spawn(move || {
                let mut rng = Rng::new(index as u64);
                while !stop.load(Ordering::Relaxed) {
                    let start = Instant::now();
                    while operate(workload, &client, &keys, &mut rng).is_err() {
                        aborts.fetch_add(1, Ordering::Relaxed);
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                    }
                    latencies.record(start.elapsed());
                }
                latencies
            }))
        })
        .collect()
}

/// How many keys on each of nodes 0 and 1 `get-hot` reads and its writer rewrites.
const HOT_KEYS_PER_NODE: usize = 8;

/// The `get-hot` writer: one client rewriting the hot keys in 2-node transactions as
/// fast as it can, so that at any moment some of them are prepared and undecided.
fn start_hot_writer(
    cluster: &Cluster,
    keys: Arc<Keys>,
    stop: Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<()>> {
    let client = cluster.client(2)?;
    let mut rng = Rng::new(0x5eed);
    Ok(std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let mut txn = client.begin_lazily();
            let index = rng.below(HOT_KEYS_PER_NODE);
            let value = rng.next_u64().to_string();
            let wrote = [0, 1]
                .iter()
                .try_for_each(|node| txn.put(&keys.by_node[*node][index], &value));
            if wrote.is_ok() {
                let _ = txn.commit();
            }
        }
    }))
}

/// One operation of `workload`.
fn operate(workload: Workload, client: &Client, keys: &Keys, rng: &mut Rng) -> Result<()> {
    match workload {
        Workload::Get => client.get(keys.any(rng)).map(|_| ()),
        Workload::ReadOnly => {
            let snapshot = client.begin_read_only();
            for node in keys.nodes(3, rng) {
                snapshot.get(keys.pick(node, rng))?;
            }
            snapshot.commit();
            Ok(())
        }
        Workload::WriteOne => client.put(keys.any(rng), "v"),
        Workload::Cross2 | Workload::Cross3 => {
            let count = if workload == Workload::Cross2 { 2 } else { 3 };
            let mut txn = client.begin_lazily();
            for node in keys.nodes(count, rng) {
                txn.put(keys.pick(node, rng), "v")?;
            }
            txn.commit()
        }
        Workload::ReadMix if rng.chance(10) => operate(Workload::Cross2, client, keys, rng),
        Workload::ReadMix => operate(Workload::Get, client, keys, rng),
        Workload::GetHot => {
            let node = rng.below(2);
            let index = rng.below(HOT_KEYS_PER_NODE);
            client.get(&keys.by_node[node][index]).map(|_| ())
        }
        Workload::HotKey => {
            let mut txn = client.begin_lazily();
            let value: u64 = txn
                .get_for_update(HOT_KEY)?
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            txn.put(HOT_KEY, &(value + 1).to_string())?;
            txn.commit()
        }
    }
}

impl Report {
    /// The report as a table, with the limits above it; each row names its commit mode,
    /// so that figures of classic and parallel runs are never read one for the other.
    pub fn render(&self) -> String {
        let limits = &self.limits;
        let mut text = format!(
            "limits: fsync p50 {:.0} us growing the file (p99 {:.0} us), {:.0} us over \
             preallocated bytes; channel round trip p50 {:.1} us to a parked thread, {:.1} \
             us back to back; loopback TCP round trip p50 {:.1} us to a parked thread\n\
             (p50/fsync is to the preallocated fsync, p50/rtt to the parked round trip, \
             over channels or, for runs over processes, TCP; per fsync-t is ops/s x the \
             preallocated fsync p50: operations per fsync's time)\n\n",
            limits.fsync_p50_us,
            limits.fsync_p99_us,
            limits.fsync_preallocated_p50_us,
            limits.round_trip_parked_p50_us,
            limits.round_trip_p50_us,
            limits.tcp_round_trip_p50_us
        );
        text.push_str(&format!(
            "deadlock policy: {} (kv2pc bench --deadlock)\n",
            self.deadlock
        ));
        if self.repeat > 1 {
            text.push_str(&format!(
                "every figure is the median of {} rounds of the sweep (kv2pc bench --repeat), \
                 each against its own round's limits\n",
                self.repeat
            ));
        }
        text.push('\n');
        // The transport column only when a run was over processes, so that the
        // embedded sweep's table reads as it always did.
        let over = (self.runs.iter()).any(|run| run.transport != Transport::Embedded.name());
        let mut rows = vec![vec![
            "workload".to_string(),
            "commit".into(),
            "clients".into(),
            "ops/s".into(),
            "per fsync-t".into(),
            "p50 us".into(),
            "p99 us".into(),
            "p999 us".into(),
            "p50/fsync".into(),
            "p50/rtt".into(),
            "fsync/op".into(),
            "busiest log".into(),
            "aborts".into(),
            "lock waits".into(),
        ]];
        if over {
            rows[0].insert(3, "transport".into());
        }
        for run in &self.runs {
            rows.push(vec![
                run.workload.name().to_string(),
                run.commit.to_string(),
                run.clients.to_string(),
                format!("{:.0}", run.per_second),
                format!("{:.2}", run.per_fsync_time),
                format!("{:.0}", run.p50_us),
                format!("{:.0}", run.p99_us),
                format!("{:.0}", run.p999_us),
                format!("{:.2}", run.p50_over_fsync),
                format!("{:.1}", run.p50_over_round_trip),
                format!("{:.3}", run.fsyncs_per_op),
                format!("{:.3}", run.fsyncs_per_op_busiest_log),
                run.aborts.to_string(),
                run.lock_waits.to_string(),
            ]);
            if over && let Some(row) = rows.last_mut() {
                row.insert(3, run.transport.to_string());
            }
        }
        for line in crate::text::table(&rows) {
            text.push_str(&line);
            text.push('\n');
        }
        if let Some(recovery) = &self.recovery {
            text.push_str(&format!(
                "\nrecovery: {} records ({:.1} MiB) read in {:.0} ms and replayed in {:.0} ms: \
                 {:.0} records/s; after a checkpoint, {:.0} ms ({} records to replay)\n",
                recovery.records,
                recovery.log_bytes as f64 / (1 << 20) as f64,
                recovery.read_ms,
                recovery.replay_ms,
                recovery.records_per_second,
                recovery.after_checkpoint_ms,
                recovery.after_checkpoint_records
            ));
        }
        text
    }
}
