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
use crate::error::{Error, Result};
use crate::router::{Control, Mail, Shared};
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
    /// Requests not yet served, each counted as in flight in [`Shared`].
    pending: AtomicUsize,
    /// fsyncs the syncer issued.
    fsyncs: AtomicU64,
    /// Why an fsync failed, until the node thread takes it.
    failure: Mutex<Option<Error>>,
}

impl Durability {
    /// Notes that the log is durable through `lsn` and lets out what that covers.
    pub fn synced_through(&self, lsn: u64, node: NodeId, shared: &Shared) {
        self.synced.fetch_max(lsn, Ordering::SeqCst);
        self.release(node, shared);
    }

    /// Lets out everything the log is durable enough for, in order (under the outbox's
    /// lock, so that the node thread and the syncer never interleave what they send).
    pub fn release(&self, node: NodeId, shared: &Shared) {
        let mut outbox = self.outbox.lock();
        for held in outbox.release(self.synced()) {
            held.release(node, shared);
        }
    }

    /// The LSN through which the log is known durable.
    pub fn synced(&self) -> u64 {
        self.synced.load(Ordering::SeqCst)
    }
}

/// The node thread's handle on its syncer.
pub struct Syncer {
    requests: Option<Sender<SyncTarget>>,
    /// Shared with the syncer thread.
    pub durability: Arc<Durability>,
    thread: Option<JoinHandle<()>>,
}

impl Syncer {
    /// Starts the syncer thread of `node`.
    pub fn start(node: NodeId, shared: Arc<Shared>) -> Result<Syncer> {
        let durability = Arc::new(Durability {
            outbox: Mutex::new(Outbox::default()),
            synced: AtomicU64::new(0),
            pending: AtomicUsize::new(0),
            fsyncs: AtomicU64::new(0),
            failure: Mutex::new(None),
        });
        let (requests, inbox) = unbounded::<SyncTarget>();
        let serving = durability.clone();
        let thread = std::thread::Builder::new()
            .name(format!("node{node}-sync"))
            .spawn(move || serve(node, inbox, &serving, &shared))
            .map_err(|error| Error::io("starting a log syncer thread", error))?;
        Ok(Syncer {
            requests: Some(requests),
            durability,
            thread: Some(thread),
        })
    }

    /// Asks for `target` to be fsynced, counting the request as in flight. Returns false
    /// if the syncer is gone.
    pub fn request(&self, target: SyncTarget, shared: &Shared) -> bool {
        let Some(requests) = &self.requests else {
            return false;
        };
        shared.begin_work();
        self.durability.pending.fetch_add(1, Ordering::SeqCst);
        if requests.send(target).is_err() {
            self.durability.pending.fetch_sub(1, Ordering::SeqCst);
            shared.handled(1);
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
fn serve(node: NodeId, inbox: Receiver<SyncTarget>, durability: &Durability, shared: &Shared) {
    while let Ok(mut target) = inbox.recv() {
        let mut requests = 1;
        for newer in inbox.try_iter() {
            target = newer;
            requests += 1;
        }
        durability.fsyncs.fetch_add(1, Ordering::SeqCst);
        match target.file.sync_data() {
            Ok(()) => durability.synced_through(target.lsn, node, shared),
            Err(e) => {
                let error = Error::io(format!("fsyncing {}", target.path.display()), e);
                *durability.failure.lock() = Some(error);
                let _ = shared.deliver(node, Mail::Control(Control::Wake));
            }
        }
        durability.pending.fetch_sub(requests, Ordering::SeqCst);
        shared.handled(requests);
    }
}
