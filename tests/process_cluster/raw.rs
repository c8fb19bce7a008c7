//! Speaking to a node's port without the shell: a connection driven byte by byte, the
//! frames and hellos to feed it, and a client whose requests are built by hand.

use crate::support::{NODES, PATIENCE};
use kv2pc::message::{Answer, ReadAt, Reply, Request};
use kv2pc::types::{TxnId, owner_of};
use kv2pc::wire::{FRAME_HEADER_LEN, Frame, FrameReader, HELLO_LEN, Hello, Role, encode_frame};
use std::io::{BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};

/// A connection to a node's port, driven byte by byte.
pub struct Raw {
    stream: TcpStream,
    /// This end's address: what the node's log names the connection by.
    pub local: SocketAddr,
    node: SocketAddr,
}

impl Raw {
    pub fn dial(addr: &str) -> Raw {
        let node: SocketAddr = addr.parse().expect("an address");
        let stream = TcpStream::connect_timeout(&node, PATIENCE).expect("the node's port");
        stream
            .set_read_timeout(Some(PATIENCE))
            .expect("a read timeout");
        let local = stream.local_addr().expect("a local address");
        Raw {
            stream,
            local,
            node,
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .expect("the node takes the bytes");
    }

    /// Reads the node's hello, which it sends to whatever greets as kv2pc.
    pub fn answer(&mut self) -> Hello {
        let mut bytes = [0u8; HELLO_LEN];
        self.stream
            .read_exact(&mut bytes)
            .expect("the node's hello");
        Hello::decode(&bytes, self.node).expect("a hello")
    }

    /// Closes this end for writing and reads what the node sends until it closes.
    pub fn close(&mut self) -> Vec<u8> {
        let _ = self.stream.shutdown(Shutdown::Write);
        let mut rest = Vec::new();
        // A reset (the node closed with bytes of ours unread) also ends the stream.
        let _ = self.stream.read_to_end(&mut rest);
        rest
    }
}

pub fn client_hello() -> Vec<u8> {
    Hello::new(Role::Client, NODES).encode().to_vec()
}

// The header built here is the payload's length, then its checksum.
const _: () = assert!(FRAME_HEADER_LEN == 8);

/// A frame header announcing `len` bytes with checksum `crc`.
pub fn header(len: u32, crc: u32) -> Vec<u8> {
    [len.to_le_bytes(), crc.to_le_bytes()].concat()
}

/// `payload` framed with its right length and checksum.
pub fn framed(payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("a small payload");
    [header(len, crc32fast::hash(payload)), payload.to_vec()].concat()
}

pub fn encoded(frame: &Frame) -> Vec<u8> {
    let mut bytes = Vec::new();
    encode_frame(frame, &mut bytes).expect("a frame encodes");
    bytes
}

/// A client connection to a node's port, with requests built by hand.
pub struct RawClient {
    stream: TcpStream,
    reader: FrameReader<BufReader<TcpStream>>,
    next: u64,
}

impl RawClient {
    pub fn dial(addr: &str) -> RawClient {
        let mut raw = Raw::dial(addr);
        raw.send(&client_hello());
        raw.answer();
        let reading = raw.stream.try_clone().expect("a second handle");
        RawClient {
            reader: FrameReader::new(BufReader::new(reading), raw.node),
            stream: raw.stream,
            next: 1,
        }
    }

    /// Sends `request` and waits for its final reply.
    pub fn ask(&mut self, request: Request) -> Result<Answer, String> {
        let id = self.next;
        self.next += 1;
        let frame = encoded(&Frame::Request { id, request });
        self.stream
            .write_all(&frame)
            .expect("the node takes the request");
        loop {
            match self.reader.read_frame().expect("a frame") {
                Some(Frame::Reply {
                    id: answered,
                    reply: Reply::Done(done),
                }) if answered == id => return done.map_err(|error| error.to_string()),
                Some(_) => {}
                None => panic!("the node closed the connection"),
            }
        }
    }

    /// Writes `value` to `key`, owned by the node dialled, commits, and reads it back
    /// as the shell's autocommit GET does.
    pub fn commit_and_read(&mut self, key: &str, value: &str) -> Option<String> {
        let (tid, written) = self.begin_and_write(key, value);
        written.expect("the write");
        let commit = Request::Commit {
            tid,
            participants: vec![owner_of(key, NODES)],
            clock: 0,
        };
        let Ok(Answer::Committed { at, .. }) = self.ask(commit) else {
            panic!("{tid} did not commit");
        };
        let read = Request::SnapshotRead {
            key: key.to_string(),
            at: ReadAt::AtLeast(at),
        };
        match self.ask(read) {
            Ok(Answer::Snapshot { value, .. }) => value,
            other => panic!("GET {key}: {other:?}"),
        }
    }

    /// Begins a transaction and writes `key` in it.
    pub fn begin_and_write(&mut self, key: &str, value: &str) -> (TxnId, Result<Answer, String>) {
        let tid = match self.ask(Request::Begin { began: 1 }) {
            Ok(Answer::Begun(tid, _)) => tid,
            other => panic!("BEGIN: {other:?}"),
        };
        let write = Request::Write {
            tid,
            key: key.to_string(),
            value: Some(value.to_string()),
            first: true,
            began: 1,
        };
        (tid, self.ask(write))
    }
}
