//! What a node has said but may not let out yet: messages and replies waiting for the
//! fsync of the log records they depend on.
//!
//! # The rule
//!
//! Each item is tagged with an LSN and leaves once the log is durable through it:
//! - a message to a node, and a reply that carries state (a value read, a commit
//!   outcome), waits for every *barrier* record the node appended before it
//!   ([`Record::barrier`](crate::wal::Record::barrier)), whichever transaction wrote it.
//!   The node's memory already reflects those records (a decision taken, a one-phase
//!   commit applied), and anything said from that memory could reveal them: an inquiry
//!   answered COMMIT from a decision that a crash then loses would break atomicity;
//! - a reply that carries nothing but the fate of the client's own request (a write
//!   buffered, a lock wait, an abort done) does not wait, and a transaction id (or a
//!   request handed on with one) waits only for the lease it came from: they do not
//!   queue behind other transactions' fsyncs;
//! - a value read waits only for the newest one-phase commit: readers see committed data
//!   only, whose outcome is durable already (in the coordinator's `Decision`) except for
//!   a one-phase commit, whose record is its outcome; an undecided `Prepare` is never
//!   read. So a read does not queue behind a 2PC writer's `Prepare` fsync;
//! - an acknowledgement of a `Commit` record ([`Outbox::hold_durable`]) waits for that
//!   record, but asks for no fsync of its own: it leaves with the next one.
//!
//! Tags of the first kind never decrease, so those items leave in the order they were
//! said, and a node's messages to another node arrive in order.

use crate::mailbox::ReplySender;
use crate::message::{Message, Reply, Request};
use crate::router::Shared;
use crate::types::NodeId;
use std::collections::VecDeque;

/// A message or reply held back.
pub enum Held {
    /// A message to a node, with its causal depth.
    Send {
        /// The receiver.
        to: NodeId,
        /// The message.
        message: Message,
        /// The causal depth of what caused it.
        depth: u32,
    },
    /// A reply to a client.
    Reply {
        /// Where it goes.
        reply: ReplySender,
        /// What it says.
        message: Reply,
    },
    /// A client's request handed on to another node, with its reply channel.
    Forward {
        /// The node that takes it over.
        to: NodeId,
        /// The request.
        request: Request,
        /// Where that node answers.
        reply: ReplySender,
    },
    /// An acknowledgement whose `Commit` record is now durable; it counted as in flight
    /// while it waited.
    Ack {
        /// The receiver (the coordinator).
        to: NodeId,
        /// The acknowledgement.
        message: Message,
        /// The causal depth of what caused it.
        depth: u32,
    },
}

impl Held {
    /// Sends it. A reply counts as in flight until the client has taken it
    /// (`Client::call`), so that `Cluster::settle` also waits for clients to wake; an
    /// acknowledgement counted as in flight while it waited.
    pub fn release(self, node: NodeId, shared: &Shared) {
        match self {
            Held::Send { to, message, depth } => shared.send(node, to, message, depth),
            Held::Reply { reply, message } => {
                shared.begin_work();
                // The id of a transaction begun with its first operation arrives before
                // that operation's answer, which wakes the client: it need not wake for
                // this.
                let sent = match message {
                    Reply::Begun(..) => reply.send_quiet(message),
                    _ => reply.send(message),
                };
                if sent.is_err() {
                    shared.handled(1);
                }
            }
            Held::Forward { to, request, reply } => {
                if let Err((reply, error)) = shared.forward(to, request, reply) {
                    let message = Reply::Done(Err(error));
                    Held::Reply { reply, message }.release(node, shared);
                }
            }
            Held::Ack { to, message, depth } => {
                shared.send(node, to, message, depth);
                shared.handled(1);
            }
        }
    }
}

/// The held items of one node, by the LSN each waits for.
#[derive(Default)]
pub struct Outbox {
    /// Items whose LSN is already durable: they leave at the end of the batch.
    ready: Vec<Held>,
    /// Items waiting for an fsync, in the order said, with nondecreasing LSNs.
    waiting: VecDeque<(u64, Held)>,
    /// Acknowledgements waiting for the fsync of their `Commit` record.
    durable: VecDeque<(u64, Message, NodeId, u32)>,
}

impl Outbox {
    /// Holds `held` until the log is durable through `lsn`; `synced` is how far it is now.
    pub fn hold(&mut self, lsn: u64, synced: u64, held: Held) {
        if lsn <= synced {
            self.ready.push(held);
        } else {
            debug_assert!(self.waiting.back().is_none_or(|(last, _)| *last <= lsn));
            self.waiting.push_back((lsn, held));
        }
    }

    /// Holds an acknowledgement to `to` until the log is durable through `lsn`.
    pub fn hold_durable(&mut self, lsn: u64, to: NodeId, message: Message, depth: u32) {
        self.durable.push_back((lsn, message, to, depth));
    }

    /// The LSN the newest held acknowledgement waits for, if any.
    pub fn durable_wanted(&self) -> Option<u64> {
        self.durable.back().map(|(lsn, ..)| *lsn)
    }

    /// Takes everything that may leave now that the log is durable through `synced`,
    /// in order: the items held and then the acknowledgements.
    pub fn release(&mut self, synced: u64) -> Vec<Held> {
        let mut out = std::mem::take(&mut self.ready);
        while let Some((lsn, _)) = self.waiting.front()
            && *lsn <= synced
        {
            if let Some((_, held)) = self.waiting.pop_front() {
                out.push(held);
            }
        }
        while let Some((lsn, ..)) = self.durable.front()
            && *lsn <= synced
        {
            if let Some((_, message, to, depth)) = self.durable.pop_front() {
                out.push(Held::Ack { to, message, depth });
            }
        }
        out
    }

    /// Takes everything, for a node that dies: what it said is lost, but the clients it
    /// owed an answer must be told. Returns the held items and how many
    /// acknowledgements were dropped.
    pub fn drain(&mut self) -> (Vec<Held>, usize) {
        let mut all = std::mem::take(&mut self.ready);
        all.extend(self.waiting.drain(..).map(|(_, held)| held));
        let acks = self.durable.len();
        self.durable.clear();
        (all, acks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::TxnId;

    fn send(tid: u64) -> Held {
        let message = Message::Ack { tid: TxnId(tid) };
        Held::Send {
            to: 0,
            message,
            depth: 0,
        }
    }

    fn tids(held: &[Held]) -> Vec<u64> {
        (held.iter())
            .map(|held| match held {
                Held::Send { message, .. } | Held::Ack { message, .. } => {
                    message.tid().map_or(0, |tid| tid.0)
                }
                Held::Reply { .. } | Held::Forward { .. } => 0,
            })
            .collect()
    }

    #[test]
    fn items_leave_in_order_once_their_lsn_is_durable() {
        let mut outbox = Outbox::default();
        outbox.hold(10, 0, send(1));
        outbox.hold(10, 0, send(2));
        outbox.hold(25, 0, send(3));
        assert!(outbox.release(9).is_empty(), "nothing is durable yet");
        assert_eq!(tids(&outbox.release(10)), vec![1, 2]);
        assert_eq!(tids(&outbox.release(24)), Vec::<u64>::new());
        assert_eq!(tids(&outbox.release(30)), vec![3]);
    }

    #[test]
    fn what_depends_on_nothing_unsynced_leaves_at_the_end_of_the_batch() {
        let mut outbox = Outbox::default();
        outbox.hold(40, 20, send(1));
        outbox.hold(0, 20, send(2));
        assert_eq!(
            tids(&outbox.release(20)),
            vec![2],
            "it does not queue behind 1"
        );
        assert_eq!(tids(&outbox.release(40)), vec![1]);
    }

    #[test]
    fn acknowledgements_wait_for_their_record_but_ask_for_no_fsync() {
        let mut outbox = Outbox::default();
        outbox.hold_durable(15, 2, Message::Ack { tid: TxnId(7) }, 1);
        assert_eq!(outbox.durable_wanted(), Some(15));
        assert!(outbox.release(14).is_empty());
        let released = outbox.release(15);
        assert!(matches!(released.as_slice(), [Held::Ack { to: 2, .. }]));
        assert_eq!(outbox.durable_wanted(), None);
    }

    #[test]
    fn a_dying_node_drops_everything_and_counts_the_acknowledgements() {
        let mut outbox = Outbox::default();
        outbox.hold(5, 0, send(1));
        outbox.hold(0, 0, send(2));
        outbox.hold_durable(6, 0, Message::Ack { tid: TxnId(3) }, 1);
        let (held, acks) = outbox.drain();
        assert_eq!(tids(&held), vec![2, 1]);
        assert_eq!(acks, 1);
        assert!(outbox.release(u64::MAX).is_empty());
    }
}
