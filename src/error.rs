//! One error type for the whole library, grouped by meaning rather than by source, so a
//! caller can tell "your transaction was aborted, retry it" from "the disk is corrupt".
//! Every message names what went wrong and, where there is one, what to do about it.

use crate::types::{NodeId, OutOfLimits, TxnId};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The library's result type.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong, by meaning.
///
/// It crosses the wire in a client's `Reply` (see `wire`), so it is serde data; an I/O
/// error's cause travels as its message alone (see `io_as_text`).
#[derive(Debug, Serialize, Deserialize)]
pub enum Error {
    /// The transaction was aborted; nothing it wrote is visible. Retrying may succeed.
    Aborted {
        /// The transaction.
        tid: TxnId,
        /// Why, in the protocol's terms (a deadlock cycle, a NO vote, a timeout ...).
        reason: String,
    },
    /// The input was not acceptable (an empty key, a value too long, an unknown node).
    /// Nothing was changed.
    InvalidInput(String),
    /// The node is down (crashed and not restarted), or crashed while serving the request.
    NodeDown {
        /// The node.
        node: NodeId,
        /// What the caller should know about the request it was serving.
        detail: String,
    },
    /// The coordinator crashed after the commit began: the outcome is decided by recovery,
    /// and the client cannot know it until then.
    OutcomeUnknown {
        /// The transaction.
        tid: TxnId,
        /// The coordinator that crashed.
        coordinator: NodeId,
    },
    /// A file holds bytes that cannot be what kv2pc wrote: a bad checksum before the end of
    /// a log, an unknown format. The node refuses to start rather than lose data.
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The byte offset of the bad data.
        offset: u64,
        /// What is wrong there.
        detail: String,
    },
    /// The data directory cannot be used as asked (another cluster size, a newer format,
    /// locked by another process).
    DataDir {
        /// The directory.
        path: PathBuf,
        /// What is wrong and what to do.
        detail: String,
    },
    /// An operating-system I/O error, with what kv2pc was doing and on which file.
    Io {
        /// What was being done, e.g. "appending to /d/node1/log.000001".
        context: String,
        /// The cause.
        #[serde(with = "io_as_text")]
        source: std::io::Error,
    },
    /// Another process on the network sent what kv2pc does not speak: not kv2pc at all,
    /// another version of it, a member of another cluster, or a damaged frame. The
    /// connection is closed; nothing it sent was acted on.
    Wire {
        /// The address at the other end of the connection.
        peer: SocketAddr,
        /// What was wrong, and what to do about it.
        detail: String,
    },
    /// The cluster has been closed.
    Closed,
}

/// An I/O error as its message, for the wire: an `io::Error` is not data, and its
/// message is all that is ever shown of it. Read back, it is an error of kind `Other`.
mod io_as_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(source: &std::io::Error, out: S) -> Result<S::Ok, S::Error> {
        out.serialize_str(&source.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(input: D) -> Result<std::io::Error, D::Error> {
        String::deserialize(input).map(std::io::Error::other)
    }
}

impl Error {
    /// Wraps an I/O error with what was being done when it happened.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Aborted { tid, reason } => write!(f, "{tid} aborted: {reason}"),
            Error::InvalidInput(message) => write!(f, "{message}"),
            Error::NodeDown { node, detail } => write!(f, "node {node} is down: {detail}"),
            Error::OutcomeUnknown { tid, coordinator } => write!(
                f,
                "coordinator node {coordinator} crashed while committing {tid}; its outcome \
                 will be settled by recovery when node {coordinator} restarts"
            ),
            Error::Corrupt {
                path,
                offset,
                detail,
            } => write!(
                f,
                "{} is corrupt at byte {offset}: {detail}; the node will not start, so that \
                 no committed data is lost",
                path.display()
            ),
            Error::DataDir { path, detail } => {
                write!(f, "cannot use data directory {}: {detail}", path.display())
            }
            Error::Io { context, source } => write!(f, "{context}: {source}"),
            Error::Wire { peer, detail } => write!(f, "the connection with {peer}: {detail}"),
            Error::Closed => write!(f, "the cluster is closed"),
        }
    }
}

impl From<OutOfLimits> for Error {
    /// A key or value outside the limits is input the library does not accept.
    fn from(refused: OutOfLimits) -> Error {
        Error::InvalidInput(refused.0)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A copy of an error; an I/O error's cause is copied as its kind and message (an
/// `io::Error` cannot be cloned), which is all that is ever shown of it. A simulated
/// cluster forked by an explorer copies the errors its clients hold.
impl Clone for Error {
    fn clone(&self) -> Error {
        match self {
            Error::Aborted { tid, reason } => Error::Aborted {
                tid: *tid,
                reason: reason.clone(),
            },
            Error::InvalidInput(text) => Error::InvalidInput(text.clone()),
            Error::NodeDown { node, detail } => Error::NodeDown {
                node: *node,
                detail: detail.clone(),
            },
            Error::OutcomeUnknown { tid, coordinator } => Error::OutcomeUnknown {
                tid: *tid,
                coordinator: *coordinator,
            },
            Error::Corrupt {
                path,
                offset,
                detail,
            } => Error::Corrupt {
                path: path.clone(),
                offset: *offset,
                detail: detail.clone(),
            },
            Error::DataDir { path, detail } => Error::DataDir {
                path: path.clone(),
                detail: detail.clone(),
            },
            Error::Io { context, source } => Error::Io {
                context: context.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            Error::Wire { peer, detail } => Error::Wire {
                peer: *peer,
                detail: detail.clone(),
            },
            Error::Closed => Error::Closed,
        }
    }
}
