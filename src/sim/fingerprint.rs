//! A fingerprint of the whole simulated cluster, for an explorer that visits equal
//! states once (`crate::explore`).
//!
//! Two simulations with equal fingerprints behave the same under every later sequence
//! of steps (barring a 64-bit hash collision): the fingerprint covers everything a step
//! reads. That is each node's state machines (through their `Debug` form, which prints
//! every field of ordered collections, so it is a faithful, deterministic rendering),
//! what each node holds back and owes, each log's records on its disk (with how far
//! it is fsynced), the network's queues, the clients' state and the clock. It leaves out what
//! only describes the past: the trace and the step counter.
//!
//! # Limits
//!
//! Equal states reached by different histories are merged, so ids and timestamps that
//! differ only by the order in which they were handed out keep two states apart; the
//! explorer then visits both, which costs time, not soundness. A power loss chooses
//! among the sector versions written since the last fsync, which records do not show,
//! and the step counter seeds it; a checkpoint's file is not hashed either: explorers
//! must not take `Step::PowerLoss` or `Step::Checkpoint`.

use super::Sim;
use std::fmt::{self, Write};
use std::hash::{DefaultHasher, Hash, Hasher};

impl Sim {
    /// The fingerprint of everything that decides what later steps do.
    pub fn fingerprint(&self) -> u64 {
        let mut hasher = DefaultHasher::new();
        self.now.hash(&mut hasher);
        (self.shared.clock, self.shared.begun).hash(&mut hasher);
        for node in &self.nodes {
            node.fingerprint(&mut hasher);
            // The log's records as the disk holds them: with the node's appended and
            // fsynced positions (hashed above for a node that is up; a node that is down
            // holds only what was fsynced), they decide what every later crash and
            // restart finds. A log that cannot be read hashes as empty; the next step
            // that opens it reports the failure.
            debug(&mut hasher, &self.disk.records(node.id).unwrap_or_default());
        }
        debug(&mut hasher, &self.net);
        debug(&mut hasher, &self.held);
        debug(&mut hasher, &self.clients);
        (&self.tickets, self.next_ticket).hash(&mut hasher);
        hasher.finish()
    }
}

/// Feeds `value`'s `Debug` form to `hasher` without building the string.
pub(super) fn debug(hasher: &mut impl Hasher, value: &impl fmt::Debug) {
    struct Feed<'a, H>(&'a mut H);
    impl<H: Hasher> Write for Feed<'_, H> {
        fn write_str(&mut self, text: &str) -> fmt::Result {
            self.0.write(text.as_bytes());
            Ok(())
        }
    }
    let _ = write!(Feed(hasher), "{value:?}");
}

impl Sim {
    /// The records of `node`'s log as its disk holds them now (fsynced or not; after a
    /// crash, only what survived it).
    pub fn log_records(
        &self,
        node: crate::types::NodeId,
    ) -> crate::error::Result<Vec<crate::wal::Record>> {
        self.disk.records(node)
    }
}

impl Sim {
    /// A copy of the whole simulation, sharing nothing with it: its disks copied, each
    /// node's log opened again on the copy, everything else cloned but the trace. An explorer forks a
    /// state to try each of its moves instead of replaying the moves that led to it.
    pub fn fork(&self) -> crate::error::Result<Sim> {
        let disk = self.disk.duplicate();
        let nodes = (self.nodes.iter())
            .map(|node| node.fork(&disk))
            .collect::<crate::error::Result<Vec<_>>>()?;
        Ok(Sim {
            config: self.config.clone(),
            now: self.now,
            shared: self.shared,
            disk,
            nodes,
            net: self.net.clone(),
            held: self.held.clone(),
            clients: self.clients.clone(),
            tickets: self.tickets.clone(),
            next_ticket: self.next_ticket,
            steps: self.steps,
            // The copy's trace starts empty: a fork is for trying moves, and a run to
            // show is replayed from the start.
            trace: Vec::new(),
        })
    }
}
