//! The invariants an exploration checks: in every state (atomicity in the logs, and the
//! durability of what a session was told committed, on nodes that crashed), and at
//! every end, once it has settled (nothing left over; all or nothing; serializability).

use super::Plan;
use super::world::{Move, Told, World};
use crate::error::Result;
use crate::sim::{Command, Response};
use crate::types::{NodeId, TxnId, owner_of};
use crate::wal::Record;
use std::collections::{BTreeMap, BTreeSet};

/// How a transaction of the plan ended, as its session was told.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fate {
    /// Told committed (a read-only snapshot that ended always is).
    Committed,
    /// Told aborted.
    Aborted,
    /// The session cannot know: its coordinator went down while it committed.
    Unknown,
    /// No answer (yet): its commit waits, in doubt.
    InDoubt,
}

/// One transaction of the plan, as far as its session got.
#[derive(Clone, Debug)]
pub struct Txn {
    /// The session's index.
    pub session: usize,
    /// Its number in its session, from 1.
    pub number: usize,
    /// Its id, once begun.
    pub tid: Option<TxnId>,
    /// Reads as told: key and value.
    pub reads: Vec<(String, Option<String>)>,
    /// Writes asked: key and value (`None` deletes), in order.
    pub writes: Vec<(String, Option<String>)>,
    /// Reads and writes in order, for the serial replay: `(key, Some(read))` or
    /// `(key, None)` for a write at that position.
    ops: Vec<Op>,
    /// How it ended.
    pub fate: Fate,
}

#[derive(Clone, Debug)]
enum Op {
    Read(String, Option<String>),
    Write(String, Option<String>),
}

/// The plan's transactions, session by session, with what each session was told.
pub fn transactions(plan: &Plan, world: &World) -> Vec<Txn> {
    let mut txns = Vec::new();
    for (session, (plan, progress)) in plan.sessions.iter().zip(&world.progress).enumerate() {
        let mut open: Option<Txn> = None;
        let mut count = 0;
        for (index, command) in plan.commands.iter().enumerate() {
            let told = progress.told.get(index);
            match command {
                Command::Begin | Command::BeginSnapshot => {
                    let tid = match told {
                        Some(Told::Ok(Response::Begun(tid))) => Some(*tid),
                        _ => None,
                    };
                    count += 1;
                    open = Some(Txn {
                        session,
                        number: count,
                        tid,
                        reads: Vec::new(),
                        writes: Vec::new(),
                        ops: Vec::new(),
                        fate: Fate::InDoubt,
                    });
                }
                Command::Read(key) | Command::ReadForUpdate(key) => {
                    if let (Some(txn), Some(Told::Ok(Response::Read(value)))) = (&mut open, told) {
                        txn.reads.push((key.clone(), value.clone()));
                        txn.ops.push(Op::Read(key.clone(), value.clone()));
                    }
                }
                Command::Write(key, value) => push_write(&mut open, key, Some(value.clone())),
                Command::Delete(key) => push_write(&mut open, key, None),
                Command::Commit | Command::Abort => {
                    if let Some(mut txn) = open.take() {
                        txn.fate = match (command, told) {
                            (Command::Abort, Some(_)) => Fate::Aborted,
                            (_, Some(Told::Ok(_))) => Fate::Committed,
                            (_, Some(Told::Unknown(_))) => Fate::Unknown,
                            (_, Some(_)) => Fate::Aborted,
                            (_, None) => Fate::InDoubt,
                        };
                        txns.push(txn);
                    }
                }
            }
        }
        txns.extend(open);
    }
    txns
}

fn push_write(open: &mut Option<Txn>, key: &str, value: Option<String>) {
    if let Some(txn) = open {
        txn.writes.push((key.to_string(), value.clone()));
        txn.ops.push(Op::Write(key.to_string(), value));
    }
}

/// A transaction's name in a report: its session, number and id.
pub fn name(plan: &Plan, txn: &Txn) -> String {
    let session = &plan.sessions[txn.session].name;
    match txn.tid {
        Some(tid) => format!("{session}'s transaction {} ({tid})", txn.number),
        None => format!("{session}'s transaction {}", txn.number),
    }
}

/// The invariants of every state; the first one broken, described.
pub fn state(plan: &Plan, world: &World) -> Option<String> {
    let nodes = world.sim.nodes();
    let mut logs = BTreeMap::new();
    for node in 0..nodes {
        // A log the simulator cannot read is reported by the next step that opens it.
        if let Ok(records) = world.sim.log_records(node) {
            logs.insert(node, records);
        }
    }
    (atomicity(&logs))
        .or_else(|| durability(plan, world, &logs))
        .or_else(|| vanished(plan, world, &logs))
}

fn atomicity(logs: &BTreeMap<NodeId, Vec<Record>>) -> Option<String> {
    let mut commits: BTreeMap<TxnId, (NodeId, &'static str)> = BTreeMap::new();
    let mut aborts: BTreeMap<TxnId, NodeId> = BTreeMap::new();
    for (node, records) in logs {
        for record in records {
            match record {
                Record::Decision { tid, .. } => {
                    commits
                        .entry(*tid)
                        .or_insert((*node, "its commit decision"));
                }
                Record::Commit { tid, .. } => {
                    commits.entry(*tid).or_insert((*node, "a Commit record"));
                }
                Record::OnePhaseCommit { tid, .. } => {
                    commits.entry(*tid).or_insert((*node, "a one-phase commit"));
                }
                Record::Abort { tid } => {
                    aborts.entry(*tid).or_insert(*node);
                }
                _ => {}
            }
        }
    }
    commits.iter().find_map(|(tid, (at, what))| {
        aborts.get(tid).map(|aborted| {
            format!(
                "atomicity: {tid} committed on node {at} ({what} is in its log) and aborted \
                 on node {aborted} (an Abort record is in its log)"
            )
        })
    })
}

/// Whether `node`'s log holds a record of `tid` that keeps its writes there (its
/// Prepare, Commit or one-phase commit).
fn kept(logs: &BTreeMap<NodeId, Vec<Record>>, node: NodeId, tid: TxnId) -> bool {
    logs.get(&node).is_some_and(|records| {
        records.iter().any(|record| {
            record.tid() == Some(tid)
                && matches!(
                    record,
                    Record::Prepare { .. } | Record::Commit { .. } | Record::OnePhaseCommit { .. }
                )
        })
    })
}

/// A transaction that committed (told so, or with a commit record in some log) and was
/// told a value of a key whose owner crashed, when no transaction that wrote that value
/// there is still in the log the crash left (the session's own writes aside: it reads
/// them from its workspace). A reader that did not commit is not judged: a read under a
/// lock is answered before the fsync of the commit it sees (`runtime::visible`), and a
/// crash that loses that commit must take the reader with it.
fn vanished(plan: &Plan, world: &World, logs: &BTreeMap<NodeId, Vec<Record>>) -> Option<String> {
    let nodes = world.sim.nodes();
    let txns = transactions(plan, world);
    let decided = |tid: TxnId| {
        (logs.values().flatten()).any(|record| {
            record.tid() == Some(tid)
                && matches!(
                    record,
                    Record::Commit { .. } | Record::OnePhaseCommit { .. }
                )
        })
    };
    let committed = |txn: &&Txn| txn.fate == Fate::Committed || txn.tid.is_some_and(decided);
    for reader in txns.iter().filter(committed) {
        for (key, value) in &reader.reads {
            let owner = owner_of(key, nodes);
            let own = |(k, v): &(String, Option<String>)| k == key && v == value;
            if value.is_none() || world.sim.is_up(owner) || reader.writes.iter().any(own) {
                continue;
            }
            let writers: Vec<&Txn> = (txns.iter())
                .filter(|txn| txn.writes.iter().any(own))
                .collect();
            let survives =
                (writers.iter()).any(|writer| writer.tid.is_none_or(|tid| kept(logs, owner, tid)));
            if let (false, Some(writer)) = (survives, writers.first()) {
                return Some(format!(
                    "a value that vanished: {} committed having been told {key} = {}, written \
                     by {}, but node {owner} crashed and the log it kept holds neither a Prepare nor a Commit \
                     of it",
                    name(plan, reader),
                    value.as_deref().unwrap_or_default(),
                    name(plan, writer)
                ));
            }
        }
    }
    None
}

fn durability(plan: &Plan, world: &World, logs: &BTreeMap<NodeId, Vec<Record>>) -> Option<String> {
    let nodes = world.sim.nodes();
    for txn in transactions(plan, world) {
        let (Fate::Committed, Some(tid)) = (txn.fate, txn.tid) else {
            continue;
        };
        let owners: BTreeSet<NodeId> = (txn.writes.iter())
            .map(|(key, _)| owner_of(key, nodes))
            .collect();
        for node in owners.into_iter().filter(|node| !world.sim.is_up(*node)) {
            if !kept(logs, node, tid) {
                return Some(format!(
                    "durability: {} was told committed, but node {node} crashed and the log \
                     it kept holds neither a Prepare nor a Commit of {tid}: its writes there \
                     are lost",
                    name(plan, &txn)
                ));
            }
        }
    }
    None
}

/// What an end showed once settled.
pub struct End {
    /// Each transaction's fate once settled, in plan order.
    pub outcomes: Vec<Fate>,
    /// The moves that settled it.
    pub settled: Vec<Move>,
    /// The invariant broken, if one is.
    pub broken: Option<String>,
}

/// How many moves settling an end may take before what is left counts as stuck.
const SETTLE_MOVES: usize = 200;

/// Checks an end: records each transaction's fate, lets the cluster settle (every
/// progress move in order, a tick when none is left), and checks what it left.
pub fn end(plan: &Plan, world: &mut World) -> Result<End> {
    let mut settled = Vec::new();
    let mut quiet_ticks = 0;
    while settled.len() < SETTLE_MOVES {
        let step = match world.progress_moves(plan).first() {
            Some(step) => *step,
            None if world.sim.leftovers().is_empty() && world.sessions_done(plan) => break,
            None if quiet_ticks < 8 => {
                quiet_ticks += 1;
                Move::Tick
            }
            None => break,
        };
        world.apply(plan, step)?;
        settled.push(step);
    }
    let outcomes = transactions(plan, world)
        .iter()
        .map(|txn| txn.fate)
        .collect();
    let broken = leftovers(plan, world)
        .or_else(|| state(plan, world))
        .or_else(|| data(plan, world));
    Ok(End {
        outcomes,
        settled,
        broken,
    })
}

fn leftovers(plan: &Plan, world: &World) -> Option<String> {
    let left = world.sim.leftovers();
    if !left.is_empty() {
        return Some(format!(
            "liveness: with every node up and time moving on, something is left: {}",
            left.join("; ")
        ));
    }
    if !world.sessions_done(plan) {
        return Some("liveness: a session never got its answer".into());
    }
    None
}

/// All or nothing, durability and serializability, against the settled data.
fn data(plan: &Plan, world: &World) -> Option<String> {
    let txns = transactions(plan, world);
    let stored = world.sim.data();
    let value_of = |key: &str| stored.get(key).cloned();
    let show = |value: &Option<String>| value.clone().unwrap_or_else(|| "nothing".into());
    for txn in &txns {
        let writers = |key: &str| {
            (txns.iter())
                .filter(|other| other.writes.iter().any(|(k, _)| k == key))
                .count()
        };
        let last: BTreeMap<&str, &Option<String>> = (txn.writes.iter())
            .map(|(key, value)| (key.as_str(), value))
            .collect();
        let alone: Vec<(&str, &Option<String>)> = (last.into_iter())
            .filter(|(key, _)| writers(key) == 1)
            .collect();
        let present = |(key, value): &(&str, &Option<String>)| value_of(key) == **value;
        let name = name(plan, txn);
        match txn.fate {
            Fate::Committed => {
                if let Some((key, value)) = alone.iter().find(|write| !present(write)) {
                    return Some(format!(
                        "durability: {name} was told committed, having written {key} = {}, \
                         but once every node recovered {key} holds {}",
                        show(value),
                        show(&value_of(key))
                    ));
                }
            }
            Fate::Aborted => {
                if let Some((key, value)) =
                    (alone.iter()).find(|write| present(write) && write.1.is_some())
                {
                    return Some(format!(
                        "atomicity: {name} was told aborted, yet its write {key} = {} is in \
                         the data",
                        show(value)
                    ));
                }
            }
            Fate::Unknown | Fate::InDoubt => {
                let kept = alone.iter().filter(|write| present(write)).count();
                if kept > 0 && kept < alone.len() {
                    let (key, value) = alone.iter().find(|write| !present(write))?;
                    return Some(format!(
                        "atomicity: the outcome of {name} is unknown to its session, and only \
                         part of it survived: {key} = {} is missing",
                        show(value)
                    ));
                }
            }
        }
    }
    if serial_order(plan, &txns, &stored).is_none() {
        return Some(format!(
            "serializability: no serial order of the committed transactions, each session's \
             in its order, gives what they read and what the nodes hold ({})",
            describe_reads(plan, &txns)
        ));
    }
    None
}

fn describe_reads(plan: &Plan, txns: &[Txn]) -> String {
    let reads: Vec<String> = (txns.iter())
        .filter(|txn| txn.fate == Fate::Committed && !txn.reads.is_empty())
        .map(|txn| {
            let seen: Vec<String> = (txn.reads.iter())
                .map(|(key, value)| match value {
                    Some(value) => format!("{key} = {value}"),
                    None => format!("{key} missing"),
                })
                .collect();
            format!("{} read {}", name(plan, txn), seen.join(", "))
        })
        .collect();
    if reads.is_empty() {
        "no committed transaction read anything".into()
    } else {
        reads.join("; ")
    }
}

/// A serial order of the committed transactions and some of the unknown ones, each
/// session in its order, whose serial run gives every committed transaction's reads and
/// the keys' final values (those any transaction wrote). Depth-first, pruning an order as
/// soon as a read disagrees.
fn serial_order(
    plan: &Plan,
    txns: &[Txn],
    stored: &BTreeMap<String, String>,
) -> Option<Vec<usize>> {
    let written: BTreeSet<&str> = (txns.iter())
        .flat_map(|txn| txn.writes.iter().map(|(key, _)| key.as_str()))
        .collect();
    let wanted: BTreeMap<&str, Option<&String>> = (written.iter())
        .map(|key| (*key, stored.get(*key)))
        .collect();
    let queues: Vec<Vec<usize>> = (0..plan.sessions.len())
        .map(|session| {
            (txns.iter().enumerate())
                .filter(|(_, txn)| txn.session == session && txn.fate != Fate::Aborted)
                .map(|(index, _)| index)
                .collect()
        })
        .collect();
    let mut search = Serial {
        txns,
        wanted,
        queues,
        order: Vec::new(),
    };
    let state = BTreeMap::new();
    let mut heads = vec![0; plan.sessions.len()];
    search.next(&mut heads, &state).then_some(search.order)
}

struct Serial<'a> {
    txns: &'a [Txn],
    wanted: BTreeMap<&'a str, Option<&'a String>>,
    queues: Vec<Vec<usize>>,
    order: Vec<usize>,
}

impl Serial<'_> {
    /// Extends the order from `state`, with `heads[s]` the next of session `s`'s
    /// transactions to place; true when it reached an order that explains everything.
    fn next(&mut self, heads: &mut Vec<usize>, state: &BTreeMap<String, Option<String>>) -> bool {
        let done = (0..self.queues.len()).all(|s| heads[s] == self.queues[s].len());
        if done {
            return (self.wanted.iter())
                .all(|(key, value)| state.get(*key).cloned().flatten().as_ref() == *value);
        }
        for session in 0..self.queues.len() {
            let Some(&index) = self.queues[session].get(heads[session]) else {
                continue;
            };
            let txn = &self.txns[index];
            heads[session] += 1;
            if txn.fate != Fate::Committed && self.next(heads, state) {
                heads[session] -= 1;
                return true;
            }
            if let Some(after) = run(txn, state) {
                self.order.push(index);
                if self.next(heads, &after) {
                    heads[session] -= 1;
                    return true;
                }
                self.order.pop();
            }
            heads[session] -= 1;
        }
        false
    }
}

/// The state after `txn` runs alone on `state`, or `None` if a read it was told does
/// not match (checked for committed transactions only).
fn run(
    txn: &Txn,
    state: &BTreeMap<String, Option<String>>,
) -> Option<BTreeMap<String, Option<String>>> {
    let mut state = state.clone();
    for op in &txn.ops {
        match op {
            Op::Read(key, value) => {
                let now = state.get(key).cloned().flatten();
                if txn.fate == Fate::Committed && now != *value {
                    return None;
                }
            }
            Op::Write(key, value) => {
                state.insert(key.clone(), value.clone());
            }
        }
    }
    Some(state)
}

/// The plan's transactions held in doubt in a quiet state with a node down: some
/// participant is prepared and cannot learn the outcome until a node restarts. By index
/// in [`transactions`].
pub fn blocked(plan: &Plan, world: &World) -> Vec<usize> {
    let doubted: BTreeSet<TxnId> = (0..world.sim.nodes())
        .flat_map(|node| world.sim.in_doubt(node).into_iter().map(|(tid, _)| tid))
        .collect();
    (transactions(plan, world).iter().enumerate())
        .filter(|(_, txn)| txn.tid.is_some_and(|tid| doubted.contains(&tid)))
        .map(|(index, _)| index)
        .collect()
}
