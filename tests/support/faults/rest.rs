//! What must hold whenever a run is at rest (every client answered or stuck in the
//! cluster, no message in flight), checked after every event:
//!
//! - **No wait-for cycle survives the detector.** The detector runs when a request starts
//!   waiting and its victims are told before the cluster settles, so at rest the lock
//!   tables' waits (a waiter waits for each holder it conflicts with, and for each
//!   conflicting request ahead of it in the queue) form no cycle. Not checked while a
//!   held link keeps messages back: a victim's abort may be among them.
//! - **A crashed coordinator blocks no reader.** A read-only transaction's read that is
//!   stuck at a node in doubt on a transaction whose coordinator is down breaks the
//!   README's promise (each transaction of a run has a session of its own, which
//!   committed nothing after its snapshot). Unless every node was down when the
//!   snapshot began: its client then chose the timestamp, and a read may wait (the
//!   limit `node::floors` states). And, with parallel commits, unless the node the
//!   read waits at, the transaction's coordinator and every other node it read or
//!   wrote at were all down when the snapshot began: the client heard COMMIT before
//!   any participant could know the outcome, and if the node choosing the snapshot
//!   never had a floor report from the node in doubt, nothing alive knew its prepare
//!   (`node::floors`, limits). That exemption is wider than the limit (it also covers
//!   a node that did report); a participant that was up must have held the snapshot
//!   below the prepare (a staged PREPARE's floor), and that is checked.

use super::backend::Failure;
use super::driver::{Driver, Pending, Phase};
use kv2pc::cluster::KeyLocks;
use kv2pc::history::Op;
use kv2pc::types::LockMode;
use kv2pc::types::owner_of;
use kv2pc::{NodeId, TxnId};
use std::collections::{BTreeMap, BTreeSet};

impl Driver<'_> {
    /// Checks the run at rest; see the module doc.
    pub(super) fn check_at_rest(&self) -> Result<(), Failure> {
        let held = (self.backend.held_links().iter()).any(|(_, _, waiting)| *waiting > 0);
        let locks = self.backend.locks();
        if !held && let Some(cycle) = wait_cycle(&locks) {
            return Err(format!(
                "a wait-for cycle survives the deadlock detector at rest: {}; locks {locks:?}",
                show(&cycle),
            ));
        }
        self.check_readers_unblocked()
    }

    fn check_readers_unblocked(&self) -> Result<(), Failure> {
        for (txn, run) in self.txns.iter().enumerate() {
            let Some(Pending::Read(key)) = &run.pending else {
                continue;
            };
            if !run.snapshot
                || run.client_chosen
                || run.phase != Phase::Calling
                || !self.backend.stuck(txn)
            {
                continue;
            }
            let owner = owner_of(key, self.scenario.nodes);
            let down: Vec<(TxnId, NodeId)> = (self.backend.in_doubt(owner).into_iter())
                .filter(|(_, coordinator)| !self.backend.is_up(*coordinator))
                .filter(|(tid, coordinator)| {
                    let gone = &run.down_at_begin;
                    let mut knew = self.participants_of(*tid).into_iter().chain([*coordinator]);
                    !(gone.contains(&owner) && knew.all(|node| gone.contains(&node)))
                })
                .collect();
            if !down.is_empty() {
                return Err(format!(
                    "{}'s read-only GET {key} waits at node {owner}, which is in doubt on \
                     {down:?} whose coordinator is down: a crashed coordinator must never \
                     block a reader whose session committed nothing after its snapshot",
                    run.record.name
                ));
            }
        }
        Ok(())
    }

    /// The nodes `tid` read or wrote at, as far as its client was answered.
    fn participants_of(&self, tid: TxnId) -> BTreeSet<NodeId> {
        let Some(run) = self.txns.iter().find(|run| run.tid == Some(tid)) else {
            return BTreeSet::new();
        };
        (run.record.ops.iter())
            .map(|op| match op {
                Op::Read { key, .. } | Op::Append { key, .. } | Op::Delete { key } => {
                    owner_of(key, self.scenario.nodes)
                }
            })
            .collect()
    }
}

/// A cycle in the waits of the lock tables, if there is one.
pub fn wait_cycle(locks: &[(NodeId, KeyLocks)]) -> Option<Vec<TxnId>> {
    let mut waits: BTreeMap<TxnId, BTreeSet<TxnId>> = BTreeMap::new();
    let conflict = |a: LockMode, b: LockMode| a == LockMode::Exclusive || b == LockMode::Exclusive;
    for (_, key) in locks {
        for (index, (waiter, mode)) in key.waiters.iter().enumerate() {
            let ahead = key.holders.iter().chain(&key.waiters[..index]);
            for (other, held) in ahead {
                if other != waiter && conflict(*mode, *held) {
                    waits.entry(*waiter).or_default().insert(*other);
                }
            }
        }
    }
    let mut done = BTreeSet::new();
    for start in waits.keys() {
        let mut path = Vec::new();
        if let Some(cycle) = search(*start, &waits, &mut path, &mut done) {
            return Some(cycle);
        }
    }
    None
}

/// Depth-first search from `at`; a cycle is a return to a transaction on `path`.
fn search(
    at: TxnId,
    waits: &BTreeMap<TxnId, BTreeSet<TxnId>>,
    path: &mut Vec<TxnId>,
    done: &mut BTreeSet<TxnId>,
) -> Option<Vec<TxnId>> {
    if let Some(position) = path.iter().position(|t| *t == at) {
        return Some(path[position..].to_vec());
    }
    if done.contains(&at) {
        return None;
    }
    path.push(at);
    for next in waits.get(&at).into_iter().flatten() {
        if let Some(cycle) = search(*next, waits, path, done) {
            return Some(cycle);
        }
    }
    path.pop();
    done.insert(at);
    None
}

fn show(cycle: &[TxnId]) -> String {
    let mut text: Vec<String> = cycle.iter().map(TxnId::to_string).collect();
    if let Some(first) = text.first().cloned() {
        text.push(first);
    }
    text.join(" -> ")
}
