//! What `RESTART` tells of a node's recovery ([`RecoveryReport`]), and settling an
//! in-doubt transaction by hand ([`Cluster::resolve`]).

use super::Cluster;
use crate::error::{Error, Result};
use crate::net::Control;
use crate::node::Node;
use crate::types::{NodeId, TxnId};
use crossbeam::channel::bounded;

/// What recovering a node found, in the order recovery did it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RecoveryReport {
    /// The node.
    pub node: NodeId,
    /// Log records replayed after the checkpoint.
    pub records: usize,
    /// Whether a checkpoint was loaded.
    pub from_checkpoint: bool,
    /// Keys in the checkpoint's data (0 without a checkpoint).
    pub checkpoint_keys: usize,
    /// In-doubt `Prepare` records the checkpoint carried.
    pub checkpoint_prepared: Vec<TxnId>,
    /// Unacknowledged `Decision` records the checkpoint carried.
    pub checkpoint_decisions: Vec<TxnId>,
    /// Transactions whose committed writes the log's records redid.
    pub redone: Vec<TxnId>,
    /// Prepared transactions the log shows aborted: their writes dropped.
    pub dropped: Vec<TxnId>,
    /// Transactions prepared and undecided: in doubt, locked until resolved.
    pub in_doubt: Vec<TxnId>,
    /// Per in-doubt transaction: the keys locked again and whom the node asks.
    pub in_doubt_detail: Vec<InDoubt>,
    /// Transactions settled by hand (`RESOLVE`) whose coordinator's decision is awaited.
    pub heuristic: Vec<TxnId>,
    /// Commit decisions being re-sent to participants.
    pub resent: Vec<TxnId>,
    /// Warnings, such as a torn last record cut off.
    pub warnings: Vec<String>,
}

/// One transaction found in doubt at recovery.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InDoubt {
    /// The transaction.
    pub tid: TxnId,
    /// The keys whose exclusive locks were taken again.
    pub keys: Vec<String>,
    /// Its coordinator, asked first.
    pub coordinator: NodeId,
    /// The other participants, also asked (cooperative termination).
    pub peers: Vec<NodeId>,
}

impl RecoveryReport {
    /// The report of `state`, just recovered from `records` log records.
    pub(super) fn of(state: &mut Node, records: usize, warnings: Vec<String>) -> RecoveryReport {
        let node = state.id();
        let summary = state.take_recovered().unwrap_or_default();
        let in_doubt = state.participant().in_doubt();
        RecoveryReport {
            node,
            records,
            from_checkpoint: summary.checkpoint_keys.is_some(),
            checkpoint_keys: summary.checkpoint_keys.unwrap_or(0),
            checkpoint_prepared: summary.checkpoint_prepared,
            checkpoint_decisions: summary.checkpoint_decisions,
            redone: summary.redone,
            dropped: summary.dropped,
            in_doubt: in_doubt.iter().map(|(tid, _)| *tid).collect(),
            in_doubt_detail: (in_doubt.iter())
                .map(|(tid, prepared)| InDoubt {
                    tid: *tid,
                    keys: prepared.writes.iter().map(|(k, _)| k.clone()).collect(),
                    coordinator: prepared.coordinator,
                    peers: (prepared.participants.iter().copied())
                        .filter(|p| *p != node && *p != prepared.coordinator)
                        .collect(),
                })
                .collect(),
            heuristic: summary.heuristic,
            resent: state.coordinator().decided().keys().copied().collect(),
            warnings,
        }
    }
}

impl Cluster {
    /// `RESOLVE tid COMMIT|ABORT ON node`: settles a transaction in doubt on `node` by
    /// hand, a heuristic decision (see `participant::heuristic`). Refused for an unknown
    /// or down node, and for a transaction not in doubt there.
    pub fn resolve(&self, node: NodeId, tid: TxnId, commit: bool) -> Result<()> {
        self.ctx.net.check_node(node)?;
        if !self.ctx.net.is_up(node) {
            return Err(Error::InvalidInput(format!(
                "node {node} is down: RESTART it first; its recovery finds what is in doubt \
                 there, which RESOLVE can then settle"
            )));
        }
        let (reply, answer) = bounded(1);
        self.control(node, Control::Resolve(tid, commit, reply))?;
        answer.recv().map_err(|_| Error::NodeDown {
            node,
            detail: "it crashed while answering".into(),
        })?
    }
}

/// What a node's latest checkpoint carries, for `SHOW LOG`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CheckpointInfo {
    /// Keys in its data.
    pub keys: usize,
    /// The `Prepare` records of transactions in doubt when it was taken.
    pub prepared: Vec<super::LogEntry>,
    /// The `Decision` records not yet acknowledged by every participant.
    pub decisions: Vec<super::LogEntry>,
}

impl Cluster {
    /// What `node`'s latest checkpoint carries, if it has one (read from disk: the node
    /// may be down).
    pub fn log_checkpoint(&self, node: NodeId) -> Result<Option<CheckpointInfo>> {
        self.ctx.net.check_node(node)?;
        if let Some(processes) = &self.processes {
            return Cluster::remote_log(processes, node).map(|(_, _, checkpoint)| checkpoint);
        }
        let snapshot = crate::wal::Wal::read_checkpoint(&self.node_dir(node))?;
        Ok(snapshot.map(|snapshot| CheckpointInfo {
            keys: snapshot.data.len(),
            prepared: snapshot.prepared.into_iter().map(Into::into).collect(),
            decisions: snapshot.decisions.into_iter().map(Into::into).collect(),
        }))
    }
}
