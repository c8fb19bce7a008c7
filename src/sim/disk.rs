//! The simulated cluster's disks: one real [`Wal`] per node, in a temporary directory.
//!
//! For now a node's log is today's write-ahead log on a real file system (in memory,
//! under `/dev/shm`, where there is one, so an fsync costs nothing). What a process
//! death does to it is what the threaded runtime does: [`Wal::simulate_crash`] puts the
//! bytes past the last fsync back as they were, so the next [`Wal::open`] recovers
//! exactly what was fsynced.
//!
//! This is the one place the simulator names files. When the WAL's storage seam lands,
//! [`Disk`] holds a simulated disk instead of a directory, [`Disk::open`] opens a log on
//! it, and a power loss (only what was fsynced survives, plus any subset of the sectors
//! in flight) becomes a third way for a node to die beside [`Disk::crash`].

use crate::error::{Error, Result};
use crate::types::NodeId;
use crate::wal::{Recovery, Wal};
use std::path::PathBuf;
use tempfile::TempDir;

/// Where every simulated node keeps its log; removed when dropped.
#[derive(Debug)]
pub struct Disk {
    root: TempDir,
}

impl Disk {
    /// A fresh, empty disk for a whole cluster.
    pub fn temporary() -> Result<Disk> {
        let memory = std::path::Path::new("/dev/shm");
        let root = if memory.is_dir() {
            tempfile::Builder::new()
                .prefix("kv2pc-sim")
                .tempdir_in(memory)
        } else {
            tempfile::Builder::new().prefix("kv2pc-sim").tempdir()
        };
        let root = root.map_err(|error| Error::io("creating the simulator's directory", error))?;
        Ok(Disk { root })
    }

    fn node_dir(&self, node: NodeId) -> PathBuf {
        self.root.path().join(format!("node{node}"))
    }

    /// Opens `node`'s log and recovers what it holds, as a node starting does.
    pub fn open(&self, node: NodeId) -> Result<(Wal, Recovery)> {
        Wal::open(&self.node_dir(node))
    }

    /// The process of the node that holds `wal` dies: what was not fsynced is lost.
    pub fn crash(&self, wal: Wal) -> Result<()> {
        wal.simulate_crash()
    }
}
