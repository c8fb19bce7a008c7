//! The prepare floor a node publishes for read-only snapshots (`Context::safe_ts`): the
//! lowest `prepare_ts` of a transaction that is, or may again be after a crash, prepared
//! and undecided here. A read-only transaction's snapshot stays at or below every node's
//! floor, so it never waits for such a transaction, and so never for a crashed
//! coordinator (why that is enough is in the `store` module's doc, "Which snapshot").
//!
//! The floor must be visible to a reader whenever a commit timestamp could be chosen at
//! or below the reader's timestamp for a transaction undecided here. Hence:
//!
//! - **It falls before a vote can leave.** Before the node handles a `Prepare`, it
//!   publishes the cluster's current timestamp, which is at or below the `prepare_ts`
//!   the transaction takes; at the end of the batch, before the fsync that lets the vote
//!   out, it publishes the real floor. A reader that does not see the lower floor loaded
//!   the counter before it was published, so the `prepare_ts` is at or above its
//!   snapshot, and the transaction can neither be in it nor make it wait.
//! - **It rises only once the outcome is durable.** A commit or abort applied here but
//!   not yet fsynced would be undone by a crash: the transaction would be in doubt again
//!   at restart. The floor rises past it only at the end of a batch after its record
//!   is durable. A rise held back this way asks for that fsync (it waits for company
//!   for a moment, like an acknowledgement) and holds a wake-up of the node until it is
//!   done, so the floor rises even on a node that hears nothing more: otherwise every
//!   read-only snapshot would stay below a transaction long decided.
//! - **It stays while the node is down.** A crashed node keeps the lower of its last
//!   published floor and the floor of what it had prepared in memory (a `Prepare` made
//!   durable at a crash point may have sent its vote; one lost in the crash never did,
//!   and only lowers the floor until the restart). Recovery publishes the floor it
//!   restores before the node is reachable. A cluster opening publishes every node's
//!   restored floor before `Cluster::open` returns, so no client sees an unknown floor.
//!
//! The cost: while a node with a transaction in doubt is down, read-only snapshots stay
//! below that transaction and may, for keys rewritten often since, be told to retry.

use crate::context::Context;
use crate::types::{NodeId, Timestamp};

/// A node's published prepare floor and what keeps it from rising.
pub(super) struct Floor {
    /// What is published now (`None`: no floor).
    published: Option<Timestamp>,
    /// The LSN just past the newest `Commit` or `Abort` record appended: the floor does
    /// not rise before the log is durable through it.
    decision_lsn: u64,
}

/// The lower of two floors (`None` is no floor, above every timestamp).
fn lowest(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl Floor {
    /// Publishes the floor a recovered node restored, before anyone can reach it.
    pub(super) fn restored(node: NodeId, floor: Option<Timestamp>, ctx: &Context) -> Floor {
        ctx.publish_prepare_floor(node, floor);
        Floor {
            published: floor,
            decision_lsn: 0,
        }
    }

    /// Publishes `floor` if it is lower than what is published.
    pub(super) fn lower(&mut self, node: NodeId, floor: Option<Timestamp>, ctx: &Context) {
        let lower = lowest(self.published, floor);
        if lower != self.published {
            self.published = lower;
            ctx.publish_prepare_floor(node, lower);
        }
    }

    /// Publishes the node's current floor, which may rise if every decision appended is
    /// durable (`synced` is the LSN the log is durable through).
    pub(super) fn settle(
        &mut self,
        node: NodeId,
        floor: Option<Timestamp>,
        synced: u64,
        ctx: &Context,
    ) {
        if synced < self.decision_lsn {
            return self.lower(node, floor, ctx);
        }
        if floor != self.published {
            self.published = floor;
            ctx.publish_prepare_floor(node, floor);
        }
    }

    /// The LSN the log must be durable through before the floor may rise to `floor`, if
    /// it is held back now (`synced` as for [`Floor::settle`]): the node must look again
    /// then, even if nothing else wakes it, or read-only snapshots would stay behind.
    pub(super) fn rise_pending(&self, floor: Option<Timestamp>, synced: u64) -> Option<u64> {
        let higher = match (floor, self.published) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(floor), Some(published)) => floor > published,
        };
        (higher && synced < self.decision_lsn).then_some(self.decision_lsn)
    }

    /// A `Commit` or `Abort` record was appended, ending at `lsn`.
    pub(super) fn decided(&mut self, lsn: u64) {
        self.decision_lsn = lsn;
    }
}
