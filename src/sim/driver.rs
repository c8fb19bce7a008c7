//! The seeded driver: a random workload, and a random walk through [`Sim::pending`].
//!
//! A run has three phases. **Faults**: the clients run their plans while the seed picks
//! every step, weighted (deliveries and client steps often, fsyncs less, ticks, crashes,
//! armed crash points and checkpoints rarely), now and then leaving a link waiting for a
//! while; at most [`RunConfig::crashes`] crashes and [`RunConfig::crash_points`] crash
//! points armed. **Settle**: every down node restarts, and the seed
//! keeps picking deliveries, fsyncs and client steps (ticking the clock only when none
//! is left) until nothing is left over or a bound is reached. **Restart**: every node
//! crashes at once and restarts, and the cluster settles again, so the data read at the
//! end is what the logs kept: an acknowledged commit that was never durable is missing
//! from it.
//!
//! The generator is the project's one seeded generator ([`Rng`]), so a seed means the
//! same run on every machine.

use super::client::{PlanOp, SimClient, TxnPlan, TxnRecord};
use super::net::Endpoint;
use super::script::Actor;
use super::{Sim, SimConfig, Step};
use crate::error::Result;
pub use crate::rng::Rng;
use crate::types::NodeId;
use std::collections::BTreeMap;

/// The shape of a seeded run.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// The cluster.
    pub sim: SimConfig,
    /// How many clients; client `c` is coordinated by node `c % nodes`.
    pub clients: usize,
    /// How many transactions each client runs.
    pub txns_per_client: usize,
    /// How many keys (`k0`, `k1`, ...) the transactions share.
    pub keys: usize,
    /// The most crashes in the faults phase.
    pub crashes: usize,
    /// The most crash points armed in the faults phase (each may or may not be reached).
    pub crash_points: usize,
    /// The most steps in the faults phase.
    pub max_steps: usize,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            sim: SimConfig::default(),
            clients: 4,
            txns_per_client: 6,
            keys: 5,
            crashes: 3,
            crash_points: 2,
            max_steps: 3_000,
        }
    }
}

/// What a finished run left.
#[derive(Debug)]
pub struct Summary {
    /// Every step and what it did.
    pub trace: Vec<String>,
    /// What the clients were told.
    pub history: Vec<TxnRecord>,
    /// The committed data after the final restart.
    pub data: BTreeMap<String, String>,
    /// What was still left over when the run gave up settling (empty if clean).
    pub leftovers: Vec<String>,
    /// Steps taken in all.
    pub steps: u64,
}

/// The most steps one settle phase may take.
const SETTLE_STEPS: usize = 20_000;
/// The most ticks one settle phase may take.
const SETTLE_TICKS: usize = 60;

impl Sim {
    /// Runs a random workload and random faults, both chosen by `seed`, and returns
    /// what happened. The same seed and configuration give the same run.
    pub fn run(seed: u64, config: &RunConfig) -> Result<Summary> {
        let mut rng = Rng::new(seed);
        let clients = (0..config.clients)
            .map(|id| {
                let plans = (0..config.txns_per_client)
                    .map(|_| plan(&mut rng, config.keys))
                    .collect();
                let home = (id as u32) % config.sim.nodes;
                SimClient::new(id, home, config.sim.nodes, plans)
            })
            .collect();
        let mut sim = Sim::new(config.sim.clone(), clients)?;
        sim.faults(&mut rng, config)?;
        let mut leftovers = sim.settle(&mut rng)?;
        if leftovers.is_empty() {
            // The whole cluster loses power: only what was fsynced is sure to survive,
            // and every node must still start.
            for node in 0..sim.nodes() {
                let seed = rng.next_u64();
                sim.apply(Step::PowerLoss { node, seed })?;
            }
            leftovers = sim.settle(&mut rng)?;
        }
        Ok(Summary {
            trace: sim.trace.clone(),
            history: sim.history(),
            data: sim.data(),
            leftovers,
            steps: sim.steps(),
        })
    }

    fn faults(&mut self, rng: &mut Rng, config: &RunConfig) -> Result<()> {
        let (mut crashes, mut armed) = (0, 0);
        let mut stalled: BTreeMap<(Endpoint, NodeId), usize> = BTreeMap::new();
        for step in 0..config.max_steps {
            if self.clients.iter().all(Actor::finished) {
                break;
            }
            stalled.retain(|_, until| *until > step);
            let choices: Vec<(Step, u32)> = (self.pending().into_iter())
                .map(|s| {
                    let may = (crashes < config.crashes, armed < config.crash_points);
                    (s, fault_weight(s, may, &stalled))
                })
                .filter(|(_, weight)| *weight > 0)
                .collect();
            let Some(chosen) = pick(rng, &choices) else {
                break;
            };
            if let Step::Deliver { from, to } = chosen
                && rng.chance(3)
            {
                stalled.insert((from, to), step + 5 + rng.below(40));
                continue;
            }
            match chosen {
                Step::Crash { .. } | Step::ProcessDeath { .. } | Step::PowerLoss { .. } => {
                    crashes += 1
                }
                Step::Arm { .. } => armed += 1,
                _ => {}
            }
            self.apply(chosen)?;
        }
        Ok(())
    }

    /// Restarts every down node and lets everything finish without faults; returns
    /// what is still left over if it does not.
    fn settle(&mut self, rng: &mut Rng) -> Result<Vec<String>> {
        let mut ticks = 0;
        for _ in 0..SETTLE_STEPS {
            let choices: Vec<(Step, u32)> = (self.pending().into_iter())
                .filter_map(|step| match step {
                    Step::Restart { .. } => Some((step, 1000)),
                    Step::Deliver { .. } => Some((step, 20)),
                    Step::Fsync { .. } => Some((step, 6)),
                    Step::Client { .. } => Some((step, 8)),
                    _ => None,
                })
                .collect();
            if let Some(step) = pick(rng, &choices) {
                self.apply(step)?;
                continue;
            }
            if self.leftovers().is_empty() || ticks == SETTLE_TICKS {
                break;
            }
            ticks += 1;
            self.apply(Step::Tick)?;
        }
        Ok(self.leftovers())
    }
}

/// How likely a step is in the faults phase (0: not now).
fn fault_weight(
    step: Step,
    (may_crash, may_arm): (bool, bool),
    stalled: &BTreeMap<(Endpoint, NodeId), usize>,
) -> u32 {
    match step {
        Step::Deliver { from, to } if stalled.contains_key(&(from, to)) => 0,
        Step::Deliver { .. } => 200,
        Step::Client { .. } => 80,
        Step::Fsync { .. } => 60,
        Step::Restart { .. } => 30,
        Step::Tick => 8,
        Step::Crash { .. } if may_crash => 3,
        Step::ProcessDeath { .. } if may_crash => 1,
        Step::PowerLoss { .. } if may_crash => 2,
        Step::Crash { .. } | Step::ProcessDeath { .. } | Step::PowerLoss { .. } => 0,
        Step::Arm { .. } if may_arm => 1,
        Step::Arm { .. } => 0,
        Step::Checkpoint { .. } => 2,
    }
}

/// One of `choices`, with probability proportional to its weight.
fn pick(rng: &mut Rng, choices: &[(Step, u32)]) -> Option<Step> {
    let total: u32 = choices.iter().map(|(_, weight)| weight).sum();
    if total == 0 {
        return None;
    }
    let mut at = rng.below(total as usize) as u32;
    for (step, weight) in choices {
        if at < *weight {
            return Some(*step);
        }
        at -= weight;
    }
    None
}

/// A random transaction over keys `k0..k{keys}`.
fn plan(rng: &mut Rng, keys: usize) -> TxnPlan {
    let key = |rng: &mut Rng| format!("k{}", rng.below(keys));
    match rng.below(100) {
        0..60 => {
            let ops = (0..1 + rng.below(3))
                .map(|_| {
                    let k = key(rng);
                    if rng.chance(60) {
                        PlanOp::Append(k)
                    } else {
                        PlanOp::Read(k)
                    }
                })
                .collect();
            TxnPlan::ReadWrite {
                ops,
                commit: rng.chance(90),
            }
        }
        60..85 => TxnPlan::ReadOnly {
            keys: (0..2 + rng.below(2)).map(|_| key(rng)).collect(),
        },
        _ => TxnPlan::Get { key: key(rng) },
    }
}
