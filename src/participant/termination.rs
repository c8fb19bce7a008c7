//! How a participant's transactions end other than by their coordinator's outcome
//! message: a coordinator that restarted, a deadlock victim, an outcome overdue (the
//! in-doubt participant asks its coordinator and its peers: cooperative termination, in
//! the module doc above), and recovery re-creating what was in doubt. Two teaching
//! mistakes end transactions wrongly here, on purpose (`SET mistake`, never the
//! default): [`Participant::forget_in_doubt`] and [`Participant::release_read_locks`].

use super::{Participant, Prepared, TxnState};
use crate::lock::{Acquire, LockMode};
use crate::message::{Effect, Message};
use crate::types::{NodeId, TxnId};
use std::time::Duration;

impl Participant {
    /// A node finished recovery: if it coordinated transactions active here, they are dead;
    /// if it coordinates transactions in doubt here, ask it again.
    pub fn peer_restarted(&mut self, peer: NodeId, live_from: u64, out: &mut Vec<Effect>) {
        self.live_from.insert(peer, live_from);
        let nodes = self.nodes;
        let before = |tid: TxnId| tid.counter(nodes) < live_from;
        let dead: Vec<TxnId> = (self.txns.live())
            .filter(|(tid, state)| {
                matches!(state, TxnState::Active(_))
                    && tid.coordinator(nodes) == peer
                    && before(*tid)
            })
            .map(|(tid, _)| tid)
            .collect();
        for tid in dead {
            let reason =
                format!("its coordinator node {peer} crashed before deciding it, which aborts it");
            self.abort_here(tid, reason, out);
        }
        // A restarted coordinator sends no outcome to read-only voters (it logs none for
        // them): whatever it decided, their part is over.
        let ended: Vec<TxnId> = (self.txns.live())
            .filter(|(tid, state)| {
                matches!(state, TxnState::ReadOnlyVoted { coordinator } if *coordinator == peer)
                    && before(*tid)
            })
            .map(|(tid, _)| tid)
            .collect();
        for tid in ended {
            self.txns.take(tid);
            let grants = self.locks.release_all(tid);
            self.granted(grants, out);
        }
        for (tid, prepared) in self.in_doubt() {
            if prepared.coordinator == peer {
                out.push(Effect::Send {
                    to: peer,
                    message: Message::Inquire { tid },
                });
            }
        }
        // Settled by hand here: the real decision is still wanted, to compare.
        for (tid, heuristic) in &self.heuristics {
            if heuristic.coordinator == peer {
                out.push(Effect::Send {
                    to: peer,
                    message: Message::Inquire { tid: *tid },
                });
            }
        }
    }

    /// The deadlock detector chose `tid` as a victim while it waits here.
    pub fn deadlock_victim(&mut self, tid: TxnId, cycle: &[TxnId], out: &mut Vec<Effect>) {
        let waiting =
            matches!(self.txns.get(&tid), Some(TxnState::Active(a)) if a.pending.is_some());
        if !waiting {
            return;
        }
        let path: Vec<String> = cycle.iter().map(TxnId::to_string).collect();
        let reason = format!(
            "deadlock {}; {tid} began last of them, so it was chosen as the victim",
            path.join(" -> ")
        );
        self.abort_here(tid, reason, out);
        let cycle = cycle.to_vec();
        out.push(Effect::VictimAborted { tid, cycle });
    }

    /// Time passed: ask again about transactions whose outcome is overdue, and announce
    /// a restart again to the peers that have not answered it.
    pub fn tick(&mut self, now: Duration, inquiry_interval: Duration, out: &mut Vec<Effect>) {
        self.rejoin_tick(now, inquiry_interval, out);
        let mut overdue = Vec::new();
        for tid in self.txns.live_ids() {
            if let Some(prepared) = self.txns.prepared_mut(&tid)
                && now >= prepared.next_inquiry
            {
                prepared.next_inquiry = now.saturating_add(inquiry_interval);
                overdue.push(tid);
            }
        }
        for tid in overdue {
            self.inquire(tid, out);
        }
    }

    /// Asks the coordinator, and every other participant, for an in-doubt outcome.
    fn inquire(&self, tid: TxnId, out: &mut Vec<Effect>) {
        let Some(TxnState::Prepared(prepared)) = self.txns.get(&tid) else {
            return;
        };
        let message = Message::Inquire { tid };
        out.push(Effect::Send {
            to: prepared.coordinator,
            message,
        });
        for peer in &prepared.participants {
            if *peer != self.node && *peer != prepared.coordinator {
                out.push(Effect::Send {
                    to: *peer,
                    message: Message::Inquire { tid },
                });
            }
        }
    }

    /// A peer in doubt asks what this node knows of `tid` (cooperative termination).
    pub fn peer_inquire(&mut self, from: NodeId, tid: TxnId, out: &mut Vec<Effect>) {
        if self.heuristics.contains_key(&tid) {
            // Settled by hand: a guess, not the outcome; it is not spread (`heuristic`).
            return;
        }
        let answer = match self.txns.get(&tid) {
            Some(TxnState::Active(_)) => {
                let reason = format!("node {from} was in doubt about it before it voted here");
                self.abort_here(tid, reason, out);
                Some(Message::Abort { tid })
            }
            Some(TxnState::Aborted { .. }) => Some(Message::Abort { tid }),
            Some(TxnState::Committed { commit_ts }) => Some(Message::Commit {
                tid,
                commit_ts: *commit_ts,
            }),
            // In doubt too, or it only read here, or unknown: nothing to tell.
            Some(TxnState::Prepared(_) | TxnState::ReadOnlyVoted { .. }) | None => None,
        };
        if let Some(message) = answer {
            out.push(Effect::Send { to: from, message });
        }
    }

    /// Recovery: re-creates a transaction prepared and undecided, re-locking its writes
    /// before the node serves anyone, and asks its coordinator for the outcome.
    pub fn restore_in_doubt(
        &mut self,
        tid: TxnId,
        mut prepared: Prepared,
        now: Duration,
        out: &mut Vec<Effect>,
    ) {
        for (key, _) in &prepared.writes {
            let granted = self.locks.acquire(tid, key, LockMode::Exclusive);
            assert_eq!(
                granted,
                Acquire::Granted,
                "in-doubt writes cannot conflict at recovery"
            );
        }
        prepared.next_inquiry = now;
        self.mark_prepared(tid, prepared);
        self.mark_recovered(tid);
        self.inquire(tid, out);
    }

    /// Teaching mistake `forget-in-doubt` (never the default), at recovery: a `Prepare`
    /// with no outcome is taken for aborted, logged so, and its coordinator never asked,
    /// though it may have committed (and the other participants with it).
    pub fn forget_in_doubt(&mut self, tid: TxnId, out: &mut Vec<Effect>) {
        out.push(Effect::Append(crate::wal::Record::Abort { tid }));
        let reason = format!(
            "node {} forgot it in doubt at its restart (teaching mistake forget-in-doubt)",
            self.node
        );
        out.push(Effect::Narrate(format!(
            "{tid} in doubt (prepared, no outcome logged), but dropped as if aborted, \
             without asking its coordinator (the teaching mistake forget-in-doubt); node {} \
             logs Abort",
            self.node
        )));
        self.txns.put(tid, TxnState::Aborted { reason });
    }

    /// Teaching mistake `release-read-locks-at-prepare` (never the default): `tid`'s
    /// shared locks go once it has voted, before the outcome tells the commit timestamp,
    /// so a writer of what it read can commit below it.
    pub fn release_read_locks(&mut self, tid: TxnId, out: &mut Vec<Effect>) {
        if matches!(
            self.txns.get(&tid),
            Some(TxnState::Prepared(_) | TxnState::ReadOnlyVoted { .. })
        ) {
            let grants = self.locks.release_shared(tid);
            self.granted(grants, out);
        }
    }
}
