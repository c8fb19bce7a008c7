//! What the node threads and clients of one cluster still share besides the network:
//! a [`Context`].
//!
//! The network ([`Net`]: inboxes, work tokens, held links, the load figure, the tracer)
//! is the one thing nodes are meant to share. The rest of this is shared for now and
//! is meant to go, each piece becoming messages between nodes (issue 10, item 1):
//! - `clock`: one manual or real clock for the whole cluster (each node will keep its
//!   own hybrid logical clock, advanced by what messages carry);
//! - `ts`: the cluster's prepare and commit timestamp counter, advanced by every node;
//! - the prepare floors behind [`Context::safe_ts`], which every node publishes and
//!   every client reads;
//! - `detector`: the deadlock detector, a shared object the node threads call (it
//!   will become a role one node plays, fed wait-for edges by messages);
//! - `settings`, which the shell changes and nodes read on their next input, and the
//!   failures each node stopped on, which `STATUS` reports (both cluster-level
//!   configuration and observation, not protocol state).

use crate::clock::{Clock, Timestamps};
use crate::config::Settings;
use crate::crash::CrashPoint;
use crate::deadlock::Detector;
use crate::net::Net;
use crate::types::{NodeId, Timestamp};
use parking_lot::RwLock;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// What the node threads and clients of one cluster share. See the module doc.
pub struct Context {
    /// The network between the nodes.
    pub net: Net,
    /// The number of nodes.
    pub nodes: u32,
    /// The data directory.
    pub dir: PathBuf,
    /// The cluster's clock.
    pub clock: Clock,
    /// Settings the nodes read.
    pub settings: RwLock<Settings>,
    /// The deadlock detector.
    pub detector: Detector,
    /// The cluster's prepare and commit timestamps.
    pub ts: Arc<Timestamps>,
    /// Per node, the lowest prepare timestamp of its undecided transactions (`u64::MAX`
    /// if none), kept while the node is down: snapshots at or below every node's floor
    /// never wait. The runtime's `floor` module says when a node publishes it.
    prepare_floors: Vec<AtomicU64>,
    /// Where the whole process aborts (`KV2PC_FAILPOINT`), if anywhere.
    pub failpoint: Option<(NodeId, CrashPoint)>,
    /// Per node, why it stopped on an error, until it restarts.
    failures: parking_lot::Mutex<Vec<Option<String>>>,
}

impl Context {
    /// The context of a cluster of `nodes` nodes, all down.
    pub fn new(nodes: u32, dir: PathBuf, clock: Clock, settings: Settings) -> Context {
        Context {
            net: Net::new(nodes),
            nodes,
            dir,
            clock,
            settings: RwLock::new(settings),
            detector: Detector::new(nodes),
            ts: Arc::new(Timestamps::default()),
            prepare_floors: (0..nodes).map(|_| AtomicU64::new(u64::MAX)).collect(),
            failpoint: None,
            failures: parking_lot::Mutex::new(vec![None; nodes as usize]),
        }
    }

    /// Publishes `node`'s lowest undecided prepare timestamp (`None`: it has none).
    pub fn publish_prepare_floor(&self, node: NodeId, floor: Option<Timestamp>) {
        if let Some(slot) = self.prepare_floors.get(node as usize) {
            slot.store(floor.unwrap_or(u64::MAX), Ordering::SeqCst);
        }
    }

    /// A snapshot timestamp that no undecided transaction can make a reader wait for:
    /// the newest timestamp, or just at the lowest prepare timestamp anywhere, down nodes
    /// included. The counter is read first: a commit timestamp at or below it was chosen
    /// after every vote of its transaction left, so after each participant published a
    /// floor at or below its prepare timestamp, which the loads after see.
    pub fn safe_ts(&self) -> Timestamp {
        let newest = self.ts.current();
        let floor = (self.prepare_floors.iter())
            .map(|f| f.load(Ordering::SeqCst))
            .min();
        newest.min(floor.unwrap_or(u64::MAX))
    }

    /// Records why `node` stopped (`None` clears it, at restart).
    pub fn set_failure(&self, node: NodeId, failure: Option<String>) {
        if let Some(slot) = self.failures.lock().get_mut(node as usize) {
            *slot = failure;
        }
    }

    /// Why `node` stopped on an error, if it did.
    pub fn failure(&self, node: NodeId) -> Option<String> {
        self.failures.lock().get(node as usize).cloned().flatten()
    }
}
