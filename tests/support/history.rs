//! A serializability checker for list-append histories, after Elle (Kingsbury and
//! Alvaro, "Elle: Inferring Isolation Anomalies from Experimental Observations", 2020).
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
//!
//! # Limits
//!
//! A transaction whose outcome the client does not know counts as committed when another
//! transaction read one of its elements, and is left out otherwise (Elle's `:info`).
//! Reads by aborted transactions are not checked: strict two-phase locking promises them
//! nothing once they abort. Each strongly connected component of the graph reports its
//! most severe cycle only.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;

/// What the client learned about a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The client was told it committed.
    Committed,
    /// The client was told it aborted (or aborted it itself).
    Aborted,
    /// The client does not know (its coordinator crashed while it committed).
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
    /// A transaction's read of its own appends is out of order with others' elements.
    Internal {
        /// The transaction.
        txn: String,
        /// The key.
        key: String,
        /// What it read.
        read: Vec<String>,
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
            Anomaly::G1c { cycle } => write!(
                f,
                "G1c circular information flow: {}",
                show_cycle(cycle)
            ),
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
        }
    }
}

/// A history of transactions, in any order.
#[derive(Clone, Debug, Default)]
pub struct History {
    /// The transactions.
    pub txns: Vec<Txn>,
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

/// Who appended an element.
struct Writer {
    txn: usize,
    /// Whether it was the writer's last append to that key.
    last_for_key: bool,
}

/// Checks `history` for serializability; see the module doc.
pub fn check(history: &History) -> Report {
    let mut anomalies = Vec::new();
    let writers = index_writers(history, &mut anomalies);
    let committed = committed_set(history, &writers);
    let reads = committed_reads(history, &committed, &writers, &mut anomalies);
    let orders = version_orders(history, &reads, &mut anomalies);
    let mut graph = Graph::new(history.txns.len());
    add_ww_edges(&orders, &writers, &committed, &mut graph);
    for read in &reads {
        check_read(history, read, &orders, &writers, &committed, &mut graph, &mut anomalies);
    }
    anomalies.extend(graph.cycles(history, &committed));
    Report {
        committed: committed.iter().filter(|c| **c).count(),
        edges: graph.edges,
        anomalies,
    }
}

fn index_writers(history: &History, anomalies: &mut Vec<Anomaly>) -> HashMap<String, Writer> {
    let mut writers: HashMap<String, Writer> = HashMap::new();
    for (index, txn) in history.txns.iter().enumerate() {
        let mut last: BTreeMap<&str, &str> = BTreeMap::new();
        for op in &txn.ops {
            if let Op::Append { key, elem } = op {
                last.insert(key, elem);
            }
        }
        for op in &txn.ops {
            let Op::Append { key, elem } = op else {
                continue;
            };
            let writer = Writer {
                txn: index,
                last_for_key: last.get(key.as_str()) == Some(&elem.as_str()),
            };
            if let Some(earlier) = writers.insert(elem.clone(), writer) {
                anomalies.push(Anomaly::DuplicateElement {
                    elem: elem.clone(),
                    writers: vec![history.txns[earlier.txn].name.clone(), txn.name.clone()],
                });
            }
        }
    }
    writers
}

/// Committed transactions, and unknown ones another transaction saw a write of.
fn committed_set(history: &History, writers: &HashMap<String, Writer>) -> Vec<bool> {
    let mut committed: Vec<bool> = (history.txns.iter())
        .map(|txn| txn.outcome == Outcome::Committed)
        .collect();
    for (reader, txn) in history.txns.iter().enumerate() {
        for op in &txn.ops {
            let Op::Read { list, .. } = op else { continue };
            for elem in list {
                if let Some(writer) = writers.get(elem)
                    && writer.txn != reader
                    && history.txns[writer.txn].outcome == Outcome::Unknown
                {
                    committed[writer.txn] = true;
                }
            }
        }
    }
    committed
}

/// A committed transaction's read, split into what others wrote and its own suffix.
struct Read<'h> {
    txn: usize,
    key: &'h str,
    /// The whole list, own appends included.
    list: &'h [String],
    /// The list without the reader's own appends: the version others installed.
    external: &'h [String],
}

fn committed_reads<'h>(
    history: &'h History,
    committed: &[bool],
    writers: &HashMap<String, Writer>,
    anomalies: &mut Vec<Anomaly>,
) -> Vec<Read<'h>> {
    let mut reads = Vec::new();
    for (index, txn) in history.txns.iter().enumerate() {
        if !committed[index] {
            continue;
        }
        for op in &txn.ops {
            let Op::Read { key, list } = op else { continue };
            let own = |elem: &String| writers.get(elem).is_some_and(|w| w.txn == index);
            let split = list.iter().position(own).unwrap_or(list.len());
            if !list[split..].iter().all(own) {
                anomalies.push(Anomaly::Internal {
                    txn: txn.name.clone(),
                    key: key.clone(),
                    read: list.clone(),
                });
                continue;
            }
            reads.push(Read {
                txn: index,
                key,
                list,
                external: &list[..split],
            });
        }
    }
    reads
}

/// Each key's version order: the longest committed read, which every other must prefix.
fn version_orders<'h>(
    history: &History,
    reads: &[Read<'h>],
    anomalies: &mut Vec<Anomaly>,
) -> BTreeMap<&'h str, &'h [String]> {
    let mut longest: BTreeMap<&str, &[String]> = BTreeMap::new();
    for read in reads {
        let entry = longest.entry(read.key).or_insert(read.list);
        if read.list.len() > entry.len() {
            *entry = read.list;
        }
    }
    let mut reported = BTreeSet::new();
    for read in reads {
        let order = longest[read.key];
        if !order.starts_with(read.list) && reported.insert(read.key) {
            anomalies.push(Anomaly::IncompatibleOrder {
                key: read.key.to_string(),
                reader: history.txns[read.txn].name.clone(),
                read: read.list.to_vec(),
                longest: order.to_vec(),
            });
        }
    }
    longest
}

fn add_ww_edges(
    orders: &BTreeMap<&str, &[String]>,
    writers: &HashMap<String, Writer>,
    committed: &[bool],
    graph: &mut Graph,
) {
    for (key, order) in orders {
        let mut previous: Option<usize> = None;
        for elem in order.iter() {
            let Some(writer) = writers.get(elem).filter(|w| committed[w.txn]) else {
                continue;
            };
            if let Some(previous) = previous
                && previous != writer.txn
            {
                graph.add(previous, writer.txn, Dep::Ww, key);
            }
            previous = Some(writer.txn);
        }
    }
}

/// Checks one committed read for G1a and G1b and adds its wr and rw edges.
fn check_read(
    history: &History,
    read: &Read,
    orders: &BTreeMap<&str, &[String]>,
    writers: &HashMap<String, Writer>,
    committed: &[bool],
    graph: &mut Graph,
    anomalies: &mut Vec<Anomaly>,
) {
    let reader = &history.txns[read.txn].name;
    for elem in read.external {
        match writers.get(elem) {
            None => anomalies.push(Anomaly::UnknownElement {
                reader: reader.clone(),
                key: read.key.to_string(),
                elem: elem.clone(),
            }),
            Some(writer) if !committed[writer.txn] => anomalies.push(Anomaly::G1a {
                reader: reader.clone(),
                writer: history.txns[writer.txn].name.clone(),
                key: read.key.to_string(),
                elem: elem.clone(),
            }),
            Some(_) => {}
        }
    }
    if let Some(last) = read.external.last()
        && let Some(writer) = writers.get(last)
    {
        if !writer.last_for_key {
            anomalies.push(Anomaly::G1b {
                reader: reader.clone(),
                writer: history.txns[writer.txn].name.clone(),
                key: read.key.to_string(),
                elem: last.clone(),
            });
        }
        if committed[writer.txn] {
            graph.add(writer.txn, read.txn, Dep::Wr, read.key);
        }
    }
    let order = orders[read.key];
    if order.starts_with(read.external)
        && let Some(next) = order.get(read.external.len())
        && let Some(writer) = writers.get(next)
        && writer.txn != read.txn
        && committed[writer.txn]
    {
        graph.add(read.txn, writer.txn, Dep::Rw, read.key);
    }
}

/// The dependency graph over transactions (by index).
struct Graph {
    out: Vec<Vec<(usize, Dep, String)>>,
    edges: usize,
}

impl Graph {
    fn new(nodes: usize) -> Graph {
        Graph {
            out: vec![Vec::new(); nodes],
            edges: 0,
        }
    }

    fn add(&mut self, from: usize, to: usize, dep: Dep, key: &str) {
        if from != to {
            self.out[from].push((to, dep, key.to_string()));
            self.edges += 1;
        }
    }

    /// The most severe cycle of each strongly connected component, classified.
    fn cycles(&self, history: &History, committed: &[bool]) -> Vec<Anomaly> {
        let mut anomalies = Vec::new();
        for component in self.components(committed) {
            if component.len() < 2 {
                continue;
            }
            let members: BTreeSet<usize> = component.into_iter().collect();
            let named = |cycle: Vec<(usize, usize, Dep, String)>| -> Vec<Edge> {
                (cycle.into_iter())
                    .map(|(from, to, dep, key)| Edge {
                        from: history.txns[from].name.clone(),
                        to: history.txns[to].name.clone(),
                        dep,
                        key,
                    })
                    .collect()
            };
            if let Some(cycle) = self.shortest_cycle(&members, &[Dep::Ww]) {
                anomalies.push(Anomaly::G0 {
                    cycle: named(cycle),
                });
            } else if let Some(cycle) = self.shortest_cycle(&members, &[Dep::Ww, Dep::Wr]) {
                anomalies.push(Anomaly::G1c {
                    cycle: named(cycle),
                });
            } else if let Some(cycle) = self.shortest_cycle(&members, &[Dep::Ww, Dep::Wr, Dep::Rw])
            {
                anomalies.push(Anomaly::G2 {
                    cycle: named(cycle),
                });
            }
        }
        anomalies
    }

    /// Strongly connected components of the committed transactions (Tarjan, iterative).
    fn components(&self, committed: &[bool]) -> Vec<Vec<usize>> {
        let n = self.out.len();
        let mut index = vec![usize::MAX; n];
        let mut low = vec![0; n];
        let mut on_stack = vec![false; n];
        let mut stack = Vec::new();
        let mut components = Vec::new();
        let mut next = 0;
        for root in (0..n).filter(|v| committed[*v]) {
            if index[root] != usize::MAX {
                continue;
            }
            let mut work: Vec<(usize, usize)> = vec![(root, 0)];
            while let Some(&mut (v, ref mut edge)) = work.last_mut() {
                if *edge == 0 && index[v] == usize::MAX {
                    index[v] = next;
                    low[v] = next;
                    next += 1;
                    stack.push(v);
                    on_stack[v] = true;
                }
                if let Some((w, _, _)) = self.out[v].get(*edge) {
                    let w = *w;
                    *edge += 1;
                    if index[w] == usize::MAX {
                        work.push((w, 0));
                    } else if on_stack[w] {
                        low[v] = low[v].min(index[w]);
                    }
                    continue;
                }
                work.pop();
                if let Some(&(parent, _)) = work.last() {
                    low[parent] = low[parent].min(low[v]);
                }
                if low[v] == index[v] {
                    let mut component = Vec::new();
                    while let Some(w) = stack.pop() {
                        on_stack[w] = false;
                        component.push(w);
                        if w == v {
                            break;
                        }
                    }
                    components.push(component);
                }
            }
        }
        components
    }

    /// The shortest cycle within `members` using only edges of the `allowed` kinds, as
    /// `(from, to, dep, key)` steps.
    fn shortest_cycle(
        &self,
        members: &BTreeSet<usize>,
        allowed: &[Dep],
    ) -> Option<Vec<(usize, usize, Dep, String)>> {
        let mut best: Option<Vec<(usize, usize, Dep, String)>> = None;
        for &start in members {
            // Breadth-first from `start` back to `start`.
            let mut came_from: HashMap<usize, (usize, Dep, String)> = HashMap::new();
            let mut queue = VecDeque::from([start]);
            let mut found = false;
            while let Some(v) = queue.pop_front() {
                for (w, dep, key) in &self.out[v] {
                    if !allowed.contains(dep) || !members.contains(w) {
                        continue;
                    }
                    if *w == start {
                        came_from.insert(start, (v, *dep, key.clone()));
                        found = true;
                        break;
                    }
                    if !came_from.contains_key(w) {
                        came_from.insert(*w, (v, *dep, key.clone()));
                        queue.push_back(*w);
                    }
                }
                if found {
                    break;
                }
            }
            if !found {
                continue;
            }
            let mut cycle = Vec::new();
            let mut at = start;
            loop {
                let (from, dep, key) = came_from[&at].clone();
                cycle.push((from, at, dep, key));
                at = from;
                if at == start {
                    break;
                }
            }
            cycle.reverse();
            if best.as_ref().is_none_or(|b| cycle.len() < b.len()) {
                best = Some(cycle);
            }
        }
        best
    }
}
