//! The client side of a node's port: connections this process dials to node processes
//! as a client, to send them requests (a shell's transactions, or a coordinator's
//! operation handed on to a key's owner) and a shell's control requests, and to take
//! their answers.
//!
//! A [`Connector`] keeps at most one connection per node, dialled when first needed
//! and again after it breaks (at most every [`REDIAL`], so a shell that asks a down node
//! for its status many times a second does not hammer its address). Each connection has
//! a reader thread, which hands every reply to the mailbox of the request it answers,
//! every admin answer to the caller waiting for it, and every trace event to the local
//! tracer. When the connection breaks, every request still unanswered on it is told so
//! (its mailbox closes: "it crashed before answering"), as a crashed node thread tells
//! the requests it held.
//!
//! Writes happen on the caller's thread, under the connection's lock: a frame is small,
//! the kernel takes it at once, and a peer that stops reading is given up on after the
//! write timeout.

use super::{HANDSHAKE_TIMEOUT, Log};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::message::{Reply, Request};
use crate::net::{Label, ReplySender, What};
use crate::types::NodeId;
use crate::wire::{Frame, FrameReader, Hello, Role, encode_frame};
use crossbeam::channel::{Sender, bounded};
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::io::{BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// The shortest time between two dials of a node that could not be reached.
pub const REDIAL: Duration = Duration::from_millis(100);

/// How long an admin request waits for its answer.
pub const ADMIN_PATIENCE: Duration = Duration::from_secs(10);

/// Connections to the nodes of one cluster, as a client. See the module doc.
pub struct Connector {
    nodes: u32,
    addrs: Vec<SocketAddr>,
    slots: Vec<Mutex<Slot>>,
    ctx: Weak<Context>,
    log: Log,
    /// The control request every new connection sends first (a shell's request for
    /// the trace), if any.
    greeting: Mutex<Option<Vec<u8>>>,
    stopping: Arc<AtomicBool>,
}

#[derive(Default)]
struct Slot {
    conn: Option<Arc<Conn>>,
    /// When dialling last failed, and what it said.
    failed: Option<(Instant, String)>,
}

/// One connection to a node.
struct Conn {
    stream: Mutex<TcpStream>,
    next: AtomicU64,
    requests: Mutex<HashMap<u64, ReplySender>>,
    /// Requests sent that have had no reply yet, not even `Waiting` (see
    /// [`Connector::unanswered`]).
    unanswered: Mutex<HashSet<u64>>,
    admins: Mutex<HashMap<u64, Sender<Vec<u8>>>>,
    alive: AtomicBool,
}

impl Connector {
    /// Connections to the nodes at `addrs` (in node order) of a cluster of that size,
    /// whose replies count as work on `ctx`'s network and whose trace events go to its
    /// tracer. Nothing is dialled yet.
    pub fn new(ctx: &Arc<Context>, addrs: Vec<SocketAddr>, log: Log) -> Connector {
        let nodes = u32::try_from(addrs.len()).unwrap_or(u32::MAX);
        Connector {
            nodes,
            slots: addrs.iter().map(|_| Mutex::new(Slot::default())).collect(),
            addrs,
            ctx: Arc::downgrade(ctx),
            log,
            greeting: Mutex::new(None),
            stopping: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Node `node`'s address.
    pub fn addr(&self, node: NodeId) -> Option<SocketAddr> {
        self.addrs.get(node as usize).copied()
    }

    /// Sends `request` to `node`; its replies go to `reply`. Gives both back, with why,
    /// if `node` cannot be reached.
    pub fn request(
        &self,
        node: NodeId,
        request: Request,
        reply: ReplySender,
    ) -> std::result::Result<(), (Request, ReplySender, String)> {
        let conn = match self.conn(node) {
            Ok(conn) => conn,
            Err(why) => return Err((request, reply, why)),
        };
        let id = conn.next.fetch_add(1, Ordering::Relaxed);
        conn.requests.lock().insert(id, reply);
        conn.unanswered.lock().insert(id);
        let frame = Frame::Request { id, request };
        if let Err(why) = conn.write(&frame) {
            conn.unanswered.lock().remove(&id);
            self.broke(node, &conn);
            // Nothing was sent: give the request back for the caller to answer.
            if let Frame::Request { request, .. } = frame
                && let Some(reply) = conn.requests.lock().remove(&id)
            {
                return Err((request, reply, why));
            }
        }
        Ok(())
    }

    /// Sends `node` a control request (`body`, encoded by the cluster layer) and waits
    /// for its answer's bytes.
    pub fn admin(&self, node: NodeId, body: Vec<u8>) -> Result<Vec<u8>> {
        self.admin_within(node, body, ADMIN_PATIENCE)
    }

    /// As [`Connector::admin`], waiting `patience` at most for the answer.
    pub fn admin_within(&self, node: NodeId, body: Vec<u8>, patience: Duration) -> Result<Vec<u8>> {
        let conn = self
            .conn(node)
            .map_err(|detail| Error::NodeDown { node, detail })?;
        let id = conn.next.fetch_add(1, Ordering::Relaxed);
        let (answer, answered) = bounded(1);
        conn.admins.lock().insert(id, answer);
        if let Err(detail) = conn.write(&Frame::Admin { id, body }) {
            self.broke(node, &conn);
            return Err(Error::NodeDown { node, detail });
        }
        answered
            .recv_timeout(patience)
            .map_err(|_| Error::NodeDown {
                node,
                detail: format!(
                    "its process at {} went away (or stopped answering) before it answered",
                    self.addrs[node as usize]
                ),
            })
    }

    /// How many requests sent on live connections have had no reply at all yet: on
    /// their way, or being worked on, rather than waiting for a lock (which is
    /// answered `Waiting`). A shell settling over processes waits for them a moment.
    pub fn unanswered(&self) -> usize {
        (self.slots.iter())
            .filter_map(|slot| slot.lock().conn.clone())
            .filter(|conn| conn.is_alive())
            .map(|conn| conn.unanswered.lock().len())
            .sum()
    }

    /// Whether the connection to `node` is up, dialling it if it is not (at most every
    /// [`REDIAL`]).
    pub fn is_up(&self, node: NodeId) -> bool {
        self.conn(node).is_ok()
    }

    /// Whether a connection to `node` is up now, without dialling.
    pub fn is_connected(&self, node: NodeId) -> bool {
        (self.slots.get(node as usize))
            .is_some_and(|slot| slot.lock().conn.as_ref().is_some_and(|c| c.is_alive()))
    }

    /// Why `node` cannot be reached, as dialling it last said.
    pub fn down_detail(&self, node: NodeId) -> Option<String> {
        let slot = self.slots.get(node as usize)?.lock();
        slot.failed.as_ref().map(|(_, why)| why.clone())
    }

    /// Forgets the last failed dial of `node`, so the next request dials at once (its
    /// process was just started again).
    pub fn redial_now(&self, node: NodeId) {
        if let Some(slot) = self.slots.get(node as usize) {
            slot.lock().failed = None;
        }
    }

    /// Sends `body`, a control request, to every node connected now, and makes every
    /// connection made later send `greeting` first (`None`: nothing).
    pub fn greet(&self, body: Vec<u8>, greeting: Option<Vec<u8>>) {
        *self.greeting.lock() = greeting;
        for node in 0..self.nodes {
            if self.is_connected(node) {
                let _ = self.admin(node, body.clone());
            }
        }
    }

    /// Closes every connection; unanswered requests are told their node went away.
    pub fn close(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        for slot in &self.slots {
            if let Some(conn) = slot.lock().conn.take() {
                conn.shut();
            }
        }
    }

    /// The live connection to `node`, dialled if there is none.
    fn conn(&self, node: NodeId) -> std::result::Result<Arc<Conn>, String> {
        let Some(slot) = self.slots.get(node as usize) else {
            return Err(format!("there is no node {node}"));
        };
        let mut slot = slot.lock();
        if let Some(conn) = &slot.conn
            && conn.is_alive()
        {
            return Ok(conn.clone());
        }
        if let Some((when, why)) = &slot.failed
            && when.elapsed() < REDIAL
        {
            return Err(why.clone());
        }
        match self.dial(node) {
            Ok(conn) => {
                slot.failed = None;
                slot.conn = Some(conn.clone());
                drop(slot);
                let greeting = self.greeting.lock().clone();
                if let Some(greeting) = greeting {
                    // Sent after the slot is filled: the answer comes on this connection.
                    let _ = self.admin(node, greeting);
                }
                Ok(conn)
            }
            Err(error) => {
                let why = format!(
                    "its process at {} cannot be reached ({error}); is it running?",
                    self.addrs[node as usize]
                );
                slot.conn = None;
                slot.failed = Some((Instant::now(), why.clone()));
                Err(why)
            }
        }
    }

    /// Dials `node`, exchanges hellos, and starts the connection's reader.
    fn dial(&self, node: NodeId) -> Result<Arc<Conn>> {
        let addr = self.addrs[node as usize];
        let io = |error| Error::io(format!("dialling node {node} at {addr}"), error);
        let stream = TcpStream::connect_timeout(&addr, HANDSHAKE_TIMEOUT).map_err(io)?;
        stream.set_nodelay(true).map_err(io)?;
        stream
            .set_read_timeout(Some(HANDSHAKE_TIMEOUT))
            .map_err(io)?;
        stream
            .set_write_timeout(Some(HANDSHAKE_TIMEOUT))
            .map_err(io)?;
        (&stream)
            .write_all(&Hello::new(Role::Client, self.nodes).encode())
            .map_err(io)?;
        let reading = stream.try_clone().map_err(io)?;
        let mut reader = FrameReader::new(BufReader::new(reading), addr);
        reader.read_hello()?.confirm(node, self.nodes, addr)?;
        stream.set_read_timeout(None).map_err(io)?;
        let conn = Arc::new(Conn {
            stream: Mutex::new(stream),
            next: AtomicU64::new(1),
            requests: Mutex::new(HashMap::new()),
            unanswered: Mutex::default(),
            admins: Mutex::new(HashMap::new()),
            alive: AtomicBool::new(true),
        });
        let (read, ctx, log) = (conn.clone(), self.ctx.clone(), self.log.clone());
        let stopping = self.stopping.clone();
        std::thread::Builder::new()
            .name(format!("client-{node}"))
            .spawn(move || {
                let ended = read.read_all(&mut reader, node, &ctx);
                read.shut();
                if let Err(error) = ended
                    && !stopping.load(Ordering::SeqCst)
                {
                    log(format!(
                        "the connection to node {node} at {addr} broke: {error}"
                    ));
                }
            })
            .map_err(|error| Error::io(format!("starting the reader of node {node}"), error))?;
        Ok(conn)
    }

    fn broke(&self, node: NodeId, conn: &Arc<Conn>) {
        conn.shut();
        if let Some(slot) = self.slots.get(node as usize) {
            let mut slot = slot.lock();
            if slot.conn.as_ref().is_some_and(|c| Arc::ptr_eq(c, conn)) {
                slot.conn = None;
            }
        }
    }
}

impl Drop for Connector {
    fn drop(&mut self) {
        self.close();
    }
}

impl Conn {
    fn is_alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }

    /// Writes one frame; why not, if it could not.
    fn write(&self, frame: &Frame) -> std::result::Result<(), String> {
        let mut buf = Vec::new();
        encode_frame(frame, &mut buf).map_err(|error| error.to_string())?;
        let mut stream = self.stream.lock();
        stream
            .write_all(&buf)
            .map_err(|error| format!("writing to its process failed ({error})"))
    }

    /// Closes the connection: every request waiting on it is told (its mailbox
    /// closes), every admin caller too.
    fn shut(&self) {
        self.alive.store(false, Ordering::SeqCst);
        let _ = self.stream.lock().shutdown(Shutdown::Both);
        self.requests.lock().clear();
        self.unanswered.lock().clear();
        self.admins.lock().clear();
    }

    /// Hands each frame that arrives to whoever waits for it, until the connection ends.
    fn read_all(
        &self,
        reader: &mut FrameReader<BufReader<TcpStream>>,
        node: NodeId,
        ctx: &Weak<Context>,
    ) -> Result<()> {
        let peer = reader.peer();
        while let Some(frame) = reader.read_frame()? {
            let Some(ctx) = ctx.upgrade() else {
                return Ok(());
            };
            match frame {
                Frame::Reply { id, reply } => {
                    self.unanswered.lock().remove(&id);
                    let done = matches!(reply, Reply::Done(_));
                    let mut requests = self.requests.lock();
                    let sender = if done {
                        requests.remove(&id)
                    } else {
                        requests.get(&id).cloned()
                    };
                    drop(requests);
                    if let Some(sender) = sender {
                        let work = ctx.net.work(Label::on(What::Reply, node));
                        let _ = sender.send(reply, work);
                    }
                }
                Frame::AdminReply { id, body } => {
                    if let Some(answer) = self.admins.lock().remove(&id) {
                        let _ = answer.send(body);
                    }
                }
                Frame::Trace(event) => ctx.net.tracer.emit(|| event),
                other => {
                    return Err(crate::wire::hello::wire(
                        peer,
                        format!("node {node} sent {} to a client", other.kind()),
                    ));
                }
            }
        }
        Ok(())
    }
}
