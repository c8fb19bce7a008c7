//! A session's thread: it runs the session's commands one at a time against its client,
//! keeps the transaction it has open, and publishes what the shell may read of it
//! (`Visible`) for the prompt and STATUS.
//!
//! It also records the session's history for `CHECK` (`history::register`): every
//! transaction's reads (what each returned) and writes as they succeed, and, when it
//! ends, what the client was told (committed at a timestamp, aborted, or unknown). A
//! read-only snapshot is placed at its read timestamp, an autocommit `GET` at the
//! snapshot it read, an autocommit `PUT` or `DEL` is a transaction of its own. A
//! transaction that read and wrote nothing is not recorded.

use super::*;
use crate::history::{Outcome as Told, RegisterTxn};
use crate::types::Timestamp;

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
pub(super) struct Worker {
    name: String,
    client: Client,
    open: Option<Open>,
    visible: Arc<Mutex<Visible>>,
    activity: Activity,
    /// The open transaction as the history will have it.
    recording: Option<RegisterTxn>,
    /// The session's ended transactions, which the shell reads for `CHECK`.
    history: Arc<Mutex<Vec<RegisterTxn>>>,
}

/// Why a session's command failed, as the shell prints it.
struct Failed(String);

impl From<Error> for Failed {
    fn from(error: Error) -> Failed {
        Failed(error.to_string())
    }
}

impl Worker {
    /// A session's thread state, with no transaction open.
    pub(super) fn new(
        name: &str,
        client: Client,
        visible: Arc<Mutex<Visible>>,
        activity: Activity,
        history: Arc<Mutex<Vec<RegisterTxn>>>,
    ) -> Worker {
        Worker {
            name: name.to_string(),
            client,
            open: None,
            visible,
            activity,
            recording: None,
            history,
        }
    }

    /// Adds an operation to the open transaction's record.
    fn note(&mut self, op: impl FnOnce(RegisterTxn) -> RegisterTxn) {
        self.recording = self.recording.take().map(op);
    }

    /// Ends the open transaction's record with what the client was told (and where the
    /// cluster committed it); one that did nothing is dropped.
    fn ended(&mut self, told: Told, at: Option<Timestamp>) {
        let Some(mut txn) = self.recording.take() else {
            return;
        };
        txn.outcome = told;
        txn.at = at.or(txn.at);
        if !txn.ops.is_empty() {
            self.history.lock().push(txn);
        }
    }

    /// What a commit's result tells the history.
    fn told(result: &crate::Result<Timestamp>) -> (Told, Option<Timestamp>) {
        match result {
            Ok(at) => (Told::Committed, Some(*at)),
            Err(Error::Aborted { .. }) => (Told::Aborted, None),
            Err(_) => (Told::Unknown, None),
        }
    }

    pub(super) fn run(mut self, jobs: Receiver<(Command, Work)>, results: Sender<Outcome>) {
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
            self.ended(Told::Aborted, None);
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
        if dead.is_some() {
            self.ended(Told::Aborted, None);
        }
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
        self.ended(Told::Aborted, None);
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
                    None => {
                        let (value, at) = self.client.get_stamped(&key)?;
                        let name = format!("GET {}@{at}", Text(&key));
                        let read = RegisterTxn::new(name, &self.name, Told::Committed).at(at);
                        self.history.lock().push(read.read(&key, value.as_deref()));
                        value
                    }
                };
                self.note(|txn| txn.read(&key, value.as_deref()));
                match value {
                    Some(value) => outcome.say(format!("{} = {}", Text(&key), Text(&value))),
                    None => outcome.say(format!("{} is not set", Text(&key))),
                }
                Ok(())
            }
            Command::Scan { range } => self.scan(&range, outcome),
            Command::Put { key, value } => self.write(&key, Some(&value), outcome),
            Command::Del { key } => self.write(&key, None, outcome),
            Command::Commit => self.commit(outcome),
            Command::Abort => {
                match self.open.take().ok_or_else(no_transaction)? {
                    Open::ReadWrite(txn, tid) => {
                        self.ended(Told::Aborted, None);
                        txn.abort()?;
                        outcome.say(format!("{tid} aborted"));
                    }
                    Open::ReadOnly(snapshot) => {
                        // What it read, it read: a snapshot counts however it ends.
                        self.ended(Told::Committed, None);
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
            let name = format!("snapshot@{}", snapshot.read_ts());
            let record = RegisterTxn::new(name, &self.name, Told::Committed);
            self.recording = Some(record.at(snapshot.read_ts()));
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
            self.recording = Some(RegisterTxn::new(tid.to_string(), &self.name, Told::Unknown));
            Open::ReadWrite(txn, tid)
        };
        self.open = Some(open);
        self.show_state();
        Ok(())
    }

    /// `SCAN`: under a range lock in a read-write transaction, from its snapshot in a
    /// read-only one, and from a snapshot of its own outside any (as `GET` there).
    fn scan(&mut self, range: &KeyRange, outcome: &mut Outcome) -> Result<(), Failed> {
        let rows = match &self.open {
            Some(Open::ReadWrite(..)) => self.transact(outcome, |txn| txn.scan(range))?,
            Some(Open::ReadOnly(snapshot)) => snapshot.scan(range)?,
            None => self.client.scan(range)?,
        };
        if rows.is_empty() {
            outcome.say("no keys in that range");
        }
        for (key, value) in rows {
            outcome.say(format!("{} = {}", Text(&key), Text(&value)));
        }
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
            Some(Open::ReadWrite(..)) => {
                self.transact(outcome, |txn| match value {
                    Some(value) => txn.put(key, value),
                    None => txn.delete(key),
                })?;
                self.note(|txn| txn.write(key, value));
            }
            None => self.write_alone(key, value)?,
        }
        outcome.say("ok");
        Ok(())
    }

    /// An autocommit `PUT` or `DEL`: a transaction of its own, recorded under its id.
    fn write_alone(&mut self, key: &str, value: Option<&str>) -> Result<(), Failed> {
        let mut txn = self.client.begin_lazily();
        let written = match value {
            Some(value) => txn.put(key, value),
            None => txn.delete(key),
        };
        let record = |tid: TxnId, told, at: Option<Timestamp>| {
            let mut record = RegisterTxn::new(tid.to_string(), &self.name, told);
            record.at = at;
            record.write(key, value)
        };
        if let Err(error) = written {
            if let Some(tid) = txn.id() {
                self.history.lock().push(record(tid, Told::Aborted, None));
            }
            return Err(error.into());
        }
        let tid = txn.id();
        let result = txn.commit_at();
        if let Some(tid) = tid {
            let (told, at) = Self::told(&result);
            self.history.lock().push(record(tid, told, at));
        }
        result?;
        Ok(())
    }

    fn commit(&mut self, outcome: &mut Outcome) -> Result<(), Failed> {
        let (txn, tid) = match self.open.take().ok_or_else(no_transaction)? {
            Open::ReadWrite(txn, tid) => (txn, tid),
            Open::ReadOnly(snapshot) => {
                self.ended(Told::Committed, None);
                outcome.say(format!(
                    "read-only transaction at snapshot {} committed (nothing to write)",
                    snapshot.read_ts()
                ));
                snapshot.commit();
                return Ok(());
            }
        };
        let participants = txn.participants();
        let result = txn.commit_at();
        let (told, at) = Self::told(&result);
        self.ended(told, at);
        result?;
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
