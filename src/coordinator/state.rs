//! A transaction's one state at its coordinator, and what each state holds.
//!
//! Each transaction not finished here has one state, in one map (`TxnState`):
//!
//! ```text
//!         BEGIN              COMMIT, 2+ participants         every vote YES/READ-ONLY,
//! (none) ──────▶ Begun ──────────────────────────▶ Collecting ─── some YES ───▶ Decided
//!                  │  COMMIT, 1 participant          │ a NO, the vote timeout,     │ every
//!                  ├────────────────────▶ OnePhase   │ a YES/READ-ONLY voter       │ ack in
//!                  │                         │       │ restarted; or no YES        ▼
//!                  └── ABORT, COMMIT with ───┴───────┴──────────────────────────▶ (none)
//!                      no participants       outcome relayed, or its timeout
//! ```
//!
//! - **Begun**: the id is handed out; the client reads and writes at the participants.
//!   Only a Begun transaction may COMMIT; a COMMIT of any other is refused (and ABORT
//!   sent to the participants named), which leaves its state as it was.
//! - **Collecting**: PREPARE sent; holds the client's request, the votes pending and
//!   counted (each participant in exactly one of them) and the deadline.
//! - **OnePhase**: COMMIT ONE-PHASE sent to the only participant; holds the client's
//!   request and the deadline.
//! - **Decided**: the `Decision` record is logged; holds the commit timestamp and the
//!   YES voters that have not acknowledged (never none: the last ack ends it, with an
//!   `End` record). Recovery re-creates it from a `Decision` without `End`.
//!
//! Each handler matches on the state for its event; an event that does not apply to the
//! state (a late vote, a duplicate ack, an outcome for an ABORTed one) changes nothing.
//! `check_invariants` (in tests, after every step of random inputs) checks that the open
//! states belong to this incarnation and each state's own invariants.
//!
//! ```text
//! state        event                                    next
//! (none)       BEGIN                                    Begun
//! Begun        COMMIT, no participants                  (none), committed
//! Begun        COMMIT, one participant                  OnePhase: COMMIT ONE-PHASE sent
//! Begun        COMMIT, more                             Collecting: PREPARE sent
//! Begun        ABORT                                    (none): ABORT sent
//! not Begun    COMMIT                                   unchanged: refused, ABORT sent
//! Collecting   last vote, some YES                      Decided: logged, COMMIT sent
//! Collecting   last vote, all READ-ONLY                 (none), committed
//! Collecting   NO; vote timeout; a voter restarted      (none): ABORT sent
//! OnePhase     the participant's outcome; its timeout   (none): relayed, or unknown
//! Decided      the last ack                             (none): `End` logged
//! Decided      an inquiry; an unacked voter restarted   Decided: COMMIT sent again
//! any          inquiry                                  unchanged: COMMIT if Decided,
//!                                                       none if Collecting, else ABORT
//! ```

use super::Coordinator;
use crate::message::ReqId;
use crate::types::{NodeId, Timestamp, TxnId};
use std::collections::BTreeSet;
use std::time::Duration;

/// A transaction in phase 1.
#[derive(Clone, Debug)]
pub(super) struct Collecting {
    /// The client's COMMIT request, answered when decided.
    pub(super) req: ReqId,
    /// Every participant.
    pub(super) participants: Vec<NodeId>,
    /// Participants whose vote has not arrived.
    pub(super) votes_pending: BTreeSet<NodeId>,
    /// Participants that voted YES.
    pub(super) yes: Vec<NodeId>,
    /// Participants that voted READ-ONLY: they hold their read locks until told the
    /// outcome.
    pub(super) read_only: Vec<NodeId>,
    /// The largest prepare timestamp among the YES votes.
    pub(super) max_prepare_ts: Timestamp,
    /// The smallest.
    pub(super) min_prepare_ts: Timestamp,
    /// The coordinator's clock when it sent PREPARE: every participant's prepare
    /// timestamp is at or above it (it hears it with the message), so it bounds from
    /// below the snapshot floor of a participant that has not voted
    /// (`Coordinator::prepare_floor`).
    pub(super) asked_at: Timestamp,
    /// When to give up waiting and abort.
    pub(super) deadline: Duration,
    /// Whether it is a parallel commit, with a `Staged` record (see `parallel`).
    pub(super) staged: bool,
}

/// A staged transaction (parallel commits) found at recovery with no outcome, whose
/// participants are being asked whether they prepared (see `parallel`).
#[derive(Clone, Debug)]
pub(super) struct Resolving {
    /// Every participant named in `Staged`.
    pub(super) participants: Vec<NodeId>,
    /// Those that have not answered.
    pub(super) pending: BTreeSet<NodeId>,
    /// The largest prepare timestamp answered.
    pub(super) max_prepare_ts: Timestamp,
    /// The smallest.
    pub(super) min_prepare_ts: Timestamp,
    /// A commit timestamp a participant reported it committed at, if any.
    pub(super) commit_ts: Option<Timestamp>,
}

impl Resolving {
    /// Resolution of a `Staged` record naming `participants`.
    pub(super) fn new(participants: Vec<NodeId>) -> Resolving {
        Resolving {
            pending: participants.iter().copied().collect(),
            participants,
            max_prepare_ts: 0,
            min_prepare_ts: Timestamp::MAX,
            commit_ts: None,
        }
    }
}

/// A transaction committing in one phase at its only participant.
#[derive(Clone, Debug)]
pub(super) struct OnePhase {
    /// The client's COMMIT request, answered with the participant's outcome.
    pub(super) req: ReqId,
    /// The only participant, which decides.
    pub(super) participant: NodeId,
    /// When to stop waiting for its outcome.
    pub(super) deadline: Duration,
}

/// A committed transaction whose acknowledgements are not all in.
#[derive(Debug, Clone)]
pub struct Decided {
    /// The participants that must acknowledge.
    pub participants: Vec<NodeId>,
    /// Those that have not yet.
    pub unacked: BTreeSet<NodeId>,
    /// The commit timestamp.
    pub commit_ts: Timestamp,
    /// The lowest prepare timestamp among the YES votes: a participant that has not
    /// acknowledged may still hold the transaction prepared and undecided, at or above
    /// it (after a restart, which does not log votes, the commit timestamp less one:
    /// see `Coordinator::prepare_floor`).
    pub lowest_prepare_ts: Timestamp,
    /// Whether its `Decision` was appended without holding back what follows (a
    /// parallel commit: `Effect::AppendNoBarrier`), so that it may not be durable yet:
    /// every COMMIT of it is then sent by `SendDurable`, never ahead of the `Decision`.
    pub unbarred: bool,
}

/// A transaction's state at its coordinator (see the module doc's "States").
#[derive(Clone, Debug)]
pub(super) enum TxnState {
    /// Begun in this incarnation; reading and writing at its participants.
    Begun,
    /// Phase 1 of a commit: PREPARE sent, votes coming in.
    Collecting(Collecting),
    /// Committing in one phase at its only participant.
    OnePhase(OnePhase),
    /// Committed, with acknowledgements outstanding.
    Decided(Decided),
    /// Staged before a crash, with no outcome logged: its participants are asked.
    Resolving(Resolving),
}

impl Coordinator {
    /// Ends phase 1 of `tid`, if it is in it, leaving no state for now.
    pub(super) fn take_collecting(&mut self, tid: TxnId) -> Option<Collecting> {
        match self.txns.remove(&tid)? {
            TxnState::Collecting(collecting) => Some(collecting),
            other => {
                self.txns.insert(tid, other);
                None
            }
        }
    }

    /// Ends the one-phase commit of `tid`, if it is in one, leaving no state.
    pub(super) fn take_one_phase(&mut self, tid: TxnId) -> Option<OnePhase> {
        match self.txns.remove(&tid)? {
            TxnState::OnePhase(one_phase) => Some(one_phase),
            other => {
                self.txns.insert(tid, other);
                None
            }
        }
    }

    /// The decided transactions, by id.
    pub(super) fn decisions(&self) -> impl Iterator<Item = (TxnId, &Decided)> {
        self.txns.iter().filter_map(|(tid, state)| match state {
            TxnState::Decided(decided) => Some((*tid, decided)),
            _ => None,
        })
    }

    /// The transactions in phase 1, by id.
    pub(super) fn collecting(&self) -> impl Iterator<Item = (TxnId, &Collecting)> {
        self.txns.iter().filter_map(|(tid, state)| match state {
            TxnState::Collecting(collecting) => Some((*tid, collecting)),
            _ => None,
        })
    }
}
#[cfg(test)]
impl Coordinator {
    /// Checks each state's own invariants: a transaction is in one state by construction.
    pub(super) fn check_invariants(&self) -> Result<(), String> {
        for (tid, state) in &self.txns {
            let live = tid.coordinator(self.nodes) == self.node
                && (self.live_from..self.counter).contains(&tid.counter(self.nodes));
            match state {
                TxnState::Begun | TxnState::Collecting(_) | TxnState::OnePhase(_) if !live => {
                    return Err(format!("{tid} is open, yet not begun in this incarnation"));
                }
                TxnState::Collecting(collecting) => {
                    let voted = collecting.yes.iter().chain(&collecting.read_only);
                    let counted: BTreeSet<NodeId> = voted.copied().collect();
                    let all: BTreeSet<NodeId> = collecting.participants.iter().copied().collect();
                    let mut seen = counted.clone();
                    seen.extend(&collecting.votes_pending);
                    if collecting.votes_pending.is_empty()
                        || seen != all
                        || counted.len() != collecting.yes.len() + collecting.read_only.len()
                        || counted
                            .iter()
                            .any(|node| collecting.votes_pending.contains(node))
                    {
                        return Err(format!("{tid} collects inconsistent votes: {collecting:?}"));
                    }
                }
                TxnState::Resolving(resolving) if resolving.participants.is_empty() => {
                    return Err(format!("{tid} is resolved with no participants"));
                }
                TxnState::Decided(decided) if decided.unacked.is_empty() => {
                    return Err(format!("{tid} is decided with every ack in"));
                }
                _ => {}
            }
        }
        if self.counter > self.lease {
            return Err(format!(
                "counter {} beyond the lease {}",
                self.counter, self.lease
            ));
        }
        Ok(())
    }
}
