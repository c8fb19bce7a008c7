//! What a node process answers its clients (`wire::tcp::Serve`): their requests go into
//! the node's inbox as an embedded client's would, and a shell's control requests are
//! answered by the process's cluster handle, for its one node.

use crate::cluster::{Admin, AdminReply};
use crate::cluster::{Cluster, TraceEvent};
use crate::error::Error;
use crate::message::Request;
use crate::net::{Bell, Control, Mail, ReplySender, mailbox};
use crate::types::{NodeId, TxnId};
use crate::wire::Frame;
use crate::wire::tcp::{Log, Serve, Transport};
use crossbeam::channel::Sender;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

/// The clients that asked for the trace, by connection.
type Subscribers = Arc<Mutex<HashMap<u64, Sender<Frame>>>>;

/// One node process as its clients see it. Its cluster and transport are set once
/// both are up (a client connecting before that is told the node is starting).
pub(super) struct NodeServer {
    pub(super) node: NodeId,
    pub(super) cluster: OnceLock<Weak<Cluster>>,
    pub(super) transport: OnceLock<Weak<Transport>>,
    subscribers: Subscribers,
    log: Log,
}

impl NodeServer {
    pub(super) fn new(node: NodeId, log: Log) -> NodeServer {
        NodeServer {
            node,
            cluster: OnceLock::new(),
            transport: OnceLock::new(),
            subscribers: Arc::default(),
            log,
        }
    }

    /// See `NodeProcess::flush_trace`.
    pub(super) fn flush_trace(&self, patience: Duration) {
        let deadline = std::time::Instant::now() + patience;
        let queued = || (self.subscribers.lock().values()).any(|sink| !sink.is_empty());
        while queued() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        // The writer took the last frame off its queue: a moment to write it.
        std::thread::sleep(Duration::from_millis(2));
    }

    fn cluster(&self) -> Option<Arc<Cluster>> {
        self.cluster.get().and_then(Weak::upgrade)
    }

    fn starting(&self) -> Error {
        Error::NodeDown {
            node: self.node,
            detail: "it is still starting (recovering its log); ask again in a moment".into(),
        }
    }

    /// Installs the trace hook while anyone listens, and removes it when nobody does
    /// (a traced cluster pays for every event).
    fn retrace(&self, cluster: &Cluster) {
        if self.subscribers.lock().is_empty() {
            cluster.set_trace(None);
            return;
        }
        let subscribers = self.subscribers.clone();
        cluster.set_trace(Some(Arc::new(move |event: &TraceEvent| {
            for sink in subscribers.lock().values() {
                let _ = sink.send(Frame::Trace(event.clone()));
            }
        })));
    }

    fn answer(
        &self,
        cluster: &Cluster,
        admin: Admin,
        client: u64,
        trace: &Sender<Frame>,
    ) -> AdminReply {
        let node = self.node;
        let net = &cluster.context().net;
        let done = |result: crate::error::Result<()>| match result {
            Ok(()) => AdminReply::Done,
            Err(error) => AdminReply::Failed(error.to_string()),
        };
        match admin {
            Admin::Status => match ask(cluster, node, Control::Status) {
                Some(status) => AdminReply::Status(status),
                None => AdminReply::Failed(net.down_error(node).to_string()),
            },
            Admin::Locks => match ask(cluster, node, Control::Locks) {
                Some(locks) => AdminReply::Locks(locks),
                None => AdminReply::Failed(net.down_error(node).to_string()),
            },
            Admin::Data => match cluster.data(node) {
                Ok(data) => AdminReply::Data(data),
                Err(error) => AdminReply::Failed(error.to_string()),
            },
            Admin::Log => {
                let read = || -> crate::error::Result<AdminReply> {
                    Ok(AdminReply::Log {
                        records: cluster.log_records(node)?,
                        unsynced: cluster.log_unsynced(node)?,
                        checkpoint: cluster.log_checkpoint(node)?,
                    })
                };
                read().unwrap_or_else(|error| AdminReply::Failed(error.to_string()))
            }
            Admin::Checkpoint => done(cluster.checkpoint(node)),
            Admin::Arm(point) => done(cluster.arm_crash(node, point)),
            Admin::Crash => die(),
            Admin::Resolve(tid, commit) => done(cluster.resolve(node, tid, commit)),
            Admin::Settings(settings) => {
                cluster.set_settings(settings);
                AdminReply::Done
            }
            Admin::Quiet => {
                let drained = (self.transport.get().and_then(Weak::upgrade))
                    .is_none_or(|transport| transport.is_drained());
                AdminReply::Quiet(drained && cluster.context().net.is_quiet())
            }
            Admin::Trace(on) => {
                if on {
                    self.subscribers.lock().insert(client, trace.clone());
                } else {
                    self.subscribers.lock().remove(&client);
                }
                self.retrace(cluster);
                AdminReply::Done
            }
            Admin::Hello => AdminReply::Hello {
                report: cluster
                    .recovery_reports()
                    .first()
                    .cloned()
                    .unwrap_or_default(),
                clock: cluster.client_clock().now(),
            },
        }
    }
}

/// Asks the node thread a control request and waits for its answer (`None` if it is
/// down, or died answering).
fn ask<T>(cluster: &Cluster, node: NodeId, make: impl FnOnce(Sender<T>) -> Control) -> Option<T> {
    let (reply, answer) = crossbeam::channel::bounded(1);
    let net = &cluster.context().net;
    net.post(node, Mail::Control(make(reply))).ok()?;
    answer.recv().ok()
}

/// The process kills itself as `kill -9` would: no log flushed, no link closed.
fn die() -> AdminReply {
    let _ = signal_hook::low_level::raise(signal_hook::consts::SIGKILL);
    AdminReply::Failed("the process could not kill itself".into())
}

impl Serve for NodeServer {
    fn request(
        &self,
        request: Request,
        reply: ReplySender,
    ) -> std::result::Result<(), (ReplySender, Error)> {
        let Some(cluster) = self.cluster() else {
            return Err((reply, self.starting()));
        };
        if let Some(why) = misdirected(self.node, cluster.nodes(), &request) {
            return Err((reply, Error::InvalidInput(why)));
        }
        let net = &cluster.context().net;
        match net.post(self.node, Mail::Client(request, reply)) {
            Err(Mail::Client(_, reply)) => Err((reply, net.down_error(self.node))),
            // The net gives back the mail it was given: nothing else comes back.
            _ => Ok(()),
        }
    }

    fn admin(&self, body: &[u8], client: u64, trace: &Sender<Frame>) -> Vec<u8> {
        let reply = match (Admin::decode(body), self.cluster()) {
            (Err(detail), _) => AdminReply::Failed(format!(
                "node {} could not read the request ({detail}): is the shell the same kv2pc \
                 release as the node?",
                self.node
            )),
            (Ok(admin), Some(cluster)) => self.answer(&cluster, admin, client, trace),
            (Ok(_), None) => AdminReply::Failed(self.starting().to_string()),
        };
        reply.encode()
    }

    fn wait(&self, bell: &Bell, receivers: usize, timeout: Duration) {
        match self.cluster() {
            Some(cluster) => {
                cluster.context().net.wait_bell(bell, receivers, timeout);
            }
            None => std::thread::sleep(timeout.min(Duration::from_millis(5))),
        }
    }

    fn gone(&self, client: u64, open: Vec<TxnId>) {
        let was = self.subscribers.lock().remove(&client).is_some();
        let Some(cluster) = self.cluster() else {
            return;
        };
        if was {
            self.retrace(&cluster);
        }
        // Its client would have sent these: the coordinator (this node) tells every
        // node, since only the client knew which ones the transaction touched.
        let net = &cluster.context().net;
        for tid in open {
            let participants = (0..cluster.nodes()).collect();
            let (reply, _ignored) = mailbox();
            let request = Request::Abort { tid, participants };
            let _ = net.post(self.node, Mail::Client(request, reply));
            (self.log)(format!(
                "a client went away with {tid} open: aborted it, releasing its locks"
            ));
        }
    }
}

/// Why `request`, from a client of this process, is not node `me`'s to serve, if it is
/// not: a key another node owns, or a node outside the cluster of `nodes`. The client
/// library never sends such a request, but a client of a node process speaks its own
/// bytes, and is refused rather than believed (a write of a key stored on the wrong
/// node could never be read back).
fn misdirected(me: NodeId, nodes: u32, request: &Request) -> Option<String> {
    let key = match request {
        Request::Read { key, .. } | Request::Write { key, .. } => Some(key),
        Request::SnapshotRead { key, .. } => Some(key),
        _ => None,
    };
    if let Some(key) = key {
        if let Err(why) = crate::types::check_key(key) {
            return Some(why.to_string());
        }
        let owner = crate::types::owner_of(key, nodes);
        if owner != me {
            return Some(format!(
                "key {key:?} is on node {owner}, not on node {me}: ask its owner"
            ));
        }
    }
    let named: &[NodeId] = match request {
        Request::Commit { participants, .. } | Request::Abort { participants, .. } => participants,
        Request::BeginAnd { owner, .. } => std::slice::from_ref(owner),
        _ => &[],
    };
    (named.iter().find(|node| **node >= nodes)).map(|node| {
        format!(
            "there is no node {node}: the cluster has nodes 0 to {}",
            nodes - 1
        )
    })
}
