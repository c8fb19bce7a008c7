//! The register front end: a history of reads and writes of whole values (`PUT x 1`,
//! `GET x`, `DEL x`), as the shell records it, turned into the checker's dependency graph
//! (`super::graph`) and checked for Adya's phenomena. The list-append front end
//! (`super::check`) reads the version order out of the lists; a register's value says
//! nothing about the versions before it, so here the version order comes from the
//! engine, and the reads are checked against it.
//!
//! # What it reads
//!
//! A [`RegisterHistory`]: what every key held when the history began (`initial`; a key
//! not there was not set), and the transactions, each with what its client was told
//! ([`Outcome`]), its reads (the value returned, or not set) and writes (a value, or a
//! delete), and the timestamp the engine placed it at ([`RegisterTxn::at`]): a
//! writer's commit timestamp, or for a transaction that only read, a timestamp at or
//! above every version it read and below every later write of those keys (a locking one's
//! serialization timestamp, a `BEGIN READ ONLY` snapshot's read timestamp, an autocommit
//! `GET`'s snapshot).
//!
//! # What it infers
//!
//! - **Versions.** Each committed writer's last write of a key installs a version (its
//!   earlier writes of the key are intermediate); a delete installs "not set", a version
//!   like any other. The initial state is the first version of every key, written by
//!   `the initial state`, which comes first in any order.
//! - **Version order** of a key (Adya's `<<`): by the commit timestamps the engine
//!   reported (a write's own, where its node installed it at another). It is not
//!   inferred: a multi-version store applies a key's versions in that order and reads
//!   by it, so it is the engine's own order of installs. With one timestamp for all of
//!   a transaction's writes, the `ww` edges follow one order and cannot form G0; a G0
//!   needs writes installed at timestamps of their own.
//! - **Which version a read saw.** The read of `x = v` saw the version of `x` whose value
//!   is `v`. Values are usually unique per key; where several committed transactions
//!   wrote `v` to `x`, the read is given the newest of them at or below the reader's
//!   timestamp (the version the engine claims it read: by value alone the versions are
//!   indistinguishable), or, if the reader has no timestamp, no version at all: the
//!   read adds no dependency and the report says so (sound: a missing edge can hide a
//!   cycle, never invent one).
//! - **Dependencies** (Adya's DSG): `ww` from each version's writer to the next's; `wr`
//!   from the writer of the version a read saw to the reader; `rw` (anti-dependency)
//!   from the reader to the writer of the next version, which overwrote what it saw.
//! - **Timestamps against reads.** A read by a transaction with a timestamp must have
//!   seen the newest version at or below it ([`Anomaly::NotAtTimestamp`] otherwise).
//!
//! # What it reports
//!
//! G1a (a committed read of a value only an aborted transaction wrote), G1b (of a value
//! its writer overwrote itself before committing), an internal inconsistency (a read
//! after the reader's own write of the key that does not return it), a read of a value
//! nobody wrote, and the cycles, classified by `graph` as G0 (ww only), G1c (ww and wr)
//! or G2 (at least one rw). With none, the history is serializable (Adya's PL-3):
//! a topological order of the graph is an equivalent serial order, which the report
//! gives. A timestamp-order break is reported apart: the history may still be
//! serializable in some other order, but not in the one the engine's timestamps claim.
//!
//! # What it cannot infer
//!
//! - A transaction whose outcome its client never learned (its coordinator crashed
//!   while it committed) counts as committed if another transaction read a value only it
//!   wrote (Elle's `:info`), and is left out otherwise. Its commit timestamp is unknown,
//!   so its versions stand outside the version order: reads of them get their `wr`
//!   edge, but no `ww` or `rw` edge and no timestamp check.
//! - Reads by aborted transactions are not checked: strict two-phase locking promises
//!   them nothing once they abort. A read-only snapshot counts as committed however it
//!   ended: what it read, it read.
//! - Serializability, not strict serializability: no edge comes from real time or from a
//!   session's order of its own transactions.
//! - Only what this history recorded: a write made elsewhere (another process, a
//!   `RESOLVE` by hand) is not a version here, and a read of it is reported as a read of a
//!   value nobody wrote.
//! - A range read (`SCAN`, when it comes) reads many keys: record each key it returned as
//!   a read ([`RegisterTxn::read`]); the absence of a key from a range is a predicate
//!   read, which this item-level checker does not model (Adya's G2 over predicates).

mod check;
mod verdict;

pub use check::check_registers;

use super::{Anomaly, Dep, Outcome};
use crate::types::Timestamp;
use std::collections::BTreeMap;

/// One operation of a register transaction, as it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegisterOp {
    /// Read `key` and saw `value` (`None`: not set).
    Read {
        /// The key.
        key: String,
        /// What the read returned.
        value: Option<String>,
    },
    /// Wrote `value` to `key` (`None`: deleted it).
    Write {
        /// The key.
        key: String,
        /// The value written.
        value: Option<String>,
        /// The timestamp the key's owner installed it at, where that is not the
        /// transaction's (a heuristic decision on one node takes its own); `None`: the
        /// transaction's.
        at: Option<Timestamp>,
    },
}

/// One transaction of a register history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisterTxn {
    /// Its name in reports, unique in the history: `T3`, `snapshot@7`.
    pub name: String,
    /// The session that ran it, for reports.
    pub session: String,
    /// What its client was told.
    pub outcome: Outcome,
    /// The timestamp the engine placed it at, if it told: a writer's commit timestamp,
    /// or for one that only read, a timestamp at or above every version it read and
    /// below every later write of those keys (see the module doc).
    pub at: Option<Timestamp>,
    /// Its operations, in order.
    pub ops: Vec<RegisterOp>,
}

impl RegisterTxn {
    /// A transaction with no operations yet and no timestamp.
    pub fn new(name: impl Into<String>, session: &str, outcome: Outcome) -> RegisterTxn {
        RegisterTxn {
            name: name.into(),
            session: session.to_string(),
            outcome,
            at: None,
            ops: Vec::new(),
        }
    }

    /// Places it at timestamp `at`.
    pub fn at(mut self, at: Timestamp) -> RegisterTxn {
        self.at = Some(at);
        self
    }

    /// Adds a read of `key` that returned `value` (`None`: not set).
    pub fn read(mut self, key: &str, value: Option<&str>) -> RegisterTxn {
        self.ops.push(RegisterOp::Read {
            key: key.to_string(),
            value: value.map(str::to_string),
        });
        self
    }

    /// Adds a write of `value` to `key` (`None`: a delete).
    pub fn write(mut self, key: &str, value: Option<&str>) -> RegisterTxn {
        self.ops.push(RegisterOp::Write {
            key: key.to_string(),
            value: value.map(str::to_string),
            at: None,
        });
        self
    }

    /// Adds a write of `value` to `key` that its owner installed at `at`, not at the
    /// transaction's timestamp (see [`RegisterOp::Write`]).
    pub fn write_at(mut self, key: &str, value: Option<&str>, at: Timestamp) -> RegisterTxn {
        self.ops.push(RegisterOp::Write {
            key: key.to_string(),
            value: value.map(str::to_string),
            at: Some(at),
        });
        self
    }
}

/// A register history: the state it began from, and its transactions in any order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegisterHistory {
    /// What each key held when the history began; a key not here was not set.
    pub initial: BTreeMap<String, String>,
    /// The transactions.
    pub txns: Vec<RegisterTxn>,
}

/// The name of the first version of every key in reports.
pub const INITIAL: &str = "the initial state";

/// What checking a register history found.
#[derive(Clone, Debug, Default)]
pub struct RegisterReport {
    /// The transactions taken as committed (the graph's nodes), in history order.
    pub committed: Vec<String>,
    /// The transactions left out, each with why (`aborted`, `outcome unknown ...`).
    pub left_out: Vec<(String, String)>,
    /// Dependency edges inferred.
    pub edges: usize,
    /// Everything wrong, timestamp-order breaks included.
    pub anomalies: Vec<Anomaly>,
    /// An equivalent serial order of the committed transactions, if there is no cycle.
    pub serial_order: Option<Vec<String>>,
    /// What the checker could not decide and how it resolved it (ambiguous reads).
    pub notes: Vec<String>,
    /// Why each edge holds, in words, by (from, to, kind, key).
    reasons: BTreeMap<(String, String, Dep, String), String>,
    /// The session of each transaction, by name.
    sessions: BTreeMap<String, String>,
}

impl RegisterReport {
    /// Whether the history is serializable: no anomaly but timestamp-order breaks.
    pub fn is_serializable(&self) -> bool {
        self.anomalies.iter().all(|a| a.name() == "timestamp-order")
    }

    /// Whether every read is explained by the engine's timestamps.
    pub fn timestamps_agree(&self) -> bool {
        self.anomalies.iter().all(|a| a.name() != "timestamp-order")
    }

    /// The names of the anomalies found, sorted and without repeats.
    pub fn names(&self) -> Vec<&'static str> {
        let names: std::collections::BTreeSet<&'static str> =
            self.anomalies.iter().map(Anomaly::name).collect();
        names.into_iter().collect()
    }
}
