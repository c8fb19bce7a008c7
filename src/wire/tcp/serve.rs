//! The server side of a client connection: a shell (or another node handing on a
//! client's operation) sends requests and control requests; the node answers them, and
//! streams its trace events to a client that asked for them.
//!
//! Three threads per connection:
//! - the **reader** (the connection's thread in `accept`) hands each request to the
//!   node with a mailbox of its own, and answers each control request itself
//!   ([`Serve::admin`]);
//! - the **pump** waits on every mailbox of the connection at once (a [`Bell`] they all
//!   ring) and turns each reply into a frame, so that a request waiting for a lock does
//!   not hold up the answers to the others;
//! - the **writer** writes the frames, in the order they were made: a trace event is
//!   written before the answer to a control request asked after it happened, which is
//!   what lets a shell settle across processes (see `cluster::remote`).
//!
//! A mailbox that closes without its final reply (the request was handed on to a node
//! in another process, which went away before answering) is answered with that error,
//! as the in-process client would learn it.
//!
//! # A client that goes away
//!
//! The connection keeps the transactions begun through it (the coordinator's
//! `Begun` replies pass through the pump) that it has not asked to commit or abort.
//! When it ends with some open, [`Serve::gone`] is given them, and the node aborts
//! them as their client would have, releasing their locks: a shell killed in the
//! middle of a transaction leaves nothing held. One whose `COMMIT` was sent is left to
//! finish: the client may have died before hearing that it committed.
//!
//! # Limits
//!
//! A transaction is tied to the connection to its coordinator: if only that
//! connection breaks (the network, not the client), the transaction is aborted all the
//! same, and the client learns it at its next request. There is no way to take a
//! transaction over to a new connection.

use super::Shared;
use crate::error::{Error, Result};
use crate::message::Answer;
use crate::message::{Reply, Request};
use crate::net::{Bell, Mailbox, ReplySender, mailbox_ringing};
use crate::types::{NodeId, TxnId};
use crate::wire::hello::wire;
use crate::wire::{Frame, FrameReader, encode_frame};
use crossbeam::channel::{Receiver, Sender, TryRecvError, unbounded};
use parking_lot::Mutex;
use std::collections::BTreeSet;
use std::io::{BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// The most frames written with one `write` call.
const MAX_BATCH: usize = 256;

/// How long the pump sleeps on its bell at most, so that a lost ring costs little.
const PUMP_NAP: Duration = Duration::from_millis(50);

/// What a node process offers its clients: the transport's view of the local node.
pub trait Serve: Send + Sync + 'static {
    /// Hands a client's request to the node; gives the reply channel back, with the
    /// error to answer, if the node is down.
    fn request(
        &self,
        request: Request,
        reply: ReplySender,
    ) -> std::result::Result<(), (ReplySender, Error)>;
    /// Answers a control request (its bytes are the cluster layer's, as are the
    /// answer's). `trace` is where this connection's trace events go, if it asks for
    /// them.
    fn admin(&self, body: &[u8], client: u64, trace: &Sender<Frame>) -> Vec<u8>;
    /// Waits until `bell` rings or `timeout` passes, counted as `receivers` clients
    /// waiting on the node (its measure of load).
    fn wait(&self, bell: &Bell, receivers: usize, timeout: Duration);
    /// The connection numbered `client` closed: it gets no more trace events, and the
    /// transactions it left `open` (begun here, never asked to commit or abort) are to
    /// be aborted.
    fn gone(&self, client: u64, open: Vec<TxnId>);
}

/// Serves one client connection whose hello was read and answered, until it closes.
pub(super) fn serve_client(
    stream: &TcpStream,
    reader: &mut FrameReader<BufReader<&TcpStream>>,
    peer: SocketAddr,
    shared: &Shared,
    serve: &Arc<dyn Serve>,
    client: u64,
) -> Result<()> {
    let context = || format!("serving the client at {peer}");
    let (frames, to_write) = unbounded::<Frame>();
    let writing = stream
        .try_clone()
        .map_err(|error| Error::io(context(), error))?;
    let writer = std::thread::Builder::new()
        .name(format!("write-{}-{peer}", shared.me))
        .spawn(move || write_all(&writing, &to_write))
        .map_err(|error| Error::io(context(), error))?;
    let bell = Arc::new(Bell::default());
    let (register, registered) = unbounded::<(u64, Mailbox)>();
    let open = Arc::new(Open::default());
    let pump = {
        let (bell, frames, serve) = (bell.clone(), frames.clone(), serve.clone());
        let (me, open) = (shared.me, open.clone());
        std::thread::Builder::new()
            .name(format!("pump-{me}-{peer}"))
            .spawn(move || pump(me, &bell, &registered, &frames, &*serve, &open))
            .map_err(|error| Error::io(context(), error))?
    };
    let connection = Connection {
        peer,
        client,
        frames: &frames,
        bell: &bell,
        register: &register,
        open: &open,
    };
    let result = read_requests(reader, serve, &connection);
    drop(register);
    bell.ring();
    let _ = pump.join();
    // After the pump: a `Begun` it passed on last is counted.
    let left: Vec<TxnId> = std::mem::take(&mut *open.0.lock()).into_iter().collect();
    serve.gone(client, left);
    drop(frames);
    let _ = writer.join();
    result
}

/// The transactions begun through a connection and not yet asked to end.
#[derive(Default)]
struct Open(Mutex<BTreeSet<TxnId>>);

impl Open {
    /// Notes what `reply`, on its way to the client, begins.
    fn begun(&self, reply: &Reply) {
        if let Reply::Begun(tid, _) | Reply::Done(Ok(Answer::Begun(tid, _))) = reply {
            self.0.lock().insert(*tid);
        }
    }

    /// Notes what `request`, from the client, ends (or asks to).
    fn ending(&self, request: &Request) {
        if let Request::Commit { tid, .. } | Request::Abort { tid, .. } = request {
            self.0.lock().remove(tid);
        }
    }
}

/// What the reader shares with the pump and the writer.
struct Connection<'a> {
    peer: SocketAddr,
    client: u64,
    frames: &'a Sender<Frame>,
    bell: &'a Arc<Bell>,
    register: &'a Sender<(u64, Mailbox)>,
    open: &'a Open,
}

/// Reads the client's frames until it closes the connection.
fn read_requests(
    reader: &mut FrameReader<BufReader<&TcpStream>>,
    serve: &Arc<dyn Serve>,
    connection: &Connection<'_>,
) -> Result<()> {
    let Connection {
        peer,
        client,
        frames,
        bell,
        register,
        open,
    } = *connection;
    while let Some(frame) = reader.read_frame()? {
        match frame {
            Frame::Request { id, request } => {
                open.ending(&request);
                let (reply, mailbox) = mailbox_ringing(bell);
                if let Err((reply, error)) = serve.request(request, reply) {
                    let _ = frames.send(Frame::Reply {
                        id,
                        reply: Reply::Done(Err(error)),
                    });
                    drop(reply);
                    continue;
                }
                let _ = register.send((id, mailbox));
                bell.ring();
            }
            Frame::Admin { id, body } => {
                let body = serve.admin(&body, client, frames);
                let _ = frames.send(Frame::AdminReply { id, body });
            }
            other => {
                return Err(wire(
                    peer,
                    format!(
                        "a client sent {}, where only requests travel from a client",
                        other.kind()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Turns the replies in the connection's mailboxes into frames, until the reader is
/// gone.
fn pump(
    me: NodeId,
    bell: &Bell,
    registered: &Receiver<(u64, Mailbox)>,
    frames: &Sender<Frame>,
    serve: &dyn Serve,
    begun: &Open,
) {
    let mut open: Vec<(u64, Mailbox)> = Vec::new();
    loop {
        loop {
            match registered.try_recv() {
                Ok(entry) => open.push(entry),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return,
            }
        }
        open.retain(|(id, mailbox)| {
            // Looked at before draining: a sender that queues its last reply and goes
            // between the two is then drained, not taken for one that vanished.
            let closed = mailbox.is_closed();
            while let Some((reply, _work)) = mailbox.try_recv() {
                begun.begun(&reply);
                let done = matches!(reply, Reply::Done(_));
                let _ = frames.send(Frame::Reply { id: *id, reply });
                if done {
                    return false;
                }
            }
            if closed {
                let error = Error::NodeDown {
                    node: me,
                    detail: "the node it was handed on to went away before answering".into(),
                };
                let reply = Reply::Done(Err(error));
                let _ = frames.send(Frame::Reply { id: *id, reply });
                return false;
            }
            true
        });
        serve.wait(bell, open.len(), PUMP_NAP);
    }
}

/// Writes the frames made for the client, until the connection ends.
fn write_all(mut stream: &TcpStream, frames: &Receiver<Frame>) {
    let mut buf = Vec::new();
    while let Ok(first) = frames.recv() {
        buf.clear();
        for frame in std::iter::once(first).chain(frames.try_iter().take(MAX_BATCH - 1)) {
            if let Err(error) = encode_frame(&frame, &mut buf) {
                // Only a scan's answer can be too large: tell the client why.
                if let Frame::Reply { id, .. } = frame {
                    let reply = Reply::Done(Err(error));
                    let _ = encode_frame(&Frame::Reply { id, reply }, &mut buf);
                }
            }
        }
        if stream.write_all(&buf).is_err() {
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
    }
}
