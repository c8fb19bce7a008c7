//! What a participant does when a lock request conflicts: the deadlock policy
//! (`SET deadlock`), decided here, at the one place a request is found to wait.
//!
//! The lock table only queues the request and names its blockers (the conflicting
//! holders and the conflicting requests queued ahead). Then [`verdict`], a pure
//! function of the policy, the requester's age and each blocker's, says what happens:
//!
//! - **detect**, **off**: the request waits (detection, if on, runs at the end of the
//!   batch over the whole cluster's waits: see `deadlock` and `node::detect`);
//! - **wait-die**: the requester waits if it is older than every blocker, and otherwise
//!   aborts ("dies") at once;
//! - **wound-wait**: the requester aborts ("wounds") every blocker younger than itself,
//!   and waits for the rest;
//! - **no-wait**: the requester aborts at once;
//! - **timeout**: the request waits, and [`Participant::lock_timeouts`] aborts it at the
//!   first tick `lock_timeout` after it began to wait.
//!
//! # Age
//!
//! A transaction's age is its begin stamp (`message::Answer::Begun`: the cluster-wide
//! order of BEGINs, carried with every operation), as the detector's victim choice uses
//! it; ties, which do not happen in one cluster, fall back to the id. Every node thus
//! ranks two transactions alike, which is what makes the prevention policies work across
//! nodes with no messages: under wait-die every wait in the cluster goes from an older
//! transaction to a younger one, under wound-wait from a younger one to an older one, so
//! the wait-for graph can hold no cycle.
//!
//! # Prepared blockers
//!
//! A blocker that has voted (Prepared, or ReadOnlyVoted) cannot be aborted here: it
//! promised its coordinator to keep its locks until the outcome. It also waits for
//! nothing, so a wait for it can never be part of a cycle: wait-die and wound-wait let
//! the requester wait for it whatever its age (this node may not even know its age: a
//! restarted node recovers prepared transactions from their records, which hold no
//! begin stamp). No-wait aborts the requester all the same.
//!
//! # Limits
//!
//! - A transaction aborted by a policy that is retried begins again, with a new, younger
//!   stamp: under wait-die a retried transaction can die again and again while older
//!   ones hold its keys (textbook wait-die keeps the first stamp across retries; the
//!   shell's sessions begin afresh).
//! - A wounded transaction learns of its abort at its next operation or PREPARE on the
//!   node that wounded it (its locks there are gone at once); its locks on other nodes
//!   stay until then.
//! - The policy rules requests as they conflict: waits queued before a `SET deadlock`
//!   stay as they are (`SET deadlock detect` or `timeout` breaks them).

use super::{Participant, TxnState};
use crate::config::DeadlockPolicy;
use crate::lock::LockMode;
use crate::message::{Effect, Reply, ReqId};
use crate::types::TxnId;
use std::time::Duration;

/// What a participant needs of the settings when a request conflicts, as of the input
/// being handled (`Node::handle` sets it before each input).
#[derive(Clone, Copy, Debug)]
pub(super) struct Rule {
    /// The policy in force.
    pub(super) policy: DeadlockPolicy,
    /// The time of the input, which starts a wait's clock for `timeout`.
    pub(super) now: Duration,
}

impl Default for Rule {
    fn default() -> Self {
        Rule {
            policy: DeadlockPolicy::Detect,
            now: Duration::ZERO,
        }
    }
}

/// A transaction's age: smaller is older (began first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Age {
    /// The begin stamp.
    pub began: u64,
    /// The id, to break ties.
    pub tid: TxnId,
}

/// A transaction a conflicting request would wait for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blocker {
    /// The blocker.
    pub tid: TxnId,
    /// Its age, if it can still be aborted (it is active); `None` if it has voted, so
    /// that it waits for nothing and cannot be aborted.
    pub age: Option<Age>,
    /// The mode it holds the key in; `None` if it only has a request queued ahead.
    pub holds: Option<LockMode>,
}

/// What a policy makes of a conflict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The request waits.
    Wait,
    /// The requester aborts at once, because of this blocker.
    Abort(Blocker),
    /// These younger blockers are aborted, and the request waits for the rest (if any).
    Wound(Vec<Blocker>),
}

/// The policy's verdict on a request by a transaction of age `me` that conflicts with
/// `blockers` (not empty).
pub fn verdict(policy: DeadlockPolicy, me: Age, blockers: &[Blocker]) -> Verdict {
    match policy {
        DeadlockPolicy::Detect | DeadlockPolicy::Timeout | DeadlockPolicy::Off => Verdict::Wait,
        DeadlockPolicy::NoWait => blockers
            .first()
            .map_or(Verdict::Wait, |b| Verdict::Abort(*b)),
        // The oldest blocker older than the requester is the one named.
        DeadlockPolicy::WaitDie => (blockers.iter())
            .filter(|b| b.age.is_some_and(|age| age < me))
            .min_by_key(|b| b.age)
            .map_or(Verdict::Wait, |b| Verdict::Abort(*b)),
        DeadlockPolicy::WoundWait => {
            let younger: Vec<Blocker> = (blockers.iter())
                .filter(|b| b.age.is_some_and(|age| age > me))
                .copied()
                .collect();
            if younger.is_empty() {
                Verdict::Wait
            } else {
                Verdict::Wound(younger)
            }
        }
    }
}

/// How a blocker stands in the way on `key`, for a reason: "which holds x (exclusive)".
fn stands(blocker: &Blocker, key: &str) -> String {
    match blocker.holds {
        Some(mode) => format!("which holds {key} ({})", mode_name(mode)),
        None => format!("which waits ahead of it for {key}"),
    }
}

fn mode_name(mode: LockMode) -> &'static str {
    match mode {
        LockMode::Shared => "shared",
        LockMode::Exclusive => "exclusive",
    }
}

impl Participant {
    /// Sets the policy and the time for the input about to be handled.
    pub fn set_rule(&mut self, policy: DeadlockPolicy, now: Duration) {
        self.rule = Rule { policy, now };
    }

    /// `tid`'s request for `key` in `mode`, queued as `req` behind `blockers`: applies
    /// the policy, and tells the client it waits if it still does.
    pub(super) fn conflict(
        &mut self,
        req: ReqId,
        tid: TxnId,
        key: String,
        mode: LockMode,
        blockers: Vec<TxnId>,
        out: &mut Vec<Effect>,
    ) {
        let policy = self.rule.policy;
        let me = self.age(tid).unwrap_or(Age { began: 0, tid });
        let others: Vec<Blocker> = (blockers.iter())
            .map(|b| Blocker {
                tid: *b,
                age: self.age(*b),
                holds: self.locks.held(&key, *b),
            })
            .collect();
        let name = policy.name();
        match verdict(policy, me, &others) {
            Verdict::Wait => {}
            Verdict::Abort(blocker) => {
                let (other, stands) = (blocker.tid, stands(&blocker, &key));
                let reason = match policy {
                    DeadlockPolicy::WaitDie => format!(
                        "{name}: it is younger than {other}, {stands}, and under wait-die a \
                         younger transaction dies rather than wait for an older one"
                    ),
                    _ => format!(
                        "{name}: {other} is in its way, {stands}, and under no-wait a \
                         conflict aborts the requester at once"
                    ),
                };
                return self.abort_here(tid, reason, out);
            }
            Verdict::Wound(victims) => {
                for victim in victims {
                    let stood = match victim.holds {
                        Some(held) => format!("which {} held ({})", victim.tid, mode_name(held)),
                        None => format!("for which {} waited ahead", victim.tid),
                    };
                    let reason = format!(
                        "{name}: the older {tid} asked for {key} ({}), {stood}, and under \
                         wound-wait an older transaction aborts the younger ones in its way",
                        mode_name(mode),
                    );
                    self.abort_here(victim.tid, reason, out);
                }
            }
        }
        // Still waiting (a wound may have let it through, and answered it)?
        let waiting = matches!(
            self.txns.get(&tid),
            Some(TxnState::Active(active)) if active.pending.as_ref().is_some_and(|(r, _)| *r == req)
        );
        if !waiting {
            return;
        }
        // Who blocks it now: the key's queue, or, for a wait on a range (a scan, or a
        // write into a scanned range, which the key's queue does not show), those the
        // table reported that are still here.
        let blockers = match self.locks.blockers_of(tid, &key) {
            Some(now) if !now.is_empty() => now,
            _ => (blockers.into_iter())
                .filter(|blocker| self.txns.get(blocker).is_some_and(TxnState::is_live))
                .collect(),
        };
        out.push(Effect::Reply {
            req,
            reply: Reply::Waiting {
                key,
                mode,
                blockers,
            },
        });
    }

    /// `tid`'s age, if it is active here (a transaction that voted has none: see the
    /// module doc).
    fn age(&self, tid: TxnId) -> Option<Age> {
        match self.txns.get(&tid) {
            Some(TxnState::Active(active)) => Some(Age {
                began: active.began,
                tid,
            }),
            _ => None,
        }
    }

    /// A tick: under `SET deadlock timeout`, aborts every request that has waited
    /// `timeout` or longer (under any other policy, nothing).
    pub fn lock_timeouts(&mut self, now: Duration, timeout: Duration, out: &mut Vec<Effect>) {
        if self.rule.policy != DeadlockPolicy::Timeout {
            return;
        }
        let mut expired = Vec::new();
        for tid in self.txns.live_ids() {
            if let Some(TxnState::Active(active)) = self.txns.get(&tid)
                && let Some((_, op)) = &active.pending
                && now.saturating_sub(active.waiting_since) >= timeout
            {
                expired.push((tid, op.key().to_string()));
            }
        }
        for (tid, key) in expired {
            let blockers = self.locks.blockers_of(tid, &key).unwrap_or_default();
            let names: Vec<String> = blockers.iter().map(TxnId::to_string).collect();
            let reason = format!(
                "timeout: it waited for {key} (behind {}) as long as lock_timeout allows ({})",
                names.join(", "),
                crate::clock::format_duration(timeout)
            );
            self.abort_here(tid, reason, out);
        }
    }
}

#[cfg(test)]
mod tests;
