//! What the checker reports: the dependencies it infers ([`Dep`], [`Edge`]), the
//! anomalies it names ([`Anomaly`]) and its [`Report`].

use super::{History, Txn};
use std::collections::{BTreeSet, HashMap};
use std::fmt;

/// The kind of a dependency between two transactions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dep {
    /// Write-write: the target overwrote (appended after) the source.
    Ww,
    /// Write-read: the target read what the source wrote.
    Wr,
    /// Read-write: the target overwrote what the source read (anti-dependency).
    Rw,
}

/// One edge of a reported cycle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edge {
    /// The earlier transaction.
    pub from: String,
    /// The later one.
    pub to: String,
    /// Why it is later.
    pub dep: Dep,
    /// The key that orders them.
    pub key: String,
}

/// A violation of serializability (or of the workload's own rules), naming the
/// transactions involved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Anomaly {
    /// A cycle of write-write dependencies.
    G0 {
        /// The cycle, edge by edge.
        cycle: Vec<Edge>,
    },
    /// A committed transaction read what an aborted one wrote.
    G1a {
        /// The reader.
        reader: String,
        /// The aborted writer.
        writer: String,
        /// The key.
        key: String,
        /// The element read.
        elem: String,
    },
    /// A committed transaction read a version its writer later overwrote itself.
    G1b {
        /// The reader.
        reader: String,
        /// The writer.
        writer: String,
        /// The key.
        key: String,
        /// The intermediate element read last.
        elem: String,
    },
    /// A cycle of write-write and write-read dependencies, at least one write-read.
    G1c {
        /// The cycle, edge by edge.
        cycle: Vec<Edge>,
    },
    /// A cycle with at least one anti-dependency.
    G2 {
        /// The cycle, edge by edge.
        cycle: Vec<Edge>,
    },
    /// Two reads of one key that no single version order explains.
    IncompatibleOrder {
        /// The key.
        key: String,
        /// The transaction whose read is not a prefix of the longest.
        reader: String,
        /// What it read.
        read: Vec<String>,
        /// The longest list read of the key.
        longest: Vec<String>,
    },
    /// A read returned an element no transaction appended.
    UnknownElement {
        /// The reader.
        reader: String,
        /// The key.
        key: String,
        /// The element.
        elem: String,
    },
    /// Two appends of one element: the workload broke its own rule.
    DuplicateElement {
        /// The element.
        elem: String,
        /// Its writers.
        writers: Vec<String>,
    },
    /// A transaction's read of its own appends is out of order with others' elements
    /// (of a register: a read after its own write that did not return that write).
    Internal {
        /// The transaction.
        txn: String,
        /// The key.
        key: String,
        /// What it read.
        read: Vec<String>,
    },
    /// A register read that is not the newest version at or below the timestamp the
    /// engine placed its reader at (a snapshot's read timestamp, a transaction's commit
    /// timestamp): the engine's timestamps do not explain it, whether or not some other
    /// serial order does.
    NotAtTimestamp {
        /// The reader.
        reader: String,
        /// The timestamp it was placed at.
        at: u64,
        /// The key.
        key: String,
        /// The value it read (`not set` for none).
        read: String,
        /// Who wrote what it read.
        writer: String,
        /// The newest value at or below `at`.
        latest: String,
        /// Who wrote that.
        latest_writer: String,
    },
}

impl Anomaly {
    /// The anomaly's short name: `G0`, `G1a`, `G1b`, `G1c`, `G2`, or a workload error.
    pub fn name(&self) -> &'static str {
        match self {
            Anomaly::G0 { .. } => "G0",
            Anomaly::G1a { .. } => "G1a",
            Anomaly::G1b { .. } => "G1b",
            Anomaly::G1c { .. } => "G1c",
            Anomaly::G2 { .. } => "G2",
            Anomaly::IncompatibleOrder { .. } => "incompatible-order",
            Anomaly::UnknownElement { .. } => "unknown-element",
            Anomaly::DuplicateElement { .. } => "duplicate-element",
            Anomaly::Internal { .. } => "internal",
            Anomaly::NotAtTimestamp { .. } => "timestamp-order",
        }
    }

    /// The transactions the anomaly involves, for explaining it.
    pub fn transactions(&self) -> Vec<String> {
        match self {
            Anomaly::G0 { cycle } | Anomaly::G1c { cycle } | Anomaly::G2 { cycle } => {
                cycle.iter().map(|edge| edge.from.clone()).collect()
            }
            Anomaly::G1a { reader, writer, .. } | Anomaly::G1b { reader, writer, .. } => {
                vec![writer.clone(), reader.clone()]
            }
            Anomaly::IncompatibleOrder { reader, .. }
            | Anomaly::UnknownElement { reader, .. }
            | Anomaly::Internal { txn: reader, .. } => vec![reader.clone()],
            Anomaly::DuplicateElement { writers, .. } => writers.clone(),
            Anomaly::NotAtTimestamp {
                reader,
                writer,
                latest_writer,
                ..
            } => vec![writer.clone(), latest_writer.clone(), reader.clone()],
        }
    }
}

fn show_cycle(cycle: &[Edge]) -> String {
    let mut text = cycle.first().map(|e| e.from.clone()).unwrap_or_default();
    for edge in cycle {
        let dep = match edge.dep {
            Dep::Ww => "ww",
            Dep::Wr => "wr",
            Dep::Rw => "rw",
        };
        text.push_str(&format!(" -{dep}({})-> {}", edge.key, edge.to));
    }
    text
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Anomaly::G0 { cycle } => write!(f, "G0 write cycle: {}", show_cycle(cycle)),
            Anomaly::G1a {
                reader,
                writer,
                key,
                elem,
            } => write!(
                f,
                "G1a aborted read: {reader} read {elem} in {key}, appended by aborted {writer}"
            ),
            Anomaly::G1b {
                reader,
                writer,
                key,
                elem,
            } => write!(
                f,
                "G1b intermediate read: {reader} read {key} ending at {elem}, which {writer} \
                 appended to again"
            ),
            Anomaly::G1c { cycle } => {
                write!(f, "G1c circular information flow: {}", show_cycle(cycle))
            }
            Anomaly::G2 { cycle } => {
                write!(f, "G2 anti-dependency cycle: {}", show_cycle(cycle))
            }
            Anomaly::IncompatibleOrder {
                key,
                reader,
                read,
                longest,
            } => write!(
                f,
                "incompatible order of {key}: {reader} read {read:?}, not a prefix of {longest:?}"
            ),
            Anomaly::UnknownElement { reader, key, elem } => {
                write!(f, "{reader} read {elem} in {key}, which nobody appended")
            }
            Anomaly::DuplicateElement { elem, writers } => {
                write!(f, "{elem} was appended by {}", writers.join(" and "))
            }
            Anomaly::Internal { txn, key, read } => write!(
                f,
                "{txn} read {key} as {read:?}: its own appends are not all at the end"
            ),
            Anomaly::NotAtTimestamp {
                reader,
                at,
                key,
                read,
                writer,
                latest,
                latest_writer,
            } => write!(
                f,
                "timestamp order broken: {reader} at timestamp {at} read {key} = {read} \
                 (written by {writer}), but the newest version at or below {at} is \
                 {latest} (written by {latest_writer})"
            ),
        }
    }
}

/// What checking a history found.
#[derive(Debug)]
pub struct Report {
    /// Transactions taken as committed (the nodes of the dependency graph).
    pub committed: usize,
    /// Dependency edges inferred.
    pub edges: usize,
    /// Everything wrong, most severe first within each component.
    pub anomalies: Vec<Anomaly>,
}

impl Report {
    /// Whether the history is serializable (and the workload kept its rules).
    pub fn is_serializable(&self) -> bool {
        self.anomalies.is_empty()
    }

    /// The names of the anomalies found, sorted and without repeats.
    pub fn names(&self) -> Vec<&'static str> {
        let names: BTreeSet<&'static str> = self.anomalies.iter().map(Anomaly::name).collect();
        names.into_iter().collect()
    }

    /// Every anomaly with the operations of the transactions it involves.
    pub fn explain(&self, history: &History) -> String {
        let by_name: HashMap<&str, &Txn> =
            history.txns.iter().map(|t| (t.name.as_str(), t)).collect();
        let mut text = String::new();
        for anomaly in self.anomalies.iter().take(10) {
            text.push_str(&format!("{anomaly}\n"));
            let involved: BTreeSet<String> = anomaly.transactions().into_iter().collect();
            for name in involved {
                if let Some(txn) = by_name.get(name.as_str()) {
                    text.push_str(&format!("    {name} {:?}: {:?}\n", txn.outcome, txn.ops));
                }
            }
        }
        if self.anomalies.len() > 10 {
            text.push_str(&format!("... and {} more\n", self.anomalies.len() - 10));
        }
        text
    }
}
