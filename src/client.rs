//! The client API: sessions attached to a coordinator node, and their transactions.
//!
//! A [`Client`] sends each read and write straight to the key's owner (one message round
//! trip) and remembers which nodes its transaction touched; at `commit` it hands that
//! list to its coordinator, which runs two-phase commit over exactly those nodes. A
//! transaction used once and dropped without `commit` is aborted.
//!
//! Operations outside a transaction (`Client::get`, `put`, `delete`) commit on their own.

use crate::error::{Error, Result};
use crate::lock::LockMode;
use crate::mailbox::{Mailbox, mailbox};
use crate::message::{Answer, ReadAt, Reply, Request};
use crate::router::Shared;
use crate::types::{NodeId, Timestamp, TxnId, check_key, check_value, owner_of};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A request of this client is queued for a lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WaitInfo {
    /// The waiting transaction (`None` for a read outside a read-write transaction).
    pub tid: Option<TxnId>,
    /// The key.
    pub key: String,
    /// The node that owns it.
    pub node: NodeId,
    /// The mode asked for.
    pub mode: LockMode,
    /// The transactions it waits for.
    pub blockers: Vec<TxnId>,
}

/// Learns when a client's requests wait for a lock, and when its thread blocks on the
/// cluster and wakes again. The shell uses it to tell a session blocked on a lock from
/// one still working, which is what makes its output deterministic.
pub trait ClientObserver: Send + Sync {
    /// A request started waiting for a lock.
    fn waiting(&self, info: &WaitInfo);
    /// The client's thread is about to block until the cluster answers.
    fn blocking(&self);
    /// The client's thread woke with an answer (or the node's death), before the answer
    /// stops counting as in flight.
    fn resumed(&self);
}

/// A client session, attached to one coordinator node. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
    coordinator: NodeId,
    observer: Option<Arc<dyn ClientObserver>>,
    /// The timestamp after this session's latest commit: its later snapshot reads see at
    /// least that much, so it always sees its own writes. Reads do not move it: a read
    /// of a key with an undecided write may then go below that write instead of waiting
    /// for it (each autocommit read is a consistent snapshot of its own; a consistent
    /// view of several keys is what `begin_read_only` is for).
    seen: Arc<AtomicU64>,
}

impl Client {
    pub(crate) fn new(shared: Arc<Shared>, coordinator: NodeId) -> Client {
        Client {
            shared,
            coordinator,
            observer: None,
            seen: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The coordinator node of this session.
    pub fn coordinator(&self) -> NodeId {
        self.coordinator
    }

    /// Reports this client's lock waits and blocking to `observer`.
    pub fn observe(&mut self, observer: Arc<dyn ClientObserver>) {
        self.observer = Some(observer);
    }

    /// Starts a transaction now: the coordinator allocates its id at once.
    pub fn begin(&self) -> Result<Transaction> {
        match self.call(self.coordinator, Request::Begin, None)? {
            Answer::Begun(tid) => {
                let mut txn = self.begin_lazily();
                txn.tid = Some(tid);
                Ok(txn)
            }
            other => Err(unexpected(other)),
        }
    }

    /// A transaction that begins with its first read or write: that operation goes to
    /// the coordinator, which allocates the id and hands the operation on to the key's
    /// owner, so beginning costs no round trip of its own. Its [`Transaction::id`] is
    /// known from then on; one that never reads or writes never begins, and commits or
    /// aborts without a message.
    pub fn begin_lazily(&self) -> Transaction {
        Transaction {
            client: self.clone(),
            tid: None,
            participants: BTreeSet::new(),
            finished: false,
        }
    }

    /// Reads `key` in a transaction of its own.
    ///
    /// The read takes no lock and costs one round trip to the key's owner: it reads the
    /// newest committed snapshot that need not wait for an undecided transaction, and at
    /// least everything this session has committed (only then does it wait: when the
    /// key has an undecided write older than the session's last commit).
    pub fn get(&self, key: &str) -> Result<Option<String>> {
        check_key(key)?;
        let floor = self.seen.load(Ordering::SeqCst);
        self.snapshot_read(key, ReadAt::AtLeast(floor))
    }

    fn snapshot_read(&self, key: &str, at: ReadAt) -> Result<Option<String>> {
        let node = owner_of(key, self.shared.nodes);
        let request = Request::SnapshotRead {
            key: key.to_string(),
            at,
        };
        match self.call(node, request, None)? {
            Answer::Snapshot { value, .. } => Ok(value),
            other => Err(unexpected(other)),
        }
    }

    /// Starts a read-only transaction: every read sees one committed snapshot, takes no
    /// lock, never waits for a writer's lock and never aborts. The snapshot is the newest
    /// that no undecided transaction holds back, but never older than this session's last
    /// commit (then a read of a key written by an undecided transaction older than that
    /// commit waits).
    pub fn begin_read_only(&self) -> ReadOnly {
        let seen = self.seen.load(Ordering::SeqCst);
        ReadOnly {
            client: self.clone(),
            read_ts: seen.max(self.shared.safe_ts()),
        }
    }

    /// Notes that this session committed: its later snapshots include the commit.
    fn committed(&self) {
        self.seen
            .fetch_max(self.shared.ts.current(), Ordering::SeqCst);
    }

    /// Writes `key` in a transaction of its own.
    pub fn put(&self, key: &str, value: &str) -> Result<()> {
        check_key(key)?;
        check_value(value)?;
        let mut txn = self.begin_lazily();
        txn.put(key, value)?;
        txn.commit()
    }

    /// Deletes `key` in a transaction of its own.
    pub fn delete(&self, key: &str) -> Result<()> {
        check_key(key)?;
        let mut txn = self.begin_lazily();
        txn.delete(key)?;
        txn.commit()
    }

    /// Sends `request` to `node` and waits for its answer, reporting lock waits.
    fn call(&self, node: NodeId, request: Request, mut tid: Option<TxnId>) -> Result<Answer> {
        self.call_tracking(node, request, &mut tid)
    }

    /// As `call`, and a `Reply::Begun` sets `tid`.
    fn call_tracking(
        &self,
        node: NodeId,
        request: Request,
        tid: &mut Option<TxnId>,
    ) -> Result<Answer> {
        let (reply, answers) = mailbox();
        self.shared.request(node, request, reply)?;
        loop {
            let answer = match answers.try_recv() {
                Some(answer) => Some(answer),
                None => self.blocking_recv(&answers),
            };
            match answer {
                Some(Reply::Waiting {
                    key,
                    mode,
                    blockers,
                }) => {
                    if let Some(observer) = &self.observer {
                        observer.waiting(&WaitInfo {
                            tid: *tid,
                            key,
                            node,
                            mode,
                            blockers,
                        });
                    }
                    self.shared.handled(1);
                }
                Some(Reply::Begun(begun)) => {
                    *tid = Some(begun);
                    self.shared.handled(1);
                }
                Some(Reply::Done(result)) => {
                    self.shared.handled(1);
                    return result;
                }
                None => {
                    return Err(Error::NodeDown {
                        node,
                        detail: "it crashed before answering".into(),
                    });
                }
            }
        }
    }

    fn blocking_recv(&self, answers: &Mailbox) -> Option<Reply> {
        if let Some(observer) = &self.observer {
            observer.blocking();
        }
        let answer = answers.recv();
        if let Some(observer) = &self.observer {
            observer.resumed();
        }
        answer
    }
}

/// An open transaction. Dropping it without `commit` aborts it.
pub struct Transaction {
    client: Client,
    /// `None` until a transaction from `begin_lazily` has begun.
    tid: Option<TxnId>,
    /// The nodes this transaction has read or written on.
    participants: BTreeSet<NodeId>,
    /// Committed, aborted, or known aborted by a participant.
    finished: bool,
}

impl Transaction {
    /// The transaction's id; `None` for one from [`Client::begin_lazily`] that has not
    /// read or written yet.
    pub fn id(&self) -> Option<TxnId> {
        self.tid
    }

    /// The nodes the transaction has touched, sorted.
    pub fn participants(&self) -> Vec<NodeId> {
        self.participants.iter().copied().collect()
    }

    /// Reads `key` under a shared lock, seeing this transaction's own writes.
    pub fn get(&mut self, key: &str) -> Result<Option<String>> {
        self.read(key, LockMode::Shared)
    }

    /// Reads `key` under an exclusive lock held until the transaction ends (`SELECT ...
    /// FOR UPDATE`), seeing this transaction's own writes. Use it to read a key that the
    /// transaction will then write: with `get`, two transactions that read and then write
    /// one key both hold shared locks and deadlock when each upgrades; with
    /// `get_for_update` the second waits at its read until the first ends. If nothing is
    /// written, the lock is released at COMMIT like a shared one (READ-ONLY vote).
    pub fn get_for_update(&mut self, key: &str) -> Result<Option<String>> {
        self.read(key, LockMode::Exclusive)
    }

    fn read(&mut self, key: &str, mode: LockMode) -> Result<Option<String>> {
        check_key(key)?;
        let node = owner_of(key, self.client.shared.nodes);
        let key = key.to_string();
        let request = |tid, first| Request::Read {
            tid,
            key,
            mode,
            first,
        };
        match self.operate(node, request)? {
            Answer::Value(value) => Ok(value),
            other => Err(unexpected(other)),
        }
    }

    /// Writes `value` to `key`.
    pub fn put(&mut self, key: &str, value: &str) -> Result<()> {
        check_value(value)?;
        self.write(key, Some(value.to_string()))
    }

    /// Deletes `key`.
    pub fn delete(&mut self, key: &str) -> Result<()> {
        self.write(key, None)
    }

    fn write(&mut self, key: &str, value: Option<String>) -> Result<()> {
        check_key(key)?;
        let node = owner_of(key, self.client.shared.nodes);
        let key = key.to_string();
        self.operate(node, |tid, first| Request::Write {
            tid,
            key,
            value,
            first,
        })?;
        Ok(())
    }

    /// Sends an operation to `node`; an abort reported by a participant ends the
    /// transaction everywhere.
    fn operate(
        &mut self,
        node: NodeId,
        request: impl FnOnce(TxnId, bool) -> Request,
    ) -> Result<Answer> {
        self.check_open()?;
        let first = self.participants.insert(node);
        let result = match self.tid {
            Some(tid) => self.client.call(node, request(tid, first), Some(tid)),
            None => {
                let then = Box::new(request(TxnId(0), true));
                let begin = Request::BeginAnd { owner: node, then };
                let coordinator = self.client.coordinator;
                let result = self.client.call_tracking(coordinator, begin, &mut self.tid);
                if self.tid.is_none() {
                    // The coordinator never began it: nothing to end anywhere.
                    self.participants.remove(&node);
                    return result;
                }
                result
            }
        };
        match &result {
            Err(Error::Aborted { .. }) => self.abort_everywhere(),
            Err(Error::NodeDown { .. }) if first => {
                self.participants.remove(&node);
            }
            _ => {}
        }
        result
    }

    fn check_open(&self) -> Result<()> {
        if self.finished {
            let what = self
                .tid
                .map_or("the transaction".into(), |tid| tid.to_string());
            return Err(Error::InvalidInput(format!("{what} has already ended")));
        }
        Ok(())
    }

    /// Commits: two-phase commit over the nodes touched (one phase if only one).
    pub fn commit(mut self) -> Result<()> {
        self.check_open()?;
        self.finished = true;
        let Some(tid) = self.tid else {
            return Ok(());
        };
        let coordinator = self.client.coordinator;
        let request = Request::Commit {
            tid,
            participants: self.participants(),
        };
        match self.client.call(coordinator, request, Some(tid)) {
            Ok(_) => {
                self.client.committed();
                Ok(())
            }
            Err(Error::NodeDown { node, .. }) if node == coordinator => {
                Err(Error::OutcomeUnknown { tid, coordinator })
            }
            Err(error) => Err(error),
        }
    }

    /// Aborts: every participant drops the transaction's writes and releases its locks.
    pub fn abort(mut self) -> Result<()> {
        self.check_open()?;
        self.finished = true;
        let Some(tid) = self.tid else {
            return Ok(());
        };
        let request = Request::Abort {
            tid,
            participants: self.participants(),
        };
        self.client
            .call(self.client.coordinator, request, None)
            .map(|_| ())
    }

    /// After a participant aborted the transaction: tell the others, best effort.
    fn abort_everywhere(&mut self) {
        self.finished = true;
        let Some(tid) = self.tid else {
            return;
        };
        let request = Request::Abort {
            tid,
            participants: self.participants(),
        };
        let _ = self.client.call(self.client.coordinator, request, None);
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        if !self.finished {
            self.abort_everywhere();
        }
    }
}

/// A read-only transaction: reads of one committed snapshot, without locks.
pub struct ReadOnly {
    client: Client,
    read_ts: Timestamp,
}

impl ReadOnly {
    /// The snapshot's timestamp.
    pub fn read_ts(&self) -> Timestamp {
        self.read_ts
    }

    /// Reads `key` in the snapshot.
    pub fn get(&self, key: &str) -> Result<Option<String>> {
        check_key(key)?;
        self.client
            .snapshot_read(key, ReadAt::Exactly(self.read_ts))
    }

    /// Ends the transaction. Nothing was locked or written, so there is nothing to send.
    pub fn commit(self) {}
}

fn unexpected(answer: Answer) -> Error {
    Error::InvalidInput(format!("the cluster gave an unexpected answer: {answer:?}"))
}
