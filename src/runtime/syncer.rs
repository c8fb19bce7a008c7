//! A node's syncer: the thread that fsyncs the node's log, so the node thread never waits
//! for the disk.
//!
//! The node thread writes its batch of records to the file (into the page cache, a few
//! microseconds) and hands the syncer a [`SyncTarget`]; it then goes on handling mail
//! while the fsync runs, and what depends on the records waits in its outbox until the
//! syncer reports the LSN it made durable. Requests that arrive while an fsync runs are
//! served together by the next one: that is group commit without a timer, and under load
//! the disk is kept busy back to back.
//!
//! The syncer never touches the node's state; it only fsyncs a file handle it was given
//! and reports, on its own channel, the LSN that fsync covered and how many requests it
//! served. An fsync that fails is reported too; the node then dies, as after any failed
//! log write.

use crate::error::{Error, Result};
use crate::wal::SyncTarget;
use crossbeam::channel::{Receiver, Sender, unbounded};
use std::thread::JoinHandle;

/// What one fsync made durable.
#[derive(Debug)]
pub struct Synced {
    /// Everything before this LSN is durable (or the fsync failed).
    pub lsn: Result<u64>,
    /// How many requests the fsync served.
    pub requests: usize,
}

/// The node thread's handle on its syncer.
pub struct Syncer {
    requests: Option<Sender<SyncTarget>>,
    /// Where the syncer reports; the node thread selects on it beside its inbox.
    pub done: Receiver<Synced>,
    thread: Option<JoinHandle<()>>,
}

impl Syncer {
    /// Starts the syncer thread of `node`.
    pub fn start(node: crate::NodeId) -> Result<Syncer> {
        let (requests, inbox) = unbounded::<SyncTarget>();
        let (report, done) = unbounded();
        let thread = std::thread::Builder::new()
            .name(format!("node{node}-sync"))
            .spawn(move || serve(inbox, report))
            .map_err(|error| Error::io("starting a log syncer thread", error))?;
        Ok(Syncer {
            requests: Some(requests),
            done,
            thread: Some(thread),
        })
    }

    /// Asks for `target` to be fsynced. Returns false if the syncer is gone.
    pub fn request(&self, target: SyncTarget) -> bool {
        (self.requests.as_ref()).is_some_and(|requests| requests.send(target).is_ok())
    }

    /// Stops the syncer, waiting for an fsync in progress to finish, so that nothing is
    /// reported after this returns. Reports already made stay in `done`.
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

/// The syncer thread: fsync the newest target asked for, covering every earlier request.
fn serve(inbox: Receiver<SyncTarget>, report: Sender<Synced>) {
    while let Ok(mut target) = inbox.recv() {
        let mut requests = 1;
        for newer in inbox.try_iter() {
            target = newer;
            requests += 1;
        }
        let lsn = target
            .file
            .sync_data()
            .map(|()| target.lsn)
            .map_err(|e| Error::io(format!("fsyncing {}", target.path.display()), e));
        if report.send(Synced { lsn, requests }).is_err() {
            return;
        }
    }
}
