//! The client API: sessions attached to a coordinator node, and their transactions.
//!
//! A [`Client`] sends each read and write straight to the key's owner (one message round
//! trip) and remembers which nodes its transaction touched; at `commit` it hands that
//! list to its coordinator, which runs two-phase commit over exactly those nodes. A
//! transaction used once and dropped without `commit` is aborted.
//!
//! Operations outside a transaction (`Client::get`, `scan`, `put`, `delete`) commit on
//! their own. A range read (`Transaction::scan`) goes to every node, since keys are
//! placed by hash, and its rows are merged in key order.
//!
//! # A failed operation aborts its transaction
//!
//! As in PostgreSQL, an error inside a read-write transaction aborts it: whether the
//! cluster refused the operation (a node down, a deadlock victim, the per-node write
//! limit) or the library did before sending it (an empty or too long key, a value too
//! long), the transaction is aborted at its coordinator and at every participant it
//! touched, which drop its writes and release its locks, and a later operation or
//! `commit` returns [`Error::Aborted`] saying why. So a program that misses one error
//! cannot commit the other half of its transaction. The library's own checks count too,
//! because the program meant that write to be part of the transaction all the same.
//! (The shell's parser is in front of all this: a line that does not parse is never an
//! operation, and leaves the transaction as it was.) A read-only transaction has nothing
//! to undo and nothing to commit: a failed read leaves its snapshot open, to read again.

mod pipeline;
mod transaction;

pub use pipeline::{Outcome, Pipeline, Program, Step, Steps, Ticket};
pub use transaction::{ReadOnly, Transaction};

use crate::cluster::Cluster;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::keyrange::KeyRange;
use crate::lock::LockMode;
use crate::message::{Answer, ReadAt, Reply, Request};
use crate::net::{Mailbox, Work, mailbox};
use crate::types::{NodeId, Timestamp, TxnId, check_key, check_value, owner_of};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub use crate::clock::ClientClock;

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
    ctx: Arc<Context>,
    /// Shared by every session of the cluster handle.
    clock: Arc<ClientClock>,
    coordinator: NodeId,
    observer: Option<Arc<dyn ClientObserver>>,
    /// The timestamp after this session's latest commit: its later snapshot reads see at
    /// least that much, so it always sees its own writes. Reads do not move it: a read
    /// of a key with an undecided write may then go below that write instead of waiting
    /// for it (each autocommit read is a consistent snapshot of its own; a consistent
    /// view of several keys is what `begin_read_only` is for).
    seen: Arc<AtomicU64>,
}

impl Cluster {
    /// A client session whose transactions node `coordinator` coordinates. (Defined here,
    /// in the client layer, so that the cluster below names no client type.)
    pub fn client(&self, coordinator: NodeId) -> Result<Client> {
        self.context().net.check_node(coordinator)?;
        Ok(Client::new(
            self.context().clone(),
            self.client_clock().clone(),
            coordinator,
        ))
    }
}

impl Client {
    fn new(ctx: Arc<Context>, clock: Arc<ClientClock>, coordinator: NodeId) -> Client {
        Client {
            ctx,
            clock,
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
        let began = self.clock.begin_stamp();
        match self.call(self.coordinator, Request::Begin { began }, None)? {
            Answer::Begun(tid, began) => {
                let mut txn = self.begin_lazily();
                txn.tid = Some(tid);
                txn.began = began;
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
            began: 0,
            participants: BTreeSet::new(),
            finished: false,
            aborted: None,
        }
    }

    /// Reads `key` in a transaction of its own.
    ///
    /// The read takes no lock and costs one round trip to the key's owner: it reads the
    /// newest committed snapshot that need not wait for an undecided transaction, and at
    /// least everything this session has committed (only then does it wait: when the
    /// key has an undecided write older than the session's last commit).
    pub fn get(&self, key: &str) -> Result<Option<String>> {
        self.get_stamped(key).map(|(value, _)| value)
    }

    /// Reads `key` as [`Client::get`] does, and returns the snapshot's timestamp with
    /// the value: the read saw the newest version at or below it (what the shell's
    /// history places the read by).
    pub fn get_stamped(&self, key: &str) -> Result<(Option<String>, Timestamp)> {
        check_key(key)?;
        let floor = self.seen.load(Ordering::SeqCst);
        self.snapshot_read_stamped(key, ReadAt::AtLeast(floor))
    }

    fn snapshot_read(&self, key: &str, at: ReadAt) -> Result<Option<String>> {
        self.snapshot_read_stamped(key, at).map(|(value, _)| value)
    }

    fn snapshot_read_stamped(&self, key: &str, at: ReadAt) -> Result<(Option<String>, Timestamp)> {
        let node = owner_of(key, self.ctx.nodes);
        let request = Request::SnapshotRead {
            key: key.to_string(),
            at,
        };
        match self.call(node, request, None)? {
            Answer::Snapshot { value, read_ts } => Ok((value, read_ts)),
            other => Err(unexpected(other)),
        }
    }

    /// Starts a read-only transaction: every read sees one committed snapshot, takes no
    /// lock, never waits for a writer's lock and never aborts. The snapshot is the newest
    /// that no undecided transaction holds back, but never older than this session's last
    /// commit (then a read of a key written by an undecided transaction older than that
    /// commit waits).
    ///
    /// The session's node chooses the snapshot by asking every node for its floor
    /// (`node::floors`); if it is down, the next node that is up does. If none is, the
    /// snapshot is the highest timestamp this client has seen, so it still sees every
    /// commit the client was told of.
    pub fn begin_read_only(&self) -> ReadOnly {
        let seen = self.seen.load(Ordering::SeqCst);
        let clock = self.clock.now();
        let nodes = self.ctx.nodes;
        let asked = (0..nodes).map(|n| (self.coordinator + n) % nodes);
        let chosen = asked.into_iter().find_map(|node| {
            match self.call(node, Request::SnapshotTimestamp { seen, clock }, None) {
                Ok(Answer::SnapshotAt(at)) => Some(at),
                _ => None,
            }
        });
        let read_ts = chosen.unwrap_or(seen.max(clock));
        self.clock.observe(read_ts);
        ReadOnly {
            client: self.clone(),
            read_ts,
        }
    }

    /// Notes that this session committed, told a timestamp `at` or above the commit's:
    /// its later snapshots include the commit.
    fn committed(&self, at: Timestamp) {
        self.clock.observe(at);
        self.seen.fetch_max(self.clock.now(), Ordering::SeqCst);
    }

    /// Reads every key in `range`, on every node, in a transaction of its own: one
    /// consistent snapshot across the nodes, chosen as for [`Client::begin_read_only`],
    /// without locks. (A `get` reads one node and can take the newest version there; a
    /// range spans every node, and a snapshot per node would not be one view.)
    pub fn scan(&self, range: &KeyRange) -> Result<Vec<(String, String)>> {
        self.begin_read_only().scan(range)
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

    /// Aborts `tid`, a transaction this client's node coordinates, from outside the
    /// thread that runs it: the coordinator forgets it and tells `nodes` to drop its
    /// writes and release its locks, and an operation of it waiting for a lock at one of
    /// them fails with [`Error::Aborted`]. The thread that runs it then aborts it at its
    /// other participants as after any failed operation. This is how a shell cancels a
    /// lock wait (Ctrl-C, or ABORT typed while the session waits).
    pub fn abort_from_outside(&self, tid: TxnId, nodes: Vec<NodeId>) -> Result<()> {
        let request = Request::Abort {
            tid,
            participants: nodes,
        };
        self.call(self.coordinator, request, None).map(|_| ())
    }

    /// Sends `request` to `node` and waits for its answer, reporting lock waits.
    /// Where an operation on `node` goes, and as what: to `node` itself once the
    /// transaction has its id `tid`; before that, to the coordinator as the BEGIN that
    /// carries it (`Request::BeginAnd`), with a fresh begin stamp. `make` builds the
    /// operation from the id, whether it is the first on `node`, and the begin stamp.
    fn addressed(
        &self,
        tid: Option<TxnId>,
        began: u64,
        node: NodeId,
        first: bool,
        make: impl FnOnce(TxnId, bool, u64) -> Request,
    ) -> (NodeId, Request) {
        match tid {
            Some(tid) => (node, make(tid, first, began)),
            None => {
                let then = Box::new(make(TxnId(0), true, 0));
                let began = self.clock.begin_stamp();
                let begin = Request::BeginAnd {
                    owner: node,
                    then,
                    began,
                };
                (self.coordinator, begin)
            }
        }
    }

    fn call(&self, node: NodeId, request: Request, tid: Option<TxnId>) -> Result<Answer> {
        self.call_tracking(node, request, &mut (tid, 0))
    }

    /// As `call`, and a `Reply::Begun` sets the transaction's id and begin stamp.
    fn call_tracking(
        &self,
        node: NodeId,
        request: Request,
        (tid, began): &mut (Option<TxnId>, u64),
    ) -> Result<Answer> {
        let (reply, answers) = mailbox();
        self.ctx.net.request(node, request, reply)?;
        loop {
            let answer = match answers.try_recv() {
                Some(answer) => Some(answer),
                None => self.blocking_recv(&answers),
            };
            // The reply's work ends at the end of this turn, once the observer has
            // seen it (a session's command counts again before it ends).
            let (answer, _work): (Option<Reply>, Option<Work>) = match answer {
                Some((reply, work)) => (Some(reply), Some(work)),
                None => (None, None),
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
                }
                Some(Reply::Begun(begun, stamp)) => {
                    *tid = Some(begun);
                    *began = stamp;
                }
                Some(Reply::Done(result)) => return result,
                None => {
                    return Err(Error::NodeDown {
                        node,
                        detail: "it crashed before answering".into(),
                    });
                }
            }
        }
    }

    fn blocking_recv(&self, answers: &Mailbox) -> Option<(Reply, Work)> {
        if let Some(observer) = &self.observer {
            observer.blocking();
        }
        let answer = self.ctx.net.receive(answers);
        if let Some(observer) = &self.observer {
            observer.resumed();
        }
        answer
    }
}

fn unexpected(answer: Answer) -> Error {
    Error::InvalidInput(format!("the cluster gave an unexpected answer: {answer:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, Settings};
    use tempfile::TempDir;

    fn cluster(dir: &TempDir) -> Cluster {
        let config = Config {
            nodes: 3,
            manual_clock: true,
            settings: Settings::default(),
        };
        Cluster::open(dir.path(), config).expect("open cluster")
    }

    fn key_on(cluster: &Cluster, node: NodeId, index: usize) -> String {
        (0..)
            .map(|i| format!("k{i}"))
            .filter(|key| cluster.owner(key) == node)
            .nth(index)
            .expect("a key on every node")
    }

    /// After a failed operation: nothing is locked, `commit` says the transaction was
    /// aborted, and `first` kept its old value.
    fn assert_aborted(cluster: &Cluster, txn: Transaction, first: &str) {
        cluster.settle();
        assert!(cluster.locks().is_empty(), "{:?}", cluster.locks());
        let client = cluster.client(0).expect("a client");
        match txn.commit() {
            Err(Error::Aborted { reason, .. }) => assert!(reason.contains("failed"), "{reason}"),
            other => panic!("commit after a failed operation gave {other:?}"),
        }
        assert_eq!(client.get(first).expect("a read"), None);
    }

    #[test]
    fn a_write_to_a_down_node_aborts_the_transaction_everywhere() {
        let dir = TempDir::new().expect("a temp dir");
        let cluster = cluster(&dir);
        let (x, y) = (key_on(&cluster, 1, 0), key_on(&cluster, 2, 0));
        let mut txn = cluster.client(0).expect("a client").begin().expect("begin");
        txn.put(&x, "1").expect("a write on node 1");
        cluster.crash(2).expect("crash node 2");
        assert!(matches!(
            txn.put(&y, "1"),
            Err(Error::NodeDown { node: 2, .. })
        ));
        assert!(matches!(txn.get(&x), Err(Error::Aborted { .. })));
        assert_aborted(&cluster, txn, &x);
    }

    #[test]
    fn a_write_over_the_per_node_limit_aborts_the_transaction() {
        let dir = TempDir::new().expect("a temp dir");
        let cluster = cluster(&dir);
        let mut txn = cluster.client(0).expect("a client").begin().expect("begin");
        for index in 0..crate::types::MAX_WRITES_PER_TXN {
            txn.put(&key_on(&cluster, 1, index), "v")
                .expect("a write under the limit");
        }
        let over = key_on(&cluster, 1, crate::types::MAX_WRITES_PER_TXN);
        assert!(matches!(txn.put(&over, "v"), Err(Error::InvalidInput(_))));
        assert_aborted(&cluster, txn, &key_on(&cluster, 1, 0));
    }

    #[test]
    fn a_key_the_library_refuses_aborts_the_transaction_too() {
        let dir = TempDir::new().expect("a temp dir");
        let cluster = cluster(&dir);
        let client = cluster.client(0).expect("a client");
        let x = key_on(&cluster, 1, 0);
        let mut txn = client.begin().expect("begin");
        txn.put(&x, "1").expect("a write");
        assert!(matches!(txn.put("", "1"), Err(Error::InvalidInput(_))));
        assert_aborted(&cluster, txn, &x);
        // Aborting a transaction that a failed operation aborted is not an error.
        let mut txn = client.begin().expect("begin");
        assert!(txn.get("").is_err());
        assert!(txn.abort().is_ok());
    }
}
