//! The driver of a run: executes a scenario's events one at a time against a
//! manual-clock cluster, each client call on its transaction's thread, and waits after
//! each event until the run is at rest (every thread answered or stuck in the cluster, the
//! cluster settled), which makes a run deterministic. A run begins with a setup
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

use super::client::{Answer, Blocked, Command, client_thread};
use super::scenario::{Call, Event, Scenario};
use crate::support::history::{History, Op, Outcome, Txn, appended, parse_list};
use crate::support::{Harness, TICK};
use crossbeam::channel::{Receiver, Sender, TryRecvError, unbounded};
use kv2pc::{Error, NodeId};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The longest a run may wait for its client threads between two events.
const QUIESCE_LIMIT: Duration = Duration::from_secs(20);
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
    /// To its thread, while it runs.
    pub(super) commands: Option<Sender<Command>>,
    /// From its thread.
    answers: Option<Receiver<kv2pc::Result<Answer>>>,
    /// Whether its thread is stuck in the cluster.
    pub(super) blocked: Arc<Blocked>,
    thread: Option<std::thread::JoinHandle<()>>,
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
    pub(super) harness: Harness,
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

/// A run's failure: what went wrong.
pub type Failure = String;

impl<'s> Driver<'s> {
    /// A driver for `scenario`, with a fresh cluster.
    pub fn new(scenario: &'s Scenario) -> Driver<'s> {
        let count = (scenario.events.iter())
            .filter(|e| matches!(e, Event::Begin { .. }))
            .count();
        let txns = (0..count)
            .map(|txn| TxnRun {
                phase: Phase::NotBegun,
                commands: None,
                answers: None,
                blocked: Arc::default(),
                thread: None,
                pending: None,
                record: Txn::new(format!("t{txn}"), Outcome::Unknown),
                known: BTreeMap::new(),
                appends: 0,
                failed: None,
                snapshot: false,
                tid: None,
                began: None,
                deletes: Vec::new(),
            })
            .collect();
        Driver {
            scenario,
            harness: Harness::open_with(scenario.nodes, settings(scenario)),
            txns,
            setup: Txn::new("setup", Outcome::Committed),
            begun: 0,
            lost: Vec::new(),
            log: Vec::new(),
            trace: Vec::new(),
            notes: BTreeMap::new(),
        }
    }

    pub(super) fn context(&self) -> String {
        format!("seed {}", self.scenario.seed)
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
        let lists: BTreeMap<String, Vec<String>> = (self.harness.data().into_iter())
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
        let client = self
            .harness
            .cluster()
            .client(0)
            .map_err(|e| e.to_string())?;
        let mut txn = client.begin().map_err(|e| format!("setup: {e}"))?;
        for key in &self.scenario.keys {
            let elem = format!("s:{key}");
            txn.put(key, &elem).map_err(|e| format!("setup: {e}"))?;
            self.setup = std::mem::replace(&mut self.setup, Txn::new("", Outcome::Committed))
                .append(key, &elem);
        }
        txn.commit().map_err(|e| format!("setup: {e}"))?;
        self.harness.settle(&self.context());
        self.log.push("setup: every key written".into());
        Ok(())
    }

    /// Releases every held link (the end of a run: every delayed message arrives).
    fn release_links(&mut self) {
        let cluster = self.harness.cluster().clone();
        for (from, to, _) in cluster.held_links() {
            let count = cluster.release_link(from, to);
            self.log
                .push(format!("end: RELEASE {from} -> {to}: {count} messages"));
        }
        self.harness.settle(&self.context());
    }

    /// Performs one event; returns what it did.
    fn event(&mut self, event: &Event) -> Result<String, Failure> {
        if *event == Event::Reopen {
            self.harness.reopen();
            return Ok("ok".into());
        }
        let cluster = self.harness.cluster().clone();
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
            Event::Crash { node } => describe(cluster.crash(*node)),
            Event::Arm { node, point } => describe(cluster.arm_crash(*node, *point)),
            Event::Restart { node } => describe(cluster.restart(*node).map(|_| ())),
            Event::Tick => describe(cluster.tick(TICK)),
            Event::Checkpoint { node } => match cluster.checkpoint(*node) {
                Ok(()) => "ok".into(),
                Err(Error::NodeDown { .. }) => "node down".into(),
                Err(other) => return Err(format!("checkpoint of node {node} failed: {other}")),
            },
            Event::Hold { from, to, label } => describe(cluster.hold_link(*from, *to, label)),
            Event::Release { from, to } => {
                format!("{} held", cluster.release_link(*from, *to))
            }
            Event::Reopen => unreachable!("handled above"),
        };
        Ok(did)
    }

    fn begin(&mut self, txn: usize, coordinator: NodeId, snapshot: bool) -> String {
        let (commands, inbox) = unbounded();
        let (outbox, answers) = unbounded();
        let client = self.harness.cluster().client(coordinator).unwrap();
        let run = &mut self.txns[txn];
        let blocked = run.blocked.clone();
        run.thread = Some(std::thread::spawn(move || {
            client_thread(client, blocked, inbox, outbox)
        }));
        run.commands = Some(commands);
        run.answers = Some(answers);
        run.phase = Phase::Idle;
        run.snapshot = snapshot;
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
        let sender = run.commands.as_ref().expect("a thread runs");
        sender.send(command).expect("the client thread is alive");
        "sent".into()
    }

    /// Waits until every client thread has its answer or is stuck in the cluster (in the
    /// same wait before and after a settle, see [`Blocked`]), and the cluster is settled:
    /// the run is then at rest, and the next event can come.
    pub(super) fn quiesce(&mut self) -> Result<(), Failure> {
        let deadline = Instant::now() + QUIESCE_LIMIT;
        let mut seen: BTreeMap<usize, u64> = BTreeMap::new();
        loop {
            self.harness.settle(&self.context());
            let answered = self.collect()?;
            let waits: BTreeMap<usize, u64> = (0..self.txns.len())
                .filter(|t| self.txns[*t].phase == Phase::Calling)
                .map(|t| (t, self.txns[t].blocked.state()))
                .collect();
            if waits.is_empty() {
                return Ok(());
            }
            let stuck = waits
                .iter()
                .all(|(t, state)| state % 2 == 1 && seen.get(t) == Some(state));
            if stuck && !answered {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "client threads of {:?} neither answered nor blocked within \
                     {QUIESCE_LIMIT:?}",
                    waits.keys()
                ));
            }
            if waits.values().any(|state| state % 2 == 0) {
                std::thread::sleep(Duration::from_micros(20));
            }
            seen = waits;
        }
    }

    /// Takes every answer waiting; returns whether there was any.
    fn collect(&mut self) -> Result<bool, Failure> {
        let mut any = false;
        for txn in 0..self.txns.len() {
            if self.txns[txn].phase != Phase::Calling {
                continue;
            }
            let answer = match self.txns[txn]
                .answers
                .as_ref()
                .expect("a thread runs")
                .try_recv()
            {
                Ok(answer) => answer,
                Err(TryRecvError::Empty) => continue,
                Err(TryRecvError::Disconnected) => {
                    return Err(format!("the client thread of t{txn} died"));
                }
            };
            any = true;
            let note = match &answer {
                Ok(Answer::Begun(tid)) => format!("t{txn} is {tid}"),
                Ok(Answer::Snapshot(read_ts)) => format!("t{txn} reads at {read_ts}"),
                Ok(Answer::Read(value)) => format!("t{txn} read {value:?}"),
                Ok(Answer::Done) => format!("t{txn} ok"),
                Err(error) => format!("t{txn} {error}"),
            };
            let kind = match &answer {
                Err(error) => format!("t{txn} {}", error_kind(error)),
                Ok(_) => note.clone(),
            };
            self.notes.insert(txn, (note, kind));
            self.answered(txn, answer)?;
        }
        Ok(any)
    }

    /// Restarts every node and commits every transaction still open, ticking so that
    /// blocked commits time out, until all are over.
    fn finish(&mut self) -> Result<(), Failure> {
        for round in 0..FINISH_ROUNDS {
            self.release_links();
            let cluster = self.harness.cluster().clone();
            for node in 0..self.scenario.nodes {
                if !cluster.is_up(node) {
                    let did = describe(cluster.restart(node).map(|_| ()));
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
            let down = (0..self.scenario.nodes).any(|node| !cluster.is_up(node));
            if !open && !down {
                self.log
                    .push(format!("end: every transaction over after {round} rounds"));
                return self.join_threads();
            }
            let did = describe(cluster.tick(TICK));
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
            self.harness.cluster().locks()
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

    fn join_threads(&mut self) -> Result<(), Failure> {
        for txn in &mut self.txns {
            txn.commands = None;
            if let Some(thread) = txn.thread.take() {
                let deadline = Instant::now() + QUIESCE_LIMIT;
                while !thread.is_finished() {
                    if Instant::now() > deadline {
                        return Err(format!("{}'s thread does not end", txn.record.name));
                    }
                    std::thread::sleep(Duration::from_micros(50));
                }
                thread
                    .join()
                    .map_err(|_| format!("{}'s thread panicked", txn.record.name))?;
            }
        }
        Ok(())
    }

    /// Nothing left over once every node is up again.
    fn check_clean(&mut self) -> Result<(), Failure> {
        self.release_links();
        (self.harness.recover(&self.context()))
            .map_err(|left| format!("left over after recovery: {left:?}"))
    }
}

/// The cluster's settings: defaults, or checkpoints after nearly every batch.
fn settings(scenario: &Scenario) -> kv2pc::Settings {
    let mut settings = kv2pc::Settings::default();
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

/// What a fault or tick did, for the log.
fn describe(result: kv2pc::Result<()>) -> String {
    match result {
        Ok(()) => "ok".into(),
        Err(error) => format!("refused: {error}"),
    }
}
