//! Scripted sessions: simulated clients that a caller feeds one command at a time
//! ([`Sim::command`](super::Sim::command)), where a [`SimClient`](super::SimClient)
//! runs a fixed plan. A test driver uses them to run a script of its own (the random
//! fault scenarios of `tests/random_faults.rs`) on the simulator, with the answers a
//! real [`Client`](crate::Client) would give.
//!
//! A session is one `Client` with one transaction at a time, and follows the library's
//! steps request by request (`client::transaction`): `Begin` asks its coordinator for
//! an id at once; each read and write goes to the key's owner, naming whether it is the
//! first operation there; a failed operation aborts the transaction everywhere (one
//! `Abort` to the coordinator, whatever it answers) and later operations and `Commit`
//! are refused with the reason; `Commit` answered "node down" by the coordinator is an
//! unknown outcome. A read-only snapshot asks its coordinator for the snapshot's
//! timestamp, then each next node, and falls back to the highest timestamp it knows of
//! if none answers; its reads name that timestamp; ending it sends nothing.
//!
//! A session whose process died ([`Sim::reopen`](super::Sim::reopen)) is *cut off*:
//! every request it makes is answered "node down" at once, as a `Client` of a cluster
//! that was dropped is.

use super::client::Shared;
use crate::error::{Error, Result};
use crate::lock::LockMode;
use crate::message::{Answer, ReadAt, Reply, ReqId, Request};
use crate::types::{NodeId, Timestamp, TxnId, check_value, owner_of};
use std::collections::{BTreeSet, VecDeque};

/// What a session is asked to do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Begin a locking transaction.
    Begin,
    /// Begin a lock-free read-only snapshot.
    BeginSnapshot,
    /// Read a key (in the snapshot, if one is open).
    Read(String),
    /// Read a key under an exclusive lock.
    ReadForUpdate(String),
    /// Delete a key.
    Delete(String),
    /// Write a key's new value.
    Write(String, String),
    /// Commit (a snapshot just ends).
    Commit,
    /// Abort (a snapshot just ends).
    Abort,
}

/// What a session was told, when a command succeeds.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Response {
    /// A locking transaction began.
    Begun(TxnId),
    /// A snapshot began at this timestamp.
    Snapshot(Timestamp),
    /// A key's value.
    Read(Option<String>),
    /// A write, commit or abort went through.
    Done,
}

/// A locking transaction's state, as `client::Transaction` keeps it.
#[derive(Clone, Debug)]
struct Txn {
    tid: TxnId,
    began: u64,
    participants: BTreeSet<NodeId>,
    finished: bool,
    aborted: Option<String>,
}

impl Txn {
    fn check_open(&self) -> Result<()> {
        if let Some(reason) = &self.aborted {
            return Err(Error::Aborted {
                tid: self.tid,
                reason: reason.clone(),
            });
        }
        if self.finished {
            let what = self.tid;
            return Err(Error::InvalidInput(format!("{what} has already ended")));
        }
        Ok(())
    }

    fn abort_request(&self) -> Request {
        Request::Abort {
            tid: self.tid,
            participants: self.participants.iter().copied().collect(),
        }
    }
}

/// The request a session waits on, and what its answer means.
#[derive(Clone, Debug)]
enum Doing {
    Begin,
    /// Asked node `(home + asked) % nodes` for a snapshot's timestamp.
    SnapshotAsk {
        asked: u32,
        seen: Timestamp,
        clock: Timestamp,
    },
    SnapshotRead,
    /// An operation on `node` (`first` there), a read if `read`.
    Op {
        node: NodeId,
        first: bool,
        read: bool,
        what: &'static str,
        key: String,
    },
    /// The abort sent after a failed operation; then the operation's error is told.
    AbortAfter(Error),
    Commit(TxnId),
    Abort,
}

/// A scripted client session.
#[derive(Clone, Debug)]
pub struct Session {
    home: NodeId,
    nodes: u32,
    /// The timestamp after its latest commit.
    seen: Timestamp,
    txn: Option<Txn>,
    snapshot: Option<Timestamp>,
    /// The command given and not yet started.
    queued: Option<Command>,
    doing: Option<Doing>,
    /// The request it waits for an answer to.
    pub(super) outstanding: Option<ReqId>,
    /// Answers let out to it, in order, not yet taken.
    pub(super) mailbox: VecDeque<(ReqId, Reply)>,
    /// The answer to the last command, until the caller takes it.
    told: Option<Result<Response>>,
    /// Its process died: every request it makes fails at once.
    pub(super) cut_off: bool,
}

impl Session {
    /// A session coordinated by `home` in a cluster of `nodes`.
    pub(super) fn new(home: NodeId, nodes: u32) -> Session {
        Session {
            home,
            nodes,
            seen: 0,
            txn: None,
            snapshot: None,
            queued: None,
            doing: None,
            outstanding: None,
            mailbox: VecDeque::new(),
            told: None,
            cut_off: false,
        }
    }

    /// Whether it is free to take a command: none queued, under way or untaken.
    pub(super) fn idle(&self) -> bool {
        self.queued.is_none() && self.doing.is_none() && self.told.is_none()
    }

    pub(super) fn give(&mut self, command: Command) {
        self.queued = Some(command);
    }

    pub(super) fn take_told(&mut self) -> Option<Result<Response>> {
        self.told.take()
    }

    /// Whether a command is under way (sent, unanswered).
    pub(super) fn busy(&self) -> bool {
        self.queued.is_some() || self.doing.is_some()
    }

    /// Whether it has something to do: an answer to take, or a command to start.
    pub(super) fn ready(&self) -> bool {
        match self.outstanding {
            Some(req) => {
                (self.mailbox.iter()).any(|(r, reply)| *r == req && matches!(reply, Reply::Done(_)))
            }
            None => self.queued.is_some(),
        }
    }

    /// Takes the answers waiting, then returns the next request and its node, if any.
    pub(super) fn act(&mut self, shared: &mut Shared) -> Option<(NodeId, Request)> {
        while let Some((req, reply)) = self.mailbox.pop_front() {
            if Some(req) != self.outstanding {
                continue;
            }
            if let Reply::Done(result) = reply {
                self.outstanding = None;
                let doing = self.doing.take()?;
                return self.answered(doing, result, shared);
            }
        }
        if self.outstanding.is_some() {
            return None;
        }
        let command = self.queued.take()?;
        self.start(command, shared)
    }

    fn tell(&mut self, told: Result<Response>) -> Option<(NodeId, Request)> {
        self.told = Some(told);
        None
    }

    fn send(&mut self, doing: Doing, node: NodeId, request: Request) -> Option<(NodeId, Request)> {
        self.doing = Some(doing);
        Some((node, request))
    }

    fn start(&mut self, command: Command, shared: &mut Shared) -> Option<(NodeId, Request)> {
        if let Some(read_ts) = self.snapshot {
            return match command {
                Command::Read(key) => {
                    let node = owner_of(&key, self.nodes);
                    let at = ReadAt::Exactly(read_ts);
                    self.send(Doing::SnapshotRead, node, Request::SnapshotRead { key, at })
                }
                // Ending a snapshot sends nothing: it locked and wrote nothing.
                Command::Commit | Command::Abort => {
                    self.snapshot = None;
                    self.tell(Ok(Response::Done))
                }
                _ => self.tell(Err(Error::InvalidInput(
                    "a read-only transaction only reads".into(),
                ))),
            };
        }
        match command {
            Command::Begin => {
                let began = shared.begin_stamp();
                self.send(Doing::Begin, self.home, Request::Begin { began })
            }
            Command::BeginSnapshot => {
                let (seen, clock) = (self.seen, shared.clock);
                let request = Request::SnapshotTimestamp { seen, clock };
                let doing = Doing::SnapshotAsk {
                    asked: 0,
                    seen,
                    clock,
                };
                self.send(doing, self.home, request)
            }
            // A careless client goes on after an error: what follows must fail.
            _ if self.txn.is_none() => {
                self.tell(Err(Error::InvalidInput("no transaction is open".into())))
            }
            Command::Read(key) => self.operate(key, None, LockMode::Shared),
            Command::ReadForUpdate(key) => self.operate(key, None, LockMode::Exclusive),
            Command::Delete(key) => self.operate(key, Some(None), LockMode::Exclusive),
            Command::Write(key, value) => self.operate(key, Some(Some(value)), LockMode::Exclusive),
            Command::Commit => {
                let txn = self.txn.take()?;
                if let Err(error) = txn.check_open() {
                    return self.tell(Err(error));
                }
                let request = Request::Commit {
                    tid: txn.tid,
                    participants: txn.participants.iter().copied().collect(),
                    clock: shared.clock,
                };
                self.send(Doing::Commit(txn.tid), self.home, request)
            }
            Command::Abort => {
                let txn = self.txn.take()?;
                if txn.aborted.is_some() {
                    return self.tell(Ok(Response::Done));
                }
                if let Err(error) = txn.check_open() {
                    return self.tell(Err(error));
                }
                self.send(Doing::Abort, self.home, txn.abort_request())
            }
        }
    }

    /// A read (`write` is `None`) or a write of `Some(value)` (`Some(None)`: a delete).
    fn operate(
        &mut self,
        key: String,
        write: Option<Option<String>>,
        mode: LockMode,
    ) -> Option<(NodeId, Request)> {
        let nodes = self.nodes;
        let txn = self.txn.as_mut()?;
        if let Err(error) = txn.check_open() {
            return self.tell(Err(error));
        }
        let what = match (&write, mode) {
            (None, LockMode::Shared) => "read",
            (None, LockMode::Exclusive) => "read for update",
            (Some(Some(_)), _) => "write",
            (Some(None), _) => "delete",
        };
        if let Some(Some(value)) = &write
            && let Err(limit) = check_value(value)
        {
            return self.failed(Error::from(limit), what, &key);
        }
        let node = owner_of(&key, nodes);
        let first = txn.participants.insert(node);
        let (tid, began) = (txn.tid, txn.began);
        let request = match write.clone() {
            None => Request::Read {
                tid,
                key: key.clone(),
                mode,
                first,
                began,
            },
            Some(value) => Request::Write {
                tid,
                key: key.clone(),
                value,
                first,
                began,
            },
        };
        let doing = Doing::Op {
            node,
            first,
            read: write.is_none(),
            what,
            key,
        };
        self.send(doing, node, request)
    }

    /// An operation failed: the transaction aborts everywhere, then `error` is told.
    fn failed(&mut self, error: Error, what: &str, key: &str) -> Option<(NodeId, Request)> {
        let Some(txn) = self.txn.as_mut() else {
            return self.tell(Err(error));
        };
        let reason = match &error {
            Error::Aborted { reason, .. } => reason.clone(),
            other => format!(
                "its {what} of {key} failed ({other}), and a failed operation aborts its \
                 transaction"
            ),
        };
        txn.aborted = Some(reason);
        txn.finished = true;
        let request = txn.abort_request();
        self.send(Doing::AbortAfter(error), self.home, request)
    }

    fn answered(
        &mut self,
        doing: Doing,
        result: Result<Answer>,
        shared: &mut Shared,
    ) -> Option<(NodeId, Request)> {
        match (doing, result) {
            (Doing::Begin, Ok(Answer::Begun(tid, began))) => {
                self.txn = Some(Txn {
                    tid,
                    began,
                    participants: BTreeSet::new(),
                    finished: false,
                    aborted: None,
                });
                self.tell(Ok(Response::Begun(tid)))
            }
            (Doing::SnapshotAsk { asked, seen, clock }, result) => {
                if let Ok(Answer::SnapshotAt(at)) = result {
                    return self.snapshot_at(at, shared);
                }
                let asked = asked + 1;
                if asked == self.nodes {
                    return self.snapshot_at(seen.max(clock), shared);
                }
                let node = (self.home + asked) % self.nodes;
                let doing = Doing::SnapshotAsk { asked, seen, clock };
                self.send(doing, node, Request::SnapshotTimestamp { seen, clock })
            }
            (Doing::SnapshotRead, Ok(Answer::Snapshot { value, .. })) => {
                self.tell(Ok(Response::Read(value)))
            }
            (
                Doing::Op {
                    node,
                    first,
                    read,
                    what,
                    key,
                },
                result,
            ) => {
                if matches!(result, Err(Error::NodeDown { .. }))
                    && first
                    && let Some(txn) = self.txn.as_mut()
                {
                    // The node never held this transaction's work, or lost it.
                    txn.participants.remove(&node);
                }
                match (read, result) {
                    (true, Ok(Answer::Value(value))) => self.tell(Ok(Response::Read(value))),
                    (false, Ok(_)) => self.tell(Ok(Response::Done)),
                    (_, Ok(other)) => self.failed(unexpected(other), what, &key),
                    (_, Err(error)) => self.failed(error, what, &key),
                }
            }
            (Doing::AbortAfter(error), _) => self.tell(Err(error)),
            (Doing::Commit(_), Ok(Answer::Committed { at, .. })) => {
                shared.clock = shared.clock.max(at);
                self.seen = self.seen.max(shared.clock);
                self.tell(Ok(Response::Done))
            }
            (Doing::Commit(tid), Err(Error::NodeDown { node, .. })) if node == self.home => {
                let coordinator = self.home;
                self.tell(Err(Error::OutcomeUnknown { tid, coordinator }))
            }
            (Doing::Abort, Ok(_)) => self.tell(Ok(Response::Done)),
            (_, Err(error)) => self.tell(Err(error)),
            (_, Ok(other)) => self.tell(Err(unexpected(other))),
        }
    }

    fn snapshot_at(&mut self, at: Timestamp, shared: &mut Shared) -> Option<(NodeId, Request)> {
        shared.clock = shared.clock.max(at);
        self.snapshot = Some(at);
        self.tell(Ok(Response::Snapshot(at)))
    }
}

fn unexpected(answer: Answer) -> Error {
    Error::InvalidInput(format!("the cluster gave an unexpected answer: {answer:?}"))
}
