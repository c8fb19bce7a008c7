//! A node's syncer: the thread that fsyncs the node's log and lets out what the fsync
//! made safe to say, so the node thread need not wait for the disk.
//!
//! The node thread writes its batch of records to the file (into the page cache, a few
//! microseconds) and, when it has other work waiting, hands the syncer a [`SyncTarget`]
//! and goes on handling mail while the fsync runs. What depends on the records waits in
//! the node's [`Outbox`], which both threads share: when the fsync returns, the syncer
//! itself sends what it covers, so an answer costs no extra wake-up of the node thread.
//! Requests that arrive while an fsync runs are served together by the next one: group
//! commit without a timer, with the disk kept busy back to back under load.
//!
//! The syncer never touches the node's protocol state. An fsync that fails is recorded
//! for the node thread (which is woken to find it) and the node dies, as after any
//! failed log write.

use super::outbox::Outbox;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::net::{Control, Label, Mail, Net, What, Work};
use crate::types::NodeId;
use crate::wal::SyncTarget;
use crossbeam::channel::{Receiver, Sender, unbounded};
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;

/// What the node thread and its syncer share.
pub struct Durability {
    /// What waits for an fsync.
    pub outbox: Mutex<Outbox>,
    /// The LSN through which the log is known durable.
    synced: AtomicU64,
    /// Requests not yet served (each also carries its work token).
    pending: AtomicUsize,
    /// fsyncs the syncer issued.
    fsyncs: AtomicU64,
    /// Why an fsync failed, until the node thread takes it.
    failure: Mutex<Option<Error>>,
}

impl Durability {
    /// Notes that the log is durable through `lsn` and lets out what that covers. Both
    /// under the outbox's lock: a hold that saw the new LSN before the items it covers
    /// had left could let a later item out ahead of them (see `outbox`'s order).
    pub fn synced_through(&self, lsn: u64, node: NodeId, net: &Net) {
        let mut outbox = self.outbox.lock();
        self.synced.fetch_max(lsn, Ordering::SeqCst);
        for held in outbox.release(self.synced()) {
            held.release(node, net);
        }
    }

    /// Lets out everything the log is durable enough for, in order (under the outbox's
    /// lock, so that the node thread and the syncer never interleave what they send).
    pub fn release(&self, node: NodeId, net: &Net) {
        let mut outbox = self.outbox.lock();
        for held in outbox.release(self.synced()) {
            held.release(node, net);
        }
    }

    /// The LSN through which the log is known durable.
    pub fn synced(&self) -> u64 {
        self.synced.load(Ordering::SeqCst)
    }
}

/// The node thread's handle on its syncer.
pub struct Syncer {
    node: NodeId,
    requests: Option<Sender<(SyncTarget, Work)>>,
    /// Context with the syncer thread.
    pub durability: Arc<Durability>,
    thread: Option<JoinHandle<()>>,
}

impl Syncer {
    /// Starts the syncer thread of `node`.
    pub fn start(node: NodeId, ctx: Arc<Context>) -> Result<Syncer> {
        let durability = Arc::new(Durability {
            outbox: Mutex::new(Outbox::default()),
            synced: AtomicU64::new(0),
            pending: AtomicUsize::new(0),
            fsyncs: AtomicU64::new(0),
            failure: Mutex::new(None),
        });
        let (requests, inbox) = unbounded::<(SyncTarget, Work)>();
        let serving = durability.clone();
        let thread = std::thread::Builder::new()
            .name(format!("node{node}-sync"))
            .spawn(move || serve(node, inbox, &serving, &ctx))
            .map_err(|error| Error::io("starting a log syncer thread", error))?;
        Ok(Syncer {
            node,
            requests: Some(requests),
            durability,
            thread: Some(thread),
        })
    }

    /// Asks for `target` to be fsynced, as work in flight on `net`. Returns false if the
    /// syncer is gone.
    pub fn request(&self, target: SyncTarget, net: &Net) -> bool {
        let Some(requests) = &self.requests else {
            return false;
        };
        let work = net.work(Label::on(What::Fsync, self.node));
        self.durability.pending.fetch_add(1, Ordering::SeqCst);
        if requests.send((target, work)).is_err() {
            self.durability.pending.fetch_sub(1, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// Whether an fsync is asked for or running.
    pub fn busy(&self) -> bool {
        self.durability.pending.load(Ordering::SeqCst) > 0
    }

    /// fsyncs this syncer issued.
    pub fn fsyncs(&self) -> u64 {
        self.durability.fsyncs.load(Ordering::SeqCst)
    }

    /// Why an fsync failed, if one did since the last call.
    pub fn take_failure(&self) -> Option<Error> {
        self.durability.failure.lock().take()
    }

    /// Stops the syncer, waiting for an fsync in progress to finish (and to let out what
    /// it covered), so that nothing more leaves through it after this returns.
    pub fn stop(&mut self) {
        self.requests = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The syncer thread: fsync the newest target asked for, which covers every earlier
/// request (a target of an older segment is covered too: a segment is synced whole
/// before the next one starts), then let out what it covers.
fn serve(
    node: NodeId,
    inbox: Receiver<(SyncTarget, Work)>,
    durability: &Durability,
    ctx: &Context,
) {
    let mut served = Vec::new();
    while let Ok((mut target, work)) = inbox.recv() {
        served.push(work);
        for (newer, work) in inbox.try_iter() {
            target = newer;
            served.push(work);
        }
        durability.fsyncs.fetch_add(1, Ordering::SeqCst);
        match target.file.sync_data() {
            Ok(()) => durability.synced_through(target.lsn, node, &ctx.net),
            Err(e) => {
                let error = Error::io(format!("fsyncing {}", target.path.display()), e);
                *durability.failure.lock() = Some(error);
                let _ = ctx.net.post(node, Mail::Control(Control::Wake));
            }
        }
        durability.pending.fetch_sub(served.len(), Ordering::SeqCst);
        // What the fsync let out holds its own work now.
        served.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{ReadAt, Reply, Request};
    use crate::net::{Mailbox, ReplySender, mailbox};
    use crate::runtime::outbox::Held;
    use crate::types::TxnId;
    use std::time::{Duration, Instant};

    fn durability() -> Durability {
        Durability {
            outbox: Mutex::new(Outbox::default()),
            synced: AtomicU64::new(0),
            pending: AtomicUsize::new(0),
            fsyncs: AtomicU64::new(0),
            failure: Mutex::new(None),
        }
    }

    /// Two nodes, both down: a forward fails at once and answers its client "node down",
    /// so the client's mailbox shows the order in which items were let out.
    fn net() -> Net {
        Net::new(2)
    }

    fn drain(answers: &Mailbox) -> Vec<Reply> {
        std::iter::from_fn(|| answers.try_recv().map(|(reply, _)| reply)).collect()
    }

    /// The node thread holds a `Begun` (waiting for the lease at 10), then the syncer's
    /// fsync through 10 returns; the node holds the `Forward` of the first operation
    /// while the syncer is between noting the fsync and letting out what it covers.
    #[test]
    fn a_hold_during_synced_through_leaves_after_what_it_covers() {
        let (net, durability) = (net(), durability());
        let (reply, answers) = mailbox();
        let begun = Reply::Begun(TxnId(4), 1);
        let held = Held::Reply {
            reply: reply.clone(),
            message: begun,
            work: net.work(Label::on(What::Reply, 0)),
        };
        durability.outbox.lock().hold(10, durability.synced(), held);
        std::thread::scope(|scope| {
            let mut outbox = durability.outbox.lock();
            scope.spawn(|| durability.synced_through(10, 0, &net));
            // Give the syncer time to reach the outbox's lock (with the fault, it has
            // raised `synced` by then).
            let start = Instant::now();
            while durability.synced() < 10 && start.elapsed() < Duration::from_millis(200) {
                std::thread::yield_now();
            }
            let request = Request::SnapshotRead {
                key: "k".into(),
                at: ReadAt::AtLeast(0),
            };
            let forward = Held::Forward {
                to: 1,
                request,
                reply,
                work: net.work(Label::on(What::Request, 1)),
            };
            outbox.hold(10, durability.synced(), forward);
        });
        durability.release(0, &net);
        let replies = drain(&answers);
        assert!(
            matches!(
                replies.as_slice(),
                [Reply::Begun(..), Reply::Done(Err(Error::NodeDown { .. }))]
            ),
            "the id must reach the client before its operation's answer: {replies:?}"
        );
    }

    /// A node thread holds replies to four clients, tagged with LSNs it appends, while
    /// a syncer thread reports fsyncs that jump ahead by random amounts; each client
    /// must receive its replies in the order they were held.
    #[test]
    fn replies_to_one_client_leave_in_order_under_a_jumping_syncer() {
        let (net, durability) = (net(), durability());
        let clients: Vec<(ReplySender, Mailbox)> = (0..4).map(|_| mailbox()).collect();
        let end = AtomicU64::new(0);
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let mut state = 0x2545_F491_4F6C_DD1Du64;
                while !done.load(Ordering::SeqCst) {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    let written = end.load(Ordering::SeqCst);
                    let lsn = durability.synced() + state % 64;
                    durability.synced_through(lsn.min(written), 0, &net);
                }
            });
            let mut state = 0x9E37_79B9_7F4A_7C15u64;
            for seq in 1..=100_000u64 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                if state.is_multiple_of(3) {
                    end.fetch_add(1 + state % 16, Ordering::SeqCst);
                }
                let (reply, _) = &clients[(state >> 8) as usize % clients.len()];
                let held = Held::Reply {
                    reply: reply.clone(),
                    message: Reply::Begun(TxnId(seq), seq),
                    work: net.work(Label::on(What::Reply, 0)),
                };
                let tag = end.load(Ordering::SeqCst);
                durability
                    .outbox
                    .lock()
                    .hold(tag, durability.synced(), held);
                if state.is_multiple_of(7) {
                    durability.release(0, &net);
                }
            }
            done.store(true, Ordering::SeqCst);
        });
        durability.synced_through(u64::MAX, 0, &net);
        for (client, (_, answers)) in clients.iter().enumerate() {
            let seqs: Vec<u64> = (drain(answers).into_iter())
                .filter_map(|reply| match reply {
                    Reply::Begun(tid, _) => Some(tid.0),
                    _ => None,
                })
                .collect();
            assert!(!seqs.is_empty());
            let first_disorder = seqs.windows(2).find(|pair| pair[0] > pair[1]);
            assert_eq!(
                first_disorder, None,
                "client {client} got replies out of order"
            );
        }
    }
}
