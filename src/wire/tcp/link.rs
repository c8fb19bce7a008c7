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
        let outgoing = Outgoing { message, stamp };
        let refused = match &self.queue {
            Some(queue) if self.is_up() => queue.send(outgoing).err().map(|error| error.0),
            _ => Some(outgoing),
        };
        match refused {
            Some(Outgoing { message, stamp }) => {
                self.shared.lost(self.to, message, stamp);
                false
            }
            None => true,
        }
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
    /// The connection broke; dial again.
    Broken(String),
}

impl Writer {
    fn run(self) {
        let mut backoff = MIN_BACKOFF;
        let mut reported = false;
        while !self.shared.stopping() {
            match self.dial() {
                Ok(stream) => {
                    backoff = MIN_BACKOFF;
                    reported = false;
                    self.drop_queued();
                    self.up.store(true, Ordering::SeqCst);
                    let to = (self.to, self.addr);
                    self.shared
                        .log(format!("connected to node {} at {}", to.0, to.1));
                    let ended = self.serve(stream);
                    self.up.store(false, Ordering::SeqCst);
                    self.drop_queued();
                    match ended {
                        Ended::Stopping => return,
                        Ended::Broken(why) => self.shared.log(format!(
                            "lost the link to node {} at {}: {why}; messages to it are \
                             dropped until it is back",
                            to.0, to.1
                        )),
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
    fn serve(&self, stream: TcpStream) -> Ended {
        let closed = Arc::new(AtomicBool::new(false));
        let watcher = match stream.try_clone() {
            Ok(watched) => {
                let closed = closed.clone();
                std::thread::Builder::new()
                    .name(format!("watch-{}-{}", self.shared.me, self.to))
                    .spawn(move || watch(watched, &closed))
                    .ok()
            }
            Err(_) => None,
        };
        let ended = self.write_until_broken(&stream, &closed);
        let _ = stream.shutdown(Shutdown::Both);
        if let Some(watcher) = watcher {
            let _ = watcher.join();
        }
        ended
    }

    fn write_until_broken(&self, mut stream: &TcpStream, closed: &AtomicBool) -> Ended {
        let mut buf = Vec::new();
        let mut batch = Vec::new();
        loop {
            if closed.load(Ordering::SeqCst) {
                return Ended::Broken("the peer closed the connection".into());
            }
            match self.queued.recv_timeout(POLL) {
                Ok(first) => batch.push(first),
                Err(RecvTimeoutError::Timeout) if !self.shared.stopping() => continue,
                Err(_) => return Ended::Stopping,
            }
            batch.extend(self.queued.try_iter().take(MAX_BATCH - 1));
            buf.clear();
            let mut must_report = Vec::new();
            for Outgoing { message, stamp } in batch.drain(..) {
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
                return Ended::Broken(error.to_string());
            }
        }
    }

    /// Drops everything queued: the peer it was meant for is gone.
    fn drop_queued(&self) {
        for Outgoing { message, stamp } in self.queued.try_iter() {
            self.shared.lost(self.to, message, stamp);
        }
    }

    /// Waits `pause` before dialling again, dropping what is sent meanwhile; false if
    /// the transport is stopping.
    fn wait(&self, pause: Duration) -> bool {
        let deadline = std::time::Instant::now() + pause;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return !self.shared.stopping();
            }
            match self.queued.recv_timeout(left.min(POLL)) {
                Ok(Outgoing { message, stamp }) => self.shared.lost(self.to, message, stamp),
                Err(RecvTimeoutError::Timeout) if !self.shared.stopping() => {}
                Err(_) => return false,
            }
        }
    }
}

/// Reads `stream` until it ends, then marks it `closed`.
fn watch(mut stream: TcpStream, closed: &AtomicBool) {
    let mut byte = [0u8; 64];
    while let Ok(n) = stream.read(&mut byte) {
        if n == 0 {
            break;
        }
    }
    closed.store(true, Ordering::SeqCst);
    let _ = stream.shutdown(Shutdown::Both);
}
