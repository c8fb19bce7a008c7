//! Protocol messages between node processes over TCP: the network seam (`net`) kept
//! with sockets instead of channels.
//!
//! # Shape
//!
//! A [`Transport`] belongs to one node process. It owns:
//!
//! - **one outbound link per peer** (`link`): a thread that dials the peer, exchanges
//!   hellos (`wire`), and writes the messages this node sends it, in the order sent, as
//!   frames; a second, small thread watches the same socket for the peer closing it, so
//!   a peer that dies is noticed at once rather than at the next write;
//! - **a listener** (`accept`): a thread that accepts connections, and one reader thread
//!   per connection that checks the dialler's hello, answers with its own, and hands
//!   each protocol message to the local node ([`Deliver::message`]).
//!
//! Each direction of a pair of nodes has its own connection: node 1's messages to node 2
//! travel on the connection node 1 dialled, node 2's to node 1 on the one node 2
//! dialled. So a link's order is one socket's order and one writer thread's order.
//!
//! # Why threads and blocking sockets, not tokio
//!
//! Measured, not assumed: `examples/transport.rs` runs both candidates as kv2pc's nodes
//! would use them (a synchronous node thread sends; the peer's transport posts into a
//! crossbeam inbox; the peer's node thread answers the same way), on loopback:
//!
//! ```text
//! cargo run --release --example transport --features tokio-candidate
//! ```
//!
//! Sixteen runs on the 2-core development machine, in two sessions half an hour apart,
//! while another benchmark shared the machine (load average 3 to 5, so the figures move
//! with it); a COMMIT answered by an ACK, and 64 in flight:
//!
//! | runs | candidate | round trip p50 | p99 | p99.9 | 64 in flight, messages/s |
//! |---|---|---|---|---|---|
//! | first 8 | std threads (this module) | 14-17 µs (one 49) | 18-82 µs | 42-178 µs | 0.56-1.45 M |
//! | first 8 | tokio 1.54 + `LengthDelimitedCodec` | 50-80 µs (one 16) | 0.1-2.2 ms | 0.36-4.6 ms | 0.09-0.53 M |
//! | next 2 (lighter load) | std | 15.5-16.4 µs | 18-20 µs | 45-58 µs | 1.42 M |
//! | next 2 (lighter load) | tokio | 16.5-16.6 µs | 18-19 µs | 47-48 µs | 0.47-0.63 M |
//! | last 6 (heavier load) | std | 97-100 µs | 185-226 µs | 0.25-0.56 ms | 0.39-0.43 M |
//! | last 6 (heavier load) | tokio | 86-90 µs | 157-250 µs | 0.42-0.82 ms | 0.43-0.50 M |
//!
//! So neither wins everywhere: with the machine lightly shared the round trips are
//! equal and the std transport carries two to three times the messages in flight;
//! in the first session tokio's tail was far worse; when the machine was saturated
//! tokio was about 10% faster at the median and 5-25% at throughput. Nothing here says
//! tokio is worth its weight, so the simpler candidate stays: it
//! adds no crate, and it fits the node thread, a synchronous crossbeam consumer, which
//! an async transport must cross into and out of (a tokio channel in, a crossbeam
//! channel out) on every message. A cluster has at most 64 peers, so a thread per
//! connection costs nothing an async runtime would save. (The tokio candidate is a
//! straightforward one, without hello or CRC, not tuned; it is kept behind the
//! `tokio-candidate` feature so the measurement can be rerun.)
//!
//! # The seam's promises over TCP
//!
//! - **In order per link:** one connection per direction, one writer, one reader.
//! - **Lost only to a down node:** a message to a peer whose link is not connected (the
//!   peer is down, not yet started, or restarting) is dropped at once, and a sender that
//!   must know (`Message::reports_loss`) is told ([`Deliver::lost`], which the node
//!   turns into `Input::Undelivered`). When a connection breaks, what its writer still
//!   held is dropped the same way, and so is anything queued before the link is up
//!   again: mail is never kept for the peer's next incarnation. One exception keeps the
//!   promise rather than breaking it: a peer that restarted dials this node before this
//!   node's link to it has reconnected, and is then up although the link is not. A
//!   message to it then waits in the link's queue, marked with the number of the peer's
//!   connection, and the link dials back at once; once connected it writes what is
//!   marked with the connection still open (the same incarnation) and drops the rest.
//!   Without this, the answer to a restarted node's announcement was lost for a second,
//!   until the announcement was repeated, and its clients' writes waited for it.
//! - **Reconnects with backoff:** a link that cannot connect retries after 20 ms,
//!   doubling to at most 1 s, and is back to 20 ms once connected.
//! - **Garbage is refused per connection:** a connection whose hello or frames are not
//!   kv2pc's (see `wire`) is closed with its error logged; the node and its other
//!   connections go on.
//!
//! # Limits
//!
//! - A message already written to the kernel when the peer dies is lost without the
//!   sender being told: TCP acknowledges bytes to the kernel, not to the node that reads
//!   them. The in-process network can tell (it sees the inbox dropped unread). Both
//!   messages that report loss are re-sent by their senders until answered (a restart
//!   announcement every inquiry interval, a floor query at every tick: `participant::
//!   rejoin`, `node::floors`), so a silent loss delays them; it does not break them.
//!   Acknowledging frames at the application level would close the gap.
//! - A peer that stops reading (a process stopped with SIGSTOP, say) is taken for down
//!   once a write to it has waited 2 s: the link breaks and reconnects, and what it held
//!   is dropped. A writer never blocks the node thread, which only queues.
//! - Every peer costs three threads (writer, watcher, reader of its inbound
//!   connection). Fine for the 64 nodes a cluster may have; not a design for thousands.
//!   Each accepted connection gets a reader thread before its hello is read (a silent
//!   one is closed after 2 s), so a flood of connections costs threads.
//! - Connections are neither authenticated nor encrypted, and the node id in a hello is
//!   taken on trust (see `wire`).

mod accept;
pub mod client;
mod link;
mod serve;

pub use client::{ADMIN_PATIENCE, Connector};
pub use serve::Serve;

use crate::context::Context;
use crate::error::{Error, Result};
use crate::message::Message;
pub use crate::net::Stamp;
use crate::net::{Label, Mail, What};
use crate::node::Input;
use crate::types::NodeId;
use link::Link;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// The first wait before dialling a peer again.
const MIN_BACKOFF: Duration = Duration::from_millis(20);
/// The longest wait between dials.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// How long dialling, and waiting for the other side's hello, may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);
/// How often a blocked thread looks whether the transport is stopping.
const POLL: Duration = Duration::from_millis(50);

/// Where the transport hands what arrives, and what it could not send: the local node.
pub trait Deliver: Send + Sync + 'static {
    /// `message` arrived from peer `from`, stamped by it.
    fn message(&self, from: NodeId, message: Message, stamp: Stamp);
    /// `message`, which this node sent to `to`, was dropped because `to` is down. Only
    /// messages whose loss the sender must learn come here (`Message::reports_loss`).
    fn lost(&self, to: NodeId, message: Message, stamp: Stamp);
}

/// Where the transport writes what happens to its connections (a peer up, down,
/// refused): one line each, for standard error in a node process.
pub type Log = Arc<dyn Fn(String) + Send + Sync>;

/// What a [`Transport`] is: which node, in which cluster, talking to whom.
#[derive(Clone, Debug)]
pub struct Peers {
    /// This node's id.
    pub me: NodeId,
    /// Every node's address, indexed by node id (this node's own entry is not dialled).
    pub addrs: Vec<SocketAddr>,
}

/// The TCP transport of one node process. See the module doc. Dropping it stops every
/// thread it started and closes every connection.
pub struct Transport {
    links: Vec<Option<Link>>,
    accept: Option<accept::Acceptor>,
    stopping: Arc<AtomicBool>,
}

impl Transport {
    /// Starts serving `listener` and dialling every peer in `peers`, handing what
    /// arrives to `deliver` and logging connection events to `log`.
    pub fn start(
        listener: TcpListener,
        peers: Peers,
        deliver: Arc<dyn Deliver>,
        serve: Option<Arc<dyn Serve>>,
        log: Log,
    ) -> Result<Transport> {
        let nodes = u32::try_from(peers.addrs.len()).unwrap_or(u32::MAX);
        if peers.me >= nodes {
            return Err(Error::InvalidInput(format!(
                "node {} cannot be in a cluster of {nodes}: --peers must list every node's \
                 address, this one's included, in node order",
                peers.me
            )));
        }
        let stopping = Arc::new(AtomicBool::new(false));
        let shared = Shared {
            me: peers.me,
            nodes,
            deliver,
            serve,
            log,
            stopping: stopping.clone(),
            inbound: (0..nodes).map(|_| AtomicU64::new(0)).collect(),
            kick: (0..nodes).map(|_| AtomicBool::new(false)).collect(),
        };
        let shared = Arc::new(shared);
        let accept = accept::Acceptor::start(listener, shared.clone())?;
        let links = (peers.addrs.iter().enumerate())
            .map(|(to, addr)| {
                let to = to as NodeId;
                (to != peers.me).then(|| Link::start(to, *addr, shared.clone()))
            })
            .map(Option::transpose)
            .collect::<Result<Vec<_>>>()?;
        Ok(Transport {
            links,
            accept: Some(accept),
            stopping,
        })
    }

    /// The address the listener serves (useful when it was bound to port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.accept.as_ref().map(accept::Acceptor::local_addr)
    }

    /// Sends `message` to peer `to`, after everything sent to it before; drops it (and
    /// says so to `Deliver::lost`, if it must) if `to` is down. Whether it was taken: a
    /// message dropped later, when the connection breaks under it, was taken. A message
    /// to this node itself, or to a node that does not exist, is not the transport's: it
    /// is dropped.
    pub fn send(&self, to: NodeId, message: Message, stamp: Stamp) -> bool {
        match self.links.get(to as usize) {
            Some(Some(link)) => link.send(message, stamp),
            _ => false,
        }
    }

    /// Whether nothing waits in any link's queue to be written.
    pub fn is_drained(&self) -> bool {
        self.links.iter().flatten().all(Link::is_drained)
    }

    /// Whether the link to `to` is connected now.
    pub fn is_connected(&self, to: NodeId) -> bool {
        matches!(self.links.get(to as usize), Some(Some(link)) if link.is_up())
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        for link in self.links.iter_mut().flatten() {
            link.stop();
        }
        if let Some(accept) = self.accept.take() {
            accept.stop();
        }
    }
}

/// What every thread of one transport shares.
struct Shared {
    me: NodeId,
    nodes: u32,
    deliver: Arc<dyn Deliver>,
    /// The local node as its clients see it; `None` serves no clients.
    serve: Option<Arc<dyn Serve>>,
    log: Log,
    stopping: Arc<AtomicBool>,
    /// Per peer, the number of the connection it dialled to this node that is open now
    /// (0: none), which says which incarnation of it is up (see `link`).
    inbound: Vec<AtomicU64>,
    /// Per peer, set when a new incarnation of it dialled in: its link dials back at
    /// once instead of waiting out its backoff.
    kick: Vec<AtomicBool>,
}

impl Shared {
    /// Peer `peer`'s open connection to this node, numbered `number`, is up.
    fn inbound_up(&self, peer: NodeId, number: u64) {
        if let Some(slot) = self.inbound.get(peer as usize) {
            slot.store(number, Ordering::SeqCst);
        }
        if let Some(kick) = self.kick.get(peer as usize) {
            kick.store(true, Ordering::SeqCst);
        }
    }

    /// That connection closed.
    fn inbound_down(&self, peer: NodeId, number: u64) {
        if let Some(slot) = self.inbound.get(peer as usize) {
            let _ = slot.compare_exchange(number, 0, Ordering::SeqCst, Ordering::SeqCst);
        }
    }

    /// The number of `peer`'s open connection to this node (0: none).
    fn inbound(&self, peer: NodeId) -> u64 {
        (self.inbound.get(peer as usize)).map_or(0, |slot| slot.load(Ordering::SeqCst))
    }

    /// Whether `peer` dialled in anew since the last look.
    fn kicked(&self, peer: NodeId) -> bool {
        (self.kick.get(peer as usize)).is_some_and(|kick| kick.swap(false, Ordering::SeqCst))
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    fn log(&self, line: String) {
        (self.log)(format!("node {}: {line}", self.me));
    }

    /// Reports `message` lost to `to`, if its sender must learn of it.
    fn lost(&self, to: NodeId, message: Message, stamp: Stamp) {
        if message.reports_loss() {
            self.deliver.lost(to, message, stamp);
        }
    }
}

/// The local node of a process, as the transport's [`Deliver`]: what arrives goes into
/// its inbox on the cluster's network, as a protocol input; what is lost comes back to
/// it as `Input::Undelivered`. Holds the context weakly, so the transport does not keep
/// a closed cluster alive.
pub struct NodeInbox {
    ctx: Weak<Context>,
    node: NodeId,
}

impl NodeInbox {
    /// The inbox of `node` on `ctx`'s network.
    pub fn new(ctx: &Arc<Context>, node: NodeId) -> NodeInbox {
        NodeInbox {
            ctx: Arc::downgrade(ctx),
            node,
        }
    }
}

impl Deliver for NodeInbox {
    fn message(&self, from: NodeId, message: Message, stamp: Stamp) {
        let Some(ctx) = self.ctx.upgrade() else {
            return;
        };
        let clock = stamp.clock;
        let input = Input::Peer {
            from,
            message,
            clock,
        };
        // A node that is down (crashed, restarting) drops it, as the seam promises.
        let _ = ctx.net.post(self.node, Mail::Input(input, stamp.depth + 1));
    }

    fn lost(&self, to: NodeId, message: Message, stamp: Stamp) {
        if let Some(ctx) = self.ctx.upgrade() {
            let work = ctx.net.work(Label::on(What::Message, self.node));
            ctx.net
                .undelivered(self.node, to, message, stamp.depth, work);
        }
    }
}

#[cfg(test)]
mod tests;
