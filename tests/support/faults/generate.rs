//! The seeded generator of a run. Up to 8 transactions of several clients, through every
//! coordinator, over a small key set spread over the nodes, are interleaved call by call
//! with faults (crashes, crash points armed, restarts, whole-process restarts), clock
//! ticks, checkpoints (by hand, and automatic ones with a tiny log threshold) and message
//! delays (a link between two nodes held back from one message kind on, released some
//! events later). Plans mix reads, reads for update, appends and deletes, so that several
//! wait-for cycles form at once; read-only snapshots read many keys over a long life.
//!
//! Some faults come in patterns that a uniform mix would almost never produce:
//! - a vote delayed while another participant of the same transaction restarts (the
//!   window between two votes of one transaction);
//! - a checkpoint followed by a crash and restart of that node (a snapshot read across a
//!   checkpoint restart);
//! - a coordinator armed to die at a point of the commit it is about to run.
//!
//! Restarts go mostly to nodes that a crash or an armed point may have brought down.
//!
//! Rarer shapes still are scripted as whole `episodes` (two deadlocks closed by one
//! wait, a snapshot across a checkpoint restart, a voter restarting between two votes, a
//! reader after a coordinator crash): one at the start of half the runs, and now and
//! then one later, drawn from a generator of their own so that the main mix of a seed
//! stays what it was.
//!
//! For the simulator, `generate_with_power_losses` adds power losses (each followed by
//! a restart of that node a few events later) from yet another generator, so that a
//! seed's scenario is otherwise the threaded runs' one.

use super::scenario::{Call, Event, Scenario, keys};
use kv2pc::rng::Rng;
use kv2pc::types::owner_of;
use kv2pc::{CommitMode, CrashPoint, NodeId};
use std::collections::{BTreeSet, VecDeque};

/// Message kinds a held link starts holding at (by label prefix; "" holds any).
const LABELS: [&str; 9] = [
    "VOTE",
    "PREPARE",
    "COMMIT",
    "ABORT",
    "ACK",
    "INQUIRE",
    "RESTARTED",
    "ONE-PHASE",
    "",
];

/// Mixed into the seed for the power losses' generator.
const POWER_SALT: u64 = 0x90e3_1055_0000_0010;
/// The chance (in percent) of a power loss before each event of a simulated run.
const POWER_LOSS_PER_EVENT: u32 = 3;

/// Mixed into the seed for the episodes' generator.
const EPISODE_SALT: u64 = 0x0e91_50de_5eed_0009;
/// The chance (in percent) that a run begins with an episode.
const EPISODE_AT_START: u32 = 50;
/// The chance (in percent) of an episode at each later step, and how many a run has at
/// most.
const EPISODE_PER_STEP: u32 = 1;
const MAX_EPISODES: usize = 2;

/// The coordinator's crash points, armed just before a commit.
const COORDINATOR_POINTS: [CrashPoint; 3] = [
    CrashPoint::Decide,
    CrashPoint::Decision,
    CrashPoint::Broadcast,
];

/// Mixed into the seed to choose the run's commit mode, so that the rest of a classic
/// run is what it was before parallel commits existed.
const MODE_SALT: u64 = 0x9a7a_11e1_c0de_0014;

/// The crash points a classic commit passes (every point but the staged ones).
const CLASSIC_POINTS: [CrashPoint; 7] = [
    CrashPoint::Prepare,
    CrashPoint::Vote,
    CrashPoint::Commit,
    CrashPoint::Ack,
    CrashPoint::Decide,
    CrashPoint::Decision,
    CrashPoint::Broadcast,
];

/// The crash points a staged commit passes (no `decide`).
const PARALLEL_POINTS: [CrashPoint; 8] = [
    CrashPoint::Prepare,
    CrashPoint::Vote,
    CrashPoint::Commit,
    CrashPoint::Ack,
    CrashPoint::Decision,
    CrashPoint::Broadcast,
    CrashPoint::Staging,
    CrashPoint::Staged,
];

/// The coordinator's crash points of a staged commit, armed just before a commit.
const STAGED_COORDINATOR_POINTS: [CrashPoint; 3] = [
    CrashPoint::Staging,
    CrashPoint::Staged,
    CrashPoint::Broadcast,
];

/// A transaction being generated.
pub(super) struct Open {
    pub(super) txn: usize,
    pub(super) coordinator: NodeId,
    pub(super) calls: VecDeque<Call>,
    /// The nodes its plan touches.
    pub(super) participants: BTreeSet<NodeId>,
}

/// The generator's state.
pub(super) struct Gen {
    rng: Rng,
    /// The episodes' own generator, so that playing one leaves the main mix as it was.
    pub(super) erng: Rng,
    pub(super) nodes: u32,
    pub(super) keys: Vec<String>,
    events: Vec<Event>,
    /// Events due at a later step: `(step, event)`.
    scheduled: Vec<(usize, Event)>,
    step: usize,
    /// Nodes crashed or armed since their last restart.
    faulty: Vec<NodeId>,
    /// Transactions begun and not yet ended.
    pub(super) open: Vec<Open>,
    /// How many transactions have begun.
    pub(super) begun: usize,
    /// Keys some generated transaction deletes (the checker allows one delete per key).
    pub(super) deleted: BTreeSet<String>,
    /// How the run's coordinators commit.
    pub(super) commit: CommitMode,
}

impl Gen {
    fn node(&mut self) -> NodeId {
        self.rng.below(self.nodes as usize) as NodeId
    }

    pub(super) fn later(&mut self, after: usize, event: Event) {
        self.scheduled.push((self.step + after, event));
    }

    /// Emits the scheduled events that are due, in the order they were scheduled.
    fn emit_due(&mut self) {
        let step = self.step;
        let (due, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.scheduled)
            .into_iter()
            .partition(|(at, _)| *at <= step);
        self.scheduled = rest;
        for (_, event) in due {
            self.push(event);
        }
    }

    pub(super) fn push(&mut self, event: Event) {
        match &event {
            Event::Crash { node } | Event::Arm { node, .. } => self.faulty.push(*node),
            Event::Restart { node } => self.faulty.retain(|n| n != node),
            _ => {}
        }
        self.events.push(event);
    }

    fn restart(&mut self) {
        let node = if self.faulty.is_empty() || self.rng.chance(10) {
            self.node()
        } else {
            self.faulty[self.rng.below(self.faulty.len())]
        };
        self.push(Event::Restart { node });
    }

    fn hold(&mut self) {
        let from = self.node();
        let to = (from + 1 + self.rng.below(self.nodes as usize - 1) as u32) % self.nodes;
        let label = *self.rng.pick(&LABELS);
        self.push(Event::Hold { from, to, label });
        let after = 1 + self.rng.below(12);
        self.later(after, Event::Release { from, to });
    }

    /// A checkpoint, often followed by a crash and restart of that node.
    fn checkpoint(&mut self) {
        let node = self.node();
        self.push(Event::Checkpoint { node });
        if self.rng.chance(50) {
            let crash = self.rng.below(3);
            self.later(crash, Event::Crash { node });
            let restart = crash + 1 + self.rng.below(3);
            self.later(restart, Event::Restart { node });
        }
    }

    /// Ends `open`: commits (sometimes with a vote delayed while another participant
    /// restarts, or its coordinator armed), or aborts.
    fn end(&mut self, open: Open) {
        let txn = open.txn;
        if self.rng.chance(8) {
            self.push(Event::Abort { txn });
            return;
        }
        let coordinator = open.coordinator;
        let voters: Vec<NodeId> = open.participants.iter().copied().collect();
        if voters.len() >= 2 && self.rng.chance(40) {
            let held = *self.rng.pick(&voters);
            self.push(Event::Hold {
                from: held,
                to: coordinator,
                label: "VOTE",
            });
            let others: Vec<NodeId> = voters.iter().copied().filter(|v| *v != held).collect();
            if self.rng.chance(70) {
                let other = *self.rng.pick(&others);
                let crash = 1 + self.rng.below(2);
                self.later(crash, Event::Crash { node: other });
                let restart = crash + 1 + self.rng.below(2);
                self.later(restart, Event::Restart { node: other });
            }
            let release = 2 + self.rng.below(10);
            self.later(
                release,
                Event::Release {
                    from: held,
                    to: coordinator,
                },
            );
        } else if self.rng.chance(10) {
            let point = match self.commit {
                CommitMode::Classic => *self.rng.pick(&COORDINATOR_POINTS),
                CommitMode::Parallel => *self.rng.pick(&STAGED_COORDINATOR_POINTS),
            };
            self.push(Event::Arm {
                node: coordinator,
                point,
            });
        }
        self.push(Event::Commit { txn });
    }
}

/// A locking transaction's plan: 1 to 6 calls over `keys`, each a read, a read for
/// update, an append (after a read of the key, added if the plan has none) or a delete
/// (at most one per key).
pub fn rich_plan(rng: &mut Rng, keys: &[String]) -> Vec<Call> {
    let count = 1 + rng.below(6);
    let mut calls = Vec::new();
    let mut known: BTreeSet<&String> = BTreeSet::new();
    let mut deleted: BTreeSet<&String> = BTreeSet::new();
    for _ in 0..count {
        let key = rng.pick(keys);
        match rng.below(100) {
            0..=29 => calls.push(Call::Read(key.clone())),
            30..=49 => calls.push(Call::ReadForUpdate(key.clone())),
            50..=84 => {
                if !known.contains(key) {
                    calls.push(if rng.chance(50) {
                        Call::ReadForUpdate(key.clone())
                    } else {
                        Call::Read(key.clone())
                    });
                }
                calls.push(Call::Append(key.clone()));
            }
            _ if deleted.insert(key) => calls.push(Call::Delete(key.clone())),
            _ => calls.push(Call::Read(key.clone())),
        }
        known.insert(key);
    }
    calls
}

/// A read-only snapshot's plan: 2 to 8 reads, keys may repeat.
fn snapshot_plan(rng: &mut Rng, keys: &[String]) -> Vec<Call> {
    (0..2 + rng.below(7))
        .map(|_| Call::Read(rng.pick(keys).clone()))
        .collect()
}

/// The scenario of `seed`: 2 to 4 nodes, 1 or 2 keys on each, 6 to 16 transactions (2 to
/// 8 open at once, a fifth of them lock-free snapshots), and faults between their calls.
/// Half the seeds commit in parallel mode (`SET commit parallel`), chosen from the seed
/// by a generator of its own, so a classic seed's scenario is the one it always was;
/// `KV2PC_CLASSIC_ONLY=1` keeps every seed classic.
///
/// Parallel mode first failed the at-rest reader check (simulated seed 28, threaded
/// seed 6): a snapshot rose above a prepare at a down node whose staged transaction's
/// coordinator was down too; `node::floors` says what fixed it and what is left.
pub fn generate(seed: u64) -> Scenario {
    let classic_only = std::env::var("KV2PC_CLASSIC_ONLY").is_ok_and(|v| v == "1");
    let commit = if !classic_only && Rng::new(seed ^ MODE_SALT).chance(50) {
        CommitMode::Parallel
    } else {
        CommitMode::Classic
    };
    let mut rng = Rng::new(seed);
    let nodes = 2 + rng.below(3) as u32;
    let eager_checkpoints = rng.chance(30);
    let keys = keys(nodes, 1 + rng.below(2));
    let total = 6 + rng.below(11);
    let max_open = 2 + rng.below(7);
    let mut g = Gen {
        rng,
        erng: Rng::new(seed ^ EPISODE_SALT),
        nodes,
        keys: keys.clone(),
        events: Vec::new(),
        scheduled: Vec::new(),
        step: 0,
        faulty: Vec::new(),
        open: Vec::new(),
        begun: 0,
        deleted: BTreeSet::new(),
        commit,
    };
    let mut episodes = 0;
    if g.erng.chance(EPISODE_AT_START) {
        g.episode();
        episodes += 1;
    }
    let mut planned = 0;
    while planned < total || !g.open.is_empty() {
        g.step += 1;
        g.emit_due();
        if episodes < MAX_EPISODES && g.erng.chance(EPISODE_PER_STEP) {
            g.episode();
            episodes += 1;
        }
        let node = g.node();
        match g.rng.below(100) {
            0..=17 if planned < total && g.open.len() < max_open => {
                let snapshot = g.rng.chance(20);
                let calls = if snapshot {
                    snapshot_plan(&mut g.rng, &keys)
                } else {
                    rich_plan(&mut g.rng, &keys)
                };
                let participants = (calls.iter())
                    .map(|call| match call {
                        Call::Read(k) | Call::ReadForUpdate(k) | Call::Append(k) => {
                            owner_of(k, nodes)
                        }
                        Call::Delete(k) => {
                            g.deleted.insert(k.clone());
                            owner_of(k, nodes)
                        }
                    })
                    .collect();
                let txn = g.begun;
                g.push(Event::Begin {
                    txn,
                    coordinator: node,
                    snapshot,
                });
                g.open.push(Open {
                    txn,
                    coordinator: node,
                    calls: calls.into(),
                    participants: if snapshot {
                        BTreeSet::new()
                    } else {
                        participants
                    },
                });
                g.begun += 1;
                planned += 1;
            }
            18..=67 if !g.open.is_empty() => {
                let index = g.rng.below(g.open.len());
                let txn = g.open[index].txn;
                match g.open[index].calls.pop_front() {
                    Some(call) => g.push(Event::Call { txn, call }),
                    None => {
                        let done = g.open.remove(index);
                        g.end(done);
                    }
                }
            }
            68..=70 => g.push(Event::Crash { node }),
            71..=75 => {
                let point = match commit {
                    CommitMode::Classic => *g.rng.pick(&CLASSIC_POINTS),
                    CommitMode::Parallel => *g.rng.pick(&PARALLEL_POINTS),
                };
                g.push(Event::Arm { node, point });
            }
            76..=83 => g.restart(),
            84..=89 => g.push(Event::Tick),
            90..=92 => g.checkpoint(),
            93..=97 => g.hold(),
            98 => g.push(Event::Reopen),
            _ => {}
        }
    }
    g.step = usize::MAX;
    g.emit_due();
    Scenario {
        seed,
        nodes,
        eager_checkpoints,
        commit,
        keys,
        events: g.events,
    }
}

/// The scenario of `seed` with power losses added for a simulated run: before each
/// event, now and then, a node loses power (it strikes during that event), followed a
/// few events later by its restart. Drawn from a generator of their own, so the rest
/// of the scenario is `generate(seed)`'s.
pub fn generate_with_power_losses(seed: u64) -> Scenario {
    let mut scenario = generate(seed);
    let mut rng = Rng::new(seed ^ POWER_SALT);
    let mut events = Vec::new();
    let mut restarts: Vec<(usize, NodeId)> = Vec::new();
    for (index, event) in std::mem::take(&mut scenario.events).into_iter().enumerate() {
        if rng.chance(POWER_LOSS_PER_EVENT) {
            let node = rng.below(scenario.nodes as usize) as NodeId;
            events.push(Event::PowerLoss { node });
            restarts.push((index + 2 + rng.below(4), node));
        }
        let (due, later): (Vec<_>, Vec<_>) = restarts.into_iter().partition(|(at, _)| *at <= index);
        restarts = later;
        events.extend(due.into_iter().map(|(_, node)| Event::Restart { node }));
        events.push(event);
    }
    events.extend(
        restarts
            .into_iter()
            .map(|(_, node)| Event::Restart { node }),
    );
    scenario.events = events;
    scenario
}
