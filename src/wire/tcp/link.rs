//! One outbound link: the connection this node dials to one peer, and the thread that
//! keeps it connected and writes to it.
//!
//! The link is `up` from the moment both hellos are exchanged until the connection
//! breaks. While it is down, [`Link::send`] drops messages at once; the writer thread
//! drops whatever it still held or finds queued, before it first connects and at every
//! reconnect, so that nothing sent while the peer was down reaches its next
//! incarnation.

use super::{HANDSHAKE_TIMEOUT, MAX_BACKOFF, MIN_BACKOFF, POLL, Shared};
use crate::error::Error;
use crate::error::Result;
use crate::message::Message;
use crate::net::Stamp;
use crate::types::NodeId;
use crate::wire::{Frame, FrameReader, Hello, Role, encode_frame};
use crossbeam::channel::{Receiver, RecvTimeoutError, Sender, unbounded};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// The most queued messages written with one `write` call.
const MAX_BATCH: usize = 256;

/// A message waiting to be written.
struct Outgoing {
    message: Message,
    stamp: Stamp,
    /// 0 if it was queued while the link was up; else the number of the peer's inbound
    /// connection that showed it up while the link was not (see the transport's doc).
    mark: u64,
}

/// One peer's outbound link, as the transport holds it.
pub(super) struct Link {
    to: NodeId,
    queue: Option<Sender<Outgoing>>,
    up: Arc<AtomicBool>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Link {
    /// Starts the link's thread, which dials `addr` at once.
    pub(super) fn start(to: NodeId, addr: SocketAddr, shared: Arc<Shared>) -> Result<Link> {
        let (queue, queued) = unbounded();
        let up = Arc::new(AtomicBool::new(false));
        let writer = Writer {
            to,
            addr,
            queued,
            up: up.clone(),
            shared: shared.clone(),
        };
        let thread = std::thread::Builder::new()
            .name(format!("link-{}-{to}", shared.me))
            .spawn(move || writer.run())
            .map_err(|error| Error::io(format!("starting the link to node {to}"), error))?;
        Ok(Link {
            to,
            queue: Some(queue),
            up,
            shared,
            thread: Some(thread),
        })
    }

    /// Queues `message` for the peer, or drops it if the link is down; whether it was
    /// queued.
    pub(super) fn send(&self, message: Message, stamp: Stamp) -> bool {
        // Up, or not up but its peer is (it restarted and dialled in first).
        let mark = match self.is_up() {
            true => Some(0),
            false => Some(self.shared.inbound(self.to)).filter(|number| *number != 0),
        };
        let refused = match (&self.queue, mark) {
            (Some(queue), Some(mark)) => {
                let outgoing = Outgoing {
                    message,
                    stamp,
                    mark,
                };
                queue.send(outgoing).err().map(|error| error.0)
            }
            _ => Some(Outgoing {
                message,
                stamp,
                mark: 0,
            }),
        };
        match refused {
            Some(Outgoing { message, stamp, .. }) => {
                self.shared.lost(self.to, message, stamp);
                false
            }
            None => true,
        }
    }

    /// Whether nothing waits in its queue.
    pub(super) fn is_drained(&self) -> bool {
        self.queue.as_ref().is_none_or(Sender::is_empty)
    }

    /// Whether the link is connected.
    pub(super) fn is_up(&self) -> bool {
        self.up.load(Ordering::SeqCst)
    }

    /// Stops the thread (the transport's `stopping` flag is set) and waits for it.
    pub(super) fn stop(&mut self) {
        self.queue = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The link's thread.
struct Writer {
    to: NodeId,
    addr: SocketAddr,
    queued: Receiver<Outgoing>,
    up: Arc<AtomicBool>,
    shared: Arc<Shared>,
}

/// Why a connection ended.
enum Ended {
    /// The transport is stopping.
    Stopping,
    /// The connection broke; dial again. What it holds was taken from the queue but
    /// not written, because the link was already down (see `write_until_broken`).
    Broken(String, Vec<Outgoing>),
}

impl Writer {
    fn run(self) {
        let mut backoff = MIN_BACKOFF;
        let mut reported = false;
        // What waits for the peer's incarnation that is up, across a reconnect.
        let mut carry = Vec::new();
        while !self.shared.stopping() {
            match self.dial() {
                Ok(stream) => {
                    backoff = MIN_BACKOFF;
                    reported = false;
                    let carried = self.take_current(std::mem::take(&mut carry));
                    self.up.store(true, Ordering::SeqCst);
                    let to = (self.to, self.addr);
                    self.shared
                        .log(format!("connected to node {} at {}", to.0, to.1));
                    let ended = self.serve(stream, carried);
                    self.up.store(false, Ordering::SeqCst);
                    match ended {
                        Ended::Stopping => return,
                        Ended::Broken(why, unsent) => {
                            carry = self.take_current(unsent);
                            self.shared.log(format!(
                                "lost the link to node {} at {}: {why}; messages to it are \
                             dropped until it is back",
                                to.0, to.1
                            ))
                        }
                    }
                }
                Err(error) => {
                    if !reported {
                        self.shared.log(format!(
                            "node {} is not reachable: {error}; messages to it are dropped \
                             until it answers (dialled again every {} ms at most)",
                            self.to,
                            MAX_BACKOFF.as_millis()
                        ));
                        reported = true;
                    }
                    if !self.wait(backoff) {
                        return;
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Connects and exchanges hellos.
    fn dial(&self) -> Result<TcpStream> {
        let (to, addr) = (self.to, self.addr);
        let context = |what: &str| format!("{what} node {to} at {addr}");
        let stream = TcpStream::connect_timeout(&addr, HANDSHAKE_TIMEOUT)
            .map_err(|error| Error::io(context("dialling"), error))?;
        let setup = |stream: &TcpStream| -> std::io::Result<()> {
            stream.set_nodelay(true)?;
            stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
            stream.set_write_timeout(Some(HANDSHAKE_TIMEOUT))
        };
        setup(&stream).map_err(|error| Error::io(context("setting up the link to"), error))?;
        let hello = Hello::new(Role::Node(self.shared.me), self.shared.nodes);
        (&stream)
            .write_all(&hello.encode())
            .map_err(|error| Error::io(context("greeting"), error))?;
        let theirs = FrameReader::new(&stream, addr).read_hello()?;
        theirs.confirm(to, self.shared.nodes, addr)?;
        stream
            .set_read_timeout(None)
            .map_err(|error| Error::io(context("setting up the link to"), error))?;
        Ok(stream)
    }

    /// Writes queued messages to `stream` until it breaks or the transport stops. A
    /// watcher thread reads the socket: the peer sends nothing after its hello, so any
    /// end of input means the peer closed it.
    fn serve(&self, stream: TcpStream, carried: Vec<Outgoing>) -> Ended {
        let closed = Arc::new(AtomicBool::new(false));
        let watcher = match stream.try_clone() {
            Ok(watched) => {
                let (closed, up) = (closed.clone(), self.up.clone());
                std::thread::Builder::new()
                    .name(format!("watch-{}-{}", self.shared.me, self.to))
                    .spawn(move || watch(watched, &closed, &up))
                    .ok()
            }
            Err(_) => None,
        };
        let ended = self.write_until_broken(&stream, &closed, carried);
        let _ = stream.shutdown(Shutdown::Both);
        if let Some(watcher) = watcher {
            let _ = watcher.join();
        }
        ended
    }

    fn write_until_broken(
        &self,
        mut stream: &TcpStream,
        closed: &AtomicBool,
        carried: Vec<Outgoing>,
    ) -> Ended {
        let mut buf = Vec::new();
        let mut batch = carried;
        loop {
            if closed.load(Ordering::SeqCst) {
                return Ended::Broken("the peer closed the connection".into(), batch);
            }
            if batch.is_empty() {
                match self.queued.recv_timeout(POLL) {
                    Ok(first) => batch.push(first),
                    Err(RecvTimeoutError::Timeout) if !self.shared.stopping() => continue,
                    Err(_) => return Ended::Stopping,
                }
            }
            batch.extend(self.queued.try_iter().take(MAX_BATCH - 1));
            // The watcher marks the link down before anything can be queued for the
            // peer's next incarnation (`send` reads `up` first), so a batch taken after
            // that may hold such messages: they wait for the next connection instead of
            // going to this dead one.
            if !self.up.load(Ordering::SeqCst) {
                return Ended::Broken("the peer closed the connection".into(), batch);
            }
            buf.clear();
            let mut must_report = Vec::new();
            for Outgoing { message, stamp, .. } in batch.drain(..) {
                if message.reports_loss() {
                    must_report.push((message.clone(), stamp));
                }
                let frame = Frame::Peer {
                    message,
                    clock: stamp.clock,
                    depth: stamp.depth,
                };
                if let Err(error) = encode_frame(&frame, &mut buf) {
                    self.shared.log(format!(
                        "a message to node {} was not sent: {error}",
                        self.to
                    ));
                }
            }
            if let Err(error) = stream.write_all(&buf) {
                // What this batch held may or may not have arrived: TCP does not say.
                // The peer is down either way, so its losses are reported.
                for (message, stamp) in must_report {
                    self.shared.lost(self.to, message, stamp);
                }
                return Ended::Broken(error.to_string(), Vec::new());
            }
        }
    }

    /// Takes what waits (`carry`, then the queue) for the incarnation of the peer that
    /// is up now (marked with its open inbound connection), to write first; drops the
    /// rest, which was meant for one that is gone.
    fn take_current(&self, carry: Vec<Outgoing>) -> Vec<Outgoing> {
        let current = self.shared.inbound(self.to);
        let mut carried = Vec::new();
        for outgoing in carry.into_iter().chain(self.queued.try_iter()) {
            if outgoing.mark != 0 && outgoing.mark == current {
                carried.push(outgoing);
            } else {
                self.shared.lost(self.to, outgoing.message, outgoing.stamp);
            }
        }
        carried
    }

    /// Waits `pause` before dialling again, or less if the peer dialled in meanwhile
    /// (a new incarnation is up: dial it now); false if the transport is stopping.
    fn wait(&self, pause: Duration) -> bool {
        let deadline = std::time::Instant::now() + pause;
        loop {
            if self.shared.stopping() {
                return false;
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() || self.shared.kicked(self.to) {
                return true;
            }
            std::thread::sleep(left.min(Duration::from_millis(5)));
        }
    }
}

/// Reads `stream` until it ends, then marks it `closed` and the link down at once (so
/// that what is sent from then on is not written to a dead peer's socket while the
/// writer is still waiting for its next message).
fn watch(mut stream: TcpStream, closed: &AtomicBool, up: &AtomicBool) {
    let mut byte = [0u8; 64];
    while let Ok(n) = stream.read(&mut byte) {
        if n == 0 {
            break;
        }
    }
    up.store(false, Ordering::SeqCst);
    closed.store(true, Ordering::SeqCst);
    let _ = stream.shutdown(Shutdown::Both);
}
