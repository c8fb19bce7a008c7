//! The deadlock detector against an oracle: random wait-for reports from a few nodes, the
//! victims it chooses aborted the way the runtime aborts them, and after every report no
//! cycle left that a from-scratch search finds.
//!
//! The model of the runtime: each node handles batches. A batch first handles some of the
//! victim messages sent to the node (a victim still waiting there is aborted; one that no
//! longer waits there is left alone, as `Participant::deadlock_victim` does), then changes
//! some waits (a transaction starts to wait, its blockers change, it is granted, it ends),
//! then reports all the node's waits to the detector, as `Node::end_batch` does at
//! the end of every batch. A victim message may stay undelivered over many reports of its
//! node, and a transaction granted on one node may wait on another before the first one
//! reports again. A crashed node reports no waits, and its messages are lost.
//!
//! A victim *counts* while its message is undelivered and the reported graph still shows
//! it in the wait it was chosen in: its node will abort it (a victim granted since, or
//! waiting elsewhere, may find nothing to abort, and its cycles need another look). After
//! every report: each victim returned lies on a cycle of the reported graph with no victim
//! that counts on it, and every cycle of the reported graph holds a victim that counts.

use kv2pc::TxnId;
use kv2pc::deadlock::{Detector, Victim};
use kv2pc::lock::{LockMode, Wait};
use proptest::collection::vec;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

const NODES: u32 = 3;
/// Transactions alive at once: few, so that cycles are frequent and share members.
const SLOTS: usize = 7;

/// One change of a transaction's wait on the node handling the batch.
#[derive(Clone, Debug)]
enum Change {
    /// The transaction in the slot waits here, for the transactions in these slots.
    Wait(usize, Vec<usize>),
    /// It is granted the lock it waits for here.
    Grant(usize),
    /// It ends (commits) if it waits nowhere; a new transaction takes its slot.
    End(usize),
}

/// One batch of one node.
#[derive(Clone, Debug)]
struct Batch {
    node: u32,
    /// Which of the node's undelivered victim messages it handles, in order sent.
    deliver: Vec<bool>,
    changes: Vec<Change>,
    crash: bool,
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        5 => (0..SLOTS, vec(0..SLOTS, 1..4)).prop_map(|(slot, on)| Change::Wait(slot, on)),
        2 => (0..SLOTS).prop_map(Change::Grant),
        1 => (0..SLOTS).prop_map(Change::End),
    ]
}

fn batch() -> impl Strategy<Value = Batch> {
    (
        0..NODES,
        vec(any::<bool>(), 0..4),
        vec(change(), 0..7),
        prop::bool::weighted(0.03),
    )
        .prop_map(|(node, deliver, changes, crash)| Batch {
            node,
            deliver,
            changes,
            crash,
        })
}

/// What a transaction waits for in truth.
#[derive(Clone, Debug)]
struct Waiting {
    node: u32,
    /// Which wait of the transaction this is: a new wait is on another key.
    episode: u64,
    blockers: BTreeSet<TxnId>,
}

/// The cluster as the test steps it, and the graph as the detector was told it.
struct Model {
    detector: Detector,
    slots: [TxnId; SLOTS],
    next_tid: u64,
    episodes: u64,
    /// The true waits.
    waiting: BTreeMap<TxnId, Waiting>,
    /// The reported graph, kept as the detector is specified to keep it: a report from a
    /// node replaces every wait last reported by that node.
    reported: BTreeMap<TxnId, Waiting>,
    /// Victims whose message their node has not handled, in order sent, with the wait
    /// they were chosen in.
    undelivered: Vec<(TxnId, Waiting)>,
}

impl Model {
    fn new() -> Model {
        Model {
            detector: Detector::new(NODES),
            slots: std::array::from_fn(|slot| TxnId(slot as u64 + 1)),
            next_tid: SLOTS as u64 + 1,
            episodes: 0,
            waiting: BTreeMap::new(),
            reported: BTreeMap::new(),
            undelivered: Vec::new(),
        }
    }

    /// `tid` is gone (aborted or committed): it waits for nothing and holds nothing.
    fn end(&mut self, tid: TxnId) {
        self.waiting.remove(&tid);
        for waiting in self.waiting.values_mut() {
            waiting.blockers.remove(&tid);
        }
        self.waiting
            .retain(|_, waiting| !waiting.blockers.is_empty());
        if let Some(slot) = self.slots.iter().position(|t| *t == tid) {
            self.slots[slot] = TxnId(self.next_tid);
            self.next_tid += 1;
        }
    }

    fn run(&mut self, batch: &Batch) -> Result<(), TestCaseError> {
        let node = batch.node;
        if batch.crash {
            self.crash(node);
        } else {
            self.deliver(node, &batch.deliver);
            for change in &batch.changes {
                self.change(node, change);
            }
        }
        self.report(node)
    }

    /// The node's transactions die with it, and so do the messages sent to it.
    fn crash(&mut self, node: u32) {
        let here: Vec<TxnId> = (self.waiting.iter())
            .filter(|(_, waiting)| waiting.node == node)
            .map(|(tid, _)| *tid)
            .collect();
        for tid in here {
            self.end(tid);
        }
        self.undelivered.retain(|(_, chosen)| chosen.node != node);
    }

    fn deliver(&mut self, node: u32, which: &[bool]) {
        let mine: Vec<TxnId> = (self.undelivered.iter())
            .filter(|(_, chosen)| chosen.node == node)
            .map(|(tid, _)| *tid)
            .collect();
        for (tid, deliver) in mine.into_iter().zip(which) {
            if !deliver {
                continue;
            }
            let sent = (self.undelivered.iter())
                .position(|(victim, chosen)| *victim == tid && chosen.node == node);
            if let Some(sent) = sent {
                self.undelivered.remove(sent);
            }
            let waits_here = self.waiting.get(&tid).is_some_and(|w| w.node == node);
            if waits_here {
                self.end(tid);
            }
        }
    }

    fn change(&mut self, node: u32, change: &Change) {
        match change {
            Change::Wait(slot, on) => {
                let tid = self.slots[*slot];
                let blockers: BTreeSet<TxnId> = (on.iter())
                    .map(|slot| self.slots[*slot])
                    .filter(|blocker| *blocker != tid)
                    .collect();
                if blockers.is_empty() {
                    return;
                }
                // The same wait with other blockers, or a new wait (granted elsewhere,
                // perhaps not yet reported there).
                let episode = match self.waiting.get(&tid) {
                    Some(waiting) if waiting.node == node => waiting.episode,
                    _ => {
                        self.episodes += 1;
                        self.episodes
                    }
                };
                let waiting = Waiting {
                    node,
                    episode,
                    blockers,
                };
                self.waiting.insert(tid, waiting);
            }
            Change::Grant(slot) => {
                let tid = self.slots[*slot];
                if self.waiting.get(&tid).is_some_and(|w| w.node == node) {
                    self.waiting.remove(&tid);
                }
            }
            Change::End(slot) => {
                let tid = self.slots[*slot];
                let victim = self.undelivered.iter().any(|(v, _)| *v == tid);
                if !self.waiting.contains_key(&tid) && !victim {
                    self.end(tid);
                }
            }
        }
    }

    /// The node reports its waits; the victims returned are checked and sent.
    fn report(&mut self, node: u32) -> Result<(), TestCaseError> {
        let waits: Vec<Wait> = (self.waiting.iter())
            .filter(|(_, waiting)| waiting.node == node)
            .map(|(tid, waiting)| Wait {
                tid: *tid,
                key: format!("k{}", waiting.episode),
                mode: LockMode::Exclusive,
                blockers: waiting.blockers.iter().copied().collect(),
                // Begin order as the ids' (any unique order serves the oracle).
                began: tid.0,
            })
            .collect();
        self.reported.retain(|_, reported| reported.node != node);
        for (tid, waiting) in &self.waiting {
            if waiting.node == node {
                self.reported.insert(*tid, waiting.clone());
            }
        }
        for victim in self.detector.update(node, &waits) {
            self.check_victim(&victim)?;
            let chosen = self.reported[&victim.tid].clone();
            self.undelivered.push((victim.tid, chosen));
        }
        let pending = self.counting();
        if let Some(cycle) = cycle_avoiding(&self.reported, &pending) {
            return Err(TestCaseError::fail(format!(
                "after node {node}'s report the cycle {cycle:?} has no victim; graph \
                 {:?}, victims not yet aborted {pending:?}",
                self.reported
            )));
        }
        Ok(())
    }

    /// The victims that count: undelivered, and shown in the wait they were chosen in.
    fn counting(&self) -> BTreeSet<TxnId> {
        let same = |tid: &TxnId, chosen: &Waiting| {
            let now = self.reported.get(tid);
            now.is_some_and(|now| now.node == chosen.node && now.episode == chosen.episode)
        };
        (self.undelivered.iter())
            .filter(|(tid, chosen)| same(tid, chosen))
            .map(|(tid, _)| *tid)
            .collect()
    }

    /// A victim lies on a cycle of the reported graph that no other victim breaks.
    fn check_victim(&self, victim: &Victim) -> Result<(), TestCaseError> {
        let cycle = &victim.cycle;
        prop_assert!(cycle.len() >= 3, "{victim:?}");
        prop_assert_eq!(cycle.first(), Some(&victim.tid), "{:?}", victim);
        prop_assert_eq!(cycle.last(), Some(&victim.tid), "{:?}", victim);
        for pair in cycle.windows(2) {
            let edge = self.reported.get(&pair[0]);
            let waits = edge.is_some_and(|edge| edge.blockers.contains(&pair[1]));
            prop_assert!(waits, "{victim:?}: {} waits not for {}", pair[0], pair[1]);
        }
        let at = self.reported.get(&victim.tid).map(|edge| edge.node);
        prop_assert_eq!(at, Some(victim.node), "{:?}", victim);
        for pending in &self.counting() {
            prop_assert!(
                !cycle.contains(pending),
                "{victim:?}: {pending} is already a victim on that cycle"
            );
        }
        Ok(())
    }
}

/// A cycle of `graph` through none of `broken`, found from scratch: peel off every
/// transaction that waits for no one left, until nothing changes; whoever is left waits
/// for someone left, so following waits from any of them must come round.
fn cycle_avoiding(
    graph: &BTreeMap<TxnId, Waiting>,
    broken: &BTreeSet<TxnId>,
) -> Option<Vec<TxnId>> {
    let mut left: BTreeSet<TxnId> = (graph.keys())
        .filter(|tid| !broken.contains(tid))
        .copied()
        .collect();
    loop {
        let stuck = |tid: &TxnId| graph[tid].blockers.iter().any(|b| left.contains(b));
        let next: BTreeSet<TxnId> = left.iter().filter(|tid| stuck(tid)).copied().collect();
        if next.len() == left.len() {
            break;
        }
        left = next;
    }
    let mut path = vec![*left.first()?];
    loop {
        let at = *path.last()?;
        let next = *graph[&at].blockers.iter().find(|b| left.contains(b))?;
        if let Some(start) = path.iter().position(|t| *t == next) {
            let mut cycle = path.split_off(start);
            cycle.push(next);
            return Some(cycle);
        }
        path.push(next);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn no_cycle_survives_a_report(batches in vec(batch(), 1..60)) {
        let mut model = Model::new();
        for batch in &batches {
            model.run(batch)?;
        }
    }
}

#[test]
fn the_oracle_finds_a_cycle_and_sees_it_broken() {
    let t = TxnId;
    let waits = |node, on: &[u64]| Waiting {
        node,
        episode: 0,
        blockers: on.iter().map(|b| t(*b)).collect(),
    };
    let graph: BTreeMap<TxnId, Waiting> = [
        (t(1), waits(0, &[2])),
        (t(2), waits(0, &[3, 5])),
        (t(3), waits(1, &[1])),
        (t(4), waits(1, &[2])),
    ]
    .into();
    let cycle = cycle_avoiding(&graph, &BTreeSet::new());
    assert_eq!(cycle, Some(vec![t(1), t(2), t(3), t(1)]));
    assert_eq!(cycle_avoiding(&graph, &BTreeSet::from([t(3)])), None);
}
