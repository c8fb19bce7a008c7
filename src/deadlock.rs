//! Deadlock detection across nodes.
//!
//! Strict two-phase locking waits, and waits across nodes can form a cycle no single node
//! sees: T1 waits for T2 on node 0 while T2 waits for T1 on node 1. Each node reports its
//! current waits (waiter -> blockers) whenever they change; the detector keeps the
//! cluster-wide wait-for graph and, when a report closes a cycle, chooses the victim: the
//! youngest transaction in the cycle (the one begun last, which has likely done the least
//! work), by the begin stamp each wait carries (the cluster-wide order of BEGINs, which
//! ids, numbered by each coordinator, do not give). The node where the victim waits aborts it and tells its client the cycle.
//!
//! ## Victims being aborted
//!
//! A victim stays in the graph until its node reports again without it, and that report
//! may come after others (the victim's message waits in its node's inbox). Until then the
//! detector keeps it as *being aborted*: the search treats it as waiting for no one, so a
//! cycle through it is taken as broken (no second victim on it), and any other cycle is
//! still searched. The mark lasts while the graph shows the victim in the same wait (same
//! node, key and mode) it was chosen in: the victim message goes to that node, which
//! aborts the victim if it still waits there, so that wait ends at the node's next report
//! after the message. If the wait ends or changes first (granted, now waiting elsewhere),
//! the message may find nothing to abort, so the mark is dropped and the transaction is
//! searched from again. A transaction granted a key holds it to its end, so it never waits
//! for the same key in the same mode twice: a wait with the same node, key and mode is the
//! very wait the victim was chosen in. A node that crashes reports no waits, which ends its
//! victims' marks along with their waits.
//!
//! ## Why every cycle is found
//!
//! Invariant, after every report: every cycle of the graph holds a victim being aborted.
//! A report changes only its node's waits (and ends the marks of victims whose wait
//! changed), so a cycle with no victim on it afterwards passes through a wait that is new
//! or changed in this report, or through a transaction whose mark just ended (otherwise it
//! existed before, with no victim, against the invariant). The search starts from those
//! transactions, less those that block no one (on no cycle, so the newest waiter at the
//! end of a long queue, the common case, costs nothing).
//!
//! The search is a depth-first search that ignores victims being aborted and keeps one
//! set of transactions *done*: a transaction is done when every transaction it waits for
//! is done (or it waits for no one), so a done transaction reaches no cycle; choosing more
//! victims only removes waits, so it stays so. When the search meets a transaction already
//! on its path it has found a cycle: it chooses the victim, marks it, and starts again from
//! the first start, keeping the done set (the transactions still on the path are not done:
//! they may lie on another cycle, the fault of an earlier version that marked them done
//! and so never reported a second cycle through them). A search that ends without a cycle
//! has made every start done: no cycle through any start is left without a victim, and the
//! invariant holds.
//!
//! Cost: a report with no cycle costs one search, O(waits reachable from the starts); each
//! victim adds one more search, which skips what is done and so repeats only the path it
//! was on (O(waits) at worst). Queues stay cheap because a queue of n waiters reports n
//! waits, not n²/2 (see `Entry::wait_edges` in `lock`).
//!
//! Limits: the detector trusts the reports; a wait already ended on a node that has not
//! reported since can still close a cycle, and its victim is then aborted for a cycle that
//! no longer exists (a spurious abort, never a missed deadlock); so is a second victim
//! chosen on a cycle whose first victim's wait changed before its message arrived. The
//! graph is updated one report at a time by the node that owns it.
//!
//! Every node keeps one (`node::detect`): the nodes send each other their waits as
//! messages, and a node whose graph shows a cycle sends the victim's node a message.
//! This module is the graph alone, a plain value its node owns.
//!
//! Prepared transactions are never victims: only a waiting transaction can be on a
//! cycle, and a prepared one has voted and waits for nothing.
//!
//! The alternatives, not implemented: wait-die / wound-wait (avoidance by age: never a
//! cycle, but aborts that a cycle would not have needed) and lock-wait timeouts (simple,
//! but they abort slow transactions as well as deadlocked ones, and only after the wait).

use crate::lock::{LockMode, Wait};
use crate::types::{NodeId, TxnId};
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

/// One waiting transaction's wait, as last reported, with the node where it waits.
type Edge = (NodeId, Waiting);

/// What a transaction waits for.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Waiting {
    /// The key and mode it asked for: which wait this is.
    key: String,
    mode: LockMode,
    /// Whom it waits for.
    blockers: Vec<TxnId>,
    /// The waiter's begin stamp, by which the victim is chosen.
    began: u64,
}

/// Whether two edges are the same wait, whatever its blockers now.
fn same_wait((node, waiting): &Edge, (other_node, other): &Edge) -> bool {
    node == other_node && waiting.key == other.key && waiting.mode == other.mode
}

#[derive(Clone, Debug, Default)]
struct Graph {
    /// Each waiting transaction and its wait.
    edges: BTreeMap<TxnId, Edge>,
    /// How many waits name each transaction as a blocker. One that blocks no one is on
    /// no cycle, so a wait that changed need not be searched from (the newest waiter at
    /// the end of a long queue, the common case, costs nothing).
    blocking: BTreeMap<TxnId, usize>,
    /// Victims being aborted, with the wait they were chosen in.
    aborting: BTreeMap<TxnId, Edge>,
}

/// The cluster-wide wait-for graph.
#[derive(Clone, Debug)]
pub struct Detector {
    nodes: u32,
    graph: Graph,
}

impl Detector {
    /// A detector for a cluster of `nodes` nodes.
    pub fn new(nodes: u32) -> Detector {
        Detector {
            nodes,
            graph: Graph::default(),
        }
    }

    /// Replaces `node`'s waits and returns the victims that leave no cycle without one.
    pub fn update(&mut self, node: NodeId, waits: &[Wait]) -> Vec<Victim> {
        let nodes = self.nodes;
        let graph = &mut self.graph;
        let mut starts = graph.replace(node, waits);
        starts.extend(graph.end_marks());
        starts.retain(|tid| graph.blocking.contains_key(tid));
        let mut victims: Vec<Victim> = Vec::new();
        let mut done = BTreeSet::new();
        while let Some(cycle) = graph.find_cycle(&starts, &mut done) {
            let victim = choose(nodes, graph, cycle);
            if let Some(edge) = graph.edges.get(&victim.tid).cloned() {
                graph.aborting.insert(victim.tid, edge);
            }
            victims.push(victim);
        }
        victims
    }
}

/// The transaction on the cycle that began last (the largest begin stamp; ids do not
/// tell, as each coordinator numbers its own), with the cycle rotated to start at it.
/// Every transaction on a cycle waits, so its stamp is known; stamps of one client
/// handle are unique, and the coordinator's counter and the id break ties between
/// clients and order waits reported without one.
fn choose(nodes: u32, graph: &Graph, cycle: Vec<TxnId>) -> Victim {
    {
        let tid = *cycle
            .iter()
            .max_by_key(|tid| {
                let began = (graph.edges.get(tid)).map_or(0, |(_, waiting)| waiting.began);
                (began, tid.counter(nodes), **tid)
            })
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
    /// Replaces `node`'s waits, and returns the waiters whose wait is new or changed.
    ///
    /// In place: a wait reported again unchanged (most of a long queue, batch after
    /// batch) costs a comparison, not a removal, a copy of its key and an insertion.
    fn replace(&mut self, node: NodeId, waits: &[Wait]) -> Vec<TxnId> {
        let mut reported: Vec<TxnId> = waits.iter().map(|wait| wait.tid).collect();
        reported.sort_unstable();
        let gone: Vec<TxnId> = (self.edges.iter())
            .filter(|(tid, (at, _))| *at == node && reported.binary_search(tid).is_err())
            .map(|(tid, _)| *tid)
            .collect();
        for tid in gone {
            if let Some((_, waiting)) = self.edges.remove(&tid) {
                self.count_blocking(&waiting.blockers, false);
            }
        }
        let mut changed = Vec::new();
        for wait in waits {
            let same = self.edges.get(&wait.tid).is_some_and(|(at, waiting)| {
                *at == node
                    && waiting.key == wait.key
                    && waiting.mode == wait.mode
                    && waiting.blockers == wait.blockers
                    && waiting.began == wait.began
            });
            if same {
                continue;
            }
            changed.push(wait.tid);
            let waiting = Waiting {
                key: wait.key.clone(),
                mode: wait.mode,
                blockers: wait.blockers.clone(),
                began: wait.began,
            };
            self.count_blocking(&waiting.blockers, true);
            // Its wait here before, or reported by another node before (it was granted
            // there since).
            if let Some((_, before)) = self.edges.insert(wait.tid, (node, waiting)) {
                self.count_blocking(&before.blockers, false);
            }
        }
        changed
    }

    /// Ends the marks of victims no longer in the wait they were chosen in, and returns
    /// those that still wait (elsewhere or otherwise), to be searched from again.
    fn end_marks(&mut self) -> Vec<TxnId> {
        let edges = &self.edges;
        let ended = (self.aborting).extract_if(.., |tid, chosen| {
            !edges.get(tid).is_some_and(|now| same_wait(now, chosen))
        });
        let ended: Vec<TxnId> = ended.map(|(tid, _)| tid).collect();
        ended
            .into_iter()
            .filter(|tid| edges.contains_key(tid))
            .collect()
    }

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

    /// Whom `tid` waits for, as the search sees it: no one if it is a victim being
    /// aborted.
    fn blockers(&self, tid: TxnId) -> &[TxnId] {
        match self.edges.get(&tid) {
            Some((_, waiting)) if !self.aborting.contains_key(&tid) => &waiting.blockers,
            _ => &[],
        }
    }

    /// A cycle reachable from `starts` with no victim being aborted on it, or `None` once
    /// every start is `done` (reaches no such cycle).
    fn find_cycle(&self, starts: &[TxnId], done: &mut BTreeSet<TxnId>) -> Option<Vec<TxnId>> {
        starts.iter().find_map(|start| self.search(*start, done))
    }

    /// A depth-first search from `start`, with an explicit stack (a queue may be longer
    /// than a thread's stack is deep). It stops at the first cycle, leaving the
    /// transactions on its path not done.
    fn search(&self, start: TxnId, done: &mut BTreeSet<TxnId>) -> Option<Vec<TxnId>> {
        let mut path: Vec<(TxnId, std::slice::Iter<'_, TxnId>)> = Vec::new();
        let mut on_path = BTreeSet::new();
        let mut next = Some(start);
        loop {
            if let Some(at) = next.take() {
                if on_path.contains(&at) {
                    let position = path.iter().position(|(on, _)| *on == at).unwrap_or(0);
                    return Some(path[position..].iter().map(|(tid, _)| *tid).collect());
                }
                if !done.contains(&at) {
                    path.push((at, self.blockers(at).iter()));
                    on_path.insert(at);
                }
            }
            let (at, blockers) = path.last_mut()?;
            match blockers.next() {
                Some(blocker) => next = Some(*blocker),
                None => {
                    let at = *at;
                    path.pop();
                    on_path.remove(&at);
                    done.insert(at);
                }
            }
        }
    }
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
            began: 0,
        }
    }

    #[test]
    fn the_victim_is_the_one_begun_last_whatever_its_id() {
        // With 4 nodes, node 3 numbers T4 and node 2 T3; T4 began first (stamp 1).
        let mut detector = Detector::new(4);
        let began = |mut wait: Wait, stamp| {
            wait.began = stamp;
            wait
        };
        assert!(detector.update(1, &[began(wait(3, &[4]), 2)]).is_empty());
        let victims = detector.update(2, &[began(wait(4, &[3]), 1)]);
        assert_eq!(victims.len(), 1, "{victims:?}");
        assert_eq!(victims[0].tid, TxnId(3), "T3 began last");
        assert_eq!(victims[0].node, 1);
        assert_eq!(victims[0].cycle, vec![TxnId(3), TxnId(4), TxnId(3)]);
    }

    #[test]
    fn a_cycle_through_a_long_queue_is_found_from_the_wait_that_closes_it() {
        let mut detector = Detector::new(3);
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
        let mut detector = Detector::new(3);
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
    fn a_victim_being_aborted_breaks_its_cycles_but_hides_no_other() {
        let mut detector = Detector::new(1);
        detector.update(0, &[wait(1, &[2])]);
        let victims = detector.update(1, &[wait(2, &[1])]);
        assert_eq!(victims.len(), 1, "{victims:?}");
        assert_eq!(victims[0].tid, TxnId(2));
        // Node 0 reports again before T2's abort shows: T3 now waits for T1 too, a new
        // cycle T3 -> T1 -> T2 -> ... only through the victim: no second victim.
        let victims = detector.update(0, &[wait(1, &[2]), wait(3, &[1])]);
        assert!(victims.is_empty(), "{victims:?}");
        // Node 1 still shows T2 waiting, and T1 now waits for T3 and T2 on node 0: the
        // cycle T1 -> T3 -> T1 does not pass through T2 and needs its own victim.
        let victims = detector.update(0, &[wait(1, &[2, 3]), wait(3, &[1])]);
        assert_eq!(victims.len(), 1, "{victims:?}");
        assert_eq!(victims[0].cycle, vec![TxnId(3), TxnId(1), TxnId(3)]);
        // T2 is granted on node 1 and waits on node 0 instead: its message may find
        // nothing to abort, so it is searched from again.
        let victims = detector.update(0, &[wait(1, &[2, 3]), wait(3, &[1]), wait(2, &[1])]);
        assert_eq!(victims.len(), 1, "{victims:?}");
        assert_eq!(victims[0].cycle, vec![TxnId(2), TxnId(1), TxnId(2)]);
    }

    #[test]
    fn a_cycle_through_a_queue_deeper_than_a_stack_is_found() {
        let mut detector = Detector::new(1);
        let queue: Vec<Wait> = (2..=200_000).map(|t| wait(t, &[t - 1])).collect();
        assert!(detector.update(0, &queue).is_empty());
        let victims = detector.update(1, &[wait(1, &[200_000])]);
        assert_eq!(victims.len(), 1);
        assert_eq!(victims[0].cycle.len(), 200_001);
    }

    #[test]
    fn a_cycle_across_nodes_aborts_the_youngest() {
        let mut detector = Detector::new(3);
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
        let mut detector = Detector::new(3);
        detector.update(0, &[wait(1, &[4])]);
        detector.update(0, &[]);
        assert!(detector.update(1, &[wait(4, &[1])]).is_empty());
    }

    #[test]
    fn three_way_cycle_is_found() {
        let mut detector = Detector::new(1);
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
