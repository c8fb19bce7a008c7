//! The checker: infers the version order of every key from the reads, the ww, wr and rw
//! dependencies between committed transactions, checks each read for aborted and
//! intermediate writes, and hands the graph to [`Graph`] to look for cycles.

use super::graph::Graph;
use super::{Anomaly, Dep, History, Op, Outcome, Report};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Who appended an element.
struct Writer {
    txn: usize,
    /// Whether it was the writer's last append to that key.
    last_for_key: bool,
}

/// Checks `history` for serializability; see the module doc.
pub fn check(history: &History) -> Report {
    let resolved = super::deletes::resolve(history);
    let history: &History = &resolved;
    let mut anomalies = Vec::new();
    let writers = index_writers(history, &mut anomalies);
    let committed = committed_set(history, &writers);
    let reads = committed_reads(history, &committed, &writers, &mut anomalies);
    let orders = version_orders(history, &reads, &mut anomalies);
    let mut graph = Graph::new(history.txns.len());
    add_ww_edges(&orders, &writers, &committed, &mut graph);
    for read in &reads {
        check_read(
            history,
            read,
            &orders,
            &writers,
            &committed,
            &mut graph,
            &mut anomalies,
        );
    }
    let names: Vec<String> = history.txns.iter().map(|txn| txn.name.clone()).collect();
    anomalies.extend(graph.cycles(&names, &committed));
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

/// Committed transactions, and unknown ones that a committed transaction (told so, or
/// itself found committed so) saw a write of. A transaction that did not commit proves
/// nothing by what it read: a read under a lock is answered before the fsync of the
/// commit it sees (`runtime::visible`), and a crash may then lose both.
fn committed_set(history: &History, writers: &HashMap<String, Writer>) -> Vec<bool> {
    let mut committed: Vec<bool> = (history.txns.iter())
        .map(|txn| txn.outcome == Outcome::Committed)
        .collect();
    let mut changed = true;
    while changed {
        changed = false;
        for (reader, txn) in history.txns.iter().enumerate() {
            if !committed[reader] {
                continue;
            }
            for op in &txn.ops {
                let Op::Read { list, .. } = op else { continue };
                for elem in list {
                    if let Some(writer) = writers.get(elem)
                        && writer.txn != reader
                        && history.txns[writer.txn].outcome == Outcome::Unknown
                        && !committed[writer.txn]
                    {
                        committed[writer.txn] = true;
                        changed = true;
                    }
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
    // The next version's writer overwrote what this read saw; not if that writer is the
    // one whose intermediate version was read (reported as G1b above).
    let last_writer = (read.external.last()).and_then(|last| writers.get(last).map(|w| w.txn));
    let order = orders[read.key];
    if order.starts_with(read.external)
        && let Some(next) = order.get(read.external.len())
        && let Some(writer) = writers.get(next)
        && writer.txn != read.txn
        && Some(writer.txn) != last_writer
        && committed[writer.txn]
    {
        graph.add(read.txn, writer.txn, Dep::Rw, read.key);
    }
}
