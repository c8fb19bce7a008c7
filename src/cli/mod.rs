//! The command line: what `kv2pc` was asked to do, and the exit status that says how it
//! went.
//!
//! Three ways in, one shell: the interactive prompt (`repl`), a script (a file, a pipe
//! on standard input, or `-c`), and `kv2pc check` on recorded transcripts (and `kv2pc
//! lesson`, which plays a recorded lesson step by step, `lesson`). The first two
//! open a cluster on a data directory and hand each line to `Shell::execute`; what the
//! shell printed goes through one `Printer` (`printer.rs`) (text or JSON, and the transcript
//! being recorded).
//!
//! Scripts run on the manual clock, so that a timeout fires only at `TICK` and a script
//! prints the same every run; the interactive shell runs on real time (unless
//! `--manual-clock`). At the prompt a command's error is part of its output; a script
//! writes its errors to standard error as `FILE:LINE: error: ...` (see `script`), beside
//! what concerns the program itself (bad usage, the data directory, recovery warnings).
//!
//! Exit statuses are returned as an `Exit` value rather than by `process::exit`, so that
//! everything is dropped (the cluster's threads stopped, a `--temp` directory removed)
//! before the process ends. A `--temp` directory is removed on SIGTERM and SIGHUP too, and
//! on SIGINT to a script (`temp`); the interactive shell takes Ctrl-C to cancel, never
//! to end (`repl`).

mod bench;
mod check;
mod launch;
mod lesson;
mod node;
mod script;
mod temp;
mod workload;

use crate::exit::Exit;
use crate::printer::{Printer, Recorder, Style};
use crate::repl;
use clap::{CommandFactory, Parser, Subcommand};
use kv2pc::shell::Shell;
use kv2pc::types::MAX_NODES;
use kv2pc::{Cluster, CommitMode, Config};
use std::io::{BufRead, IsTerminal};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const EXIT_STATUS: &str = "\
Exit status:
  0  success
  1  a command failed (a script runs on after it unless --bail), a script ended with a
     command still waiting, or a transcript differs
  2  bad usage: an unknown option, an unreadable script or transcript file
  3  the data directory cannot be used: another node count, in use by another process,
     corrupt, or not a kv2pc directory
  128+N  ended by signal N: SIGINT (130, scripts only: at the prompt Ctrl-C cancels),
     SIGTERM (143), SIGHUP (129); with --temp the directory is removed first";

/// kv2pc: a transactional key-value store whose nodes commit with two-phase commit.
///
/// Without FILE or -c, and with a terminal on standard input, kv2pc opens an interactive
/// shell on a cluster in its data directory (type HELP there). With FILE, -c, or a pipe
/// on standard input it runs a script: no prompt, no colour, one command line per line,
/// on the manual clock (timeouts happen only at TICK).
#[derive(Parser, Debug)]
#[command(name = "kv2pc", version, after_help = EXIT_STATUS)]
pub struct Args {
    /// What to do instead of running the shell.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Run this script file instead of the interactive shell.
    #[arg(value_name = "FILE")]
    pub script: Option<PathBuf>,
    /// Run these commands (separated by ;) instead of the interactive shell.
    #[arg(
        short = 'c',
        long = "command",
        value_name = "COMMANDS",
        conflicts_with = "script"
    )]
    pub commands: Option<String>,
    /// Print each command, as "> COMMAND", before its output.
    #[arg(long, conflicts_with = "json")]
    pub echo: bool,
    /// The number of nodes; a data directory keeps the count it was created with.
    #[arg(long, value_name = "N", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_NODES)))]
    pub nodes: u32,
    /// The data directory [default: kv2pc/ in the user's data directory].
    #[arg(long, value_name = "DIR", conflicts_with = "temp")]
    pub data_dir: Option<PathBuf>,
    /// Use a throwaway data directory, removed at exit (also on SIGINT, SIGTERM, SIGHUP).
    #[arg(long)]
    pub temp: bool,
    /// Print one JSON object per command result (see the README for the fields).
    #[arg(long)]
    pub json: bool,
    /// Stop the script at the first command that fails.
    #[arg(long)]
    pub bail: bool,
    /// Never colour the output (NO_COLOR=1 does the same).
    #[arg(long, global = true)]
    pub no_color: bool,
    /// Write the session to FILE as a transcript that `kv2pc check` can replay. The
    /// interactive shell then runs on the manual clock (timeouts fire at TICK), so that
    /// the recording replays the same, unless --real-time.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// With --record at the prompt: stay on the real clock. A timeout in the recording
    /// then fired when time passed, which a replay cannot repeat; `kv2pc check` says so.
    #[arg(long, requires = "record", conflicts_with = "manual_clock")]
    pub real_time: bool,
    /// Run the interactive shell on the manual clock too, advanced only by TICK.
    #[arg(long)]
    pub manual_clock: bool,
    /// Print no banner when the interactive shell starts.
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not run the init file, kv2pc/init.kv in the user's configuration directory
    /// (~/.config/kv2pc/init.kv on Linux), whose lines the interactive shell otherwise
    /// runs before its first prompt.
    #[arg(long)]
    pub no_init: bool,
    /// How coordinators commit across two or more participants: classic (the default)
    /// or parallel, as `SET commit` takes it.
    #[arg(long, value_name = "MODE", value_parser = ["classic", "parallel"])]
    pub commit: Option<String>,
    /// Run the shell on node processes already running (`kv2pc node`) instead of an
    /// embedded cluster: every node's address, in node order (ADDR,ADDR,...).
    #[arg(long, value_name = "ADDRS", value_delimiter = ',',
          conflicts_with_all = ["data_dir", "temp", "manual_clock", "record"])]
    pub connect: Option<Vec<SocketAddr>>,
    /// Set by `kv2pc cluster`: start the node processes, on ports from this one up (0:
    /// any free ports), and run the shell on them.
    #[arg(skip)]
    pub launch: Option<u16>,
}

impl Args {
    /// Whether an option that only a shell session uses was given.
    fn has_session_options(&self) -> bool {
        self.script.is_some()
            || self.commands.is_some()
            || self.echo
            || self.json
            || self.bail
            || self.record.is_some()
            || self.temp
            || self.data_dir.is_some()
            || self.manual_clock
            || self.real_time
            || self.quiet
            || self.no_init
            || self.commit.is_some()
            || self.connect.is_some()
    }
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Replay recorded transcripts on fresh clusters; show a diff and exit 1 on any
    /// difference.
    Check {
        /// The transcripts.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Measure throughput and latency of each workload, as ratios to this machine's
    /// fsync and channel round-trip latency measured in the same run (see the README).
    Bench(bench::BenchArgs),
    /// List the lessons (recorded sessions that teach two-phase commit), or play one
    /// step by step: Enter runs each next command, or type your own instead.
    Lesson {
        /// The lesson, as the list names it (4, 5b); without it, the list.
        #[arg(value_name = "NAME")]
        name: Option<String>,
    },
    /// Run one node of a cluster as its own process, talking to the others over TCP;
    /// SIGTERM stops it cleanly.
    Node(node::NodeArgs),
    /// Start every node of a cluster as its own process on loopback, and run the shell
    /// on them: CRASH kills a node's process (SIGKILL), RESTART starts it again.
    Cluster(launch::ClusterArgs),
    /// A test tool: a concurrent transfer workload that prints each acknowledged commit
    /// (see `src/cli/workload.rs`).
    #[command(hide = true)]
    Workload(workload::WorkloadArgs),
}

/// Where the commands come from.
enum Input {
    /// The interactive prompt.
    Interactive,
    /// A script's lines, with the folder its `SOURCE` paths are relative to and the
    /// name its errors give it.
    Script(
        Box<dyn Iterator<Item = std::io::Result<String>>>,
        PathBuf,
        String,
    ),
}

/// Runs kv2pc as the command line asks.
pub fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2));
        }
    };
    if args.command.is_some() && args.has_session_options() {
        let message = "the options of a shell session (FILE, -c, --echo, --json, --bail, \
                       --record, --real-time, --temp, --data-dir, --manual-clock, --quiet, --no-init, --commit) do not apply to a subcommand";
        Args::command()
            .error(clap::error::ErrorKind::ArgumentConflict, message)
            .exit();
    }
    // A dumb terminal shows escape codes as text.
    let dumb = std::env::var("TERM").is_ok_and(|term| term == "dumb");
    if args.no_color || dumb {
        colored::control::set_override(false);
    }
    let color = !args.no_color && !dumb && colored::control::SHOULD_COLORIZE.should_colorize();
    let exit = match &args.command {
        Some(Command::Check { files }) => check::run(files, color),
        Some(Command::Bench(bench_args)) => bench::run(bench_args),
        Some(Command::Workload(workload_args)) => workload::run(workload_args),
        Some(Command::Lesson { name }) => lesson::run(name.as_deref(), color),
        Some(Command::Node(node_args)) => node::run(node_args),
        Some(Command::Cluster(cluster_args)) => run_shell(&cluster_args.shell_args(), color),
        None => run_shell(&args, color),
    };
    exit.into()
}

/// Opens the cluster and runs the interactive shell or the script.
fn run_shell(args: &Args, color: bool) -> Exit {
    let input = match input(args) {
        Ok(input) => input,
        Err(exit) => return exit,
    };
    let interactive = matches!(input, Input::Interactive);
    let (dir, temp) = match args.connect {
        Some(_) => (PathBuf::new(), None),
        None => match data_dir(args, interactive) {
            Ok(dir) => dir,
            Err(exit) => return exit,
        },
    };
    let mut config = Config {
        nodes: args.nodes,
        manual_clock: manual_clock(args, interactive),
        ..Config::default()
    };
    if let Some(mode) = args.commit.as_deref().and_then(CommitMode::named) {
        config.settings.commit = mode;
    }
    let cluster = match launch::open(args, &dir, config, interactive) {
        Ok(cluster) => cluster,
        Err(exit) => return exit,
    };
    report_recovery(&cluster);
    let recorder = match &args.record {
        Some(path) => match Recorder::create(path, args.nodes, interactive && args.real_time) {
            Ok(recorder) => Some(recorder),
            Err(error) => {
                eprintln!("kv2pc: cannot write {}: {error}", path.display());
                return Exit::Usage;
            }
        },
        None => None,
    };
    let style = Style {
        json: args.json,
        color: interactive && color,
        echo: args.echo && !interactive,
    };
    let mut printer = Printer::new(style, recorder);
    let mut shell = Shell::new(cluster);
    let exit = match input {
        Input::Interactive => {
            // Box drawing for DIAGRAM on a UTF-8 terminal; a recorded transcript keeps ASCII.
            shell.set_unicode(args.record.is_none() && kv2pc::shell::utf8_terminal());
            let place = repl::Place {
                dir: &dir,
                temporary: temp.is_some(),
                manual_clock: manual_clock(args, true),
            };
            let options = repl::Options {
                color: style.color,
                quiet: args.quiet,
                init: repl::init_path().filter(|_| !args.no_init),
            };
            repl::run(&mut shell, &mut printer, place, options)
        }
        Input::Script(lines, base_dir, name) => {
            shell.set_base_dir(&base_dir);
            script::run(&mut shell, &name, lines, &mut printer, args.bail)
        }
    };
    drop(shell);
    launch::stop_launched();
    drop(temp);
    exit
}

/// Whether the cluster runs on the manual clock: a script always does; the prompt does
/// with --manual-clock, and with --record unless --real-time, so that a recording
/// replays as it was recorded. Node processes never do.
fn manual_clock(args: &Args, interactive: bool) -> bool {
    // Node processes run on real time: their clocks are their own.
    let processes = args.connect.is_some() || args.launch.is_some();
    let manual = !interactive || args.manual_clock || (args.record.is_some() && !args.real_time);
    !processes && manual
}

/// Where the commands come from: a script file, `-c`, a pipe, or the terminal.
fn input(args: &Args) -> Result<Input, Exit> {
    if let Some(path) = &args.script {
        let text = std::fs::read_to_string(path).map_err(|error| {
            eprintln!("kv2pc: cannot read the script {}: {error}", path.display());
            Exit::Usage
        })?;
        let lines: Vec<_> = text.lines().map(|line| Ok(line.to_string())).collect();
        let base = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = path.display().to_string();
        return Ok(Input::Script(Box::new(lines.into_iter()), base, name));
    }
    if let Some(commands) = &args.commands {
        let line = std::iter::once(Ok(commands.clone()));
        let name = script::COMMAND_LINE.to_string();
        return Ok(Input::Script(Box::new(line), PathBuf::from("."), name));
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Ok(Input::Interactive);
    }
    Ok(Input::Script(
        Box::new(stdin.lock().lines()),
        PathBuf::from("."),
        script::STDIN.to_string(),
    ))
}

/// The data directory, and the guard that removes it at the end if it is temporary.
fn data_dir(args: &Args, interactive: bool) -> Result<(PathBuf, Option<tempfile::TempDir>), Exit> {
    if args.temp {
        let temp = temp::create(interactive).map_err(|error| {
            eprintln!("kv2pc: cannot create a temporary directory: {error}");
            Exit::DataDir
        })?;
        return Ok((temp.path().to_path_buf(), Some(temp)));
    }
    let dir = match &args.data_dir {
        Some(dir) => dir.clone(),
        None => default_data_dir(),
    };
    Ok((dir, None))
}

/// `kv2pc/` in the user's data directory (or the local one, or the current one).
fn default_data_dir() -> PathBuf {
    let base = dirs::data_dir()
        .or_else(dirs::data_local_dir)
        .unwrap_or_else(|| Path::new(".").to_path_buf());
    base.join("kv2pc")
}

/// Prints what recovery warned about when the cluster opened (a torn log tail cut off).
fn report_recovery(cluster: &Cluster) {
    for report in cluster.recovery_reports() {
        for warning in &report.warnings {
            eprintln!("kv2pc: warning: node {}: {warning}", report.node);
        }
    }
}
