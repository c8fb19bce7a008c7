//! The bench's pipelined clients: at high client counts, the read-write workloads run
//! their clients as transactions in flight on a few threads ([`crate::client::Pipeline`])
//! instead of one OS thread per client.
//!
//! With a thread per client, 256 clients on two cores spend much of the run switching
//! between threads (34% of the samples of a `perf record` were context switches). Here
//! a run of `clients` clients (from [`FROM`] up) has one thread per node, each driving an
//! equal share of the clients as sessions of one pipeline attached to that node: each
//! session keeps exactly one transaction in flight, submitting the next (or retrying an
//! aborted one) as soon as its outcome is collected, as a client thread would. So the
//! load is the same (`clients` transactions in flight, spread over the coordinators) and
//! so is what is measured: a transaction's latency runs from its first submission to
//! its commit, retries included.
//!
//! Only `write-one`, `cross-2`, `cross-3` and `hot-key` are pipelined: the pipeline
//! runs read-write transactions, not autocommit snapshot reads or read-only ones.

use super::{HOT_KEY, Keys, Latencies, Waits, Workload};
use crate::Cluster;
use crate::client::{Pipeline, Program, Step, Steps, Ticket};
use crate::error::Result;
use crate::rng::Rng;
use crate::types::NodeId;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The smallest client count run pipelined.
pub const FROM: usize = 32;

/// Whether `workload` at `clients` clients runs pipelined.
pub fn pipelines(workload: Workload, clients: usize) -> bool {
    let read_write = matches!(
        workload,
        Workload::WriteOne | Workload::Cross2 | Workload::Cross3 | Workload::HotKey
    );
    read_write && clients >= FROM
}

/// What the driving threads share.
pub struct Shared {
    pub keys: Arc<Keys>,
    pub stop: Arc<AtomicBool>,
    pub aborts: Arc<AtomicU64>,
    pub waits: Arc<AtomicU64>,
}

/// Starts the threads that drive `clients` pipelined clients of `workload`.
pub fn spawn(
    cluster: &Cluster,
    workload: Workload,
    clients: usize,
    shared: &Shared,
) -> Result<Vec<JoinHandle<Latencies>>> {
    let threads = (cluster.nodes() as usize).min(clients);
    (0..threads)
        .map(|thread| {
            let share = clients / threads + usize::from(thread < clients % threads);
            let mut client = cluster.client(thread as NodeId)?;
            client.observe(Arc::new(Waits(shared.waits.clone())));
            let pipeline = client.pipeline(share);
            let (keys, stop) = (shared.keys.clone(), shared.stop.clone());
            let aborts = shared.aborts.clone();
            let latencies = Latencies::new()?;
            let mut driver = Driver {
                workload,
                keys,
                rng: Rng::new(thread as u64),
                pipeline,
                started: HashMap::new(),
                latencies,
            };
            Ok(std::thread::spawn(move || {
                driver.run(share, &stop, &aborts);
                driver.latencies
            }))
        })
        .collect()
}

struct Driver {
    workload: Workload,
    keys: Arc<Keys>,
    rng: Rng,
    pipeline: Pipeline,
    /// When each transaction in flight was first submitted (a retry keeps its time).
    started: HashMap<Ticket, Instant>,
    latencies: Latencies,
}

/// How long the last transactions of a run may take to finish once it stops.
const DRAIN: Duration = Duration::from_secs(10);

impl Driver {
    fn run(&mut self, sessions: usize, stop: &AtomicBool, aborts: &AtomicU64) {
        for _ in 0..sessions {
            self.submit(Instant::now());
        }
        while !stop.load(Ordering::Relaxed) {
            let Some((ticket, outcome)) = self.pipeline.collect() else {
                return;
            };
            let start = self.started.remove(&ticket).unwrap_or_else(Instant::now);
            match outcome {
                Ok(_) => {
                    self.latencies.record(start.elapsed());
                    self.submit(Instant::now());
                }
                Err(_) => {
                    aborts.fetch_add(1, Ordering::Relaxed);
                    self.submit(start);
                }
            }
        }
        // Let the transactions in flight finish, as a client thread finishes its last.
        let deadline = Instant::now() + DRAIN;
        while let Some((ticket, outcome)) = self
            .pipeline
            .collect_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            let start = self.started.remove(&ticket).unwrap_or_else(Instant::now);
            if outcome.is_ok() {
                self.latencies.record(start.elapsed());
            } else {
                aborts.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn submit(&mut self, start: Instant) {
        let program = self.program();
        let ticket = self.pipeline.submit_boxed(program);
        self.started.insert(ticket, start);
    }

    /// One transaction of the workload, as `bench::operate` runs it.
    fn program(&mut self) -> Box<dyn Program> {
        let (keys, rng) = (&self.keys, &mut self.rng);
        match self.workload {
            Workload::HotKey => Box::new(increment()),
            Workload::Cross3 | Workload::Cross2 => {
                let count = if self.workload == Workload::Cross2 {
                    2
                } else {
                    3
                };
                let nodes = keys.nodes(count, rng);
                let puts = nodes
                    .into_iter()
                    .map(|node| Step::Put(keys.pick(node, rng).to_string(), "v".into()));
                Box::new(Steps::new(puts.collect::<Vec<_>>()))
            }
            _ => Box::new(Steps::new([Step::Put(keys.any(rng).into(), "v".into())])),
        }
    }
}

/// Reads the hot counter for update, writes it plus one, commits.
fn increment() -> impl Program {
    let mut wrote = false;
    move |read: Option<Option<String>>| match read {
        None if wrote => Step::Commit,
        None => Step::GetForUpdate(HOT_KEY.into()),
        Some(value) => {
            wrote = true;
            let value: u64 = value.and_then(|v| v.parse().ok()).unwrap_or(0);
            Step::Put(HOT_KEY.into(), (value + 1).to_string())
        }
    }
}
