//! Deadlock detection as a part every node plays, fed by messages.
//!
//! Every node keeps a wait-for graph in a [`Detector`] of its own: its own lock waits,
//! and the waits other nodes report to it (`Message::WaitReport`, each report replacing
//! the last). When an update closes a cycle, the node sends `DeadlockVictim` to the node
//! where the victim waits, which aborts it if it still waits there (see `deadlock` for
//! how the victim is chosen and why every cycle gets one). The victim depends only on
//! the cycle (the transaction on it that began last), so the nodes that see one cycle
//! choose one victim: its node aborts it on the first message and finds nothing to
//! abort in the others. The trace shows the deadlock once, where the victim is aborted.
//!
//! # Who is told
//!
//! A cycle's waits lie on nodes that all have waits, so it is enough that every node
//! with waits knows the waits of every other node with waits: then each node of the
//! cycle sees all of it. So a node reports:
//! - to **every** node when its waits start or stop (empty to some, or back): that is
//!   how the others learn who waits;
//! - to the nodes that have waits (their last report to it was not empty) when its
//!   waits change otherwise;
//! - its whole current waits to a node that has just started waiting, since that node
//!   was not told the changes before.
//!
//! A hot key whose queue lives on one node thus costs no message at all, however often
//! its queue changes; two nodes that both wait exchange every change.
//!
//! # Why no node is special
//!
//! An earlier version had one node play the detector (the lowest one up) and the others
//! follow it through failovers. The simulator found it wrong: after a failover two nodes
//! each acted as the detector, each on part of the reports, and a deadlock across them
//! was never broken (seed 1040 of `tests/sim.rs`). Here there is no election to get
//! wrong: a deadlock is found as long as one of its nodes is up. Links are FIFO and a
//! report to a down node is simply lost: when that node restarts (`Restarted`), every
//! node forgets the waits it reported before (they died with its transactions) and
//! takes it for a node without waits until it reports again. Every node also repeats
//! its report to the waiting nodes at each tick while it has waits: a graph that missed
//! a report for a reason not foreseen here is repaired within a tick.
//!
//! # Limits
//!
//! - The cost: while several nodes wait, each change of a node's waits is a message to
//!   each of them, and each of them searches its graph (n searches where one detector
//!   did one). A report with no cycle costs a search of the waits reachable from what
//!   changed (see `deadlock`), which stays small under ordinary contention.
//! - Two nodes whose graphs differ for a moment (a report on its way) may find different
//!   cycles through the same waits and choose different victims: a spurious abort, never
//!   a missed deadlock. So may a report that is stale by the time it closes a cycle.
//! - A crashed node's last waits stay in the graphs until it restarts; a cycle through
//!   them gets a victim whose message is lost with the node (its transactions died with
//!   it anyway).

use super::Node;
use crate::deadlock::{Detector, Victim};
use crate::lock::Wait;
use crate::message::{Effect, Message};
use crate::types::NodeId;
use std::collections::BTreeSet;

/// A node's part in deadlock detection.
#[derive(Clone, Debug)]
pub(super) struct DetectRole {
    /// The cluster's wait-for graph as this node has been told it.
    graph: Detector,
    /// The waits last reported.
    reported: Vec<Wait>,
    /// The other nodes whose last report had waits.
    waiting: BTreeSet<NodeId>,
    /// Whether to report at the end of the batch even if the waits did not change.
    again: bool,
    /// Batches ended without looking at the waits, while they are many (see
    /// [`LONG_WAITS`]).
    skipped: u32,
}

/// Past this many waits, a node on the real clock looks at its waits only every
/// [`SKIP`]th batch and at every tick (20 ms): recomputing, comparing and searching a
/// long queue's waits at every batch cost a hot key with 256 waiters half its
/// throughput (`hot-key` at 256 clients: about 3,600 against 6,500 commits/s), while a
/// deadlock found a few batches or one tick later costs nothing but that delay. On the
/// manual clock (scripts, transcripts, the simulator) every batch looks, since no tick
/// comes unless someone types one.
const LONG_WAITS: usize = 64;

/// See [`LONG_WAITS`].
const SKIP: u32 = 16;

impl DetectRole {
    /// A node's part at start: an empty graph, nothing reported.
    pub(super) fn new(nodes: u32) -> DetectRole {
        DetectRole {
            graph: Detector::new(nodes),
            reported: Vec::new(),
            waiting: BTreeSet::new(),
            again: false,
            skipped: 0,
        }
    }
}

impl Node {
    /// The end of a batch of inputs: reports this node's waits to every node if they
    /// changed (none if `detect` is off: the `deadlock` setting). The runtime calls it
    /// once per batch, the simulator after every input. With `defer_long`, a node with
    /// many waits looks at them only every few batches and at every tick (see
    /// [`LONG_WAITS`]); only a caller that ticks on its own (the real clock) may ask it.
    pub fn end_batch(&mut self, detect: bool, defer_long: bool, out: &mut Vec<Effect>) {
        let role = &mut self.detect;
        let waiters = self.participant.locks().has_waiters();
        if !role.again && role.reported.is_empty() && !waiters {
            return;
        }
        let long = waiters && role.reported.len() > LONG_WAITS;
        if defer_long && !role.again && long && role.skipped < SKIP {
            role.skipped += 1;
            return;
        }
        role.skipped = 0;
        let waits = if detect {
            self.participant.waits()
        } else {
            Vec::new()
        };
        let role = &mut self.detect;
        if !role.again && waits == role.reported {
            return;
        }
        role.again = false;
        let starts_or_stops = waits.is_empty() != role.reported.is_empty();
        let id = self.id;
        let to: Vec<NodeId> = if starts_or_stops {
            (0..self.nodes).filter(|n| *n != id).collect()
        } else {
            role.waiting.iter().copied().collect()
        };
        report(&to, &waits, out);
        if waits.is_empty() {
            // No waits here: no cycle runs through this node, and the others' waits
            // it holds would go stale (they report changes only to waiting nodes).
            for n in 0..self.nodes {
                role.graph.update(n, &[]);
            }
        } else {
            send_victims(role.graph.update(self.id, &waits), out);
        }
        role.reported = waits;
    }

    /// Whether this node has no waits reported.
    pub(super) fn detect_reported_nothing(&self) -> bool {
        self.detect.reported.is_empty()
    }

    /// Asks for this node's waits to be reported again at the end of the batch (a
    /// setting changed, or a tick: see the module doc).
    pub fn report_waits_again(&mut self) {
        self.detect.again = true;
    }

    /// Another node reported its waits. One that has just started waiting is told this
    /// node's waits, if any: it was not told their changes before.
    pub(super) fn waits_reported(&mut self, from: NodeId, waits: &[Wait], out: &mut Vec<Effect>) {
        let role = &mut self.detect;
        let started = if waits.is_empty() {
            role.waiting.remove(&from);
            false
        } else {
            role.waiting.insert(from)
        };
        if role.reported.is_empty() {
            // Kept out of the graph: see `end_batch`. Every waiting node answers this
            // node's first report of waits with its current ones.
            return;
        }
        if started {
            report(&[from], &role.reported, out);
        }
        send_victims(role.graph.update(from, waits), out);
    }

    /// `from` restarted: its old waits are gone, and it is a node without waits until
    /// it reports some (and is then told this node's).
    pub(super) fn detector_peer_restarted(&mut self, from: NodeId, out: &mut Vec<Effect>) {
        self.detect.waiting.remove(&from);
        send_victims(self.detect.graph.update(from, &[]), out);
    }
}

/// Sends `waits` to each of `to`.
fn report(to: &[NodeId], waits: &[Wait], out: &mut Vec<Effect>) {
    for to in to {
        let message = Message::WaitReport {
            waits: waits.to_vec(),
        };
        out.push(Effect::Send { to: *to, message });
    }
}

/// Tells each victim's node to abort it.
fn send_victims(victims: Vec<Victim>, out: &mut Vec<Effect>) {
    for victim in victims {
        let message = Message::DeadlockVictim {
            tid: victim.tid,
            cycle: victim.cycle,
        };
        out.push(Effect::Send {
            to: victim.node,
            message,
        });
    }
}
