//! A participant's part in the commit itself: its vote on PREPARE, and the outcome
//! (COMMIT, ABORT, or a one-phase commit it decides alone), as the module doc above
//! describes.

use super::{Active, Participant, Prepared, TxnState, reply};
use crate::config::Mistake;
use crate::crash::CrashPoint;
use crate::error::Error;
use crate::message::{Effect, Message, Vote};
use crate::types::{NodeId, Timestamp, TxnId, Write};
use crate::wal::Record;
use std::time::Duration;

impl Participant {
    /// PREPARE from `coordinator`: vote. If it votes YES it will ask the coordinator at
    /// `next_inquiry` should no outcome have come by then.
    pub fn prepare(
        &mut self,
        tid: TxnId,
        coordinator: NodeId,
        participants: Vec<NodeId>,
        next_inquiry: Duration,
        out: &mut Vec<Effect>,
    ) {
        out.push(Effect::CrashPoint(CrashPoint::Prepare));
        let vote = match self.txns.take(tid) {
            Some(TxnState::Active(active)) if active.pending.is_some() => {
                self.txns.put(tid, TxnState::Active(active));
                self.abort_here(
                    tid,
                    "PREPARE arrived while an operation was waiting".into(),
                    out,
                );
                Vote::No {
                    reason: format!("node {} was still waiting for a lock", self.node),
                }
            }
            Some(TxnState::Active(active)) if active.writes.is_empty() => {
                self.txns.put(tid, TxnState::ReadOnlyVoted { coordinator });
                Vote::ReadOnly
            }
            Some(TxnState::Active(active)) => {
                let prepared = (coordinator, participants, next_inquiry);
                Vote::Yes {
                    prepare_ts: self.prepare_writes(tid, active, prepared, out),
                }
            }
            Some(state) => {
                let vote = match &state {
                    TxnState::Prepared(prepared) => Vote::Yes {
                        prepare_ts: prepared.prepare_ts,
                    },
                    TxnState::ReadOnlyVoted { .. } => Vote::ReadOnly,
                    _ => Vote::No {
                        reason: forgotten(self.node, tid, Some(&state)),
                    },
                };
                self.txns.put(tid, state);
                vote
            }
            // Teaching mistake (no-tombstone), never the default: what this node does
            // not know (perhaps a transaction it aborted and kept no record of) is taken
            // for one that did nothing here, and voted YES.
            None if self.mistake == Some(Mistake::NoTombstone) => Vote::Yes {
                prepare_ts: self.clock.now(),
            },
            None => Vote::No {
                reason: forgotten(self.node, tid, None),
            },
        };
        out.push(Effect::Send {
            to: coordinator,
            message: Message::Vote { tid, vote },
        });
    }

    /// Active to Prepared: logs the writes (forced) and returns the prepare timestamp.
    pub(super) fn prepare_writes(
        &mut self,
        tid: TxnId,
        active: Active,
        (coordinator, participants, next_inquiry): (NodeId, Vec<NodeId>, Duration),
        out: &mut Vec<Effect>,
    ) -> Timestamp {
        let prepare_ts = self.clock.now();
        let writes: Vec<Write> = active.writes.into_iter().collect();
        out.push(Effect::Append(Record::Prepare {
            tid,
            coordinator,
            participants: participants.clone(),
            writes: writes.clone(),
            prepare_ts,
        }));
        let prepared = Prepared {
            coordinator,
            participants,
            writes,
            prepare_ts,
            floor: prepare_ts,
            next_inquiry,
        };
        self.mark_prepared(tid, prepared);
        out.push(Effect::CrashPoint(CrashPoint::Vote));
        prepare_ts
    }

    /// COMMIT (from the coordinator, or a peer that knows): log, apply, release,
    /// acknowledge to the coordinator.
    pub fn commit(&mut self, tid: TxnId, commit_ts: Timestamp, out: &mut Vec<Effect>) {
        match self.txns.get(&tid) {
            Some(TxnState::ReadOnlyVoted { .. }) => {
                // It only read here: the outcome ends it, with nothing to log or acknowledge.
                self.txns.take(tid);
                let grants = self.locks.release_all(tid);
                self.granted(grants, out);
            }
            Some(TxnState::Prepared(_)) => self.commit_prepared(tid, commit_ts, out),
            // A commit decision needs this node's YES, so an active transaction cannot be
            // committed; keep it and do not acknowledge.
            Some(TxnState::Active(_)) => {}
            // Committed (and perhaps forgotten) already: acknowledge again, once the
            // `Commit` record is on disk. It may not be yet (a duplicate COMMIT, say from
            // the inquiry of an in-doubt node, can follow the first in the same batch),
            // and an ack sent now would let the coordinator forget a decision this node
            // could still lose. To the transaction's coordinator even if a peer told us:
            // only it awaits acks, and the trace stays the same whichever COMMIT arrived
            // first.
            Some(TxnState::Committed { .. } | TxnState::Aborted { .. }) | None => {
                out.push(Effect::SendDurable {
                    to: tid.coordinator(self.nodes),
                    message: Message::Ack { tid },
                });
            }
        }
    }

    /// Prepared to Committed: log, apply, release, acknowledge.
    fn commit_prepared(&mut self, tid: TxnId, commit_ts: Timestamp, out: &mut Vec<Effect>) {
        let Some(TxnState::Prepared(prepared)) = self.txns.take(tid) else {
            return;
        };
        out.push(Effect::CrashPoint(CrashPoint::Commit));
        out.push(Effect::Append(Record::Commit { tid, commit_ts }));
        self.store.apply(&prepared.writes, commit_ts);
        self.remember_commit(tid, commit_ts);
        self.unmark_prepared(tid, &prepared, out);
        let grants = self.locks.release_all(tid);
        self.granted(grants, out);
        out.push(Effect::CrashPoint(CrashPoint::Ack));
        // The outcome may have come from a peer; the coordinator awaits the ack, which
        // leaves once the Commit record is on disk.
        let message = Message::Ack { tid };
        out.push(Effect::SendDurable {
            to: prepared.coordinator,
            message,
        });
    }

    /// ABORT (from the coordinator, or a local decision): drop the workspace, release.
    pub fn abort(&mut self, tid: TxnId, reason: String, out: &mut Vec<Effect>) {
        self.abort_here(tid, reason, out);
    }

    /// Any state to Aborted (a tombstone keeps the first reason it was given).
    pub(super) fn abort_here(&mut self, tid: TxnId, reason: String, out: &mut Vec<Effect>) {
        let reason = match self.txns.take(tid) {
            Some(TxnState::Prepared(prepared)) => {
                out.push(Effect::Append(Record::Abort { tid }));
                self.unmark_prepared(tid, &prepared, out);
                reason
            }
            Some(TxnState::Active(active)) => {
                if let Some((req, _)) = active.pending {
                    let error = Error::Aborted {
                        tid,
                        reason: reason.clone(),
                    };
                    reply(out, req, Err(error));
                }
                reason
            }
            Some(TxnState::Aborted { reason: first }) => first,
            Some(TxnState::ReadOnlyVoted { .. } | TxnState::Committed { .. }) | None => reason,
        };
        // Teaching mistake (no-tombstone), never the default: the abort leaves no record,
        // so a late PREPARE finds nothing to refuse.
        if self.mistake != Some(Mistake::NoTombstone) {
            self.txns.put(tid, TxnState::Aborted { reason });
        }
        let grants = self.locks.release_all(tid);
        self.granted(grants, out);
    }

    /// COMMIT ONE-PHASE from `coordinator`: this node is the only participant and decides.
    pub fn commit_one_phase(&mut self, tid: TxnId, coordinator: NodeId, out: &mut Vec<Effect>) {
        let (aborted, at) = match self.txns.get(&tid) {
            Some(TxnState::Active(active)) if active.pending.is_none() => {
                (None, self.commit_here(tid, out))
            }
            Some(TxnState::Active(_) | TxnState::Prepared(_)) => {
                let reason = format!("node {} was not ready to commit it", self.node);
                self.abort_here(tid, reason.clone(), out);
                (Some(reason), 0)
            }
            state => (Some(forgotten(self.node, tid, state)), 0),
        };
        let message = Message::OnePhaseOutcome { tid, aborted, at };
        out.push(Effect::Send {
            to: coordinator,
            message,
        });
    }

    /// Active to unknown, committed in one phase: log and apply its writes, if any, and
    /// release. Nothing is remembered: no peer can be in doubt about it. Returns where it
    /// committed: its commit timestamp, or for one that only read, the clock now (above
    /// what it read; a later write here commits above it).
    fn commit_here(&mut self, tid: TxnId, out: &mut Vec<Effect>) -> Timestamp {
        let Some(TxnState::Active(active)) = self.txns.take(tid) else {
            return self.clock.now();
        };
        let mut at = self.clock.now();
        if !active.writes.is_empty() {
            let commit_ts = self.clock.tick_past(0);
            let writes: Vec<Write> = active.writes.into_iter().collect();
            out.push(Effect::CrashPoint(CrashPoint::Commit));
            out.push(Effect::Append(Record::OnePhaseCommit {
                tid,
                writes: writes.clone(),
                commit_ts,
            }));
            self.store.apply(&writes, commit_ts);
            at = commit_ts;
        }
        let grants = self.locks.release_all(tid);
        self.granted(grants, out);
        out.push(Effect::CrashPoint(CrashPoint::Ack));
        at
    }
}

/// Why node `node` cannot vote YES for a transaction it does not know, or knows only as
/// aborted (a remembered commit is as unknown here: it cannot be prepared again).
fn forgotten(node: NodeId, tid: TxnId, state: Option<&TxnState>) -> String {
    match state {
        Some(TxnState::Aborted { reason }) => {
            format!("node {node} had already aborted it: {reason}")
        }
        _ => format!(
            "node {node} has no record of it (it crashed and restarted after {tid} worked there)"
        ),
    }
}
