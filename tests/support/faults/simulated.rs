//! The simulated backend: the scenario on the deterministic simulator (`kv2pc::sim`),
//! one thread, each transaction a scripted session (`sim::Command`).
//!
//! After each event the run flows to rest: a generator seeded by the scenario's seed
//! picks among the deliveries, fsyncs and client steps pending (weighted as the
//! simulator's own settle phase) until none is left. So where the threaded run sees one
//! interleaving per event, the timing of its threads', here every seed takes another
//! order of messages among links, and fsyncs come late while other messages flow, all
//! replayable. At rest nothing is unsynced, so a crash event loses nothing a node had
//! not fsynced; a power loss event (`Event::PowerLoss`, which only simulated scenarios
//! have) strikes instead in the middle of the next event's flow, after a number of
//! steps the seed picks, with whatever the node's log holds unsynced torn sector by
//! sector (`disk::SimDisk`); if the flow ends first, it strikes at rest.
//!
//! The end of the run is the threaded one's (restart every node, tick until nothing is
//! left over), then every node loses power at once and restarts, and the run must
//! settle clean again: the data then read is what the disks kept.

use super::backend::{Backend, Failure, Told};
use super::scenario::Event;
use crate::support::{MAX_TICKS, TICK};
use kv2pc::cluster::KeyLocks;
use kv2pc::rng::Rng;
use kv2pc::sim::{ClientId, Command, Response, Sim, SimConfig, Step};
use kv2pc::{NodeId, TxnId};
use std::collections::BTreeMap;

/// Mixed into the scenario's seed for the flow's generator.
const FLOW_SALT: u64 = 0x51a1_f10e_0000_0010;
/// The most steps one flow to rest may take.
const FLOW_LIMIT: usize = 50_000;
/// The most flow steps before a pending power loss strikes.
const STRIKE_WITHIN: usize = 40;

/// The simulated cluster and the session of each transaction.
pub struct Simulated {
    sim: Sim,
    rng: Rng,
    sessions: BTreeMap<usize, ClientId>,
    /// A power loss due in the next flow: the node, and after how many steps.
    strike: Option<(NodeId, usize)>,
    /// Set when an event armed the strike, so that it waits for the next event's flow.
    armed_now: bool,
}

impl Simulated {
    /// A fresh simulated cluster of `nodes` with `settings`, for the run of `seed`.
    pub fn new(seed: u64, nodes: u32, settings: kv2pc::Settings) -> Result<Simulated, Failure> {
        let config = SimConfig {
            nodes,
            settings,
            tick: TICK,
            read_only_votes_skip_fsync: false,
            commits_skip_decision: false,
        };
        let sim = Sim::new(config, Vec::new()).map_err(failed)?;
        Ok(Simulated {
            sim,
            rng: Rng::new(seed ^ FLOW_SALT),
            sessions: BTreeMap::new(),
            strike: None,
            armed_now: false,
        })
    }

    fn apply(&mut self, step: Step) -> Result<(), Failure> {
        self.sim.apply(step).map_err(failed)
    }

    fn power_loss(&mut self, node: NodeId) -> Result<(), Failure> {
        let seed = self.rng.next_u64();
        self.apply(Step::PowerLoss { node, seed })
    }

    /// Takes deliveries, fsyncs and client steps at random until none is pending.
    fn flow(&mut self) -> Result<(), Failure> {
        let mut strike = if self.armed_now {
            None
        } else {
            self.strike.take()
        };
        self.armed_now = false;
        for _ in 0..FLOW_LIMIT {
            if let Some((node, 0)) = strike {
                strike = None;
                self.power_loss(node)?;
            }
            let choices: Vec<(Step, usize)> = (self.sim.pending().into_iter())
                .filter_map(|step| match step {
                    Step::Deliver { .. } => Some((step, 20)),
                    Step::Fsync { .. } => Some((step, 6)),
                    Step::Client { .. } => Some((step, 8)),
                    _ => None,
                })
                .collect();
            let total: usize = choices.iter().map(|(_, weight)| weight).sum();
            if total == 0 {
                if let Some((node, _)) = strike {
                    self.power_loss(node)?;
                    return self.flow();
                }
                return Ok(());
            }
            let mut at = self.rng.below(total);
            let chosen = (choices.iter())
                .find(|(_, weight)| {
                    let here = at < *weight;
                    at = at.saturating_sub(*weight);
                    here
                })
                .map(|(step, _)| *step);
            if let Some(step) = chosen {
                self.apply(step)?;
            }
            if let Some((_, left)) = &mut strike {
                *left -= 1;
            }
        }
        Err(format!(
            "the simulation never came to rest within {FLOW_LIMIT} steps"
        ))
    }

    /// Ticks and flows until nothing is left over; what is, after [`MAX_TICKS`].
    fn resolve(&mut self) -> Result<(), Vec<String>> {
        for _ in 0..MAX_TICKS {
            for node in 0..self.sim.nodes() {
                if !self.sim.is_up(node) {
                    self.apply(Step::Restart { node }).map_err(|e| vec![e])?;
                }
            }
            self.flow().map_err(|e| vec![e])?;
            if self.sim.leftovers().is_empty() {
                return Ok(());
            }
            self.apply(Step::Tick).map_err(|e| vec![e])?;
        }
        match self.sim.leftovers() {
            left if left.is_empty() => Ok(()),
            left => Err(left),
        }
    }
}

impl Backend for Simulated {
    fn set_up(&mut self, keys: &[String]) -> Result<(), Failure> {
        let session = self.sim.add_session(0);
        let mut commands = vec![Command::Begin];
        commands.extend(
            keys.iter()
                .map(|k| Command::Write(k.clone(), format!("s:{k}"))),
        );
        commands.push(Command::Commit);
        for command in commands {
            self.sim.command(session, command).map_err(failed)?;
            self.flow()?;
            match self.sim.told(session) {
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(format!("setup: {error}")),
                None => return Err("setup: a command was never answered".into()),
            }
        }
        Ok(())
    }

    fn open(&mut self, txn: usize, coordinator: NodeId) {
        let session = self.sim.add_session(coordinator);
        self.sessions.insert(txn, session);
    }

    fn send(&mut self, txn: usize, command: Command) {
        let session = self.sessions[&txn];
        self.sim
            .command(session, command)
            .expect("the driver sends only to an idle session");
    }

    fn close(&mut self, _txn: usize) {}

    fn quiesce(&mut self) -> Result<Vec<Told>, Failure> {
        self.flow()?;
        let mut told = Vec::new();
        for (txn, session) in &self.sessions {
            if let Some(answer) = self.sim.told(*session) {
                told.push((*txn, answer));
            }
        }
        Ok(told)
    }

    fn stuck(&self, txn: usize) -> bool {
        (self.sessions.get(&txn)).is_some_and(|session| self.sim.busy(*session))
    }

    fn fault(&mut self, event: &Event) -> Result<String, Failure> {
        let down = |node: NodeId| format!("refused: node {node} is down");
        let did = match *event {
            Event::Crash { node } if self.sim.is_up(node) => {
                self.apply(Step::Crash { node })?;
                "ok".into()
            }
            Event::Crash { node } => down(node),
            Event::PowerLoss { node } => {
                self.strike = Some((node, self.rng.below(STRIKE_WITHIN)));
                self.armed_now = true;
                "strikes in the next event".into()
            }
            Event::Arm { node, point } if self.sim.is_up(node) => {
                self.apply(Step::Arm { node, point })?;
                "ok".into()
            }
            Event::Arm { node, .. } => down(node),
            Event::Restart { node } if !self.sim.is_up(node) => {
                self.apply(Step::Restart { node })?;
                "ok".into()
            }
            Event::Restart { node } => format!("refused: node {node} is already up"),
            Event::Tick => {
                self.apply(Step::Tick)?;
                "ok".into()
            }
            Event::Checkpoint { node } if self.sim.is_up(node) => {
                self.apply(Step::Checkpoint { node })?;
                "ok".into()
            }
            Event::Checkpoint { .. } => "node down".into(),
            Event::Hold { from, to, label } => {
                self.sim.hold_link(from, to, label);
                "ok".into()
            }
            Event::Release { from, to } => format!("{} held", self.sim.release_link(from, to)),
            Event::Reopen => {
                self.sim.reopen().map_err(failed)?;
                "ok".into()
            }
            ref other => return Err(format!("{other} is not a fault")),
        };
        Ok(did)
    }

    fn is_up(&self, node: NodeId) -> bool {
        self.sim.is_up(node)
    }

    fn held_links(&self) -> Vec<(NodeId, NodeId, usize)> {
        self.sim.held_links()
    }

    fn release_link(&mut self, from: NodeId, to: NodeId) -> usize {
        self.sim.release_link(from, to)
    }

    fn locks(&self) -> Vec<(NodeId, KeyLocks)> {
        (self.sim.locks().into_iter())
            .map(|(node, locks)| (node, locks.into()))
            .collect()
    }

    fn in_doubt(&self, node: NodeId) -> Vec<(TxnId, NodeId)> {
        self.sim.in_doubt(node)
    }

    fn recover(&mut self) -> Result<(), Vec<String>> {
        self.strike = None;
        self.resolve()?;
        // Every node loses power at once: each must start, and what was acknowledged
        // must be in what the disks kept.
        for node in 0..self.sim.nodes() {
            self.power_loss(node).map_err(|e| vec![e])?;
        }
        self.resolve()
    }

    fn data(&self) -> BTreeMap<String, String> {
        self.sim.data()
    }

    fn join(&mut self) -> Result<(), Failure> {
        Ok(())
    }

    fn trace(&self) -> &[String] {
        self.sim.trace()
    }
}

fn failed(error: kv2pc::Error) -> Failure {
    format!("the simulation failed: {error}")
}
