//! A participant's part in parallel commits (`SET commit parallel`; the coordinator's
//! side is `coordinator::parallel`): the staged PREPARE, and the status a restarted
//! coordinator asks for.
//!
//! A staged transaction is committed once its coordinator's `Staged` record and every
//! participant's `Prepare` are durable. So a participant's durable `Prepare` is its
//! part of the commit itself, and two rules follow:
//! - a participant that only read still forces an (empty) `Prepare` and votes YES,
//!   holding its read locks until the outcome like any YES voter: "every participant
//!   prepared" must be checkable at recovery for every participant `Staged` names;
//! - asked by a restarted coordinator whether it prepared, a participant that has not
//!   must make sure it never will: it aborts the transaction here and forces a
//!   `Refused` tombstone before the answer leaves (the outbox holds a message behind
//!   every barrier record appended before it), and a later PREPARE of it finds the
//!   tombstone and votes NO. Without that, a PREPARE still on its way could prepare
//!   the transaction after the coordinator counted it refused and aborted: a commit on
//!   one node of a transaction aborted on another.
//!
//! A participant that holds the transaction prepared answers `Prepared` from memory;
//! the answer leaves only once its `Prepare` is durable, by the same outbox rule.
//!
//! Limits: the in-memory tombstone is what refuses the PREPARE while the node runs;
//! the `Refused` record restores it at recovery (`Node::recover`). A checkpoint does
//! not carry it: a node restarted from a later checkpoint does not know the
//! transaction at all, and an unknown transaction's PREPARE is voted NO as well.

use super::{Participant, TxnState};
use crate::config::Mistake;
use crate::crash::CrashPoint;
use crate::message::{Effect, Message, StagedStatus, Vote};
use crate::types::{NodeId, Timestamp, TxnId};
use crate::wal::Record;
use std::time::Duration;

impl Participant {
    /// A staged PREPARE from `coordinator`: as `prepare`, except that a transaction
    /// that only read here forces an empty `Prepare` and votes YES. `floor` is the
    /// clock the PREPARE carried, at or below every participant's prepare timestamp:
    /// this node's floor counts it while the transaction is prepared here, so that a
    /// snapshot chosen while another participant is down stays below that one's
    /// prepare too. (With parallel commits the client hears COMMIT before any
    /// participant knows the outcome, so a coordinator that dies then leaves every
    /// participant in doubt; the random fault suite found a reader of a down
    /// participant's key waiting for that coordinator's restart.)
    pub fn prepare_staged(
        &mut self,
        tid: TxnId,
        coordinator: NodeId,
        participants: Vec<NodeId>,
        floor: Timestamp,
        next_inquiry: Duration,
        out: &mut Vec<Effect>,
    ) {
        let read_only = matches!(
            self.txns.get(&tid),
            Some(TxnState::Active(active)) if active.pending.is_none() && active.writes.is_empty()
        );
        if !read_only {
            self.prepare(tid, coordinator, participants, next_inquiry, out);
            return self.lower_floor(tid, floor);
        }
        let Some(TxnState::Active(active)) = self.txns.take(tid) else {
            return;
        };
        out.push(Effect::CrashPoint(CrashPoint::Prepare));
        let prepared = (coordinator, participants, next_inquiry);
        let prepare_ts = self.prepare_writes(tid, active, prepared, out);
        self.lower_floor(tid, floor);
        out.push(Effect::Send {
            to: coordinator,
            message: Message::Vote {
                tid,
                vote: Vote::Yes { prepare_ts },
            },
        });
    }

    /// Lowers a prepared transaction's floor to `floor` (never above its prepare
    /// timestamp).
    fn lower_floor(&mut self, tid: TxnId, floor: Timestamp) {
        if let Some(prepared) = self.txns.prepared_mut(&tid) {
            prepared.floor = prepared.floor.min(floor);
        }
    }

    /// A restarted coordinator asks whether this node prepared staged transaction `tid`.
    pub fn status_query(&mut self, from: NodeId, tid: TxnId, out: &mut Vec<Effect>) {
        let status = match self.txns.get(&tid) {
            Some(TxnState::Prepared(prepared)) => StagedStatus::Prepared {
                prepare_ts: prepared.prepare_ts,
            },
            Some(TxnState::Committed { commit_ts }) => StagedStatus::Committed {
                commit_ts: *commit_ts,
            },
            _ => {
                let reason = format!(
                    "its coordinator node {from} restarted and found it staged, and node {} \
                     had not prepared it, so it is refused for good",
                    self.node
                );
                self.abort_here(tid, reason, out);
                // Teaching mistake (no-tombstone), never the default: nothing is kept.
                if self.mistake != Some(Mistake::NoTombstone) {
                    out.push(Effect::Append(Record::Refused { tid }));
                }
                StagedStatus::Refused
            }
        };
        out.push(Effect::Send {
            to: from,
            message: Message::Status { tid, status },
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Lamport;
    use crate::store::Store;

    fn participant() -> Participant {
        Participant::new(1, 3, Store::default(), Lamport::default())
    }

    #[test]
    fn a_participant_that_never_prepared_forces_a_tombstone_before_it_refuses_for_good() {
        let mut p = participant();
        let tid = TxnId::new(0, 0, 3);
        let mut out = Vec::new();
        p.status_query(0, tid, &mut out);
        let refused = out
            .iter()
            .position(|e| matches!(e, Effect::Append(Record::Refused { tid: t }) if *t == tid));
        let answer = out.iter().position(|e| {
            matches!(
                e,
                Effect::Send {
                    message: Message::Status {
                        status: StagedStatus::Refused,
                        ..
                    },
                    ..
                }
            )
        });
        assert!(refused.is_some() && refused < answer, "{out:?}");
        out.clear();
        p.prepare_staged(tid, 0, vec![1, 2], 0, Duration::ZERO, &mut out);
        assert!(
            out.iter().any(|e| matches!(
                e,
                Effect::Send {
                    message: Message::Vote {
                        vote: Vote::No { .. },
                        ..
                    },
                    ..
                }
            )),
            "a refused transaction's PREPARE is voted NO: {out:?}"
        );
    }

    #[test]
    fn a_staged_prepare_reports_the_clock_its_prepare_carried_as_this_nodes_floor() {
        // Another participant may prepare the same transaction at any timestamp from
        // the PREPARE's clock up; while it is down, this node's floor must cover it.
        let mut p = participant();
        let tid = TxnId::new(0, 0, 3);
        let mut out = Vec::new();
        p.write(1, (tid, 1), "k".into(), Some("v".into()), true, &mut out);
        p.clock_mut().observe(10);
        p.prepare_staged(tid, 0, vec![1, 2], 4, Duration::ZERO, &mut out);
        let prepare_ts = out.iter().find_map(|e| match e {
            Effect::Append(Record::Prepare { prepare_ts, .. }) => Some(*prepare_ts),
            _ => None,
        });
        assert!(prepare_ts.is_some_and(|ts| ts >= 10), "{out:?}");
        assert_eq!(p.prepare_floor(), Some(4));
        // A floor above the prepare timestamp never raises it.
        let other = TxnId::new(0, 0, 6);
        p.write(2, (other, 2), "j".into(), Some("v".into()), true, &mut out);
        p.prepare_staged(other, 0, vec![1, 2], 99, Duration::ZERO, &mut out);
        assert_eq!(p.prepare_floor(), Some(4));
    }

    #[test]
    fn a_read_only_part_of_a_staged_commit_prepares_durably_and_votes_yes() {
        let mut p = participant();
        let tid = TxnId::new(0, 0, 3);
        let mut out = Vec::new();
        p.read(
            1,
            (tid, 1),
            "k".into(),
            crate::lock::LockMode::Shared,
            true,
            &mut out,
        );
        out.clear();
        p.prepare_staged(tid, 0, vec![1, 2], 0, Duration::ZERO, &mut out);
        assert!(
            out.iter()
                .any(|e| matches!(e, Effect::Append(Record::Prepare { .. })))
        );
        assert!(out.iter().any(|e| matches!(
            e,
            Effect::Send {
                message: Message::Vote {
                    vote: Vote::Yes { .. },
                    ..
                },
                ..
            }
        )));
        out.clear();
        p.status_query(0, tid, &mut out);
        assert!(out.iter().any(|e| matches!(
            e,
            Effect::Send {
                message: Message::Status {
                    status: StagedStatus::Prepared { .. },
                    ..
                },
                ..
            }
        )));
    }
}
