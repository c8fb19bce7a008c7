//! Observation: every protocol message and log write, as it happens.
//!
//! A hook installed with `Cluster::set_trace` receives [`TraceEvent`]s from the node
//! threads. Events carry a causal `depth` (a client request is depth 0; what a node does
//! on receiving a message of depth d is depth d + 1), so an observer that wants a
//! deterministic order across threads can sort a batch of events by depth and node.
//!
//! One event is not reported by the nodes: [`TraceEvent::Told`], the moment a parallel
//! commit's client hears COMMIT, which the shell places from the votes it saw (the
//! reply is a client's answer, not a protocol message, so no node traces it; see
//! `shell::staged`).

use crate::crash::CrashPoint;
use crate::types::{NodeId, TxnId};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A log record's kind, as `wal::Record::kind` names it. (A name of its own for serde's
/// sake: a field spelled `&'static str` would be borrowed from the input when a trace
/// event is read off the wire, which no input outlives; read through this name, it is
/// looked up among the kinds instead.)
pub type RecordKind = &'static str;

/// The name of every kind of log record (`wal::Record::kind`; a unit test there checks
/// the two agree).
pub const RECORD_KINDS: [&str; 11] = [
    "Prepare",
    "Commit",
    "Abort",
    "OnePhaseCommit",
    "Decision",
    "End",
    "TidLease",
    "Heuristic",
    "Staged",
    "Refused",
    "StagedAbort",
];

/// Reads a record kind's name back as the `&'static str` the event carries (an event
/// that crossed the wire); a name that is not a kind is refused.
fn deserialize_kind<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<RecordKind, D::Error> {
    let name = String::deserialize(deserializer)?;
    RECORD_KINDS
        .into_iter()
        .find(|kind| *kind == name)
        .ok_or_else(|| serde::de::Error::custom(format!("{name:?} is not a log record kind")))
}

/// Something that happened inside the cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TraceEvent {
    /// A node sent a message.
    Message {
        /// Causal depth.
        depth: u32,
        /// The sender.
        from: NodeId,
        /// The receiver.
        to: NodeId,
        /// The message's label (`PREPARE`, `VOTE YES` ...).
        label: String,
        /// The transaction.
        tid: Option<TxnId>,
        /// Whether the receiver was down, so the message was lost.
        dropped: bool,
    },
    /// A node appended a record to its log.
    Log {
        /// Causal depth.
        depth: u32,
        /// The node.
        node: NodeId,
        /// The record kind.
        #[serde(deserialize_with = "deserialize_kind")]
        kind: RecordKind,
        /// The transaction.
        tid: Option<TxnId>,
        /// Whether it is fsynced before anything depending on it leaves.
        forced: bool,
    },
    /// A node crashed, at an armed point or by command.
    Crash {
        /// Causal depth.
        depth: u32,
        /// The node.
        node: NodeId,
        /// The point, if it died at one.
        point: Option<CrashPoint>,
        /// The transaction it was working on at the point.
        tid: Option<TxnId>,
    },
    /// The deadlock detector found a cycle and chose a victim.
    Deadlock {
        /// Causal depth.
        depth: u32,
        /// The cycle, starting and ending at the victim.
        cycle: Vec<TxnId>,
        /// The victim.
        victim: TxnId,
    },
    /// A coordinator told its client that a parallel commit committed: the last YES
    /// vote arrived, so `Staged` and every `Prepare` are durable, and the client hears
    /// COMMIT before the `Decision` is logged. Placed by the shell, not emitted by a
    /// node (see the module doc); in classic mode the client is told after the
    /// `Decision`, as the command's answer, and no such event is placed.
    Told {
        /// Causal depth: that of the handling of the last vote.
        depth: u32,
        /// The coordinator.
        node: NodeId,
        /// The transaction.
        tid: TxnId,
    },
    /// A node tells, in words, what it decided and why: the outcome of a transaction it
    /// found in doubt at recovery, a heuristic decision's warning, a heuristic mixed
    /// outcome. Shown whether the trace is on or not.
    Narrate {
        /// Causal depth.
        depth: u32,
        /// The node.
        node: NodeId,
        /// What it says.
        text: String,
    },
}

impl TraceEvent {
    /// The causal depth of the event.
    pub fn depth(&self) -> u32 {
        match self {
            TraceEvent::Message { depth, .. }
            | TraceEvent::Log { depth, .. }
            | TraceEvent::Crash { depth, .. }
            | TraceEvent::Deadlock { depth, .. }
            | TraceEvent::Told { depth, .. }
            | TraceEvent::Narrate { depth, .. } => *depth,
        }
    }
}

impl std::fmt::Display for TraceEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tid = |tid: &Option<TxnId>| tid.map(|t| format!(" {t}")).unwrap_or_default();
        match self {
            TraceEvent::Message {
                from,
                to,
                label,
                tid: t,
                dropped,
                ..
            } => {
                write!(f, "node{from} -> node{to}  {label}{}", tid(t))?;
                if *dropped {
                    write!(f, "  (lost: node {to} is down)")?;
                }
                Ok(())
            }
            TraceEvent::Log {
                node,
                kind,
                tid: t,
                forced,
                ..
            } => {
                let sync = if *forced { "fsync" } else { "lazy" };
                write!(f, "node{node}  log {kind}{} ({sync})", tid(t))
            }
            TraceEvent::Crash {
                node,
                point: Some(point),
                tid: t,
                ..
            } => {
                write!(f, "node{node}  CRASHED at {point}{}", tid(t))
            }
            TraceEvent::Crash {
                node, point: None, ..
            } => write!(f, "node{node}  CRASHED"),
            TraceEvent::Deadlock { cycle, victim, .. } => {
                let path: Vec<String> = cycle.iter().map(TxnId::to_string).collect();
                write!(f, "deadlock {}: victim {victim}", path.join(" -> "))
            }
            TraceEvent::Told { node, tid, .. } => write!(
                f,
                "node{node} -> client  COMMITTED {tid}  (Staged and every Prepare are durable)"
            ),
            TraceEvent::Narrate { node, text, .. } => write!(f, "node {node}: {text}"),
        }
    }
}

/// The hook's type.
pub type TraceHook = Arc<dyn Fn(&TraceEvent) + Send + Sync>;

/// Where node threads report events; empty unless someone listens.
#[derive(Default)]
pub struct Tracer {
    hook: RwLock<Option<TraceHook>>,
}

impl Tracer {
    /// Installs or removes the hook.
    pub fn set(&self, hook: Option<TraceHook>) {
        *self.hook.write() = hook;
    }

    /// Whether a hook is installed (to skip building events nobody reads).
    pub fn enabled(&self) -> bool {
        self.hook.read().is_some()
    }

    /// Reports an event to the hook, if any.
    pub fn emit(&self, event: impl FnOnce() -> TraceEvent) {
        if let Some(hook) = self.hook.read().as_ref() {
            hook(&event());
        }
    }
}
