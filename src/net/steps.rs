//! Step mode (`STEP ON` in the shell): every protocol message and every fsync a node
//! asks for waits in one numbered queue, until someone lets it go.
//!
//! # What waits, and what letting it go does
//!
//! - A **message** from one node to another (`Net::send`) is queued instead of put in
//!   the inbox; [`Steps::take`] hands it back to be sent, traced as it arrives, as if the
//!   network had taken that long. Links stay in order: letting a message go lets every
//!   message queued ahead of it on its link go first (the network promises order per
//!   link; the caller is told). Client requests and answers do not wait: the clients are
//!   the learner's hands, not part of the protocol.
//! - An **fsync** is queued by the node runtime when step mode is on and something waits
//!   for the records of a batch to be durable (`runtime`): the records are written to
//!   the file, but not synced, and what depends on them stays in the node's outbox. Its
//!   item names the records it would make durable. Letting it go asks the node to fsync
//!   (`Control::StepFsync`), which makes every record written so far durable, so it also
//!   completes the node's earlier fsyncs still queued ([`Steps::covered`]).
//! - A node that dies loses what was queued for it: messages to it, and its fsyncs (its
//!   log is cut to what was fsynced, as a crash does). The lines saying so wait in
//!   [`Steps::take_notes`] for the shell. Messages the dead node sent before it died are
//!   on the wire and still arrive.
//! - On a lossy network ([`Steps::set_lossy`]) a queued message can be dropped instead,
//!   and its sender is not told, as a lost packet tells no one; an fsync cannot be
//!   dropped: a disk does not forget a sync it was asked for, only one it never got.
//!
//! Every order a learner picks is one the real network and disks could produce, so what
//! follows is a valid execution of the real code.
//!
//! # Work
//!
//! A queued item holds no work token (see `work`): the cluster is settled while it
//! waits, as with held links. What waits behind a queued fsync in a node's outbox has
//! its token parked ([`Work::park`](super::Work::park)) for the same reason.
//!
//! # Limits
//!
//! One queue for the whole cluster, under one lock: step mode is for a learner's pace,
//! not for load. Messages a node sends to itself wait like any other.

use super::Stamp;
use crate::message::Message;
use crate::types::NodeId;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

/// What waits in the queue.
#[derive(Clone, Debug)]
pub enum Pending {
    /// A protocol message on its way.
    Message {
        /// The sender.
        from: NodeId,
        /// The receiver.
        to: NodeId,
        /// The message.
        message: Message,
        /// What travels with it.
        stamp: Stamp,
    },
    /// An fsync a node asked for.
    Fsync {
        /// The node.
        node: NodeId,
        /// The log position it makes durable.
        lsn: u64,
        /// The records written since the node's last queued fsync (`Prepare T4`).
        records: Vec<String>,
    },
}

impl Pending {
    /// The node this waits to reach (a message's receiver, an fsync's node).
    pub fn node(&self) -> NodeId {
        match self {
            Pending::Message { to, .. } => *to,
            Pending::Fsync { node, .. } => *node,
        }
    }

    /// The link a message is on.
    fn link(&self) -> Option<(NodeId, NodeId)> {
        match self {
            Pending::Message { from, to, .. } => Some((*from, *to)),
            Pending::Fsync { .. } => None,
        }
    }
}

impl fmt::Display for Pending {
    /// `node0 -> node2  PREPARE T4`, `node1  fsync of Prepare T4`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pending::Message {
                from, to, message, ..
            } => {
                write!(f, "node{from} -> node{to}  {}", message.label())?;
                match message.tid() {
                    Some(tid) => write!(f, " {tid}"),
                    None => Ok(()),
                }
            }
            Pending::Fsync { node, records, .. } if records.is_empty() => {
                write!(f, "node{node}  fsync")
            }
            Pending::Fsync { node, records, .. } => {
                write!(f, "node{node}  fsync of {}", records.join(", "))
            }
        }
    }
}

/// The queue, by number.
#[derive(Default)]
struct Queue {
    next: u64,
    items: BTreeMap<u64, Pending>,
    /// Lines for the shell: what a crash lost, what an fsync completed besides itself.
    notes: Vec<String>,
}

/// The step queue of one network. See the module doc.
#[derive(Default)]
pub struct Steps {
    on: AtomicBool,
    lossy: AtomicBool,
    /// Whether the clock was manual before step mode made it so.
    clock_was_manual: AtomicBool,
    queue: parking_lot::Mutex<Queue>,
}

impl Steps {
    /// Whether step mode is on.
    pub fn is_on(&self) -> bool {
        self.on.load(Ordering::SeqCst)
    }

    /// Turns step mode on or off (off leaves the queue as it is: the caller lets it go).
    pub fn set_on(&self, on: bool) {
        self.on.store(on, Ordering::SeqCst);
    }

    /// Remembers whether the clock was manual before step mode (to restore it after).
    pub fn remember_clock(&self, was_manual: bool) {
        self.clock_was_manual.store(was_manual, Ordering::SeqCst);
    }

    /// Whether the clock was manual before step mode.
    pub fn clock_was_manual(&self) -> bool {
        self.clock_was_manual.load(Ordering::SeqCst)
    }

    /// Takes everything waiting, oldest first.
    pub fn take_all(&self) -> Vec<(u64, Pending)> {
        std::mem::take(&mut self.queue.lock().items)
            .into_iter()
            .collect()
    }

    /// Whether queued messages may be dropped.
    pub fn is_lossy(&self) -> bool {
        self.lossy.load(Ordering::SeqCst)
    }

    /// Allows or forbids dropping queued messages.
    pub fn set_lossy(&self, lossy: bool) {
        self.lossy.store(lossy, Ordering::SeqCst);
    }

    /// Queues a message if step mode is on; gives it back to send now otherwise.
    pub(super) fn offer(
        &self,
        from: NodeId,
        to: NodeId,
        message: Message,
        stamp: Stamp,
    ) -> Option<(Message, Stamp)> {
        if !self.is_on() {
            return Some((message, stamp));
        }
        self.push(Pending::Message {
            from,
            to,
            message,
            stamp,
        });
        None
    }

    /// Queues an fsync of `node` through `lsn`; returns its number.
    pub fn queue_fsync(&self, node: NodeId, lsn: u64, records: Vec<String>) -> u64 {
        self.push(Pending::Fsync { node, lsn, records })
    }

    fn push(&self, pending: Pending) -> u64 {
        let mut queue = self.queue.lock();
        queue.next += 1;
        let number = queue.next;
        queue.items.insert(number, pending);
        number
    }

    /// What waits, oldest first, with its number.
    pub fn list(&self) -> Vec<(u64, Pending)> {
        let queue = self.queue.lock();
        queue.items.iter().map(|(n, p)| (*n, p.clone())).collect()
    }

    /// Takes item `number` and, first, the messages queued ahead of it on its link, in
    /// the order they go. `None` if no such item waits.
    pub fn take(&self, number: u64) -> Option<Vec<(u64, Pending)>> {
        let mut queue = self.queue.lock();
        let link = queue.items.get(&number)?.link();
        let mut numbers: Vec<u64> = match link {
            Some(link) => (queue.items.range(..number))
                .filter(|(_, p)| p.link() == Some(link))
                .map(|(n, _)| *n)
                .collect(),
            None => Vec::new(),
        };
        numbers.push(number);
        Some(take_numbers(&mut queue, &numbers))
    }

    /// Takes everything waiting to reach `node`, oldest first.
    pub fn take_for(&self, node: NodeId) -> Vec<(u64, Pending)> {
        let mut queue = self.queue.lock();
        let numbers: Vec<u64> = (queue.items.iter())
            .filter(|(_, p)| p.node() == node)
            .map(|(n, _)| *n)
            .collect();
        take_numbers(&mut queue, &numbers)
    }

    /// Takes the oldest item, if any.
    pub fn take_oldest(&self) -> Option<(u64, Pending)> {
        self.queue.lock().items.pop_first()
    }

    /// Takes a message to drop it (lossy network), with nothing ahead of it: a lost
    /// packet does not take the ones before it along. `Err` says why it cannot be.
    pub fn take_to_drop(&self, number: u64) -> Result<Pending, String> {
        let mut queue = self.queue.lock();
        match queue.items.get(&number) {
            None => Err(format!(
                "nothing numbered {number} waits: SHOW QUEUE lists what does"
            )),
            Some(Pending::Fsync { .. }) => Err(format!(
                "{number} is an fsync, not a message: a disk does not lose a sync it was asked \
                 for. CRASH its node to lose what it never synced"
            )),
            Some(Pending::Message { .. }) if !self.is_lossy() => Err(
                "the network is reliable, as the problem statement assumes: SET network lossy \
                 first to let messages be lost"
                    .to_string(),
            ),
            Some(Pending::Message { .. }) => Ok(queue
                .items
                .remove(&number)
                .expect("the item was just found")),
        }
    }

    /// A node died: what waited to reach it is lost. Returns the messages, for their
    /// senders to be told where they must be (`Message::reports_loss`).
    pub(super) fn drop_for(&self, node: NodeId) -> Vec<(NodeId, Message, u32)> {
        let mut queue = self.queue.lock();
        let numbers: Vec<u64> = (queue.items.iter())
            .filter(|(_, p)| p.node() == node)
            .map(|(n, _)| *n)
            .collect();
        let mut lost = Vec::new();
        for (number, pending) in take_numbers(&mut queue, &numbers) {
            let line = match &pending {
                Pending::Fsync { records, .. } if !records.is_empty() => format!(
                    "lost {number} ({pending}): never synced, so the crash cut {} from the log",
                    if records.len() == 1 { "it" } else { "them" }
                ),
                Pending::Fsync { .. } => format!("lost {number} ({pending}): never synced"),
                Pending::Message { .. } => {
                    format!("lost {number} ({pending}): node {node} died before it arrived")
                }
            };
            queue.notes.push(line);
            if let Pending::Message {
                from,
                message,
                stamp,
                ..
            } = pending
            {
                lost.push((from, message, stamp.depth));
            }
        }
        lost
    }

    /// `node` has fsynced its log through `lsn`: its queued fsyncs that this covers are
    /// done, and leave the queue with a note.
    pub fn covered(&self, node: NodeId, lsn: u64) {
        let mut queue = self.queue.lock();
        let numbers: Vec<u64> = (queue.items.iter())
            .filter(|(_, p)| matches!(p, Pending::Fsync { node: n, lsn: l, .. } if *n == node && *l <= lsn))
            .map(|(n, _)| *n)
            .collect();
        for (number, pending) in take_numbers(&mut queue, &numbers) {
            (queue.notes).push(format!(
                "done {number} ({pending}): that fsync covered it too"
            ));
        }
    }

    /// The lines noted since the last call.
    pub fn take_notes(&self) -> Vec<String> {
        std::mem::take(&mut self.queue.lock().notes)
    }
}

fn take_numbers(queue: &mut Queue, numbers: &[u64]) -> Vec<(u64, Pending)> {
    (numbers.iter())
        .filter_map(|n| queue.items.remove(n).map(|p| (*n, p)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::TxnId;

    fn prepare(from: NodeId, to: NodeId, tid: u64) -> Pending {
        Pending::Message {
            from,
            to,
            message: Message::Abort { tid: TxnId(tid) },
            stamp: Stamp::default(),
        }
    }

    fn queued(steps: &Steps, pending: Pending) -> u64 {
        steps.push(pending)
    }

    #[test]
    fn a_message_goes_after_those_ahead_of_it_on_its_link_only() {
        let steps = Steps::default();
        let a = queued(&steps, prepare(0, 1, 1));
        let b = queued(&steps, prepare(0, 2, 1));
        let c = queued(&steps, prepare(0, 1, 2));
        let taken: Vec<u64> = steps.take(c).unwrap().into_iter().map(|(n, _)| n).collect();
        assert_eq!(taken, vec![a, c]);
        assert_eq!(steps.list().len(), 1);
        assert_eq!(steps.list()[0].0, b);
        assert!(steps.take(c).is_none());
    }

    #[test]
    fn a_crash_loses_what_waited_for_the_node_and_says_so() {
        let steps = Steps::default();
        queued(&steps, prepare(0, 1, 1));
        steps.queue_fsync(1, 10, vec!["Prepare T1".into()]);
        queued(&steps, prepare(1, 0, 1));
        assert_eq!(steps.drop_for(1).len(), 1);
        assert_eq!(steps.list().len(), 1, "what node 1 sent still arrives");
        let notes = steps.take_notes();
        assert_eq!(notes.len(), 2);
        assert!(notes[1].contains("never synced"), "{notes:?}");
    }

    #[test]
    fn an_fsync_completes_the_earlier_ones_of_its_node() {
        let steps = Steps::default();
        steps.queue_fsync(1, 10, vec![]);
        steps.queue_fsync(2, 10, vec![]);
        let later = steps.queue_fsync(1, 20, vec![]);
        steps.covered(1, 20);
        assert_eq!(steps.list().len(), 1);
        assert_eq!(steps.take_notes().len(), 2);
        assert!(steps.take(later).is_none());
    }

    #[test]
    fn only_a_message_on_a_lossy_network_can_be_dropped() {
        let steps = Steps::default();
        let message = queued(&steps, prepare(0, 1, 1));
        let fsync = steps.queue_fsync(1, 10, vec![]);
        assert!(
            steps
                .take_to_drop(message)
                .unwrap_err()
                .contains("SET network lossy")
        );
        steps.set_lossy(true);
        assert!(
            steps
                .take_to_drop(fsync)
                .unwrap_err()
                .contains("not a message")
        );
        assert!(steps.take_to_drop(99).unwrap_err().contains("SHOW QUEUE"));
        assert!(steps.take_to_drop(message).is_ok());
        assert!(steps.list().len() == 1);
    }
}
