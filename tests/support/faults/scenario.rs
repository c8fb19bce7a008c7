//! Scenarios: what a run is made of ([`Event`]s, the [`Call`]s of a transaction's plan,
//! the [`Scenario`]) and the simple plans the free-running test uses. The seeded
//! generator is in `generate`.

use kv2pc::rng::Rng;
use kv2pc::types::owner_of;
use kv2pc::{CrashPoint, NodeId};
use std::fmt;

/// One client call of a transaction's plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    /// Read the key's list.
    Read(String),
    /// Read the key's list under an exclusive lock (`GET ... FOR UPDATE`).
    ReadForUpdate(String),
    /// Append the transaction's next element to the list last read or written.
    Append(String),
    /// Delete the key (its list becomes "not set").
    Delete(String),
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Call::Read(key) => write!(f, "GET {key}"),
            Call::ReadForUpdate(key) => write!(f, "GET {key} FOR UPDATE"),
            Call::Append(key) => write!(f, "APPEND {key}"),
            Call::Delete(key) => write!(f, "DEL {key}"),
        }
    }
}

/// One step of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Transaction `txn` begins at `coordinator`; a snapshot one reads without locks.
    Begin {
        txn: usize,
        coordinator: NodeId,
        snapshot: bool,
    },
    /// Transaction `txn` makes its next call (skipped if it is blocked or over).
    Call { txn: usize, call: Call },
    /// Transaction `txn` commits.
    Commit { txn: usize },
    /// Transaction `txn` aborts.
    Abort { txn: usize },
    /// `node` dies now.
    Crash { node: NodeId },
    /// `node` dies the next time it reaches `point`.
    Arm { node: NodeId, point: CrashPoint },
    /// `node` recovers (if it is down).
    Restart { node: NodeId },
    /// The manual clock moves past every timeout.
    Tick,
    /// `node` writes a checkpoint.
    Checkpoint { node: NodeId },
    /// The whole process dies (every node, at once) and the cluster is opened again.
    Reopen,
    /// `node`'s machine loses power during the next event: of what its log holds
    /// unsynced then, any sectors may be lost (simulated runs only; the threaded
    /// cluster, on real disks, crashes the node instead).
    PowerLoss { node: NodeId },
    /// Messages from `from` to `to` wait, from the first whose label starts with
    /// `label` on, until the link is released (a message delayed on the network).
    Hold {
        from: NodeId,
        to: NodeId,
        label: &'static str,
    },
    /// What waited on the link from `from` to `to` goes out, in order.
    Release { from: NodeId, to: NodeId },
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Begin {
                txn,
                coordinator,
                snapshot,
            } => {
                let kind = if *snapshot { " READ ONLY" } else { "" };
                write!(f, "t{txn}: BEGIN{kind} at node {coordinator}")
            }
            Event::Call { txn, call } => write!(f, "t{txn}: {call}"),
            Event::Commit { txn } => write!(f, "t{txn}: COMMIT"),
            Event::Abort { txn } => write!(f, "t{txn}: ABORT"),
            Event::Crash { node } => write!(f, "CRASH node {node}"),
            Event::Arm { node, point } => write!(f, "CRASH node {node} AT {point}"),
            Event::Restart { node } => write!(f, "RESTART node {node}"),
            Event::Tick => write!(f, "TICK"),
            Event::Checkpoint { node } => write!(f, "CHECKPOINT node {node}"),
            Event::Reopen => write!(f, "REOPEN (the process dies and restarts)"),
            Event::PowerLoss { node } => write!(f, "POWER LOSS node {node}"),
            Event::Hold { from, to, label } => {
                write!(f, "HOLD {from} -> {to} from {label:?}")
            }
            Event::Release { from, to } => write!(f, "RELEASE {from} -> {to}"),
        }
    }
}

/// A generated run.
pub struct Scenario {
    /// The seed it was generated from.
    pub seed: u64,
    /// The cluster's size: 2 to 4 nodes.
    pub nodes: u32,
    /// Whether nodes checkpoint after almost every batch (a tiny `checkpoint_bytes`).
    pub eager_checkpoints: bool,
    /// How its coordinators commit (classic or parallel).
    pub commit: kv2pc::CommitMode,
    /// The keys its transactions use, on every node.
    pub keys: Vec<String>,
    /// The run, step by step.
    pub events: Vec<Event>,
}

/// `per_node` keys on every node of a `nodes`-node cluster.
pub fn keys(nodes: u32, per_node: usize) -> Vec<String> {
    let mut keys = Vec::new();
    for node in 0..nodes {
        let on_node = (0..)
            .map(|i| format!("k{i}"))
            .filter(|k| owner_of(k, nodes) == node)
            .take(per_node);
        keys.extend(on_node);
    }
    keys.sort();
    keys
}

/// A transaction's calls: reads of 1 to 3 keys, each followed (unless it is read-only,
/// as a snapshot must be) by an append, sometimes two.
pub fn plan(rng: &mut Rng, keys: &[String], read_only: bool) -> Vec<Call> {
    let count = (1 + rng.below(3)).min(keys.len());
    let mut chosen: Vec<&String> = Vec::new();
    while chosen.len() < count {
        let key = rng.pick(keys);
        if !chosen.contains(&key) {
            chosen.push(key);
        }
    }
    let read_only = read_only || rng.chance(20);
    let mut calls = Vec::new();
    for key in chosen {
        calls.push(Call::Read(key.clone()));
        if !read_only {
            calls.push(Call::Append(key.clone()));
            if rng.chance(10) {
                calls.push(Call::Append(key.clone()));
            }
        }
    }
    calls
}
