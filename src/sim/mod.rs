//! A deterministic simulator of the whole cluster: one thread, one seed, the same
//! history every run.
//!
//! # What is real and what is simulated
//!
//! Real: every node's protocol state machines ([`Node`](crate::node::Node): participant,
//! coordinator, lock table, store, recovery), each node's write-ahead log
//! ([`Wal`](crate::wal::Wal), on a simulated disk that can lose power: see `disk`),
//! each node's logical clock, the floor queries of read-only snapshots and the
//! deadlock detector's role, which are messages between nodes. Simulated: the network
//! (`net`: one FIFO queue per link), the node runtime that executes effects (`node`: an outbox that lets what a node says out only
//! after the fsync it depends on; crashes), time (a manual clock the simulator moves),
//! and the clients (`client`: plans of transactions driven as `client.rs` drives them;
//! `session`: sessions a caller feeds command by command, answering as the client
//! library does; `script` adds them, held links and the whole process's death, for a
//! test that runs its own script, as `tests/random_faults.rs` does).
//! Nodes share nothing but the simulated network, as in the threaded cluster; the
//! clients share what a client library does: the highest timestamp they were told and
//! their count of transactions begun.
//!
//! # The step model
//!
//! Nothing happens by itself. [`Sim::pending`] lists every [`Step`] the simulator can
//! take now: deliver the head of a link, fsync a node's log, checkpoint it, move the
//! clock and tick every node, crash a node (its process, with or without the page
//! cache, or its power), arm a crash point on it, or restart it, let
//! a client take its answer and send its next request. [`Sim::apply`] takes one, runs it
//! to the end (a node handles the input, its effects are executed, what is already
//! durable is let out) and traces it. A node's appended records are durable only once a `Fsync` step for it
//! runs; a `Crash` cuts its log to that. A learner stepping by hand, an exhaustive
//! explorer, or the seeded driver ([`Sim::run`], in `driver`) choose among the steps.
//!
//! # Determinism
//!
//! A run is a pure function of the seed and the [`SimConfig`]: every collection the
//! simulator iterates is ordered (`BTreeMap`, `VecDeque`), the clock moves only by
//! steps, and the generator is seeded (`driver::Rng`). The trace ([`Sim::trace`]) lists
//! every step and what it did (deliveries, appends, fsyncs, crashes, answers), so two
//! runs of one seed can be compared line by line.
//!
//! # Limits
//!
//! A crash happens between steps, or inside one input's effects only at an armed crash
//! point (`Step::Arm`), where, as in the runtime, what came before is fsynced and let
//! out first; a node's disk can lose only what was never fsynced, whole or sector by
//! sector at a power loss; the outbox is stricter than the runtime's (see `node`); a
//! whole step is atomic, where the runtime may interleave a batch's fsync with the next
//! inputs. The clients are models of the client library, not the library itself: a
//! fault in `client` is found by the threaded runs only.

mod client;
mod disk;
mod driver;
mod fingerprint;
mod net;
mod node;
mod observe;
mod script;
mod session;

pub use client::{Op, Outcome, PlanOp, SimClient, TxnPlan, TxnRecord, parse_list};
pub use driver::{Rng, RunConfig, Summary};
pub use net::{ClientId, Endpoint, Packet};
pub use session::{Command, Response};

use crate::config::Settings;
use crate::crash::CrashPoint;
use crate::error::{Error, Result};
use crate::message::{Reply, ReqId};
use crate::node::Input;
use crate::types::NodeId;
use disk::Disk;
use net::{HeldLinks, Net};
use node::{Death, Held, Notes, SimNode};
use script::Actor;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// What a simulated cluster is made of.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The number of nodes.
    pub nodes: u32,
    /// The settings every node reads (vote timeout, inquiry interval, deadlocks).
    pub settings: Settings,
    /// How far a `Tick` step moves the clock.
    pub tick: Duration,
    /// A deliberately broken executor, for the tests that show the fault suites catch
    /// it: a READ-ONLY vote waits for no fsync, so a transaction that read, under a
    /// lock, a value whose one-phase commit is not yet durable can commit before that
    /// fsync, and survive a crash that loses the value it read (controlled lock
    /// violation without its wait: see `runtime::visible`). Never on otherwise.
    pub read_only_votes_skip_fsync: bool,
    /// A deliberately broken executor, for the test that shows a fault suite catches it:
    /// a COMMIT held until everything before it is durable (`SendDurable`: a parallel
    /// commit's `Decision` holds back only its COMMITs) leaves at once, ahead of the
    /// `Decision` it depends on. Never on otherwise.
    pub commits_skip_decision: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            nodes: 3,
            settings: Settings::default(),
            tick: Duration::from_millis(500),
            read_only_votes_skip_fsync: false,
            commits_skip_decision: false,
        }
    }
}

/// One thing the simulator can do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Step {
    /// The node `to` takes the packet at the head of the link from `from`.
    Deliver {
        /// Where the link starts.
        from: Endpoint,
        /// The receiving node.
        to: NodeId,
    },
    /// The node's appended records become durable; what waited for them leaves.
    Fsync {
        /// The node.
        node: NodeId,
    },
    /// The node writes a checkpoint (fsyncing its log first).
    Checkpoint {
        /// The node.
        node: NodeId,
    },
    /// The clock moves by [`SimConfig::tick`] and every node that is up checks its
    /// timeouts.
    Tick,
    /// The node's process dies: it loses its memory and what it had not fsynced.
    Crash {
        /// The node.
        node: NodeId,
    },
    /// The node's process dies, but what it wrote and did not fsync survives in the
    /// operating system's cache.
    ProcessDeath {
        /// The node.
        node: NodeId,
    },
    /// The node's machine loses power: of what it wrote since its last fsync, any
    /// subset of the sectors reaches the disk, as `seed` chooses (torn writes of every
    /// shape).
    PowerLoss {
        /// The node.
        node: NodeId,
        /// Chooses which sectors survive.
        seed: u64,
    },
    /// A down node recovers from its log and rejoins.
    Restart {
        /// The node.
        node: NodeId,
    },
    /// The node will die when its state machines next reach `point` (after making
    /// durable and sending what came before it, as the runtime's crash points do).
    Arm {
        /// The node.
        node: NodeId,
        /// Where it dies.
        point: CrashPoint,
    },
    /// The client takes its answer and sends its next request.
    Client {
        /// The client.
        client: ClientId,
    },
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Deliver { from, to } => write!(f, "deliver {from}->n{to}"),
            Step::Fsync { node } => write!(f, "fsync n{node}"),
            Step::Checkpoint { node } => write!(f, "checkpoint n{node}"),
            Step::Tick => write!(f, "tick"),
            Step::Crash { node } => write!(f, "crash n{node}"),
            Step::ProcessDeath { node } => write!(f, "process death n{node}"),
            Step::PowerLoss { node, seed } => write!(f, "power loss n{node} (seed {seed})"),
            Step::Restart { node } => write!(f, "restart n{node}"),
            Step::Arm { node, point } => write!(f, "arm n{node} at {}", point.name()),
            Step::Client { client } => write!(f, "client c{client}"),
        }
    }
}

/// A whole cluster and its clients, stepped on one thread.
pub struct Sim {
    config: SimConfig,
    now: Duration,
    /// What the clients know of time (`client::Shared`).
    shared: client::Shared,
    disk: Disk,
    nodes: Vec<SimNode>,
    net: Net,
    /// Links held back (`Sim::hold_link`).
    held: HeldLinks,
    clients: Vec<Actor>,
    /// Which client each request in flight belongs to.
    tickets: BTreeMap<ReqId, ClientId>,
    next_ticket: ReqId,
    steps: u64,
    trace: Vec<String>,
}

impl Sim {
    /// A fresh cluster on an empty disk, every node started, with `clients`.
    pub fn new(config: SimConfig, clients: Vec<SimClient>) -> Result<Sim> {
        let count = config.nodes;
        let nodes = (0..config.nodes)
            .map(|id| SimNode { id, up: None })
            .collect();
        let mut sim = Sim {
            config,
            now: Duration::ZERO,
            shared: client::Shared::default(),
            disk: Disk::new(count),
            nodes,
            net: Net::default(),
            held: HeldLinks::default(),
            clients: clients.into_iter().map(Actor::Plan).collect(),
            tickets: BTreeMap::new(),
            next_ticket: 0,
            steps: 0,
            trace: Vec::new(),
        };
        for node in 0..sim.config.nodes {
            sim.apply(Step::Restart { node })?;
        }
        Ok(sim)
    }

    /// Every step that can be taken now, in a fixed order.
    pub fn pending(&self) -> Vec<Step> {
        let mut steps: Vec<Step> = (self.net.busy())
            .map(|(from, to)| Step::Deliver { from, to })
            .collect();
        for node in &self.nodes {
            let id = node.id;
            if node.up.is_none() {
                steps.push(Step::Restart { node: id });
                continue;
            }
            if node.unsynced() {
                steps.push(Step::Fsync { node: id });
            }
            steps.push(Step::Checkpoint { node: id });
            steps.push(Step::Crash { node: id });
            steps.push(Step::ProcessDeath { node: id });
            steps.push(Step::PowerLoss {
                node: id,
                seed: self.steps,
            });
            if node.up.as_ref().is_some_and(|up| up.armed.is_none()) {
                (CrashPoint::ALL.iter())
                    .for_each(|&point| steps.push(Step::Arm { node: id, point }));
            }
        }
        steps.push(Step::Tick);
        for (client, state) in self.clients.iter().enumerate() {
            if state.ready() {
                steps.push(Step::Client { client });
            }
        }
        steps
    }

    /// Takes one step (which should be one of [`Sim::pending`]; any other does
    /// nothing). An error is a failure of the real code under test: a log that cannot
    /// be written or recovered.
    pub fn apply(&mut self, step: Step) -> Result<()> {
        self.steps += 1;
        let mut notes = Notes::new();
        match step {
            Step::Deliver { from, to } => self.deliver(from, to, &mut notes)?,
            Step::Fsync { node } => {
                self.node_mut(node)?.fsync(&mut notes)?;
                self.finish(node, &mut notes)?;
            }
            Step::Checkpoint { node } => {
                self.node_mut(node)?.checkpoint(&mut notes)?;
                self.finish(node, &mut notes)?;
            }
            Step::Tick => {
                self.now += self.config.tick;
                for node in 0..self.config.nodes {
                    self.input(node, Input::Tick, &mut notes)?;
                }
            }
            Step::Crash { node } => self.crash(node, Death::Crash, &mut notes)?,
            Step::ProcessDeath { node } => self.crash(node, Death::CacheKept, &mut notes)?,
            Step::PowerLoss { node, seed } => {
                self.crash(node, Death::PowerLoss(seed), &mut notes)?
            }
            Step::Restart { node } => self.restart(node, &mut notes)?,
            Step::Arm { node, point } => {
                if let Some(up) = &mut self.node_mut(node)?.up {
                    up.armed = Some(point);
                }
            }
            Step::Client { client } => self.client_acts(client, &mut notes),
        }
        self.trace.push(format!("{} {step}", self.steps));
        for note in notes {
            self.trace.push(format!("    {note}"));
        }
        Ok(())
    }

    fn node_mut(&mut self, node: NodeId) -> Result<&mut SimNode> {
        self.nodes
            .get_mut(node as usize)
            .ok_or_else(|| no_node(node))
    }

    fn deliver(&mut self, from: Endpoint, to: NodeId, notes: &mut Notes) -> Result<()> {
        let Some(packet) = self.net.pop(from, to) else {
            return Ok(());
        };
        notes.push(packet.label());
        let input = match (packet, from) {
            (Packet::Peer(message, clock), Endpoint::Node(from)) => Input::Peer {
                from,
                message,
                clock,
            },
            (Packet::Lost(message), Endpoint::Node(lost_to)) => Input::Undelivered {
                to: lost_to,
                message,
            },
            (Packet::Request { req, request }, _) => Input::Request { req, request },
            (_, Endpoint::Client(_)) => return Ok(()),
        };
        self.input(to, input, notes)
    }

    /// Feeds `input` to a node that is up, then ends its step.
    fn input(&mut self, node: NodeId, input: Input, notes: &mut Notes) -> Result<()> {
        let (now, settings) = (self.now, self.config.settings.clone());
        let sim_node = self.node_mut(node)?;
        if sim_node.up.is_none() {
            return Ok(());
        }
        let reached = sim_node.handle(input, now, &settings, notes)?;
        self.finish_or_die(node, reached, notes)
    }

    /// Ends a node's step, or, at an armed crash point, fsyncs what came before it, lets
    /// that out and crashes the node.
    fn finish_or_die(
        &mut self,
        node: NodeId,
        reached: Option<CrashPoint>,
        notes: &mut Notes,
    ) -> Result<()> {
        if reached.is_some() {
            self.node_mut(node)?.fsync(notes)?;
        }
        self.finish(node, notes)?;
        if reached.is_some() {
            self.crash(node, Death::Crash, notes)?;
        }
        Ok(())
    }

    /// Ends a node's step: reports its lock waits and lets out what is durable.
    fn finish(&mut self, node: NodeId, notes: &mut Notes) -> Result<()> {
        let detect = self.config.settings.deadlock == crate::config::DeadlockPolicy::Detect;
        let checkpoint_bytes = self.config.settings.checkpoint_bytes;
        let released = self
            .node_mut(node)?
            .finish(detect, checkpoint_bytes, notes)?;
        for held in released {
            self.route(node, held, notes);
        }
        Ok(())
    }

    /// Sends what a node let out: onto a link, or into a client's mailbox.
    fn route(&mut self, from: NodeId, held: Held, notes: &mut Notes) {
        match held {
            Held::Send { to, message, clock } => {
                let label = Packet::Peer(message.clone(), clock).label();
                if !self.is_up(to) {
                    notes.push(format!("lost n{from}->n{to} {label}: n{to} is down"));
                    if message.reports_loss() {
                        self.net
                            .push(Endpoint::Node(to), from, Packet::Lost(message));
                    }
                } else if let Some(packet) = self.held.offer(from, to, Packet::Peer(message, clock))
                {
                    notes.push(format!("send n{from}->n{to} {label}"));
                    self.net.push(Endpoint::Node(from), to, packet);
                } else {
                    notes.push(format!("held n{from}->n{to} {label}"));
                }
            }
            Held::Reply { req, reply } => self.answer(req, reply, notes),
            Held::Forward { req, to, request } => {
                if self.is_up(to) {
                    let packet = Packet::Request { req, request };
                    notes.push(format!("forward n{from}->n{to} {}", packet.label()));
                    self.net.push(Endpoint::Node(from), to, packet);
                } else {
                    self.answer(req, Reply::Done(Err(down(to, "it is down"))), notes);
                }
            }
        }
    }

    /// Puts an answer in its client's mailbox.
    fn answer(&mut self, req: ReqId, reply: Reply, notes: &mut Notes) {
        let Some(client) = self.tickets.get(&req).copied() else {
            return;
        };
        let done = matches!(reply, Reply::Done(_));
        notes.push(format!("answer c{client} #{req}: {}", reply_label(&reply)));
        if done {
            self.tickets.remove(&req);
        }
        if let Some(state) = self.clients.get_mut(client) {
            state.deliver(req, reply);
        }
    }

    fn crash(&mut self, node: NodeId, death: Death, notes: &mut Notes) -> Result<()> {
        let owed = {
            let disk = &self.disk;
            let sim_node = self
                .nodes
                .get_mut(node as usize)
                .ok_or_else(|| no_node(node))?;
            sim_node.crash(disk, death)?
        };
        for req in owed {
            let error = down(node, "it crashed before answering");
            self.answer(req, Reply::Done(Err(error)), notes);
        }
        let held = self.held.drop_mail_to(node).into_iter();
        let held = held.map(|(from, packet)| (Endpoint::Node(from), packet));
        for (from, packet) in self.net.drain_to(node).into_iter().chain(held) {
            notes.push(format!("dropped {from}->n{node} {}", packet.label()));
            match (packet, from) {
                (Packet::Request { req, .. }, _) => {
                    let error = down(node, "it crashed before answering");
                    self.answer(req, Reply::Done(Err(error)), notes);
                }
                (Packet::Peer(message, _), Endpoint::Node(from))
                    if message.reports_loss() && self.is_up(from) =>
                {
                    self.net
                        .push(Endpoint::Node(node), from, Packet::Lost(message));
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn restart(&mut self, node: NodeId, notes: &mut Notes) -> Result<()> {
        let (nodes, now) = (self.config.nodes, self.now);
        let effects = {
            let disk = &self.disk;
            let sim_node = self
                .nodes
                .get_mut(node as usize)
                .ok_or_else(|| no_node(node))?;
            if sim_node.up.is_some() {
                return Ok(());
            }
            let effects = sim_node.start(nodes, disk, now, &self.config.settings)?;
            if let Some(up) = &mut sim_node.up {
                up.read_only_votes_skip_fsync = self.config.read_only_votes_skip_fsync;
                up.commits_skip_decision = self.config.commits_skip_decision;
            }
            effects
        };
        // The clients hear the node's clock as it starts, as `Cluster::start` has its
        // handle do: what they commit or read next goes above what the logs hold.
        let started = (self.node_mut(node)?.up.as_ref()).map(|up| up.node.clock());
        self.shared.clock = self.shared.clock.max(started.unwrap_or(0));
        let reached = self.node_mut(node)?.execute(effects, notes)?;
        self.finish_or_die(node, reached, notes)
    }

    fn client_acts(&mut self, client: ClientId, notes: &mut Notes) {
        let Some(state) = self.clients.get_mut(client) else {
            return;
        };
        let Some((node, request)) = state.act(&mut self.shared) else {
            return;
        };
        let cut_off = state.cut_off();
        let req = self.next_ticket;
        self.next_ticket += 1;
        state.sent(req);
        self.tickets.insert(req, client);
        let packet = Packet::Request { req, request };
        notes.push(format!("c{client}->n{node} {}", packet.label()));
        if cut_off {
            let error = down(node, "the process this session talked to has died");
            self.answer(req, Reply::Done(Err(error)), notes);
        } else if self.is_up(node) {
            self.net.push(Endpoint::Client(client), node, packet);
        } else {
            self.answer(req, Reply::Done(Err(down(node, "it is down"))), notes);
        }
    }
}

fn no_node(node: NodeId) -> Error {
    Error::InvalidInput(format!("there is no node {node} in this simulation"))
}

fn down(node: NodeId, detail: &str) -> Error {
    Error::NodeDown {
        node,
        detail: detail.into(),
    }
}

fn reply_label(reply: &Reply) -> String {
    match reply {
        Reply::Waiting { key, blockers, .. } => format!("waiting for {key} on {blockers:?}"),
        Reply::Begun(tid, _) => format!("begun {tid}"),
        Reply::Done(Ok(answer)) => format!("{answer:?}"),
        Reply::Done(Err(error)) => format!("error: {error}"),
    }
}

impl fmt::Debug for Sim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sim")
            .field("steps", &self.steps)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}
