//! Episodes: short scripted stretches of a run, each the shape of one fault that outside
//! testing found and that a uniform mix of events would almost never produce. The
//! generator plays one at the start of some runs, and sometimes another in the middle
//! (where the run's other transactions and faults may get in its way, which is the
//! point: the same shape among other traffic). Each picks its keys, nodes and orders at
//! random; its transactions that are still open at its end join the run's open ones,
//! to be ended like any other.
//!
//! - **Two deadlocks closed by one wait** (issue 9, fault 1): a ring of 3 to 5
//!   transactions, each holding a key the one before it wants; the last request, for a
//!   key two ring members share, closes the ring and a shorter cycle through one of them
//!   at once. Often the one begun last (the victim of the long cycle) is off the short
//!   cycle, so a detector that reports one cycle per search leaves a deadlock behind.
//! - **A snapshot across a checkpoint restart** (fault 2): a read-only snapshot begins;
//!   then one transaction deletes a key on one node and appends to a key on another; that
//!   node checkpoints, crashes and restarts (the key sometimes written again); then the
//!   snapshot reads both keys.
//! - **A voter restarts between two votes** (fault 3): T1 reads a key on node A and
//!   writes one on node B; the PREPARE to B is held back, A votes (READ-ONLY, or YES if
//!   T1 also wrote there), crashes and restarts; T2 writes the key T1 read and commits; a
//!   snapshot reads both keys before the PREPARE goes out.
//! - **A reader after a coordinator crash** (fault 4): a coordinator dies at a commit
//!   point with a participant in doubt; that participant crashes, a read-only snapshot
//!   begins while it is down, and reads its key once it has restarted.

use super::generate::{Gen, Open};
use super::scenario::{Call, Event};
use kv2pc::types::owner_of;
use kv2pc::{CommitMode, CrashPoint, NodeId};
use std::collections::BTreeSet;

/// The kinds of episode, one of which is chosen uniformly.
const KINDS: usize = 4;

impl Gen {
    /// Plays a randomly chosen episode, if the cluster and keys allow its shape.
    pub(super) fn episode(&mut self) {
        match self.erng.below(KINDS) {
            0 => self.crossing_deadlocks(),
            1 => self.snapshot_across_checkpoint(),
            2 => self.vote_across_restart(),
            _ => self.reader_after_coordinator_crash(),
        }
    }

    /// Begins a transaction now; returns its number.
    fn begin_now(&mut self, coordinator: NodeId, snapshot: bool) -> usize {
        let txn = self.begun;
        self.begun += 1;
        self.push(Event::Begin {
            txn,
            coordinator,
            snapshot,
        });
        txn
    }

    fn call(&mut self, txn: usize, call: Call) {
        self.push(Event::Call { txn, call });
    }

    /// Leaves `txn` open, with `calls` still to make, for the run to end.
    fn keep_open(&mut self, txn: usize, coordinator: NodeId, calls: Vec<Call>, keys: &[&String]) {
        let participants = if keys.is_empty() {
            BTreeSet::new()
        } else {
            (keys.iter()).map(|k| owner_of(k, self.nodes)).collect()
        };
        self.open.push(Open {
            txn,
            coordinator,
            calls: calls.into(),
            participants,
        });
    }

    fn episode_node(&mut self) -> NodeId {
        self.erng.below(self.nodes as usize) as NodeId
    }

    /// The keys in a random order.
    fn shuffled_keys(&mut self) -> Vec<String> {
        let mut keys = self.keys.clone();
        for i in (1..keys.len()).rev() {
            keys.swap(i, self.erng.below(i + 1));
        }
        keys
    }

    /// A key on `node`, if it has one.
    fn key_on(&mut self, node: NodeId) -> Option<String> {
        let on: Vec<String> = (self.keys.iter())
            .filter(|k| owner_of(k, self.nodes) == node)
            .cloned()
            .collect();
        (!on.is_empty()).then(|| self.erng.pick(&on).clone())
    }

    /// Distinct random nodes, `count` of them.
    fn distinct_nodes(&mut self, count: usize) -> Vec<NodeId> {
        let mut nodes: Vec<NodeId> = (0..self.nodes).collect();
        for i in (1..nodes.len()).rev() {
            nodes.swap(i, self.erng.below(i + 1));
        }
        nodes.truncate(count);
        nodes
    }

    /// Ring members `t0..tn`: `t0` waits (last) on key `s` for `t1` and `tj`, which read
    /// it; each other `ti` waits on key `q[i]` for `t(i+1)`, which holds it for update.
    fn crossing_deadlocks(&mut self) {
        let keys = self.shuffled_keys();
        if keys.len() < 3 {
            return;
        }
        let n = (3 + self.erng.below(3)).min(keys.len());
        // Often: one coordinator, t1 begun first and some ti between t1 and tj last, so
        // that the long cycle's victim is off the short one and the search meets t1
        // first (ids of one coordinator follow the begin order).
        let forced = n >= 4 && self.erng.chance(70);
        let j = if forced {
            3 + self.erng.below(n - 3)
        } else {
            2 + self.erng.below(n - 2)
        };
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            order.swap(i, self.erng.below(i + 1));
        }
        let shared_coordinator = self.episode_node();
        if forced {
            let last = 2 + self.erng.below(j - 2);
            order.retain(|t| *t != 1 && *t != last);
            order.insert(0, 1);
            order.push(last);
        }
        let mut txns = vec![0; n];
        let mut coordinators = vec![0; n];
        for t in order {
            let coordinator = if forced {
                shared_coordinator
            } else {
                self.episode_node()
            };
            coordinators[t] = coordinator;
            txns[t] = self.begin_now(coordinator, false);
        }
        let s = keys[0].clone();
        let q = |i: usize| keys[i].clone();
        // Hold: t1 then tj read s; t(i+1) holds q[i] for update.
        self.call(txns[1], Call::Read(s.clone()));
        self.call(txns[j], Call::Read(s.clone()));
        let mut holds: Vec<usize> = (1..n).collect();
        for i in (1..holds.len()).rev() {
            holds.swap(i, self.erng.below(i + 1));
        }
        for &i in &holds {
            self.call(txns[(i + 1) % n], Call::ReadForUpdate(q(i)));
        }
        // Wait: each ti (in some order) for q[i], then t0 for s, closing both cycles.
        for &i in &holds {
            let call = if self.erng.chance(50) {
                Call::Read(q(i))
            } else {
                Call::ReadForUpdate(q(i))
            };
            self.call(txns[i], call);
        }
        self.call(txns[0], Call::ReadForUpdate(s.clone()));
        for t in 0..n {
            let wanted = if t == 0 { s.clone() } else { q(t) };
            let held = if t == 0 {
                q(n - 1)
            } else if t == 1 {
                s.clone()
            } else {
                q(t - 1)
            };
            let mut calls = vec![Call::Append(wanted.clone())];
            if t != 1 && self.erng.chance(50) {
                calls.push(Call::Append(held.clone()));
            }
            let mut touched = vec![&wanted, &held];
            if t == j {
                touched.push(&s);
            }
            self.keep_open(txns[t], coordinators[t], calls, &touched);
        }
    }

    /// A snapshot that reads `k` (deleted and checkpointed meanwhile, on a node that then
    /// restarts) and `y` (written by the deleter, on another node).
    fn snapshot_across_checkpoint(&mut self) {
        let keys = self.shuffled_keys();
        let Some(k) = keys.iter().find(|k| !self.deleted.contains(*k)).cloned() else {
            return;
        };
        let node = owner_of(&k, self.nodes);
        let Some(y) = (keys.iter())
            .find(|y| owner_of(y, self.nodes) != node)
            .cloned()
        else {
            return;
        };
        let coordinator = self.episode_node();
        let snapshot = self.begin_now(coordinator, true);
        for key in [&k, &y] {
            if self.erng.chance(50) {
                self.call(snapshot, Call::Read(key.clone()));
            }
        }
        let at = self.episode_node();
        let deleter = self.begin_now(at, false);
        self.deleted.insert(k.clone());
        let delete_first = self.erng.chance(50);
        if delete_first {
            self.call(deleter, Call::Delete(k.clone()));
        }
        self.call(deleter, Call::Read(y.clone()));
        self.call(deleter, Call::Append(y.clone()));
        if !delete_first {
            self.call(deleter, Call::Delete(k.clone()));
        }
        self.push(Event::Commit { txn: deleter });
        // Written again: before the checkpoint, or after the restart.
        let rewrite = self.erng.below(3);
        if rewrite == 0 {
            self.rewrite(&k);
        }
        self.push(Event::Checkpoint { node });
        self.push(Event::Crash { node });
        self.push(Event::Restart { node });
        if rewrite == 1 {
            self.rewrite(&k);
        }
        let (first, second) = if self.erng.chance(50) {
            (&k, &y)
        } else {
            (&y, &k)
        };
        self.call(snapshot, Call::Read(first.clone()));
        self.call(snapshot, Call::Read(second.clone()));
        self.keep_open(snapshot, coordinator, Vec::new(), &[]);
    }

    /// A transaction that reads `key` and appends to it, committed at once.
    fn rewrite(&mut self, key: &str) {
        let at = self.episode_node();
        let txn = self.begin_now(at, false);
        self.call(txn, Call::Read(key.to_string()));
        self.call(txn, Call::Append(key.to_string()));
        self.push(Event::Commit { txn });
    }

    /// T1 reads `r` on A (and may write `w` there) and writes `v` on B; B's PREPARE waits
    /// while A votes, crashes and restarts, T2 writes `r`, and a snapshot reads `r`, `v`.
    fn vote_across_restart(&mut self) {
        if self.nodes < 3 {
            return;
        }
        let nodes = self.distinct_nodes(3);
        let (coordinator, a, b) = (nodes[0], nodes[1], nodes[2]);
        let (Some(r), Some(v)) = (self.key_on(a), self.key_on(b)) else {
            return;
        };
        let t1 = self.begin_now(coordinator, false);
        self.call(t1, Call::Read(r.clone()));
        if self.erng.chance(30)
            && let Some(w) = self.key_on(a)
            && w != r
        {
            self.call(t1, Call::Read(w.clone()));
            self.call(t1, Call::Append(w));
        }
        self.call(t1, Call::Read(v.clone()));
        self.call(t1, Call::Append(v.clone()));
        self.push(Event::Hold {
            from: coordinator,
            to: b,
            label: "PREPARE",
        });
        self.push(Event::Commit { txn: t1 });
        self.push(Event::Crash { node: a });
        self.push(Event::Restart { node: a });
        let at = self.episode_node();
        let t2 = self.begin_now(at, false);
        self.call(t2, Call::Read(r.clone()));
        self.call(t2, Call::Append(r.clone()));
        self.push(Event::Commit { txn: t2 });
        let at = self.episode_node();
        let snapshot = self.begin_now(at, true);
        self.call(snapshot, Call::Read(r));
        self.call(snapshot, Call::Read(v));
        self.push(Event::Release {
            from: coordinator,
            to: b,
        });
        self.keep_open(snapshot, at, Vec::new(), &[]);
    }

    /// T writes on its coordinator's node and on P; the coordinator dies at a commit
    /// point, P crashes, a snapshot begins, P restarts, and the snapshot reads P's key.
    fn reader_after_coordinator_crash(&mut self) {
        let nodes = self.distinct_nodes(2);
        let (coordinator, p) = (nodes[0], nodes[1]);
        let (Some(a), Some(x)) = (self.key_on(coordinator), self.key_on(p)) else {
            return;
        };
        let t = self.begin_now(coordinator, false);
        let (first, second) = if self.erng.chance(50) {
            (&a, &x)
        } else {
            (&x, &a)
        };
        for key in [first, second] {
            self.call(t, Call::Read(key.clone()));
            self.call(t, Call::Append(key.clone()));
        }
        // In parallel mode also where the commit is staged and undecided: the snapshot
        // must not read below a transaction its restarted coordinator is resolving.
        let last = match self.commit {
            CommitMode::Classic => CrashPoint::Decision,
            CommitMode::Parallel => CrashPoint::Staged,
        };
        let point = *self
            .erng
            .pick(&[CrashPoint::Decision, last, CrashPoint::Broadcast]);
        self.push(Event::Arm {
            node: coordinator,
            point,
        });
        self.push(Event::Commit { txn: t });
        self.push(Event::Crash { node: p });
        let at = self.episode_node();
        let snapshot = self.begin_now(at, true);
        self.push(Event::Restart { node: p });
        self.call(snapshot, Call::Read(x));
        if self.erng.chance(50) {
            self.call(snapshot, Call::Read(a));
        }
        let back = 2 + self.erng.below(6);
        self.later(back, Event::Restart { node: coordinator });
        self.keep_open(snapshot, at, Vec::new(), &[]);
    }
}
