//! What the node threads and clients of one cluster still share besides the network:
//! a [`Context`].
//!
//! The network ([`Net`]: inboxes, work tokens, held links, the load figure, the tracer)
//! is the one thing nodes are meant to share. Timestamps, prepare floors and lock waits
//! travel in its messages (`clock::Lamport`, `node::floors`, `node::detect`). What else
//! is here is the cluster's configuration and observation, not protocol state:
//! - `clock`: the one manual or real clock that timeouts are measured on (the problem
//!   statement assumes synchronized clocks; a process cluster gives each node its own);
//! - `settings`, which the shell changes and nodes read on their next input, and the
//!   failures each node stopped on, which `STATUS` reports.

use crate::clock::Clock;
use crate::config::Settings;
use crate::crash::CrashPoint;
use crate::net::Net;
use crate::types::NodeId;
use parking_lot::RwLock;
use std::path::PathBuf;

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
            failpoint: None,
            failures: parking_lot::Mutex::new(vec![None; nodes as usize]),
        }
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
