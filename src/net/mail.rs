//! What travels in a node's inbox: protocol inputs, client requests and the cluster's
//! control requests, each in an [`Envelope`] with its work token.

use super::mailbox::ReplySender;
use super::work::{Label, What, Work};
use crate::crash::CrashPoint;
use crate::error::Result;
use crate::lock::KeyLocks;
use crate::message::Request;
use crate::node::Input;
use crate::types::{NodeId, TxnId};
use crossbeam::channel::Sender;

/// A node's status, for `STATUS`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NodeStatus {
    /// The node.
    pub node: NodeId,
    /// Whether it is running.
    pub up: bool,
    /// Transactions working on this node's keys (participant).
    pub active: Vec<TxnId>,
    /// Transactions prepared here and undecided, with their coordinators.
    pub in_doubt: Vec<(TxnId, NodeId)>,
    /// Transactions this node coordinates that are open or committing.
    pub coordinating: Vec<TxnId>,
    /// Commit decisions this node has not seen acknowledged by every participant.
    pub unacknowledged: Vec<TxnId>,
    /// Committed keys stored here.
    pub keys: usize,
    /// Bytes of log since the last checkpoint.
    pub log_bytes: u64,
    /// fsyncs done by this incarnation.
    pub fsyncs: u64,
    /// The crash point armed on it, if any.
    pub armed: Option<CrashPoint>,
    /// Why it stopped, if it stopped on an error (a failed log write) rather than a crash.
    pub failure: Option<String>,
    /// Heuristic mixed outcomes found here, as `(tid, committed here)`.
    pub mixed: Vec<(TxnId, bool)>,
}

/// Requests to a node thread from the cluster, outside the protocol.
pub enum Control {
    /// Die now, losing everything not fsynced.
    Crash,
    /// Die the next time the protocol reaches this point.
    Arm(CrashPoint),
    /// Write a checkpoint now.
    Checkpoint(Sender<Result<()>>),
    /// Report status.
    Status(Sender<NodeStatus>),
    /// Report where the log is known durable: the current segment and the offset in it.
    Synced(Sender<(u64, u64)>),
    /// Report the lock table.
    Locks(Sender<Vec<KeyLocks>>),
    /// Report the committed data, sorted by key.
    Data(Sender<Vec<(String, String)>>),
    /// Make the node's next log write fail as a full disk would (fault injection).
    FailNextWrite,
    /// Nothing but the end-of-batch work (deadlock check, published state): a poke
    /// after the settings change.
    Wake,
    /// Fsync the log now: step mode let a queued fsync go.
    StepFsync,
    /// Stop cleanly, flushing the log.
    Shutdown,
    /// Settle an in-doubt transaction by hand (`RESOLVE`): commit if true, else abort.
    Resolve(TxnId, bool, Sender<Result<()>>),
    /// Panic with this message, in the middle of a batch: a bug, simulated, to test that
    /// a node thread's panic is reported as a crash (fault injection for tests; no
    /// command reaches it).
    #[doc(hidden)]
    Panic(String),
}

/// An item in a node's inbox.
pub enum Mail {
    /// A protocol input, with its causal depth.
    Input(Input, u32),
    /// A client request and where to reply.
    Client(Request, ReplySender),
    /// A control request.
    Control(Control),
}

/// Mail with the work token that keeps it in flight until its node has handled it.
pub struct Envelope {
    /// What is delivered.
    pub mail: Mail,
    /// Ends when the node has handled the mail (at the end of its batch) or dropped it.
    pub work: Work,
}

impl Mail {
    /// How the work of delivering this to `node` is labelled.
    pub fn label(&self, node: NodeId) -> Label {
        let what = match self {
            Mail::Input(..) => What::Message,
            Mail::Client(..) => What::Request,
            Mail::Control(_) => What::Control,
        };
        Label::on(what, node)
    }
}
