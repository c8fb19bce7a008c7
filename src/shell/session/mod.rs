//! A client session of the shell: a thread of its own with a client and at most one open
//! transaction, so that a command blocked on a lock does not block the shell.
//!
//! The shell hands a session one transaction command at a time. The session counts as
//! working (in the cluster's in-flight count) while it runs, except while its thread is
//! blocked waiting for the cluster; so when the cluster settles, every session is either
//! idle or blocked, and the shell can say which, the same way every run.
//!
//! # Aborted transactions
//!
//! An error from an operation of a read-write transaction aborts it (see `client`), and
//! the session says so. A transaction can also be aborted where the user does not see
//! it: a waiting command of this session completes with the abort under another
//! command's output, or the node coordinating it crashes while the session is idle
//! inside it (the transaction dies with its coordinator). Either way the session stays
//! in the aborted transaction until the user ends it, as PostgreSQL does: the prompt and
//! STATUS show `T3 aborted`, and every command is told which transaction was aborted and
//! why and does not run as if it were still open: a read or write is not run (outside a
//! transaction it would commit by itself, so the rest of a script meant as one
//! transaction would commit piecemeal), a COMMIT commits nothing, an ABORT has nothing
//! left to do; those two end it, and a BEGIN ends it and begins anew.

use super::command::{Command, Text};
use super::output::{Outcome, Style};
use crate::cluster::{Activity, Work};
use crate::history::RegisterTxn;
use crate::types::LockMode;
use crate::{
    Client, ClientObserver, Error, KeyRange, NodeId, ReadOnly, Transaction, TxnId, WaitInfo,
};
use crossbeam::channel::{Receiver, Sender, unbounded};
use parking_lot::Mutex;
use std::sync::Arc;
use std::thread::JoinHandle;

mod worker;

use worker::Worker;

/// What the shell can see of a session while it runs.
#[derive(Default)]
struct Visible {
    /// The open read-write transaction.
    tid: Option<TxnId>,
    /// How the prompt names the open transaction, if any.
    label: Option<String>,
    /// The command running, if any.
    busy: Option<String>,
    /// The lock the running command waits for, if it does.
    waiting: Option<WaitInfo>,
    /// Whether the running command is a COMMIT, whose own answer tells its outcome.
    committing: bool,
    /// A transaction of this session aborted out of the user's sight, and why: its next
    /// command says so (see the module doc).
    lost: Option<(TxnId, String)>,
    /// The shell cancelled the running command's lock wait (see [`Session::cancel_wait`]).
    cancelled: Option<Cancel>,
}

/// A cancelled lock wait: why, as the failed command says it, and whether the session
/// leaves the transaction (ABORT) or stays in it, aborted, until it is ended (Ctrl-C).
#[derive(Clone)]
struct Cancel {
    reason: String,
    ends: bool,
}

/// Reports the session's lock waits and blocking to the shell and the cluster.
struct Observer {
    visible: Arc<Mutex<Visible>>,
    activity: Activity,
}

impl ClientObserver for Observer {
    fn waiting(&self, info: &WaitInfo) {
        self.visible.lock().waiting = Some(info.clone());
    }

    fn blocking(&self) {
        self.activity.blocked();
    }

    fn resumed(&self) {
        self.activity.resumed();
    }
}

/// The shell's handle on a session thread.
pub struct Session {
    name: String,
    node: NodeId,
    jobs: Sender<(Command, Work)>,
    results: Receiver<Outcome>,
    visible: Arc<Mutex<Visible>>,
    activity: Activity,
    thread: Option<JoinHandle<()>>,
    /// A client on the session's node, to abort a waiting transaction from here.
    canceller: Client,
    /// The transactions the session has ended, as `CHECK` reads them (see `worker`).
    history: Arc<Mutex<Vec<RegisterTxn>>>,
}

impl Session {
    /// Starts a session named `name` whose transactions `client`'s node coordinates.
    pub fn start(name: &str, mut client: Client, activity: Activity) -> Session {
        let visible = Arc::new(Mutex::new(Visible::default()));
        let observer = Observer {
            visible: visible.clone(),
            activity: activity.clone(),
        };
        client.observe(Arc::new(observer));
        let (jobs, job_inbox) = unbounded();
        let (result_sender, results) = unbounded();
        let node = client.coordinator();
        let canceller = client.clone();
        let history = Arc::new(Mutex::new(Vec::new()));
        let worker = Worker::new(
            name,
            client,
            visible.clone(),
            activity.clone(),
            history.clone(),
        );
        let thread = std::thread::Builder::new()
            .name(format!("session-{name}"))
            .spawn(move || worker.run(job_inbox, result_sender))
            .ok();
        Session {
            name: name.to_string(),
            node,
            jobs,
            results,
            visible,
            activity,
            thread,
            canceller,
            history,
        }
    }

    /// The transactions this session has ended, in the order they ended: its history.
    pub fn history(&self) -> Vec<RegisterTxn> {
        self.history.lock().clone()
    }

    /// The session's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The node coordinating its transactions.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// How the prompt names its open transaction (`T3`, `snapshot@7`), if any; or
    /// `T3 aborted` after one was aborted, until the session ends it (ABORT, COMMIT or
    /// BEGIN).
    pub fn label(&self) -> Option<String> {
        let visible = self.visible.lock();
        match (&visible.label, &visible.lost) {
            (Some(label), _) => Some(label.clone()),
            (None, Some((tid, _))) => Some(format!("{tid} aborted")),
            (None, None) => None,
        }
    }

    /// Whether a transaction (read-write or read-only) is open in it.
    pub fn is_open(&self) -> bool {
        self.visible.lock().label.is_some()
    }

    /// A waiting command of this session completed with `aborted`, reported under
    /// another command: mark the session, so its next commands say so again.
    pub fn aborted_out_of_sight(&self, aborted: (TxnId, String)) {
        self.visible.lock().lost = Some(aborted);
    }

    /// This session's coordinator crashed: an open read-write transaction dies with it
    /// (unless it is committing: the COMMIT's answer tells its outcome). Returns it.
    pub fn coordinator_crashed(&self) -> Option<TxnId> {
        let mut visible = self.visible.lock();
        let tid = visible.tid.filter(|_| !visible.committing)?;
        let why = format!(
            "its coordinator node {} crashed before deciding it (its participants \
             release its locks when node {} restarts)",
            self.node, self.node
        );
        visible.lost = Some((tid, why));
        visible.tid = None;
        visible.label = None;
        Some(tid)
    }

    /// The command it is still running, if any.
    pub fn busy(&self) -> Option<String> {
        self.visible.lock().busy.clone()
    }

    /// The open read-write transaction, if any: how the shell names a blocker's session.
    pub fn tid(&self) -> Option<TxnId> {
        self.visible.lock().tid
    }

    /// What a blocked session waits for, as the shell prints it. `named` writes a
    /// transaction as the shell names it (`T16 (session alice)`); `blockers` says who
    /// stands in a lock wait's way (`held by T16 (session alice)`).
    pub fn waiting_line(
        &self,
        named: &dyn Fn(TxnId) -> String,
        blockers: &dyn Fn(&WaitInfo) -> String,
    ) -> String {
        // Copied out first: `named` and `blockers` look at every session, this one too.
        let (waiting, tid, scan) = {
            let visible = self.visible.lock();
            let scan = (visible.busy.as_deref()).is_some_and(|busy| busy.starts_with("SCAN "));
            (visible.waiting.clone(), visible.tid, scan)
        };
        // A scan waits for the lock of its range, which a key's quotes would misname.
        let what = match scan {
            true => format!("range {}", wait_key(&waiting)),
            false => Text(&wait_key(&waiting)).to_string(),
        };
        match (&waiting, tid) {
            (Some(wait), _) if wait.tid.is_none() => format!(
                "<waiting for the outcome of {}, which wrote {} and has not been decided>",
                wait.blockers
                    .iter()
                    .map(|tid| named(*tid))
                    .collect::<Vec<_>>()
                    .join(", "),
                match scan {
                    true => format!("a key in {what}"),
                    false => what.clone(),
                }
            ),
            (Some(wait), _) => format!(
                "<waiting for {} lock on {}, {}>",
                match wait.mode {
                    LockMode::Shared => "a shared",
                    LockMode::Exclusive => "an exclusive",
                },
                what,
                blockers(wait)
            ),
            (None, Some(tid)) => {
                format!("<waiting: {tid} is committing, and its coordinator has not decided>")
            }
            (None, None) => "<waiting for the cluster>".to_string(),
        }
    }

    /// Hands the session a command; its outcome arrives through [`Session::try_result`].
    pub fn dispatch(&self, command: Command) {
        {
            let mut visible = self.visible.lock();
            visible.busy = Some(command.to_string());
            visible.waiting = None;
            visible.committing = command == Command::Commit;
        }
        // A session thread that is gone drops the command and its work with it.
        let _ = self.jobs.send((command, self.activity.dispatched()));
    }

    /// The outcome of the command it was given, once it has one.
    pub fn try_result(&self) -> Option<Outcome> {
        self.results.try_recv().ok()
    }

    /// Cancels the lock wait of the running command, `by` saying who (`Ctrl-C`,
    /// `ABORT`): its transaction is aborted, so the command fails and says why (see
    /// `Client::abort_from_outside`). After `ABORT` the session has left the
    /// transaction; after Ctrl-C it stays in it, aborted, until it is ended, as after
    /// any failed command. Returns the transaction; a command that is not waiting for a
    /// lock of its own transaction (a COMMIT, whose outcome its coordinator decides, or
    /// a read waiting for an undecided write) cannot be cancelled, and the error says so.
    pub fn cancel_wait(&self, by: &str, ends: bool) -> Result<TxnId, String> {
        let mut visible = self.visible.lock();
        let busy = visible.busy.clone().unwrap_or_default();
        let name = &self.name;
        if visible.committing {
            return Err(format!(
                "session {name} is running COMMIT, whose outcome only its coordinator decides; \
                 it cannot be cancelled and ends when the coordinator decides"
            ));
        }
        let Some(wait) = visible.waiting.clone() else {
            return Err(format!("session {name} is not waiting for a lock"));
        };
        let Some(tid) = wait.tid else {
            return Err(format!(
                "session {name}'s {busy} waits for the outcome of a transaction being \
                 committed, which only that transaction's coordinator decides; it cannot be \
                 cancelled"
            ));
        };
        let reason = if ends {
            format!(
                "{by} ended it while its {busy} waited for a lock on {}",
                Text(&wait.key)
            )
        } else {
            format!(
                "{by} cancelled its {busy} while it waited for a lock on {}",
                Text(&wait.key)
            )
        };
        visible.cancelled = Some(Cancel { reason, ends });
        drop(visible);
        (self.canceller)
            .abort_from_outside(tid, vec![wait.node])
            .map_err(|error| format!("could not cancel {busy}: {error}"))?;
        Ok(tid)
    }

    /// Tells the session thread to stop once its current command ends.
    pub fn close(&mut self) {
        let (closed, _) = unbounded();
        self.jobs = closed;
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The key (or range) a wait is for, empty when nothing waits.
fn wait_key(waiting: &Option<WaitInfo>) -> String {
    waiting
        .as_ref()
        .map_or(String::new(), |wait| wait.key.clone())
}
