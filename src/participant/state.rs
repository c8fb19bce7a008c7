//! One state per transaction: what a participant knows of each transaction it has seen,
//! in one map from id to [`TxnState`], and the two indexes kept beside it.
//!
//! # States and transitions
//!
//! The main path, and the table of every transition (`(unknown)` is no entry in the map):
//!
//! ```text
//!             first op          PREPARE, writes            COMMIT
//! (unknown) ──────────▶ Active ─────────────────▶ Prepared ───────▶ Committed ──evicted──▶ (unknown)
//!                         │ PREPARE, no writes                │ ABORT
//!                         ▼                                   ▼
//!                    ReadOnlyVoted ──COMMIT──▶ (unknown)    Aborted
//!
//! state          event                                          next
//! (unknown)      first operation                                Active
//! (unknown)      later operation; its coordinator restarted     Aborted (refused)
//! (unknown)      ABORT                                          Aborted
//! (unknown)      PREPARE; COMMIT ONE-PHASE                      (unknown): NO, or aborted
//! (unknown)      peer's inquiry                                 (unknown), no answer
//! Active         operation                                      Active (waits, or done)
//! Active         PREPARE while an operation waits               Aborted, votes NO
//! Active         PREPARE, no writes                             ReadOnlyVoted, votes READ-ONLY
//! Active         PREPARE, writes                                Prepared: logs, votes YES
//! Active         COMMIT ONE-PHASE, no operation waiting         (unknown): logs, applies
//! Active         deadlock victim; peer's inquiry; coordinator
//!                restarted; COMMIT ONE-PHASE while one waits     Aborted
//! Active         COMMIT                                         Active (ignored, no ack)
//! Prepared       PREPARE                                        Prepared, votes YES again
//! Prepared       operation                                      Prepared (refused)
//! Prepared       COMMIT                                         Committed: logs, applies, acks
//! Prepared       ABORT; COMMIT ONE-PHASE                        Aborted: logs (lazily)
//! Prepared       tick past its inquiry time                     Prepared: asks again
//! ReadOnlyVoted  PREPARE                                        ReadOnlyVoted, votes READ-ONLY
//! ReadOnlyVoted  operation                                      ReadOnlyVoted (refused)
//! ReadOnlyVoted  COMMIT; its coordinator restarted              (unknown): releases its locks
//! ReadOnlyVoted  ABORT                                          Aborted
//! Committed      peer's inquiry                                 Committed, answers COMMIT
//! Committed      ABORT                                          Aborted
//! Committed      anything else                                  as (unknown)
//! Aborted        ABORT                                          Aborted (first reason kept)
//! Aborted        anything else                                  Aborted: refuses, NO, ABORT
//! any            COMMIT, unless Active/Prepared/ReadOnlyVoted   unchanged: acks again
//! ```
//!
//! - **Active**: reading and writing; holds its locks, its buffered writes, and at most
//!   one operation waiting for a lock. A PREPARE while that operation waits aborts it.
//! - **Prepared**: voted YES after logging a `Prepare` record; holds its write locks
//!   (and its read locks, until the outcome) and is in doubt until COMMIT or ABORT.
//! - **ReadOnlyVoted**: voted READ-ONLY; logged nothing and holds its read locks until
//!   the coordinator's outcome, or until that coordinator's `Restarted` (which sends no
//!   outcome to read-only voters), ends it. It is then forgotten.
//! - **Committed**: a prepared transaction committed here, remembered with its commit
//!   timestamp only so that a peer in doubt can learn the outcome (cooperative
//!   termination). To every other input it is as unknown as a transaction never seen,
//!   which is what it becomes when evicted: at most [`REMEMBERED_COMMITS`] are kept, and
//!   the one with the smallest id goes first. A one-phase commit is not remembered: no
//!   peer of it can be in doubt.
//! - **Aborted**: a tombstone with the reason, so that a late operation, PREPARE or
//!   inquiry is refused and told why. Tombstones last for the node's incarnation; the
//!   first reason stays. An ABORT for a transaction never seen leaves one too.
//!
//! The handlers in `outcome`, `termination` and `mod` each `match` on the transaction's
//! state for their event; this module owns the map, so the indexes below cannot drift
//! from it. A transaction is in exactly one state, or unknown.
//!
//! # Indexes
//!
//! Kept by [`Txns`] beside the map, never written from outside it:
//! - `live`: exactly the ids whose state is Active, Prepared or ReadOnlyVoted (the ones
//!   that may hold locks), so that ticks, status and the prepare floor, which run often,
//!   do not walk the remembered commits and tombstones;
//! - `committed`: exactly the ids whose state is Committed, in id order, for eviction.
//!
//! Kept by the participant, checked against the map by `Participant::check_invariants`
//! (called after every step of the random-input tests):
//! - `prepared_keys`: key `k` maps to `t` exactly while `t` is Prepared and writes `k`;
//! - `blocked_reads`: reads wait on `t` only while `t` is Prepared, each for a key it
//!   writes; `blocked_scans` likewise, each for a range holding a key it writes;
//! - the lock table: only live transactions hold or wait for locks; an Active one waits
//!   exactly when it has a pending operation, a Prepared one holds the exclusive lock of
//!   every key it writes and waits for none.

use super::REMEMBERED_COMMITS;
use crate::lock::{LockMode, ScanLock};
use crate::message::ReqId;
use crate::types::{NodeId, Timestamp, TxnId, Write};
use crate::wal::Record;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// An operation waiting for its lock.
#[derive(Clone, Debug)]
pub(super) enum PendingOp {
    /// A locked read, under a shared lock or, for update, an exclusive one.
    Read(String, LockMode),
    Write(String, Option<String>),
    /// A range read, under the lock of a range or of the keys it found (see
    /// `lock::range`).
    Scan(ScanLock),
}

impl PendingOp {
    /// The key it waits for (a scan: the range it reads, as `SHOW LOCKS` names it).
    pub(super) fn key(&self) -> String {
        match self {
            PendingOp::Read(key, _) | PendingOp::Write(key, _) => key.clone(),
            PendingOp::Scan(lock) => format!("range {}", lock.range()),
        }
    }
}

/// A transaction that is reading and writing here.
#[derive(Clone, Debug, Default)]
pub(super) struct Active {
    /// Buffered writes, applied only if the transaction commits.
    pub(super) writes: BTreeMap<String, Option<String>>,
    /// The operation queued for a lock, with its request.
    pub(super) pending: Option<(ReqId, PendingOp)>,
    /// The transaction's begin stamp, which its waits report to the deadlock detector.
    pub(super) began: u64,
    /// When `pending` began to wait (for `SET deadlock timeout`).
    pub(super) waiting_since: Duration,
}

/// A transaction that voted YES and awaits the outcome.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Who decides.
    pub coordinator: NodeId,
    /// Every participant.
    pub participants: Vec<NodeId>,
    /// The writes to apply on COMMIT.
    pub writes: Vec<Write>,
    /// The prepare timestamp.
    pub prepare_ts: Timestamp,
    /// At or below every participant's prepare timestamp for this transaction, as far
    /// as this node knows: its own, or for a staged one the clock its PREPARE carried
    /// (`Message::PrepareStaged`). This node's floor (`node::floors`) counts it. Not
    /// logged: a restored transaction has its own prepare timestamp here.
    pub floor: Timestamp,
    /// When to ask the coordinator again if no outcome has come.
    pub(super) next_inquiry: Duration,
}

/// A transaction's state at this participant (see the module doc).
#[derive(Clone, Debug)]
pub(super) enum TxnState {
    Active(Active),
    Prepared(Prepared),
    ReadOnlyVoted { coordinator: NodeId },
    Committed { commit_ts: Timestamp },
    Aborted { reason: String },
}

impl TxnState {
    /// Whether the transaction may hold locks here.
    pub(super) fn is_live(&self) -> bool {
        matches!(
            self,
            TxnState::Active(_) | TxnState::Prepared(_) | TxnState::ReadOnlyVoted { .. }
        )
    }
}

/// The state map and the indexes that follow it (see the module doc).
#[derive(Clone, Debug, Default)]
pub(super) struct Txns {
    states: BTreeMap<TxnId, TxnState>,
    /// The ids whose state is live.
    live: BTreeSet<TxnId>,
    /// The ids whose state is Committed, oldest id first.
    committed: BTreeSet<TxnId>,
}

impl Txns {
    /// The state of `tid`; `None` if unknown.
    pub(super) fn get(&self, tid: &TxnId) -> Option<&TxnState> {
        self.states.get(tid)
    }

    /// The workspace of `tid`, if it is Active.
    pub(super) fn active_mut(&mut self, tid: &TxnId) -> Option<&mut Active> {
        match self.states.get_mut(tid) {
            Some(TxnState::Active(active)) => Some(active),
            _ => None,
        }
    }

    /// The vote of `tid`, if it is Prepared.
    pub(super) fn prepared_mut(&mut self, tid: &TxnId) -> Option<&mut Prepared> {
        match self.states.get_mut(tid) {
            Some(TxnState::Prepared(prepared)) => Some(prepared),
            _ => None,
        }
    }

    /// Removes `tid`'s state, leaving it unknown, and gives it back.
    pub(super) fn take(&mut self, tid: TxnId) -> Option<TxnState> {
        let state = self.states.remove(&tid)?;
        self.live.remove(&tid);
        self.committed.remove(&tid);
        Some(state)
    }

    /// Sets `tid`'s state, replacing any. A commit beyond [`REMEMBERED_COMMITS`] evicts
    /// the remembered commit with the smallest id (possibly this one).
    pub(super) fn put(&mut self, tid: TxnId, state: TxnState) {
        self.take(tid);
        if state.is_live() {
            self.live.insert(tid);
        }
        let committed = matches!(state, TxnState::Committed { .. });
        self.states.insert(tid, state);
        if committed {
            self.committed.insert(tid);
            if self.committed.len() > REMEMBERED_COMMITS
                && let Some(oldest) = self.committed.pop_first()
            {
                self.states.remove(&oldest);
            }
        }
    }

    /// The live transactions (Active, Prepared, ReadOnlyVoted), by id.
    pub(super) fn live(&self) -> impl Iterator<Item = (TxnId, &TxnState)> {
        (self.live.iter()).filter_map(|tid| self.states.get(tid).map(|state| (*tid, state)))
    }

    /// The ids of the live transactions, sorted.
    pub(super) fn live_ids(&self) -> Vec<TxnId> {
        self.live.iter().copied().collect()
    }

    /// Every transaction with a state, by id.
    #[cfg(test)]
    pub(super) fn iter(&self) -> impl Iterator<Item = (&TxnId, &TxnState)> {
        self.states.iter()
    }

    /// Checks that the indexes follow the map.
    #[cfg(test)]
    pub(super) fn check(&self) -> Result<(), String> {
        let live: BTreeSet<TxnId> = (self.states.iter())
            .filter(|(_, state)| state.is_live())
            .map(|(tid, _)| *tid)
            .collect();
        let committed: BTreeSet<TxnId> = (self.states.iter())
            .filter(|(_, state)| matches!(state, TxnState::Committed { .. }))
            .map(|(tid, _)| *tid)
            .collect();
        if live != self.live {
            return Err(format!("live index {:?}, live states {live:?}", self.live));
        }
        if committed != self.committed {
            return Err(format!(
                "committed index {:?}, committed states {committed:?}",
                self.committed
            ));
        }
        if committed.len() > REMEMBERED_COMMITS {
            return Err(format!("{} commits remembered", committed.len()));
        }
        Ok(())
    }
}

/// A `Prepared` as recovery rebuilds it from a `Prepare` record.
pub fn prepared_from_record(record: &Record) -> Option<(TxnId, Prepared)> {
    match record {
        Record::Prepare {
            tid,
            coordinator,
            participants,
            writes,
            prepare_ts,
        } => Some((
            *tid,
            Prepared {
                coordinator: *coordinator,
                participants: participants.clone(),
                writes: writes.clone(),
                prepare_ts: *prepare_ts,
                floor: *prepare_ts,
                next_inquiry: Duration::ZERO,
            },
        )),
        _ => None,
    }
}

impl Prepared {
    /// The `Prepare` record this state came from, for checkpoints.
    pub fn to_record(&self, tid: TxnId) -> Record {
        Record::Prepare {
            tid,
            coordinator: self.coordinator,
            participants: self.participants.clone(),
            writes: self.writes.clone(),
            prepare_ts: self.prepare_ts,
        }
    }
}

#[cfg(test)]
impl super::Participant {
    /// Checks every invariant of the module doc between the state map and the indexes.
    pub(super) fn check_invariants(&self) -> Result<(), String> {
        self.txns.check()?;
        for (key, tid) in &self.prepared_keys {
            let writes_key = matches!(self.txns.get(tid),
                Some(TxnState::Prepared(p)) if p.writes.iter().any(|(k, _)| k == key));
            if !writes_key {
                return Err(format!("{key} is marked prepared by {tid}, which is not"));
            }
        }
        for (tid, reads) in &self.blocked_reads {
            let Some(TxnState::Prepared(prepared)) = self.txns.get(tid) else {
                return Err(format!("reads wait for {tid}, which is not prepared"));
            };
            for (_, key, _) in reads {
                if !prepared.writes.iter().any(|(k, _)| k == key) {
                    return Err(format!(
                        "a read of {key} waits for {tid}, which does not write it"
                    ));
                }
            }
        }
        for tid in self.blocked_scans.keys() {
            if !matches!(self.txns.get(tid), Some(TxnState::Prepared(_))) {
                return Err(format!("scans wait for {tid}, which is not prepared"));
            }
        }
        let locks = self.locks.snapshot();
        for entry in &locks {
            for (tid, _) in entry.holders.iter().chain(&entry.waiters) {
                if !self.txns.get(tid).is_some_and(TxnState::is_live) {
                    return Err(format!(
                        "{tid} holds or waits for {}, yet is {:?}",
                        entry.key,
                        self.txns.get(tid)
                    ));
                }
            }
        }
        let waits = |tid: &TxnId| {
            locks
                .iter()
                .any(|e| e.waiters.iter().any(|(t, _)| t == tid))
        };
        let holds = |tid: &TxnId, key: &str| {
            locks
                .iter()
                .any(|e| e.key == key && e.holders.contains(&(*tid, LockMode::Exclusive)))
        };
        for (tid, state) in self.txns.iter() {
            match state {
                TxnState::Active(active) if active.pending.is_some() != waits(tid) => {
                    return Err(format!(
                        "{tid} has a pending operation: {:?}, waits: {}",
                        active.pending,
                        waits(tid)
                    ));
                }
                TxnState::Prepared(prepared) => {
                    if waits(tid) {
                        return Err(format!("{tid} is prepared and waits for a lock"));
                    }
                    for (key, _) in &prepared.writes {
                        if !holds(tid, key) {
                            return Err(format!("{tid} is prepared without the lock of {key}"));
                        }
                        if self.prepared_keys.get(key) != Some(tid) {
                            return Err(format!("{tid} is prepared, but {key} is not marked"));
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}
