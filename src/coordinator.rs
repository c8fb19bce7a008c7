//! The coordinator: the role a node plays for the transactions its clients begin.
//!
//! # Protocol (presumed abort)
//!
//! `BEGIN` allocates an id (see `types`): ids come from blocks of the coordinator's counter
//! reserved by a forced `TidLease` record, so no id is reused after a restart. A client
//! may send its first read or write with the BEGIN (`Request::BeginAnd`): the coordinator
//! then hands the operation, now with its id, to the key's owner, which answers the
//! client, so beginning costs the client no round trip of its own.
//!
//! `COMMIT` names the participants the client touched:
//! - none: committed at once;
//! - one: the participant commits in one phase (it alone decides, in one forced record),
//!   and the coordinator relays its outcome. If none comes by the vote timeout (the
//!   participant crashed, or the request reached it while it was down), the client is
//!   told the participant is down and the outcome unknown: the coordinator cannot abort
//!   what the participant alone may have committed, and must not leave the client waiting
//!   for an answer that will never come;
//! - more: phase 1 sends PREPARE to each and collects votes until the vote timeout.
//!   Every vote YES or READ-ONLY: the coordinator appends a forced `Decision` record
//!   (commit, the YES voters, a commit timestamp above every prepare timestamp) and only
//!   after the fsync sends COMMIT to the YES voters and answers the client. READ-ONLY
//!   voters get COMMIT too, which only ends their read locks: they log nothing and do not
//!   acknowledge, and the decision record does not name them (if the coordinator crashes
//!   first, its `Restarted` ends them). Any NO or a timeout: ABORT goes to every participant and
//!   nothing is logged: a transaction with no decision record is aborted, so a participant
//!   that asks about it later is told ABORT (presumed abort).
//! - When every YES voter has acknowledged, a lazy `End` lets recovery forget the decision.
//!
//! An inquiry about a transaction still collecting votes is not answered: the decision
//! will be sent to every participant when it is made, so the coordinator never answers
//! ABORT and commits later. An inquiry about a transaction it does not know is answered
//! ABORT: a committed transaction is forgotten only after every participant acknowledged,
//! and such a participant is no longer in doubt.
//!
//!
//! A `Decision` without `End` is re-sent to its participants until each acknowledges.
//! Transactions begun but not decided before the crash are dead: the restarted node's
//! `Restarted { live_from }` tells participants to abort their workspaces, and a late
//! COMMIT request for one is refused.
//!
//! A participant's `Restarted` aborts every transaction still collecting votes whose
//! vote from it was counted: that vote vouched for locks the crash lost. The coordinator
//! then answers `RestartAck`, and the restarted node serves no locking operation until
//! every peer has answered (see `participant`'s "Restarts" for why that is enough).

use crate::clock::Lamport;
use crate::crash::CrashPoint;
use crate::error::Error;
use crate::message::{Answer, Effect, Message, Reply, ReqId, Request, Vote};
use crate::types::{NodeId, Timestamp, TxnId};
use crate::wal::Record;
pub use state::Decided;
use state::{Collecting, OnePhase, Resolving, TxnState};
use std::collections::BTreeMap;
use std::time::Duration;

/// How many transaction counters one `TidLease` record reserves.
pub const LEASE_BLOCK: u64 = 1000;

/// The coordinator role of one node.
#[derive(Clone, Debug)]
pub struct Coordinator {
    node: NodeId,
    nodes: u32,
    /// The next counter to hand out.
    counter: u64,
    /// Counters below this are reserved in the log.
    lease: u64,
    /// The first counter of this incarnation.
    live_from: u64,
    /// Every transaction not finished here, in its one state. A transaction committed
    /// without participants, aborted, relayed from its one phase, or committed with
    /// every acknowledgement in has no entry.
    txns: BTreeMap<TxnId, TxnState>,
}

impl Coordinator {
    /// A coordinator whose log reserved counters below `lease` and still owes these
    /// decisions to their participants.
    pub fn new(node: NodeId, nodes: u32, lease: u64, decided: BTreeMap<TxnId, Decided>) -> Self {
        Coordinator::recovered(node, nodes, lease, decided, BTreeMap::new())
    }

    /// As [`Coordinator::new`], with staged transactions (parallel commits) whose log
    /// shows no outcome: their participants will be asked (`resend_decisions`).
    pub fn recovered(
        node: NodeId,
        nodes: u32,
        lease: u64,
        decided: BTreeMap<TxnId, Decided>,
        staged: BTreeMap<TxnId, Vec<NodeId>>,
    ) -> Self {
        let decided = (decided.into_iter()).map(|(tid, decided)| (tid, TxnState::Decided(decided)));
        let staged = (staged.into_iter())
            .map(|(tid, participants)| (tid, TxnState::Resolving(Resolving::new(participants))));
        Coordinator {
            node,
            nodes,
            counter: lease,
            lease,
            live_from: lease,
            txns: decided.chain(staged).collect(),
        }
    }

    /// The first counter of this incarnation.
    pub fn live_from(&self) -> u64 {
        self.live_from
    }

    /// The counter lease, for checkpoints.
    pub fn lease(&self) -> u64 {
        self.lease
    }

    /// Recovery: re-send every decision not yet acknowledged, and ask the participants
    /// of every staged transaction with no outcome whether they prepared.
    pub fn resend_decisions(&self, out: &mut Vec<Effect>) {
        self.query_staged(out);
        for (tid, decided) in self.decisions() {
            for participant in &decided.unacked {
                out.push(send_commit(tid, decided, *participant));
            }
        }
    }

    /// The lowest timestamp at which a transaction this node coordinates may be
    /// prepared and undecided at a participant: one still collecting votes, at or above
    /// the clock PREPARE carried; a committed one not yet acknowledged by all, at or
    /// above its lowest YES vote. A participant that dies with the transaction prepared
    /// cannot say so while it is down, but its coordinator can (`node::floors`).
    ///
    /// A decision recovered from the log has no votes: it counts at its commit
    /// timestamp less one, which may lie above a participant's prepare; a read there
    /// between the two waits for the decision, which recovery re-sends at once.
    pub fn prepare_floor(&self) -> Option<Timestamp> {
        let collecting = self.collecting().map(|(_, c)| c.asked_at);
        let decided = self.decisions().map(|(_, d)| d.lowest_prepare_ts);
        collecting.chain(decided).min()
    }

    /// BEGIN: allocate an id. `began` is the client's stamp of when it began, which
    /// the transaction's lock waits carry to the deadlock detector.
    pub fn begin(&mut self, req: ReqId, began: u64, out: &mut Vec<Effect>) {
        let tid = self.allocate(out);
        reply(out, req, Ok(Answer::Begun(tid, began)));
    }

    /// BEGIN with the first operation, `then`: allocate an id, tell the client, and hand
    /// the operation to `owner`, which answers the client.
    pub fn begin_and(
        &mut self,
        req: ReqId,
        owner: NodeId,
        then: Request,
        began: u64,
        out: &mut Vec<Effect>,
    ) {
        let tid = self.allocate(out);
        let Some(request) = then.first_of(tid, began) else {
            self.txns.remove(&tid);
            let error =
                Error::InvalidInput("only a read or a write can begin a transaction".into());
            return reply(out, req, Err(error));
        };
        out.push(Effect::Reply {
            req,
            reply: Reply::Begun(tid, began),
        });
        out.push(Effect::Forward {
            req,
            to: owner,
            request,
        });
    }

    /// Allocates a transaction id, reserving a new block of counters first if needed.
    fn allocate(&mut self, out: &mut Vec<Effect>) -> TxnId {
        if self.counter >= self.lease {
            self.lease = self.counter + LEASE_BLOCK;
            out.push(Effect::Append(Record::TidLease { upto: self.lease }));
        }
        let tid = TxnId::new(self.node, self.counter, self.nodes);
        self.counter += 1;
        self.txns.insert(tid, TxnState::Begun);
        tid
    }

    /// The client's COMMIT of `tid`, which touched `participants`.
    pub fn commit(
        &mut self,
        req: ReqId,
        tid: TxnId,
        participants: Vec<NodeId>,
        (deadline, clock, parallel): (Duration, Timestamp, bool),
        out: &mut Vec<Effect>,
    ) {
        if !matches!(self.txns.get(&tid), Some(TxnState::Begun)) {
            send_abort(&participants, tid, out);
            return reply(out, req, Err(self.not_live(tid)));
        }
        match participants.as_slice() {
            // Nothing was touched: nothing to order, so no timestamp to report.
            [] => {
                self.txns.remove(&tid);
                let committed = Answer::Committed {
                    at: 0,
                    serial_ts: 0,
                };
                reply(out, req, Ok(committed));
            }
            [only] => {
                let one_phase = OnePhase {
                    req,
                    participant: *only,
                    deadline,
                };
                self.txns.insert(tid, TxnState::OnePhase(one_phase));
                out.push(Effect::Send {
                    to: *only,
                    message: Message::CommitOnePhase { tid },
                });
            }
            _ => {
                if parallel {
                    self.stage(tid, &participants, clock, out);
                }
                for participant in participants.iter().filter(|_| !parallel) {
                    let message = Message::Prepare {
                        tid,
                        participants: participants.clone(),
                    };
                    out.push(Effect::Send {
                        to: *participant,
                        message,
                    });
                }
                let collecting = Collecting {
                    req,
                    votes_pending: participants.iter().copied().collect(),
                    participants,
                    yes: Vec::new(),
                    read_only: Vec::new(),
                    max_prepare_ts: 0,
                    min_prepare_ts: Timestamp::MAX,
                    asked_at: clock,
                    deadline,
                    staged: parallel,
                };
                self.txns.insert(tid, TxnState::Collecting(collecting));
            }
        }
    }

    fn not_live(&self, tid: TxnId) -> Error {
        let reason = if tid.counter(self.nodes) < self.live_from {
            format!(
                "coordinator node {} crashed and restarted since it began",
                self.node
            )
        } else {
            format!(
                "coordinator node {} has no open transaction {tid}",
                self.node
            )
        };
        Error::Aborted { tid, reason }
    }

    /// The client's ABORT of `tid`.
    pub fn abort(
        &mut self,
        req: ReqId,
        tid: TxnId,
        participants: Vec<NodeId>,
        out: &mut Vec<Effect>,
    ) {
        match self.txns.get(&tid) {
            Some(TxnState::Begun) => {
                self.txns.remove(&tid);
            }
            // Unknown: never begun here, or ended, or begun before a restart; what the
            // participants hold of it is theirs to drop.
            None => {}
            // Its commit is under way: the participants may have voted yes to it, and
            // only its decision may end it. (A client does not abort what it asked to
            // commit; a stray abort, such as a dead client's, must not either.)
            Some(_) => {
                let reason = format!("its commit is under way at coordinator node {}", self.node);
                return reply(
                    out,
                    req,
                    Err(Error::InvalidInput(format!(
                        "{tid} cannot be aborted: {reason}"
                    ))),
                );
            }
        }
        send_abort(&participants, tid, out);
        reply(out, req, Ok(Answer::Done));
    }

    /// A participant's vote.
    pub fn vote(
        &mut self,
        from: NodeId,
        tid: TxnId,
        vote: Vote,
        clock: &mut Lamport,
        out: &mut Vec<Effect>,
    ) {
        let Some(TxnState::Collecting(collecting)) = self.txns.get_mut(&tid) else {
            return;
        };
        if !collecting.votes_pending.remove(&from) {
            return;
        }
        match vote {
            Vote::Yes { prepare_ts } => {
                collecting.yes.push(from);
                collecting.max_prepare_ts = collecting.max_prepare_ts.max(prepare_ts);
                collecting.min_prepare_ts = collecting.min_prepare_ts.min(prepare_ts);
            }
            Vote::ReadOnly => collecting.read_only.push(from),
            Vote::No { reason } => {
                return self.abort_collecting(tid, format!("node {from} voted NO: {reason}"), out);
            }
        }
        if collecting.votes_pending.is_empty() {
            self.decide_commit(tid, clock, out);
        }
    }

    /// Every vote is YES or READ-ONLY: log the decision, then send it to the YES voters in
    /// node order (so a crash part-way through the broadcast is the same every run).
    fn decide_commit(&mut self, tid: TxnId, clock: &mut Lamport, out: &mut Vec<Effect>) {
        let Some(collecting) = self.take_collecting(tid) else {
            return;
        };
        if collecting.staged {
            return self.decide_staged(tid, collecting, clock, out);
        }
        let mut read_only = collecting.read_only;
        read_only.sort_unstable();
        if collecting.yes.is_empty() {
            // Nothing was written: nothing to decide durably, only the read locks to end.
            // Its read locks go with this timestamp, so later writes commit above it.
            release_read_only(&read_only, tid, clock.now(), out);
            let at = clock.now();
            let committed = Answer::Committed { at, serial_ts: at };
            return reply(out, collecting.req, Ok(committed));
        }
        out.push(Effect::CrashPoint(CrashPoint::Decide));
        let commit_ts = clock.tick_past(collecting.max_prepare_ts);
        let mut participants = collecting.yes;
        participants.sort_unstable();
        let lowest = collecting.min_prepare_ts;
        self.log_and_send_decision(tid, participants, (commit_ts, lowest), false, out);
        release_read_only(&read_only, tid, commit_ts, out);
        let committed = Answer::Committed {
            at: commit_ts,
            serial_ts: commit_ts,
        };
        reply(out, collecting.req, Ok(committed));
    }

    /// Logs the commit decision, then sends it to the YES voters in node order.
    /// Logs the `Decision` and sends the COMMITs. `unbarred` (a parallel commit, whose
    /// client was told already): the record holds back only its COMMITs, not what the
    /// node says after it (see `Effect::AppendNoBarrier`).
    fn log_and_send_decision(
        &mut self,
        tid: TxnId,
        participants: Vec<NodeId>,
        (commit_ts, lowest_prepare_ts): (Timestamp, Timestamp),
        unbarred: bool,
        out: &mut Vec<Effect>,
    ) {
        let record = Record::Decision {
            tid,
            participants: participants.clone(),
            commit_ts,
        };
        out.push(match unbarred {
            true => Effect::AppendNoBarrier(record),
            false => Effect::Append(record),
        });
        out.push(Effect::CrashPoint(CrashPoint::Decision));
        let unacked = participants.iter().copied().collect();
        let decided = Decided {
            participants,
            unacked,
            commit_ts,
            lowest_prepare_ts,
            unbarred,
        };
        for (index, participant) in decided.participants.iter().enumerate() {
            out.push(send_commit(tid, &decided, *participant));
            if index == 0 {
                out.push(Effect::CrashPoint(CrashPoint::Broadcast));
            }
        }
        self.txns.insert(tid, TxnState::Decided(decided));
    }

    fn abort_collecting(&mut self, tid: TxnId, reason: String, out: &mut Vec<Effect>) {
        let Some(collecting) = self.take_collecting(tid) else {
            return;
        };
        if collecting.staged {
            return self.abort_staged(tid, collecting, reason, out);
        }
        send_abort(&collecting.participants, tid, out);
        reply(out, collecting.req, Err(Error::Aborted { tid, reason }));
    }

    /// A participant logged the commit.
    pub fn ack(&mut self, from: NodeId, tid: TxnId, out: &mut Vec<Effect>) {
        let Some(TxnState::Decided(decided)) = self.txns.get_mut(&tid) else {
            return;
        };
        decided.unacked.remove(&from);
        if decided.unacked.is_empty() {
            self.txns.remove(&tid);
            out.push(Effect::Append(Record::End { tid }));
        }
    }

    /// The only participant's one-phase outcome, committed at `at` (see
    /// `Message::OnePhaseOutcome`).
    pub fn one_phase_outcome(
        &mut self,
        tid: TxnId,
        aborted: Option<String>,
        at: Timestamp,
        clock: Lamport,
        out: &mut Vec<Effect>,
    ) {
        let Some(OnePhase { req, .. }) = self.take_one_phase(tid) else {
            return;
        };
        let result = match aborted {
            // The participant's message moved the clock past its commit timestamp.
            None => Ok(Answer::Committed {
                at: clock.now(),
                serial_ts: at,
            }),
            Some(reason) => Err(Error::Aborted { tid, reason }),
        };
        reply(out, req, result);
    }

    /// An in-doubt participant asks for the outcome. With no record of the transaction
    /// the answer is ABORT (presumed abort), unless `presume_commit` carries the clock
    /// of the teaching mistake `presume-commit-without-log` (never the default), which
    /// answers COMMIT at a fresh timestamp.
    pub fn inquire(
        &mut self,
        from: NodeId,
        tid: TxnId,
        presume_commit: Option<&mut Lamport>,
        out: &mut Vec<Effect>,
    ) {
        let message = match (self.txns.get(&tid), presume_commit) {
            (Some(TxnState::Decided(decided)), _) => {
                return out.push(send_commit(tid, decided, from));
            }
            // The decision will be sent to every participant when it is made.
            (Some(TxnState::Collecting(_)), _) => return,
            // A staged transaction being resolved is answered once it is resolved.
            (Some(TxnState::Resolving(_)), _) => return,
            // Teaching mistake (presume-commit-without-log): no record is taken for a
            // commit, though this coordinator may have aborted and forgotten it.
            (None, Some(clock)) => Message::Commit {
                tid,
                commit_ts: clock.tick_past(0),
            },
            (Some(TxnState::Begun | TxnState::OnePhase(_)) | None, _) => Message::Abort { tid },
        };
        out.push(Effect::Send { to: from, message });
    }

    /// A participant restarted: abort every transaction still collecting votes that
    /// counted its vote, and re-send the decisions it has not acknowledged.
    ///
    /// A YES or READ-ONLY vote promises that the voter holds the transaction's locks
    /// until the outcome; the restarted voter holds none of its read locks (a READ-ONLY
    /// voter, nothing at all), so a conflicting writer could take them and commit below
    /// the commit timestamp this transaction would get (see `participant`). A vote still
    /// pending from it is no promise: the new incarnation votes NO, having lost the
    /// workspace, or never receives the PREPARE and the vote times out. Messages between
    /// two nodes arrive in order, so every vote of the old incarnation that reaches this
    /// node at all was counted before this announcement; and no vote of the new one is
    /// counted yet: it announces (and announces again) only before it serves any locking
    /// operation, so before any vote of its own.
    pub fn peer_restarted(&mut self, peer: NodeId, out: &mut Vec<Effect>) {
        let vouched: Vec<TxnId> = (self.collecting())
            .filter(|(_, collecting)| {
                collecting.yes.contains(&peer) || collecting.read_only.contains(&peer)
            })
            .map(|(tid, _)| tid)
            .collect();
        for tid in vouched {
            let reason = format!(
                "node {peer} crashed and restarted after it voted, losing the locks its vote \
                 promised to hold until the outcome"
            );
            self.abort_collecting(tid, reason, out);
        }
        self.requery_staged(peer, out);
        for (tid, decided) in self.decisions() {
            if decided.unacked.contains(&peer) {
                out.push(send_commit(tid, decided, peer));
            }
        }
    }

    /// Time passed: abort the transactions whose votes are overdue, and give up on
    /// one-phase outcomes that are.
    pub fn tick(&mut self, now: Duration, vote_timeout: Duration, out: &mut Vec<Effect>) {
        self.tick_one_phase(now, vote_timeout, out);
        let overdue: Vec<(TxnId, Vec<NodeId>)> = (self.collecting())
            .filter(|(_, collecting)| now >= collecting.deadline)
            .map(|(tid, collecting)| (tid, collecting.votes_pending.iter().copied().collect()))
            .collect();
        for (tid, silent) in overdue {
            let names: Vec<String> = silent.iter().map(|node| format!("node {node}")).collect();
            let reason = format!(
                "{} did not vote within {}",
                names.join(" and "),
                crate::clock::format_duration(vote_timeout)
            );
            self.abort_collecting(tid, reason, out);
        }
    }

    /// The only participant of a one-phase commit has not answered in time: it crashed
    /// (or was down when asked). It alone knows whether it logged the commit, so the
    /// client is told the outcome is unknown rather than left waiting forever.
    fn tick_one_phase(&mut self, now: Duration, vote_timeout: Duration, out: &mut Vec<Effect>) {
        let overdue: Vec<TxnId> = (self.txns.iter())
            .filter(|(_, state)| {
                matches!(state, TxnState::OnePhase(one_phase) if now >= one_phase.deadline)
            })
            .map(|(tid, _)| *tid)
            .collect();
        for tid in overdue {
            let Some(OnePhase {
                req, participant, ..
            }) = self.take_one_phase(tid)
            else {
                continue;
            };
            let detail = format!(
                "it did not answer the one-phase commit of {tid} within {}; {tid} committed \
                 if node {participant} logged it before it crashed: read its keys once it is \
                 back",
                crate::clock::format_duration(vote_timeout)
            );
            let error = Error::NodeDown {
                node: participant,
                detail,
            };
            reply(out, req, Err(error));
        }
    }

    /// Commit decisions not yet acknowledged, for checkpoints and status (a copy: they
    /// live in the state map).
    pub fn decided(&self) -> BTreeMap<TxnId, Decided> {
        (self.decisions())
            .map(|(tid, decided)| (tid, decided.clone()))
            .collect()
    }

    /// Transactions begun here and not finished, sorted.
    pub fn open_transactions(&self) -> Vec<TxnId> {
        (self.txns.iter())
            .filter(|(_, state)| !matches!(state, TxnState::Decided(_) | TxnState::Resolving(_)))
            .map(|(tid, _)| *tid)
            .collect()
    }
}

/// Tells the READ-ONLY voters the transaction committed, which ends their part: they
/// release their read locks (no record, no acknowledgement). They are told only once
/// the commit timestamp is chosen, so that nothing serialized after the transaction can
/// take their keys and commit below it (see `participant`).
fn release_read_only(voters: &[NodeId], tid: TxnId, commit_ts: Timestamp, out: &mut Vec<Effect>) {
    for voter in voters {
        out.push(Effect::Send {
            to: *voter,
            message: Message::Commit { tid, commit_ts },
        });
    }
}

/// A COMMIT of a decided transaction to `to`: held behind the `Decision` by the
/// barrier rule, or, for a `Decision` appended without a barrier, by `SendDurable`.
fn send_commit(tid: TxnId, decided: &Decided, to: NodeId) -> Effect {
    let message = Message::Commit {
        tid,
        commit_ts: decided.commit_ts,
    };
    match decided.unbarred {
        true => Effect::SendDurable { to, message },
        false => Effect::Send { to, message },
    }
}

fn send_abort(participants: &[NodeId], tid: TxnId, out: &mut Vec<Effect>) {
    for participant in participants {
        out.push(Effect::Send {
            to: *participant,
            message: Message::Abort { tid },
        });
    }
}

fn reply(out: &mut Vec<Effect>, req: ReqId, result: Result<Answer, Error>) {
    out.push(Effect::Reply {
        req,
        reply: Reply::Done(result),
    });
}

mod parallel;
mod state;
#[cfg(test)]
mod tests;
