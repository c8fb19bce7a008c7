//! The driver of a run: executes a scenario's events one at a time on a [`Backend`]
//! (the threaded manual-clock cluster, or the simulator), each transaction in a session
//! of its own, and lets the run come to rest after each event (every session answered
//! or stuck in the cluster, nothing in flight), which makes a run deterministic. A run
//! begins with a setup
//! transaction that writes every key blind (the rule of the checker's deletes), and ends
//! by releasing every held link, restarting every node and finishing every transaction;
//! it records the history of what each client was told.
//!
//! Every third transaction's client is careless, as a user at a shell may be: after an
//! operation fails it goes on with its plan and tries COMMIT (the others skip the rest
//! and abort). After each event at rest, the run checks what must hold at
//! any moment (see `rest`): no wait-for cycle outlives the detector, no read-only read
//! waits on a transaction whose coordinator is down, a deadlock victim is the one of its
//! cycle that began last, and no transaction one of whose operations failed is told it
//! committed.

use super::backend::{Backend, Failure, Told};
use super::scenario::{Call, Event, Scenario};
use kv2pc::history::{History, Op, Outcome, Txn, appended, parse_list};
use kv2pc::sim::{Command, Response};
use kv2pc::{Error, NodeId};
use std::collections::BTreeMap;

/// Rounds of restart, commit and tick at the end before a run is declared stuck.
const FINISH_ROUNDS: usize = 30;

/// Where a transaction is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// Its BEGIN event has not run.
    NotBegun,
    /// Waiting for its next command.
    Idle,
    /// A call is under way (it may be blocked in the cluster).
    Calling,
    /// Over, with what the client was told (`None`: it never began).
    Over(Option<Outcome>),
}

/// The call under way, to record when it answers.
pub(super) enum Pending {
    Begin,
    /// Reading a key.
    Read(String),
    /// Deleting a key.
    Delete(String),
    /// Appending `elem` to `key`, which then holds `value`.
    Write {
        key: String,
        elem: String,
        value: String,
    },
    Commit,
    Abort,
}

impl Pending {
    /// The call, for messages.
    pub(super) fn describe(&self) -> String {
        match self {
            Pending::Begin => "BEGIN".into(),
            Pending::Read(key) => format!("GET {key}"),
            Pending::Delete(key) => format!("DEL {key}"),
            Pending::Write { key, elem, .. } => format!("APPEND {elem} to {key}"),
            Pending::Commit => "COMMIT".into(),
            Pending::Abort => "ABORT".into(),
        }
    }
}

/// One transaction of the run, as the driver sees it.
pub(super) struct TxnRun {
    pub(super) phase: Phase,
    pub(super) pending: Option<Pending>,
    /// What it did, for the history.
    pub(super) record: Txn,
    /// The list value of each key as this transaction last read or wrote it.
    pub(super) known: BTreeMap<String, Option<String>>,
    /// Its appends so far, numbering its elements.
    appends: usize,
    /// The first call that failed (its node was down, a snapshot too old...), with the
    /// error: the careless client goes on, but the transaction must not commit.
    pub(super) failed: Option<String>,
    /// A lock-free read-only snapshot: it cannot abort, so its reads count as committed.
    pub(super) snapshot: bool,
    /// Every node was down when the snapshot began, so its client chose its timestamp
    /// (the highest it had seen), which may lie above a transaction in doubt: its reads
    /// may wait for a crashed coordinator (a limit `node::floors` states).
    pub(super) client_chosen: bool,
    /// With parallel commits, the nodes that were down when the snapshot began (empty
    /// in classic mode): a node that never reported its floor to the choosing node
    /// and a staged transaction's coordinator both down leave nothing alive that
    /// knows the prepare below the snapshot (a limit `node::floors` states).
    pub(super) down_at_begin: std::collections::BTreeSet<NodeId>,
    /// Its id, once begun.
    pub(super) tid: Option<kv2pc::TxnId>,
    /// In which order it began, among the run's transactions.
    pub(super) began: Option<usize>,
    /// Keys it sent a delete for.
    deletes: Vec<String>,
}

/// Executes a scenario.
pub struct Driver<'s> {
    pub(super) scenario: &'s Scenario,
    pub backend: Box<dyn Backend + 's>,
    pub(super) txns: Vec<TxnRun>,
    /// The setup transaction's record.
    setup: Txn,
    /// How many transactions began so far.
    pub(super) begun: usize,
    /// Elements whose write failed because the node died: they must never appear.
    pub lost: Vec<(String, String)>,
    /// What each event did, for the failure report.
    pub log: Vec<String>,
    /// The log with each error reduced to its kind: what must replay exactly (an error's
    /// wording may name whichever of two NO votes came first).
    pub trace: Vec<String>,
    /// Answers that came in since the last log line: in full, and reduced.
    pub(super) notes: BTreeMap<usize, (String, String)>,
}

impl<'s> Driver<'s> {
    /// A driver for `scenario` on `backend`, a fresh cluster.
    pub fn new(scenario: &'s Scenario, backend: Box<dyn Backend + 's>) -> Driver<'s> {
        let count = (scenario.events.iter())
            .filter(|e| matches!(e, Event::Begin { .. }))
            .count();
        let txns = (0..count)
            .map(|txn| TxnRun {
                phase: Phase::NotBegun,
                pending: None,
                record: Txn::new(format!("t{txn}"), Outcome::Unknown),
                known: BTreeMap::new(),
                appends: 0,
                failed: None,
                snapshot: false,
                client_chosen: false,
                down_at_begin: Default::default(),
                tid: None,
                began: None,
                deletes: Vec::new(),
            })
            .collect();
        Driver {
            scenario,
            backend,
            txns,
            setup: Txn::new("setup", Outcome::Committed),
            begun: 0,
            lost: Vec::new(),
            log: Vec::new(),
            trace: Vec::new(),
            notes: BTreeMap::new(),
        }
    }

    /// Runs every event, then the ending; returns the history and the final lists.
    pub fn run(&mut self) -> Result<(History, BTreeMap<String, Vec<String>>), Failure> {
        self.set_up()?;
        for (index, event) in self.scenario.events.iter().enumerate() {
            let did = self.event(event)?;
            let at_rest = self.quiesce();
            let (notes, kinds) = self.take_notes();
            self.log
                .push(format!("#{index:<3} {event:<24} {did:<10} {notes}"));
            self.trace.push(format!("#{index} {event} {did} {kinds}"));
            at_rest?;
            self.check_at_rest()?;
        }
        self.release_links();
        self.finish()?;
        self.check_clean()?;
        let lists: BTreeMap<String, Vec<String>> = (self.backend.data().into_iter())
            .map(|(key, value)| (key, parse_list(Some(&value))))
            .collect();
        let mut history = History::default();
        history.txns.push(self.setup.clone());
        for txn in &self.txns {
            if txn.phase != Phase::Over(None) {
                history.txns.push(txn.record.clone());
            }
        }
        let mut final_read = Txn::new("final", Outcome::Committed);
        for key in &self.scenario.keys {
            let list = lists.get(key).cloned().unwrap_or_default();
            final_read.ops.push(Op::Read {
                key: key.clone(),
                list,
            });
        }
        history.txns.push(final_read);
        Ok((history, lists))
    }

    /// Writes every key blind, in one transaction, before the run: what makes a read of
    /// "not set" a read after a delete (see `history`'s deletes).
    fn set_up(&mut self) -> Result<(), Failure> {
        self.backend.set_up(&self.scenario.keys)?;
        for key in &self.scenario.keys {
            let elem = format!("s:{key}");
            self.setup = std::mem::replace(&mut self.setup, Txn::new("", Outcome::Committed))
                .append(key, &elem);
        }
        self.log.push("setup: every key written".into());
        Ok(())
    }

    /// Releases every held link (the end of a run: every delayed message arrives).
    fn release_links(&mut self) {
        for (from, to, _) in self.backend.held_links() {
            let count = self.backend.release_link(from, to);
            self.log
                .push(format!("end: RELEASE {from} -> {to}: {count} messages"));
        }
    }

    /// Performs one event; returns what it did.
    fn event(&mut self, event: &Event) -> Result<String, Failure> {
        let did = match event {
            Event::Begin {
                txn,
                coordinator,
                snapshot,
            } => self.begin(*txn, *coordinator, *snapshot),
            Event::Call { txn, call } => self.call(*txn, call),
            // A careful client aborts after a failed operation; a careless one (every third
            // transaction) tries COMMIT, which must not commit.
            Event::Commit { txn } if self.txns[*txn].failed.is_some() && !txn.is_multiple_of(3) => {
                self.send(*txn, Command::Abort, Pending::Abort)
            }
            Event::Commit { txn } => self.send(*txn, Command::Commit, Pending::Commit),
            Event::Abort { txn } => self.send(*txn, Command::Abort, Pending::Abort),
            fault => self.backend.fault(fault)?,
        };
        Ok(did)
    }

    fn begin(&mut self, txn: usize, coordinator: NodeId, snapshot: bool) -> String {
        self.backend.open(txn, coordinator);
        let all_down = (0..self.scenario.nodes).all(|node| !self.backend.is_up(node));
        let parallel = self.scenario.commit == kv2pc::CommitMode::Parallel;
        let down_at_begin = (0..self.scenario.nodes)
            .filter(|node| snapshot && parallel && !self.backend.is_up(*node))
            .collect();
        let run = &mut self.txns[txn];
        run.down_at_begin = down_at_begin;
        run.phase = Phase::Idle;
        run.snapshot = snapshot;
        run.client_chosen = snapshot && all_down;
        let command = if snapshot {
            Command::BeginSnapshot
        } else {
            Command::Begin
        };
        self.send(txn, command, Pending::Begin)
    }

    fn call(&mut self, txn: usize, call: &Call) -> String {
        let run = &mut self.txns[txn];
        if run.failed.is_some() && !txn.is_multiple_of(3) && run.phase == Phase::Idle {
            return "skipped: an earlier call failed".into();
        }
        match call {
            Call::Read(key) => {
                self.send(txn, Command::Read(key.clone()), Pending::Read(key.clone()))
            }
            Call::ReadForUpdate(key) => self.send(
                txn,
                Command::ReadForUpdate(key.clone()),
                Pending::Read(key.clone()),
            ),
            Call::Delete(key) => {
                if let Some(other) = self.deleter_of(key) {
                    return format!("skipped: t{other} deletes {key}");
                }
                let did = self.send(
                    txn,
                    Command::Delete(key.clone()),
                    Pending::Delete(key.clone()),
                );
                if did == "sent" {
                    self.txns[txn].deletes.push(key.clone());
                }
                did
            }
            Call::Append(key) => {
                let Some(current) = run.known.get(key).cloned() else {
                    return format!("skipped: {key} was never read");
                };
                run.appends += 1;
                let elem = format!("{txn}.{}", run.appends);
                let value = appended(current.as_deref(), &elem);
                let command = Command::Write(key.clone(), value.clone());
                let pending = Pending::Write {
                    key: key.clone(),
                    elem,
                    value,
                };
                self.send(txn, command, pending)
            }
        }
    }

    /// The transaction that sent a delete of `key` and was not told it aborted, if any:
    /// the checker's deletes allow one per key.
    fn deleter_of(&self, key: &str) -> Option<usize> {
        (0..self.txns.len()).find(|t| {
            let run = &self.txns[*t];
            run.deletes.iter().any(|k| k == key) && run.phase != Phase::Over(Some(Outcome::Aborted))
        })
    }

    /// Hands a command to an idle transaction's thread.
    fn send(&mut self, txn: usize, command: Command, pending: Pending) -> String {
        let run = &mut self.txns[txn];
        match run.phase {
            Phase::Idle => {}
            Phase::Calling => return "skipped: still waiting".into(),
            Phase::Over(_) | Phase::NotBegun => return "skipped: over".into(),
        }
        run.phase = Phase::Calling;
        run.pending = Some(pending);
        self.backend.send(txn, command);
        "sent".into()
    }

    /// Lets the run come to rest (see [`Backend::quiesce`]) and records every answer
    /// that came meanwhile.
    pub(super) fn quiesce(&mut self) -> Result<(), Failure> {
        for (txn, answer) in self.backend.quiesce()? {
            self.record(txn, answer)?;
        }
        Ok(())
    }

    /// Notes an answer for the log and records it.
    fn record(&mut self, txn: usize, answer: kv2pc::Result<Response>) -> Result<(), Failure> {
        let note = match &answer {
            Ok(Response::Begun(tid)) => format!("t{txn} is {tid}"),
            Ok(Response::Snapshot(read_ts)) => format!("t{txn} reads at {read_ts}"),
            Ok(Response::Read(value)) => format!("t{txn} read {value:?}"),
            Ok(Response::Done) => format!("t{txn} ok"),
            Err(error) => format!("t{txn} {error}"),
        };
        let kind = match &answer {
            Err(error) => format!("t{txn} {}", error_kind(error)),
            Ok(_) => note.clone(),
        };
        self.notes.insert(txn, (note, kind));
        self.answered(txn, answer)?;
        if let Phase::Over(_) = self.txns[txn].phase {
            self.backend.close(txn);
        }
        Ok(())
    }

    /// Restarts every node and commits every transaction still open, ticking so that
    /// blocked commits time out, until all are over.
    fn finish(&mut self) -> Result<(), Failure> {
        for round in 0..FINISH_ROUNDS {
            self.release_links();
            for node in 0..self.scenario.nodes {
                if !self.backend.is_up(node) {
                    let did = self.backend.fault(&Event::Restart { node })?;
                    self.end_step(format!("RESTART node {node}: {did}"))?;
                }
            }
            for txn in 0..self.txns.len() {
                if self.txns[txn].phase == Phase::Idle {
                    let did = self.event(&Event::Commit { txn })?;
                    self.end_step(format!("t{txn}: COMMIT ({did})"))?;
                }
            }
            let open = (self.txns.iter()).any(|t| !matches!(t.phase, Phase::Over(_)));
            let down = (0..self.scenario.nodes).any(|node| !self.backend.is_up(node));
            if !open && !down {
                self.log
                    .push(format!("end: every transaction over after {round} rounds"));
                return self.backend.join();
            }
            let did = self.backend.fault(&Event::Tick)?;
            self.end_step(format!("TICK: {did}"))?;
            self.check_at_rest()?;
        }
        let open: Vec<String> = (self.txns.iter())
            .filter(|t| !matches!(t.phase, Phase::Over(_)))
            .map(|t| format!("{} {:?}", t.record.name, t.phase))
            .collect();
        Err(format!(
            "still open after {FINISH_ROUNDS} rounds of restart, commit and tick: {open:?}; \
             locks {:?}",
            self.backend.locks()
        ))
    }

    /// The answers since the last log line, in transaction order (the order they came in
    /// depends on thread timing; a transaction answers at most once per event).
    fn take_notes(&mut self) -> (String, String) {
        let notes = std::mem::take(&mut self.notes);
        let (full, kinds): (Vec<String>, Vec<String>) = notes.into_values().unzip();
        (full.join("; "), kinds.join("; "))
    }

    /// Waits for the effects of one step of the ending, and logs it.
    fn end_step(&mut self, step: String) -> Result<(), Failure> {
        self.quiesce()?;
        let (notes, kinds) = self.take_notes();
        self.log.push(format!("end: {step:<30} {notes}"));
        self.trace.push(format!("end: {step} {kinds}"));
        Ok(())
    }

    /// Nothing left over once every node is up again.
    fn check_clean(&mut self) -> Result<(), Failure> {
        self.release_links();
        (self.backend.recover()).map_err(|left| format!("left over after recovery: {left:?}"))
    }
}

/// The cluster's settings: the scenario's commit mode, and defaults or checkpoints after
/// nearly every batch.
pub fn settings(scenario: &Scenario) -> kv2pc::Settings {
    let mut settings = kv2pc::Settings {
        commit: scenario.commit,
        ..kv2pc::Settings::default()
    };
    if scenario.eager_checkpoints {
        settings.checkpoint_bytes = 64;
    }
    settings
}

/// An error's kind, without its wording.
fn error_kind(error: &Error) -> &'static str {
    match error {
        Error::Aborted { .. } => "aborted",
        Error::NodeDown { .. } => "node down",
        Error::OutcomeUnknown { .. } => "outcome unknown",
        Error::InvalidInput(_) => "invalid input",
        _ => "other error",
    }
}
