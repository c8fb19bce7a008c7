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
//! update, the second one simply waits at its read. A range read (`SCAN`, see `scan`)
//! takes a shared lock on the range itself, so that another transaction's insert into
//! it waits (no phantoms). Nothing reaches the log before PREPARE (strict two-phase
//! locking: every lock is held until the outcome is applied).
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
//! # Controlled lock violation: locks pass on before the fsync
//!
//! The locks are released as soon as the outcome record is *appended*, not once it is
//! durable: the next waiter is granted in the same batch, and its records join the same
//! group fsync (early lock release, Johnson et al., VLDB 2010; controlled lock
//! violation, Graefe et al., SIGMOD 2013). Strict two-phase locking is kept in what it
//! promises, because nothing the next transaction `T2` says can reveal the earlier
//! `T1` before `T1`'s record is durable: everything a node says is held until the
//! records it depends on are fsynced (`runtime::outbox`, and the simulator's executor
//! by the same rules), and each way `T2` could tell of `T1` waits for `T1`'s record:
//!
//! - a value or the rows of a scan under a lock: answered at once, before `T1`'s
//!   record is durable (Graefe's rule in full, `runtime::visible`). The client may see
//!   `T1`'s write, but `T2` cannot commit before `T1` is durable (below), and a crash
//!   that loses `T1` aborts `T2`: the value a client saw was then a dirty read of a
//!   transaction that never commits, never a committed one's;
//! - a value or rows in a snapshot: the reply waits for the record that made what it
//!   carries visible, so a snapshot never shows a commit a crash then erases;
//! - `T2`'s own outcome here: its `OnePhaseCommit` or `Prepare` comes after `T1`'s
//!   record in the log, and its one-phase outcome, its YES vote and its READ-ONLY vote
//!   are messages, which wait for every barrier record appended before them, `T1`'s
//!   `OnePhaseCommit` among them (log order);
//! - an answer to a peer's or a coordinator's inquiry, and an error: messages and
//!   replies that wait for every barrier record likewise;
//! - what waits for nothing reveals nothing of `T1`: a lock wait, a write buffered (its
//!   answer says only that the write is in `T2`'s workspace), an abort done.
//!
//! Across nodes the dependency travels with the votes. Say `T2` took `T1`'s lock on node
//! A and also wrote on node B. `T2` commits only once its coordinator has A's vote, and
//! that vote left A only once A's log was durable through it, hence through `T1`'s
//! record; B applies `T2`'s writes only on the decision that follows. So no client is
//! told `T2` committed, and no reader anywhere sees `T2`'s writes, before `T1` is
//! durable; and a crash that loses `T1` loses `T2` with it (`T2`'s work on A is gone
//! with A's memory: A votes NO, or its one-phase commit was never durable either).
//!
//! Only a one-phase commit's record (and a heuristic commit's) is the outcome itself. A
//! 2PC participant's `Commit` makes visible writes whose outcome is already durable
//! elsewhere (the coordinator forces its `Decision` before any COMMIT; with parallel
//! commits every participant's `Prepare` and the staging record are durable before a
//! COMMIT is sent): a crash before the `Commit`'s fsync leaves `T1` in doubt here, its
//! write locks taken again before the node serves anyone, and the inquiry brings
//! COMMIT back. So readers of those writes do not wait for the `Commit` record.
//!
//! Snapshot reads (`BEGIN READ ONLY`) still see durable commits only: a version written
//! by a one-phase commit not yet fsynced is answered once it is.
//!
//! Limits. A client in a read-write transaction may be shown a value that a crash then
//! erases (its transaction is then aborted by the same crash): that is the price of
//! letting a read-modify-write chain on one key (`hot-key`) share fsyncs, the next
//! incrementer reading, writing and committing behind the previous one before its
//! fsync. Messages wait for every barrier record appended before them, not only the
//! ones they depend on: a vote may wait for an unrelated commit's fsync (the same
//! fsync, under group commit).
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
//! A restarted participant re-takes only the write locks of its in-doubt transactions
//! (not read locks, and so not the range locks of scans, which are read locks on a
//! predicate: everything below holds for them word for word).
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
//! # One state per transaction
//!
//! Each transaction this node has seen has exactly one state here, in one map (`state`):
//! Active, Prepared, ReadOnlyVoted, Committed (remembered for peers in doubt) or Aborted
//! (a tombstone). Every handler matches on that state for its event; the module `state`
//! draws the transitions and states the invariants of the indexes kept beside the map
//! (the keys of prepared writes, the snapshot reads waiting on them, the lock table),
//! which the random-input tests check after every step.
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
//! has none but the aborts its log shows, which is safe: an unknown transaction votes NO,
//! and an operation that is not the transaction's first on this node is refused (see
//! `Request::Read::first`). Remembered commits are bounded by [`REMEMBERED_COMMITS`].

mod heuristic;
mod outcome;
mod policy;
mod rejoin;
mod scan;
mod snapshot;
mod state;
mod status;
mod termination;

pub use heuristic::{Heuristic, Mixed};
pub use policy::{Age, Blocker, Verdict, verdict};
use state::{Active, PendingOp, TxnState, Txns};
pub use state::{Prepared, prepared_from_record};

use crate::clock::Lamport;
use crate::config::Mistake;
use crate::error::Error;
use crate::keyrange::KeyRange;
use crate::lock::{Acquire, LockMode, LockTable, Wait};
use crate::message::{Answer, Effect, ReadAt, Reply, ReqId};
use crate::store::Store;
use crate::types::{MAX_WRITES_PER_TXN, NodeId, Timestamp, TxnId};
use std::collections::{BTreeMap, BTreeSet};

/// The participant role of one node: its lock table, its committed data and the
/// transactions working on them.
#[derive(Clone, Debug)]
pub struct Participant {
    node: NodeId,
    nodes: u32,
    store: Store,
    locks: LockTable,
    /// Every transaction's state: one per id (see `state`).
    txns: Txns,
    /// Per coordinator, the first counter of its current incarnation (from `Restarted`).
    live_from: BTreeMap<NodeId, u64>,
    /// The node's logical clock. It lives here, with the versions it orders; the
    /// coordinator role borrows it to take commit timestamps (`Node`).
    clock: Lamport,
    /// Keys with a prepared, undecided write, and the transaction that wrote it: `k`
    /// maps to `t` exactly while `t` is Prepared and writes `k`.
    prepared_keys: BTreeMap<String, TxnId>,
    /// Snapshot reads waiting for a prepared transaction's outcome, by transaction: only
    /// while it is Prepared.
    blocked_reads: BTreeMap<TxnId, Vec<(ReqId, String, ReadAt)>>,
    /// Snapshot scans waiting for a prepared transaction's outcome, likewise (see
    /// `scan`).
    blocked_scans: BTreeMap<TxnId, Vec<(ReqId, KeyRange, ReadAt)>>,
    /// After a restart, until every peer has answered the announcement: the locking
    /// operations held meanwhile (see `rejoin`).
    rejoin: Option<rejoin::Rejoin>,
    /// Transactions found in doubt at recovery and still undecided, whose outcome the
    /// node narrates when it comes (see `heuristic`).
    recovered_in_doubt: BTreeSet<TxnId>,
    /// Transactions settled by hand here whose coordinator's decision has not come.
    heuristics: BTreeMap<TxnId, Heuristic>,
    /// Heuristic mixed outcomes found by this incarnation.
    mixed: Vec<Mixed>,
    /// The teaching mistake switched in (`Settings::mistake`, told with every input by
    /// `Node`); only `no-tombstone` is read here. Never on by default.
    mistake: Option<Mistake>,
    /// The deadlock policy and the time, as of the input being handled (`policy`).
    rule: policy::Rule,
}

/// How many committed transactions a participant remembers for its peers (the one with
/// the smallest id is forgotten first).
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
            blocked_scans: BTreeMap::new(),
            store,
            locks: LockTable::default(),
            txns: Txns::default(),
            live_from: BTreeMap::new(),
            rejoin: None,
            recovered_in_doubt: BTreeSet::new(),
            heuristics: BTreeMap::new(),
            mixed: Vec::new(),
            mistake: None,
            rule: policy::Rule::default(),
        }
    }

    /// The teaching mistake in force (`Settings::mistake`), as `Node` tells it.
    pub fn set_mistake(&mut self, mistake: Option<Mistake>) {
        self.mistake = mistake;
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
            self.txns.put(tid, TxnState::Aborted { reason });
        }
    }

    /// Remembers a commit for peers in doubt (evicting the oldest beyond the bound).
    fn remember_commit(&mut self, tid: TxnId, commit_ts: Timestamp) {
        self.txns.put(tid, TxnState::Committed { commit_ts });
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
            PendingOp::Scan(lock) => (lock.range().to_string(), LockMode::Shared),
        };
        let acquired = match &op {
            PendingOp::Scan(lock) => self.locks.acquire_scan(tid, lock.clone()),
            _ => self.locks.acquire(tid, &key, mode),
        };
        match acquired {
            Acquire::Granted => self.perform(req, tid, op, out),
            Acquire::Waiting { blockers } => {
                if let Some(active) = self.txns.active_mut(&tid) {
                    active.pending = Some((req, op));
                    active.waiting_since = self.rule.now;
                }
                self.conflict(req, tid, key, mode, blockers, out);
            }
        }
    }

    /// Checks that `tid` may operate here, creating its workspace on its first operation.
    /// A remembered commit is treated as unknown, as it is once evicted (see `state`).
    fn admit(&mut self, tid: TxnId, began: u64, first: bool) -> Result<(), Error> {
        match self.txns.get(&tid) {
            Some(TxnState::Active(_)) => Ok(()),
            Some(TxnState::Prepared(_) | TxnState::ReadOnlyVoted { .. }) => {
                Err(Error::InvalidInput(format!(
                    "{tid} is committing; it cannot read or write any more"
                )))
            }
            Some(TxnState::Aborted { reason }) => Err(Error::Aborted {
                tid,
                reason: reason.clone(),
            }),
            Some(TxnState::Committed { .. }) | None => self.admit_new(tid, began, first),
        }
    }

    /// Admits the first operation of a transaction not known here, unless it cannot be
    /// its first (this node lost its work) or its coordinator restarted since it began.
    fn admit_new(&mut self, tid: TxnId, began: u64, first: bool) -> Result<(), Error> {
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
        self.txns.put(tid, TxnState::Active(active));
        Ok(())
    }

    fn abort_unknown(&mut self, tid: TxnId, reason: String) -> Error {
        let tombstone = TxnState::Aborted {
            reason: reason.clone(),
        };
        self.txns.put(tid, tombstone);
        Error::Aborted { tid, reason }
    }

    /// Runs an operation whose lock is held.
    fn perform(&mut self, req: ReqId, tid: TxnId, op: PendingOp, out: &mut Vec<Effect>) {
        let Some(active) = self.txns.active_mut(&tid) else {
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
            PendingOp::Scan(lock) => Ok(Answer::Rows(scan::rows(
                &self.store,
                &active.writes,
                lock.range(),
            ))),
        };
        reply(out, req, answer);
    }

    /// Completes the operations whose locks were just granted.
    fn granted(&mut self, grants: Vec<(TxnId, String)>, out: &mut Vec<Effect>) {
        for (tid, _key) in grants {
            let pending = (self.txns.active_mut(&tid)).and_then(|active| active.pending.take());
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
        (self.txns.live())
            .filter_map(|(tid, state)| match state {
                TxnState::Prepared(prepared) => Some((tid, prepared.clone())),
                _ => None,
            })
            .collect()
    }

    /// Transactions reading and writing here, by id.
    pub fn active(&self) -> Vec<TxnId> {
        (self.txns.live())
            .filter(|(_, state)| matches!(state, TxnState::Active(_)))
            .map(|(tid, _)| tid)
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

fn reply(out: &mut Vec<Effect>, req: ReqId, result: Result<Answer, Error>) {
    out.push(Effect::Reply {
        req,
        reply: Reply::Done(result),
    });
}

#[cfg(test)]
mod tests;
