//! The shell's one entry point: [`Shell::execute`] runs a line and returns its
//! [`Output`]. The prompt loop, the script runner, transcripts and tests all call it.
//!
//! # Deterministic output from a threaded cluster
//!
//! Transaction commands run on their session's thread; everything else runs here. After
//! every command the shell waits until the cluster settles: no message in flight, no node
//! working, every session idle or blocked (see `session.rs`). Only then does it print,
//! in a fixed order: the trace of what happened (sorted by causal depth, then node, a
//! parallel commit's steps in their causal order: see `staged`), the command's own
//! answer, or `<waiting for x held by T3>` if it blocked, and then the completions of
//! earlier commands that this one unblocked, in the order they began to wait, as
//! PostgreSQL's isolation tester does.

use super::command::{Command, Text};
use super::format;
use super::help;
use super::lesson;
use super::listing;
use super::output::{Origin, Outcome, Output, Style};
use super::parser;
use super::session::Session;
use super::transcript;
use crate::clock::format_duration;
use crate::cluster::{Cluster, CrashPoint, TraceEvent};
use crate::error::Error;
use crate::types::NodeId;
use crate::{TxnId, WaitInfo};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The session every shell starts in.
pub const MAIN_SESSION: &str = "main";

/// How deep `SOURCE` may nest, so a script that sources itself stops.
const MAX_SOURCE_DEPTH: usize = 8;

/// The shell over one cluster.
pub struct Shell {
    /// Sessions by name; declared before the cluster so they stop first.
    pub(super) sessions: BTreeMap<String, Session>,
    pub(super) cluster: Cluster,
    pub(super) current: String,
    /// Sessions with a command still running, in the order they began to wait.
    waiting: Vec<String>,
    pub(super) trace_on: Arc<AtomicBool>,
    events: Arc<Mutex<Vec<TraceEvent>>>,
    /// The commits in flight, to print a parallel commit's trace in causal order.
    staging: super::staged::Staging,
    /// Where relative `SOURCE` paths start.
    pub(super) base_dir: PathBuf,
    source_depth: usize,
    /// Set by Ctrl-C at the interactive prompt: a running `SOURCE` stops before its
    /// next line (see `interactive`).
    pub(super) interrupt: Arc<AtomicBool>,
    /// `TIMING ON`: the prompt loop prints each command's time (see `interactive`).
    pub(super) timing: bool,
    /// How many records a `SHOW LOG` without `LAST` shows (the prompt's default).
    pub(super) log_limit: Option<usize>,
    /// Whether `SOURCE` stops at the first line that fails (`--bail`).
    bail: bool,
    /// What `DIAGRAM` draws from (see `charts`).
    pub(super) charts: super::charts::Charts,
    /// Whether `LESSON name` hands the lesson to the caller (see `interactive`).
    pub(super) lesson_host: bool,
    /// What step mode has shown (see `steps`).
    pub(super) steps: super::steps::StepView,
    /// What every key held when the shell began, the start of its history (`CHECK`).
    pub(super) history_start: BTreeMap<String, String>,
}

impl Drop for Shell {
    /// Stops the cluster before the sessions, so a session blocked on a lock is told its
    /// node is down rather than waited for forever.
    fn drop(&mut self) {
        for session in self.sessions.values_mut() {
            session.close();
        }
        self.cluster.shutdown();
    }
}

impl Shell {
    /// A shell over `cluster`, in session `main` coordinated by node 0.
    pub fn new(cluster: Cluster) -> Shell {
        let trace_on = Arc::new(AtomicBool::new(false));
        let events = Arc::new(Mutex::new(Vec::new()));
        // Every event is kept, for DIAGRAM; TRACE decides only what is printed.
        let sink = events.clone();
        cluster.set_trace(Some(Arc::new(move |event: &TraceEvent| {
            sink.lock().push(event.clone());
        })));
        let mut shell = Shell {
            sessions: BTreeMap::new(),
            cluster,
            current: MAIN_SESSION.to_string(),
            waiting: Vec::new(),
            trace_on,
            events,
            staging: Default::default(),
            base_dir: PathBuf::from("."),
            source_depth: 0,
            interrupt: Arc::new(AtomicBool::new(false)),
            timing: false,
            log_limit: None,
            bail: false,
            charts: Default::default(),
            lesson_host: false,
            steps: Default::default(),
            history_start: BTreeMap::new(),
        };
        shell.history_start = super::check::contents(&shell.cluster);
        shell.add_session(MAIN_SESSION, 0);
        shell
    }

    /// Resolves `SOURCE` paths relative to `dir`.
    pub fn set_base_dir(&mut self, dir: &Path) {
        self.base_dir = dir.to_path_buf();
    }

    /// Makes `SOURCE` stop after the first line of its file that fails, as a script run
    /// with `--bail` stops: the failure is in the output, so the script stops there too.
    pub fn set_bail(&mut self, bail: bool) {
        self.bail = bail;
    }

    /// The sessions whose command is still waiting, with that command, in the order
    /// they began to wait.
    pub fn still_waiting(&self) -> Vec<(String, String)> {
        (self.waiting.iter())
            .filter_map(|name| Some((name.clone(), self.sessions.get(name)?.busy()?)))
            .collect()
    }

    /// The cluster.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// The prompt: `kv2pc[main]> `, or `kv2pc[alice T3]> ` with a transaction open, or
    /// `kv2pc[alice T3 aborted]> ` after T3 was aborted out of sight (see `session`),
    /// and `waiting` after either while the session's command waits
    /// (`kv2pc[bob T7 waiting]> `). While a teaching mistake is on, it says so last:
    /// `kv2pc[main T1 !mistake vote-before-fsync]> `.
    pub fn prompt(&self) -> String {
        let session = self.sessions.get(&self.current);
        let mut state = session.and_then(Session::label);
        if session.is_some_and(|session| session.busy().is_some()) {
            state = Some(match state {
                Some(label) => format!("{label} waiting"),
                None => "waiting".to_string(),
            });
        }
        if let Some(mark) = self.mistake_mark() {
            state = Some(match state {
                Some(label) => format!("{label} {mark}"),
                None => mark,
            });
        }
        match state {
            Some(state) => format!("kv2pc[{} {state}]> ", self.current),
            None => format!("kv2pc[{}]> ", self.current),
        }
    }

    /// `!mistake NAME` while a teaching mistake is on (`SET mistake`), for the prompt
    /// and every trace line.
    fn mistake_mark(&self) -> Option<String> {
        let mistake = self.cluster.settings().mistake?;
        Some(format!("!mistake {}", mistake.name()))
    }

    /// The names of the sessions, sorted.
    pub fn session_names(&self) -> Vec<String> {
        self.sessions.keys().cloned().collect()
    }

    /// Runs one line (one or more commands separated by `;`).
    pub fn execute(&mut self, line: &str) -> Output {
        let mut output = Output::default();
        let commands = match parser::parse_line(line) {
            Ok(commands) => commands,
            Err(error) => {
                let mut outcome = Outcome::new(line.trim(), None);
                outcome.fail(error.report(line));
                output.outcomes.push(outcome);
                return output;
            }
        };
        for command in commands {
            if command == Command::Quit {
                output.quit = true;
                break;
            }
            self.run(command, &mut output);
        }
        output
    }

    /// Runs one command, settles the cluster and collects what it printed.
    fn run(&mut self, command: Command, output: &mut Output) {
        if command == Command::Empty {
            return;
        }
        let remember = command.name() != "DIAGRAM";
        let mut outcome = Outcome::new(command.to_string(), None);
        let dispatched = match self.start(command, &mut outcome, output) {
            Ok(dispatched) => dispatched,
            Err(error) => {
                outcome.fail(error);
                None
            }
        };
        self.cluster.settle();
        self.collect(outcome, dispatched, output, remember);
    }

    /// Starts a command: transaction commands go to a session (whose name is returned),
    /// the rest run here.
    fn start(
        &mut self,
        command: Command,
        outcome: &mut Outcome,
        output: &mut Output,
    ) -> Result<Option<String>, String> {
        let (session, command) = match command {
            Command::In { session, command } => {
                if !self.sessions.contains_key(&session) {
                    self.add_session(&session, 0);
                    outcome.push(
                        Style::Event,
                        format!("session {session} created; node 0 coordinates its transactions"),
                    );
                }
                (session, *command)
            }
            command => (self.current.clone(), command),
        };
        if command == Command::Abort && self.sessions[&session].busy().is_some() {
            // ABORT of a session that waits: end the wait, and the transaction with it.
            let busy = self.sessions[&session].busy().unwrap_or_default();
            let tid = self.sessions[&session].cancel_wait("ABORT", true)?;
            outcome.session = Some(session);
            outcome.say(format!("{tid} aborted; so its waiting {busy} fails"));
            return Ok(None);
        }
        if is_transactional(&command) {
            self.dispatch(&session, command)?;
            return Ok(Some(session));
        }
        self.run_here(command, outcome, output)?;
        Ok(None)
    }

    fn dispatch(&mut self, name: &str, command: Command) -> Result<(), String> {
        let session = &self.sessions[name];
        if let Some(busy) = session.busy() {
            return Err(format!(
                "session {name} is still running {busy}; use another session until it completes"
            ));
        }
        session.dispatch(command);
        self.waiting.push(name.to_string());
        Ok(())
    }

    /// Gathers, in a fixed order: trace and events, the command's outcome (or its waiting
    /// line), and the completions of other sessions' commands.
    fn collect(
        &mut self,
        mut outcome: Outcome,
        dispatched: Option<String>,
        output: &mut Output,
        remember: bool,
    ) {
        let mut lines = std::mem::take(&mut outcome.lines);
        let mut reply = super::charts::reply_of(&lines, outcome.error.as_deref());
        lines.extend(self.event_lines());
        lines.extend(self.step_lines());
        if let Some(name) = &dispatched {
            let session = &self.sessions[name];
            match session.try_result() {
                Some(result) => {
                    self.waiting.retain(|waiting| waiting != name);
                    outcome = result;
                }
                None => {
                    outcome.session = Some(name.clone());
                    let named = |tid| self.named(tid);
                    let blockers = |wait: &WaitInfo| self.blockers(wait);
                    let mut line = session.waiting_line(&named, &blockers);
                    if self.cluster.stepping() && line == "<waiting for the cluster>" {
                        line = "<waiting for a held step: SHOW QUEUE lists them>".into();
                    }
                    outcome.push(Style::Waiting, line);
                }
            }
            reply = super::charts::reply_of(&outcome.lines, outcome.error.as_deref());
        }
        if remember {
            self.remember(&outcome.command, dispatched.as_deref(), reply, false);
        }
        lines.append(&mut outcome.lines);
        outcome.lines = lines;
        output.outcomes.push(outcome);
        self.collect_completions(dispatched.as_deref(), output);
    }

    /// The lines of the trace and events that arrived since they were last taken, in
    /// their fixed order; a crash also aborts the transactions its node coordinated.
    pub(super) fn event_lines(&mut self) -> Vec<super::output::Line> {
        let mut events = std::mem::take(&mut *self.events.lock());
        // (In step mode this runs after each step let go, so steps keep their order.)
        self.staging.order(&mut events);
        self.charts.pending.extend(events.iter().cloned());
        let mut lines = Vec::new();
        let mark = self.mistake_mark();
        for event in &events {
            let style = match event {
                TraceEvent::Crash { .. }
                | TraceEvent::Deadlock { .. }
                | TraceEvent::Narrate { .. } => Style::Event,
                _ => Style::Trace,
            };
            if style == Style::Event || self.tracing() {
                // While a teaching mistake is on, every line of what happened says so.
                let text = match &mark {
                    Some(mark) => format!("[{mark}] {event}"),
                    None => event.to_string(),
                };
                lines.push(super::output::Line { style, text });
            }
            if let TraceEvent::Crash { node, .. } = event {
                lines.extend(self.coordinator_crashed(*node));
            }
        }
        lines
    }

    /// A transaction as a waiting line names it: `T16 (session alice)` while a session
    /// has it open, else `T16`.
    pub(super) fn named(&self, tid: TxnId) -> String {
        match self.sessions.values().find(|s| s.tid() == Some(tid)) {
            Some(session) => format!("{tid} (session {})", session.name()),
            None => tid.to_string(),
        }
    }

    /// Who stands in a lock wait's way, read from the lock table of the key's node now
    /// that the cluster has settled: `held by T1 (session main)`, and the requests
    /// queued ahead that it waits for, `queued behind T3 (session carol)`.
    fn blockers(&self, wait: &WaitInfo) -> String {
        let table = self.cluster.locks();
        let entry =
            (table.iter()).find(|(node, locks)| *node == wait.node && locks.key == wait.key);
        let holds = |tid: &TxnId| entry.is_some_and(|(_, l)| l.holders.iter().any(|h| h.0 == *tid));
        let queued =
            |tid: &TxnId| entry.is_some_and(|(_, l)| l.waiters.iter().any(|w| w.0 == *tid));
        let names = |tids: Vec<&TxnId>| -> String {
            let named: Vec<String> = tids.into_iter().map(|tid| self.named(*tid)).collect();
            named.join(", ")
        };
        let held: Vec<&TxnId> = wait.blockers.iter().filter(|tid| holds(tid)).collect();
        let ahead: Vec<&TxnId> = (wait.blockers.iter())
            .filter(|tid| !holds(tid) && queued(tid))
            .collect();
        let other: Vec<&TxnId> = (wait.blockers.iter())
            .filter(|tid| !holds(tid) && !queued(tid))
            .collect();
        let mut parts = Vec::new();
        if !held.is_empty() {
            parts.push(format!("held by {}", names(held)));
        }
        if !ahead.is_empty() {
            parts.push(format!("queued behind {}", names(ahead)));
        }
        if !other.is_empty() {
            parts.push(format!("blocked by {}", names(other)));
        }
        if parts.is_empty() {
            return "blocked by an earlier waiter".into();
        }
        parts.join(", ")
    }

    /// Node `node` crashed: the open transactions it coordinated die with it. Marks
    /// their sessions and says which.
    fn coordinator_crashed(&self, node: NodeId) -> Vec<super::output::Line> {
        (self.sessions.values())
            .filter(|session| session.node() == node)
            .filter_map(|session| {
                let tid = session.coordinator_crashed()?;
                Some(super::output::Line {
                    style: Style::Event,
                    text: format!(
                        "{}: {tid} was aborted: its coordinator node {node} crashed before deciding it",
                        session.name()
                    ),
                })
            })
            .collect()
    }

    pub(super) fn collect_completions(&mut self, except: Option<&str>, output: &mut Output) {
        let mut still_waiting = Vec::new();
        for name in std::mem::take(&mut self.waiting) {
            if Some(name.as_str()) == except {
                still_waiting.push(name);
                continue;
            }
            let Some(session) = self.sessions.get(&name) else {
                continue;
            };
            match session.try_result() {
                Some(mut result) => {
                    if let Some(aborted) = result.aborted.clone() {
                        session.aborted_out_of_sight(aborted);
                    }
                    result.completed_later = true;
                    let reply = super::charts::reply_of(&result.lines, result.error.as_deref());
                    self.remember(&result.command, Some(&name), reply, true);
                    output.outcomes.push(result);
                }
                None => still_waiting.push(name),
            }
        }
        self.waiting = still_waiting;
    }

    /// Runs a command that is not a transaction command.
    fn run_here(
        &mut self,
        command: Command,
        outcome: &mut Outcome,
        output: &mut Output,
    ) -> Result<(), String> {
        let error = |e: Error| e.to_string();
        if self.cluster.is_remote() {
            refuse_over_processes(&command)?;
        }
        match command {
            Command::Session { name, node } => self.session(&name, node, outcome)?,
            Command::Crash { node, at: None } => {
                self.cluster.crash(node).map_err(error)?;
                outcome.say(match self.cluster.address(node) {
                    Some(addr) => format!(
                        "node {node} crashed: its process at {addr} was killed with SIGKILL; \
                         its memory and unsynced log tail are gone"
                    ),
                    None => {
                        format!("node {node} crashed: its memory and unsynced log tail are gone")
                    }
                });
            }
            Command::Crash {
                node,
                at: Some(point),
            } => {
                self.cluster.arm_crash(node, point).map_err(error)?;
                outcome.say(format!(
                    "node {node} will crash at {point} ({})",
                    point.describe()
                ));
            }
            Command::Restart { node } => {
                let report = self.cluster.restart(node).map_err(error)?;
                for warning in &report.warnings {
                    outcome.push(Style::Warning, format!("warning: {warning}"));
                }
                for line in format::recovery(&report) {
                    outcome.say(line);
                }
            }
            Command::Checkpoint { node } => {
                self.cluster.checkpoint(node).map_err(error)?;
                outcome.say(format!(
                    "node {node} wrote a checkpoint and dropped the log before it"
                ));
            }
            Command::Status => self.status(outcome),
            Command::ShowLocks => {
                for line in format::locks(&self.cluster.locks()) {
                    outcome.say(line);
                }
            }
            Command::ShowWaits => self.show_waits(outcome),
            Command::ShowLog { node, last } => self.show_log(node, last, outcome)?,
            Command::ShowSettings => listing::settings(&self.cluster, outcome),
            Command::Keys { prefix } => listing::keys(&self.cluster, prefix.as_deref(), outcome),
            Command::Where { key } => {
                crate::types::check_key(&key).map_err(|e| e.to_string())?;
                outcome.say(format!(
                    "{} is on node {}",
                    Text(&key),
                    self.cluster.owner(&key)
                ));
            }
            Command::Diagram { tid, form } => self.diagram(tid, &form, outcome)?,
            Command::Trace { on } => {
                self.trace_on.store(on, Ordering::Relaxed);
                outcome.say(if on { "trace on" } else { "trace off" });
            }
            Command::Timing { on } => {
                self.timing = on;
                outcome.say(match on {
                    true => "timing on (the interactive prompt prints each command's time)",
                    false => "timing off",
                });
            }
            Command::Tick { duration } => {
                self.cluster.tick(duration).map_err(error)?;
                outcome.say(format!(
                    "the clock moved {} forward",
                    format_duration(duration)
                ));
            }
            Command::Set { name, value } => self.set(&name, &value, outcome)?,
            Command::Source { path } => self.source(&path, output)?,
            Command::Help { topic } => {
                for line in help::help(topic.as_deref())?.lines() {
                    outcome.say(line);
                }
            }
            Command::Lesson { name } => {
                output.lesson = lesson::command(name.as_deref(), self.lesson_host, outcome)?;
            }
            Command::Resolve { tid, commit, node } => {
                self.cluster.resolve(node, tid, commit).map_err(error)?;
                let how = if commit { "committed" } else { "aborted" };
                let durable = match self.cluster.stepping() {
                    false => "logged and fsynced",
                    true => {
                        "logged, but its fsync waits in the step queue: a crash before it goes loses the decision"
                    }
                };
                outcome.say(format!(
                    "{tid} {how} by hand on node {node}: a heuristic decision, {durable}"
                ));
            }
            command @ (Command::Step { .. }
            | Command::ShowQueue
            | Command::Deliver { .. }
            | Command::Drop { .. }) => self.step_command(command, outcome)?,
            Command::Check => self.check(outcome),
            Command::Explore { bounds, what } => self.explore(&bounds, &what, outcome)?,
            other => return Err(format!("{} cannot run here", other.name())),
        }
        Ok(())
    }

    fn add_session(&mut self, name: &str, node: NodeId) {
        if let Ok(client) = self.cluster.client(node) {
            let session = Session::start(name, client, self.cluster.activity());
            self.sessions.insert(name.to_string(), session);
        }
    }

    fn session(
        &mut self,
        name: &str,
        node: Option<NodeId>,
        outcome: &mut Outcome,
    ) -> Result<(), String> {
        if let Some(node) = node {
            self.cluster.client(node).map_err(|e| e.to_string())?;
        }
        match self.sessions.get(name) {
            Some(existing) if node.is_some_and(|n| n != existing.node()) => {
                return Err(format!(
                    "session {name} already exists on node {}; a session keeps its coordinator",
                    existing.node()
                ));
            }
            Some(existing) => outcome.say(format!("session {name} (node {})", existing.node())),
            None => {
                let node = node.unwrap_or(0);
                self.add_session(name, node);
                outcome.say(format!(
                    "session {name} created; node {node} coordinates its transactions"
                ));
            }
        }
        self.current = name.to_string();
        Ok(())
    }

    /// `SET name value`, as the table of settings (`config::SETTINGS`) reads it.
    fn set(&mut self, name: &str, value: &str, outcome: &mut Outcome) -> Result<(), String> {
        let mut settings = self.cluster.settings();
        let (name, shown) = settings.set(name, value)?;
        let mistake = settings.mistake;
        self.cluster.set_settings(settings);
        outcome.say(format!("{name} = {shown}"));
        if name == "mistake"
            && let Some(mistake) = mistake
        {
            outcome.push(
                Style::Warning,
                format!(
                    "warning: a deliberately broken protocol, for teaching only: {}. The \
                     prompt and every trace line say so while it is on; SET mistake off \
                     puts the protocol right (see HELP mistakes).",
                    mistake.breaks()
                ),
            );
        }
        Ok(())
    }

    fn source(&mut self, path: &str, output: &mut Output) -> Result<(), String> {
        if self.source_depth >= MAX_SOURCE_DEPTH {
            return Err(format!(
                "SOURCE nests more than {MAX_SOURCE_DEPTH} deep; does a script source itself?"
            ));
        }
        // `x.kv` rather than `./x.kv` in messages, for a script run where it lies.
        let full = match self.base_dir.as_path() {
            dir if dir == Path::new(".") => PathBuf::from(path),
            dir => dir.join(path),
        };
        let text = std::fs::read_to_string(&full)
            .map_err(|e| format!("cannot read {}: {e}", full.display()))?;
        self.source_depth += 1;
        let file = full.display().to_string();
        // A transcript runs its `> ` lines only; a script every line.
        let lines = transcript::command_lines(&text)
            .unwrap_or_else(|| text.lines().enumerate().map(|(i, l)| (i + 1, l)).collect());
        let mut stopped = None;
        for (index, &(number, line)) in lines.iter().enumerate() {
            if self.interrupt.load(Ordering::Relaxed) {
                stopped = Some(index);
                break;
            }
            let origin = Origin {
                file: file.clone(),
                line: number,
                text: line.to_string(),
            };
            output.sourced.push((output.outcomes.len(), origin.clone()));
            let mut result = self.execute(line);
            for outcome in &mut result.outcomes {
                outcome.origin.get_or_insert_with(|| origin.clone());
            }
            let offset = output.outcomes.len();
            (output.sourced).extend(result.sourced.drain(..).map(|(at, o)| (at + offset, o)));
            let stop = result.quit || (self.bail && result.failed());
            output.outcomes.append(&mut result.outcomes);
            if stop {
                break;
            }
        }
        self.source_depth -= 1;
        match stopped {
            Some(done) => Err(format!(
                "Ctrl-C stopped SOURCE {path} after {done} of its {} lines; the rest did not run",
                lines.len()
            )),
            None => Ok(()),
        }
    }
}

/// Whether a command runs on a session's thread.
fn is_transactional(command: &Command) -> bool {
    matches!(
        command,
        Command::Begin { .. }
            | Command::Get { .. }
            | Command::Scan { .. }
            | Command::Put { .. }
            | Command::Del { .. }
            | Command::Commit
            | Command::Abort
    )
}

/// Whether a crash point name is valid, for completion.
pub fn crash_point_names() -> Vec<&'static str> {
    CrashPoint::ALL.iter().map(|point| point.name()).collect()
}

/// Refuses the commands that need every node in this process: the step queue holds
/// the messages and fsyncs of nodes that run here, and TICK moves a clock they share.
/// Node processes talk over their own sockets and run on real time.
fn refuse_over_processes(command: &Command) -> Result<(), String> {
    let what = match command {
        Command::Step { .. }
        | Command::ShowQueue
        | Command::Deliver { .. }
        | Command::Drop { .. } => {
            "the step queue holds the messages of nodes inside the shell's process, but these nodes \
             are processes that talk over their own sockets"
        }
        Command::Tick { .. } => {
            "node processes run on real time; TICK moves the manual clock of nodes inside the shell's process"
        }
        _ => return Ok(()),
    };
    Err(format!(
        "{} cannot run on a cluster of node processes: {what}. Open the embedded shell (kv2pc) to use it",
        command.name()
    ))
}
