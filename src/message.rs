//! What flows between nodes and clients, and what the state machines ask the runtime to do.
//!
//! Messages are data: an [`Envelope`] carries a [`Message`] from one node to another;
//! a client's [`Request`] goes to one node and is answered by [`Reply`]s. The state
//! machines never perform I/O: they return [`Effect`]s (append a record, send a message,
//! reply, or mark a crash point), which the node runtime executes in order.

use crate::crash::CrashPoint;
use crate::error::Error;
use crate::keyrange::KeyRange;
use crate::lock::{LockMode, Wait};
use crate::types::{NodeId, Timestamp, TxnId};
use crate::wal::Record;
use serde::{Deserialize, Serialize};

/// A message between nodes, with its addresses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The sender.
    pub from: NodeId,
    /// The receiver.
    pub to: NodeId,
    /// The message.
    pub message: Message,
}

/// A participant's vote on PREPARE.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Vote {
    /// Prepared: the writes are forced to the log and the locks held.
    Yes {
        /// The participant's prepare timestamp; the commit timestamp goes above it.
        prepare_ts: Timestamp,
    },
    /// Cannot commit; the participant has already forgotten the transaction.
    No {
        /// Why, for the client's error message.
        reason: String,
    },
    /// The transaction only read here: its locks are released and it takes no part in
    /// phase 2.
    ReadOnly,
}

/// A participant's answer about a staged transaction (`Message::Status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StagedStatus {
    /// Prepared here, durably, at this timestamp.
    Prepared {
        /// Its prepare timestamp.
        prepare_ts: Timestamp,
    },
    /// Committed here already, at this timestamp.
    Committed {
        /// The commit timestamp.
        commit_ts: Timestamp,
    },
    /// Not prepared here, and now refused for good (a durable `Refused` tombstone).
    Refused,
}

/// A protocol message between nodes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Coordinator to participant: phase 1, prepare to commit.
    Prepare {
        /// The transaction.
        tid: TxnId,
        /// Every participant, logged in the Prepare record for cooperative termination.
        participants: Vec<NodeId>,
    },
    /// Coordinator to participant, parallel commits: PREPARE of a staged transaction.
    /// As `Prepare`, except that a participant that only read forces an empty `Prepare`
    /// and votes YES: "every participant prepared" is the commit condition recovery
    /// checks, so a read-only vote must be durable too.
    PrepareStaged {
        /// The transaction.
        tid: TxnId,
        /// Every participant.
        participants: Vec<NodeId>,
        /// The coordinator's clock when it sent the PREPAREs: every participant's
        /// prepare timestamp is at or above it, so a participant reports it as its
        /// floor for the whole transaction (`node::floors`).
        floor: Timestamp,
    },
    /// A restarted coordinator to a participant of a staged transaction it finds with
    /// no outcome: has it prepared? See `participant::status`.
    StatusQuery {
        /// The transaction.
        tid: TxnId,
    },
    /// The answer to `StatusQuery`, sent only once what it says is durable.
    Status {
        /// The transaction.
        tid: TxnId,
        /// What this node holds of it.
        status: StagedStatus,
    },
    /// Participant to coordinator: the answer to PREPARE.
    Vote {
        /// The transaction.
        tid: TxnId,
        /// The vote.
        vote: Vote,
    },
    /// Coordinator to participant: phase 2, the transaction committed.
    Commit {
        /// The transaction.
        tid: TxnId,
        /// The commit timestamp.
        commit_ts: Timestamp,
    },
    /// Coordinator to participant: the transaction aborted.
    Abort {
        /// The transaction.
        tid: TxnId,
    },
    /// Participant to coordinator: the commit is logged here; the coordinator may forget
    /// the transaction once every participant has said so.
    Ack {
        /// The transaction.
        tid: TxnId,
    },
    /// Coordinator to the only participant: commit in one phase, deciding locally.
    CommitOnePhase {
        /// The transaction.
        tid: TxnId,
    },
    /// The only participant to the coordinator: what one-phase commit decided.
    OnePhaseOutcome {
        /// The transaction.
        tid: TxnId,
        /// `None` if it committed, else why it aborted.
        aborted: Option<String>,
        /// Where it committed: its writes' commit timestamp, or for one that only read,
        /// the participant's clock (at or above every version it read, below every later
        /// write of those keys); 0 if it aborted. The client reports it to the history.
        at: Timestamp,
    },
    /// In-doubt participant to coordinator: what happened to this transaction?
    Inquire {
        /// The transaction.
        tid: TxnId,
    },
    /// A node finished recovery. Participants abort the active transactions this node
    /// coordinated before it crashed (their counter is below `live_from`) and re-ask about
    /// in-doubt ones; coordinators abort the transactions still collecting votes whose
    /// vote from this node they counted (it vouched for locks the crash lost) and re-send
    /// commit decisions it has not acknowledged. Every node then answers `RestartAck`.
    /// The restarted node re-sends it to the peers that have not answered, until they do
    /// or turn out to be down (see `participant::rejoin`).
    Restarted {
        /// The first transaction counter of the new incarnation.
        live_from: u64,
    },
    /// The answer to `Restarted`: nothing this node decides from now on counts a vote of
    /// the sender's old incarnation, so the sender may serve locking operations again
    /// once every peer has said so.
    RestartAck,
    /// From a node whose wait-for graph holds a cycle to the node where the cycle's
    /// victim waits: abort it if it still waits there. See `node::detect`.
    DeadlockVictim {
        /// The victim.
        tid: TxnId,
        /// The cycle, starting and ending at the victim.
        cycle: Vec<TxnId>,
    },
    /// To every other node: every lock wait on the sender now (replacing what it
    /// reported before). See `node::detect`.
    WaitReport {
        /// The waits, each with its waiter's begin stamp.
        waits: Vec<Wait>,
    },
    /// A node choosing a read-only snapshot asks each node for its prepare floor.
    FloorQuery {
        /// Which round of asking this answers.
        round: u64,
    },
    /// The answer to `FloorQuery`, sent once what it says is durable: the lowest
    /// timestamp at which a transaction undecided here may be (or be about to be)
    /// prepared, `None` if there is none. See `node::floors`.
    FloorReply {
        /// The round asked in.
        round: u64,
        /// The floor.
        floor: Option<Timestamp>,
        /// The answering node's clock when it chose `floor`: anything it prepares
        /// later takes a prepare timestamp at or above it.
        clock: Timestamp,
    },
}

impl Message {
    /// Teaching mistakes `vote-before-fsync` and `commit-before-decision-fsync`: whether
    /// this message leaves at once, without waiting for the fsync of the record it
    /// depends on (a YES vote's `Prepare`, a COMMIT's `Decision`). Never true with `None`.
    pub fn skips_fsync(&self, mistake: Option<crate::config::Mistake>) -> bool {
        use crate::config::Mistake;
        match self {
            Message::Vote {
                vote: Vote::Yes { .. },
                ..
            } => mistake == Some(Mistake::VoteBeforeFsync),
            Message::Commit { .. } => mistake == Some(Mistake::CommitBeforeDecisionFsync),
            _ => false,
        }
    }
}

impl Message {
    /// The message's name as the trace shows it (`PREPARE`, `VOTE YES`, ...).
    pub fn label(&self) -> String {
        match self {
            Message::Prepare { .. } | Message::PrepareStaged { .. } => "PREPARE".into(),
            Message::StatusQuery { .. } => "STATUS?".into(),
            Message::Status {
                status: StagedStatus::Refused,
                ..
            } => "STATUS REFUSED".into(),
            Message::Status { .. } => "STATUS PREPARED".into(),
            Message::Vote {
                vote: Vote::Yes { .. },
                ..
            } => "VOTE YES".into(),
            Message::Vote {
                vote: Vote::No { .. },
                ..
            } => "VOTE NO".into(),
            Message::Vote {
                vote: Vote::ReadOnly,
                ..
            } => "VOTE READ-ONLY".into(),
            Message::Commit { .. } => "COMMIT".into(),
            Message::Abort { .. } => "ABORT".into(),
            Message::Ack { .. } => "ACK".into(),
            Message::CommitOnePhase { .. } => "COMMIT ONE-PHASE".into(),
            Message::OnePhaseOutcome { aborted: None, .. } => "ONE-PHASE COMMITTED".into(),
            Message::OnePhaseOutcome { .. } => "ONE-PHASE ABORTED".into(),
            Message::Inquire { .. } => "INQUIRE".into(),
            Message::Restarted { .. } => "RESTARTED".into(),
            Message::RestartAck => "RESTART ACK".into(),
            Message::DeadlockVictim { .. } => "DEADLOCK VICTIM".into(),
            Message::WaitReport { .. } => "WAIT REPORT".into(),
            Message::FloorQuery { .. } => "FLOOR?".into(),
            Message::FloorReply { .. } => "FLOOR".into(),
        }
    }

    /// Whether the trace shows this message: the two-phase commit protocol's messages
    /// are shown; the cluster's housekeeping (the deadlock detector's reports and
    /// verdicts, which the trace shows as one `deadlock` line, and the snapshot floor
    /// queries) is not, so that a lesson shows the protocol it teaches.
    pub fn traced(&self) -> bool {
        !matches!(
            self,
            Message::DeadlockVictim { .. }
                | Message::WaitReport { .. }
                | Message::FloorQuery { .. }
                | Message::FloorReply { .. }
        )
    }

    /// Whether the sender must be told if this message is lost to a down node
    /// (`Input::Undelivered`): a restart announcement, which waits for an answer from
    /// every node that is up, and a floor query, which waits for an answer from every
    /// node.
    pub fn reports_loss(&self) -> bool {
        matches!(self, Message::Restarted { .. } | Message::FloorQuery { .. })
    }

    /// The transaction the message is about, if any.
    pub fn tid(&self) -> Option<TxnId> {
        match self {
            Message::Prepare { tid, .. }
            | Message::PrepareStaged { tid, .. }
            | Message::StatusQuery { tid }
            | Message::Status { tid, .. }
            | Message::Vote { tid, .. }
            | Message::Commit { tid, .. }
            | Message::Abort { tid }
            | Message::Ack { tid }
            | Message::CommitOnePhase { tid }
            | Message::OnePhaseOutcome { tid, .. }
            | Message::Inquire { tid }
            | Message::DeadlockVictim { tid, .. } => Some(*tid),
            Message::Restarted { .. }
            | Message::RestartAck
            | Message::WaitReport { .. }
            | Message::FloorQuery { .. }
            | Message::FloorReply { .. } => None,
        }
    }
}

/// Identifies a client request within one node incarnation, so a late answer finds its
/// reply channel.
pub type ReqId = u64;

/// Which snapshot a lock-free read sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadAt {
    /// Any recent snapshot at or above this timestamp (an autocommit read: the session
    /// must see its own last commit). The owner picks the newest that need not wait.
    AtLeast(Timestamp),
    /// Exactly this snapshot (a read-only transaction: all its reads see one snapshot).
    Exactly(Timestamp),
}

/// A client's request to one node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// To the coordinator: start a transaction.
    Begin {
        /// The client's stamp of when the transaction began ([`Answer::Begun`]).
        began: u64,
    },
    /// To the coordinator: start a transaction and hand its first operation, `then` (a
    /// `Read` or `Write`, whose `tid` and `first` are filled in), to `owner`, the node
    /// that owns its key, which answers the client directly. The client learns the id
    /// from a [`Reply::Begun`] before `then`'s own replies, and the begin costs it no
    /// round trip of its own.
    BeginAnd {
        /// The node `then` goes to.
        owner: NodeId,
        /// The first operation.
        then: Box<Request>,
        /// As for `Begin`.
        began: u64,
    },
    /// To the key's owner: read `key` under a lock, seeing the transaction's own writes.
    Read {
        /// The transaction.
        tid: TxnId,
        /// The key.
        key: String,
        /// `Shared` for a plain read; `Exclusive` for a read for update, which locks the
        /// key against other readers at once so that the write that follows need not
        /// upgrade (two upgraders of one key deadlock).
        mode: LockMode,
        /// Whether this is the transaction's first operation on this node; a later one
        /// that finds no workspace knows the node lost it in a crash.
        first: bool,
        /// The transaction's begin stamp (see [`Answer::Begun`]), which its lock waits
        /// report to the deadlock detector.
        began: u64,
    },
    /// To the key's owner: read `key` in a committed snapshot, without locks.
    SnapshotRead {
        /// The key.
        key: String,
        /// The snapshot.
        at: ReadAt,
    },
    /// To every node: read the keys it owns in `range` under a range lock (see
    /// `lock::range`), seeing the transaction's own writes; answered with
    /// [`Answer::Rows`].
    Scan {
        /// The transaction.
        tid: TxnId,
        /// The keys to read.
        range: KeyRange,
        /// As for `Read`.
        first: bool,
        /// As for `Read`.
        began: u64,
    },
    /// To every node: read the keys it owns in `range` in a committed snapshot, without
    /// locks; answered with [`Answer::Rows`].
    SnapshotScan {
        /// The keys to read.
        range: KeyRange,
        /// The snapshot.
        at: ReadAt,
    },
    /// To the key's owner: buffer a write (`None` deletes) under an exclusive lock.
    Write {
        /// The transaction.
        tid: TxnId,
        /// The key.
        key: String,
        /// The new value, or `None` to delete.
        value: Option<String>,
        /// As for `Read`.
        first: bool,
        /// As for `Read`.
        began: u64,
    },
    /// To the coordinator: commit across these participants.
    Commit {
        /// The transaction.
        tid: TxnId,
        /// The nodes the transaction touched, sorted.
        participants: Vec<NodeId>,
        /// The highest timestamp the client has seen: the coordinator's clock moves up
        /// to it, so the commit is ordered after every commit the client knows of.
        clock: Timestamp,
    },
    /// To any node: choose the timestamp of a read-only transaction's snapshot, the
    /// newest that no undecided transaction anywhere can make a read of it wait for,
    /// and at least `seen` (the session's last commit). See `node::floors`.
    SnapshotTimestamp {
        /// The lowest timestamp the snapshot may have.
        seen: Timestamp,
        /// The highest timestamp the client has seen (as for `Commit`).
        clock: Timestamp,
    },
    /// To the coordinator: abort at these participants.
    Abort {
        /// The transaction.
        tid: TxnId,
        /// The nodes the transaction touched, sorted.
        participants: Vec<NodeId>,
    },
}

/// A successful answer to a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Answer {
    /// `Begin`: the new transaction and its begin stamp: the client's count of the
    /// transactions it began, which orders them for the deadlock detector (the victim
    /// of a cycle is the one begun last). Ids cannot: each coordinator numbers its own.
    /// Stamps of different client processes are not ordered by time; ties are broken
    /// by id, which still gives every node the same order.
    Begun(TxnId, u64),
    /// `Read`: the value, if the key exists.
    Value(Option<String>),
    /// `SnapshotRead`: the value, and the snapshot it was read at.
    Snapshot {
        /// The value, if the key existed in the snapshot.
        value: Option<String>,
        /// The snapshot's timestamp.
        read_ts: Timestamp,
    },
    /// `Scan` or `SnapshotScan`: the keys in the range on that node, in key order, with
    /// their values.
    Rows(Vec<(String, String)>),
    /// `SnapshotTimestamp`: the snapshot's timestamp.
    SnapshotAt(Timestamp),
    /// `Write` or `Abort` done.
    Done,
    /// `Commit`: committed, durably.
    Committed {
        /// A timestamp at or above the commit timestamp (0 if nothing was written): the
        /// client's later requests carry it, so what it does next is ordered after.
        at: Timestamp,
        /// The timestamp it is serialized at: its writes' commit timestamp, or for one
        /// that only read, a timestamp at or above every version it read and below every
        /// later write of those keys (0 if it touched nothing). What the shell's history
        /// orders versions by (see `history::register`).
        serial_ts: Timestamp,
    },
}

/// A reply on a request's channel: zero or one `Waiting`, then one `Done`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Reply {
    /// The request is queued for a lock.
    Waiting {
        /// The key.
        key: String,
        /// The mode asked for.
        mode: LockMode,
        /// The transactions it waits for.
        blockers: Vec<TxnId>,
    },
    /// A `BeginAnd` began this transaction; its operation's replies follow. (The
    /// client need not wake for this one: it arrives before the answer it waits for.)
    /// With its begin stamp.
    Begun(TxnId, u64),
    /// The request finished.
    Done(Result<Answer, Error>),
}

impl Request {
    /// The first operation of a `BeginAnd`, made part of transaction `tid` begun at
    /// `began`; `None` if `self` is not an operation that can begin a transaction.
    pub fn first_of(self, tid: TxnId, began: u64) -> Option<Request> {
        match self {
            Request::Read { key, mode, .. } => Some(Request::Read {
                tid,
                key,
                mode,
                first: true,
                began,
            }),
            Request::Scan { range, .. } => Some(Request::Scan {
                tid,
                range,
                first: true,
                began,
            }),
            Request::Write { key, value, .. } => Some(Request::Write {
                tid,
                key,
                value,
                first: true,
                began,
            }),
            _ => None,
        }
    }
}

/// What a state machine asks the node runtime to do, in order.
#[derive(Debug)]
pub enum Effect {
    /// Append a record to the log; fsynced before any later `Send` or `Reply` leaves if
    /// the record is forced.
    Append(Record),
    /// Append a forced record that holds back only what names it: later `Send`s and
    /// `Reply`s do not wait for its fsync (it is no barrier, whatever its kind), and
    /// what depends on it goes by `SendDurable`, which does. A parallel commit's
    /// `Decision`, which the client was not waiting for, so that the next commit's
    /// PREPAREs and `Staged` need not queue behind its fsync (see
    /// `coordinator::parallel`).
    AppendNoBarrier(Record),
    /// Send a message to a node (possibly this one).
    Send {
        /// The receiver.
        to: NodeId,
        /// The message.
        message: Message,
    },
    /// Send a message once everything appended so far is fsynced, without holding back
    /// what follows (a participant's acknowledgement of its `Commit` record).
    SendDurable {
        /// The receiver.
        to: NodeId,
        /// The message.
        message: Message,
    },
    /// Answer a client request.
    Reply {
        /// The request.
        req: ReqId,
        /// The answer.
        reply: Reply,
    },
    /// Hand a client's request on to another node, which answers the client directly.
    Forward {
        /// The client's request here, whose reply channel goes along.
        req: ReqId,
        /// The node that takes over the request.
        to: NodeId,
        /// The request it is given.
        request: Request,
    },
    /// The protocol reached this point: the runtime dies here if it is armed.
    CrashPoint(CrashPoint),
    /// A deadlock's victim was aborted here: the trace shows the cycle (once, however
    /// many nodes found it).
    VictimAborted {
        /// The victim.
        tid: TxnId,
        /// The cycle, starting and ending at the victim.
        cycle: Vec<TxnId>,
    },
    /// Something the node tells whoever watches, in words: how an outcome found in
    /// doubt at recovery was decided, a heuristic decision's warning, a heuristic mixed
    /// outcome. Shown always (not only with the trace on).
    Narrate(String),
}
