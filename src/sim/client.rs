//! Simulated clients: each runs a fixed plan of transactions the way `client.rs` drives
//! a real one, one request at a time, and records what it was told.
//!
//! A read-write transaction begins with its first operation (`BeginAnd` to the client's
//! coordinator, which hands the operation to the key's owner), sends every later read
//! and write straight to the key's owner with the transaction's id, begin stamp and
//! whether it is the first operation on that node, and commits or aborts at its
//! coordinator over the nodes it touched. A failed operation aborts the transaction
//! everywhere (best effort, as `Transaction::abort_on_error`); a commit answered "node
//! down" (its coordinator, or a one-phase commit's only participant) leaves the outcome
//! unknown, as the fault runs count it. A read-only transaction reads one snapshot, at
//! the newest timestamp no undecided transaction holds back but never below the
//! client's last commit; a lone read (`Client::get`) reads at least that.
//!
//! The workload is list-append (see `history`): every write appends an
//! element unique in the run to the list a key holds, after reading it for update, so
//! the history names the writer of every element read.

use super::net::ClientId;
use crate::error::Error;
use crate::lock::LockMode;
use crate::message::{Answer, ReadAt, Reply, ReqId, Request};
use crate::types::{NodeId, Timestamp, TxnId, owner_of};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// One transaction a client will run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnPlan {
    /// Reads and appends under locks, then commit (or abort, if `commit` is false).
    ReadWrite {
        /// The operations, in order.
        ops: Vec<PlanOp>,
        /// Whether it ends with COMMIT rather than ABORT.
        commit: bool,
    },
    /// Lock-free reads of one snapshot.
    ReadOnly {
        /// The keys read.
        keys: Vec<String>,
    },
    /// One lock-free read of a recent snapshot.
    Get {
        /// The key.
        key: String,
    },
}

/// An operation of a read-write transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlanOp {
    /// A read under a shared lock.
    Read(String),
    /// A read for update, then a write of the list with one more element.
    Append(String),
}

/// What the client was told about a transaction (the history checker's own type).
pub use crate::history::Outcome;

/// One operation as it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Read `key` and saw `list`.
    Read {
        /// The key.
        key: String,
        /// The elements read, in order.
        list: Vec<String>,
    },
    /// Asked to append `elem` to `key` (whether or not the write was buffered).
    Append {
        /// The key.
        key: String,
        /// The element, unique in the run.
        elem: String,
    },
}

/// One transaction of the history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnRecord {
    /// A name for reports: client and index, and the id once known (`c1.4/T7`).
    pub name: String,
    /// What its client was told.
    pub outcome: Outcome,
    /// Its operations, in order.
    pub ops: Vec<Op>,
}

/// The list a stored value holds: absent or empty is the empty list.
pub fn parse_list(value: Option<&str>) -> Vec<String> {
    match value {
        None | Some("") => Vec::new(),
        Some(text) => text.split(',').map(str::to_string).collect(),
    }
}

/// What the simulated clients share, as the sessions of one client library do
/// (`client::ClientClock`): the highest timestamp any of them was told, which their
/// commits carry, and their count of transactions begun, which stamps each begin.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Shared {
    /// The highest timestamp any client was told.
    pub(super) clock: Timestamp,
    /// Transactions begun.
    pub(super) begun: u64,
}

impl Shared {
    pub(super) fn begin_stamp(&mut self) -> u64 {
        self.begun += 1;
        self.begun
    }
}

/// A step of a read-write transaction still to do.
#[derive(Clone, Debug)]
enum Todo {
    Read(String, LockMode),
    Write(String),
    Commit,
    Abort,
}

#[derive(Clone, Debug)]
struct ReadWrite {
    tid: Option<TxnId>,
    began: u64,
    participants: BTreeSet<NodeId>,
    todo: VecDeque<Todo>,
    /// The step sent, its node and whether it was the first there.
    doing: Option<(Todo, NodeId, bool)>,
    /// The value each key had when this transaction last read it.
    values: BTreeMap<String, Option<String>>,
}

#[derive(Clone, Debug)]
enum Kind {
    ReadWrite(ReadWrite),
    ReadOnly {
        /// `None` until a node has chosen the snapshot.
        read_ts: Option<Timestamp>,
        /// Whether the request for the snapshot's timestamp is out.
        asking: bool,
        keys: VecDeque<String>,
        doing: Option<String>,
    },
    Get {
        key: Option<String>,
        doing: Option<String>,
    },
}

#[derive(Clone, Debug)]
struct Running {
    record: TxnRecord,
    kind: Kind,
}

/// A simulated client session.
#[derive(Clone, Debug)]
pub struct SimClient {
    id: ClientId,
    /// Its coordinator.
    home: NodeId,
    nodes: u32,
    plans: VecDeque<TxnPlan>,
    running: Option<Running>,
    /// The request it waits for an answer to.
    pub(super) outstanding: Option<ReqId>,
    /// Answers let out to it, in order, not yet taken.
    pub(super) mailbox: VecDeque<(ReqId, Reply)>,
    /// The timestamp after its latest commit.
    seen: Timestamp,
    begun: usize,
    appended: u64,
    /// What it was told, transaction by transaction.
    pub(super) history: Vec<TxnRecord>,
}

impl SimClient {
    /// A client coordinated by `home` that will run `plans`.
    pub fn new(id: ClientId, home: NodeId, nodes: u32, plans: Vec<TxnPlan>) -> SimClient {
        SimClient {
            id,
            home,
            nodes,
            plans: plans.into(),
            running: None,
            outstanding: None,
            mailbox: VecDeque::new(),
            seen: 0,
            begun: 0,
            appended: 0,
            history: Vec::new(),
        }
    }

    /// Whether it has something to do: an answer to take, or a transaction to start.
    pub(super) fn ready(&self) -> bool {
        match self.outstanding {
            Some(req) => {
                (self.mailbox.iter()).any(|(r, reply)| *r == req && matches!(reply, Reply::Done(_)))
            }
            None => self.running.is_some() || !self.plans.is_empty(),
        }
    }

    /// Whether it has run its whole plan.
    pub(super) fn finished(&self) -> bool {
        self.outstanding.is_none() && self.running.is_none() && self.plans.is_empty()
    }

    /// Takes the answers waiting, then returns the next request and its node, if any.
    pub(super) fn act(&mut self, shared: &mut Shared) -> Option<(NodeId, Request)> {
        while let Some((req, reply)) = self.mailbox.pop_front() {
            if Some(req) != self.outstanding {
                continue;
            }
            match reply {
                Reply::Waiting { .. } => {}
                Reply::Begun(tid, began) => self.begun_as(tid, began),
                Reply::Done(result) => {
                    self.outstanding = None;
                    self.answer(result, shared);
                    break;
                }
            }
        }
        if self.outstanding.is_some() {
            return None;
        }
        loop {
            if self.running.is_none() {
                let plan = self.plans.pop_front()?;
                self.running = Some(self.start(plan));
            }
            if let Some(next) = self.next_request(shared) {
                return Some(next);
            }
            if let Some(running) = self.running.take() {
                self.history.push(running.record);
            }
        }
    }

    fn start(&mut self, plan: TxnPlan) -> Running {
        let name = format!("c{}.{}", self.id, self.begun);
        self.begun += 1;
        let record = TxnRecord {
            name,
            outcome: Outcome::Committed,
            ops: Vec::new(),
        };
        let kind = match plan {
            TxnPlan::ReadWrite { ops, commit } => {
                let mut todo: VecDeque<Todo> = VecDeque::new();
                for op in ops {
                    match op {
                        PlanOp::Read(key) => todo.push_back(Todo::Read(key, LockMode::Shared)),
                        PlanOp::Append(key) => {
                            todo.push_back(Todo::Read(key.clone(), LockMode::Exclusive));
                            todo.push_back(Todo::Write(key));
                        }
                    }
                }
                todo.push_back(if commit { Todo::Commit } else { Todo::Abort });
                Kind::ReadWrite(ReadWrite {
                    tid: None,
                    began: 0,
                    participants: BTreeSet::new(),
                    todo,
                    doing: None,
                    values: BTreeMap::new(),
                })
            }
            TxnPlan::ReadOnly { keys } => Kind::ReadOnly {
                read_ts: None,
                asking: false,
                keys: keys.into(),
                doing: None,
            },
            TxnPlan::Get { key } => Kind::Get {
                key: Some(key),
                doing: None,
            },
        };
        Running { record, kind }
    }

    fn begun_as(&mut self, tid: TxnId, began: u64) {
        if let Some(Running {
            record,
            kind: Kind::ReadWrite(rw),
        }) = &mut self.running
        {
            rw.tid = Some(tid);
            rw.began = began;
            record.name = format!("{}/{tid}", record.name);
        }
    }

    /// The next request of the running transaction; `None` when it is over.
    fn next_request(&mut self, shared: &mut Shared) -> Option<(NodeId, Request)> {
        let (home, nodes) = (self.home, self.nodes);
        let running = self.running.as_mut()?;
        match &mut running.kind {
            Kind::ReadWrite(rw) => {
                let todo = rw.todo.pop_front()?;
                let next = match &todo {
                    Todo::Read(key, mode) => {
                        let (key, mode) = (key.clone(), *mode);
                        rw.operate(home, nodes, todo, shared, |tid, first, began| {
                            Request::Read {
                                tid,
                                key,
                                mode,
                                first,
                                began,
                            }
                        })
                    }
                    Todo::Write(key) => {
                        let elem = format!("{}e{}", self.id, self.appended);
                        self.appended += 1;
                        let before = rw.values.get(key).cloned().flatten();
                        let value = match before.as_deref() {
                            None | Some("") => elem.clone(),
                            Some(text) => format!("{text},{elem}"),
                        };
                        running.record.ops.push(Op::Append {
                            key: key.clone(),
                            elem,
                        });
                        let key = key.clone();
                        rw.operate(home, nodes, todo, shared, |tid, first, began| {
                            Request::Write {
                                tid,
                                key,
                                value: Some(value),
                                first,
                                began,
                            }
                        })
                    }
                    Todo::Commit | Todo::Abort => {
                        let tid = rw.tid?;
                        let participants = rw.participants.iter().copied().collect();
                        let request = match todo {
                            Todo::Commit => Request::Commit {
                                tid,
                                participants,
                                clock: shared.clock,
                            },
                            _ => Request::Abort { tid, participants },
                        };
                        rw.doing = Some((todo, home, false));
                        (home, request)
                    }
                };
                Some(next)
            }
            Kind::ReadOnly {
                read_ts,
                asking,
                keys,
                doing,
            } => {
                let Some(read_ts) = *read_ts else {
                    // Its home node chooses the snapshot (`Client::begin_read_only`).
                    *asking = true;
                    let (seen, clock) = (self.seen, shared.clock);
                    return Some((home, Request::SnapshotTimestamp { seen, clock }));
                };
                let key = keys.pop_front()?;
                *doing = Some(key.clone());
                let at = ReadAt::Exactly(read_ts);
                Some((owner_of(&key, nodes), Request::SnapshotRead { key, at }))
            }
            Kind::Get { key, doing } => {
                let key = key.take()?;
                *doing = Some(key.clone());
                let at = ReadAt::AtLeast(self.seen);
                Some((owner_of(&key, nodes), Request::SnapshotRead { key, at }))
            }
        }
    }

    /// Takes the answer to the request sent.
    fn answer(&mut self, result: Result<Answer, Error>, shared: &mut Shared) {
        let Some(running) = self.running.as_mut() else {
            return;
        };
        let record = &mut running.record;
        match &mut running.kind {
            Kind::ReadWrite(rw) => {
                let Some((todo, node, first)) = rw.doing.take() else {
                    return;
                };
                match (todo, result) {
                    (Todo::Read(key, _), Ok(Answer::Value(value))) => {
                        let list = parse_list(value.as_deref());
                        record.ops.push(Op::Read {
                            key: key.clone(),
                            list,
                        });
                        rw.values.insert(key, value);
                    }
                    (Todo::Write(_), Ok(_)) => {}
                    (Todo::Read(..) | Todo::Write(_), Err(error)) => {
                        if matches!(error, Error::NodeDown { .. }) && first {
                            rw.participants.remove(&node);
                        }
                        record.outcome = Outcome::Aborted;
                        rw.todo.clear();
                        if rw.tid.is_some() {
                            rw.todo.push_back(Todo::Abort);
                        }
                    }
                    (Todo::Read(..), Ok(_)) => record.outcome = Outcome::Aborted,
                    (Todo::Commit, Ok(answer)) => {
                        if let Answer::Committed { at, .. } = answer {
                            shared.clock = shared.clock.max(at);
                        }
                        self.seen = self.seen.max(shared.clock);
                    }
                    // Its coordinator went down, or a one-phase commit's only
                    // participant did not answer: committed if that node logged it.
                    (Todo::Commit, Err(Error::NodeDown { .. } | Error::OutcomeUnknown { .. })) => {
                        record.outcome = Outcome::Unknown
                    }
                    (Todo::Commit | Todo::Abort, _) => record.outcome = Outcome::Aborted,
                }
            }
            Kind::ReadOnly {
                read_ts,
                asking: asking @ true,
                ..
            } => {
                // If its home node is down, the snapshot is the newest the clients
                // know of, as the client library falls back to.
                let at = match result {
                    Ok(Answer::SnapshotAt(at)) => at,
                    _ => self.seen.max(shared.clock),
                };
                shared.clock = shared.clock.max(at);
                *read_ts = Some(at);
                *asking = false;
            }
            Kind::ReadOnly { doing, .. } | Kind::Get { doing, .. } => {
                if let (Some(key), Ok(Answer::Snapshot { value, .. })) = (doing.take(), result) {
                    let list = parse_list(value.as_deref());
                    record.ops.push(Op::Read { key, list });
                }
            }
        }
    }
}

impl ReadWrite {
    /// An operation on `key`'s owner, beginning the transaction with it if need be.
    fn operate(
        &mut self,
        home: NodeId,
        nodes: u32,
        todo: Todo,
        shared: &mut Shared,
        request: impl FnOnce(TxnId, bool, u64) -> Request,
    ) -> (NodeId, Request) {
        let key = match &todo {
            Todo::Read(key, _) | Todo::Write(key) => key.clone(),
            Todo::Commit | Todo::Abort => String::new(),
        };
        let node = owner_of(&key, nodes);
        let first = self.participants.insert(node);
        self.doing = Some((todo, node, first));
        match self.tid {
            Some(tid) => (node, request(tid, first, self.began)),
            None => {
                let then = Box::new(request(TxnId(0), true, 0));
                let began = shared.begin_stamp();
                (
                    home,
                    Request::BeginAnd {
                        owner: node,
                        then,
                        began,
                    },
                )
            }
        }
    }
}
