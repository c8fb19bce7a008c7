//! How the shell reaches its cluster: embedded (the default), on node processes
//! already running (`--connect`), or on node processes it starts (`kv2pc cluster`).

use super::Args;
use crate::exit::Exit;
use clap::Args as ClapArgs;
use kv2pc::process::launch::Launch;
use kv2pc::types::MAX_NODES;
use kv2pc::{Cluster, Config};
use signal_hook::iterator::Signals;
use signal_hook::low_level::signal_name;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// The options of `kv2pc cluster`.
#[derive(ClapArgs, Debug)]
pub struct ClusterArgs {
    /// The number of node processes.
    #[arg(long, value_name = "N", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_NODES)))]
    nodes: u32,
    /// Where the nodes keep their data: DIR/process0, DIR/process1, ... and each
    /// one's log of events in DIR/process0.log, ... [default: kv2pc-cluster/ in the
    /// user's data directory].
    #[arg(long, value_name = "DIR", conflicts_with = "temp")]
    data_dir: Option<PathBuf>,
    /// Use a throwaway data directory, removed at exit.
    #[arg(long)]
    temp: bool,
    /// The first node's port on loopback (the others follow it); any free ports if not
    /// given.
    #[arg(long, value_name = "PORT")]
    port: Option<u16>,
    /// Run this script file instead of the interactive shell.
    #[arg(value_name = "FILE")]
    script: Option<PathBuf>,
    /// Run these commands (separated by ;) instead of the interactive shell.
    #[arg(
        short = 'c',
        long = "command",
        value_name = "COMMANDS",
        conflicts_with = "script"
    )]
    commands: Option<String>,
    /// Print each command, as "> COMMAND", before its output.
    #[arg(long, conflicts_with = "json")]
    echo: bool,
    /// Print one JSON object per command result.
    #[arg(long)]
    json: bool,
    /// Stop the script at the first command that fails.
    #[arg(long)]
    bail: bool,
    /// Print no banner when the interactive shell starts.
    #[arg(short, long)]
    quiet: bool,
    /// Do not run the init file.
    #[arg(long)]
    no_init: bool,
    /// How coordinators commit across two or more participants: classic or parallel.
    #[arg(long, value_name = "MODE", value_parser = ["classic", "parallel"])]
    commit: Option<String>,
}

impl ClusterArgs {
    /// The shell's options that run it on launched node processes.
    pub fn shell_args(&self) -> Args {
        use clap::Parser;
        let mut args = Args::parse_from(["kv2pc"]);
        args.nodes = self.nodes;
        args.data_dir = Some(self.data_dir.clone().unwrap_or_else(default_dir));
        args.temp = self.temp;
        if self.temp {
            args.data_dir = None;
        }
        args.script = self.script.clone();
        args.commands = self.commands.clone();
        args.echo = self.echo;
        args.json = self.json;
        args.bail = self.bail;
        args.quiet = self.quiet;
        args.no_init = self.no_init;
        args.commit = self.commit.clone();
        args.launch = Some(self.port.unwrap_or(0));
        args
    }
}

fn default_dir() -> PathBuf {
    super::default_data_dir().with_file_name("kv2pc-cluster")
}

/// The node processes this program started, if it did: stopped when the shell ends
/// ([`stop_launched`]), whoever still holds the cluster then.
static LAUNCHED: OnceLock<Arc<Launch>> = OnceLock::new();

/// Stops the node processes this program started (SIGTERM, then SIGKILL for one that
/// does not exit); nothing if it started none.
pub fn stop_launched() {
    if let Some(launch) = LAUNCHED.get() {
        launch.stop();
    }
}

/// On a terminating signal, stops the node processes and ends the program, as a
/// temporary directory's own handler does (which stops them too).
fn stop_on_signal(interactive: bool) {
    let Ok(mut signals) = Signals::new(super::temp::terminating(interactive)) else {
        return;
    };
    let _ = std::thread::Builder::new()
        .name("stop-nodes".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                stop_launched();
                let name = signal_name(signal).unwrap_or("a signal");
                eprintln!("kv2pc: stopped by {name}; its node processes are stopped");
                std::process::exit(128 + signal);
            }
        });
}

/// Opens the cluster the options ask for, saying on standard error why not.
pub fn open(args: &Args, dir: &Path, config: Config, interactive: bool) -> Result<Cluster, Exit> {
    let log: kv2pc::wire::tcp::Log = Arc::new(|line: String| eprintln!("kv2pc: {line}"));
    if let Some(addrs) = &args.connect {
        return Cluster::connect(addrs.clone(), config.settings, None, PathBuf::new(), log)
            .map_err(|error| {
                eprintln!("kv2pc: cannot connect: {error}");
                Exit::Failed
            });
    }
    if let Some(port) = args.launch {
        let exe = std::env::current_exe().map_err(|error| {
            eprintln!("kv2pc: cannot find this program to start its nodes: {error}");
            Exit::Failed
        })?;
        let port = (port != 0).then_some(port);
        let launch = Launch::start(exe, config.nodes, dir, port).map_err(|error| {
            eprintln!("kv2pc: cannot start the node processes: {error}");
            Exit::Failed
        })?;
        let addrs = launch.addrs().to_vec();
        let launch = Arc::new(launch);
        let _ = LAUNCHED.set(launch.clone());
        if !args.temp {
            stop_on_signal(interactive);
        }
        let launch: Arc<dyn kv2pc::cluster::Launcher> = launch;
        return Cluster::connect(addrs, config.settings, Some(launch), dir.to_path_buf(), log)
            .map_err(|error| {
                eprintln!(
                    "kv2pc: the node processes did not answer: {error}; their logs are {}",
                    dir.join("process*.log").display()
                );
                Exit::Failed
            });
    }
    Cluster::open(dir, config).map_err(|error| {
        eprintln!("kv2pc: {error}");
        Exit::DataDir
    })
}
