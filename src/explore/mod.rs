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
//!   of that transaction on every node it wrote to;
//! - **no committed read of a value that vanished**: once a transaction that read a
//!   value another transaction wrote has committed, a node owning that key that
//!   crashed still holds the writer's Prepare or Commit in the log the crash left (a
//!   lock handed over before the fsync lets its next reader see the value at once, but
//!   never commit before that fsync).
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
pub use crate::sim::Command;
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
    /// Whether the clock may jump while messages are in flight or fsyncs pending (a
    /// timeout racing a slow message), not only when nothing else can happen.
    pub ticks_anywhere: bool,
    /// The most distinct states to visit.
    pub states: usize,
    /// The most time to spend.
    pub time: Duration,
    /// A deliberately broken executor, for the test that shows the explorer catches it:
    /// READ-ONLY votes wait for no fsync (`SimConfig::read_only_votes_skip_fsync`).
    /// Never on otherwise.
    pub broken_read_only_votes: bool,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            nodes: 3,
            depth: 60,
            crashes: 1,
            ticks: 2,
            ticks_anywhere: std::env::var("KV2PC_TICKS_ANYWHERE").is_ok(),
            states: 2_000_000,
            time: Duration::from_secs(60),
            broken_read_only_votes: false,
        }
    }
}

/// A state reached: the move that leads to it from its parent, and its depth.
struct Visit {
    parent: Option<usize>,
    step: Option<Move>,
    depth: usize,
}

/// How many states the queue keeps whole (about 200 KiB each, mostly the logs' preallocated
/// segments); states queued beyond it keep only their path and are replayed when their
/// turn comes, so memory stays bounded whatever the bounds.
const QUEUED_WORLDS: usize = 4096;

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
    let root = World::new(plan, bounds, settings)?;
    let mut seen: HashSet<u64> = HashSet::from([root.fingerprint()]);
    let mut visits = vec![Visit {
        parent: None,
        step: None,
        depth: 0,
    }];
    let mut queue: VecDeque<(usize, Option<World>)> = VecDeque::from([(0, Some(root))]);
    let mut whole = 1;
    let found = |report: &mut Report, path: Vec<Move>, broken: String| -> Result<()> {
        report.violation = Some(counterexample(plan, bounds, settings, path, broken)?);
        Ok(())
    };
    'search: while let Some((index, world)) = queue.pop_front() {
        if started.elapsed() > bounds.time {
            report.cut = Some(Cut::Time);
            break;
        }
        let mut world = match world {
            Some(world) => {
                whole -= 1;
                world
            }
            None => replay(plan, bounds, settings, &path_to(&visits, index))?,
        };
        let moves = world.moves(plan, bounds);
        let depth = visits[index].depth;
        if depth < bounds.depth {
            for step in &moves {
                if seen.len() >= bounds.states {
                    report.cut = Some(Cut::States);
                    break 'search;
                }
                let mut child = world.fork()?;
                child.apply(plan, *step)?;
                report.transitions += 1;
                if !seen.insert(child.fingerprint()) {
                    continue;
                }
                visits.push(Visit {
                    parent: Some(index),
                    step: Some(*step),
                    depth: depth + 1,
                });
                let child_index = visits.len() - 1;
                if let Some(broken) = verdict::state(plan, &child) {
                    found(&mut report, path_to(&visits, child_index), broken)?;
                    break 'search;
                }
                let keep = whole < QUEUED_WORLDS;
                whole += usize::from(keep);
                queue.push_back((child_index, keep.then_some(child)));
            }
            if seen.len().is_multiple_of(256) {
                progress(seen.len(), queue.len());
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
            let mut path = path_to(&visits, index);
            path.extend(end.settled);
            found(&mut report, path, broken)?;
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
