//! kv2pc on the wire: how nodes and clients in separate processes talk over a byte
//! stream (TCP), and how a node refuses a stream that is not kv2pc's.
//!
//! # The format
//!
//! A connection opens with a **hello** from each side, then carries **frames** until it
//! closes.
//!
//! ```text
//! hello  (17 bytes, fixed for every version)
//!   magic    6 bytes   "kv2pc\0"
//!   version  u16 LE    WIRE_VERSION
//!   role     u8        1 = node, 2 = client
//!   node     u32 LE    the sender's node id (0 for a client)
//!   nodes    u32 LE    the size of the cluster the sender belongs to
//! frame  (8 + length bytes)
//!   length   u32 LE    of the payload, at most MAX_FRAME_BYTES
//!   crc      u32 LE    CRC-32 of the payload
//!   payload            one `Frame`, bincode 2 through serde (`wal::codec`)
//! ```
//!
//! The dialling side sends its hello first; the accepting side answers with its own and
//! checks the dialler's ([`Hello::admit`]), and the dialler checks the answer in turn
//! ([`Hello::confirm`]): both ends then know they speak the same version, belong to
//! clusters of the same size, and that the node answering is the one the dialler meant
//! (a `--peers` list in the wrong order is caught here, not as misrouted transactions).
//! The acceptor answers before it judges, so that when it refuses a dialler of another
//! version or cluster size, the dialler can read why from the answer and log it too. A
//! stream that does not even start with kv2pc's magic gets no answer.
//!
//! Why the hello is not a bincode value like the rest: its layout must never change, so
//! that a node of any version can read the version of any other and say so, instead of
//! failing to decode. Everything after it may change with [`WIRE_VERSION`].
//!
//! Why a CRC when TCP has a checksum: TCP's is 16 bits and misses about one damaged
//! segment in 65,536; a proxy or a bug can also deliver bytes intact that are not what
//! was sent. CRC-32 of a small frame costs tens of nanoseconds (`crc32fast`), far below
//! a loopback round trip, and it turns a desynchronised stream into a clear error
//! before bincode tries to read meaning into it.
//!
//! # Reading what the network sends
//!
//! Every byte from a socket is untrusted. [`FrameReader`] never panics and never
//! allocates more than the length it has checked: a length over [`MAX_FRAME_BYTES`] is
//! refused before any buffer is grown; a frame whose CRC does not match, a payload that
//! is not a `Frame`, or one with bytes left over is refused; a stream that ends in the
//! middle of a frame is refused with how far it got. Each refusal is an
//! [`Error::Wire`](crate::Error::Wire) naming the address at the other end and what was
//! wrong, and the caller closes that connection: nothing in it was acted on, and the
//! node goes on serving everyone else.
//!
//! # Limits
//!
//! - A frame holds at most [`MAX_FRAME_BYTES`]. Every protocol message and request is far
//!   smaller (a write carries one key and value, bounded by `types::MAX_KEY_LEN` and
//!   `MAX_VALUE_LEN`), but a scan's answer holds every key of the range on one node: one
//!   larger than a frame is refused when it is encoded, with an error saying so, rather
//!   than sent in pieces.
//! - There is no authentication and no encryption: anyone who can reach the port can
//!   speak to the node. kv2pc is a teaching instrument; keep it on loopback or a
//!   private network.
//! - The frame carries no sequence number: order and integrity within one connection
//!   are TCP's. Loss across a reconnect is the transport's business (see `tcp`).

mod frame;
mod hello;
pub mod tcp;

pub use frame::{FrameReader, encode_frame};
pub use hello::{HELLO_LEN, Hello, Role};

use crate::message::{Message, Reply, Request};
use crate::trace::TraceEvent;
use crate::types::Timestamp;
use serde::{Deserialize, Serialize};

/// The version of everything after the hello. Raise it with any change to [`Frame`] or
/// to a type it carries (their variant order included: bincode writes enums as indexes).
pub const WIRE_VERSION: u16 = 2;

/// The largest payload one frame may carry (32 MiB): far above any protocol message,
/// and a bound on what a damaged or hostile length can make a reader allocate.
pub const MAX_FRAME_BYTES: u32 = 32 * 1024 * 1024;

/// The bytes in front of each payload: its length and its CRC.
pub const FRAME_HEADER_LEN: usize = 8;

/// What one frame carries.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Frame {
    /// Node to node: a protocol message, from the node the connection's hello named.
    Peer {
        /// The message.
        message: Message,
        /// The sender's clock when it sent it (`net::Stamp::clock`).
        clock: Timestamp,
        /// The causal depth of what caused it, for the trace (`net::Stamp::depth`).
        depth: u32,
    },
    /// Client to node: a request, answered by `Reply` frames with the same id.
    Request {
        /// The client's number for this request on this connection.
        id: u64,
        /// The request.
        request: Request,
    },
    /// Node to client: one reply to the request numbered `id` (zero or one `Waiting`,
    /// then one `Done`, as on an in-process reply channel).
    Reply {
        /// The request answered.
        id: u64,
        /// The reply.
        reply: Reply,
    },
    /// Client to node: a request outside the protocol (a shell's `STATUS`, `SHOW
    /// LOG` ...), answered by an `AdminReply` with the same id. Its bytes are the
    /// cluster layer's (`cluster::admin`): the wire only carries them.
    Admin {
        /// The client's number for this request on this connection.
        id: u64,
        /// The request, encoded.
        body: Vec<u8>,
    },
    /// Node to client: the answer to the `Admin` numbered `id`, encoded.
    AdminReply {
        /// The request answered.
        id: u64,
        /// The answer, encoded.
        body: Vec<u8>,
    },
    /// Node to client: something that happened on the node, for a client that asked
    /// for the trace (`Admin::Trace`).
    Trace(TraceEvent),
}

impl Frame {
    /// The frame's kind, as an error message names it.
    pub fn kind(&self) -> &'static str {
        match self {
            Frame::Peer { .. } => "a protocol message",
            Frame::Request { .. } => "a client request",
            Frame::Reply { .. } => "a reply",
            Frame::Admin { .. } => "a shell's request",
            Frame::AdminReply { .. } => "an answer to a shell",
            Frame::Trace(_) => "a trace event",
        }
    }
}

#[cfg(test)]
mod tests;
