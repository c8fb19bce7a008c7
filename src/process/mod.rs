//! One node as its own OS process: `kv2pc node --id N --nodes 3 --data-dir DIR --listen
//! ADDR --peers A,B,C`.
//!
//! A [`NodeProcess`] is the embedded cluster cut down to one node: the same runtime,
//! log, recovery and state machines (`Cluster::open_one`), whose network has one inbox,
//! its own, and sends everything else over TCP (`wire::tcp`, plugged in as the net's
//! `Remote`). What arrives from the peers is posted into that inbox as it would be in
//! one process. The protocol cannot tell the difference, which is the point of the
//! network seam.
//!
//! # Starting
//!
//! The transport starts first, so that the links to the peers already up are
//! connected (or given up on, after [`CONNECT_PATIENCE`]) before recovery sends its
//! restart announcement; a peer that is not up yet misses it, as a crashed node would,
//! and announces itself when it starts. Each process owns its data directory (the OS
//! lock of `cluster`), so three processes on one machine need three directories; the
//! node's log is in `DIR/nodeN`, under a manifest that records the cluster's size.
//!
//! # Stopping
//!
//! [`NodeProcess::stop`] (what SIGTERM leads to in `kv2pc node`) stops the node as
//! `Cluster::shutdown` does, flushing and fsyncing its log, and then closes every
//! connection. SIGKILL is a crash like any other: recovery on the next start.
//!
//! # Clients
//!
//! The same port serves client sessions (`Role::Client` in the hello): the shell's
//! `--connect` and `kv2pc cluster` (`cluster::remote`). A client's requests are posted
//! into the node's inbox as an embedded client's are, its replies written back on its
//! connection, and its admin requests (`STATUS`, `SHOW LOG`, `CRASH ... AT`...) answered
//! by [`serve::NodeServer`]; trace events go to the clients that asked for them.
//!
//! # Limits
//!
//! - A client that dies in the middle of a transaction has it aborted by its
//!   coordinator when the connection ends (`wire::tcp::serve`), so nothing stays
//!   locked; but a connection that only breaks, its client alive, loses its open
//!   transactions the same way.
//! - Every node listens on one address for its peers and its clients alike, with no
//!   authentication: loopback or a trusted network only.
//!
use crate::cluster::Cluster;
use crate::config::Config;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::message::Message;
use crate::net::{Mail, Remote, Stamp};
use crate::types::NodeId;
use crate::wire::tcp::{Connector, Log, NodeInbox, Peers, Serve, Transport};
use serve::NodeServer;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// How long a starting node waits for its links to the peers that are up to connect,
/// before its recovery speaks to them.
pub const CONNECT_PATIENCE: Duration = Duration::from_secs(1);

/// What one node process is.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    /// The node's id, `0..nodes`.
    pub id: NodeId,
    /// The size of the cluster.
    pub nodes: u32,
    /// The data directory this process owns.
    pub dir: PathBuf,
    /// Where it listens for its peers.
    pub listen: SocketAddr,
    /// Every node's address in node order, this one's included (its entry is not
    /// dialled; `listen` is what it binds).
    pub peers: Vec<SocketAddr>,
}

/// One node running in this process over TCP. See the module doc.
pub struct NodeProcess {
    id: NodeId,
    // Fields drop in order: the node first (it flushes its log), then the links.
    cluster: Arc<Cluster>,
    transport: Arc<Transport>,
    server: Arc<NodeServer>,
}

pub mod launch;
mod serve;

impl NodeProcess {
    /// Binds the listener, starts the links, recovers the node and starts it.
    pub fn start(options: NodeOptions, config: Config, log: Log) -> Result<NodeProcess> {
        check(&options, &config)?;
        let listener = TcpListener::bind(options.listen).map_err(|error| {
            let context = format!(
                "listening on {} (is another node already there? choose another --listen)",
                options.listen
            );
            Error::io(context, error)
        })?;
        NodeProcess::start_on(listener, options, config, log)
    }

    /// As [`NodeProcess::start`], on a listener already bound (`options.listen` is not
    /// used): a test binds its nodes' ports first, so it knows them all before any
    /// node starts.
    pub fn start_on(
        listener: TcpListener,
        options: NodeOptions,
        config: Config,
        log: Log,
    ) -> Result<NodeProcess> {
        check(&options, &config)?;
        let server = Arc::new(NodeServer::new(options.id, log.clone()));
        let connect = |ctx: &Arc<Context>| -> Result<Arc<Transport>> {
            let peers = Peers {
                me: options.id,
                addrs: options.peers.clone(),
            };
            let inbox = Arc::new(NodeInbox::new(ctx, options.id));
            let serving: Arc<dyn Serve> = server.clone();
            let connector = Connector::new(ctx, options.peers.clone(), log.clone());
            let transport = Transport::start(listener, peers, inbox, Some(serving), log)?;
            let transport = Arc::new(transport);
            wait_for_links(&transport, options.nodes, options.id);
            let links = Links {
                transport: Arc::downgrade(&transport),
                clients: connector,
            };
            ctx.net.set_remote(Some(options.id), Arc::new(links))?;
            Ok(transport)
        };
        let (cluster, transport) = Cluster::open_one(&options.dir, config, options.id, connect)?;
        let cluster = Arc::new(cluster);
        let _ = server.cluster.set(Arc::downgrade(&cluster));
        let _ = server.transport.set(Arc::downgrade(&transport));
        Ok(NodeProcess {
            id: options.id,
            cluster,
            transport,
            server,
        })
    }

    /// Why the node stopped, if it stopped on an error (a failed log write), not a crash.
    pub fn failure(&self) -> Option<String> {
        self.cluster.context().failure(self.id)
    }

    /// The node's cluster handle: its status, its recovery report, its trace.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// The address the node listens on.
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.transport.local_addr()
    }

    /// Whether the link to `peer` is connected.
    pub fn is_connected(&self, peer: NodeId) -> bool {
        self.transport.is_connected(peer)
    }

    /// Stops the node (flushing its log) and then closes every connection.
    pub fn stop(self) {
        drop(self);
    }

    /// Whether the node runs (false once it died at an armed crash point, or on a
    /// failed log write: the process should then die too, as the machine would).
    pub fn is_up(&self) -> bool {
        self.cluster.is_up(self.id)
    }

    /// Waits, `patience` at most, until the trace events made so far are handed to the
    /// sockets of the clients that listen: a process about to die at a crash point lets
    /// its shell hear that it crashed there.
    pub fn flush_trace(&self, patience: std::time::Duration) {
        // The node thread traces its crash after it is marked down: let it finish.
        self.cluster.join_crashed(self.id);
        self.server.flush_trace(patience);
    }
}

/// The transport as the net's `Remote`, held weakly: the net lives in the context,
/// which a reader thread of the transport may hold for a moment while it posts; were
/// the transport owned there, its last owner could be that thread, which would then
/// have to join itself. The process owns the transport; the net only uses it.
///
/// A client request handed on to a key's owner in another process (the operation a
/// `BEGIN` carried) goes to it as a client would send it, on a connection of this
/// process's own (`clients`), and its replies come back to the client that asked.
struct Links {
    transport: Weak<Transport>,
    clients: Connector,
}

impl Remote for Links {
    fn send(&self, to: NodeId, message: Message, stamp: Stamp) -> bool {
        // Gone only while the process stops: the message is lost with it.
        (self.transport.upgrade()).is_some_and(|transport| transport.send(to, message, stamp))
    }

    fn post(&self, to: NodeId, mail: Mail) -> std::result::Result<(), Mail> {
        match mail {
            Mail::Client(request, reply) => (self.clients.request(to, request, reply))
                .map_err(|(request, reply, _)| Mail::Client(request, reply)),
            // Nothing else is addressed to another process's node from here.
            other => Err(other),
        }
    }

    fn is_up(&self, to: NodeId) -> bool {
        (self.transport.upgrade()).is_some_and(|transport| transport.is_connected(to))
    }

    fn down_detail(&self, to: NodeId) -> Option<String> {
        self.clients.down_detail(to)
    }
}

/// Checks the options against each other, with what to change.
fn check(options: &NodeOptions, config: &Config) -> Result<()> {
    let nodes = options.nodes;
    if config.nodes != nodes {
        return Err(Error::InvalidInput(format!(
            "the configuration says {} nodes and the options {nodes}",
            config.nodes
        )));
    }
    if options.peers.len() != nodes as usize {
        return Err(Error::InvalidInput(format!(
            "--peers lists {} addresses, and the cluster has {nodes} nodes: list every \
             node's address in node order, this one's included",
            options.peers.len()
        )));
    }
    if options.id >= nodes {
        return Err(Error::InvalidInput(format!(
            "--id {} is not a node of a {nodes}-node cluster: ids run from 0 to {}",
            options.id,
            nodes.saturating_sub(1)
        )));
    }
    Ok(())
}

/// Waits, at most [`CONNECT_PATIENCE`], until every link is connected.
fn wait_for_links(transport: &Transport, nodes: u32, me: NodeId) {
    let deadline = Instant::now() + CONNECT_PATIENCE;
    let all_up = || (0..nodes).all(|peer| peer == me || transport.is_connected(peer));
    while !all_up() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
}
