//! `kv2pc cluster`: the node processes of a cluster on loopback, started, killed and
//! started again by the shell that runs on them.
//!
//! A [`Launch`] starts `kv2pc node` once per node, each on a port of loopback and with
//! a data directory of its own under the cluster's (`DIR/process0`, `DIR/process1`,
//! ...), and writes each one's events to `DIR/processN.log`, so that they do not mix
//! into the shell's output. It is the shell's [`Launcher`]: `CRASH node N` kills node
//! N's process with SIGKILL, `RESTART node N` starts it again with the same command
//! line, and it recovers from its log as any node does.
//!
//! [`Launch::stop`], or dropping the launch, stops every process it started with SIGTERM
//! (each flushes its log and exits), waiting a moment for each, then kills what is left.
//! `kv2pc cluster` calls it when the shell ends and on a terminating signal, not only
//! at the drop: a thread of the shell may still hold the cluster when it returns.
//!
//! # Limits
//!
//! The ports are chosen free a moment before the processes bind them; another program
//! taking one meanwhile makes that node fail to start, with its log saying so. A shell
//! that is itself killed leaves its node processes running (they are not its process
//! group's to kill): stop them with `kill`, or start `kv2pc cluster` again on the same
//! directory after they are gone.

use crate::cluster::Launcher;
use crate::error::{Error, Result};
use crate::types::NodeId;
use parking_lot::Mutex;
use std::fs::OpenOptions;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a process stopped with SIGTERM is given to exit before it is killed.
const STOP_PATIENCE: Duration = Duration::from_secs(5);

/// Node processes started by this process. See the module doc.
pub struct Launch {
    exe: PathBuf,
    dir: PathBuf,
    addrs: Vec<SocketAddr>,
    children: Mutex<Vec<Option<Child>>>,
}

impl Launch {
    /// Starts `nodes` node processes of the program `exe` (this kv2pc) on loopback, on
    /// ports from `port` up, or on free ports if `port` is `None`, with their data under
    /// `dir`.
    pub fn start(exe: PathBuf, nodes: u32, dir: &Path, port: Option<u16>) -> Result<Launch> {
        std::fs::create_dir_all(dir)
            .map_err(|error| Error::io(format!("creating {}", dir.display()), error))?;
        let addrs = match port {
            Some(port) => (0..nodes)
                .map(|node| {
                    let port = u16::try_from(u32::from(port) + node).map_err(|_| {
                        Error::InvalidInput(format!(
                            "--port {port} leaves no room for {nodes} nodes below 65536"
                        ))
                    })?;
                    Ok(SocketAddr::from(([127, 0, 0, 1], port)))
                })
                .collect::<Result<Vec<_>>>()?,
            None => free_ports(nodes)?,
        };
        let launch = Launch {
            exe,
            dir: dir.to_path_buf(),
            addrs,
            children: Mutex::new((0..nodes).map(|_| None).collect()),
        };
        for node in 0..nodes {
            launch.start(node)?;
        }
        Ok(launch)
    }

    /// Every node's address, in node order.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The command line that runs node `node`, as a user would type it.
    pub fn command_line(&self, node: NodeId) -> String {
        let args: Vec<String> = self.args(node);
        format!("kv2pc {}", args.join(" "))
    }

    fn args(&self, node: NodeId) -> Vec<String> {
        let peers: Vec<String> = self.addrs.iter().map(ToString::to_string).collect();
        vec![
            "node".into(),
            "--id".into(),
            node.to_string(),
            "--nodes".into(),
            self.addrs.len().to_string(),
            "--data-dir".into(),
            self.dir
                .join(format!("process{node}"))
                .display()
                .to_string(),
            "--listen".into(),
            self.addrs[node as usize].to_string(),
            "--peers".into(),
            peers.join(","),
        ]
    }

    fn log_file(&self, node: NodeId) -> PathBuf {
        self.dir.join(format!("process{node}.log"))
    }
}

impl Launcher for Launch {
    fn kill(&self, node: NodeId) -> Result<()> {
        let mut children = self.children.lock();
        let Some(Some(child)) = children.get_mut(node as usize) else {
            return Ok(());
        };
        // SIGKILL, as `kill -9` sends it.
        child
            .kill()
            .and_then(|()| child.wait().map(|_| ()))
            .map_err(|error| Error::io(format!("killing node {node}'s process"), error))
    }

    fn start(&self, node: NodeId) -> Result<()> {
        let mut children = self.children.lock();
        let Some(slot) = children.get_mut(node as usize) else {
            return Err(Error::InvalidInput(format!("there is no node {node}")));
        };
        if let Some(child) = slot
            && matches!(child.try_wait(), Ok(None))
        {
            return Err(Error::InvalidInput(format!(
                "node {node}'s process is still running (pid {})",
                child.id()
            )));
        }
        let path = self.log_file(node);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|error| Error::io(format!("opening {}", path.display()), error))?;
        let child = Command::new(&self.exe)
            .args(self.args(node))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|error| {
                Error::io(
                    format!("starting node {node}'s process ({})", self.exe.display()),
                    error,
                )
            })?;
        *slot = Some(child);
        Ok(())
    }

    fn is_running(&self, node: NodeId) -> bool {
        let mut children = self.children.lock();
        match children.get_mut(node as usize) {
            Some(Some(child)) => matches!(child.try_wait(), Ok(None)),
            _ => false,
        }
    }

    fn log_path(&self, node: NodeId) -> Option<PathBuf> {
        Some(self.log_file(node))
    }

    fn pid(&self, node: NodeId) -> Option<u32> {
        let mut children = self.children.lock();
        let child = children.get_mut(node as usize)?.as_mut()?;
        matches!(child.try_wait(), Ok(None)).then(|| child.id())
    }
}

impl Launch {
    /// Stops every process still running with SIGTERM (each flushes its log and exits),
    /// waiting a moment for each, then kills what is left; what is started afterwards
    /// is stopped at the next call, or when the launch is dropped.
    pub fn stop(&self) {
        let mut children = self.children.lock();
        for child in children.iter_mut().flatten() {
            if let Ok(pid) = i32::try_from(child.id()) {
                let pid = nix::unistd::Pid::from_raw(pid);
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            }
        }
        let deadline = Instant::now() + STOP_PATIENCE;
        for child in children.iter_mut().flatten() {
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
        for slot in children.iter_mut() {
            *slot = None;
        }
    }
}

impl Drop for Launch {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `count` ports on loopback that were free a moment ago.
fn free_ports(count: u32) -> Result<Vec<SocketAddr>> {
    let listeners = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|error| Error::io("choosing ports on loopback", error))?;
    listeners
        .iter()
        .map(|listener| listener.local_addr())
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|error| Error::io("choosing ports on loopback", error))
}
