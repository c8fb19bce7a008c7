//! Scenarios: a seed generates a run as a list of [`Event`]s. Transactions of several
//! clients, through every coordinator, over a few keys on every node, are interleaved call
//! by call with faults (crashes, crash points armed, restarts), clock ticks and
//! checkpoints. Restarts go mostly to nodes that a crash or an armed point may have
//! brought down.

use crate::support::rng::Rng;
use kv2pc::types::owner_of;
use kv2pc::{CrashPoint, NodeId};
use std::collections::VecDeque;
use std::fmt;

/// One client call of a transaction's plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    /// Read the key's list.
    Read(String),
    /// Append the transaction's next element to the list last read or written.
    Append(String),
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
            Event::Call {
                txn,
                call: Call::Read(key),
            } => write!(f, "t{txn}: GET {key}"),
            Event::Call {
                txn,
                call: Call::Append(key),
            } => write!(f, "t{txn}: APPEND {key}"),
            Event::Commit { txn } => write!(f, "t{txn}: COMMIT"),
            Event::Abort { txn } => write!(f, "t{txn}: ABORT"),
            Event::Crash { node } => write!(f, "CRASH node {node}"),
            Event::Arm { node, point } => write!(f, "CRASH node {node} AT {point}"),
            Event::Restart { node } => write!(f, "RESTART node {node}"),
            Event::Tick => write!(f, "TICK"),
            Event::Checkpoint { node } => write!(f, "CHECKPOINT node {node}"),
            Event::Reopen => write!(f, "REOPEN (the process dies and restarts)"),
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

/// The scenario of `seed`: 2 to 4 nodes, 1 to 3 keys on each, 5 to 12 transactions (at
/// most 4 open at once, some of them lock-free snapshots), and faults between their calls.
pub fn generate(seed: u64) -> Scenario {
    let mut rng = Rng::new(seed);
    let nodes = 2 + rng.below(3) as u32;
    let eager_checkpoints = rng.chance(15);
    let keys = keys(nodes, 1 + rng.below(3));
    let total = 5 + rng.below(8);
    let mut events = Vec::new();
    let mut open: Vec<(usize, VecDeque<Call>)> = Vec::new();
    let mut begun = 0;
    // Nodes crashed or armed since their last restart: restarts go mostly to them.
    let mut faulty: Vec<NodeId> = Vec::new();
    while begun < total || !open.is_empty() {
        let node = rng.below(nodes as usize) as NodeId;
        match rng.below(100) {
            0..=14 if begun < total && open.len() < 4 => {
                let snapshot = rng.chance(15);
                let calls = plan(&mut rng, &keys, snapshot).into();
                events.push(Event::Begin {
                    txn: begun,
                    coordinator: node,
                    snapshot,
                });
                open.push((begun, calls));
                begun += 1;
            }
            15..=69 if !open.is_empty() => {
                let index = rng.below(open.len());
                let txn = open[index].0;
                match open[index].1.pop_front() {
                    Some(call) => events.push(Event::Call { txn, call }),
                    None => {
                        open.remove(index);
                        events.push(if rng.chance(8) {
                            Event::Abort { txn }
                        } else {
                            Event::Commit { txn }
                        });
                    }
                }
            }
            70..=73 => {
                events.push(Event::Crash { node });
                faulty.push(node);
            }
            74..=79 => {
                let point = *rng.pick(&CrashPoint::ALL);
                events.push(Event::Arm { node, point });
                faulty.push(node);
            }
            80..=88 => {
                let node = if faulty.is_empty() || rng.chance(10) {
                    node
                } else {
                    faulty.swap_remove(rng.below(faulty.len()))
                };
                faulty.retain(|n| *n != node);
                events.push(Event::Restart { node });
            }
            89..=96 => events.push(Event::Tick),
            97..=98 => events.push(Event::Checkpoint { node }),
            99 => events.push(Event::Reopen),
            _ => {}
        }
    }
    Scenario {
        seed,
        nodes,
        eager_checkpoints,
        keys,
        events,
    }
}
