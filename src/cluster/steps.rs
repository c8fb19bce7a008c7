//! Step mode on a running cluster (`STEP ON` in the shell): the protocol's messages and
//! fsyncs wait in a numbered queue (`net::steps`) until they are let go one by one, and
//! the atomicity check the shell runs after each step.
//!
//! While step mode is on the clock is manual (time moves only by `TICK`), so that no
//! timeout fires while a learner thinks; it runs on in real time again after, if it did
//! before.

use super::Cluster;
use crate::error::{Error, Result};
use crate::net::{Control, Mail, Pending};
use crate::types::{NodeId, TxnId};
use std::collections::BTreeMap;

/// Which queued steps to let go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepChoice {
    /// The one with this number (after those ahead of it on its link).
    Number(u64),
    /// Everything waiting to reach this node.
    Node(NodeId),
    /// Everything waiting now (not what that causes).
    All,
    /// The oldest.
    Next,
}

/// How many rounds (each what was held when it began) turning step mode off lets go
/// before it stops on a queue that keeps refilling: a bound, not a limit ever reached
/// (a commit's steps go in a dozen rounds).
pub const MAX_STEP_ROUNDS: usize = 1000;

impl Cluster {
    /// Whether step mode is on.
    pub fn stepping(&self) -> bool {
        self.ctx.net.steps.is_on()
    }

    /// Turns step mode on or off. Off lets everything waiting go, in order, until the
    /// cluster settles, and returns what went; the clock runs in real time again if it
    /// did before.
    pub fn set_stepping(&self, on: bool) -> Vec<(u64, Pending)> {
        let steps = &self.ctx.net.steps;
        if on == steps.is_on() {
            return Vec::new();
        }
        if on {
            self.settle();
            steps.remember_clock(self.ctx.clock.set_manual(true));
            steps.set_on(true);
            return Vec::new();
        }
        steps.set_on(false);
        let mut went = Vec::new();
        for _ in 0..MAX_STEP_ROUNDS {
            self.settle();
            let round = steps.take_all();
            if round.is_empty() {
                break;
            }
            for (_, pending) in &round {
                self.release_step(pending.clone());
            }
            went.extend(round);
        }
        self.settle();
        if !steps.clock_was_manual() {
            self.ctx.clock.set_manual(false);
            // Node threads on a manual clock wait for mail without a timeout.
            for node in 0..self.ctx.nodes {
                let _ = self.ctx.net.post(node, Mail::Control(Control::Wake));
            }
        }
        went
    }

    /// What waits in the step queue, oldest first, with its number.
    pub fn step_queue(&self) -> Vec<(u64, Pending)> {
        self.ctx.net.steps.list()
    }

    /// Takes the chosen steps out of the queue, in the order they must go, for the
    /// caller to let go one by one ([`Cluster::release_step`]).
    pub fn take_steps(&self, choice: StepChoice) -> Result<Vec<(u64, Pending)>> {
        let steps = &self.ctx.net.steps;
        if !steps.is_on() {
            return Err(Error::InvalidInput(
                "nothing is held: step mode is off (STEP ON holds every message and fsync)".into(),
            ));
        }
        Ok(match choice {
            StepChoice::Number(number) => steps.take(number).ok_or_else(|| {
                Error::InvalidInput(format!(
                    "nothing numbered {number} waits; SHOW QUEUE lists what does"
                ))
            })?,
            StepChoice::Node(node) => {
                self.ctx.net.check_node(node)?;
                steps.take_for(node)
            }
            StepChoice::All => steps.take_all(),
            StepChoice::Next => steps.take_oldest().into_iter().collect(),
        })
    }

    /// Lets one step taken from the queue go, and settles: one node works at a time,
    /// so what it causes is queued (and traced) in the same order every run.
    pub fn release_step(&self, pending: Pending) {
        self.ctx.net.release_step(pending);
        self.settle();
    }

    /// Loses the queued message `number` on the way (`SET network lossy`).
    pub fn drop_step(&self, number: u64) -> Result<Pending> {
        (self.ctx.net.steps.take_to_drop(number)).map_err(Error::InvalidInput)
    }

    /// How many of the records at the end of `node`'s log are written but not yet
    /// fsynced (0 for a node that is down: its log was cut to what was synced). In step
    /// mode, those whose fsync is held.
    pub fn log_unsynced(&self, node: NodeId) -> Result<usize> {
        if let Some(processes) = &self.processes {
            return Cluster::remote_log(processes, node).map(|(_, unsynced, _)| unsynced);
        }
        let (reply, answer) = crossbeam::channel::bounded(1);
        if self.control(node, Control::Synced(reply)).is_err() {
            return Ok(0);
        }
        let Ok((segment, synced)) = answer.recv() else {
            return Ok(0);
        };
        let records = crate::wal::Wal::read_records(&self.node_dir(node))?;
        let after = |(number, offset): (u64, u64)| (number, offset) >= (segment, synced);
        Ok(records.iter().filter(|(n, o, _)| after((*n, *o))).count())
    }

    /// The lines step mode noted since the last call: what a crash lost, what an fsync
    /// completed besides itself.
    pub fn step_notes(&self) -> Vec<String> {
        self.ctx.net.steps.take_notes()
    }

    /// Atomicity as the nodes' logs show it: no transaction committed on one node (a
    /// `Decision`, `Commit` or one-phase commit record) and aborted on another (an
    /// `Abort` record). A hand-made decision (`RESOLVE`) that disagrees is named as what
    /// it is, a heuristic mixed outcome: the only way atomicity can break. Returns one
    /// line per transaction that breaks it. Logs are read from disk, so down nodes
    /// count; what a checkpoint dropped is not seen.
    pub fn check_atomicity(&self) -> Vec<String> {
        use super::LogRecord as R;
        // Per transaction: per outcome (commit?), the nodes and what they wrote.
        let mut seen: BTreeMap<TxnId, BTreeMap<bool, Vec<String>>> = BTreeMap::new();
        let mut heuristic: BTreeMap<TxnId, Vec<(NodeId, bool)>> = BTreeMap::new();
        for node in 0..self.ctx.nodes {
            let Ok(records) = self.log_records(node) else {
                continue;
            };
            for entry in records {
                let (tid, commit, what) = match entry.record {
                    R::Decision { tid, .. } => (tid, true, "its commit decision"),
                    R::Commit { tid, .. } => (tid, true, "a Commit record"),
                    R::OnePhaseCommit { tid, .. } => (tid, true, "a one-phase commit"),
                    R::Abort { tid } => (tid, false, "an Abort record"),
                    R::Heuristic { tid, commit, .. } => {
                        heuristic.entry(tid).or_default().push((node, commit));
                        continue;
                    }
                    _ => continue,
                };
                let at = format!("{what} on node {node}");
                let outcomes = seen.entry(tid).or_default();
                if !outcomes.get(&commit).is_some_and(|at_| at_.contains(&at)) {
                    outcomes.entry(commit).or_default().push(at);
                }
            }
        }
        let mut broken = Vec::new();
        for (tid, outcomes) in &seen {
            let split = outcomes.len() == 2;
            let hands = heuristic.get(tid).map(Vec::as_slice).unwrap_or_default();
            let wrong = |commit: bool| split || !outcomes.contains_key(&commit);
            if let Some((node, commit)) = hands.iter().find(|(_, commit)| wrong(*commit)) {
                broken.push(format!(
                    "heuristic mixed outcome: {tid} was {} by hand on node {node} (RESOLVE), \
                     but {} elsewhere; atomicity is broken, and only a heuristic decision \
                     can break it",
                    word(*commit),
                    word(!commit)
                ));
            } else if split {
                broken.push(format!(
                    "ATOMICITY VIOLATED: {tid} committed ({}) and aborted ({})",
                    outcomes[&true].join(", "),
                    outcomes[&false].join(", ")
                ));
            }
        }
        broken
    }
}

fn word(commit: bool) -> &'static str {
    if commit { "committed" } else { "aborted" }
}
