//! What the node threads share: the routing table of inboxes, the count of undelivered
//! work (for `Cluster::settle`), the clock that timeouts are measured on, the settings
//! and the tracer. Nodes share nothing else: no node reads another's state; timestamps,
//! prepare floors and lock waits travel as messages (`node::floors`, `node::detect`).
//!
//! A message to a node that is down is dropped, as a crashed machine drops packets; the
//! network never loses one otherwise (the problem statement assumes a reliable network).
//!
//! For tests, a link from one node to another can be held back ([`HeldLinks`], reached
//! through `Cluster::hold_link`): protocol messages on it wait, in order, while every
//! other link flows, and go out in order when it is released. Held mail is not in flight
//! (`Cluster::settle` does not wait for it); mail held for a node that dies is dropped, as
//! the crash would have dropped it on arrival.

use crate::clock::Clock;
use crate::config::Settings;
use crate::crash::CrashPoint;
use crate::error::{Error, Result};
use crate::lock::KeyLocks;
use crate::mailbox::ReplySender;
use crate::message::{Message, Request};
use crate::node::Input;
use crate::trace::{TraceEvent, Tracer};
use crate::types::{NodeId, Timestamp, TxnId};
use crossbeam::channel::Sender;
use parking_lot::RwLock;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A node's status, for `STATUS`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
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
}

/// Requests to a node thread from the cluster, outside the protocol.
pub enum Control {
    /// Die now, losing everything not fsynced.
    Crash,
    /// Die the next time the protocol reaches this point.
    Arm(CrashPoint),
    /// Write a checkpoint now.
    Checkpoint(Sender<Result<()>>),
    /// Report status.
    Status(Sender<NodeStatus>),
    /// Report the lock table.
    Locks(Sender<Vec<KeyLocks>>),
    /// Report the committed data, sorted by key.
    Data(Sender<Vec<(String, String)>>),
    /// Make the node's next log write fail as a full disk would (fault injection).
    FailNextWrite,
    /// Nothing but the end-of-batch work (deadlock check, published state): a poke
    /// after the settings change.
    Wake,
    /// Stop cleanly, flushing the log.
    Shutdown,
}

/// An item in a node's inbox.
pub enum Mail {
    /// A protocol input, with its causal depth.
    Input(Input, u32),
    /// A client request and where to reply.
    Client(Request, ReplySender),
    /// A control request.
    Control(Control),
}

/// The state every node thread and client shares.
pub struct Shared {
    /// The number of nodes.
    pub nodes: u32,
    /// The data directory.
    pub dir: PathBuf,
    /// Each node's inbox, `None` while it is down.
    inboxes: RwLock<Vec<Option<Sender<Mail>>>>,
    /// Mail sent and not yet fully handled.
    inflight: AtomicUsize,
    /// Links held back by fault injection, with the messages waiting on them.
    held: HeldLinks,
    /// The cluster's clock.
    pub clock: Clock,
    /// Settings the nodes read.
    pub settings: RwLock<Settings>,
    /// The trace hook.
    pub tracer: Tracer,
    /// Where the whole process aborts (`KV2PC_FAILPOINT`), if anywhere.
    pub failpoint: Option<(NodeId, CrashPoint)>,
    /// Per node, why it stopped on an error, until it restarts.
    failures: parking_lot::Mutex<Vec<Option<String>>>,
}

impl Shared {
    /// Shared state for a cluster of `nodes` nodes, all down.
    pub fn new(nodes: u32, dir: PathBuf, clock: Clock, settings: Settings) -> Shared {
        Shared {
            nodes,
            dir,
            inboxes: RwLock::new(vec![None; nodes as usize]),
            inflight: AtomicUsize::new(0),
            held: HeldLinks::default(),
            clock,
            settings: RwLock::new(settings),
            tracer: Tracer::default(),
            failpoint: None,
            failures: parking_lot::Mutex::new(vec![None; nodes as usize]),
        }
    }

    /// Records why `node` stopped (`None` clears it, at restart).
    pub fn set_failure(&self, node: NodeId, failure: Option<String>) {
        if let Some(slot) = self.failures.lock().get_mut(node as usize) {
            *slot = failure;
        }
    }

    /// Why `node` stopped on an error, if it did.
    pub fn failure(&self, node: NodeId) -> Option<String> {
        self.failures.lock().get(node as usize).cloned().flatten()
    }

    /// Puts mail in `node`'s inbox; gives it back if the node is down.
    pub fn deliver(&self, node: NodeId, mail: Mail) -> std::result::Result<(), Mail> {
        let inboxes = self.inboxes.read();
        match inboxes.get(node as usize) {
            Some(Some(inbox)) => {
                self.inflight.fetch_add(1, Ordering::SeqCst);
                inbox.send(mail).map_err(|error| {
                    self.inflight.fetch_sub(1, Ordering::SeqCst);
                    error.into_inner()
                })
            }
            _ => Err(mail),
        }
    }

    /// Sends a protocol message, tracing it; a message to a down node is lost (and the
    /// sender told, if it must know: `Message::reports_loss`). On a held link it waits
    /// instead (see [`HeldLinks`]).
    /// The message carries `clock`, the sender's clock reading.
    pub fn send(&self, from: NodeId, to: NodeId, message: Message, clock: Timestamp, depth: u32) {
        let Some((message, clock, depth)) = self.held.offer(from, to, message, clock, depth) else {
            return;
        };
        self.transmit(from, to, message, clock, depth);
    }

    /// Puts a protocol message in `to`'s inbox now, tracing it.
    fn transmit(&self, from: NodeId, to: NodeId, message: Message, clock: Timestamp, depth: u32) {
        let traced =
            (self.tracer.enabled() && message.traced()).then(|| (message.label(), message.tid()));
        let notice = message.reports_loss().then(|| message.clone());
        let input = Input::Peer {
            from,
            message,
            clock,
        };
        let dropped = self.deliver(to, Mail::Input(input, depth + 1)).is_err();
        if dropped && let Some(message) = notice {
            self.undelivered(from, to, message, depth);
        }
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

    /// Tells `from` that `message`, which it sent, never reached `to`: `to` was down, or
    /// died before reading it.
    pub fn undelivered(&self, from: NodeId, to: NodeId, message: Message, depth: u32) {
        let input = Input::Undelivered { to, message };
        let _ = self.deliver(from, Mail::Input(input, depth + 1));
    }

    /// Sends a client request to `node`.
    pub fn request(&self, node: NodeId, request: Request, reply: ReplySender) -> Result<()> {
        self.check_node(node)?;
        (self.deliver(node, Mail::Client(request, reply))).map_err(|_| crashed(node))
    }

    /// Hands a client's request on to `node` (from the node that began its transaction).
    /// If `node` is down, gives back the reply channel with the error to answer on it.
    pub fn forward(
        &self,
        node: NodeId,
        request: Request,
        reply: ReplySender,
    ) -> std::result::Result<(), (ReplySender, Error)> {
        if let Err(error) = self.check_node(node) {
            return Err((reply, error));
        }
        match self.deliver(node, Mail::Client(request, reply)) {
            Err(Mail::Client(_, reply)) => Err((reply, crashed(node))),
            _ => Ok(()),
        }
    }

    /// Checks that `node` exists in this cluster.
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

    /// Makes `node` reachable through `inbox`.
    pub fn attach(&self, node: NodeId, inbox: Sender<Mail>) {
        self.inboxes.write()[node as usize] = Some(inbox);
    }

    /// Makes `node` unreachable; mail sent from now on is dropped, and so is mail held for
    /// it on a held link.
    pub fn detach(&self, node: NodeId) {
        self.inboxes.write()[node as usize] = None;
        for (from, message, depth) in self.held.drop_mail_to(node) {
            self.undelivered(from, node, message, depth);
        }
    }

    /// Starts holding back protocol messages from `from` to `to`: the first whose label
    /// starts with `label` (any, if it is empty) and every later one on that link wait
    /// until [`Shared::release_link`]. Fault injection, for tests.
    pub fn hold_link(&self, from: NodeId, to: NodeId, label: &str) -> Result<()> {
        self.check_node(from)?;
        self.check_node(to)?;
        self.held.hold(from, to, label);
        Ok(())
    }

    /// Stops holding the link from `from` to `to` and sends what waited on it, in order
    /// (dropped if `to` is down); returns how many messages waited.
    pub fn release_link(&self, from: NodeId, to: NodeId) -> usize {
        self.held.release(from, to, |message, clock, depth| {
            self.transmit(from, to, message, clock, depth)
        })
    }

    /// The held links, as `(from, to, messages waiting)`.
    pub fn held_links(&self) -> Vec<(NodeId, NodeId, usize)> {
        self.held.links()
    }

    /// Whether `node` is up.
    pub fn is_up(&self, node: NodeId) -> bool {
        self.inboxes
            .read()
            .get(node as usize)
            .is_some_and(Option::is_some)
    }

    /// Counts `count` mail items as fully handled.
    pub fn handled(&self, count: usize) {
        self.inflight.fetch_sub(count, Ordering::SeqCst);
    }

    /// Counts work that is not mail (a recovery in progress) as in flight.
    pub fn begin_work(&self) {
        self.inflight.fetch_add(1, Ordering::SeqCst);
    }

    /// Whether no mail is in flight.
    pub fn is_quiet(&self) -> bool {
        self.inflight.load(Ordering::SeqCst) == 0
    }
}

/// The error for a request to a node that is down.
fn crashed(node: NodeId) -> Error {
    Error::NodeDown {
        node,
        detail: "it is crashed; RESTART it first".into(),
    }
}

/// One held link: the label that starts holding, and what waits, in order.
struct Hold {
    /// Holding starts at the first message whose label starts with this.
    label: String,
    /// The messages held, with their senders' clocks and causal depths, oldest first.
    waiting: std::collections::VecDeque<(Message, Timestamp, u32)>,
}

/// Links held back by fault injection (`Cluster::hold_link`), by `(from, to)`.
///
/// The network promises in-order delivery between two nodes, so a delay is a whole link
/// held from one message on, not a message overtaken by later ones. Once a link holds a
/// message, every later one on it waits behind it; `release` sends them under the same
/// lock that `offer` takes, so nothing sent meanwhile can overtake them.
#[derive(Default)]
pub struct HeldLinks {
    /// Whether any link is held: the common path takes no lock.
    any: std::sync::atomic::AtomicBool,
    links: parking_lot::Mutex<std::collections::BTreeMap<(NodeId, NodeId), Hold>>,
}

impl HeldLinks {
    fn hold(&self, from: NodeId, to: NodeId, label: &str) {
        let mut links = self.links.lock();
        let hold = links.entry((from, to)).or_insert_with(|| Hold {
            label: String::new(),
            waiting: Default::default(),
        });
        if hold.waiting.is_empty() {
            hold.label = label.to_string();
        }
        self.any.store(true, Ordering::SeqCst);
    }

    /// Keeps the message if its link holds it; gives it back to send now otherwise.
    fn offer(
        &self,
        from: NodeId,
        to: NodeId,
        message: Message,
        clock: Timestamp,
        depth: u32,
    ) -> Option<(Message, Timestamp, u32)> {
        if !self.any.load(Ordering::SeqCst) {
            return Some((message, clock, depth));
        }
        let mut links = self.links.lock();
        let Some(hold) = links.get_mut(&(from, to)) else {
            return Some((message, clock, depth));
        };
        if hold.waiting.is_empty() && !message.label().starts_with(&hold.label) {
            return Some((message, clock, depth));
        }
        hold.waiting.push_back((message, clock, depth));
        None
    }

    fn release(
        &self,
        from: NodeId,
        to: NodeId,
        mut send: impl FnMut(Message, Timestamp, u32),
    ) -> usize {
        let mut links = self.links.lock();
        let Some(hold) = links.remove(&(from, to)) else {
            return 0;
        };
        self.any.store(!links.is_empty(), Ordering::SeqCst);
        let count = hold.waiting.len();
        for (message, clock, depth) in hold.waiting {
            send(message, clock, depth);
        }
        count
    }

    /// Drops the mail held for `node`, returning what of it its senders must hear was
    /// lost (`Message::reports_loss`), with their ids.
    fn drop_mail_to(&self, node: NodeId) -> Vec<(NodeId, Message, u32)> {
        let mut links = self.links.lock();
        let mut lost = Vec::new();
        for ((from, to), hold) in links.iter_mut() {
            if *to == node {
                let dropped = hold.waiting.drain(..);
                let told = dropped.filter(|(message, ..)| message.reports_loss());
                lost.extend(told.map(|(message, _, depth)| (*from, message, depth)));
            }
        }
        lost
    }

    fn links(&self) -> Vec<(NodeId, NodeId, usize)> {
        let links = self.links.lock();
        (links.iter())
            .map(|((from, to), hold)| (*from, *to, hold.waiting.len()))
            .collect()
    }
}
