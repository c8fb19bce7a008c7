//! Outcomes settled without the protocol, and the narration of outcomes after a restart.
//!
//! # Heuristic decisions (`RESOLVE T4 COMMIT ON node 2`)
//!
//! An in-doubt transaction blocks its keys until its coordinator answers. A database
//! administrator who cannot wait settles it by hand, as with PostgreSQL's `COMMIT
//! PREPARED` / `ROLLBACK PREPARED` or XA's heuristic outcomes: the participant logs a
//! forced `Heuristic` record, applies (commit) or drops (abort) the prepared writes,
//! releases the locks and warns. It remembers the decision (the record survives
//! restarts) and asks the coordinator once more, so that the real decision, when it
//! comes, is compared with it:
//!
//! - the same: the heuristic decision was lucky; a COMMIT is acknowledged as usual, so
//!   the coordinator can forget it, and the node forgets the heuristic decision;
//! - the other: a **heuristic mixed outcome**. The transaction committed on some nodes
//!   and aborted on others: atomicity is broken, and nothing in 2PC can repair it. The
//!   node says so loudly (naming what it did and what the coordinator decided), keeps
//!   its own outcome (the writes are not undone or redone), acknowledges a COMMIT so the
//!   coordinator does not resend it for ever, and lists the mixed outcome in `STATUS`.
//!
//! This is the only way a kv2pc transaction can be committed on one node and aborted on
//! another; the invariant checkers name it when they find one.
//!
//! A heuristically settled transaction answers no peer's inquiry: its outcome here is not
//! the transaction's outcome, and telling a peer would spread the guess.
//!
//! # Limits
//!
//! A checkpoint does not carry the heuristic decisions (the snapshot format has no place
//! for them): after a checkpoint, a restarted node no longer compares a late decision
//! with one taken before it. Mixed outcomes found are kept in memory for the node's
//! incarnation (STATUS lists them until the node restarts).
//!
//! # Narration
//!
//! A transaction found in doubt at recovery is marked, so that when its outcome arrives
//! the node says what it decided and why (`Effect::Narrate`).

use super::{Participant, TxnState};
use crate::error::Error;
use crate::message::{Effect, Message};
use crate::types::{NodeId, Timestamp, TxnId};
use crate::wal::Record;

/// A decision an operator took by hand, remembered until the coordinator's arrives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Heuristic {
    /// Whether it was committed here (else aborted).
    pub commit: bool,
    /// The transaction's coordinator, asked for the real decision.
    pub coordinator: NodeId,
}

/// A transaction whose heuristic decision here disagreed with its coordinator's.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Mixed {
    /// The transaction.
    pub tid: TxnId,
    /// Whether this node committed it (by hand); the coordinator decided the opposite.
    pub committed_here: bool,
    /// The coordinator.
    pub coordinator: NodeId,
}

fn word(commit: bool) -> &'static str {
    if commit { "COMMIT" } else { "ABORT" }
}

impl Participant {
    /// `RESOLVE tid COMMIT|ABORT` on this node: settles an in-doubt transaction by hand.
    /// Refused, with the reason, unless `tid` is prepared here and undecided.
    pub fn resolve(
        &mut self,
        tid: TxnId,
        commit: bool,
        out: &mut Vec<Effect>,
    ) -> Result<(), Error> {
        let prepared = match self.txns.get(&tid) {
            Some(TxnState::Prepared(prepared)) => prepared.clone(),
            state => {
                let what = match state {
                    Some(TxnState::Active(_)) => "is still active there (it has not voted)",
                    Some(TxnState::ReadOnlyVoted { .. }) => "only read there",
                    Some(TxnState::Committed { .. }) => "is committed there already",
                    Some(TxnState::Aborted { .. }) => "is aborted there already",
                    _ => "is not known there",
                };
                return Err(Error::InvalidInput(format!(
                    "{tid} is not in doubt on node {}: it {what}; RESOLVE settles only a \
                     transaction prepared there and undecided (STATUS lists them)",
                    self.node
                )));
            }
        };
        let commit_ts = if commit {
            self.clock.tick_past(prepared.prepare_ts)
        } else {
            0
        };
        let Some(TxnState::Prepared(prepared)) = self.txns.take(tid) else {
            unreachable!("checked above");
        };
        out.push(Effect::Append(Record::Heuristic {
            tid,
            commit,
            commit_ts,
        }));
        self.unmark_prepared(tid, &prepared, out);
        if commit {
            self.store.apply(&prepared.writes, commit_ts);
            self.remember_commit(tid, commit_ts);
        } else {
            let reason = format!("an operator aborted it by hand on node {}", self.node);
            self.txns.put(tid, TxnState::Aborted { reason });
        }
        let grants = self.locks.release_all(tid);
        self.granted(grants, out);
        self.recovered_in_doubt.remove(&tid);
        let coordinator = prepared.coordinator;
        self.heuristics.insert(
            tid,
            Heuristic {
                commit,
                coordinator,
            },
        );
        let keys: Vec<&str> = prepared.writes.iter().map(|(k, _)| k.as_str()).collect();
        out.push(Effect::Narrate(format!(
            "WARNING: {tid} settled by hand as a heuristic {}, without its coordinator: {} \
             released; if node {coordinator} decided otherwise, {tid} is committed on some \
             nodes and aborted on others (a heuristic mixed outcome)",
            word(commit),
            keys.join(", ")
        )));
        out.push(Effect::Send {
            to: coordinator,
            message: Message::Inquire { tid },
        });
        Ok(())
    }

    /// Recovery: the heuristic decisions the log shows.
    pub fn remember_heuristics(&mut self, heuristics: Vec<(TxnId, Heuristic)>) {
        self.heuristics.extend(heuristics);
    }

    /// Whether `tid` was settled by hand here and its coordinator's decision has not come.
    pub fn heuristic(&self, tid: TxnId) -> Option<&Heuristic> {
        self.heuristics.get(&tid)
    }

    /// The heuristic mixed outcomes found by this incarnation, in the order found.
    pub fn mixed(&self) -> &[Mixed] {
        &self.mixed
    }

    /// The coordinator's decision (`commit_ts` for COMMIT, `None` for ABORT) reached a
    /// transaction settled by hand here: compare (see the module doc). Returns false if
    /// `tid` was not settled by hand, leaving the message to the usual handlers.
    pub fn heuristic_outcome(
        &mut self,
        tid: TxnId,
        from: NodeId,
        commit_ts: Option<Timestamp>,
        out: &mut Vec<Effect>,
    ) -> bool {
        let Some(heuristic) = self.heuristics.get(&tid).cloned() else {
            return false;
        };
        let decided = commit_ts.is_some();
        if from != heuristic.coordinator {
            // Only the coordinator's word is the decision; a peer's is ignored here.
            return true;
        }
        self.heuristics.remove(&tid);
        if decided {
            out.push(Effect::SendDurable {
                to: from,
                message: Message::Ack { tid },
            });
        }
        if decided == heuristic.commit {
            out.push(Effect::Narrate(format!(
                "node {from}, {tid}'s coordinator, decided {} too: the heuristic decision \
                 happened to agree, and {tid} is atomic after all",
                word(decided)
            )));
            return true;
        }
        let (here, there) = (word(heuristic.commit), word(decided));
        out.push(Effect::Narrate(format!(
            "HEURISTIC MIXED OUTCOME: {tid} was settled by hand here as {here}, but node \
             {from}, its coordinator, decided {there} (for every participant): node {} did \
             {here} while the others do {there}, so {tid} is committed on some nodes and \
             aborted on others; atomicity is broken and no protocol step can repair it",
            self.node
        )));
        self.mixed.push(Mixed {
            tid,
            committed_here: heuristic.commit,
            coordinator: from,
        });
        true
    }

    /// Recovery marks `tid` as found in doubt, for the narration of its outcome.
    pub(super) fn mark_recovered(&mut self, tid: TxnId) {
        self.recovered_in_doubt.insert(tid);
    }

    /// If `tid` was found in doubt at recovery and is still prepared: its keys.
    pub fn recovered_keys(&self, tid: TxnId) -> Option<Vec<String>> {
        match self.txns.get(&tid) {
            Some(TxnState::Prepared(prepared)) if self.recovered_in_doubt.contains(&tid) => {
                Some(prepared.writes.iter().map(|(k, _)| k.clone()).collect())
            }
            _ => None,
        }
    }

    /// After an outcome message for `tid`, whose keys were `keys` while it was in doubt
    /// since recovery: if it is settled now, say what was decided and why. The words do
    /// not name who answered: the coordinator and the other participants are asked
    /// together, and which answer arrives first varies between runs.
    pub fn narrate_outcome(&mut self, tid: TxnId, keys: &[String], out: &mut Vec<Effect>) {
        let commit = match self.txns.get(&tid) {
            Some(TxnState::Prepared(_)) => return,
            Some(TxnState::Committed { .. }) => true,
            _ => false,
        };
        self.recovered_in_doubt.remove(&tid);
        let coordinator = tid.coordinator(self.nodes);
        let why = match commit {
            true => format!(
                "the answer said: its coordinator, node {coordinator}, logged the commit \
                 decision, so every participant must commit"
            ),
            false => format!(
                "the answer said: its coordinator, node {coordinator}, holds no commit \
                 decision for it (presumed abort), so no participant may commit"
            ),
        };
        let done = if commit {
            "logs Commit, applies the writes and releases"
        } else {
            "logs Abort, drops the writes and releases"
        };
        out.push(Effect::Narrate(format!(
            "{tid} decided {}, as {why}; node {} {done} {}",
            word(commit),
            self.node,
            keys.join(", ")
        )));
    }
}
