//! The log records: one enum for both roles a node plays, so one log per node holds its
//! participant and coordinator history in the order it happened.
//!
//! Which records are forced (fsynced before anything that depends on them leaves the
//! node) and which are lazy is a property of the protocol, stated by [`Record::forced`]
//! and documented in `logs/FORMAT.md`.

use crate::types::{NodeId, Timestamp, TxnId, Write};
use serde::{Deserialize, Serialize};

/// One write-ahead log record.
///
/// The order of the variants is part of the on-disk format (bincode writes the variant
/// index): add new variants at the end, never reorder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    /// Participant: the transaction's writes, logged before voting YES. Without an outcome
    /// after it, the transaction is in doubt at recovery.
    Prepare {
        /// The transaction.
        tid: TxnId,
        /// Its coordinator, whom recovery asks for the outcome.
        coordinator: NodeId,
        /// Every participant, for cooperative termination.
        participants: Vec<NodeId>,
        /// The buffered writes this node will apply if the transaction commits.
        writes: Vec<Write>,
        /// The participant's timestamp at prepare; the commit timestamp is above it.
        prepare_ts: Timestamp,
    },
    /// Participant: the coordinator decided commit; the prepared writes are applied.
    Commit {
        /// The transaction.
        tid: TxnId,
        /// The commit timestamp chosen by the coordinator.
        commit_ts: Timestamp,
    },
    /// Participant: the transaction aborted after it prepared here (lazy: presumed abort).
    Abort {
        /// The transaction.
        tid: TxnId,
    },
    /// Participant: a single-participant transaction committed in one phase: its writes
    /// and its outcome in one forced record.
    OnePhaseCommit {
        /// The transaction.
        tid: TxnId,
        /// The writes, applied at `commit_ts`.
        writes: Vec<Write>,
        /// The commit timestamp.
        commit_ts: Timestamp,
    },
    /// Coordinator: the commit decision, forced before any COMMIT message leaves. There is
    /// no abort decision record: a transaction without one is aborted (presumed abort).
    Decision {
        /// The transaction.
        tid: TxnId,
        /// The participants that voted YES and must acknowledge.
        participants: Vec<NodeId>,
        /// The commit timestamp, above every participant's `prepare_ts`.
        commit_ts: Timestamp,
    },
    /// Coordinator: every participant acknowledged the commit; the decision can be
    /// forgotten (lazy).
    End {
        /// The transaction.
        tid: TxnId,
    },
    /// Coordinator: transaction counters below `upto` may be handed out. Forced before the
    /// first id of the block is used, so ids are never reused across restarts.
    TidLease {
        /// The first counter value not covered.
        upto: u64,
    },
    /// Participant: an operator settled an in-doubt transaction by hand (`RESOLVE`), a
    /// heuristic decision, without its coordinator: commit applies the prepared writes at
    /// `commit_ts`, abort drops them. Either way the locks are released. Forced: it is
    /// remembered across restarts, so that the coordinator's real decision, when it
    /// comes, is compared with it (a disagreement is a heuristic mixed outcome).
    Heuristic {
        /// The transaction.
        tid: TxnId,
        /// Whether the operator committed it (else aborted it).
        commit: bool,
        /// The commit timestamp the node chose, above its `prepare_ts` (0 for an abort).
        commit_ts: Timestamp,
    },
    /// Coordinator, parallel commits (`SET commit parallel`): the transaction is staged
    /// at these participants. Forced, appended right after the PREPAREs are sent (they
    /// do not wait for it): once it and every participant's `Prepare` are durable, the
    /// transaction is committed, whether or not a `Decision` follows. Recovery that
    /// finds it with no `Decision` and no `StagedAbort` asks every participant.
    Staged {
        /// The transaction.
        tid: TxnId,
        /// Every participant, all of which must have prepared for it to commit.
        participants: Vec<NodeId>,
    },
    /// Participant, parallel commits: asked for the status of a staged transaction it
    /// never prepared, this node refuses it for good (a durable tombstone, forced before
    /// the answer leaves): its PREPARE is voted NO from then on, so it cannot commit.
    Refused {
        /// The transaction.
        tid: TxnId,
    },
    /// Coordinator, parallel commits: a staged transaction aborted. Forced before any
    /// ABORT leaves or the client is told, since the `Staged` record alone, with every
    /// Prepare durable, would otherwise make recovery commit it.
    StagedAbort {
        /// The transaction.
        tid: TxnId,
    },
}

impl Record {
    /// Whether the record must be fsynced before anything that depends on it is sent.
    pub fn forced(&self) -> bool {
        !matches!(self, Record::Abort { .. } | Record::End { .. })
    }

    /// Whether everything the node sends after appending it waits for its fsync. True of
    /// every forced record but `Commit`, on which only the participant's acknowledgement
    /// depends (the outcome is already durable in the coordinator's `Decision`), so the
    /// node need not stall other work for it: the acknowledgement waits for the next
    /// fsync, which the next forced record, or a moment of idleness, brings.
    pub fn barrier(&self) -> bool {
        self.forced() && !matches!(self, Record::Commit { .. })
    }

    /// The record's kind, as shown in traces and `SHOW LOG`.
    pub fn kind(&self) -> &'static str {
        match self {
            Record::Prepare { .. } => "Prepare",
            Record::Commit { .. } => "Commit",
            Record::Abort { .. } => "Abort",
            Record::OnePhaseCommit { .. } => "OnePhaseCommit",
            Record::Decision { .. } => "Decision",
            Record::End { .. } => "End",
            Record::TidLease { .. } => "TidLease",
            Record::Heuristic { .. } => "Heuristic",
            Record::Staged { .. } => "Staged",
            Record::Refused { .. } => "Refused",
            Record::StagedAbort { .. } => "StagedAbort",
        }
    }

    /// The transaction the record is about, if any.
    pub fn tid(&self) -> Option<TxnId> {
        match self {
            Record::Prepare { tid, .. }
            | Record::Commit { tid, .. }
            | Record::Abort { tid }
            | Record::OnePhaseCommit { tid, .. }
            | Record::Decision { tid, .. }
            | Record::End { tid }
            | Record::Heuristic { tid, .. }
            | Record::Staged { tid, .. }
            | Record::Refused { tid }
            | Record::StagedAbort { tid } => Some(*tid),
            Record::TidLease { .. } => None,
        }
    }
}

/// What a checkpoint holds: everything recovery needs from the log before it.
///
/// Invariant: a checkpoint never drops what recovery still needs, so it carries the
/// `Prepare` records of in-doubt transactions and the `Decision` records not yet ended.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The committed data, sorted by key: `(key, value, commit_ts)`.
    pub data: Vec<(String, String, Timestamp)>,
    /// `Prepare` records of transactions prepared here and not yet decided.
    pub prepared: Vec<Record>,
    /// `Decision` records this node (as coordinator) has not yet seen acknowledged, and
    /// `Staged` records of transactions it has not yet decided (parallel commits).
    pub decisions: Vec<Record>,
    /// The transaction-counter lease: counters below it may have been used.
    pub tid_lease: u64,
    /// The cluster's timestamp when the checkpoint was taken: at or above every commit
    /// applied before it, deletes (left out of `data`) included, so the recovered store
    /// refuses reads below it of keys it has no version of (see `store`).
    pub clock: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A trace event read off the wire names its record kind from `trace`'s list: every
    /// kind a record has must be on it, and nothing else.
    #[test]
    fn every_record_kind_is_one_the_trace_can_read_back() {
        let tid = TxnId(1);
        let records = [
            Record::Prepare {
                tid,
                coordinator: 0,
                participants: vec![0],
                writes: Vec::new(),
                prepare_ts: 1,
            },
            Record::Commit { tid, commit_ts: 1 },
            Record::Abort { tid },
            Record::OnePhaseCommit {
                tid,
                writes: Vec::new(),
                commit_ts: 1,
            },
            Record::Decision {
                tid,
                participants: vec![0],
                commit_ts: 1,
            },
            Record::End { tid },
            Record::TidLease { upto: 1 },
            Record::Heuristic {
                tid,
                commit: true,
                commit_ts: 1,
            },
            Record::Staged {
                tid,
                participants: vec![0],
            },
            Record::Refused { tid },
            Record::StagedAbort { tid },
        ];
        let kinds: Vec<&str> = records.iter().map(Record::kind).collect();
        assert_eq!(kinds, crate::trace::RECORD_KINDS);
    }
}
