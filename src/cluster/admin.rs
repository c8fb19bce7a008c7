//! What a shell asks of a node process besides transactions: what `STATUS`, `SHOW LOG`,
//! `SHOW LOCKS`, `CHECKPOINT`, `CRASH ... AT`, `RESOLVE`, `SET` and the trace need, and
//! what settling across processes asks (see `cluster::remote`).
//!
//! Each is the wire form of one of the embedded cluster's control requests
//! (`net::Control`), whose in-process answer channels cannot cross a socket: the
//! client sends an [`Admin`] with a number, and the node answers with an
//! [`AdminReply`] with the same number. The wire carries them as bytes it does not
//! read (`wire::Frame::Admin`), encoded here, so that the wire, below the cluster,
//! names none of the cluster's types.

use super::{CheckpointInfo, LogEntry, RecoveryReport};
use crate::config::Settings;
use crate::crash::CrashPoint;
use crate::lock::KeyLocks;
use crate::net::NodeStatus;
use crate::types::{Timestamp, TxnId};
use serde::{Deserialize, Serialize};

/// A request to a node process from a shell, outside the protocol.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Admin {
    /// The node's status.
    Status,
    /// Its lock table.
    Locks,
    /// Its committed data, sorted by key.
    Data,
    /// Its log as `SHOW LOG` shows it: the records, how many at the end are not yet
    /// durable, and what the latest checkpoint carries.
    Log,
    /// Write a checkpoint now.
    Checkpoint,
    /// Die the next time the protocol reaches this point (the process dies with it).
    Arm(CrashPoint),
    /// Die now: the process kills itself with SIGKILL, as `kill -9` would.
    Crash,
    /// Settle an in-doubt transaction by hand: commit if true, else abort.
    Resolve(TxnId, bool),
    /// Run with these settings from now on.
    Settings(Settings),
    /// Whether the node has nothing in flight: no work of its own, nothing queued to
    /// send. What settling across processes asks every node.
    Quiet,
    /// Send (or stop sending) the node's trace events on this connection.
    Trace(bool),
    /// What recovery found when this process started, and the node's clock now.
    Hello,
}

/// A node process's answer to an [`Admin`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum AdminReply {
    /// Done, with nothing to report.
    Done,
    /// It could not: why, in words for the user.
    Failed(String),
    /// The node's status.
    Status(NodeStatus),
    /// Its lock table.
    Locks(Vec<KeyLocks>),
    /// Its committed data.
    Data(Vec<(String, String)>),
    /// Its log.
    Log {
        /// The records after the latest checkpoint, oldest first.
        records: Vec<LogEntry>,
        /// How many of the last records are not yet durable.
        unsynced: usize,
        /// What the latest checkpoint carries, if there is one.
        checkpoint: Option<CheckpointInfo>,
    },
    /// Whether it is quiet.
    Quiet(bool),
    /// What recovery found, and the node's clock.
    Hello {
        /// The recovery report of this process's start.
        report: RecoveryReport,
        /// The node's logical clock.
        clock: Timestamp,
    },
}

impl Admin {
    /// The request as the wire carries it.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// The request from what the wire carried; why not, if the bytes are not one.
    pub fn decode(bytes: &[u8]) -> std::result::Result<Admin, String> {
        crate::wal::codec::decode(bytes)
    }
}

impl AdminReply {
    /// The answer as the wire carries it.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// The answer from what the wire carried; a `Failed` saying why, if the bytes are
    /// not one.
    pub fn decode(bytes: &[u8]) -> AdminReply {
        crate::wal::codec::decode(bytes).unwrap_or_else(|detail| {
            AdminReply::Failed(format!("the node's answer could not be read ({detail})"))
        })
    }
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut buf = Vec::new();
    // Every field is a plain value that bincode encodes: this does not fail.
    let _ = crate::wal::codec::encode_into(value, &mut buf);
    buf
}
