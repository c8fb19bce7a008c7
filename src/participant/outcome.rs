//! A participant's part in the commit itself: its vote on PREPARE, and the outcome
//! (COMMIT, ABORT, or a one-phase commit it decides alone), as the module doc above
//! describes.

use super::{Participant, Prepared, TxnState, reply};
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
        let vote = match self.txns.remove(&tid) {
            Some(TxnState::Prepared(prepared)) => {
                let vote = Vote::Yes {
                    prepare_ts: prepared.prepare_ts,
                };
                self.txns.insert(tid, TxnState::Prepared(prepared));
                vote
            }
            Some(TxnState::Active(active)) if active.pending.is_some() => {
                self.txns.insert(tid, TxnState::Active(active));
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
                self.read_only.insert(tid, coordinator);
                Vote::ReadOnly
            }
            None if self.read_only.contains_key(&tid) => Vote::ReadOnly,
            Some(TxnState::Active(active)) => {
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
                    next_inquiry,
                };
                self.mark_prepared(tid, prepared);
                out.push(Effect::CrashPoint(CrashPoint::Vote));
                Vote::Yes { prepare_ts }
            }
            None => Vote::No {
                reason: self.forgotten(tid),
            },
        };
        out.push(Effect::Send {
            to: coordinator,
            message: Message::Vote { tid, vote },
        });
    }

    /// Why this node cannot vote YES for a transaction it does not know.
    fn forgotten(&self, tid: TxnId) -> String {
        match self.tombstones.get(&tid) {
            Some(reason) => format!("node {} had already aborted it: {reason}", self.node),
            None => format!(
                "node {} has no record of it (it crashed and restarted after {tid} worked there)",
                self.node
            ),
        }
    }

    /// COMMIT (from the coordinator, or a peer that knows): log, apply, release,
    /// acknowledge to the coordinator.
    pub fn commit(&mut self, tid: TxnId, commit_ts: Timestamp, out: &mut Vec<Effect>) {
        if self.read_only.remove(&tid).is_some() {
            // It only read here: the outcome ends it, with nothing to log or acknowledge.
            let grants = self.locks.release_all(tid);
            return self.granted(grants, out);
        }
        match self.txns.remove(&tid) {
            Some(TxnState::Prepared(prepared)) => {
                out.push(Effect::CrashPoint(CrashPoint::Commit));
                out.push(Effect::Append(Record::Commit { tid, commit_ts }));
                self.store.apply(&prepared.writes, commit_ts);
                self.remember_commit(tid, commit_ts);
                self.unmark_prepared(tid, &prepared, out);
                let grants = self.locks.release_all(tid);
                self.granted(grants, out);
                out.push(Effect::CrashPoint(CrashPoint::Ack));
                // The outcome may have come from a peer; the coordinator awaits the ack,
                // which leaves once the Commit record is on disk.
                let message = Message::Ack { tid };
                out.push(Effect::SendDurable {
                    to: prepared.coordinator,
                    message,
                });
                return;
            }
            // A commit decision needs this node's YES, so an active transaction cannot be
            // committed; keep it and do not acknowledge.
            Some(active @ TxnState::Active(_)) => {
                self.txns.insert(tid, active);
                return;
            }
            // Committed and forgotten already: acknowledge again, once the `Commit` record
            // is on disk. It may not be yet (a duplicate COMMIT, say from the inquiry of an
            // in-doubt node, can follow the first in the same batch), and an ack sent now
            // would let the coordinator forget a decision this node could still lose.
            None => {}
        }
        // To the transaction's coordinator even if a peer told us: only it awaits acks,
        // and the trace stays the same whichever COMMIT arrived first.
        out.push(Effect::SendDurable {
            to: tid.coordinator(self.nodes),
            message: Message::Ack { tid },
        });
    }

    /// ABORT (from the coordinator, or a local decision): drop the workspace, release.
    pub fn abort(&mut self, tid: TxnId, reason: String, out: &mut Vec<Effect>) {
        self.abort_here(tid, reason, out);
    }

    pub(super) fn abort_here(&mut self, tid: TxnId, reason: String, out: &mut Vec<Effect>) {
        match self.txns.remove(&tid) {
            Some(TxnState::Prepared(prepared)) => {
                out.push(Effect::Append(Record::Abort { tid }));
                self.unmark_prepared(tid, &prepared, out);
            }
            Some(TxnState::Active(active)) => {
                if let Some((req, _)) = active.pending {
                    let error = Error::Aborted {
                        tid,
                        reason: reason.clone(),
                    };
                    reply(out, req, Err(error));
                }
            }
            None => {}
        }
        self.read_only.remove(&tid);
        self.tombstones.entry(tid).or_insert(reason);
        let grants = self.locks.release_all(tid);
        self.granted(grants, out);
    }

    /// COMMIT ONE-PHASE from `coordinator`: this node is the only participant and decides.
    pub fn commit_one_phase(&mut self, tid: TxnId, coordinator: NodeId, out: &mut Vec<Effect>) {
        let aborted = match self.txns.remove(&tid) {
            Some(TxnState::Active(active)) if active.pending.is_none() => {
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
                }
                let grants = self.locks.release_all(tid);
                self.granted(grants, out);
                out.push(Effect::CrashPoint(CrashPoint::Ack));
                None
            }
            Some(state) => {
                self.txns.insert(tid, state);
                let reason = format!("node {} was not ready to commit it", self.node);
                self.abort_here(tid, reason.clone(), out);
                Some(reason)
            }
            None => Some(self.forgotten(tid)),
        };
        let message = Message::OnePhaseOutcome { tid, aborted };
        out.push(Effect::Send {
            to: coordinator,
            message,
        });
    }
}
