//! The network between the nodes: inboxes, and the work tokens that tell when it is
//! quiet.
//!
//! # The seam
//!
//! Node threads and clients reach each other only through a [`Net`]: a node's inbox is
//! attached while it runs and detached when it dies; protocol messages go by
//! [`Net::send`], client requests by [`Net::request`] (and, handed on by the node that
//! began their transaction, [`Net::forward`]), answers through a per-request
//! [`Mailbox`]. Anything that can provide these operations with the promises below (a
//! TCP transport between processes, or a simulator that picks the delivery order from a
//! seed) can replace this in-process one:
//!
//! - **In order per link.** Two messages from one node to another arrive in the order
//!   they were sent; there is no promise across links. (The node's outbox keeps that
//!   order through its fsyncs; see `runtime::outbox`.)
//! - **Lost only to a down node.** A message to a node that is down, or that dies with
//!   it unread, is dropped, as a crashed machine drops packets; the network never loses
//!   one otherwise (the problem statement assumes a reliable network). A sender that must
//!   learn of a loss (`Message::reports_loss`) is told by an `Input::Undelivered`.
//! - **Work is counted.** Every item in flight owns a [`Work`] token, and the network is
//!   quiet when none is alive (see `work`).
//!
//! A node running as its own process (`process`) has one inbox here, its own; its
//! protocol messages to the other nodes go to a [`Remote`] (the TCP transport,
//! `wire::tcp`), which keeps the same promises between processes, and what arrives from
//! them is posted into the inbox. A message handed to the remote ends its work token
//! here: the other process counts its own work.
//!
//! # Work and settle
//!
//! Each envelope in an inbox carries its token; so does each held outbox item, each
//! syncer request, each reply on its way, a recovery, and a shell command running. A
//! node thread drops the tokens of a batch's mail only after that batch's effects hold
//! their own. So [`Net::is_quiet`] means every effect of what was sent has happened,
//! which is what `Cluster::settle` waits for, and [`Net::outstanding`] names what is left
//! when it waits long. No count is kept by hand: a token that is not dropped is a value
//! still owned by someone, and a node thread that dies (even by panicking) drops its own.
//!
//! # Held links
//!
//! For tests, a link from one node to another can be held back (`held`, reached through
//! `Cluster::hold_link`): protocol messages on it wait, in order, while every other link
//! flows, and go out in order when it is released. Held mail is not in flight (its token
//! ends as it is held: `Cluster::settle` does not wait for it); mail held for a node that
//! dies is dropped, as the crash would have dropped it on arrival, and mail sent on a
//! held link to a node that is down is lost at once, as on any link (it is not kept for
//! the node's next incarnation; the simulator's links do the same).
//!
//! # Load
//!
//! The net also counts the clients waiting for an answer ([`Waiting`]): a node thread
//! reads it to decide whether to fsync itself or hand the fsync to its syncer. It is per
//! net, so per cluster.

mod activity;
mod held;
mod mail;
mod mailbox;
mod steps;
mod work;

pub use activity::Activity;
pub use mail::{Control, Envelope, Mail, NodeStatus};
pub use mailbox::{Bell, Mailbox, ReplySender, Waiting, mailbox, mailbox_ringing};
pub use steps::{Pending, Steps};
pub use work::{Label, Ledger, What, Work};

use crate::error::{Error, Result};
use crate::message::{Message, Reply, Request};
use crate::node::Input;
use crate::trace::{TraceEvent, Tracer};
use crate::types::{NodeId, Timestamp};
use crossbeam::channel::Sender;
use held::HeldLinks;
use parking_lot::{Mutex, RwLock};
use std::sync::Arc;

/// Where protocol messages to nodes in other processes go: the TCP transport of a node
/// process (`wire::tcp::Transport`). It keeps the seam's promises (see the module doc),
/// reporting a loss that must be reported back through the net
/// ([`Net::undelivered`]).
pub trait Remote: Send + Sync {
    /// Sends `message` from this process's node to `to`, in another process; false if
    /// it was dropped at once because `to` is down (what the trace shows).
    fn send(&self, to: NodeId, message: Message, stamp: Stamp) -> bool;
    /// Carries mail other than a protocol message to `to`, in another process: a client
    /// request (a shell's, or one a coordinator hands on to a key's owner) or a control
    /// request of a shell. Gives it back if `to` cannot be reached, or if the mail has
    /// no meaning across processes.
    fn post(&self, to: NodeId, mail: Mail) -> std::result::Result<(), Mail>;
    /// Whether `to` can be reached now.
    fn is_up(&self, to: NodeId) -> bool;
    /// Why `to` cannot be reached, in words for the user (its address, what dialling
    /// it said), if the remote knows.
    fn down_detail(&self, _to: NodeId) -> Option<String> {
        None
    }
}

/// What travels with a protocol message besides its content.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stamp {
    /// The sender's logical clock when it sent the message: the receiver's clock moves
    /// up to it (`clock::Lamport`).
    pub clock: Timestamp,
    /// The causal depth of what caused it, for the trace's indentation.
    pub depth: u32,
}
/// The network of one cluster. See the module doc.
pub struct Net {
    nodes: u32,
    /// Each node's inbox, `None` while it is down.
    inboxes: RwLock<Vec<Option<Sender<Envelope>>>>,
    /// Per node that is down, what a request to it is told, if more than that it is
    /// crashed (a node thread that panicked).
    down: Mutex<Vec<Option<String>>>,
    /// The work in flight.
    ledger: Arc<Ledger>,
    /// Links held back by fault injection, with the messages waiting on them.
    held: HeldLinks,
    /// Step mode's queue of messages and fsyncs (see `steps`).
    pub steps: Steps,
    /// Clients waiting for an answer now.
    waiting: Waiting,
    /// The trace hook: the net reports each message it carries, and node threads their
    /// log writes and crashes.
    pub tracer: Tracer,
    /// In a node process, its one local node and where messages to the others go; in a
    /// shell connected to node processes, no local node. Set once, before any node
    /// starts; a `OnceLock`, so the embedded cluster's hot path pays one atomic load for
    /// it.
    remote: std::sync::OnceLock<(Option<NodeId>, Arc<dyn Remote>)>,
}

impl Net {
    /// A network of `nodes` nodes, all down.
    pub fn new(nodes: u32) -> Net {
        Net {
            nodes,
            inboxes: RwLock::new(vec![None; nodes as usize]),
            down: Mutex::new(vec![None; nodes as usize]),
            ledger: Ledger::new(nodes),
            held: HeldLinks::default(),
            steps: Steps::default(),
            waiting: Waiting::default(),
            tracer: Tracer::default(),
            remote: std::sync::OnceLock::new(),
        }
    }

    /// Makes this the network of one node process: `local` is the only node with an inbox
    /// here, and protocol messages to every other node go to `remote`. Once only: a net
    /// that has a remote keeps it (the error names the node it was set for).
    pub fn set_remote(&self, local: Option<NodeId>, remote: Arc<dyn Remote>) -> Result<()> {
        self.remote.set((local, remote)).map_err(|_| {
            Error::InvalidInput("this network already carries mail to other processes".into())
        })
    }

    /// Where mail to `to` goes if `to` is in another process.
    fn remote_for(&self, to: NodeId) -> Option<&Arc<dyn Remote>> {
        match self.remote.get() {
            Some((local, remote)) if *local != Some(to) => Some(remote),
            _ => None,
        }
    }

    /// Whether every node of this network is in other processes (a shell connected to
    /// node processes).
    pub fn is_remote(&self) -> bool {
        matches!(self.remote.get(), Some((None, _)))
    }

    /// Starts a unit of work labelled `label` (one that is not mail: a recovery, a shell
    /// command, an fsync asked for).
    pub fn work(&self, label: Label) -> Work {
        Work::start(&self.ledger, label)
    }

    /// Puts mail in `node`'s inbox with its work token; gives both back if the node is
    /// down.
    pub fn deliver(
        &self,
        node: NodeId,
        mail: Mail,
        work: Work,
    ) -> std::result::Result<(), Envelope> {
        if let Some(remote) = self.remote_for(node) {
            // The other process counts its own work: this token ends here, or comes
            // back with the mail.
            return remote
                .post(node, mail)
                .map_err(|mail| Envelope { mail, work });
        }
        let envelope = Envelope { mail, work };
        let inboxes = self.inboxes.read();
        match inboxes.get(node as usize) {
            Some(Some(inbox)) => inbox.send(envelope).map_err(|error| error.into_inner()),
            _ => Err(envelope),
        }
    }

    /// Puts mail in `node`'s inbox as new work; gives it back if the node is down.
    pub fn post(&self, node: NodeId, mail: Mail) -> std::result::Result<(), Mail> {
        let work = self.work(mail.label(node));
        self.deliver(node, mail, work)
            .map_err(|envelope| envelope.mail)
    }

    /// Sends a protocol message as the work `work`, tracing it; a message to a down node
    /// is lost (and the sender told, if it must know: `Message::reports_loss`), held link
    /// or not. On a held link to a node that is up it waits instead, out of flight (see
    /// the module doc). The message carries `clock`, the sender's clock reading.
    pub fn send(&self, from: NodeId, to: NodeId, message: Message, stamp: Stamp, work: Work) {
        // In step mode a message waits in the queue, unless its node is down: then it is
        // lost now, as the network promises.
        let (message, stamp) = if self.steps.is_on() && self.is_up(to) {
            match self.steps.offer(from, to, message, stamp) {
                Some(sent) => sent,
                None => return,
            }
        } else {
            (message, stamp)
        };
        let to_is_up = || self.is_up(to);
        let Some((message, stamp)) = self.held.offer(from, to, message, stamp, to_is_up) else {
            return;
        };
        self.transmit(from, to, message, stamp, work);
    }

    /// Puts a protocol message in `to`'s inbox now (or hands it to the remote, if `to` is
    /// in another process), tracing it.
    fn transmit(&self, from: NodeId, to: NodeId, message: Message, stamp: Stamp, work: Work) {
        let depth = stamp.depth;
        let traced =
            (self.tracer.enabled() && message.traced()).then(|| (message.label(), message.tid()));
        let dropped = match self.remote_for(to) {
            // The other process counts its own work: this token ends here.
            Some(remote) => !remote.send(to, message, stamp),
            None => self.deliver_local(from, to, message, stamp, work),
        };
        if let Some((label, tid)) = traced {
            self.tracer.emit(|| TraceEvent::Message {
                depth,
                from,
                to,
                label,
                tid,
                dropped,
            });
        }
    }

    /// Puts a protocol message in `to`'s inbox; whether it was dropped (`to` is down).
    fn deliver_local(
        &self,
        from: NodeId,
        to: NodeId,
        message: Message,
        stamp: Stamp,
        work: Work,
    ) -> bool {
        let Stamp { clock, depth } = stamp;
        let notice = message.reports_loss().then(|| message.clone());
        let input = Input::Peer {
            from,
            message,
            clock,
        };
        let result = self.deliver(to, Mail::Input(input, depth + 1), work);
        let dropped = result.is_err();
        if let (Err(envelope), Some(message)) = (result, notice) {
            self.undelivered(from, to, message, depth, envelope.work);
        }
        dropped
    }

    /// Tells `from` that `message`, which it sent, never reached `to`: `to` was down, or
    /// died before reading it. The notice goes on as the message's work.
    pub fn undelivered(
        &self,
        from: NodeId,
        to: NodeId,
        message: Message,
        depth: u32,
        mut work: Work,
    ) {
        work.relabel(Label::on(What::Message, from));
        let input = Input::Undelivered { to, message };
        let _ = self.deliver(from, Mail::Input(input, depth + 1), work);
    }

    /// Sends a client request to `node`.
    pub fn request(&self, node: NodeId, request: Request, reply: ReplySender) -> Result<()> {
        self.check_node(node)?;
        (self.post(node, Mail::Client(request, reply))).map_err(|_| self.down_error(node))
    }

    /// Hands a client's request on to `node` (from the node that began its transaction),
    /// as the work `work`. If `node` is down, gives back the reply channel with the error
    /// to answer on it, and the work to answer with.
    pub fn forward(
        &self,
        node: NodeId,
        request: Request,
        reply: ReplySender,
        work: Work,
    ) -> std::result::Result<(), (ReplySender, Error, Work)> {
        if let Err(error) = self.check_node(node) {
            return Err((reply, error, work));
        }
        match self.deliver(node, Mail::Client(request, reply), work) {
            Err(Envelope {
                mail: Mail::Client(_, reply),
                work,
            }) => Err((reply, self.down_error(node), work)),
            _ => Ok(()),
        }
    }

    /// Checks that `node` exists in this network.
    pub fn check_node(&self, node: NodeId) -> Result<()> {
        if node < self.nodes {
            return Ok(());
        }
        let last = self.nodes - 1;
        Err(Error::InvalidInput(format!(
            "there is no node {node}: this cluster has {} nodes, numbered 0 to {last}",
            self.nodes
        )))
    }

    /// The error for a request to `node`, which is down.
    pub fn down_error(&self, node: NodeId) -> Error {
        let detail = (self.down.lock().get(node as usize).cloned().flatten()).or_else(|| {
            self.remote_for(node)
                .and_then(|remote| remote.down_detail(node))
        });
        Error::NodeDown {
            node,
            detail: detail.unwrap_or_else(|| "it is crashed; RESTART it first".into()),
        }
    }

    /// Makes `node` reachable through `inbox`.
    pub fn attach(&self, node: NodeId, inbox: Sender<Envelope>) {
        if let Some(slot) = self.down.lock().get_mut(node as usize) {
            *slot = None;
        }
        self.inboxes.write()[node as usize] = Some(inbox);
    }

    /// Makes `node` unreachable; mail sent from now on is dropped, and so is mail held for
    /// it on a held link.
    pub fn detach(&self, node: NodeId) {
        self.inboxes.write()[node as usize] = None;
        let mut lost = self.held.drop_mail_to(node);
        lost.extend(self.steps.drop_for(node));
        for (from, message, depth) in lost {
            if message.reports_loss() {
                let work = self.work(Label::on(What::Message, from));
                self.undelivered(from, node, message, depth, work);
            }
        }
    }

    /// Lets a step go (see `steps`): a message is sent now (lost if its receiver is
    /// down), an fsync is asked of its node.
    pub fn release_step(&self, pending: Pending) {
        match pending {
            Pending::Message {
                from,
                to,
                message,
                stamp,
            } => {
                let work = self.work(Label::on(What::Message, to));
                self.transmit(from, to, message, stamp, work);
            }
            Pending::Fsync { node, .. } => {
                let _ = self.post(node, Mail::Control(Control::StepFsync));
            }
        }
    }

    /// As [`Net::detach`], and requests to `node` are told `detail` (why it is down and
    /// what to do) until it is attached again.
    pub fn detach_because(&self, node: NodeId, detail: String) {
        if let Some(slot) = self.down.lock().get_mut(node as usize) {
            *slot = Some(detail);
        }
        self.detach(node);
    }

    /// Starts holding back protocol messages from `from` to `to`: the first whose label
    /// starts with `label` (any, if it is empty) and every later one on that link wait
    /// until [`Net::release_link`]. Fault injection, for tests.
    pub fn hold_link(&self, from: NodeId, to: NodeId, label: &str) -> Result<()> {
        self.check_node(from)?;
        self.check_node(to)?;
        self.held.hold(from, to, label);
        Ok(())
    }

    /// Stops holding the link from `from` to `to` and sends what waited on it, in order
    /// (dropped if `to` is down); returns how many messages waited.
    pub fn release_link(&self, from: NodeId, to: NodeId) -> usize {
        self.held.release(from, to, |message, stamp| {
            let work = self.work(Label::on(What::Message, to));
            self.transmit(from, to, message, stamp, work)
        })
    }

    /// The held links, as `(from, to, messages waiting)`.
    pub fn held_links(&self) -> Vec<(NodeId, NodeId, usize)> {
        self.held.links()
    }

    /// Whether `node` is up.
    pub fn is_up(&self, node: NodeId) -> bool {
        if let Some(remote) = self.remote_for(node) {
            return remote.is_up(node);
        }
        (self.inboxes.read().get(node as usize)).is_some_and(Option::is_some)
    }

    /// Whether no work is in flight.
    pub fn is_quiet(&self) -> bool {
        self.ledger.is_quiet()
    }

    /// The work in flight, one line per kind and node (`1 message to node 2`).
    pub fn outstanding(&self) -> Vec<String> {
        self.ledger.outstanding()
    }

    /// How many clients are waiting for an answer now: a measure of load.
    pub fn receivers_waiting(&self) -> usize {
        self.waiting.count()
    }

    /// A handle for one shell session, whose commands count as work in flight.
    pub fn activity(&self) -> Activity {
        Activity::new(self.ledger.clone())
    }

    /// Waits until `bell` rings or `timeout` passes, counted as `receivers` clients
    /// waiting on this net (a pipelined client's transactions in flight).
    pub fn wait_bell(&self, bell: &Bell, receivers: usize, timeout: std::time::Duration) -> bool {
        bell.wait(&self.waiting, receivers, timeout)
    }

    /// Waits for the next reply in `mailbox`, counted as a client waiting on this net.
    pub fn receive(&self, mailbox: &Mailbox) -> Option<(Reply, Work)> {
        mailbox.recv(&self.waiting)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// A client of one net blocks for its answer; another net in the process must not
    /// count it (its nodes would think themselves under load and hand fsyncs over).
    #[test]
    fn a_receiver_waiting_on_another_net_is_not_counted_here() {
        let (busy, idle) = (Net::new(1), Net::new(1));
        let (sender, answers) = mailbox();
        std::thread::scope(|scope| {
            scope.spawn(|| busy.receive(&answers));
            let start = Instant::now();
            while busy.receivers_waiting() == 0 && start.elapsed() < Duration::from_secs(5) {
                std::thread::yield_now();
            }
            assert_eq!(busy.receivers_waiting(), 1, "the client waits on its net");
            assert_eq!(idle.receivers_waiting(), 0, "and not on the other");
            drop(sender);
        });
        assert_eq!(busy.receivers_waiting(), 0);
    }

    /// A message to a down node ends its work as it is dropped; one on a held link is out
    /// of flight while it waits, and in flight again once released.
    #[test]
    fn work_ends_with_lost_mail_and_pauses_on_a_held_link() {
        let net = Net::new(2);
        let work = net.work(Label::on(What::Message, 1));
        net.send(0, 1, Message::RestartAck, Stamp::default(), work);
        assert!(net.is_quiet(), "{:?}", net.outstanding());
        let (inbox, received) = crossbeam::channel::unbounded();
        net.attach(1, inbox);
        net.hold_link(0, 1, "").expect("nodes exist");
        net.send(
            0,
            1,
            Message::RestartAck,
            Stamp::default(),
            net.work(Label::on(What::Message, 1)),
        );
        assert!(net.is_quiet(), "held mail is not in flight");
        assert_eq!(net.release_link(0, 1), 1);
        assert_eq!(net.outstanding(), vec!["1 message to node 1"]);
        let envelope = received.try_recv().expect("the released message");
        drop(envelope);
        assert!(net.is_quiet());
    }

    /// A message to a down node is lost on a held link as on any other, and its sender
    /// told if it must know; the link does not keep it for the node's next incarnation
    /// (which would receive it, and what queued behind it, only if the node was already
    /// down when the message was sent rather than dying just after).
    #[test]
    fn a_held_link_loses_mail_to_a_down_node() {
        let net = Net::new(2);
        let (inbox, sent_back) = crossbeam::channel::unbounded();
        net.attach(0, inbox);
        net.hold_link(0, 1, "").expect("nodes exist");
        let restarted = Message::Restarted { live_from: 1 };
        let work = net.work(Label::on(What::Message, 1));
        net.send(0, 1, restarted, Stamp::default(), work);
        assert_eq!(net.held_links(), vec![(0, 1, 0)], "nothing held for node 1");
        let notice = sent_back
            .try_recv()
            .expect("the sender is told of the loss");
        let told = matches!(
            notice.mail,
            Mail::Input(Input::Undelivered { to: 1, .. }, _)
        );
        assert!(told, "the notice says the message to node 1 was lost");
        let (inbox, received) = crossbeam::channel::unbounded();
        net.attach(1, inbox);
        assert_eq!(net.release_link(0, 1), 0);
        assert!(
            received.try_recv().is_err(),
            "node 1 restarted gets nothing"
        );
    }
}
