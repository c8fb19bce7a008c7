//! The participant: the role a node plays for the keys it owns.
//!
//! # Protocol
//!
//! A transaction's reads and writes arrive from its client. A read takes a shared lock and
//! sees the transaction's own buffered writes first; a write takes an exclusive lock and
//! is buffered in the transaction's workspace. A read *for update* (`GET k FOR UPDATE`)
//! takes the exclusive lock at once: a transaction that reads a key in order to write it
//! (an increment) would otherwise hold a shared lock and then upgrade it, and two of them
//! doing so on one key each wait for the other's shared lock, a deadlock every time; for
//! update, the second one simply waits at its read. Nothing reaches the log before PREPARE
//! (strict two-phase locking: every lock is held until the outcome is applied).
//!
//! On PREPARE the participant votes:
//! - **YES** if it still holds the workspace and it has writes: it appends a forced
//!   `Prepare` record (the writes, the coordinator, every participant) and only after the
//!   fsync does the vote leave. From here the transaction is **in doubt**: the
//!   participant may not decide alone, and asks the coordinator if no outcome comes.
//! - **READ-ONLY** if it only read: nothing is logged, and phase 2 needs nothing of it
//!   but the end: the coordinator's COMMIT (or ABORT) releases its locks, with no record
//!   and no acknowledgement.
//!
//! Either way, every lock (shared, exclusive, taken for update) is held until the
//! outcome arrives. Two-phase locking alone would allow releasing read locks at PREPARE,
//! past the transaction's lock point, but snapshot readers need more: commit timestamps
//! that follow the serialization order (see `store`). Were a read lock on `x` released at
//! PREPARE, a writer of `x` could commit, with a timestamp, before this transaction's
//! own (larger) commit timestamp was chosen, though it is serialized after it; a snapshot
//! between the two would see the writer without this transaction. Holding every lock
//! until the outcome (whose timestamp is chosen before it is sent) rules that out. A
//! participant that crashes keeps, of all its locks, only those of the writes it holds
//! in doubt (the `Prepare` record holds no reads; a READ-ONLY voter logs nothing):
//! "Restarts" below says why that does not reopen the window.
//! - **NO** if it has no workspace (it crashed since the transaction wrote there, or
//!   aborted it as a deadlock victim): a tombstone remembers why.
//!
//! On COMMIT it appends a forced `Commit`, applies the writes, releases the locks and
//! acknowledges. On ABORT it appends a lazy `Abort` (presumed abort: losing it is harmless,
//! recovery would ask and be told ABORT), drops the workspace and releases the locks.
//! A transaction with this node as its only participant commits in one phase: one forced
//! `OnePhaseCommit` record holds its writes and its outcome.
//!
//! # Cooperative termination
//!
//! An in-doubt participant asks its coordinator for the outcome, and also asks the other
//! participants named in its `Prepare` record, so it need not wait for a crashed
//! coordinator when a peer can settle it: a peer that committed (it remembers recent
//! commits) answers COMMIT; a peer that aborted, or that has not voted yet (it then aborts
//! at once, so it will vote NO), answers ABORT. A peer that is in doubt too, or does not
//! know the transaction, stays silent. Only if every participant voted YES and none heard
//! the decision does the transaction block until the coordinator returns: the blocking
//! window of 2PC, which cooperation narrows but cannot close.
//!
//! # Restarts: the locks a crash loses
//!
//! A restarted participant re-takes only the write locks of its in-doubt transactions.
//! The locks of active transactions are gone with their workspaces, which is harmless
//! (such a transaction votes NO here, or its next operation here is refused); but so are
//! the read locks of a transaction T1 that voted YES or READ-ONLY and awaits the outcome,
//! and that vote told the coordinator "I hold these until you decide". Were a writer T2
//! of a key T1 read here to take it now and commit (in one phase: a timestamp taken
//! now), and T1 be decided after (a larger timestamp), the timestamps would contradict
//! the serialization order T1 -> T2, and a snapshot between them would see T2 without T1.
//!
//! The rule, a handshake (`rejoin`): a restarted node announces `Restarted` to every peer
//! and admits no locking operation (snapshot reads, PREPAREs and outcomes go on; reads
//! and writes under locks are held, and run in order afterwards) until each peer has
//! answered `RestartAck` or is known to be down. A coordinator, when it handles the
//! announcement, first aborts every transaction still collecting votes that counted a
//! vote from the restarted node.
//!
//! Why that is enough. T2 locks a key here only after T1's coordinator C handled the
//! announcement (or was found down). Messages between two nodes arrive in order, so
//! every vote of this node's old incarnation that C ever receives, C handled before the
//! announcement. At that moment T1 was one of:
//! - decided: its commit timestamp was chosen already, and T2's, chosen after T2's lock,
//!   is larger (the counter only grows): the timestamps follow the order;
//! - collecting, with this node's vote counted: C aborts it;
//! - collecting, with the vote not counted: the vote is lost, so the new incarnation,
//!   which has no workspace for T1, votes NO if the PREPARE reaches it, and otherwise the
//!   vote times out: T1 aborts;
//! - unknown to C, which crashed since: with no `Decision` logged it is presumed aborted,
//!   and a peer that was down when the announcement was sent had nothing collecting.
//!
//! The handshake is what makes the coordinator's rule sound. Aborting on the
//! announcement alone would leave a race: this node could serve T2 before C handles the
//! announcement, and C could meanwhile decide T1 from a vote already in its inbox. The
//! restarted node cannot tell which of its votes were counted; only C can, in order.
//! Logging the read set in the `Prepare` record, so that recovery re-takes it, would
//! cover only YES voters: a READ-ONLY voter logs nothing, and forcing a record for each
//! would cost every read-only participant an fsync.
//!
//! # Idempotence
//!
//! Every message may arrive twice or late: a duplicate PREPARE of a prepared transaction
//! re-sends YES; COMMIT of a transaction no longer known is acknowledged again (it was
//! committed and forgotten: an unknown transaction cannot have voted YES, so it cannot
//! have been decided COMMIT); an operation or PREPARE of an aborted one finds its
//! tombstone.
//!
//! # Limits
//!
//! Tombstones are kept in memory for the life of the node incarnation. A restarted node
//! has none, which is safe: an unknown transaction votes NO, and an operation that is not
//! the transaction's first on this node is refused (see `Request::Read::first`).

mod outcome;
mod rejoin;
mod snapshot;
mod termination;

use crate::clock::Lamport;
use crate::error::Error;
use crate::lock::{Acquire, LockMode, LockTable, Wait};
use crate::message::{Answer, Effect, ReadAt, Reply, ReqId};
use crate::store::Store;
use crate::types::{MAX_WRITES_PER_TXN, NodeId, Timestamp, TxnId, Write};
use crate::wal::Record;
use std::collections::BTreeMap;
use std::time::Duration;

/// An operation waiting for its lock.
#[derive(Debug)]
enum PendingOp {
    /// A locked read, under a shared lock or, for update, an exclusive one.
    Read(String, LockMode),
    Write(String, Option<String>),
}

/// A transaction that is reading and writing here.
#[derive(Debug, Default)]
struct Active {
    /// Buffered writes, applied only if the transaction commits.
    writes: BTreeMap<String, Option<String>>,
    /// The operation queued for a lock, with its request.
    pending: Option<(ReqId, PendingOp)>,
    /// The transaction's begin stamp, which its waits report to the deadlock detector.
    began: u64,
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
    /// When to ask the coordinator again if no outcome has come.
    next_inquiry: Duration,
}

/// A transaction's state at this participant. Committed and aborted transactions are
/// forgotten (aborted ones leave a tombstone).
#[derive(Debug)]
enum TxnState {
    Active(Active),
    Prepared(Prepared),
}

/// The participant role of one node: its lock table, its committed data and the
/// transactions working on them.
#[derive(Debug)]
pub struct Participant {
    node: NodeId,
    nodes: u32,
    store: Store,
    locks: LockTable,
    txns: BTreeMap<TxnId, TxnState>,
    /// Aborted transactions and why, so late operations and PREPAREs are refused.
    tombstones: BTreeMap<TxnId, String>,
    /// Per coordinator, the first counter of its current incarnation (from `Restarted`).
    live_from: BTreeMap<NodeId, u64>,
    /// The node's logical clock. It lives here, with the versions it orders; the
    /// coordinator role borrows it to take commit timestamps (`Node`).
    clock: Lamport,
    /// Keys with a prepared, undecided write, and the transaction that wrote it.
    prepared_keys: BTreeMap<String, TxnId>,
    /// Snapshot reads waiting for a prepared transaction's outcome, by transaction.
    blocked_reads: BTreeMap<TxnId, Vec<(ReqId, String, ReadAt)>>,
    /// Recently committed prepared transactions and their commit timestamps, so a peer
    /// in doubt can learn the outcome here (bounded by [`REMEMBERED_COMMITS`]).
    recent_commits: BTreeMap<TxnId, Timestamp>,
    /// Transactions that voted READ-ONLY here and hold their read locks until the
    /// outcome, with their coordinators.
    read_only: BTreeMap<TxnId, NodeId>,
    /// After a restart, until every peer has answered the announcement: the locking
    /// operations held meanwhile (see `rejoin`).
    rejoin: Option<rejoin::Rejoin>,
}

/// How many committed transactions a participant remembers for its peers.
pub const REMEMBERED_COMMITS: usize = 10_000;

impl Participant {
    /// A participant with the given committed data and nothing in flight.
    pub fn new(node: NodeId, nodes: u32, store: Store, clock: Lamport) -> Participant {
        Participant {
            node,
            nodes,
            clock,
            prepared_keys: BTreeMap::new(),
            blocked_reads: BTreeMap::new(),
            store,
            locks: LockTable::default(),
            txns: BTreeMap::new(),
            tombstones: BTreeMap::new(),
            live_from: BTreeMap::new(),
            recent_commits: BTreeMap::new(),
            read_only: BTreeMap::new(),
            rejoin: None,
        }
    }

    /// The node's logical clock.
    pub fn clock(&self) -> Lamport {
        self.clock
    }

    /// The node's logical clock, to move it (a message's or request's timestamp) or to
    /// take a commit timestamp from it.
    pub fn clock_mut(&mut self) -> &mut Lamport {
        &mut self.clock
    }

    /// Recovery: the outcomes the log still shows, so peers in doubt can be answered.
    pub fn remember(&mut self, committed: BTreeMap<TxnId, Timestamp>, aborted: Vec<TxnId>) {
        for (tid, commit_ts) in committed {
            self.remember_commit(tid, commit_ts);
        }
        for tid in aborted {
            let reason = format!("node {} aborted it before it restarted", self.node);
            self.tombstones.insert(tid, reason);
        }
    }

    fn remember_commit(&mut self, tid: TxnId, commit_ts: Timestamp) {
        self.recent_commits.insert(tid, commit_ts);
        if self.recent_commits.len() > REMEMBERED_COMMITS {
            self.recent_commits.pop_first();
        }
    }

    /// A client's read of `key` within `tid` (begun at stamp `began`), under a lock of
    /// `mode`: `Shared` for a plain read, `Exclusive` for a read for update.
    pub fn read(
        &mut self,
        req: ReqId,
        (tid, began): (TxnId, u64),
        key: String,
        mode: LockMode,
        first: bool,
        out: &mut Vec<Effect>,
    ) {
        self.operate(req, (tid, began), PendingOp::Read(key, mode), first, out);
    }

    /// A client's write (`None` deletes) of `key` within `tid` (begun at stamp `began`).
    pub fn write(
        &mut self,
        req: ReqId,
        (tid, began): (TxnId, u64),
        key: String,
        value: Option<String>,
        first: bool,
        out: &mut Vec<Effect>,
    ) {
        self.operate(req, (tid, began), PendingOp::Write(key, value), first, out);
    }

    fn operate(
        &mut self,
        req: ReqId,
        (tid, began): (TxnId, u64),
        op: PendingOp,
        first: bool,
        out: &mut Vec<Effect>,
    ) {
        let Some(op) = self.hold_while_rejoining(req, (tid, began), op, first) else {
            return;
        };
        if let Err(error) = self.admit(tid, began, first) {
            return reply(out, req, Err(error));
        }
        let (key, mode) = match &op {
            PendingOp::Read(key, mode) => (key.clone(), *mode),
            PendingOp::Write(key, _) => (key.clone(), LockMode::Exclusive),
        };
        match self.locks.acquire(tid, &key, mode) {
            Acquire::Granted => self.perform(req, tid, op, out),
            Acquire::Waiting { blockers } => {
                if let Some(TxnState::Active(active)) = self.txns.get_mut(&tid) {
                    active.pending = Some((req, op));
                }
                out.push(Effect::Reply {
                    req,
                    reply: Reply::Waiting {
                        key,
                        mode,
                        blockers,
                    },
                });
            }
        }
    }

    /// Checks that `tid` may operate here, creating its workspace on its first operation.
    fn admit(&mut self, tid: TxnId, began: u64, first: bool) -> Result<(), Error> {
        match self.txns.get(&tid) {
            Some(TxnState::Active(_)) => return Ok(()),
            Some(TxnState::Prepared(_)) => {
                return Err(Error::InvalidInput(format!(
                    "{tid} is committing; it cannot read or write any more"
                )));
            }
            None => {}
        }
        if let Some(reason) = self.tombstones.get(&tid) {
            return Err(Error::Aborted {
                tid,
                reason: reason.clone(),
            });
        }
        if self.read_only.contains_key(&tid) {
            return Err(Error::InvalidInput(format!(
                "{tid} is committing; it cannot read or write any more"
            )));
        }
        let coordinator = tid.coordinator(self.nodes);
        if self
            .live_from
            .get(&coordinator)
            .is_some_and(|from| tid.counter(self.nodes) < *from)
        {
            return Err(self.abort_unknown(
                tid,
                format!(
                    "its coordinator node {coordinator} crashed and restarted, which aborts every \
                 transaction it had not decided"
                ),
            ));
        }
        if !first {
            return Err(self.abort_unknown(
                tid,
                format!(
                    "node {} crashed and restarted after {tid} worked there, and lost that work",
                    self.node
                ),
            ));
        }
        let active = Active {
            began,
            ..Active::default()
        };
        self.txns.insert(tid, TxnState::Active(active));
        Ok(())
    }

    fn abort_unknown(&mut self, tid: TxnId, reason: String) -> Error {
        self.tombstones.insert(tid, reason.clone());
        Error::Aborted { tid, reason }
    }

    /// Runs an operation whose lock is held.
    fn perform(&mut self, req: ReqId, tid: TxnId, op: PendingOp, out: &mut Vec<Effect>) {
        let Some(TxnState::Active(active)) = self.txns.get_mut(&tid) else {
            return;
        };
        let answer = match op {
            PendingOp::Read(key, _) => {
                let value = match active.writes.get(&key) {
                    Some(buffered) => buffered.clone(),
                    None => self.store.get(&key).map(str::to_string),
                };
                Ok(Answer::Value(value))
            }
            PendingOp::Write(key, value) => {
                if active.writes.len() >= MAX_WRITES_PER_TXN && !active.writes.contains_key(&key) {
                    Err(Error::InvalidInput(format!(
                        "{tid} already has {MAX_WRITES_PER_TXN} writes on node {}, the most one \
                         transaction may buffer on a node; commit and continue in another",
                        self.node
                    )))
                } else {
                    active.writes.insert(key, value);
                    Ok(Answer::Done)
                }
            }
        };
        reply(out, req, answer);
    }

    /// Completes the operations whose locks were just granted.
    fn granted(&mut self, grants: Vec<(TxnId, String)>, out: &mut Vec<Effect>) {
        for (tid, _key) in grants {
            let pending = match self.txns.get_mut(&tid) {
                Some(TxnState::Active(active)) => active.pending.take(),
                _ => None,
            };
            if let Some((req, op)) = pending {
                self.perform(req, tid, op, out);
            }
        }
    }

    /// The committed data.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Transactions prepared here and not yet decided, by id.
    pub fn in_doubt(&self) -> Vec<(TxnId, Prepared)> {
        self.txns
            .iter()
            .filter_map(|(tid, state)| match state {
                TxnState::Prepared(prepared) => Some((*tid, prepared.clone())),
                TxnState::Active(_) => None,
            })
            .collect()
    }

    /// Transactions reading and writing here, by id.
    pub fn active(&self) -> Vec<TxnId> {
        self.txns
            .iter()
            .filter(|(_, state)| matches!(state, TxnState::Active(_)))
            .map(|(tid, _)| *tid)
            .collect()
    }

    /// The lock table.
    pub fn locks(&self) -> &LockTable {
        &self.locks
    }

    /// Every lock wait, for the deadlock detector, with its waiter's begin stamp.
    pub fn waits(&self) -> Vec<Wait> {
        let mut waits = self.locks.waits();
        for wait in &mut waits {
            if let Some(TxnState::Active(active)) = self.txns.get(&wait.tid) {
                wait.began = active.began;
            }
        }
        waits
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

fn reply(out: &mut Vec<Effect>, req: ReqId, result: Result<Answer, Error>) {
    out.push(Effect::Reply {
        req,
        reply: Reply::Done(result),
    });
}
