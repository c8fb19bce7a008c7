//! A cluster handle over node processes: the shell's `--connect` and `kv2pc cluster`.
//!
//! [`Cluster::connect`] makes a handle whose network has no node of its own: every
//! node is in another process (`process`, `kv2pc node`), reached over TCP as a client
//! (`wire::tcp::Connector`). It plugs into the same seam as a node process does
//! (`net::Remote`), one level up: where a node process sends protocol messages to its
//! peers, this handle carries the mail a shell sends, so that the client layer and
//! the cluster's own methods run unchanged.
//!
//! - **Client requests** go to their node as frames; the replies come back into the
//!   request's mailbox, so `Client` and every session work as embedded.
//! - **Control requests** (`STATUS`, `SHOW LOCKS`, `KEYS`, `CHECKPOINT`, `CRASH ... AT`,
//!   `RESOLVE`) become [`Admin`] requests, answered by the node process.
//! - **`SHOW LOG`** asks the node for its log, since the log may be on another machine.
//! - **`CRASH node N`** kills the node's process: with SIGKILL from the launcher that
//!   started it (`kv2pc cluster`), or, when the shell did not start it (`--connect`),
//!   by asking the process to kill itself the same way. **`RESTART node N`** needs the
//!   launcher; a shell that only connected says how to start the process again.
//! - **The trace** comes from the nodes over their connections.
//! - **Settling** (what makes the shell's output wait until the cluster is quiet)
//!   waits, a moment at most, for every request sent to have had a reply (a request
//!   waiting for a lock has had one: `Waiting`), and asks every node that is up
//!   whether it is quiet, twice, a moment apart: see [`Processes::quiet`].
//!
//! # Limits
//!
//! - Settling is weaker than embedded. A node answers "quiet" when it has no work of its
//!   own and nothing queued to write; a message already in a socket, between two nodes,
//!   is seen by neither. Asking twice, [`QUIET_GAP`] apart, covers what loopback carries
//!   in that time; a slower network needs a longer gap, and so the shell's output over
//!   processes is not promised to be byte-identical from run to run, as embedded output
//!   is.
//! - Step mode, `TICK` (the manual clock) and fault injection on links are the embedded
//!   cluster's: over processes they are refused with a reason.

use super::admin::{Admin, AdminReply};
use super::{CheckpointInfo, Cluster, LogEntry, RecoveryReport};
use crate::clock::Clock;
use crate::config::{Config, Settings};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::message::Message;
use crate::net::{Control, Mail, Remote, Stamp};
use crate::types::NodeId;
use crate::wire::tcp::{Connector, Log};
use parking_lot::Mutex;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How far apart the two rounds of "are you quiet?" are.
pub const QUIET_GAP: Duration = Duration::from_millis(2);

/// How long a crash or restart waits for the process to go or come.
const PROCESS_PATIENCE: Duration = Duration::from_secs(10);

/// What starts and kills node processes: `kv2pc cluster`'s children.
pub trait Launcher: Send + Sync {
    /// Kills node `node`'s process with SIGKILL and waits for it to die.
    fn kill(&self, node: NodeId) -> Result<()>;
    /// Starts node `node`'s process again (it recovers from its log).
    fn start(&self, node: NodeId) -> Result<()>;
    /// Whether this launcher started node `node`'s process and it runs.
    fn is_running(&self, node: NodeId) -> bool;
    /// Where node `node`'s process writes its log of events, to point the user at.
    fn log_path(&self, node: NodeId) -> Option<PathBuf>;
    /// The process id of node `node`'s process while it runs, for `kill -9`.
    fn pid(&self, node: NodeId) -> Option<u32>;
}

/// The node processes a handle reaches: the connections, and the launcher if this
/// handle started them. The handle's network carries its mail through this (see the
/// module doc).
pub(crate) struct Processes {
    connector: Connector,
    launcher: Option<Arc<dyn Launcher>>,
    /// Nodes the handle killed (CRASH), so that a request to one says so.
    killed: Mutex<Vec<bool>>,
}

/// How long settling waits for a node to say whether it is quiet: one that does not
/// answer (a process stopped with SIGSTOP, a machine gone) will send nothing either.
const QUIET_PATIENCE: Duration = Duration::from_millis(500);

/// How long settling waits for replies to requests sent (see `remote_quiet`).
const REPLY_PATIENCE: Duration = Duration::from_secs(1);

/// How long a node process whose node crashed is given to exit (it checks every
/// 10 ms).
const DYING_PATIENCE: Duration = Duration::from_secs(2);

impl Cluster {
    /// A handle on the node processes at `addrs`, in node order (see the module doc).
    /// `launcher` is what started them, if this process did; `dir` is where their data
    /// is, if it is on this machine (only shown). Fails if no node answers.
    pub fn connect(
        addrs: Vec<SocketAddr>,
        settings: Settings,
        launcher: Option<Arc<dyn Launcher>>,
        dir: PathBuf,
        log: Log,
    ) -> Result<Cluster> {
        let nodes = u32::try_from(addrs.len()).unwrap_or(u32::MAX);
        if nodes == 0 || nodes > crate::types::MAX_NODES {
            return Err(Error::InvalidInput(format!(
                "--connect lists {nodes} addresses: list every node's, in node order (1 to {})",
                crate::types::MAX_NODES
            )));
        }
        let config = Config {
            nodes,
            manual_clock: false,
            settings,
        };
        let ctx = Arc::new(Context::new(nodes, dir, Clock::real(), config.settings));
        let processes = Arc::new(Processes {
            connector: Connector::new(&ctx, addrs, log),
            launcher,
            killed: Mutex::new(vec![false; nodes as usize]),
        });
        ctx.net.set_remote(None, processes.clone())?;
        let mut cluster = Cluster {
            ctx,
            clients: Arc::default(),
            threads: Mutex::new((0..nodes).map(|_| None).collect()),
            reports: Vec::new(),
            processes: Some(processes.clone()),
            _lock: None,
        };
        let mut reached = Vec::new();
        // Processes just launched take a moment to listen and recover: wait for them.
        let patience = match processes.launcher {
            Some(_) => PROCESS_PATIENCE,
            None => Duration::ZERO,
        };
        for node in 0..nodes {
            let deadline = Instant::now() + patience;
            loop {
                processes.connector.redial_now(node);
                if let Ok(report) = processes.hello(node, &cluster) {
                    reached.push(node);
                    cluster.reports.push(report);
                    break;
                }
                if Instant::now() >= deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if reached.is_empty() {
            let why = processes.connector.down_detail(0).unwrap_or_default();
            return Err(Error::NodeDown {
                node: 0,
                detail: format!("no node answered; node 0: {why}"),
            });
        }
        let settings = cluster.settings();
        processes.send_settings(&settings);
        Ok(cluster)
    }

    /// Whether this handle reaches its nodes in other processes.
    pub fn is_remote(&self) -> bool {
        self.processes.is_some()
    }

    /// Why node `node`, in another process, cannot be reached, if it cannot.
    pub fn unreachable(&self, node: NodeId) -> Option<String> {
        let processes = self.processes.as_ref()?;
        if !self.ctx.net.is_up(node) {
            return Some(processes.why_down(node));
        }
        // The process answers and its node does not: a crash point fired, and the
        // process is about to exit (it looks every 10 ms).
        (processes.admin(node, Admin::Status).is_err()).then(|| {
            format!(
                "its node crashed inside its process at {}, which is exiting",
                processes.address(node)
            )
        })
    }

    /// The process id of node `node`'s process, if this handle started it and it runs.
    pub fn pid(&self, node: NodeId) -> Option<u32> {
        self.processes.as_ref()?.launcher.as_ref()?.pid(node)
    }

    /// Where `node`'s process is, for the user: its address.
    pub fn address(&self, node: NodeId) -> Option<SocketAddr> {
        self.processes.as_ref()?.connector.addr(node)
    }

    /// `SHOW LOG` of a node in another process: its records, how many are not yet
    /// durable, and its checkpoint.
    pub(super) fn remote_log(
        processes: &Processes,
        node: NodeId,
    ) -> Result<(Vec<LogEntry>, usize, Option<CheckpointInfo>)> {
        match processes.admin(node, Admin::Log)? {
            AdminReply::Log {
                records,
                unsynced,
                checkpoint,
            } => Ok((records, unsynced, checkpoint)),
            other => Err(unexpected(node, other)),
        }
    }

    /// `RESTART` of a node in another process.
    pub(super) fn restart_process(
        &self,
        processes: &Processes,
        node: NodeId,
    ) -> Result<RecoveryReport> {
        let Some(launcher) = &processes.launcher else {
            return Err(Error::InvalidInput(format!(
                "node {node} runs in a process this shell did not start: start it again with \
                 its `kv2pc node` command (the shell reconnects to it by itself)"
            )));
        };
        launcher.start(node)?;
        processes.killed.lock()[node as usize] = false;
        let deadline = Instant::now() + PROCESS_PATIENCE;
        loop {
            processes.connector.redial_now(node);
            if let Ok(report) = processes.hello(node, self) {
                processes.send_settings_to(node, &self.settings());
                return Ok(report);
            }
            if Instant::now() >= deadline || !launcher.is_running(node) {
                let log = (launcher.log_path(node))
                    .map(|path| format!("; its log is {}", path.display()))
                    .unwrap_or_default();
                return Err(Error::NodeDown {
                    node,
                    detail: format!("its process started but does not answer{log}"),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Settling over processes, begun at `start`: every node says it is quiet (see
    /// [`Processes::quiet`]), and every request sent has had a reply, or
    /// [`REPLY_PATIENCE`] has passed (a request may rightly wait longer: a COMMIT for a
    /// vote that does not come, until the vote timeout).
    pub(super) fn remote_quiet(&self, start: Instant) -> bool {
        self.processes.as_ref().is_none_or(|p| {
            (p.connector.unanswered() == 0 || start.elapsed() >= REPLY_PATIENCE)
                && p.quiet(self.ctx.nodes)
        })
    }
}

impl Processes {
    /// Waits, a moment at most, for a node process whose node has crashed (a crash
    /// point fired: it answers, but its node does not) to be gone, as it will be at
    /// once: a `RESTART` typed right after the crash must not find it still up.
    pub(super) fn await_death(&self, node: NodeId) {
        let deadline = Instant::now() + DYING_PATIENCE;
        while Instant::now() < deadline && self.connector.is_up(node) {
            if self.admin(node, Admin::Status).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
            self.connector.redial_now(node);
        }
    }

    fn admin(&self, node: NodeId, admin: Admin) -> Result<AdminReply> {
        self.admin_within(node, admin, crate::wire::tcp::ADMIN_PATIENCE)
    }

    fn admin_within(&self, node: NodeId, admin: Admin, patience: Duration) -> Result<AdminReply> {
        let answer = self
            .connector
            .admin_within(node, admin.encode(), patience)?;
        match AdminReply::decode(&answer) {
            AdminReply::Failed(why) => Err(Error::InvalidInput(why)),
            reply => Ok(reply),
        }
    }

    /// Asks `node` what its recovery found, and lets the handle's clients hear its
    /// clock (as an embedded handle hears each node's clock as it starts).
    fn hello(&self, node: NodeId, cluster: &Cluster) -> Result<RecoveryReport> {
        match self.admin(node, Admin::Hello)? {
            AdminReply::Hello { report, clock } => {
                cluster.clients.observe(clock);
                Ok(report)
            }
            other => Err(unexpected(node, other)),
        }
    }

    fn send_settings(&self, settings: &Settings) {
        for node in 0..self.killed.lock().len() as NodeId {
            self.send_settings_to(node, settings);
        }
    }

    pub(super) fn send_settings_to(&self, node: NodeId, settings: &Settings) {
        if self.connector.is_up(node) {
            let _ = self.admin(node, Admin::Settings(settings.clone()));
        }
    }

    pub(super) fn set_tracing(&self, on: bool) {
        let greeting = on.then(|| Admin::Trace(true).encode());
        self.connector.greet(Admin::Trace(on).encode(), greeting);
    }

    /// Whether every node that is up is quiet, asked twice [`QUIET_GAP`] apart (see the
    /// module doc's limits). A trace event a node made before it answered arrives
    /// before its answer, on the same connection.
    fn quiet(&self, nodes: u32) -> bool {
        let round = || {
            (0..nodes)
                .filter(|node| self.connector.is_connected(*node))
                .all(
                    |node| match self.admin_within(node, Admin::Quiet, QUIET_PATIENCE) {
                        Ok(reply) => matches!(reply, AdminReply::Quiet(true)),
                        // The process answers, its node cannot (a crash point fired): not
                        // quiet until the process is gone, so that what it said last, on
                        // its way out (where it crashed), arrives first.
                        Err(Error::InvalidInput(_)) => !self.connector.is_connected(node),
                        // It went away, or does not answer: nothing more will come from it.
                        Err(_) => true,
                    },
                )
        };
        if !round() {
            return false;
        }
        std::thread::sleep(QUIET_GAP);
        round()
    }

    /// Kills `node`'s process (see the module doc) and waits until its connection is
    /// gone.
    fn crash(&self, node: NodeId) -> std::result::Result<(), String> {
        match &self.launcher {
            Some(launcher) if launcher.is_running(node) => {
                launcher.kill(node).map_err(|error| error.to_string())?;
            }
            _ => {
                // The process kills itself: the answer never comes.
                let _ = self.connector.admin(node, Admin::Crash.encode());
            }
        }
        self.killed.lock()[node as usize] = true;
        let deadline = Instant::now() + PROCESS_PATIENCE;
        while self.connector.is_connected(node) {
            if Instant::now() >= deadline {
                return Err(format!("its process at {} did not die", self.address(node)));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    fn address(&self, node: NodeId) -> String {
        (self.connector.addr(node)).map_or_else(|| "?".into(), |addr| addr.to_string())
    }

    fn why_down(&self, node: NodeId) -> String {
        if self
            .killed
            .lock()
            .get(node as usize)
            .copied()
            .unwrap_or(false)
        {
            let restart = match self.launcher {
                Some(_) => format!("RESTART node {node} starts it again"),
                None => "start it again with its `kv2pc node` command".into(),
            };
            return format!(
                "its process at {} was killed; {restart}",
                self.address(node)
            );
        }
        (self.connector.down_detail(node))
            .unwrap_or_else(|| format!("its process at {} does not answer", self.address(node)))
    }

    /// Answers a control request with what node `node`'s process says.
    fn control(&self, node: NodeId, control: Control) -> std::result::Result<(), Control> {
        let admin = |admin| self.admin(node, admin);
        match control {
            Control::Crash => {
                let _ = self.crash(node);
            }
            Control::Arm(point) => {
                if admin(Admin::Arm(point)).is_err() {
                    return Err(Control::Arm(point));
                }
            }
            Control::Checkpoint(reply) => {
                let _ = reply.send(admin(Admin::Checkpoint).map(|_| ()));
            }
            Control::Resolve(tid, commit, reply) => {
                let _ = reply.send(admin(Admin::Resolve(tid, commit)).map(|_| ()));
            }
            Control::Status(reply) => match admin(Admin::Status) {
                Ok(AdminReply::Status(status)) => {
                    let _ = reply.send(status);
                }
                _ => return Err(Control::Status(reply)),
            },
            Control::Locks(reply) => match admin(Admin::Locks) {
                Ok(AdminReply::Locks(locks)) => {
                    let _ = reply.send(locks);
                }
                _ => return Err(Control::Locks(reply)),
            },
            Control::Data(reply) => match admin(Admin::Data) {
                Ok(AdminReply::Data(data)) => {
                    let _ = reply.send(data);
                }
                _ => return Err(Control::Data(reply)),
            },
            // The settings go to every node as they change (`Cluster::set_settings`),
            // and a shell does not stop the nodes it connected to: it lets them be.
            Control::Wake | Control::Shutdown => {}
            other => return Err(other),
        }
        Ok(())
    }
}

impl Remote for Processes {
    fn send(&self, _to: NodeId, _message: Message, _stamp: Stamp) -> bool {
        // A shell has no node: it sends no protocol messages.
        false
    }

    fn post(&self, to: NodeId, mail: Mail) -> std::result::Result<(), Mail> {
        match mail {
            Mail::Client(request, reply) => (self.connector.request(to, request, reply))
                .map_err(|(request, reply, _)| Mail::Client(request, reply)),
            Mail::Control(control) => self.control(to, control).map_err(Mail::Control),
            other => Err(other),
        }
    }

    fn is_up(&self, to: NodeId) -> bool {
        self.connector.is_up(to)
    }

    fn down_detail(&self, to: NodeId) -> Option<String> {
        Some(self.why_down(to))
    }
}

fn unexpected(node: NodeId, reply: AdminReply) -> Error {
    Error::InvalidInput(format!("node {node} gave an unexpected answer: {reply:?}"))
}
