//! The embedded cluster: N node threads over one data directory.
//!
//! `Cluster::open` checks the directory (its manifest: node count and format version;
//! an OS lock so one process owns it), recovers every node from its log, and starts one
//! thread per node. The cluster then offers clients (`Cluster::client`, made by the client
//! layer above: this module names no client type), faults
//! (`crash`, `arm_crash`, `restart`), checkpoints, and observation (`status`, `locks`,
//! `log_records`, a trace hook), in types of its own (`observe`), so that what renders
//! them depends on this layer only. `settle` waits until no work is in flight (no work token
//! alive: see `net`), which is what makes the shell's output deterministic; if it waits
//! long it says on stderr what is still outstanding, and [`Cluster::settle_within`]
//! gives up after a limit, naming it. `close` (or drop) stops every thread after
//! flushing its log.
//!
//! A node thread that panics is reported as crashed on an error: `status` shows
//! `it panicked: <message>` as its failure, requests to it are told so, and `restart`
//! recovers it from its log (see `runtime`).

use crate::clock::{ClientClock, Clock};
use crate::config::{Config, Settings};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::net::{Control, Label, Mail, What};
use crate::node::Node;
use crate::runtime::Runtime;
use crate::types::{MAX_NODES, NodeId, owner_of};
use crate::wal::Wal;
use crossbeam::channel::{bounded, unbounded};
use parking_lot::Mutex;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

mod admin;
mod observe;
mod recovery;
mod remote;
mod steps;

pub use crate::crash::CrashPoint;
pub use crate::net::Pending;
pub use crate::net::{Activity, Work};
pub use crate::trace::{TraceEvent, TraceHook};
pub use admin::{Admin, AdminReply};
pub use observe::{KeyLocks, LogEntry, LogRecord, NodeStatus};
pub use recovery::{CheckpointInfo, InDoubt, RecoveryReport};
pub use remote::{Launcher, QUIET_GAP};
pub use steps::{MAX_STEP_ROUNDS, StepChoice};

/// The data directory's format version, recorded in its manifest.
pub const FORMAT_VERSION: u32 = 1;

const MANIFEST: &str = "MANIFEST";
const LOCK: &str = "LOCK";
/// The manifest being written; a process killed while creating a directory leaves it.
const MANIFEST_TMP: &str = "MANIFEST.tmp";

/// How long `settle` waits before it says on stderr what it is waiting for.
const SETTLE_REPORT: Duration = Duration::from_secs(5);

/// A running cluster.
pub struct Cluster {
    ctx: Arc<Context>,
    /// What this handle's clients know of time (client state; nodes never read it).
    clients: Arc<ClientClock>,
    threads: Mutex<Vec<Option<JoinHandle<()>>>>,
    reports: Vec<RecoveryReport>,
    /// The node processes this handle reaches, if its nodes are not its own threads
    /// (`remote`).
    processes: Option<Arc<remote::Processes>>,
    /// Held open for the OS lock on the directory (none for a handle on processes:
    /// each process locks its own).
    _lock: Option<File>,
}

impl Cluster {
    /// Opens (creating if needed) the cluster in `dir` and starts its nodes.
    pub fn open(dir: impl AsRef<Path>, config: Config) -> Result<Cluster> {
        let nodes = config.nodes;
        let mut cluster = Cluster::prepare(dir.as_ref(), config)?;
        cluster.start_nodes(0..nodes)?;
        Ok(cluster)
    }

    /// Opens (creating if needed) `dir` as the data directory of node `node`'s own
    /// process: only that node runs here. `connect` is handed the network before the
    /// node starts, to carry its messages to the nodes in other processes (`process`);
    /// what it gives back comes back with the cluster.
    pub(crate) fn open_one<T>(
        dir: &Path,
        config: Config,
        node: NodeId,
        connect: impl FnOnce(&Arc<Context>) -> Result<T>,
    ) -> Result<(Cluster, T)> {
        let mut cluster = Cluster::prepare(dir, config)?;
        cluster.ctx.net.check_node(node)?;
        let connected = connect(&cluster.ctx)?;
        cluster.start_nodes(node..node + 1)?;
        Ok((cluster, connected))
    }

    /// Checks and locks `dir` and makes the cluster's context, with every node down.
    fn prepare(dir: &Path, config: Config) -> Result<Cluster> {
        let dir = dir.to_path_buf();
        if config.nodes == 0 || config.nodes > MAX_NODES {
            return Err(Error::InvalidInput(format!(
                "a cluster has 1 to {MAX_NODES} nodes, not {}",
                config.nodes
            )));
        }
        let lock = lock_dir(&dir)?;
        check_manifest(&dir, config.nodes)?;
        let clock = if config.manual_clock {
            Clock::manual()
        } else {
            Clock::real()
        };
        let mut ctx = Context::new(config.nodes, dir, clock, config.settings);
        if let Ok(text) = std::env::var(crate::crash::FAILPOINT_VAR) {
            ctx.failpoint = Some(crate::crash::parse_failpoint(&text)?);
        }
        Ok(Cluster {
            ctx: Arc::new(ctx),
            clients: Arc::default(),
            threads: Mutex::new((0..config.nodes).map(|_| None).collect()),
            reports: Vec::new(),
            processes: None,
            _lock: Some(lock),
        })
    }

    /// Recovers and starts `nodes`, then waits until what their recoveries set going is
    /// done.
    fn start_nodes(&mut self, nodes: std::ops::Range<NodeId>) -> Result<()> {
        for node in nodes {
            let report = self.start(node)?;
            self.reports.push(report);
        }
        self.settle();
        Ok(())
    }

    /// What recovery found on each node when the cluster opened.
    pub fn recovery_reports(&self) -> &[RecoveryReport] {
        &self.reports
    }

    /// Recovers `node` from its log and starts its thread.
    fn start(&self, node: NodeId) -> Result<RecoveryReport> {
        let (wal, recovery) = Wal::open(&self.node_dir(node))?;
        let now = self.ctx.clock.now();
        let snapshot = recovery.snapshot.as_ref();
        let settings = self.ctx.settings.read().clone();
        let records = &recovery.records;
        let (mut state, effects) =
            Node::recover_with(node, self.ctx.nodes, snapshot, records, now, &settings);
        let report = RecoveryReport::of(&mut state, recovery.records.len(), recovery.warnings);
        self.ctx.set_failure(node, None);
        // The handle hears each node's clock as it starts, as a client would in a
        // handshake: the commits its clients make next go above what the logs hold.
        self.clients.observe(state.clock());
        let (inbox_sender, inbox) = unbounded();
        let runtime = Runtime::new(state, wal, self.ctx.clone(), inbox)?;
        let recovering = self.ctx.net.work(Label::on(What::Recovery, node));
        self.ctx.net.attach(node, inbox_sender);
        let handle = std::thread::Builder::new()
            .name(format!("node{node}"))
            .spawn(move || runtime.run(effects, recovering))
            .map_err(|error| Error::io("starting a node thread", error))?;
        self.threads.lock()[node as usize] = Some(handle);
        Ok(report)
    }

    fn node_dir(&self, node: NodeId) -> PathBuf {
        self.ctx.dir.join(format!("node{node}"))
    }

    /// What the node threads and this handle's clients share, for the client layer to
    /// make sessions with (`Cluster::client`, in `client.rs`).
    pub(crate) fn context(&self) -> &Arc<Context> {
        &self.ctx
    }

    /// What this handle's clients know of time, for the client layer.
    pub(crate) fn client_clock(&self) -> &Arc<ClientClock> {
        &self.clients
    }

    /// The number of nodes.
    pub fn nodes(&self) -> u32 {
        self.ctx.nodes
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.ctx.dir
    }

    /// The node that owns `key`.
    pub fn owner(&self, key: &str) -> NodeId {
        owner_of(key, self.ctx.nodes)
    }

    /// Kills `node` now: it loses everything not fsynced and drops messages sent to it.
    pub fn crash(&self, node: NodeId) -> Result<()> {
        self.control(node, Control::Crash)?;
        self.join(node);
        Ok(())
    }

    /// Arms a crash point: `node` dies the next time it reaches `point`.
    pub fn arm_crash(&self, node: NodeId, point: CrashPoint) -> Result<()> {
        self.control(node, Control::Arm(point))
    }

    /// Makes `node`'s next log write fail as a full disk would: the node stops, and
    /// `status` says why (fault injection, for tests).
    pub fn fail_next_write(&self, node: NodeId) -> Result<()> {
        self.control(node, Control::FailNextWrite)
    }

    /// Makes `node`'s thread panic with `message` in the middle of its next batch, as a
    /// bug would (fault injection, for tests: the node must be reported crashed, with
    /// the message, and restart).
    #[doc(hidden)]
    pub fn inject_panic(&self, node: NodeId, message: &str) -> Result<()> {
        self.control(node, Control::Panic(message.to_string()))
    }

    /// Holds back protocol messages from `from` to `to`, starting at the first whose label
    /// (as traced: `VOTE YES`, `PREPARE`, `COMMIT`...) starts with `label` (any message,
    /// if it is empty): that one and every later one on the link wait, in order, while
    /// other links flow, until [`Cluster::release_link`]. Held messages are not in flight
    /// for [`Cluster::settle`]; those held for a node that dies are dropped, and those
    /// sent while it is down are lost, as on any link. Fault injection, for tests: a
    /// message delayed on the network.
    pub fn hold_link(&self, from: NodeId, to: NodeId, label: &str) -> Result<()> {
        if self.is_remote() {
            return Err(Error::InvalidInput(
                "a link between node processes cannot be held from here: their messages travel on their own sockets".into(),
            ));
        }
        self.ctx.net.hold_link(from, to, label)
    }

    /// Releases a link held by [`Cluster::hold_link`]: what waited on it is sent, in
    /// order (dropped if `to` is down). Returns how many messages waited.
    pub fn release_link(&self, from: NodeId, to: NodeId) -> usize {
        self.ctx.net.release_link(from, to)
    }

    /// The links held by [`Cluster::hold_link`], as `(from, to, messages waiting)`.
    pub fn held_links(&self) -> Vec<(NodeId, NodeId, usize)> {
        self.ctx.net.held_links()
    }

    /// Restarts a crashed node: recovery replays its checkpoint and log, re-locks in-doubt
    /// keys before it serves anyone, and resumes the protocol.
    pub fn restart(&self, node: NodeId) -> Result<RecoveryReport> {
        self.ctx.net.check_node(node)?;
        if let Some(processes) = &self.processes {
            processes.await_death(node);
        }
        if self.ctx.net.is_up(node) {
            return Err(Error::InvalidInput(format!(
                "node {node} is already up; CRASH it first to see it recover"
            )));
        }
        if let Some(processes) = &self.processes {
            return self.restart_process(processes, node);
        }
        self.join(node);
        self.start(node)
    }

    /// Writes a checkpoint on `node` and drops the log before it.
    pub fn checkpoint(&self, node: NodeId) -> Result<()> {
        let (reply, answer) = bounded(1);
        self.control(node, Control::Checkpoint(reply))?;
        answer.recv().map_err(|_| self.died(node))?
    }

    /// Every node's status, in node order.
    pub fn status(&self) -> Vec<NodeStatus> {
        (0..self.ctx.nodes)
            .map(|node| self.node_status(node))
            .collect()
    }

    pub(crate) fn node_status(&self, node: NodeId) -> NodeStatus {
        let (reply, answer) = bounded(1);
        if self.control(node, Control::Status(reply)).is_ok()
            && let Ok(status) = answer.recv()
        {
            return status.into();
        }
        NodeStatus {
            node,
            up: false,
            active: Vec::new(),
            in_doubt: Vec::new(),
            coordinating: Vec::new(),
            unacknowledged: Vec::new(),
            keys: 0,
            log_bytes: match self.processes {
                // Its log is the process's, perhaps on another machine.
                Some(_) => 0,
                None => Wal::logged_bytes(&self.node_dir(node)).unwrap_or(0),
            },
            fsyncs: 0,
            armed: None,
            failure: self.ctx.failure(node),
            mixed: Vec::new(),
        }
    }

    /// Every node's locks, as `(node, key locks)`, in node then key order. Down nodes
    /// hold no locks.
    pub fn locks(&self) -> Vec<(NodeId, KeyLocks)> {
        let mut all = Vec::new();
        for node in 0..self.ctx.nodes {
            let (reply, answer) = bounded(1);
            if self.control(node, Control::Locks(reply)).is_ok()
                && let Ok(locks) = answer.recv()
            {
                all.extend(locks.into_iter().map(|l| (node, l.into())));
            }
        }
        all
    }

    /// The committed data of `node`, sorted by key.
    pub fn data(&self, node: NodeId) -> Result<Vec<(String, String)>> {
        let (reply, answer) = bounded(1);
        self.control(node, Control::Data(reply))?;
        answer.recv().map_err(|_| self.died(node))
    }

    /// The records in `node`'s log now, with whether each is forced.
    pub fn log_records(&self, node: NodeId) -> Result<Vec<LogEntry>> {
        self.ctx.net.check_node(node)?;
        if let Some(processes) = &self.processes {
            return Cluster::remote_log(processes, node).map(|(records, _, _)| records);
        }
        let records = Wal::read_records(&self.node_dir(node))?;
        Ok(records
            .into_iter()
            .map(|(_, _, record)| record.into())
            .collect())
    }

    /// Advances the manual clock and lets every node check its timeouts.
    pub fn tick(&self, by: Duration) -> Result<()> {
        if !self.ctx.clock.advance(by) {
            return Err(Error::InvalidInput(
                "this cluster runs on real time; TICK needs the manual clock, which scripts use (start the shell with --manual-clock to use it interactively)"
                    .into(),
            ));
        }
        // One node at a time, in node order, each settling before the next: timeouts
        // that fall due together (a vote timeout, an inquiry) then play out the same
        // way every run.
        for node in 0..self.ctx.nodes {
            let _ = (self.ctx.net).post(node, Mail::Input(crate::node::Input::Tick, 0));
            self.settle();
        }
        Ok(())
    }

    /// The current settings.
    pub fn settings(&self) -> Settings {
        self.ctx.settings.read().clone()
    }

    /// Changes the settings; nodes read them on their next input.
    pub fn set_settings(&self, settings: Settings) {
        self.ctx.net.steps.set_lossy(settings.lossy);
        if let Some(processes) = &self.processes {
            for node in 0..self.ctx.nodes {
                processes.send_settings_to(node, &settings);
            }
        }
        *self.ctx.settings.write() = settings;
        // Wake every node, so a change such as turning deadlock detection back on acts
        // at once rather than at the node's next message.
        for node in 0..self.ctx.nodes {
            let _ = self.ctx.net.post(node, Mail::Control(Control::Wake));
        }
        self.settle();
    }

    /// Installs (or, with `None`, removes) the trace hook.
    pub fn set_trace(&self, hook: Option<TraceHook>) {
        if let Some(processes) = &self.processes {
            processes.set_tracing(hook.is_some());
        }
        self.ctx.net.tracer.set(hook);
    }

    /// Waits until no message is in flight and no node is working: every effect of what
    /// was sent so far has happened. Lock waits and in-doubt transactions do not count:
    /// they wait for something that has not been sent. After 5 s it says on stderr what
    /// it is waiting for ([`Cluster::outstanding`]), once, and goes on waiting.
    pub fn settle(&self) {
        if self.wait_quiet(Some(SETTLE_REPORT)) {
            return;
        }
        let waiting = self.outstanding().join(", ");
        eprintln!("kv2pc: the cluster has not settled after 5 s; waiting for: {waiting}");
        self.wait_quiet(None);
    }

    /// As [`Cluster::settle`], but gives up after `limit`, returning what was still
    /// outstanding then.
    pub fn settle_within(&self, limit: Duration) -> std::result::Result<(), Vec<String>> {
        match self.wait_quiet(Some(limit)) {
            true => Ok(()),
            false => Err(self.outstanding()),
        }
    }

    /// The work in flight now, one line per kind and node (`1 message to node 2`,
    /// `1 fsync on node 1`): what `settle` is waiting for.
    pub fn outstanding(&self) -> Vec<String> {
        self.ctx.net.outstanding()
    }

    /// Waits until no work is in flight, or `limit` passes; returns whether it is quiet.
    fn wait_quiet(&self, limit: Option<Duration>) -> bool {
        let start = Instant::now();
        let mut spins = 0u32;
        // Over processes the local net is looked at again after the nodes answer: a
        // reply a node sent before saying it is quiet arrived before that answer, on
        // the same connection, and counts here from then on (see `remote`).
        let quiet =
            || self.ctx.net.is_quiet() && self.remote_quiet(start) && self.ctx.net.is_quiet();
        while !quiet() {
            if limit.is_some_and(|limit| start.elapsed() >= limit) {
                return false;
            }
            spins += 1;
            if spins < 100 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
        true
    }

    /// A handle that counts a shell session's commands as work in flight, so that
    /// `settle` waits for them; one per session.
    pub fn activity(&self) -> Activity {
        self.ctx.net.activity()
    }

    /// Whether `node` is up.
    pub fn is_up(&self, node: NodeId) -> bool {
        self.ctx.net.is_up(node)
    }

    fn control(&self, node: NodeId, control: Control) -> Result<()> {
        self.ctx.net.check_node(node)?;
        (self.ctx.net)
            .post(node, Mail::Control(control))
            .map_err(|_| self.ctx.net.down_error(node))
    }

    fn died(&self, node: NodeId) -> Error {
        Error::NodeDown {
            node,
            detail: "it crashed while answering".into(),
        }
    }

    /// Waits for `node`'s thread to end (it has crashed or is stopping): what it did
    /// on its way out, such as tracing where it crashed, is done.
    pub fn join_crashed(&self, node: NodeId) {
        if !self.ctx.net.is_up(node) {
            self.join(node);
        }
    }

    fn join(&self, node: NodeId) {
        let handle = self.threads.lock()[node as usize].take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }

    /// Stops every node after flushing its log.
    pub fn close(self) {
        drop(self);
    }

    /// Stops every node after flushing its log; clients waiting on a node are told it is
    /// down. Dropping the cluster does the same.
    pub fn shutdown(&self) {
        for node in 0..self.ctx.nodes {
            let _ = self.ctx.net.post(node, Mail::Control(Control::Shutdown));
        }
        for node in 0..self.ctx.nodes {
            self.join(node);
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Takes the OS lock on the directory, creating it; names the holder if it is taken.
fn lock_dir(dir: &Path) -> Result<File> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let path = dir.join(LOCK);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    if !lock_within(&file, LOCK_PATIENCE) {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        let holder = holder.trim();
        let holder = if holder.is_empty() {
            "another process".to_string()
        } else {
            format!("process {holder}")
        };
        return Err(Error::DataDir {
            path: dir.to_path_buf(),
            detail: format!(
                "it is in use by {holder}; close that kv2pc or choose another directory"
            ),
        });
    }
    file.set_len(0)
        .and_then(|_| write!(file, "{}", std::process::id()))
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    Ok(file)
}

/// How long opening a directory waits for its lock before saying it is in use.
///
/// A process that closes a cluster while another of its threads forks a child shares
/// the lock with that child until the child executes its program (a lock belongs to the
/// open file, and a forked child holds every open file until `exec` closes it): a
/// moment, on a loaded machine some milliseconds. A kv2pc started right then must not be
/// told the directory is in use by a process that has in fact let it go.
const LOCK_PATIENCE: Duration = Duration::from_secs(1);

/// Takes `file`'s exclusive lock, trying again for up to `patience`.
fn lock_within(file: &File, patience: Duration) -> bool {
    let start = std::time::Instant::now();
    loop {
        if file.try_lock().is_ok() {
            return true;
        }
        if start.elapsed() >= patience {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Creates the manifest of a new directory, or checks an existing one.
fn check_manifest(dir: &Path, nodes: u32) -> Result<()> {
    let path = dir.join(MANIFEST);
    let data_dir_error = |detail: String| Error::DataDir {
        path: dir.to_path_buf(),
        detail,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let (format, recorded) = parse_manifest(&text).ok_or_else(|| {
                data_dir_error(format!("its {MANIFEST} file is not a kv2pc manifest"))
            })?;
            if format > FORMAT_VERSION {
                return Err(data_dir_error(format!(
                    "it was written by a newer kv2pc (format {format}; this one reads format {FORMAT_VERSION})"
                )));
            }
            if recorded != nodes {
                return Err(data_dir_error(format!(
                    "it holds a {recorded}-node cluster, not {nodes}; open it with {recorded} nodes \
                     (--nodes {recorded}) or choose another directory"
                )));
            }
            Ok(())
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let stray = std::fs::read_dir(dir)
                .map_err(|e| Error::io(format!("reading {}", dir.display()), e))?
                .filter_map(|entry| entry.ok())
                .any(|entry| entry.file_name() != LOCK && entry.file_name() != MANIFEST_TMP);
            if stray {
                return Err(data_dir_error(format!(
                    "it is not empty and has no kv2pc {MANIFEST}; choose a new or empty directory"
                )));
            }
            write_manifest(dir, nodes)
        }
        Err(error) => Err(Error::io(format!("reading {}", path.display()), error)),
    }
}

fn parse_manifest(text: &str) -> Option<(u32, u32)> {
    let mut lines = text.lines();
    if lines.next()? != "kv2pc data directory" {
        return None;
    }
    let mut format = None;
    let mut nodes = None;
    for line in lines {
        match line.split_once(' ') {
            Some(("format", value)) => format = value.trim().parse().ok(),
            Some(("nodes", value)) => nodes = value.trim().parse().ok(),
            _ => {}
        }
    }
    Some((format?, nodes?))
}

fn write_manifest(dir: &Path, nodes: u32) -> Result<()> {
    let path = dir.join(MANIFEST);
    let temp = dir.join(MANIFEST_TMP);
    let text = format!("kv2pc data directory\nformat {FORMAT_VERSION}\nnodes {nodes}\n");
    let io = |e| Error::io(format!("writing {}", path.display()), e);
    let mut file = File::create(&temp).map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&temp, &path).map_err(io)?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(io)
}
