//! The driver of a run: executes a scenario's events one at a time against a
//! manual-clock cluster, each client call on its transaction's thread, and waits after
//! each event until the run is at rest (every thread answered or stuck in the cluster, the
//! cluster settled), which makes a run deterministic. It ends the run by restarting every
//! node and finishing every transaction, and records the history of what each client was
//! told.

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
enum Phase {
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
enum Pending {
    Begin,
    /// Reading a key.
    Read(String),
    /// Appending `elem` to `key`, which then holds `value`.
    Write {
        key: String,
        elem: String,
        value: String,
    },
    Commit,
    Abort,
}

/// One transaction of the run, as the driver sees it.
struct TxnRun {
    phase: Phase,
    /// To its thread, while it runs.
    commands: Option<Sender<Command>>,
    /// From its thread.
    answers: Option<Receiver<kv2pc::Result<Answer>>>,
    /// Whether its thread is stuck in the cluster.
    blocked: Arc<Blocked>,
    thread: Option<std::thread::JoinHandle<()>>,
    pending: Option<Pending>,
    /// What it did, for the history.
    record: Txn,
    /// The list value of each key as this transaction last read or wrote it.
    known: BTreeMap<String, Option<String>>,
    /// Its appends so far, numbering its elements.
    appends: usize,
    /// A call failed (its node was down, or a snapshot too old): the rest of the plan is
    /// skipped.
    doomed: bool,
    /// A lock-free read-only snapshot: it cannot abort, so its reads count as committed.
    snapshot: bool,
}

/// Executes a scenario.
pub struct Driver<'s> {
    scenario: &'s Scenario,
    harness: Harness,
    txns: Vec<TxnRun>,
    /// Elements whose write failed because the node died: they must never appear.
    pub lost: Vec<(String, String)>,
    /// What each event did, for the failure report.
    pub log: Vec<String>,
    /// The log with each error reduced to its kind: what must replay exactly (an error's
    /// wording may name whichever of two NO votes came first).
    pub trace: Vec<String>,
    /// Answers that came in since the last log line: in full, and reduced.
    notes: BTreeMap<usize, (String, String)>,
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
                doomed: false,
                snapshot: false,
            })
            .collect();
        Driver {
            scenario,
            harness: Harness::open_with(scenario.nodes, settings(scenario)),
            txns,
            lost: Vec::new(),
            log: Vec::new(),
            trace: Vec::new(),
            notes: BTreeMap::new(),
        }
    }

    fn context(&self) -> String {
        format!("seed {}", self.scenario.seed)
    }

    /// Runs every event, then the ending; returns the history and the final lists.
    pub fn run(&mut self) -> Result<(History, BTreeMap<String, Vec<String>>), Failure> {
        for (index, event) in self.scenario.events.iter().enumerate() {
            let did = self.event(event)?;
            self.quiesce()?;
            let (notes, kinds) = self.take_notes();
            self.log
                .push(format!("#{index:<3} {event:<24} {did:<10} {notes}"));
            self.trace.push(format!("#{index} {event} {did} {kinds}"));
        }
        self.finish()?;
        self.check_clean()?;
        let lists: BTreeMap<String, Vec<String>> = (self.harness.data().into_iter())
            .map(|(key, value)| (key, parse_list(Some(&value))))
            .collect();
        let mut history = History::default();
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
        if run.doomed && run.phase == Phase::Idle {
            return "skipped: an earlier call failed".into();
        }
        match call {
            Call::Read(key) => {
                self.send(txn, Command::Read(key.clone()), Pending::Read(key.clone()))
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
    fn quiesce(&mut self) -> Result<(), Failure> {
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

    /// Records a call's answer.
    fn answered(&mut self, txn: usize, answer: kv2pc::Result<Answer>) -> Result<(), Failure> {
        let run = &mut self.txns[txn];
        let pending = run.pending.take().expect("a call was under way");
        run.phase = Phase::Idle;
        let over = |outcome| Phase::Over(Some(outcome));
        match (pending, answer) {
            (Pending::Begin, Ok(Answer::Begun(tid))) => {
                run.record.name = format!("t{txn}/{tid}");
            }
            (Pending::Begin, Ok(Answer::Snapshot(read_ts))) => {
                run.record.name = format!("t{txn}/snapshot@{read_ts}");
            }
            // A snapshot older than a recovered node keeps (after a checkpoint) is refused;
            // the reads made so far stand.
            (Pending::Read(_), Err(Error::InvalidInput(_))) if run.snapshot => run.doomed = true,
            (Pending::Commit | Pending::Abort, Ok(Answer::Done)) if run.snapshot => {
                run.phase = over(Outcome::Committed)
            }
            (Pending::Begin, Err(Error::NodeDown { .. })) => run.phase = Phase::Over(None),
            (Pending::Read(key), Ok(Answer::Read(value))) => {
                run.record.ops.push(Op::Read {
                    key: key.clone(),
                    list: parse_list(value.as_deref()),
                });
                run.known.insert(key, value);
            }
            (Pending::Write { key, elem, value }, Ok(Answer::Done)) => {
                run.record.ops.push(Op::Append {
                    key: key.clone(),
                    elem,
                });
                run.known.insert(key, Some(value));
            }
            (Pending::Write { key, elem, .. }, Err(Error::NodeDown { .. })) => {
                run.doomed = true;
                self.lost.push((key, elem));
            }
            (Pending::Read(_), Err(Error::NodeDown { .. })) => run.doomed = true,
            (Pending::Read(_) | Pending::Write { .. }, Err(Error::Aborted { .. })) => {
                run.phase = over(Outcome::Aborted)
            }
            (Pending::Commit, Ok(Answer::Done)) => run.phase = over(Outcome::Committed),
            (Pending::Commit, Err(Error::Aborted { .. })) => run.phase = over(Outcome::Aborted),
            // The coordinator died, or the only participant of a one-phase commit did.
            (Pending::Commit, Err(Error::OutcomeUnknown { .. } | Error::NodeDown { .. })) => {
                run.phase = over(Outcome::Unknown)
            }
            // Never committed, whether or not the abort reached the coordinator.
            (Pending::Abort, _) => run.phase = over(Outcome::Aborted),
            (_, Err(error)) => return Err(format!("t{txn}: unexpected error: {error}")),
            (_, Ok(_)) => return Err(format!("t{txn}: an answer of the wrong kind")),
        }
        if let Phase::Over(Some(outcome)) = run.phase {
            run.record.outcome = outcome;
            run.commands = None;
        }
        Ok(())
    }

    /// Restarts every node and commits every transaction still open, ticking so that
    /// blocked commits time out, until all are over.
    fn finish(&mut self) -> Result<(), Failure> {
        for round in 0..FINISH_ROUNDS {
            let cluster = self.harness.cluster().clone();
            for node in 0..self.scenario.nodes {
                if !cluster.is_up(node) {
                    let did = describe(cluster.restart(node).map(|_| ()));
                    self.end_step(format!("RESTART node {node}: {did}"))?;
                }
            }
            for txn in 0..self.txns.len() {
                if self.txns[txn].phase == Phase::Idle {
                    self.send(txn, Command::Commit, Pending::Commit);
                    self.end_step(format!("t{txn}: COMMIT"))?;
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
