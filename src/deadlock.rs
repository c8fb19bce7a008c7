//! Deadlock detection across nodes.
//!
//! Strict two-phase locking waits, and waits across nodes can form a cycle no single node
//! sees: T1 waits for T2 on node 0 while T2 waits for T1 on node 1. Each node reports its
//! current waits (waiter -> blockers) whenever they change; the detector keeps the
//! cluster-wide wait-for graph and, when a report closes a cycle, chooses the victim: the
//! youngest transaction in the cycle (the one begun last, which has likely done the least
//! work). The node where the victim waits aborts it and tells its client the cycle.
//!
//! The detector stands for what would be a service in a real deployment (a central
//! detector, as in many distributed databases); here it is a shared object the node
//! threads call, named explicitly in the cluster's shared state.
//!
//! Prepared transactions are never victims: only a waiting transaction can be on a
//! cycle, and a prepared one has voted and waits for nothing.
//!
//! The alternatives, not implemented: wait-die / wound-wait (avoidance by age: never a
//! cycle, but aborts that a cycle would not have needed) and lock-wait timeouts (simple,
//! but they abort slow transactions as well as deadlocked ones, and only after the wait).

use crate::lock::Wait;
use crate::types::{NodeId, TxnId};
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet};

/// A victim chosen to break a cycle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Victim {
    /// The transaction to abort.
    pub tid: TxnId,
    /// The node where it waits.
    pub node: NodeId,
    /// The cycle, starting and ending at the victim.
    pub cycle: Vec<TxnId>,
}

#[derive(Default)]
struct Graph {
    /// Each waiting transaction: the node where it waits and whom it waits for.
    edges: BTreeMap<TxnId, (NodeId, Vec<TxnId>)>,
    /// How many waits name each transaction as a blocker. One that blocks no one is on
    /// no cycle, so a wait that changed need not be searched from (the newest waiter at
    /// the end of a long queue, the common case, costs nothing).
    blocking: BTreeMap<TxnId, usize>,
}

/// The cluster-wide wait-for graph.
pub struct Detector {
    nodes: u32,
    graph: Mutex<Graph>,
}

impl Detector {
    /// A detector for a cluster of `nodes` nodes.
    pub fn new(nodes: u32) -> Detector {
        Detector {
            nodes,
            graph: Mutex::new(Graph::default()),
        }
    }

    /// Replaces `node`'s waits and returns the victims of any cycle through them.
    pub fn update(&self, node: NodeId, waits: &[Wait]) -> Vec<Victim> {
        let mut graph = self.graph.lock();
        let old: BTreeMap<TxnId, (NodeId, Vec<TxnId>)> =
            (graph.edges.extract_if(.., |_, (at, _)| *at == node)).collect();
        for (_, blockers) in old.values() {
            graph.count_blocking(blockers, false);
        }
        // A new cycle must pass through a wait that is new or changed, whose waiter
        // blocks someone: search from those.
        let mut changed = Vec::new();
        for wait in waits {
            let edge = (node, wait.blockers.clone());
            if old.get(&wait.tid) != Some(&edge) {
                changed.push(wait.tid);
            }
            graph.count_blocking(&edge.1, true);
            graph.edges.insert(wait.tid, edge);
        }
        changed.retain(|tid| graph.blocking.contains_key(tid));
        let mut victims: Vec<Victim> = Vec::new();
        for cycle in graph.cycles_from(&changed) {
            let victim = self.choose(&graph, cycle);
            if !victims.iter().any(|v| v.tid == victim.tid) {
                victims.push(victim);
            }
        }
        victims
    }

    /// The youngest transaction on the cycle, with the cycle rotated to start at it.
    fn choose(&self, graph: &Graph, cycle: Vec<TxnId>) -> Victim {
        let tid = *cycle
            .iter()
            .max_by_key(|tid| (tid.counter(self.nodes), **tid))
            .expect("a cycle is never empty");
        let start = cycle.iter().position(|t| *t == tid).unwrap_or(0);
        let mut path: Vec<TxnId> = cycle[start..]
            .iter()
            .chain(&cycle[..start])
            .copied()
            .collect();
        path.push(tid);
        let node = graph.edges.get(&tid).map(|(node, _)| *node).unwrap_or(0);
        Victim {
            tid,
            node,
            cycle: path,
        }
    }
}

impl Graph {
    /// Counts (or uncounts) one wait for each of `blockers`.
    fn count_blocking(&mut self, blockers: &[TxnId], add: bool) {
        for blocker in blockers {
            let count = self.blocking.entry(*blocker).or_insert(0);
            if add {
                *count += 1;
            } else {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    self.blocking.remove(blocker);
                }
            }
        }
    }

    /// The cycles reachable from `starts`, each as the list of its transactions, found by
    /// one depth-first search with the usual colours: a transaction fully explored leads
    /// to no cycle not yet found, so it is never explored again, and the search costs
    /// O(waits) however long the queues are.
    fn cycles_from(&self, starts: &[TxnId]) -> Vec<Vec<TxnId>> {
        let mut search = Search::default();
        for start in starts {
            self.search(*start, &mut search);
        }
        search.cycles
    }

    fn search(&self, at: TxnId, search: &mut Search) {
        if search.done.contains(&at) {
            return;
        }
        if search.on_path.contains(&at) {
            let position = search.path.iter().position(|on| *on == at).unwrap_or(0);
            search.cycles.push(search.path[position..].to_vec());
            return;
        }
        let Some((_, blockers)) = self.edges.get(&at) else {
            search.done.insert(at);
            return;
        };
        search.path.push(at);
        search.on_path.insert(at);
        for next in blockers {
            self.search(*next, search);
        }
        search.path.pop();
        search.on_path.remove(&at);
        search.done.insert(at);
    }
}

/// The state of one depth-first search for cycles.
#[derive(Default)]
struct Search {
    /// The transactions from the start to where the search is.
    path: Vec<TxnId>,
    on_path: BTreeSet<TxnId>,
    /// Fully explored.
    done: BTreeSet<TxnId>,
    cycles: Vec<Vec<TxnId>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lock::LockMode;

    fn wait(tid: u64, blockers: &[u64]) -> Wait {
        Wait {
            tid: TxnId(tid),
            key: "k".into(),
            mode: LockMode::Exclusive,
            blockers: blockers.iter().map(|b| TxnId(*b)).collect(),
        }
    }

    #[test]
    fn a_cycle_through_a_long_queue_is_found_from_the_wait_that_closes_it() {
        let detector = Detector::new(3);
        // On node 0, T2..T6 queue for a key held by T1, each behind the one before.
        let queue: Vec<Wait> = (2..=6).map(|t| wait(t, &[t - 1])).collect();
        assert!(detector.update(0, &queue).is_empty());
        // On node 1, T1 waits for T6: the cycle T1 -> T6 -> ... -> T2 -> T1.
        let victims = detector.update(1, &[wait(1, &[6])]);
        assert_eq!(victims.len(), 1, "{victims:?}");
        assert_eq!(victims[0].tid, TxnId(6), "the youngest");
        assert_eq!(victims[0].cycle.len(), 7);
        // Reporting the same waits again finds nothing new to search, and a newcomer at
        // the end of the queue blocks no one: no search, no victim.
        let mut longer = queue.clone();
        longer.push(wait(7, &[6]));
        assert_eq!(detector.update(0, &longer).len(), 0);
    }

    /// The scenario (K, M, N on node 1, L on node 2; p T1, x T4, w T7, v T10):
    /// w's wait closes two cycles at once, T10 -> T4 -> T7 -> T1 -> T10 and T7 -> T4 ->
    /// T7. The victim of the first, T10, is not on the second, so the second needs a
    /// victim of its own, then or at a later report.
    #[test]
    fn two_cycles_closed_by_one_wait_both_get_a_victim() {
        let detector = Detector::new(3);
        let mut victims = Vec::new();
        // x waits for w on N; p waits for v on L; v waits for x on M.
        victims.extend(detector.update(1, &[wait(4, &[7])]));
        victims.extend(detector.update(2, &[wait(1, &[10])]));
        victims.extend(detector.update(1, &[wait(4, &[7]), wait(10, &[4])]));
        assert!(victims.is_empty(), "{victims:?}");
        // w waits for p and x, the shared holders of K.
        let closing = [wait(4, &[7]), wait(10, &[4]), wait(7, &[1, 4])];
        victims.extend(detector.update(1, &closing));
        assert!(
            victims.iter().any(|v| v.tid == TxnId(10)),
            "the long cycle's victim: {victims:?}"
        );
        // T10 aborts: its wait on node 1 ends, and p gets L on node 2.
        victims.extend(detector.update(1, &[wait(4, &[7]), wait(7, &[1, 4])]));
        victims.extend(detector.update(2, &[]));
        let second: Vec<&Victim> = (victims.iter())
            .filter(|v| v.tid == TxnId(4) || v.tid == TxnId(7))
            .collect();
        assert_eq!(
            second.len(),
            1,
            "one victim for T7 -> T4 -> T7: {victims:?}"
        );
    }

    #[test]
    fn a_cycle_across_nodes_aborts_the_youngest() {
        let detector = Detector::new(3);
        assert!(detector.update(0, &[wait(1, &[4])]).is_empty());
        let victims = detector.update(1, &[wait(4, &[1])]);
        assert_eq!(
            victims,
            vec![Victim {
                tid: TxnId(4),
                node: 1,
                cycle: vec![TxnId(4), TxnId(1), TxnId(4)]
            }]
        );
    }

    #[test]
    fn cleared_waits_leave_no_cycle() {
        let detector = Detector::new(3);
        detector.update(0, &[wait(1, &[4])]);
        detector.update(0, &[]);
        assert!(detector.update(1, &[wait(4, &[1])]).is_empty());
    }

    #[test]
    fn three_way_cycle_is_found() {
        let detector = Detector::new(1);
        detector.update(0, &[wait(1, &[2]), wait(2, &[3])]);
        let victims = detector.update(0, &[wait(1, &[2]), wait(2, &[3]), wait(3, &[1])]);
        assert_eq!(victims.len(), 1);
        assert_eq!(victims[0].tid, TxnId(3));
        assert_eq!(
            victims[0].cycle,
            vec![TxnId(3), TxnId(1), TxnId(2), TxnId(3)]
        );
    }
}
