//! An explicit-state model checker of the real engine: `EXPLORE` runs a few sessions'
//! transactions on a fresh simulated cluster (`crate::sim`) under every order of
//! message delivery and fsync completion, and every crash of every node at every step
//! followed by its restart, and checks the protocol's invariants in every state.
//!
//! # What is explored
//!
//! A state is the simulator's whole cluster (the real [`Node`](crate::node::Node) state
//! machines, their real logs on simulated disks, the network's FIFO links) plus how far
//! each session has got through its commands ([`World`]). Its moves ([`Move`]) are:
//! deliver the head of any busy link between nodes; fsync any node with records written
//! and not yet durable; let a session act (take its answer, or give its next command,
//! whose request reaches its node at once, as in step mode); crash a node that is up
//! (losing what it had not fsynced) while the crash budget lasts; restart a node that is
//! down; move the clock by the vote timeout while the tick budget lasts.
//!
//! The search is breadth-first, so the first violation found is one of the shortest.
//! Equal states are visited once: each state's fingerprint ([`Sim::fingerprint`] and the
//! sessions' progress) goes in a set, and a move that leads to a state already seen
//! goes no further. The simulator cannot be cloned (its logs sit on disks shared with
//! their open files), so each state is rebuilt by replaying the moves that lead to it on
//! a fresh cluster: every transition costs a replay of its depth, which is cheap at the
//! depths a handful of transactions need (each step is microseconds).
//!
//! # What is checked
//!
//! In every state (`verdict::state`):
//! - **atomicity**: no transaction has a commit record (Decision, Commit or one-phase
//!   commit) in one node's log and an Abort record in another's;
//! - **durability of acknowledged commits**: once a session was told COMMIT succeeded,
//!   a node that crashed still holds, in the log the crash left, the Prepare or Commit
//!   of that transaction on every node it wrote to.
//!
//! In every *end* (a state where nothing moves but faults and the clock, and every node
//! is up), after letting time pass until everything settles (`verdict::settle`):
//! - **nothing is left**: no lock, no transaction in doubt, active or undecided, no
//!   decision unacknowledged, nothing held back or in flight, every session answered;
//! - **all or nothing, and durable**: a transaction told committed has every write in
//!   the data (unless a later one overwrote it), one told aborted has none, one whose
//!   outcome is unknown all or none;
//! - **serializability**: some serial order of the committed transactions (and of some
//!   of those whose outcome is unknown), keeping each session's order, gives every read
//!   they were told and the data the nodes hold.
//!
//! # Bounds and limits
//!
//! The search stops at a depth (moves per run), after a number of states, or after a
//! time; the report says whether a bound cut it short (then "no violation" means none
//! within what was covered). Crashes are process crashes: the log is cut to what was
//! fsynced (power losses with torn sectors, checkpoints and armed crash points are the
//! seeded simulator's business, `Sim::run`). Requests from sessions are not delayed:
//! a session's request reaches its node in the move that sends it, as a command typed
//! in step mode does, so orders in which a session's request overtakes protocol
//! messages are not explored. Ticks move the clock by the vote timeout, so a timeout
//! either has fired or has not: finer timings are not explored.

mod report;
mod verdict;
mod world;

pub use report::{Counterexample, Cut, OutcomeCounts, Report};
pub use world::{Move, Progress, Told, World};

use crate::config::Settings;
use crate::error::Result;
use crate::sim::Command;
use crate::types::NodeId;
use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

/// What to explore: sessions, each with its commands in order.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// The sessions.
    pub sessions: Vec<SessionPlan>,
}

/// One session of a plan.
#[derive(Clone, Debug)]
pub struct SessionPlan {
    /// Its name, for the report.
    pub name: String,
    /// The node that coordinates its transactions.
    pub home: NodeId,
    /// Its commands, in order (transactions: `Begin` ... `Commit` or `Abort`).
    pub commands: Vec<Command>,
}

/// How far to explore.
#[derive(Clone, Debug)]
pub struct Bounds {
    /// The cluster's nodes.
    pub nodes: u32,
    /// The most moves in one run.
    pub depth: usize,
    /// The most crashes in one run.
    pub crashes: u32,
    /// The most ticks (each one vote timeout) in one run.
    pub ticks: u32,
    /// The most distinct states to visit.
    pub states: usize,
    /// The most time to spend.
    pub time: Duration,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            nodes: 3,
            depth: 60,
            crashes: 1,
            ticks: 2,
            states: 2_000_000,
            time: Duration::from_secs(60),
        }
    }
}

/// One state waiting in the search's queue: the move that leads to it from its parent.
struct Visit {
    parent: Option<usize>,
    step: Option<Move>,
    depth: usize,
}

/// Explores `plan` within `bounds` with the nodes reading `settings` (a protocol
/// mistake among them, for teaching). `progress` is called now and then with the
/// states seen so far and the queue's length, for a progress bar.
pub fn explore(
    plan: &Plan,
    bounds: &Bounds,
    settings: &Settings,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Report> {
    let started = Instant::now();
    let mut report = Report::new(plan);
    let mut seen: HashSet<u64> = HashSet::new();
    let mut visits = vec![Visit {
        parent: None,
        step: None,
        depth: 0,
    }];
    let mut queue: VecDeque<usize> = VecDeque::from([0]);
    while let Some(index) = queue.pop_front() {
        if seen.len() >= bounds.states {
            report.cut = Some(Cut::States);
            break;
        }
        if started.elapsed() > bounds.time {
            report.cut = Some(Cut::Time);
            break;
        }
        let path = path_to(&visits, index);
        let mut world = replay(plan, bounds, settings, &path)?;
        report.transitions += 1;
        if !seen.insert(world.fingerprint()) {
            continue;
        }
        if seen.len().is_multiple_of(1024) {
            progress(seen.len(), queue.len());
        }
        if let Some(broken) = verdict::state(plan, &world) {
            report.violation = Some(counterexample(plan, bounds, settings, path, broken)?);
            break;
        }
        let moves = world.moves(plan, bounds);
        let depth = visits[index].depth;
        if depth < bounds.depth {
            for step in &moves {
                visits.push(Visit {
                    parent: Some(index),
                    step: Some(*step),
                    depth: depth + 1,
                });
                queue.push_back(visits.len() - 1);
            }
        } else if !moves.is_empty() {
            report.cut.get_or_insert(Cut::Depth);
        }
        if !world.progress_moves(plan).is_empty() {
            continue;
        }
        if !all_up(&world) {
            report.count_blocked(&verdict::blocked(plan, &world));
            continue;
        }
        let end = verdict::end(plan, &mut world)?;
        report.count_end(&end.outcomes);
        if let Some(broken) = end.broken {
            let mut path = path;
            path.extend(end.settled);
            report.violation = Some(counterexample(plan, bounds, settings, path, broken)?);
            break;
        }
    }
    report.states = seen.len();
    report.elapsed = started.elapsed();
    progress(seen.len(), 0);
    Ok(report)
}

fn all_up(world: &World) -> bool {
    (0..world.sim.nodes()).all(|node| world.sim.is_up(node))
}

/// The moves from the first state to the one at `index`.
fn path_to(visits: &[Visit], mut index: usize) -> Vec<Move> {
    let mut path = Vec::new();
    while let Some(step) = visits[index].step {
        path.push(step);
        index = visits[index].parent.unwrap_or(0);
    }
    path.reverse();
    path
}

/// A fresh world with `path` taken.
pub fn replay(plan: &Plan, bounds: &Bounds, settings: &Settings, path: &[Move]) -> Result<World> {
    let mut world = World::new(plan, bounds, settings)?;
    for step in path {
        world.apply(plan, *step)?;
    }
    Ok(world)
}

/// The violation found at the end of `path`, with what each move did.
fn counterexample(
    plan: &Plan,
    bounds: &Bounds,
    settings: &Settings,
    path: Vec<Move>,
    broken: String,
) -> Result<Counterexample> {
    let mut world = World::new(plan, bounds, settings)?;
    let mut moves = Vec::new();
    for step in path {
        let before = world.sim.trace().len();
        world.apply(plan, step)?;
        let notes = (world.sim.trace()[before..].iter())
            .filter(|line| line.starts_with("    "))
            .map(|line| line.trim().to_string())
            .collect();
        moves.push((step, notes));
    }
    Ok(Counterexample { moves, broken })
}
