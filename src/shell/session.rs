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
use crate::types::LockMode;
use crate::{Client, ClientObserver, Error, NodeId, ReadOnly, Transaction, TxnId, WaitInfo};
use crossbeam::channel::{Receiver, Sender, unbounded};
use parking_lot::Mutex;
use std::sync::Arc;
use std::thread::JoinHandle;

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
        let worker = Worker {
            name: name.to_string(),
            client,
            open: None,
            visible: visible.clone(),
            activity: activity.clone(),
        };
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
        }
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
        let (waiting, tid) = {
            let visible = self.visible.lock();
            (visible.waiting.clone(), visible.tid)
        };
        match (&waiting, tid) {
            (Some(wait), _) if wait.tid.is_none() => format!(
                "<waiting for the outcome of {}, which wrote {} and has not been decided>",
                wait.blockers
                    .iter()
                    .map(|tid| named(*tid))
                    .collect::<Vec<_>>()
                    .join(", "),
                Text(&wait.key)
            ),
            (Some(wait), _) => format!(
                "<waiting for {} lock on {}, {}>",
                match wait.mode {
                    LockMode::Shared => "a shared",
                    LockMode::Exclusive => "an exclusive",
                },
                Text(&wait.key),
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

/// The transaction a session has open.
enum Open {
    /// A read-write transaction under strict two-phase locking, begun at once (so its
    /// id is known) and that id.
    ReadWrite(Transaction, TxnId),
    /// A read-only transaction over one snapshot.
    ReadOnly(ReadOnly),
}

impl Open {
    /// How the prompt names it: `T3`, or `snapshot@7`.
    fn label(&self) -> String {
        match self {
            Open::ReadWrite(_, tid) => tid.to_string(),
            Open::ReadOnly(snapshot) => format!("snapshot@{}", snapshot.read_ts()),
        }
    }
}

/// The session thread's state.
struct Worker {
    name: String,
    client: Client,
    open: Option<Open>,
    visible: Arc<Mutex<Visible>>,
    activity: Activity,
}

/// Why a session's command failed, as the shell prints it.
struct Failed(String);

impl From<Error> for Failed {
    fn from(error: Error) -> Failed {
        Failed(error.to_string())
    }
}

impl Worker {
    fn run(mut self, jobs: Receiver<(Command, Work)>, results: Sender<Outcome>) {
        while let Ok((command, work)) = jobs.recv() {
            self.activity.begin(work);
            let mut outcome = Outcome::new(command.to_string(), Some(self.name.clone()));
            let lost = self.visible.lock().lost.clone();
            let result = match lost {
                Some(lost) => self.after_lost(lost, command, &mut outcome),
                None => self.execute(command, &mut outcome),
            };
            let cancelled = self.visible.lock().cancelled.take();
            match (result, cancelled) {
                (Err(_), Some(cancel)) => {
                    outcome.fail(format!("{}; nothing was written", cancel.reason));
                }
                (Err(Failed(error)), None) => outcome.fail(error),
                (Ok(()), _) => {}
            }
            self.show_state();
            let _ = results.send(outcome);
            self.activity.ended();
        }
        if let Some(Open::ReadWrite(txn, _)) = self.open.take() {
            let _ = txn.abort();
        }
    }

    /// The next command after a transaction was aborted out of sight: says so, and runs
    /// only a BEGIN (see the module doc).
    fn after_lost(
        &mut self,
        (tid, why): (TxnId, String),
        command: Command,
        outcome: &mut Outcome,
    ) -> Result<(), Failed> {
        if matches!(&self.open, Some(Open::ReadWrite(_, open)) if *open == tid) {
            self.open = None;
        }
        if matches!(
            command,
            Command::Begin { .. } | Command::Abort | Command::Commit
        ) {
            // These end the aborted transaction as far as the session is concerned.
            self.visible.lock().lost = None;
        }
        match command {
            Command::Begin { .. } => {
                let note = format!("note: {tid} was aborted before this BEGIN: {why}");
                outcome.push(Style::Warning, note);
                self.execute(command, outcome)
            }
            Command::Abort => {
                outcome.say(format!("{tid} had already been aborted: {why}"));
                Ok(())
            }
            Command::Commit => Err(Failed(format!(
                "{tid} was aborted before this COMMIT: {why}; nothing was committed; BEGIN again"
            ))),
            other => Err(Failed(format!(
                "{tid} was aborted: {why}; so {other} was not run (outside a transaction it \
                 would run on its own); end {tid} with ABORT, or BEGIN a new transaction"
            ))),
        }
    }

    fn show_state(&mut self) {
        let mut visible = self.visible.lock();
        let lost = visible.lost.as_ref().map(|(tid, _)| *tid);
        let dead = match &self.open {
            Some(Open::ReadWrite(_, tid)) if lost == Some(*tid) => self.open.take(),
            _ => None,
        };
        visible.tid = match &self.open {
            Some(Open::ReadWrite(_, tid)) => Some(*tid),
            _ => None,
        };
        visible.label = self.open.as_ref().map(Open::label);
        visible.busy = None;
        visible.waiting = None;
        visible.committing = false;
        drop(visible);
        // Dropping a transaction tells its coordinator, best effort: not under the lock.
        drop(dead);
    }

    /// Runs an operation of the open read-write transaction. If it fails, the library
    /// has aborted the transaction (see `client`): the session leaves it and says so.
    fn transact<T>(
        &mut self,
        outcome: &mut Outcome,
        op: impl FnOnce(&mut Transaction) -> crate::Result<T>,
    ) -> Result<T, Failed> {
        let Some(Open::ReadWrite(txn, tid)) = &mut self.open else {
            return Err(no_transaction().into());
        };
        let tid = *tid;
        let error = match op(txn) {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        self.open = None;
        let cancelled = self.visible.lock().cancelled.take();
        if let Some(Cancel { reason, ends }) = cancelled {
            let text = format!("{tid} aborted: {reason}; its writes are undone");
            if !ends {
                self.visible.lock().lost = Some((tid, reason.clone()));
                outcome.aborted = Some((tid, reason));
            }
            return Err(Failed(text));
        }
        let (why, text) = match error {
            Error::Aborted { reason, .. } => (reason.clone(), format!("{tid} aborted: {reason}")),
            other => (
                format!("its {} failed: {other}", outcome.command),
                format!(
                    "{tid} was aborted because {} failed: {other}. Its writes are undone; \
                     later commands are not run until you end it with ABORT or BEGIN again",
                    outcome.command
                ),
            ),
        };
        // Like PostgreSQL, the session stays in the aborted transaction until it is
        // ended, so that the rest of a script meant as one transaction does not run
        // outside it, one command at a time.
        self.visible.lock().lost = Some((tid, why.clone()));
        outcome.aborted = Some((tid, why));
        Err(Failed(text))
    }

    fn execute(&mut self, command: Command, outcome: &mut Outcome) -> Result<(), Failed> {
        match command {
            Command::Begin { read_only } => self.begin(read_only, outcome),
            Command::Get { key, for_update } => {
                let value = match &self.open {
                    Some(Open::ReadWrite(..)) if for_update => {
                        self.transact(outcome, |txn| txn.get_for_update(&key))?
                    }
                    Some(Open::ReadWrite(..)) => self.transact(outcome, |txn| txn.get(&key))?,
                    Some(Open::ReadOnly(_)) if for_update => {
                        return Err(Failed(
                            "this transaction is READ ONLY: it reads a snapshot and takes no locks, so there is nothing to lock FOR UPDATE; COMMIT it and BEGIN a read-write transaction to read for update".into(),
                        ));
                    }
                    Some(Open::ReadOnly(snapshot)) => snapshot.get(&key)?,
                    None if for_update => {
                        return Err(Failed(format!(
                            "FOR UPDATE locks {} until the transaction ends, but no transaction is open in this session; BEGIN one first (a GET on its own reads a snapshot and locks nothing)",
                            Text(&key)
                        )));
                    }
                    None => self.client.get(&key)?,
                };
                match value {
                    Some(value) => outcome.say(format!("{} = {}", Text(&key), Text(&value))),
                    None => outcome.say(format!("{} is not set", Text(&key))),
                }
                Ok(())
            }
            Command::Put { key, value } => self.write(&key, Some(&value), outcome),
            Command::Del { key } => self.write(&key, None, outcome),
            Command::Commit => self.commit(outcome),
            Command::Abort => {
                match self.open.take().ok_or_else(no_transaction)? {
                    Open::ReadWrite(txn, tid) => {
                        txn.abort()?;
                        outcome.say(format!("{tid} aborted"));
                    }
                    Open::ReadOnly(snapshot) => {
                        outcome.say(format!(
                            "read-only transaction at snapshot {} ended",
                            snapshot.read_ts()
                        ));
                    }
                }
                Ok(())
            }
            other => Err(Failed(format!(
                "{} is not a transaction command",
                other.name()
            ))),
        }
    }

    fn begin(&mut self, read_only: bool, outcome: &mut Outcome) -> Result<(), Failed> {
        if let Some(open) = &self.open {
            return Err(Failed(format!(
                "{} is still open in session {}; COMMIT or ABORT it first",
                open.label(),
                self.name
            )));
        }
        let open = if read_only {
            let snapshot = self.client.begin_read_only();
            outcome.say(format!(
                "read-only transaction started: it reads the snapshot at timestamp {}, takes no locks, and waits only for an undecided write it must see",
                snapshot.read_ts()
            ));
            Open::ReadOnly(snapshot)
        } else {
            let txn = self.client.begin()?;
            let Some(tid) = txn.id() else {
                return Err(Failed(
                    "the coordinator began a transaction without an id".into(),
                ));
            };
            outcome.say(format!(
                "{tid} started: a transaction coordinated by node {}",
                self.client.coordinator()
            ));
            Open::ReadWrite(txn, tid)
        };
        self.open = Some(open);
        self.show_state();
        Ok(())
    }

    fn write(
        &mut self,
        key: &str,
        value: Option<&str>,
        outcome: &mut Outcome,
    ) -> Result<(), Failed> {
        match &self.open {
            Some(Open::ReadOnly(_)) => {
                return Err(Failed(
                    "this transaction is READ ONLY; COMMIT it and BEGIN a read-write transaction to write".into(),
                ));
            }
            Some(Open::ReadWrite(..)) => self.transact(outcome, |txn| match value {
                Some(value) => txn.put(key, value),
                None => txn.delete(key),
            })?,
            None => match value {
                Some(value) => self.client.put(key, value)?,
                None => self.client.delete(key)?,
            },
        }
        outcome.say("ok");
        Ok(())
    }

    fn commit(&mut self, outcome: &mut Outcome) -> Result<(), Failed> {
        let (txn, tid) = match self.open.take().ok_or_else(no_transaction)? {
            Open::ReadWrite(txn, tid) => (txn, tid),
            Open::ReadOnly(snapshot) => {
                outcome.say(format!(
                    "read-only transaction at snapshot {} committed (nothing to write)",
                    snapshot.read_ts()
                ));
                snapshot.commit();
                return Ok(());
            }
        };
        let participants = txn.participants();
        txn.commit()?;
        let nodes: Vec<String> = participants.iter().map(u32::to_string).collect();
        outcome.say(match participants.len() {
            0 => format!("{tid} committed (it touched no keys)"),
            1 => format!("{tid} committed on node {} in one phase", nodes[0]),
            _ => format!("{tid} committed on nodes {}", nodes.join(", ")),
        });
        Ok(())
    }
}

fn no_transaction() -> Error {
    Error::InvalidInput("no transaction is open in this session; BEGIN one first".into())
}
