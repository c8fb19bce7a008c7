//! One state of an exploration: the simulated cluster and how far each session has got
//! through its commands, rebuilt from scratch by replaying the moves that led to it.

use super::{Bounds, Plan};
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::sim::{ClientId, Endpoint, Response, Sim, SimConfig, Step};
use crate::types::NodeId;
use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};

/// One thing the explorer can do next: a step of the simulator, or a session's next
/// move.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Move {
    /// The node `to` takes the message at the head of the link from node `from`.
    Deliver {
        /// The sender.
        from: NodeId,
        /// The receiver.
        to: NodeId,
    },
    /// The node's appended log records become durable; what waited for them leaves.
    Fsync {
        /// The node.
        node: NodeId,
    },
    /// The node's process dies: what it had not fsynced is lost.
    Crash {
        /// The node.
        node: NodeId,
    },
    /// A down node recovers from its log and rejoins.
    Restart {
        /// The node.
        node: NodeId,
    },
    /// The clock moves on by the vote timeout, and every node checks its timeouts.
    Tick,
    /// The session takes its answer or gives its next command, and its request reaches
    /// the node it is for at once (as a shell command does: requests from sessions are
    /// not held in step mode either).
    Session {
        /// The session's index in the plan.
        session: usize,
    },
}

impl fmt::Display for Move {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Move::Deliver { from, to } => write!(f, "deliver node{from} -> node{to}"),
            Move::Fsync { node } => write!(f, "fsync node{node}"),
            Move::Crash { node } => write!(f, "crash node{node}"),
            Move::Restart { node } => write!(f, "restart node{node}"),
            Move::Tick => write!(f, "tick"),
            Move::Session { session } => write!(f, "session {session}"),
        }
    }
}

/// What a session was told about one command.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Told {
    /// It succeeded.
    Ok(Response),
    /// The transaction was aborted (this command's error, or an earlier one's).
    Aborted(String),
    /// The node it needed was down, or the commit's outcome is unknown to the client.
    Unknown(String),
    /// Refused for another reason (a bad input).
    Refused(String),
}

impl Told {
    fn of(result: Result<Response>) -> Told {
        match result {
            Ok(response) => Told::Ok(response),
            Err(error @ Error::Aborted { .. }) => Told::Aborted(error.to_string()),
            Err(error @ (Error::NodeDown { .. } | Error::OutcomeUnknown { .. })) => {
                Told::Unknown(error.to_string())
            }
            Err(error) => Told::Refused(error.to_string()),
        }
    }
}

/// How far one session has got.
#[derive(Clone, Debug, Default, Hash)]
pub struct Progress {
    /// The commands given so far (the next one to give is `plan.commands[given]`).
    pub given: usize,
    /// What it was told, command by command, for the commands answered.
    pub told: Vec<Told>,
}

/// A state of the exploration.
pub struct World {
    /// The simulated cluster.
    pub sim: Sim,
    /// Each session's simulator client id.
    clients: Vec<ClientId>,
    /// How far each session has got.
    pub progress: Vec<Progress>,
    /// Crashes taken so far (bounded by `Bounds::crashes`).
    pub crashes: u32,
    /// Ticks taken so far (bounded by `Bounds::ticks`).
    pub ticks: u32,
}

impl World {
    /// A fresh cluster with the plan's sessions, nothing done yet.
    pub fn new(plan: &Plan, bounds: &Bounds, settings: &Settings) -> Result<World> {
        let config = SimConfig {
            nodes: bounds.nodes,
            settings: settings.clone(),
            tick: settings.vote_timeout,
            read_only_votes_skip_fsync: bounds.broken_read_only_votes,
            commits_skip_decision: false,
        };
        let mut sim = Sim::new(config, Vec::new())?;
        // The nodes' greetings as they start (RESTARTED, RESTART ACK) are delivered
        // first, in a fixed order: the exploration starts from a cluster at rest.
        while let Some(step) = (sim.pending().into_iter())
            .find(|step| matches!(step, Step::Deliver { .. } | Step::Fsync { .. }))
        {
            sim.apply(step)?;
        }
        let clients = (plan.sessions.iter())
            .map(|session| sim.add_session(session.home))
            .collect();
        Ok(World {
            sim,
            clients,
            progress: vec![Progress::default(); plan.sessions.len()],
            crashes: 0,
            ticks: 0,
        })
    }

    /// A copy of this state that shares nothing with it (`Sim::fork`).
    pub fn fork(&self) -> Result<World> {
        Ok(World {
            sim: self.sim.fork()?,
            clients: self.clients.clone(),
            progress: self.progress.clone(),
            crashes: self.crashes,
            ticks: self.ticks,
        })
    }

    /// Every move that can be taken now, in a fixed order: deliveries, fsyncs, sessions,
    /// then (within the bounds) crashes, restarts and a tick.
    pub fn moves(&self, plan: &Plan, bounds: &Bounds) -> Vec<Move> {
        let mut moves = self.progress_moves(plan);
        let quiet = moves.is_empty();
        let nodes = self.sim.nodes();
        for node in 0..nodes {
            if !self.sim.is_up(node) {
                moves.push(Move::Restart { node });
            } else if self.crashes < bounds.crashes {
                moves.push(Move::Crash { node });
            }
        }
        // Time passes when nothing else can happen (every message delivered, every
        // fsync done) and something is under way (a vote awaited, a participant in
        // doubt, a lock wait): a timeout never races a message in flight here, which the
        // seeded simulator's runs cover.
        if self.ticks < bounds.ticks
            && (quiet || bounds.ticks_anywhere)
            && !self.sim.leftovers().is_empty()
        {
            moves.push(Move::Tick);
        }
        moves
    }

    /// The moves that make progress without a fault or the clock: deliveries, fsyncs and
    /// sessions. None left means the cluster is quiet until something fails or time
    /// passes.
    pub fn progress_moves(&self, plan: &Plan) -> Vec<Move> {
        let pending = self.sim.pending();
        let mut moves = Vec::new();
        for step in &pending {
            match *step {
                Step::Deliver {
                    from: Endpoint::Node(from),
                    to,
                } => moves.push(Move::Deliver { from, to }),
                Step::Fsync { node } => moves.push(Move::Fsync { node }),
                _ => {}
            }
        }
        for (session, plan) in plan.sessions.iter().enumerate() {
            let client = self.clients[session];
            let answered = pending.contains(&Step::Client { client });
            let next = !self.sim.busy(client) && self.progress[session].given < plan.commands.len();
            if answered || next {
                moves.push(Move::Session { session });
            }
        }
        moves
    }

    /// Takes a move. An error is a failure of the code under test (a log that cannot be
    /// written or recovered).
    pub fn apply(&mut self, plan: &Plan, step: Move) -> Result<()> {
        match step {
            Move::Deliver { from, to } => self.sim.apply(Step::Deliver {
                from: Endpoint::Node(from),
                to,
            }),
            Move::Fsync { node } => self.sim.apply(Step::Fsync { node }),
            Move::Crash { node } => {
                self.crashes += 1;
                self.sim.apply(Step::Crash { node })
            }
            Move::Restart { node } => self.sim.apply(Step::Restart { node }),
            Move::Tick => {
                self.ticks += 1;
                self.sim.apply(Step::Tick)
            }
            Move::Session { session } => self.session_moves(plan, session),
        }
    }

    /// The session acts: it takes its answer if one has come (and records it), then, if
    /// it is idle and has a command left, gives the next one. Each request it sends
    /// reaches its node at once. (Taking an answer and giving the next command are one
    /// move: nothing in the cluster can tell the two moments apart.)
    fn session_moves(&mut self, plan: &Plan, session: usize) -> Result<()> {
        let client = self.clients[session];
        let commands = &plan.sessions[session].commands;
        if self.sim.pending().contains(&Step::Client { client }) {
            self.session_acts(client)?;
        }
        if let Some(told) = self.sim.told(client) {
            self.progress[session].told.push(Told::of(told));
        }
        let progress = &mut self.progress[session];
        if !self.sim.busy(client) && progress.given < commands.len() {
            self.sim.command(client, commands[progress.given].clone())?;
            progress.given += 1;
            self.session_acts(client)?;
            if let Some(told) = self.sim.told(client) {
                self.progress[session].told.push(Told::of(told));
            }
        }
        Ok(())
    }

    /// One `Step::Client`, and the delivery of what it sent.
    fn session_acts(&mut self, client: ClientId) -> Result<()> {
        self.sim.apply(Step::Client { client })?;
        for step in self.sim.pending() {
            if let Step::Deliver {
                from: Endpoint::Client(from),
                ..
            } = step
                && from == client
            {
                self.sim.apply(step)?;
            }
        }
        Ok(())
    }

    /// The fingerprint of this state: the cluster's, the sessions' progress and the
    /// faults and ticks left.
    pub fn fingerprint(&self) -> u64 {
        let mut hasher = DefaultHasher::new();
        self.sim.fingerprint().hash(&mut hasher);
        (&self.progress, self.crashes, self.ticks).hash(&mut hasher);
        hasher.finish()
    }

    /// Whether every session has been told the answer to each of its commands.
    pub fn sessions_done(&self, plan: &Plan) -> bool {
        (plan.sessions.iter().zip(&self.progress))
            .all(|(session, progress)| progress.told.len() == session.commands.len())
    }
}
