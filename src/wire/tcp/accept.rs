//! The listener: accepts peers' connections and reads their messages, one thread per
//! connection, refusing any connection that does not speak kv2pc.

use super::serve::serve_client;
use super::{HANDSHAKE_TIMEOUT, Shared};
use crate::error::{Error, Result};
use crate::net::Stamp;
use crate::types::NodeId;
use crate::wire::hello::wire;
use crate::wire::{Frame, FrameReader, Hello, Role};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;

/// The connections being read, to close them when the transport stops.
#[derive(Default)]
struct Connections {
    live: Mutex<HashMap<u64, TcpStream>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    next: Mutex<u64>,
}

/// The listener's thread and the connections it accepted.
pub(super) struct Acceptor {
    addr: SocketAddr,
    thread: Option<JoinHandle<()>>,
    connections: Arc<Connections>,
}

impl Acceptor {
    /// Starts accepting on `listener`.
    pub(super) fn start(listener: TcpListener, shared: Arc<Shared>) -> Result<Acceptor> {
        let addr = listener
            .local_addr()
            .map_err(|error| Error::io("reading the listener's address", error))?;
        let connections = Arc::new(Connections::default());
        let accepted = connections.clone();
        let thread = std::thread::Builder::new()
            .name(format!("listen-{}", shared.me))
            .spawn(move || accept_all(&listener, &shared, &accepted))
            .map_err(|error| Error::io(format!("starting the listener on {addr}"), error))?;
        Ok(Acceptor {
            addr,
            thread: Some(thread),
            connections,
        })
    }

    /// The address served.
    pub(super) fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting (the transport's `stopping` flag is set), closes every
    /// connection, and waits for every thread.
    pub(super) fn stop(mut self) {
        // `accept` blocks until a connection comes: bring one.
        let _ = TcpStream::connect_timeout(&reachable(self.addr), HANDSHAKE_TIMEOUT);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        for stream in self.connections.live.lock().values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        let threads = std::mem::take(&mut *self.connections.threads.lock());
        for thread in threads {
            let _ = thread.join();
        }
    }
}

/// The address to connect to for reaching a listener bound to `addr` (an unspecified
/// address, `0.0.0.0`, is reached on loopback).
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, addr.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, addr.port()).into(),
        _ => addr,
    }
}

fn accept_all(listener: &TcpListener, shared: &Arc<Shared>, connections: &Arc<Connections>) {
    for incoming in listener.incoming() {
        if shared.stopping() {
            return;
        }
        let stream = match incoming {
            Ok(stream) => stream,
            Err(error) => {
                // Out of file descriptors, say: the node goes on, and so does accepting.
                shared.log(format!("could not accept a connection: {error}"));
                std::thread::sleep(super::POLL);
                continue;
            }
        };
        spawn_reader(stream, shared, connections);
    }
}

/// Starts the thread that reads one accepted connection.
fn spawn_reader(stream: TcpStream, shared: &Arc<Shared>, connections: &Arc<Connections>) {
    let Ok(peer) = stream.peer_addr() else {
        return; // Gone already.
    };
    let id = {
        let mut next = connections.next.lock();
        *next += 1;
        *next
    };
    if let Ok(registered) = stream.try_clone() {
        connections.live.lock().insert(id, registered);
    }
    let (reading, finished) = (shared.clone(), connections.clone());
    let spawned = std::thread::Builder::new()
        .name(format!("read-{}-{peer}", shared.me))
        .spawn(move || {
            let result = read_connection(&stream, peer, &reading, id);
            finished.live.lock().remove(&id);
            let _ = stream.shutdown(Shutdown::Both);
            report(result, peer, &reading);
        });
    let mut threads = connections.threads.lock();
    threads.retain(|thread| !thread.is_finished());
    match spawned {
        Ok(thread) => threads.push(thread),
        Err(error) => {
            connections.live.lock().remove(&id);
            shared.log(format!("could not start a reader for {peer}: {error}"));
        }
    }
}

/// Logs how a connection ended.
fn report(result: Result<Dialler>, peer: SocketAddr, shared: &Shared) {
    if shared.stopping() {
        return;
    }
    match result {
        Ok(Dialler::Node(from)) => shared.log(format!("node {from} at {peer} closed its link")),
        Ok(Dialler::Client) => shared.log(format!("the client at {peer} disconnected")),
        Err(error) => shared.log(format!(
            "closed a connection: {error}; nothing it sent after that was read, and the \
             node serves on"
        )),
    }
}

/// Checks the dialler's hello, answers it, and delivers its messages (or, for a client,
/// serves its requests) until it closes the connection; gives back who it was.
fn read_connection(
    stream: &TcpStream,
    peer: SocketAddr,
    shared: &Shared,
    client: u64,
) -> Result<Dialler> {
    let context = || format!("setting up the connection from {peer}");
    stream
        .set_nodelay(true)
        .and_then(|()| stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT)))
        .map_err(|error| Error::io(context(), error))?;
    let mut reader = FrameReader::new(BufReader::new(stream), peer);
    let hello = reader.read_hello()?;
    // It greeted as kv2pc does, so it can read a hello: answer before judging its own,
    // so that a dialler this node refuses (another version, another cluster size) can
    // tell from the answer why, and say so in its own log.
    let mine = Hello::new(Role::Node(shared.me), shared.nodes).encode();
    let mut writer = stream;
    writer
        .write_all(&mine)
        .map_err(|error| Error::io(context(), error))?;
    hello.admit(shared.me, shared.nodes, peer)?;
    stream
        .set_read_timeout(None)
        .map_err(|error| Error::io(context(), error))?;
    let Role::Node(from) = hello.role else {
        let Some(serve) = &shared.serve else {
            return Err(wire(
                peer,
                "it is a client, and this node serves no clients".into(),
            ));
        };
        serve_client(stream, &mut reader, peer, shared, serve, client)?;
        return Ok(Dialler::Client);
    };
    shared.inbound_up(from, client);
    let read = read_frames(&mut reader, peer, shared, from);
    shared.inbound_down(from, client);
    read?;
    Ok(Dialler::Node(from))
}

/// Delivers the protocol messages node `from` sends until it closes the connection.
fn read_frames(
    reader: &mut FrameReader<BufReader<&TcpStream>>,
    peer: SocketAddr,
    shared: &Shared,
    from: NodeId,
) -> Result<()> {
    while let Some(frame) = reader.read_frame()? {
        match frame {
            Frame::Peer {
                message,
                clock,
                depth,
            } => shared
                .deliver
                .message(from, message, Stamp { clock, depth }),
            other => {
                return Err(wire(
                    peer,
                    format!(
                        "node {from} sent {} on a link between nodes, where only protocol \
                         messages travel",
                        other.kind()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Who was at the other end of a connection that closed.
enum Dialler {
    Node(NodeId),
    Client,
}
