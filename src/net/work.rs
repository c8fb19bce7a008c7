//! Work tokens: what `Cluster::settle` waits for, counted by ownership rather than by
//! hand-paired increments and decrements.
//!
//! A [`Work`] is created when a unit of work starts (a message sent, a client request, a
//! reply on its way, an fsync asked for, an item held in a node's outbox, a recovery, a
//! shell command running) and travels with that work: in the inbox envelope, in the
//! outbox item, in the syncer's request, in the reply queue. Dropping it ends the unit
//! (RAII), so a count can no more be left unpaired than a value can be dropped twice.
//!
//! # The rule that keeps `settle` honest
//!
//! The cluster is quiet when no token is alive. For that to mean "every effect of what
//! was sent has happened", whoever handles a unit of work creates (or moves on) the
//! tokens of what it causes before it drops its own: a node thread drops the tokens of a
//! batch's mail only after the batch's effects hold theirs. A token may be moved into
//! the work it becomes (a held reply's token travels with the reply), and
//! [`Work::clone`] takes a new unit, so no way of copying one breaks the count.
//!
//! # Naming what is outstanding
//!
//! Each token carries a [`Label`]: what kind of work and which node it concerns. Beside
//! the one count that `settle` reads, the [`Ledger`] keeps a count per label, so that a
//! settle that waits long can say what it waits for ("1 message to node 2, 1 fsync on
//! node 1"). That costs one more atomic add per token, on a counter per label and node
//! (so node threads seldom share one); the labels are read only when someone asks.

use crate::types::NodeId;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// What kind of work a token stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum What {
    /// A protocol message in a node's inbox (or held in an outbox to be sent).
    Message,
    /// A client request in a node's inbox (or handed on to it).
    Request,
    /// A control request (status, checkpoint, crash, wake-up...) to a node.
    Control,
    /// A reply on its way to a client, until the client has taken it.
    Reply,
    /// An fsync asked of a node's syncer.
    Fsync,
    /// A node recovering, until its recovery's effects are out.
    Recovery,
    /// A shell session running a command.
    Session,
}

impl What {
    const ALL: [What; 7] = [
        What::Message,
        What::Request,
        What::Control,
        What::Reply,
        What::Fsync,
        What::Recovery,
        What::Session,
    ];

    /// How one unit is named, and many, and how the node relates to it.
    fn names(self) -> (&'static str, &'static str, &'static str) {
        match self {
            What::Message => ("message", "messages", "to"),
            What::Request => ("client request", "client requests", "to"),
            What::Control => ("control request", "control requests", "to"),
            What::Reply => ("reply", "replies", "from"),
            What::Fsync => ("fsync", "fsyncs", "on"),
            What::Recovery => ("recovery", "recoveries", "of"),
            What::Session => ("shell command", "shell commands", "on"),
        }
    }
}

/// What a token stands for: a kind of work and the node it concerns (`None`: no node,
/// as for a shell command).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Label {
    /// The kind of work.
    pub what: What,
    /// The node it concerns.
    pub node: Option<NodeId>,
}

impl Label {
    /// Work of kind `what` concerning `node`.
    pub fn on(what: What, node: NodeId) -> Label {
        Label {
            what,
            node: Some(node),
        }
    }
}

/// The live tokens of one cluster: their number, and their number per label.
pub struct Ledger {
    /// Tokens alive: what `settle` waits on.
    live: AtomicUsize,
    /// Per label, tokens alive: `What` index times (nodes + 1), the last for no node.
    by_label: Box<[AtomicUsize]>,
    nodes: u32,
}

impl Ledger {
    /// A ledger for a cluster of `nodes` nodes, with no work.
    pub fn new(nodes: u32) -> Arc<Ledger> {
        let slots = What::ALL.len() * (nodes as usize + 1);
        Arc::new(Ledger {
            live: AtomicUsize::new(0),
            by_label: (0..slots).map(|_| AtomicUsize::new(0)).collect(),
            nodes,
        })
    }

    /// Whether no token is alive.
    pub fn is_quiet(&self) -> bool {
        self.live.load(Ordering::SeqCst) == 0
    }

    /// How many tokens are alive.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    fn slot(&self, label: Label) -> usize {
        let node = label.node.filter(|node| *node < self.nodes);
        let column = node.map_or(self.nodes as usize, |node| node as usize);
        label.what as usize * (self.nodes as usize + 1) + column
    }

    /// What is outstanding, one line per label with live tokens, for example
    /// `1 message to node 2` (read while tokens come and go: a snapshot, not exact).
    pub fn outstanding(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for what in What::ALL {
            let (one, many, relation) = what.names();
            for column in 0..=self.nodes {
                let node = (column < self.nodes).then_some(column);
                let count = self.by_label[self.slot(Label { what, node })].load(Ordering::Relaxed);
                let name = if count == 1 { one } else { many };
                match (count, node) {
                    (0, _) => {}
                    (_, Some(node)) => lines.push(format!("{count} {name} {relation} node {node}")),
                    (_, None) => lines.push(format!("{count} {name}")),
                }
            }
        }
        lines
    }
}

/// A unit of work in progress; dropping it ends the unit. See the module doc.
#[must_use = "dropping a Work token ends the work at once"]
pub struct Work {
    ledger: Arc<Ledger>,
    slot: usize,
    /// False while parked: the unit waits for a step of the shell's step mode, so
    /// `settle` does not wait for it (see `net::steps`).
    counted: bool,
}

impl Work {
    /// Starts a unit of work labelled `label` in `ledger`.
    pub fn start(ledger: &Arc<Ledger>, label: Label) -> Work {
        let slot = ledger.slot(label);
        ledger.live.fetch_add(1, Ordering::SeqCst);
        ledger.by_label[slot].fetch_add(1, Ordering::Relaxed);
        Work {
            ledger: ledger.clone(),
            slot,
            counted: true,
        }
    }

    /// Stops counting this unit until [`Work::unpark`]: it waits for something only a
    /// step of the shell's step mode lets happen (an fsync held in its queue), so the
    /// cluster is settled while it waits.
    pub fn park(&mut self) {
        if std::mem::replace(&mut self.counted, false) {
            self.ledger.by_label[self.slot].fetch_sub(1, Ordering::Relaxed);
            self.ledger.live.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Counts a parked unit again (no-op for one that is not parked).
    pub fn unpark(&mut self) {
        if !std::mem::replace(&mut self.counted, true) {
            self.ledger.live.fetch_add(1, Ordering::SeqCst);
            self.ledger.by_label[self.slot].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The same unit, now standing for `label` (a message that bounced back to its
    /// sender, a request handed on that turned into its error reply).
    pub fn relabel(&mut self, label: Label) {
        let slot = self.ledger.slot(label);
        if self.counted {
            self.ledger.by_label[slot].fetch_add(1, Ordering::Relaxed);
            self.ledger.by_label[self.slot].fetch_sub(1, Ordering::Relaxed);
        }
        self.slot = slot;
    }

    /// Another unit of work with this one's label.
    pub fn another(&self) -> Work {
        self.ledger.live.fetch_add(1, Ordering::SeqCst);
        self.ledger.by_label[self.slot].fetch_add(1, Ordering::Relaxed);
        Work {
            ledger: self.ledger.clone(),
            slot: self.slot,
            counted: true,
        }
    }
}

impl Clone for Work {
    /// A clone is a new unit of work, ended by its own drop.
    fn clone(&self) -> Work {
        self.another()
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        if !self.counted {
            return;
        }
        self.ledger.by_label[self.slot].fetch_sub(1, Ordering::Relaxed);
        self.ledger.live.fetch_sub(1, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for Work {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Work(slot {})", self.slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ledger_is_quiet_once_every_token_and_clone_is_dropped() {
        let ledger = Ledger::new(3);
        let work = Work::start(&ledger, Label::on(What::Message, 2));
        let copy = work.clone();
        drop(work);
        assert!(!ledger.is_quiet(), "a clone is a unit of its own");
        drop(copy);
        assert!(ledger.is_quiet());
    }

    #[test]
    fn outstanding_work_is_named_by_label_and_node() {
        let ledger = Ledger::new(3);
        let message = Work::start(&ledger, Label::on(What::Message, 2));
        let fsyncs = [
            Work::start(&ledger, Label::on(What::Fsync, 1)),
            Work::start(&ledger, Label::on(What::Fsync, 1)),
        ];
        let command = Work::start(
            &ledger,
            Label {
                what: What::Session,
                node: None,
            },
        );
        assert_eq!(
            ledger.outstanding(),
            vec![
                "1 message to node 2",
                "2 fsyncs on node 1",
                "1 shell command"
            ]
        );
        drop((message, fsyncs, command));
        assert!(ledger.outstanding().is_empty());
    }

    #[test]
    fn a_parked_token_is_not_waited_for_until_unparked() {
        let ledger = Ledger::new(2);
        let mut work = Work::start(&ledger, Label::on(What::Reply, 1));
        work.park();
        work.park();
        assert!(ledger.is_quiet());
        work.unpark();
        assert_eq!(ledger.outstanding(), vec!["1 reply from node 1"]);
        work.park();
        drop(work);
        assert!(ledger.is_quiet(), "a parked token's drop counts nothing");
        assert!(ledger.outstanding().is_empty());
    }

    #[test]
    fn a_relabelled_token_moves_between_labels_and_counts_once() {
        let ledger = Ledger::new(2);
        let mut work = Work::start(&ledger, Label::on(What::Request, 1));
        work.relabel(Label::on(What::Reply, 0));
        assert_eq!(ledger.outstanding(), vec!["1 reply from node 0"]);
        assert_eq!(ledger.live(), 1);
        drop(work);
        assert!(ledger.is_quiet());
    }
}
