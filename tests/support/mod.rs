//! Support shared by the crash matrix, the random fault runs and the serializability
//! tests: a cluster harness whose every wait is bounded ([`Harness`]), the list-append
//! history checker ([`history`]), and the machinery of the randomized fault runs
//! ([`faults`]). Their random choices come from the project's one seeded generator,
//! `kv2pc::rng::Rng`.
//!
//! No wait here can hang a test: settling runs on a helper thread and gives up after
//! [`SETTLE_LIMIT`], and loops that tick the manual clock until something happens stop
//! after a bounded number of ticks, each failing with a message that says what it waited
//! for.

// Each test binary compiles this module and uses a different part of it.
#![allow(dead_code, unused_imports)]

pub mod faults;

use crossbeam::channel::{Sender, bounded, unbounded};
use kv2pc::{Cluster, Config, Settings};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// A number from the environment, if the variable is set (seed counts and seeds).
pub fn env_number(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    Some(
        text.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, not {text:?}")),
    )
}

/// The longest a cluster may take to settle before the test fails.
pub const SETTLE_LIMIT: Duration = Duration::from_secs(20);

/// How far one tick moves the manual clock: past the default vote timeout and inquiry
/// interval, so each tick fires every timeout due.
pub const TICK: Duration = Duration::from_millis(1500);

/// The most ticks a wait may take before the test fails.
pub const MAX_TICKS: usize = 40;

/// A manual-clock cluster in a temporary directory, with bounded waits.
pub struct Harness {
    cluster: Option<Arc<Cluster>>,
    settle_requests: Option<Sender<Sender<()>>>,
    settler: Option<JoinHandle<()>>,
    config: Config,
    dir: TempDir,
}

impl Harness {
    /// Opens a fresh `nodes`-node cluster on the manual clock with default settings.
    pub fn open(nodes: u32) -> Harness {
        Harness::open_with(nodes, Settings::default())
    }

    /// Opens a fresh `nodes`-node cluster on the manual clock with `settings`.
    pub fn open_with(nodes: u32, settings: Settings) -> Harness {
        let mut harness = Harness {
            cluster: None,
            settle_requests: None,
            settler: None,
            config: Config {
                nodes,
                manual_clock: true,
                settings,
            },
            dir: TempDir::new().expect("create a temporary directory"),
        };
        harness.start();
        harness
    }

    /// Opens the cluster in the directory and starts its settler.
    fn start(&mut self) {
        let cluster = Cluster::open(self.dir.path(), self.config.clone());
        let cluster = Arc::new(cluster.expect("open the cluster"));
        let (settle_requests, requests) = unbounded::<Sender<()>>();
        let settling = cluster.clone();
        let settler = std::thread::Builder::new()
            .name("settler".into())
            .spawn(move || {
                while let Ok(done) = requests.recv() {
                    settling.settle();
                    let _ = done.send(());
                }
            })
            .expect("start the settler thread");
        self.cluster = Some(cluster);
        self.settle_requests = Some(settle_requests);
        self.settler = Some(settler);
    }

    /// Stops the settler, then the cluster; returns whether it could (nothing else holds
    /// the cluster, and the settler is not stuck).
    fn stop(&mut self) -> bool {
        self.settle_requests = None;
        if let Some(settler) = self.settler.take() {
            let deadline = Instant::now() + Duration::from_secs(5);
            while !settler.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            if settler.is_finished() {
                let _ = settler.join();
            }
        }
        match self.cluster.take().map(Arc::try_unwrap) {
            Some(Ok(cluster)) => {
                cluster.close();
                true
            }
            Some(Err(_)) => false,
            None => true,
        }
    }

    /// The whole process dies and starts again: every node crashes (losing what it had not
    /// fsynced), and the cluster is opened anew from the directory. Clients of the old
    /// cluster find every node down.
    pub fn reopen(&mut self) {
        let cluster = self.cluster().clone();
        for node in 0..cluster.nodes() {
            let _ = cluster.crash(node);
        }
        drop(cluster);
        // Its waiting clients have been told the nodes are down; let them wake.
        self.settle(&"the process dying");
        assert!(
            self.stop(),
            "the cluster is still in use; it cannot be reopened"
        );
        self.start();
    }

    /// The cluster.
    pub fn cluster(&self) -> &Arc<Cluster> {
        self.cluster.as_ref().expect("the cluster is open")
    }

    /// Waits until no message is in flight; fails the test after [`SETTLE_LIMIT`].
    pub fn settle(&self, context: &dyn std::fmt::Display) {
        let (done, finished) = bounded(1);
        let requests = self.settle_requests.as_ref().expect("the settler runs");
        requests.send(done).expect("the settler thread is alive");
        if finished.recv_timeout(SETTLE_LIMIT).is_err() {
            panic!(
                "{context}: the cluster did not settle within {SETTLE_LIMIT:?}: a message is \
                 in flight forever or a node thread is stuck"
            );
        }
    }

    /// Advances the manual clock by one [`TICK`] and settles.
    pub fn tick(&self, context: &dyn std::fmt::Display) {
        self.cluster()
            .tick(TICK)
            .expect("the cluster runs on the manual clock");
        self.settle(context);
    }

    /// Keys owned by `node`, named `{prefix}{i}`.
    pub fn keys_on(&self, node: u32, count: usize, prefix: &str) -> Vec<String> {
        (0..)
            .map(|i| format!("{prefix}{i}"))
            .filter(|k| self.cluster().owner(k) == node)
            .take(count)
            .collect()
    }

    /// Settles and ticks until `handle`'s thread ends (a commit waiting for votes ends
    /// at the vote timeout), then returns its result. Fails after [`MAX_TICKS`] ticks.
    ///
    /// Use it only once the thread has sent its last request: a tick while it is still
    /// working could time out a commit whose votes are on their way. Otherwise use
    /// [`Harness::join`].
    pub fn finish<T>(&self, handle: JoinHandle<T>, context: &dyn std::fmt::Display) -> T {
        for _ in 0..=MAX_TICKS {
            self.settle(context);
            if wait_briefly(&handle) {
                return handle.join().expect("the client thread panicked");
            }
            self.tick(context);
        }
        panic!(
            "{context}: a client is still blocked after {MAX_TICKS} ticks of {TICK:?}; \
             status {:?}; locks {:?}",
            self.cluster().status(),
            self.cluster().locks()
        );
    }

    /// Waits, without moving the clock, for `handle`'s thread to end; fails after
    /// [`SETTLE_LIMIT`].
    pub fn join<T>(&self, handle: JoinHandle<T>, context: &dyn std::fmt::Display) -> T {
        let deadline = Instant::now() + SETTLE_LIMIT;
        while !handle.is_finished() {
            assert!(
                Instant::now() < deadline,
                "{context}: a client thread is still blocked after {SETTLE_LIMIT:?}; locks {:?}",
                self.cluster().locks()
            );
            std::thread::sleep(Duration::from_micros(100));
        }
        handle.join().expect("the client thread panicked")
    }

    /// What is left over that should not be once every node is up and no transaction
    /// runs: a node down, a transaction in doubt, active or being coordinated, a commit
    /// decision not acknowledged, a lock. Empty when clean.
    pub fn leftovers(&self) -> Vec<String> {
        let mut found = Vec::new();
        for status in self.cluster().status() {
            let node = status.node;
            if !status.up {
                found.push(format!("node {node} is down"));
            }
            if !status.in_doubt.is_empty() {
                found.push(format!("node {node} is in doubt on {:?}", status.in_doubt));
            }
            if !status.active.is_empty() {
                found.push(format!("node {node} has active {:?}", status.active));
            }
            if !status.coordinating.is_empty() {
                found.push(format!("node {node} coordinates {:?}", status.coordinating));
            }
            if !status.unacknowledged.is_empty() {
                found.push(format!(
                    "node {node} has unacknowledged decisions {:?}",
                    status.unacknowledged
                ));
            }
        }
        for (node, locks) in self.cluster().locks() {
            found.push(format!("node {node} holds a lock: {locks:?}"));
        }
        found
    }

    /// Settles and ticks (in-doubt participants ask again on a tick) until nothing is
    /// left over; returns what is left after [`MAX_TICKS`] ticks if it never clears.
    pub fn resolve(&self, context: &dyn std::fmt::Display) -> Result<(), Vec<String>> {
        for _ in 0..MAX_TICKS {
            self.settle(context);
            if self.leftovers().is_empty() {
                return Ok(());
            }
            self.tick(context);
        }
        match self.leftovers() {
            left if left.is_empty() => Ok(()),
            left => Err(left),
        }
    }

    /// Restarts every node that is down and resolves (see [`Harness::resolve`]), again
    /// while nodes die on the way: an armed crash point may fire as an in-doubt
    /// transaction is settled. Returns what is left over if it never clears.
    pub fn recover(&self, context: &dyn std::fmt::Display) -> Result<(), Vec<String>> {
        let mut left = Vec::new();
        for _ in 0..MAX_TICKS {
            for node in 0..self.cluster().nodes() {
                if !self.cluster().is_up(node)
                    && let Err(error) = self.cluster().restart(node)
                {
                    return Err(vec![format!("restarting node {node} failed: {error}")]);
                }
            }
            match self.resolve(context) {
                Ok(()) => return Ok(()),
                Err(now) if now.iter().any(|l| l.ends_with("is down")) => left = now,
                Err(now) => return Err(now),
            }
        }
        Err(left)
    }

    /// Every node's committed data, merged (each key lives on one node).
    pub fn data(&self) -> std::collections::BTreeMap<String, String> {
        let mut all = std::collections::BTreeMap::new();
        for node in 0..self.cluster().nodes() {
            all.extend(self.cluster().data(node).expect("read a node's data"));
        }
        all
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        // The cluster stops before the directory goes.
        let _ = self.stop();
    }
}

/// Whether `handle`'s thread ends within a moment: a client thread takes its answer
/// just after the cluster settles. Misjudging a slow thread as blocked costs one tick
/// too many, harmless once the thread has sent its last request (see
/// [`Harness::finish`]).
fn wait_briefly<T>(handle: &JoinHandle<T>) -> bool {
    let deadline = Instant::now() + Duration::from_millis(5);
    loop {
        if handle.is_finished() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_micros(50));
    }
}
