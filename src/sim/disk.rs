//! The simulated cluster's disks: one [`SimDisk`] per node, in memory.
//!
//! A node's log is the real write-ahead log ([`Wal::open_on`]) on a simulated disk of
//! its own, so a node can die in three ways, each a step:
//! - [`Disk::crash`], the node's process dies as the threaded runtime's nodes do: the
//!   log is cut to what was fsynced (`Wal::simulate_crash`);
//! - [`Disk::process_death`], the process dies but the operating system lives: what was
//!   written survives, fsynced or not (the page cache keeps it);
//! - [`Disk::power_loss`], the machine loses power: only what was fsynced survives (file
//!   data by a file fsync, creations and renames by a directory fsync), plus any subset
//!   of the sectors written since, chosen by the seed (`disk::SimDisk`).
//!
//! Every way leaves a log that must open: a node that cannot recover is a failure of
//! the code under test, reported as an error of the step.

use crate::disk::SimDisk;
use crate::error::Result;
use crate::types::NodeId;
use crate::wal::{Recovery, Wal};
use std::path::PathBuf;
use std::sync::Arc;

/// Every simulated node's disk.
#[derive(Debug)]
pub struct Disk {
    disks: Vec<Arc<SimDisk>>,
}

impl Disk {
    /// Fresh, empty disks for a cluster of `nodes`.
    pub fn new(nodes: u32) -> Disk {
        Disk {
            disks: (0..nodes).map(|_| Arc::new(SimDisk::new())).collect(),
        }
    }

    fn node_dir(node: NodeId) -> PathBuf {
        PathBuf::from(format!("/sim/node{node}"))
    }

    fn disk(&self, node: NodeId) -> Arc<SimDisk> {
        self.disks[node as usize % self.disks.len()].clone()
    }

    /// A copy of every disk, sharing nothing with these (see `Sim::fork`).
    pub fn duplicate(&self) -> Disk {
        Disk {
            disks: (self.disks.iter())
                .map(|disk| Arc::new(disk.duplicate()))
                .collect(),
        }
    }

    /// `wal`, `node`'s open log on one of these disks, opened again on this copy.
    pub fn duplicate_wal(&self, node: NodeId, wal: &Wal) -> Result<Wal> {
        wal.duplicate_on(self.disk(node))
    }

    /// Opens `node`'s log and recovers what it holds, as a node starting does.
    pub fn open(&self, node: NodeId) -> Result<(Wal, Recovery)> {
        Wal::open_on(self.disk(node), &Self::node_dir(node))
    }

    /// The records of `node`'s log as its disk holds them now (written, fsynced or
    /// not), with nothing changed: what an invariant check reads.
    pub fn records(&self, node: NodeId) -> Result<Vec<crate::wal::Record>> {
        let records = Wal::read_records_on(self.disk(node), &Self::node_dir(node))?;
        Ok(records.into_iter().map(|(_, _, record)| record).collect())
    }

    /// The node's process dies, as the runtime's do: what was not fsynced is lost.
    pub fn crash(&self, node: NodeId, wal: Wal) -> Result<()> {
        wal.simulate_crash()?;
        self.disk(node).crash();
        Ok(())
    }

    /// The node's process dies and the page cache keeps what it wrote.
    pub fn process_death(&self, node: NodeId, wal: Wal) {
        drop(wal);
        self.disk(node).crash();
    }

    /// The node's machine loses power: what was not fsynced may be lost, sector by
    /// sector, as `seed` chooses.
    pub fn power_loss(&self, node: NodeId, wal: Wal, seed: u64) {
        drop(wal);
        self.disk(node).power_loss(seed);
    }
}
