//! The register checker: finds the versions and their order, resolves each committed
//! read to the version it saw, checks it against its reader's timestamp, adds the `ww`,
//! `wr` and `rw` edges, and hands the graph to `graph` for cycles and a serial order.
//! Node 0 of the graph is [`INITIAL`]; transaction `i` of the history is node `i + 1`.

use super::super::graph::Graph;
use super::{
    Anomaly, Dep, INITIAL, Outcome, RegisterHistory, RegisterOp, RegisterReport, RegisterTxn,
};
use crate::types::Timestamp;
use std::collections::{BTreeMap, BTreeSet};

/// `a`, `a and b`, `a, b and c`.
pub(super) fn and_list(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [only] => only.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// A value as reports show it: the value itself, or `not set`.
pub(super) fn shown(value: &Option<String>) -> String {
    value.clone().unwrap_or_else(|| "not set".to_string())
}

/// One installed version of a key.
#[derive(Clone)]
struct Version {
    /// Its writer (a node of the graph).
    node: usize,
    /// Its commit timestamp; `None` if unknown (not in the order).
    ts: Option<Timestamp>,
    value: Option<String>,
}

/// What the checker knows while it works.
struct Checker<'h> {
    history: &'h RegisterHistory,
    names: Vec<String>,
    committed: Vec<bool>,
    /// Per key, the versions in order (the initial one first), then those outside it.
    order: BTreeMap<&'h str, Vec<Version>>,
    unplaced: BTreeMap<&'h str, Vec<Version>>,
    graph: Graph,
    report: RegisterReport,
}

/// Checks a register history for serializability; see the module doc.
pub fn check_registers(history: &RegisterHistory) -> RegisterReport {
    let mut checker = Checker::new(history);
    checker.add_ww_edges();
    for reader in 1..=history.txns.len() {
        if checker.committed[reader] {
            checker.check_reads(reader);
        }
    }
    checker.finish()
}

/// Each transaction's last write of each key: the versions it installs if it commits.
fn installed(txn: &RegisterTxn) -> BTreeMap<&str, &Option<String>> {
    installed_at(txn)
        .into_iter()
        .map(|(key, (value, _))| (key, value))
        .collect()
}

/// As [`installed`], with the timestamp each version was installed at, if known.
fn installed_at(txn: &RegisterTxn) -> BTreeMap<&str, (&Option<String>, Option<Timestamp>)> {
    let mut last = BTreeMap::new();
    for op in &txn.ops {
        if let RegisterOp::Write { key, value, at } = op {
            last.insert(key.as_str(), (value, at.or(txn.at)));
        }
    }
    last
}

/// Each transaction's writes that its own later write of the key overwrote.
fn intermediate(txn: &RegisterTxn) -> Vec<(&str, &Option<String>)> {
    let last = installed(txn);
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let writes: Vec<(&str, &Option<String>)> = (txn.ops.iter())
        .filter_map(|op| match op {
            RegisterOp::Write { key, value, .. } => Some((key.as_str(), value)),
            RegisterOp::Read { .. } => None,
        })
        .collect();
    let total: BTreeMap<&str, usize> = writes.iter().fold(BTreeMap::new(), |mut m, (k, _)| {
        *m.entry(*k).or_default() += 1;
        m
    });
    let mut found = Vec::new();
    for (key, value) in writes {
        let count = seen.entry(key).or_default();
        *count += 1;
        if *count < total[key] && last.get(key) != Some(&value) {
            found.push((key, value));
        }
    }
    found
}

/// Each transaction's external reads: those of a key it had not written before.
fn external_reads(txn: &RegisterTxn) -> Vec<(&str, &Option<String>)> {
    let mut written = BTreeSet::new();
    let mut reads = Vec::new();
    for op in &txn.ops {
        match op {
            RegisterOp::Write { key, .. } => {
                written.insert(key.as_str());
            }
            RegisterOp::Read { key, value } if !written.contains(key.as_str()) => {
                reads.push((key.as_str(), value));
            }
            RegisterOp::Read { .. } => {}
        }
    }
    reads
}

impl<'h> Checker<'h> {
    fn new(history: &'h RegisterHistory) -> Checker<'h> {
        let mut names = vec![INITIAL.to_string()];
        names.extend(history.txns.iter().map(|txn| txn.name.clone()));
        let committed = committed_set(history);
        let mut order: BTreeMap<&str, Vec<Version>> = BTreeMap::new();
        let mut unplaced: BTreeMap<&str, Vec<Version>> = BTreeMap::new();
        for txn in &history.txns {
            for op in &txn.ops {
                let (RegisterOp::Read { key, .. } | RegisterOp::Write { key, .. }) = op;
                order.entry(key).or_insert_with(|| {
                    let value = history.initial.get(key).cloned();
                    let ts = Some(0);
                    vec![Version { node: 0, ts, value }]
                });
            }
        }
        for (index, txn) in history.txns.iter().enumerate() {
            let node = index + 1;
            if !committed[node] {
                continue;
            }
            for (key, (value, ts)) in installed_at(txn) {
                let version = Version {
                    node,
                    ts,
                    value: value.clone(),
                };
                match ts {
                    Some(_) => order.entry(key).or_default().push(version),
                    None => unplaced.entry(key).or_default().push(version),
                }
            }
        }
        for versions in order.values_mut() {
            versions.sort_by_key(|v| (v.ts, v.node));
        }
        let mut report = RegisterReport::default();
        for (index, txn) in history.txns.iter().enumerate() {
            report
                .sessions
                .insert(txn.name.clone(), txn.session.clone());
            match (committed[index + 1], txn.outcome) {
                (true, _) => report.committed.push(txn.name.clone()),
                (false, Outcome::Aborted) => report.left_out.push((
                    txn.name.clone(),
                    "aborted: its writes never happened".into(),
                )),
                (false, _) => report.left_out.push((
                    txn.name.clone(),
                    "its outcome is unknown to its client, and no read saw a value only it \
                     wrote"
                        .into(),
                )),
            }
        }
        Checker {
            history,
            graph: Graph::new(names.len()),
            names,
            committed,
            order,
            unplaced,
            report,
        }
    }

    fn txn(&self, node: usize) -> Option<&'h RegisterTxn> {
        node.checked_sub(1).map(|index| &self.history.txns[index])
    }

    /// Adds an edge and the words that say why it holds.
    fn edge(&mut self, from: usize, to: usize, dep: Dep, key: &str, why: String) {
        if from == to {
            return;
        }
        self.graph.add(from, to, dep, key);
        let id = (
            self.names[from].clone(),
            self.names[to].clone(),
            dep,
            key.to_string(),
        );
        self.report.reasons.entry(id).or_insert(why);
    }

    fn add_ww_edges(&mut self) {
        let order = self.order.clone();
        for (key, versions) in order {
            for pair in versions.windows(2) {
                let (a, b) = (&pair[0], &pair[1]);
                let why = format!(
                    "{} wrote {key} = {}, then {} overwrote it with {} (commit timestamp {} \
                     after {})",
                    self.names[a.node],
                    shown(&a.value),
                    self.names[b.node],
                    shown(&b.value),
                    b.ts.unwrap_or_default(),
                    a.ts.unwrap_or_default(),
                );
                self.edge(a.node, b.node, Dep::Ww, key, why);
            }
        }
    }

    /// Checks the reads of a committed transaction and adds their edges.
    fn check_reads(&mut self, reader: usize) {
        let Some(txn) = self.txn(reader) else { return };
        let mut own: BTreeMap<&str, &Option<String>> = BTreeMap::new();
        for op in &txn.ops {
            match op {
                RegisterOp::Write { key, value, .. } => {
                    own.insert(key, value);
                }
                RegisterOp::Read { key, value } => match own.get(key.as_str()) {
                    Some(written) if *written != value => {
                        self.report.anomalies.push(Anomaly::Internal {
                            txn: txn.name.clone(),
                            key: key.clone(),
                            read: vec![shown(value)],
                        });
                    }
                    Some(_) => {}
                    None => self.external_read(reader, key, value),
                },
            }
        }
    }

    /// One read of `key` that returned `value`, by `reader`, of a key it had not written.
    fn external_read(&mut self, reader: usize, key: &'h str, value: &Option<String>) {
        let Some((writer, position)) = self.resolve(reader, key, value) else {
            return;
        };
        let why = match writer {
            0 => format!(
                "{} read {key} = {}, as it was when the history began",
                self.names[reader],
                shown(value)
            ),
            _ => format!(
                "{} read {key} = {}, which {} wrote",
                self.names[reader],
                shown(value),
                self.names[writer]
            ),
        };
        self.edge(writer, reader, Dep::Wr, key, why);
        let Some(position) = position else { return };
        let versions = self.order[key].clone();
        if let Some(next) = versions.get(position + 1) {
            let why = format!(
                "{} read {key} = {} before {} wrote {key} = {}",
                self.names[reader],
                shown(value),
                self.names[next.node],
                shown(&next.value)
            );
            self.edge(reader, next.node, Dep::Rw, key, why);
        }
        self.check_timestamp(reader, key, value, position);
    }

    /// The version a read saw: its writer and its place in the order (`None` outside
    /// it); `None` if it saw none that committed (reported) or cannot be told (noted).
    fn resolve(
        &mut self,
        reader: usize,
        key: &'h str,
        value: &Option<String>,
    ) -> Option<(usize, Option<usize>)> {
        let placed: Vec<usize> = (self.order[key].iter().enumerate())
            .filter(|(_, v)| v.node != reader && v.value == *value)
            .map(|(position, _)| position)
            .collect();
        let unplaced: Vec<usize> = (self.unplaced.get(key).into_iter().flatten())
            .filter(|v| v.node != reader && v.value == *value)
            .map(|v| v.node)
            .collect();
        match (placed.as_slice(), unplaced.as_slice()) {
            ([], []) => {
                self.no_committed_writer(reader, key, value);
                None
            }
            ([position], []) => Some((self.order[key][*position].node, Some(*position))),
            ([], [node]) => Some((*node, None)),
            _ => self.by_timestamp(reader, key, value, &placed, &unplaced),
        }
    }

    /// Several committed versions of `key` hold `value`: the newest at or below the
    /// reader's timestamp (the earliest, if none is: a read of the future, which the
    /// timestamp check reports), or none if the reader has no timestamp (noted).
    fn by_timestamp(
        &mut self,
        reader: usize,
        key: &'h str,
        value: &Option<String>,
        placed: &[usize],
        unplaced: &[usize],
    ) -> Option<(usize, Option<usize>)> {
        let versions = &self.order[key];
        let writers: Vec<String> = (placed.iter().map(|p| versions[*p].node))
            .chain(unplaced.iter().copied())
            .map(|node| self.names[node].clone())
            .collect();
        let at = self.txn(reader).and_then(|txn| txn.at);
        let Some(at) = at.filter(|_| !placed.is_empty()) else {
            self.report.notes.push(format!(
                "{} read {key} = {}, a value that {} each left; with no timestamp to tell \
                 which it saw, CHECK draws no dependency from that read",
                self.names[reader],
                shown(value),
                and_list(&writers)
            ));
            return None;
        };
        let chosen = (placed.iter().rev())
            .find(|p| versions[**p].ts.is_some_and(|ts| ts <= at))
            .or(placed.first())
            .copied()?;
        self.report.notes.push(format!(
            "{} read {key} = {}, a value that {} each left; CHECK takes it as the version \
             of {}, the newest of them at or below {}'s timestamp {at}",
            self.names[reader],
            shown(value),
            and_list(&writers),
            self.names[versions[chosen].node],
            self.names[reader],
        ));
        Some((versions[chosen].node, Some(chosen)))
    }

    /// No committed version of `key` holds `value`: an aborted write (G1a), an
    /// intermediate one (G1b), or nobody's.
    fn no_committed_writer(&mut self, reader: usize, key: &str, value: &Option<String>) {
        let txns = &self.history.txns;
        let reader_name = self.names[reader].clone();
        let elem = shown(value);
        let writes = |txn: &RegisterTxn| {
            (txn.ops.iter()).any(|op| {
                matches!(op, RegisterOp::Write { key: k, value: v, .. } if k == key && v == value)
            })
        };
        let aborted = (txns.iter().enumerate())
            .find(|(index, txn)| !self.committed[index + 1] && index + 1 != reader && writes(txn));
        if let Some((_, writer)) = aborted {
            self.report.anomalies.push(Anomaly::G1a {
                reader: reader_name,
                writer: writer.name.clone(),
                key: key.to_string(),
                elem,
            });
            return;
        }
        let overwritten = (txns.iter().enumerate()).find(|(index, txn)| {
            self.committed[index + 1]
                && index + 1 != reader
                && intermediate(txn).contains(&(key, value))
        });
        let anomaly = match overwritten {
            Some((_, writer)) => Anomaly::G1b {
                reader: reader_name,
                writer: writer.name.clone(),
                key: key.to_string(),
                elem,
            },
            None => Anomaly::UnknownElement {
                reader: reader_name,
                key: key.to_string(),
                elem,
            },
        };
        self.report.anomalies.push(anomaly);
    }

    /// A read by a transaction with a timestamp saw the newest version at or below it.
    fn check_timestamp(
        &mut self,
        reader: usize,
        key: &str,
        value: &Option<String>,
        position: usize,
    ) {
        let Some(at) = self.txn(reader).and_then(|txn| txn.at) else {
            return;
        };
        let versions = &self.order[key];
        let newest = (versions.iter().enumerate().rev())
            .find(|(_, v)| v.node != reader && v.ts.is_some_and(|ts| ts <= at))
            .map(|(p, _)| p);
        let Some(newest) = newest.filter(|newest| *newest != position) else {
            return;
        };
        let anomaly = Anomaly::NotAtTimestamp {
            reader: self.names[reader].clone(),
            at,
            key: key.to_string(),
            read: shown(value),
            writer: self.names[versions[position].node].clone(),
            latest: shown(&versions[newest].value),
            latest_writer: self.names[versions[newest].node].clone(),
        };
        self.report.anomalies.push(anomaly);
    }

    fn finish(mut self) -> RegisterReport {
        let cycles = self.graph.cycles(&self.names, &self.committed);
        self.report.anomalies.extend(cycles);
        self.report.edges = self.graph.edges;
        let rank: Vec<u64> = (0..self.names.len())
            .map(|node| match self.txn(node) {
                None => 0,
                Some(txn) => txn.at.unwrap_or(u64::MAX),
            })
            .collect();
        self.report.serial_order = (self.graph.serial_order(&self.committed, &rank)).map(|order| {
            order
                .into_iter()
                .skip(1)
                .map(|n| self.names[n].clone())
                .collect()
        });
        self.report
    }
}

/// Which nodes count as committed: the initial state, the transactions told Committed,
/// and those with an unknown outcome of which another transaction read a value that
/// only they (of the ones not told Aborted) wrote.
fn committed_set(history: &RegisterHistory) -> Vec<bool> {
    let txns = &history.txns;
    let mut committed = vec![true];
    committed.extend(txns.iter().map(|txn| txn.outcome == Outcome::Committed));
    let writers_of = |key: &str, value: &Option<String>, reader: usize| -> Vec<usize> {
        let initial = history.initial.get(key).cloned() == *value;
        let mut found: Vec<usize> = initial.then_some(0).into_iter().collect();
        for (index, txn) in txns.iter().enumerate() {
            let node = index + 1;
            if node != reader
                && txn.outcome != Outcome::Aborted
                && installed(txn).get(key) == Some(&value)
            {
                found.push(node);
            }
        }
        found
    };
    for (index, txn) in txns.iter().enumerate() {
        for (key, value) in external_reads(txn) {
            if let [only] = writers_of(key, value, index + 1).as_slice()
                && *only > 0
                && txns[*only - 1].outcome == Outcome::Unknown
            {
                committed[*only] = true;
            }
        }
    }
    committed
}
