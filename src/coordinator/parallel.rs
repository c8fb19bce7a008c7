//! Parallel commits (`SET commit parallel`), after CockroachDB's (RFC
//! `20180324_parallel_commit.md`): the coordinator's side.
//!
//! # The commit condition
//!
//! Classic 2PC makes the client wait for two forced writes in sequence: every
//! participant's `Prepare`, then the coordinator's `Decision`. Here the coordinator
//! sends the PREPAREs first and only then appends a forced `Staged { tid, participants }`
//! record, so the participants' fsyncs and the coordinator's run at the same time (the
//! outbox holds a message only behind barrier records appended *before* it, so the
//! PREPAREs do not wait for `Staged`). The transaction is **committed** once `Staged` and
//! every participant's `Prepare` are durable, and no `StagedAbort` was forced before:
//! that is a fact of what is on disk, which recovery can check, not a decision anyone
//! has to remember. The client is told COMMIT when the last YES vote arrives: the reply
//! is appended after `Staged`, so the outbox lets it out only once `Staged` is durable,
//! and each YES left its participant only once its `Prepare` was. A participant that
//! only read forces an empty `Prepare` and votes YES (`Message::PrepareStaged`), since
//! "all prepared" must be checkable for every participant named in `Staged`.
//!
//! The commit timestamp is `max(prepare_ts) + 1`, which recovery derives again from the
//! participants' durable `Prepare` records. It is above every version those
//! participants hold (a prepare timestamp is a participant's clock, at or above every
//! commit it applied, and above the clock the client's COMMIT carried, since PREPARE
//! carried the coordinator's clock that observed it).
//!
//! # After the client is told
//!
//! The `Decision` record and the COMMIT messages follow off the client's path. The
//! `Decision` is appended without a barrier (`Effect::AppendNoBarrier`): it holds back
//! only what could make a participant commit, and that is every COMMIT of it (sent now,
//! in answer to an inquiry, or again to a restarted participant: `Decided::unbarred`,
//! all by `SendDurable`), so no participant applies a commit whose `Decision` could be
//! lost. Recovery then either finds a `Decision` (and re-sends it, as in classic) or a
//! `Staged` with no outcome, whose participants are all still prepared or refuse,
//! never half committed.
//!
//! Nothing else the node says depends on it: the client was told already, from
//! `Staged` and the votes, and the outcome it was told is fixed by what is on disk
//! whether or not the `Decision` survives. So the next commit's PREPAREs, its `Staged`
//! and everything else leave without waiting for this fsync, and the `Decision` rides
//! on the next fsync the node makes (or on the outbox's linger, 2 ms, when nothing
//! else comes): with one client, one forced write per commit on the coordinator's log
//! instead of two. The cost is that the participants hold their locks, and the
//! coordinator its state, until that fsync. Writing the COMMITs before the `Decision`
//! is durable would be safe for the outcome (the participants' `Prepare`s already make
//! it committed), but a participant that then committed and forgot the transaction
//! would answer a restarted coordinator's status query as one that never prepared.
//!
//! An abort of a staged transaction (a NO vote, the vote timeout, a voter restarted)
//! forces `StagedAbort` before any ABORT leaves or the client is told: otherwise a
//! crash could leave `Staged` and every `Prepare` durable, which recovery would read as
//! committed.
//!
//! # Status resolution
//!
//! A restarted coordinator that finds `Staged` with neither `Decision` nor `StagedAbort`
//! does not know whether every participant prepared durably. It sends `StatusQuery` to
//! every participant (again to one that announces a restart later). A participant that
//! holds the transaction prepared answers so (only once its `Prepare` is durable, by the
//! outbox rule); one that has not prepared forces a `Refused` tombstone first and votes
//! NO on that transaction's PREPARE forever (`participant::status`), so its answer
//! cannot be overtaken by a late PREPARE. All prepared: committed at `max(prepare_ts) +
//! 1`, logged as a `Decision` and sent as in classic. Any refusal: aborted,
//! `StagedAbort` forced, ABORT sent. An inquiry from an in-doubt participant about a
//! transaction being resolved is not answered until it is resolved.
//!
//! # The restarted coordinator's clock
//!
//! The commit timestamp recovery assigns comes from the participants' answers, not from
//! the coordinator's own clock, which restarts at the highest timestamp in its own log
//! and may be below it. Every message carries its sender's clock and every receipt
//! moves the receiver's up (`Input::Peer`), so by the time the last `Status` is
//! handled the clock is at or above every prepare timestamp; `status` also moves it to
//! the commit timestamp itself, so that what the node does next (a later transaction it
//! coordinates, a reply's `at`) is ordered after the commit it just resolved.
//!
//! # Crash points
//!
//! `staging` (the PREPAREs sent, `Staged` not appended: a crash leaves nothing on the
//! coordinator's disk, so the transaction aborts by presumed abort whatever the
//! participants did) and `staged` (every vote in and the client told, the `Decision`
//! not appended: on disk `Staged` and every `Prepare`, so recovery must commit it).
//! `decide` is never passed: nothing is left to decide once the votes are in.
//! `tests/crash_matrix.rs` runs every point in both modes.
//!
//! # Limits
//!
//! A participant that stays down blocks resolution, as an in-doubt participant blocks
//! in classic 2PC. `Refused` tombstones are not carried by checkpoints: a node that
//! checkpointed since knows the transaction not at all, which refuses its PREPARE too
//! (an unknown transaction votes NO). A `Staged` record is carried by checkpoints while
//! the transaction is undecided.

use super::state::{Collecting, Resolving, TxnState};
use super::{Coordinator, reply, send_abort};
use crate::clock::Lamport;
use crate::crash::CrashPoint;
use crate::error::Error;
use crate::message::{Answer, Effect, Message, StagedStatus};
use crate::types::{NodeId, Timestamp, TxnId};
use crate::wal::Record;

impl Coordinator {
    /// Phase 1 of a staged commit: the PREPAREs first, then the forced `Staged` record.
    /// `clock` is this node's clock now, which every participant's prepare timestamp
    /// will be at or above: the PREPAREs carry it (see `Message::PrepareStaged`).
    pub(super) fn stage(
        &self,
        tid: TxnId,
        participants: &[NodeId],
        clock: Timestamp,
        out: &mut Vec<Effect>,
    ) {
        for participant in participants {
            let message = Message::PrepareStaged {
                tid,
                participants: participants.to_vec(),
                floor: clock,
            };
            out.push(Effect::Send {
                to: *participant,
                message,
            });
        }
        out.push(Effect::CrashPoint(CrashPoint::Staging));
        out.push(Effect::Append(Record::Staged {
            tid,
            participants: participants.to_vec(),
        }));
    }

    /// Every vote of a staged transaction is in: it is committed. The client is told
    /// first (its reply waits for `Staged` only), then the `Decision` is appended without
    /// a barrier and the COMMITs wait for it alone (see the module doc).
    pub(super) fn decide_staged(
        &mut self,
        tid: TxnId,
        collecting: Collecting,
        clock: &mut Lamport,
        out: &mut Vec<Effect>,
    ) {
        let commit_ts = collecting.max_prepare_ts + 1;
        clock.observe(commit_ts);
        let committed = Answer::Committed {
            at: commit_ts,
            serial_ts: commit_ts,
        };
        reply(out, collecting.req, Ok(committed));
        let mut read_only = collecting.read_only;
        read_only.sort_unstable();
        super::release_read_only(&read_only, tid, commit_ts, out);
        out.push(Effect::CrashPoint(CrashPoint::Staged));
        let mut participants = collecting.yes;
        participants.sort_unstable();
        let nobody_wrote = participants.is_empty();
        let timestamps = (commit_ts, collecting.min_prepare_ts);
        self.log_and_send_decision(tid, participants, timestamps, true, out);
        if nobody_wrote {
            // No YES voter owes an acknowledgement: the staged transaction ends here,
            // or `Staged` would stay in the log unresolved, and the state for good.
            self.txns.remove(&tid);
            out.push(Effect::Append(Record::End { tid }));
        }
    }

    /// A staged transaction aborts: `StagedAbort` is forced before anything says so.
    pub(super) fn abort_staged(
        &mut self,
        tid: TxnId,
        collecting: Collecting,
        reason: String,
        out: &mut Vec<Effect>,
    ) {
        out.push(Effect::Append(Record::StagedAbort { tid }));
        send_abort(&collecting.participants, tid, out);
        reply(out, collecting.req, Err(Error::Aborted { tid, reason }));
    }

    /// Recovery: ask every participant of each staged transaction with no outcome.
    pub(super) fn query_staged(&self, out: &mut Vec<Effect>) {
        for (tid, resolving) in self.resolving() {
            for participant in &resolving.pending {
                out.push(Effect::Send {
                    to: *participant,
                    message: Message::StatusQuery { tid },
                });
            }
        }
    }

    /// A restarted peer may have lost a `StatusQuery`: ask it again.
    pub(super) fn requery_staged(&self, peer: NodeId, out: &mut Vec<Effect>) {
        for (tid, resolving) in self.resolving() {
            if resolving.pending.contains(&peer) {
                out.push(Effect::Send {
                    to: peer,
                    message: Message::StatusQuery { tid },
                });
            }
        }
    }

    /// A participant's answer about a staged transaction being resolved.
    pub fn status(
        &mut self,
        from: NodeId,
        tid: TxnId,
        status: StagedStatus,
        clock: &mut Lamport,
        out: &mut Vec<Effect>,
    ) {
        let Some(TxnState::Resolving(resolving)) = self.txns.get_mut(&tid) else {
            return;
        };
        if !resolving.pending.remove(&from) {
            return;
        }
        match status {
            StagedStatus::Prepared { prepare_ts } => {
                resolving.max_prepare_ts = resolving.max_prepare_ts.max(prepare_ts);
                resolving.min_prepare_ts = resolving.min_prepare_ts.min(prepare_ts);
            }
            // Only a durable Decision lets a participant commit: it agrees.
            StagedStatus::Committed { commit_ts } => resolving.commit_ts = Some(commit_ts),
            StagedStatus::Refused => {
                let participants = resolving.participants.clone();
                self.txns.remove(&tid);
                out.push(Effect::Append(Record::StagedAbort { tid }));
                out.push(Effect::Narrate(format!(
                    "staged {tid} aborted: node {from} had not prepared it, and now refuses \
                     it for good"
                )));
                return send_abort(&participants, tid, out);
            }
        }
        if !resolving.pending.is_empty() {
            return;
        }
        let commit_ts = (resolving.commit_ts).unwrap_or(resolving.max_prepare_ts + 1);
        let (participants, lowest) = (resolving.participants.clone(), resolving.min_prepare_ts);
        self.txns.remove(&tid);
        clock.observe(commit_ts);
        out.push(Effect::Narrate(format!(
            "staged {tid} committed at ts {commit_ts}: every participant had prepared it"
        )));
        let timestamps = (commit_ts, lowest.min(commit_ts));
        self.log_and_send_decision(tid, participants, timestamps, false, out);
    }

    /// The staged transactions being resolved.
    pub(super) fn resolving(&self) -> impl Iterator<Item = (TxnId, &Resolving)> {
        self.txns.iter().filter_map(|(tid, state)| match state {
            TxnState::Resolving(resolving) => Some((*tid, resolving)),
            _ => None,
        })
    }

    /// `Staged` records a checkpoint must keep: staged transactions not yet decided.
    pub fn staged(&self) -> Vec<(TxnId, Vec<NodeId>)> {
        (self.txns.iter())
            .filter_map(|(tid, state)| match state {
                TxnState::Collecting(c) if c.staged => Some((*tid, c.participants.clone())),
                TxnState::Resolving(r) => Some((*tid, r.participants.clone())),
                _ => None,
            })
            .collect()
    }
}
