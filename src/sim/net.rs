//! The simulated network: one first-in, first-out queue per link.
//!
//! A link runs from an [`Endpoint`] (a node or a client) to a node. What a node lets out
//! of its outbox, and what a client sends, is queued on its link; a [`Step::Deliver`]
//! hands the head of one link to its node. So per link delivery stays in order (the
//! protocol assumes FIFO links, as the runtime's held links keep), while the seed chooses
//! which link delivers next, and may leave one waiting for a while: every interleaving of
//! the links' queues is reachable, as it is in the threaded runtime, where any message
//! may be the next in a node's inbox.
//!
//! Answers to clients are not on links: a node's outbox lets them into the client's
//! mailbox in the order held, as the runtime's reply channel does, so a client sees its
//! transaction's id before the answer of the operation that began it.
//!
//! [`Step::Deliver`]: super::Step::Deliver

use crate::message::{Message, ReqId, Request};
use crate::types::NodeId;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;

/// A simulated client, by index.
pub type ClientId = usize;

/// Where a link starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Endpoint {
    /// A node.
    Node(NodeId),
    /// A client.
    Client(ClientId),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Node(node) => write!(f, "n{node}"),
            Endpoint::Client(client) => write!(f, "c{client}"),
        }
    }
}

/// What travels on a link.
#[derive(Clone, Debug)]
pub enum Packet {
    /// A protocol message from a node, with the sender's clock when it sent it.
    Peer(Message, crate::types::Timestamp),
    /// A client's request, sent by the client or handed on by a node.
    Request {
        /// Its ticket, which names the client to answer.
        req: ReqId,
        /// The request.
        request: Request,
    },
    /// The news that `message`, sent by the link's receiver, was lost to the link's
    /// sender, which was down (only for `Message::reports_loss` messages).
    Lost(Message),
}

impl Packet {
    /// The packet as a trace shows it.
    pub fn label(&self) -> String {
        match self {
            Packet::Peer(message, _) => match message.tid() {
                Some(tid) => format!("{} {tid}", message.label()),
                None => message.label(),
            },
            Packet::Request { req, request } => {
                format!("request #{req} {}", super::node::request_label(request))
            }
            Packet::Lost(message) => format!("lost {}", message.label()),
        }
    }
}

/// Every link's queue.
#[derive(Clone, Debug, Default)]
pub struct Net {
    links: BTreeMap<(Endpoint, NodeId), VecDeque<Packet>>,
}

impl Net {
    /// Queues `packet` at the tail of the link from `from` to `to`.
    pub fn push(&mut self, from: Endpoint, to: NodeId, packet: Packet) {
        self.links.entry((from, to)).or_default().push_back(packet);
    }

    /// Takes the head of the link from `from` to `to`.
    pub fn pop(&mut self, from: Endpoint, to: NodeId) -> Option<Packet> {
        let queue = self.links.get_mut(&(from, to))?;
        let packet = queue.pop_front();
        if queue.is_empty() {
            self.links.remove(&(from, to));
        }
        packet
    }

    /// The links with something to deliver, in a fixed order.
    pub fn busy(&self) -> impl Iterator<Item = (Endpoint, NodeId)> + '_ {
        self.links.keys().copied()
    }

    /// The head of a link, if any.
    pub fn head(&self, from: Endpoint, to: NodeId) -> Option<&Packet> {
        self.links.get(&(from, to)).and_then(VecDeque::front)
    }

    /// Takes everything queued for `to` (a node that died), link by link.
    pub fn drain_to(&mut self, to: NodeId) -> Vec<(Endpoint, Packet)> {
        let links: Vec<(Endpoint, NodeId)> = (self.links.keys())
            .filter(|(_, node)| *node == to)
            .copied()
            .collect();
        let mut out = Vec::new();
        for link in links {
            for packet in self.links.remove(&link).unwrap_or_default() {
                out.push((link.0, packet));
            }
        }
        out
    }

    /// How many packets are in flight.
    pub fn in_flight(&self) -> usize {
        self.links.values().map(VecDeque::len).sum()
    }
}

/// One held link: the label that starts holding, and what waits, in order.
#[derive(Clone, Debug)]
struct Hold {
    /// Holding starts at the first message whose label starts with this.
    label: String,
    /// The packets held, oldest first.
    waiting: VecDeque<Packet>,
}

/// Links held back, as `Cluster::hold_link` holds them (`net::held`): from the first
/// message whose label starts with the hold's label on, every message the link's
/// sender lets out waits, in order, until the link is released. What was on the link
/// before it was held is delivered as usual.
#[derive(Clone, Debug, Default)]
pub struct HeldLinks {
    links: BTreeMap<(NodeId, NodeId), Hold>,
}

impl HeldLinks {
    /// Holds the link from `from` to `to` from the next message labelled `label...`.
    pub fn hold(&mut self, from: NodeId, to: NodeId, label: &str) {
        let hold = self.links.entry((from, to)).or_insert_with(|| Hold {
            label: String::new(),
            waiting: VecDeque::new(),
        });
        if hold.waiting.is_empty() {
            hold.label = label.to_string();
        }
    }

    /// Keeps the packet if its link holds it; gives it back to send now otherwise.
    pub fn offer(&mut self, from: NodeId, to: NodeId, packet: Packet) -> Option<Packet> {
        let Some(hold) = self.links.get_mut(&(from, to)) else {
            return Some(packet);
        };
        let Packet::Peer(message, _) = &packet else {
            return Some(packet);
        };
        if hold.waiting.is_empty() && !message.label().starts_with(&hold.label) {
            return Some(packet);
        }
        hold.waiting.push_back(packet);
        None
    }

    /// Stops holding the link; returns what waited on it, in order.
    pub fn release(&mut self, from: NodeId, to: NodeId) -> VecDeque<Packet> {
        (self.links.remove(&(from, to))).map_or_else(VecDeque::new, |hold| hold.waiting)
    }

    /// Takes what waits for `to` (a node that died), with its senders.
    pub fn drop_mail_to(&mut self, to: NodeId) -> Vec<(NodeId, Packet)> {
        let mut dropped = Vec::new();
        for ((from, node), hold) in &mut self.links {
            if *node == to {
                dropped.extend(hold.waiting.drain(..).map(|packet| (*from, packet)));
            }
        }
        dropped
    }

    /// The held links, as `(from, to, messages waiting)`.
    pub fn links(&self) -> Vec<(NodeId, NodeId, usize)> {
        (self.links.iter())
            .map(|((from, to), hold)| (*from, *to, hold.waiting.len()))
            .collect()
    }
}
