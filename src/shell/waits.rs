//! `SHOW WAITS`: the wait-for graph now, read from every node's lock table, with the
//! sessions whose transactions wait and are waited for, and any cycle in it.
//!
//! An edge is a waiter and one transaction in its way on a key: a holder whose lock
//! conflicts with the mode asked for, or a conflicting request queued ahead of it (the
//! queue is FIFO, so that request is granted first). Edges are listed per waiter, by
//! node and key, in queue order. A cycle is a deadlock that nothing has broken (yet):
//! under `SET deadlock off`, or for the moment before detection or a timeout acts.
//!
//! Limits: the graph is read node by node after the cluster settles, as `SHOW LOCKS`
//! is; with work in flight (step mode) it shows each node's table as it stands.

use super::command::Text;
use super::executor::Shell;
use super::output::Outcome;
use crate::clock::format_duration;
use crate::cluster::KeyLocks;
use crate::config::DeadlockPolicy;

use crate::types::{LockMode, NodeId, TxnId};
use std::collections::{BTreeMap, BTreeSet};

/// One waiter on one key and what stands in its way there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waiting {
    /// The node whose lock table it waits in.
    pub node: NodeId,
    /// The key.
    pub key: String,
    /// The waiter.
    pub tid: TxnId,
    /// The mode it asked for.
    pub mode: LockMode,
    /// Conflicting holders, in id order.
    pub holders: Vec<TxnId>,
    /// Conflicting requests queued ahead of it, in queue order.
    pub ahead: Vec<TxnId>,
}

/// Every wait in the lock tables `locks` (node, key), in their order, each waiter's in
/// queue order.
pub fn waits(locks: &[(NodeId, KeyLocks)]) -> Vec<Waiting> {
    let conflict = |a: LockMode, b: LockMode| a == LockMode::Exclusive || b == LockMode::Exclusive;
    let mut waits = Vec::new();
    for (node, entry) in locks {
        for (position, (tid, mode)) in entry.waiters.iter().enumerate() {
            let holders = (entry.holders.iter())
                .filter(|(holder, held)| holder != tid && conflict(*mode, *held))
                .map(|(holder, _)| *holder)
                .collect();
            let ahead = (entry.waiters[..position].iter())
                .filter(|(other, asked)| other != tid && conflict(*mode, *asked))
                .map(|(other, _)| *other)
                .collect();
            waits.push(Waiting {
                node: *node,
                key: entry.key.clone(),
                tid: *tid,
                mode: *mode,
                holders,
                ahead,
            });
        }
    }
    waits
}

/// The cycles of the graph `waits` makes, each once, from its smallest transaction
/// (`[T3, T4, T3]`), in order of that transaction.
pub fn cycles(waits: &[Waiting]) -> Vec<Vec<TxnId>> {
    let mut edges: BTreeMap<TxnId, BTreeSet<TxnId>> = BTreeMap::new();
    for wait in waits {
        let to = edges.entry(wait.tid).or_default();
        to.extend(wait.holders.iter().chain(&wait.ahead));
    }
    let mut found: Vec<Vec<TxnId>> = Vec::new();
    let mut seen: BTreeSet<TxnId> = BTreeSet::new();
    for start in edges.keys() {
        // The shortest path back to `start` through larger transactions only, so each
        // cycle is found from its smallest member.
        let mut from: BTreeMap<TxnId, TxnId> = BTreeMap::new();
        let mut frontier = vec![*start];
        let mut closed = None;
        while closed.is_none() && !frontier.is_empty() {
            let mut next = Vec::new();
            for at in frontier {
                for to in edges.get(&at).into_iter().flatten() {
                    if to == start {
                        closed = Some(at);
                        break;
                    }
                    if to > start && !from.contains_key(to) && !seen.contains(to) {
                        from.insert(*to, at);
                        next.push(*to);
                    }
                }
                if closed.is_some() {
                    break;
                }
            }
            frontier = next;
        }
        if let Some(mut at) = closed {
            let mut cycle = vec![*start, at];
            while at != *start {
                at = from.get(&at).copied().unwrap_or(*start);
                cycle.push(at);
            }
            cycle.reverse();
            seen.extend(cycle.iter().copied());
            found.push(cycle);
        }
    }
    found
}

fn mode(mode: LockMode) -> &'static str {
    match mode {
        LockMode::Shared => "shared",
        LockMode::Exclusive => "exclusive",
    }
}

impl Shell {
    /// `SHOW WAITS`.
    pub(super) fn show_waits(&self, outcome: &mut Outcome) {
        let waits = waits(&self.cluster.locks());
        if waits.is_empty() {
            outcome.say("no transaction is waiting");
            return;
        }
        for wait in &waits {
            let mut blockers: Vec<String> =
                (wait.holders.iter()).map(|tid| self.named(*tid)).collect();
            blockers.extend(
                (wait.ahead.iter()).map(|tid| format!("{} (queued ahead)", self.named(*tid))),
            );
            outcome.say(format!(
                "{} waits for {} on {} ({}), node {}",
                self.named(wait.tid),
                blockers.join(" and "),
                Text(&wait.key),
                mode(wait.mode),
                wait.node
            ));
        }
        let settings = self.cluster.settings();
        let fate = match settings.deadlock {
            DeadlockPolicy::Off => {
                "nothing breaks it under SET deadlock off (SET deadlock detect would)".to_string()
            }
            DeadlockPolicy::Timeout => format!(
                "the first of its waits to last lock_timeout ({}) aborts",
                format_duration(settings.lock_timeout)
            ),
            _ => "not broken yet".to_string(),
        };
        for cycle in cycles(&waits) {
            let path: Vec<String> = cycle.iter().map(TxnId::to_string).collect();
            outcome.say(format!("deadlock: {}; {fate}", path.join(" -> ")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LockMode::{Exclusive, Shared};

    fn key(key: &str, holders: &[(u64, LockMode)], waiters: &[(u64, LockMode)]) -> KeyLocks {
        KeyLocks {
            key: key.into(),
            holders: holders.iter().map(|(t, m)| (TxnId(*t), *m)).collect(),
            waiters: waiters.iter().map(|(t, m)| (TxnId(*t), *m)).collect(),
            range: false,
        }
    }

    #[test]
    fn waits_name_conflicting_holders_and_requests_ahead() {
        let locks = [(
            1,
            key(
                "x",
                &[(1, Shared), (2, Shared)],
                &[(3, Exclusive), (4, Shared)],
            ),
        )];
        let waits = waits(&locks);
        assert_eq!(waits.len(), 2);
        assert_eq!(
            (waits[0].holders.clone(), waits[0].ahead.clone()),
            (vec![TxnId(1), TxnId(2)], vec![])
        );
        // The shared request conflicts with no holder, only with the writer ahead.
        assert_eq!(
            (waits[1].holders.clone(), waits[1].ahead.clone()),
            (vec![], vec![TxnId(3)])
        );
        assert!(cycles(&waits).is_empty());
    }

    #[test]
    fn a_cycle_across_nodes_is_found_once_from_its_smallest() {
        let locks = [
            (0, key("x", &[(3, Exclusive)], &[(4, Exclusive)])),
            (1, key("y", &[(4, Exclusive)], &[(3, Exclusive)])),
            (1, key("z", &[(5, Exclusive)], &[(6, Exclusive)])),
        ];
        let cycles = cycles(&waits(&locks));
        assert_eq!(cycles, vec![vec![TxnId(3), TxnId(4), TxnId(3)]]);
    }
}
