//! A serializability checker for list-append histories, after Elle (Kingsbury and
//! Alvaro, "Elle: Inferring Isolation Anomalies from Experimental Observations", 2020),
//! with a second front end, [`register`], for histories of whole-value reads and writes
//! (the shell's own history, which `CHECK` checks). The test suites (serializability,
//! the fault runs, the simulator) record list-append histories and check them here.
//!
//! # The workload it reads
//!
//! Every key holds a list, stored as its elements joined by commas. A transaction reads
//! keys and appends to them (a read of the key, then a write of the list with one more
//! element). Every element appended in a history is unique, so a read names the writer of
//! each element it returns, and a list's order *is* its key's version order: a read that
//! returns `[a, b]` read the version installed by the writer of `b`, which came after the
//! writer of `a`'s.
//!
//! # What it infers
//!
//! - **Version order** of a key: the longest list any committed transaction read (the
//!   runs end with a read of every key). Every other read must be a prefix of it, or the
//!   reads cannot come from one order of versions ([`Anomaly::IncompatibleOrder`]).
//! - **ww** `U -> V`: V appended the element right after U's in the version order.
//! - **wr** `U -> T`: T read a list whose last element (not its own) U appended.
//! - **rw** `T -> V`: T read a list and V appended the next element after it: T did not
//!   see V's write, so T comes first (an anti-dependency).
//!
//! # What it reports (Adya's phenomena)
//!
//! - **G1a** aborted read: a committed transaction read an element an aborted one appended.
//! - **G1b** intermediate read: it read a list ending with an element that was not its
//!   writer's last append to that key.
//! - **G0** write cycle: a cycle of ww edges.
//! - **G1c** circular information flow: a cycle of ww and wr edges, at least one wr.
//! - **G2** anti-dependency cycle: a cycle with at least one rw edge.
//!
//! A history with none of these (and whose reads are compatible) is serializable: the
//! dependency graph is acyclic, so a topological order of it is an equivalent serial one.
//! Separately, [`check_final`] holds the final contents of every key against what each
//! client was told (committed appends all there, aborted ones absent).
//!
//! The parts: this module holds the history's model; `deletes` places reads of deleted
//! keys in the version order (a delete becomes a marker element; see its doc for the rule
//! a history with deletes must keep); `check` infers the version orders and the edges and
//! checks each read; `graph` finds and classifies the cycles (and gives a serial order
//! when there is none); `anomaly` holds what is reported; [`register`] is the front end
//! for register histories, whose version order comes from the engine's timestamps.
//!
//! # Limits
//!
//! A transaction whose outcome the client does not know counts as committed when another
//! transaction read one of its elements, and is left out otherwise (Elle's `:info`).
//! Reads by aborted transactions are not checked: strict two-phase locking promises them
//! nothing once they abort. The version order is known as far as reads reveal it, so a
//! history should end with a read of every key. A read of an intermediate version adds no
//! anti-dependency to its writer (it is reported as G1b instead). Each strongly connected
//! component of the graph reports its most severe cycle only.

mod anomaly;
mod check;
mod deletes;
mod graph;
pub mod register;
mod vanished;

pub use anomaly::{Anomaly, Dep, Edge, Report};
pub use check::check;
pub use register::{RegisterHistory, RegisterOp, RegisterReport, RegisterTxn, check_registers};
pub use vanished::vanished_reads;

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What the client was told about a transaction: the simulator's clients, the threaded
/// harness and the shell report it the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// Committed (a read-only transaction always is).
    Committed,
    /// Aborted, by the cluster or by the client.
    Aborted,
    /// Unknown: its coordinator went down while it committed.
    Unknown,
}

/// One operation of a transaction, as it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Read `key` and saw `list`.
    Read {
        /// The key.
        key: String,
        /// The elements read, in order.
        list: Vec<String>,
    },
    /// Appended `elem` to `key` (the write was buffered in the transaction).
    Append {
        /// The key.
        key: String,
        /// The element, unique in the history.
        elem: String,
    },
    /// Deleted `key`: its next read sees it as not set (an empty list).
    Delete {
        /// The key.
        key: String,
    },
}

/// One transaction of a history.
#[derive(Clone, Debug)]
pub struct Txn {
    /// A name for reports, such as `T12`.
    pub name: String,
    /// What its client was told.
    pub outcome: Outcome,
    /// Its operations, in order.
    pub ops: Vec<Op>,
}

impl Txn {
    /// A transaction with no operations yet.
    pub fn new(name: impl Into<String>, outcome: Outcome) -> Txn {
        Txn {
            name: name.into(),
            outcome,
            ops: Vec::new(),
        }
    }

    /// Adds a read of `key` that saw `list`.
    pub fn read(mut self, key: &str, list: &[&str]) -> Txn {
        self.ops.push(Op::Read {
            key: key.to_string(),
            list: list.iter().map(|e| e.to_string()).collect(),
        });
        self
    }

    /// Adds a delete of `key`.
    pub fn delete(mut self, key: &str) -> Txn {
        self.ops.push(Op::Delete {
            key: key.to_string(),
        });
        self
    }

    /// Adds an append of `elem` to `key`.
    pub fn append(mut self, key: &str, elem: &str) -> Txn {
        self.ops.push(Op::Append {
            key: key.to_string(),
            elem: elem.to_string(),
        });
        self
    }
}

/// The list a stored value holds: absent or empty is the empty list.
pub fn parse_list(value: Option<&str>) -> Vec<String> {
    match value {
        None | Some("") => Vec::new(),
        Some(text) => text.split(',').map(str::to_string).collect(),
    }
}

/// The stored value after appending `elem` to `value`.
pub fn appended(value: Option<&str>, elem: &str) -> String {
    match value {
        None | Some("") => elem.to_string(),
        Some(text) => format!("{text},{elem}"),
    }
}

/// A history of transactions, in any order.
#[derive(Clone, Debug, Default)]
pub struct History {
    /// The transactions.
    pub txns: Vec<Txn>,
}

/// [`check_final`] for a run in which some transactions were settled by hand
/// (`RESOLVE`, a heuristic decision), named in `resolved`: a heuristic decision is the
/// only way a transaction's outcome can differ between its participants, so a
/// transaction of `resolved` that is visible in part, or against what its client was
/// told, is reported apart as a heuristic mixed outcome (the second list), and every
/// other problem as usual (the first). Without `resolved` it is `check_final`.
pub fn check_final_resolved(
    history: &History,
    lists: &BTreeMap<String, Vec<String>>,
    resolved: &BTreeSet<String>,
) -> (Vec<String>, Vec<String>) {
    let (mut problems, mut mixed) = (Vec::new(), Vec::new());
    for problem in check_final(history, lists) {
        let name = problem.split([' ', ',']).next().unwrap_or_default();
        if resolved.contains(name) {
            mixed.push(format!(
                "heuristic mixed outcome: {problem} ({name} was settled by hand with \
                 RESOLVE: atomicity broken by a heuristic decision)"
            ));
        } else {
            problems.push(problem);
        }
    }
    (problems, mixed)
}

/// Compares the final contents of every key (as lists) with what the clients were told:
/// every append of a transaction told Committed is there, once; nothing of one told
/// Aborted is; a transaction with an unknown outcome is there whole or not at all; and no
/// element comes from nowhere. Appends made before a key's delete (by a deleter not told
/// Aborted) are expected neither there nor absent; a key whose deleter was told
/// Committed must not hold a list from before the delete. Returns each problem found.
pub fn check_final(history: &History, lists: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    let mut problems = duplicates(lists);
    let deleters = deletes::deleters(history);
    let fresh = deletes::fresh_heads(history);
    let deleted = |key: &str| {
        deleters
            .get(key)
            .is_some_and(|d| history.txns[*d].outcome != Outcome::Aborted)
    };
    let mut known: BTreeSet<(&str, &str)> = BTreeSet::new();
    for txn in &history.txns {
        let appends = appends_after_deletes(txn, &fresh);
        known.extend(appends.iter().map(|(key, elem, _)| (*key, *elem)));
        let expected: Vec<(&str, &str)> = (appends.iter())
            .filter(|(key, _, after)| *after || !deleted(key))
            .map(|(key, elem, _)| (*key, *elem))
            .collect();
        let is_visible = |(key, elem): &(&str, &str)| {
            lists.get(*key).is_some_and(|l| l.iter().any(|e| e == elem))
        };
        let visible: Vec<bool> = expected.iter().map(is_visible).collect();
        let name = &txn.name;
        match txn.outcome {
            Outcome::Committed if !visible.iter().all(|v| *v) => problems.push(format!(
                "{name} was told Committed, but not all its appends survived: {expected:?} \
                 visible {visible:?}"
            )),
            Outcome::Aborted if appends.iter().any(|(k, e, _)| is_visible(&(*k, *e))) => problems
                .push(format!(
                    "{name} was told Aborted, but some of its appends are visible: {appends:?}"
                )),
            Outcome::Unknown if visible.iter().any(|v| *v) && !visible.iter().all(|v| *v) => {
                problems.push(format!(
                    "{name} (outcome unknown) is visible in part only: {expected:?} visible \
                     {visible:?}"
                ))
            }
            _ => {}
        }
    }
    for (key, deleter) in &deleters {
        let txn = &history.txns[*deleter];
        let list = lists.get(*key).map(Vec::as_slice).unwrap_or_default();
        if txn.outcome == Outcome::Committed && !deletes::is_after(list, &fresh) {
            problems.push(format!(
                "{} was told Committed, but its delete of {key} is undone: {key} holds {list:?}",
                txn.name
            ));
        }
    }
    for (key, list) in lists {
        for elem in list {
            if !known.contains(&(key.as_str(), elem.as_str())) {
                problems.push(format!(
                    "{elem} in {key} was appended there by no transaction"
                ));
            }
        }
    }
    problems
}

/// Elements that appear twice in the final lists.
fn duplicates(lists: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    let mut problems = Vec::new();
    let mut present: HashMap<&str, usize> = HashMap::new();
    for (key, list) in lists {
        for elem in list {
            let count = present.entry(elem.as_str()).or_default();
            *count += 1;
            if *count == 2 {
                problems.push(format!("{elem} appears twice in {key}: {list:?}"));
            }
        }
    }
    problems
}

/// A transaction's appends as `(key, elem, after)`: `after` if the list it appended to
/// was one written after the key's delete (see `deletes`).
fn appends_after_deletes<'h>(
    txn: &'h Txn,
    fresh: &BTreeSet<&str>,
) -> Vec<(&'h str, &'h str, bool)> {
    let mut after: BTreeMap<&str, bool> = BTreeMap::new();
    let mut appends = Vec::new();
    for op in &txn.ops {
        match op {
            Op::Read { key, list } => {
                after.insert(key, deletes::is_after(list, fresh));
            }
            Op::Delete { key } => {
                after.insert(key, true);
            }
            Op::Append { key, elem } => {
                let was_after = after.get(key.as_str()).copied().unwrap_or(false);
                appends.push((key.as_str(), elem.as_str(), was_after));
            }
        }
    }
    appends
}
