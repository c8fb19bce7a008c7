//! What the cluster shows of itself: the observation types [`Cluster::status`],
//! [`Cluster::locks`] and [`Cluster::log_records`] return.
//!
//! They are the cluster's own, copied out of the node threads' answers and the log, so
//! that what renders them (the shell) depends on this layer and not on the network's
//! mail, the lock table or the log's record format below it. A change to those shows up
//! here, in one exhaustive conversion, rather than in every screen that prints them.
//!
//! [`Cluster::status`]: super::Cluster::status
//! [`Cluster::locks`]: super::Cluster::locks
//! [`Cluster::log_records`]: super::Cluster::log_records

use crate::crash::CrashPoint;
use crate::types::{LockMode, NodeId, Timestamp, TxnId, Write};
use crate::wal::Record;

/// A node's status, for `STATUS`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NodeStatus {
    /// The node.
    pub node: NodeId,
    /// Whether it is running.
    pub up: bool,
    /// Transactions working on this node's keys (participant).
    pub active: Vec<TxnId>,
    /// Transactions prepared here and undecided, with their coordinators.
    pub in_doubt: Vec<(TxnId, NodeId)>,
    /// Transactions this node coordinates that are open or committing.
    pub coordinating: Vec<TxnId>,
    /// Commit decisions this node has not seen acknowledged by every participant.
    pub unacknowledged: Vec<TxnId>,
    /// Committed keys stored here.
    pub keys: usize,
    /// Bytes of log since the last checkpoint.
    pub log_bytes: u64,
    /// fsyncs done by this incarnation.
    pub fsyncs: u64,
    /// The crash point armed on it, if any.
    pub armed: Option<CrashPoint>,
    /// Why it stopped, if it stopped on an error (a failed log write) rather than a crash.
    pub failure: Option<String>,
    /// Heuristic mixed outcomes found here: transactions settled by hand (`RESOLVE`)
    /// against their coordinator's decision, as `(tid, committed here)`.
    pub mixed: Vec<(TxnId, bool)>,
}

impl From<crate::net::NodeStatus> for NodeStatus {
    fn from(status: crate::net::NodeStatus) -> NodeStatus {
        let crate::net::NodeStatus {
            node,
            up,
            active,
            in_doubt,
            coordinating,
            unacknowledged,
            keys,
            log_bytes,
            fsyncs,
            armed,
            failure,
            mixed,
        } = status;
        NodeStatus {
            node,
            up,
            active,
            in_doubt,
            coordinating,
            unacknowledged,
            keys,
            log_bytes,
            fsyncs,
            armed,
            failure,
            mixed,
        }
    }
}

/// One key's locks on a node, for `SHOW LOCKS`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeyLocks {
    /// The key.
    pub key: String,
    /// Holders and their modes, sorted by transaction.
    pub holders: Vec<(TxnId, LockMode)>,
    /// Waiters in queue order.
    pub waiters: Vec<(TxnId, LockMode)>,
    /// Whether `key` names a range locked by scans (`p*`, `[a..b]`), not a key.
    pub range: bool,
}

impl From<crate::lock::KeyLocks> for KeyLocks {
    fn from(locks: crate::lock::KeyLocks) -> KeyLocks {
        let crate::lock::KeyLocks {
            key,
            holders,
            waiters,
            range,
        } = locks;
        KeyLocks {
            key,
            holders,
            waiters,
            range,
        }
    }
}

/// One record of a node's log, for `SHOW LOG`: what it says and whether it is forced
/// (fsynced before anything that depends on it is sent).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogEntry {
    /// What the record says.
    pub record: LogRecord,
    /// Whether it is forced.
    pub forced: bool,
}

/// What a log record says (the log's own `Record`, less its encoding).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum LogRecord {
    /// A participant prepared `tid` with these writes, voting YES.
    Prepare {
        /// The transaction.
        tid: TxnId,
        /// Its coordinator.
        coordinator: NodeId,
        /// Every participant.
        participants: Vec<NodeId>,
        /// The writes applied if it commits.
        writes: Vec<Write>,
        /// The participant's timestamp at prepare.
        prepare_ts: Timestamp,
    },
    /// A participant applied a committed transaction.
    Commit {
        /// The transaction.
        tid: TxnId,
        /// The commit timestamp.
        commit_ts: Timestamp,
    },
    /// A participant aborted a transaction after preparing it.
    Abort {
        /// The transaction.
        tid: TxnId,
    },
    /// A single-participant transaction committed in one phase.
    OnePhaseCommit {
        /// The transaction.
        tid: TxnId,
        /// The writes.
        writes: Vec<Write>,
        /// The commit timestamp.
        commit_ts: Timestamp,
    },
    /// A coordinator's commit decision.
    Decision {
        /// The transaction.
        tid: TxnId,
        /// The participants that must acknowledge.
        participants: Vec<NodeId>,
        /// The commit timestamp.
        commit_ts: Timestamp,
    },
    /// Every participant acknowledged the commit.
    End {
        /// The transaction.
        tid: TxnId,
    },
    /// A coordinator reserved transaction counters below `upto`.
    TidLease {
        /// The first counter value not covered.
        upto: u64,
    },
    /// A participant settled an in-doubt transaction by hand (`RESOLVE`).
    Heuristic {
        /// The transaction.
        tid: TxnId,
        /// Whether it was committed (else aborted).
        commit: bool,
        /// The commit timestamp (0 for an abort).
        commit_ts: Timestamp,
    },
    /// A coordinator staged a parallel commit at these participants.
    Staged {
        /// The transaction.
        tid: TxnId,
        /// Every participant.
        participants: Vec<NodeId>,
    },
    /// A participant refused a staged transaction it never prepared, for good.
    Refused {
        /// The transaction.
        tid: TxnId,
    },
    /// A coordinator aborted a staged transaction.
    StagedAbort {
        /// The transaction.
        tid: TxnId,
    },
}

impl From<Record> for LogEntry {
    fn from(record: Record) -> LogEntry {
        let forced = record.forced();
        let record = match record {
            Record::Prepare {
                tid,
                coordinator,
                participants,
                writes,
                prepare_ts,
            } => LogRecord::Prepare {
                tid,
                coordinator,
                participants,
                writes,
                prepare_ts,
            },
            Record::Commit { tid, commit_ts } => LogRecord::Commit { tid, commit_ts },
            Record::Abort { tid } => LogRecord::Abort { tid },
            Record::OnePhaseCommit {
                tid,
                writes,
                commit_ts,
            } => LogRecord::OnePhaseCommit {
                tid,
                writes,
                commit_ts,
            },
            Record::Decision {
                tid,
                participants,
                commit_ts,
            } => LogRecord::Decision {
                tid,
                participants,
                commit_ts,
            },
            Record::End { tid } => LogRecord::End { tid },
            Record::TidLease { upto } => LogRecord::TidLease { upto },
            Record::Heuristic {
                tid,
                commit,
                commit_ts,
            } => LogRecord::Heuristic {
                tid,
                commit,
                commit_ts,
            },
            Record::Staged { tid, participants } => LogRecord::Staged { tid, participants },
            Record::Refused { tid } => LogRecord::Refused { tid },
            Record::StagedAbort { tid } => LogRecord::StagedAbort { tid },
        };
        LogEntry { record, forced }
    }
}
