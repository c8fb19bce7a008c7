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
//! - a value read under a lock (or a scan's rows) does not wait: the commit that
//!   handed it its lock may not be durable yet, but the reader's own outcome, a record
//!   or message after it, waits for it (controlled lock violation, see
//!   [`visible`](super::visible) and the participant's module doc); a snapshot's value
//!   or rows wait only for the records that made what they carry visible (a one-phase
//!   commit, whose record is its outcome; an undecided `Prepare` is never read);
//! - an acknowledgement of a `Commit` record ([`Outbox::hold_durable`]) waits for that
//!   record, but asks for no fsync of its own: it leaves with the next one.
//!
//! A teaching mistake breaks the rule on purpose (`SET mistake`, never the default; see
//! [`Message::skips_fsync`]): with
//! `vote-before-fsync` a YES vote, with `commit-before-decision-fsync` a COMMIT, is held
//! with LSN 0, so it waits for no fsync at all.
//!
//! # Order
//!
//! Items leave in the order they were held, with one exception: an item whose LSN is
//! durable already when it is held leaves at the end of the batch, ahead of earlier
//! items still waiting for an fsync, unless one of those goes to the same
//! [`Destination`] (the same node, or the same client's reply channel; a request handed
//! on counts for both its node and the client that node will answer). So two items for
//! one destination always leave in the order they were held: a node's messages to
//! another node arrive in order, and a client learns its transaction's id (`Begun`)
//! before the node the first operation was handed to can answer it. The exception keeps
//! a reply that waits for nothing from queuing behind other transactions' fsyncs.
//!
//! The items waiting for an fsync leave strictly in order (a later one with a smaller
//! LSN waits for the earlier ones), and the caller raises the durable LSN under the
//! same lock as it lets them out ([`Durability`](super::syncer::Durability)), so what
//! is waiting always has an LSN above the durable one.
//!
//! Acknowledgements ([`Outbox::hold_durable`]) keep their own order, and leave after
//! the items let out with them: an acknowledgement is a transaction's last word to its
//! coordinator, so nothing later about that transaction can overtake it.
//!
//! # Work
//!
//! Each held item owns the work token of what it will become (a message to its node, a
//! reply to its client), created when the node held it; letting it out moves the token
//! into the inbox or reply queue, and an item dropped (the node died) ends it.

use crate::message::{Message, Reply, Request};
use crate::net::{Label, Net, ReplySender, Stamp, What, Work};
use crate::types::NodeId;
use std::collections::{HashMap, VecDeque};

/// Where an item goes, for the order items leave in (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Destination {
    /// A node's inbox.
    Node(NodeId),
    /// A client's reply channel, by [`ReplySender::id`].
    Client(usize),
}

/// A message or reply held back.
pub enum Held {
    /// A message to a node, with its stamp.
    Send {
        /// The receiver.
        to: NodeId,
        /// The message.
        message: Message,
        /// The sender's clock when it said it, and the causal depth of what caused it.
        stamp: Stamp,
        /// The message's work.
        work: Work,
    },
    /// A reply to a client.
    Reply {
        /// Where it goes.
        reply: ReplySender,
        /// What it says.
        message: Reply,
        /// The reply's work, until the client has taken it.
        work: Work,
    },
    /// A client's request handed on to another node, with its reply channel.
    Forward {
        /// The node that takes it over.
        to: NodeId,
        /// The request.
        request: Request,
        /// Where that node answers.
        reply: ReplySender,
        /// The request's work.
        work: Work,
    },
    /// An acknowledgement whose `Commit` record is now durable; it counted as in flight
    /// while it waited.
    Ack {
        /// The receiver (the coordinator).
        to: NodeId,
        /// The acknowledgement.
        message: Message,
        /// The sender's clock when it said it, and the causal depth of what caused it.
        stamp: Stamp,
        /// The acknowledgement's work.
        work: Work,
    },
}

/// An acknowledgement waiting for its record: the LSN, the message, its receiver, its
/// stamp and its work.
type Durable = (u64, Message, NodeId, Stamp, Work);

impl Held {
    /// Parks the item's work while it waits for an fsync held in step mode (see
    /// `net::steps`); letting it out counts it again.
    pub fn park(&mut self) {
        match self {
            Held::Send { work, .. }
            | Held::Reply { work, .. }
            | Held::Forward { work, .. }
            | Held::Ack { work, .. } => work.park(),
        }
    }

    /// Sends it, with its work. A reply counts as in flight until the client has taken
    /// it (`Client::call`), so that `Cluster::settle` also waits for clients to wake.
    pub fn release(mut self, node: NodeId, net: &Net) {
        match &mut self {
            Held::Send { work, .. }
            | Held::Reply { work, .. }
            | Held::Forward { work, .. }
            | Held::Ack { work, .. } => work.unpark(),
        }
        match self {
            Held::Send {
                to,
                message,
                stamp,
                work,
            }
            | Held::Ack {
                to,
                message,
                stamp,
                work,
            } => net.send(node, to, message, stamp, work),
            Held::Reply {
                reply,
                message,
                work,
            } => {
                // The id of a transaction begun with its first operation arrives before
                // that operation's answer, which wakes the client: it need not wake for
                // this. A reply to a client that is gone ends with its work.
                let _ = match message {
                    Reply::Begun(..) => reply.send_quiet(message, work),
                    _ => reply.send(message, work),
                };
            }
            Held::Forward {
                to,
                request,
                reply,
                work,
            } => {
                if let Err((reply, error, mut work)) = net.forward(to, request, reply, work) {
                    work.relabel(Label::on(What::Reply, node));
                    let message = Reply::Done(Err(error));
                    (Held::Reply {
                        reply,
                        message,
                        work,
                    })
                    .release(node, net);
                }
            }
        }
    }
}

impl Held {
    /// Where it goes: a request handed on goes to its node and, through that node's
    /// answer, to its client.
    fn destinations(&self) -> [Option<Destination>; 2] {
        match self {
            Held::Send { to, .. } | Held::Ack { to, .. } => [Some(Destination::Node(*to)), None],
            Held::Reply { reply, .. } => [Some(Destination::Client(reply.id())), None],
            Held::Forward { to, reply, .. } => [
                Some(Destination::Node(*to)),
                Some(Destination::Client(reply.id())),
            ],
        }
    }
}

/// The held items of one node, by the LSN each waits for.
#[derive(Default)]
pub struct Outbox {
    /// Items whose LSN is already durable and that no waiting item goes ahead of: they
    /// leave at the end of the batch.
    ready: Vec<Held>,
    /// Items waiting for an fsync or behind one to the same destination, in the order
    /// held; each leaves once its LSN is durable and every earlier one has left.
    waiting: VecDeque<(u64, Held)>,
    /// How many items in `waiting` go to each destination.
    waiting_for: HashMap<Destination, usize>,
    /// Acknowledgements waiting for the fsync of their `Commit` record.
    durable: VecDeque<Durable>,
}

impl Outbox {
    /// Holds `held` until the log is durable through `lsn` and every earlier item to the
    /// same destination has left; `synced` is how far the log is durable now.
    pub fn hold(&mut self, lsn: u64, synced: u64, held: Held) {
        let destinations = held.destinations();
        let behind = (destinations.iter().flatten()).any(|d| self.waiting_for.contains_key(d));
        if lsn <= synced && !behind {
            self.ready.push(held);
            return;
        }
        for destination in destinations.into_iter().flatten() {
            *self.waiting_for.entry(destination).or_default() += 1;
        }
        self.waiting.push_back((lsn, held));
    }

    /// Takes the first waiting item, forgetting its destinations.
    fn pop_waiting(&mut self) -> Option<Held> {
        let (_, held) = self.waiting.pop_front()?;
        for destination in held.destinations().into_iter().flatten() {
            if let Some(count) = self.waiting_for.get_mut(&destination) {
                *count -= 1;
                if *count == 0 {
                    self.waiting_for.remove(&destination);
                }
            }
        }
        Some(held)
    }

    /// Holds an acknowledgement to `to` until the log is durable through `lsn`.
    pub fn hold_durable(
        &mut self,
        lsn: u64,
        to: NodeId,
        message: Message,
        stamp: Stamp,
        work: Work,
    ) {
        self.durable.push_back((lsn, message, to, stamp, work));
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
            out.extend(self.pop_waiting());
        }
        while let Some((lsn, ..)) = self.durable.front()
            && *lsn <= synced
        {
            if let Some((_, message, to, stamp, work)) = self.durable.pop_front() {
                out.push(Held::Ack {
                    to,
                    message,
                    stamp,
                    work,
                });
            }
        }
        out
    }

    /// Takes everything, for a node that dies: what it said is lost, but the clients it
    /// owed an answer must be told. Returns the held items; the acknowledgements are
    /// dropped, and their work ends.
    pub fn drain(&mut self) -> Vec<Held> {
        let mut all = std::mem::take(&mut self.ready);
        all.extend(self.waiting.drain(..).map(|(_, held)| held));
        self.waiting_for.clear();
        self.durable.clear();
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::ReadAt;
    use crate::net::{Ledger, mailbox};
    use crate::types::TxnId;
    use std::sync::{Arc, LazyLock};

    /// The ledger the tests' items count in.
    static LEDGER: LazyLock<Arc<Ledger>> = LazyLock::new(|| Ledger::new(4));

    fn work() -> Work {
        Work::start(&LEDGER, Label::on(What::Message, 0))
    }

    fn send(tid: u64) -> Held {
        send_to(0, tid)
    }

    fn send_to(to: NodeId, tid: u64) -> Held {
        let message = Message::Ack { tid: TxnId(tid) };
        Held::Send {
            to,
            message,
            stamp: Stamp::default(),
            work: work(),
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
        outbox.hold(0, 20, send_to(1, 2));
        assert_eq!(
            tids(&outbox.release(20)),
            vec![2],
            "it does not queue behind 1, which goes elsewhere"
        );
        assert_eq!(tids(&outbox.release(40)), vec![1]);
    }

    #[test]
    fn a_later_item_to_the_same_node_never_overtakes_an_earlier_one() {
        // The node held m1 when the log was durable through 0, and m2 (same tag) once a
        // syncer had raised that to 10 but not yet let m1 out.
        let mut outbox = Outbox::default();
        outbox.hold(10, 0, send(1));
        outbox.hold(10, 10, send(2));
        assert_eq!(tids(&outbox.release(10)), vec![1, 2]);
        // The same with a smaller tag: durable already, but m3 is still waiting.
        outbox.hold(30, 20, send(3));
        outbox.hold(0, 20, send(4));
        assert!(outbox.release(20).is_empty(), "4 waits behind 3");
        assert_eq!(tids(&outbox.release(30)), vec![3, 4]);
    }

    #[test]
    fn a_forward_never_overtakes_the_transaction_id_its_client_awaits() {
        // `begin_and`: the id (`Begun`) and then the first operation handed on to its
        // owner, which answers the same client. Both wait for the lease at 10.
        let (reply, answers) = mailbox();
        let mut outbox = Outbox::default();
        let begun = Reply::Begun(TxnId(4), 1);
        outbox.hold(
            10,
            0,
            Held::Reply {
                reply: reply.clone(),
                message: begun,
                work: work(),
            },
        );
        let request = Request::SnapshotRead {
            key: "k".into(),
            at: ReadAt::AtLeast(0),
        };
        outbox.hold(
            10,
            10,
            Held::Forward {
                to: 1,
                request,
                reply,
                work: work(),
            },
        );
        let released = outbox.release(10);
        assert!(
            matches!(
                released.as_slice(),
                [Held::Reply { .. }, Held::Forward { .. }]
            ),
            "the id leaves first"
        );
        drop(answers);
    }

    /// A small deterministic generator, so a failing case can be replayed by seed.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n.max(1)
        }
    }

    /// Random holds of items to four nodes, tagged as the node thread tags them (0, or
    /// one of three nondecreasing LSNs: lease, visible, barrier), with a syncer that
    /// jumps ahead by random amounts, sometimes between a hold and the release that
    /// would have let earlier items out.
    #[test]
    fn random_holds_leave_in_order_per_destination_once_durable() {
        for seed in 1..=300u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let mut outbox = Outbox::default();
            let (mut end, mut synced) = (0u64, 0u64);
            let mut tags = [0u64; 3];
            let mut held: Vec<(u64, NodeId, u64)> = Vec::new(); // (tid, to, tag)
            let mut out: Vec<(NodeId, u64)> = Vec::new();
            let mut next_ack = 1_000_000;
            let mut acks_out = Vec::new();
            for _ in 0..200 {
                match rng.below(6) {
                    0 | 1 => {
                        end += 1 + rng.below(20);
                        let kind = rng.below(3) as usize;
                        tags[kind] = end;
                    }
                    2 => synced = (synced + rng.below(40)).min(end),
                    3 => {
                        outbox.hold_durable(
                            end,
                            0,
                            Message::Ack {
                                tid: TxnId(next_ack),
                            },
                            Stamp::default(),
                            work(),
                        );
                        next_ack += 1;
                    }
                    _ => {
                        let tid = held.len() as u64 + 1;
                        let to = rng.below(4) as NodeId;
                        let kind = rng.below(4) as usize;
                        let tag = if kind == 3 { 0 } else { tags[kind] };
                        outbox.hold(tag, synced, send_to(to, tid));
                        held.push((tid, to, tag));
                    }
                }
                if rng.below(3) == 0 {
                    collect(
                        &outbox.release(synced),
                        synced,
                        &held,
                        &mut out,
                        &mut acks_out,
                    );
                }
            }
            collect(&outbox.release(end), end, &held, &mut out, &mut acks_out);
            assert_eq!(out.len(), held.len(), "seed {seed}: everything left");
            assert!(acks_out.is_sorted(), "seed {seed}: acks in order");
            for to in 0..4 {
                let order: Vec<u64> = (out.iter())
                    .filter(|(dest, _)| *dest == to)
                    .map(|(_, tid)| *tid)
                    .collect();
                assert!(order.is_sorted(), "seed {seed}: to node {to}: {order:?}");
            }
        }
    }

    /// Checks that each released item's tag is durable, and notes where it went.
    fn collect(
        released: &[Held],
        synced: u64,
        held: &[(u64, NodeId, u64)],
        out: &mut Vec<(NodeId, u64)>,
        acks: &mut Vec<u64>,
    ) {
        for item in released {
            match item {
                Held::Send { to, message, .. } => {
                    let tid = message.tid().map_or(0, |tid| tid.0);
                    let (_, _, tag) = held[tid as usize - 1];
                    assert!(tag <= synced, "{tid} left at {synced}, before {tag}");
                    out.push((*to, tid));
                }
                Held::Ack { message, .. } => acks.push(message.tid().map_or(0, |tid| tid.0)),
                Held::Reply { .. } | Held::Forward { .. } => unreachable!(),
            }
        }
    }

    #[test]
    fn acknowledgements_wait_for_their_record_but_ask_for_no_fsync() {
        let mut outbox = Outbox::default();
        outbox.hold_durable(
            15,
            2,
            Message::Ack { tid: TxnId(7) },
            Stamp::default(),
            work(),
        );
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
        outbox.hold(0, 0, send_to(1, 2));
        outbox.hold_durable(
            6,
            0,
            Message::Ack { tid: TxnId(3) },
            Stamp::default(),
            work(),
        );
        let held = outbox.drain();
        assert_eq!(tids(&held), vec![2, 1]);
        assert!(outbox.release(u64::MAX).is_empty());
    }
}
