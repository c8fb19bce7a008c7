//! `kv2pc bench`: runs `kv2pc::bench` and prints its table (or JSON), with a progress bar
//! on a terminal. The measuring itself lives in the library (`src/bench.rs`).

use crate::exit::Exit;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use kv2pc::Cluster;
use kv2pc::bench::{self, Opener, Options, Transport, Workload};
use kv2pc::config::Config;
use kv2pc::process::launch::Launch;
use kv2pc::{CommitMode, DeadlockPolicy};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The bench's options as the command line gives them.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// The short sweep (1 and 16 clients, 250 ms per run): under 30 seconds.
    #[arg(long)]
    quick: bool,
    /// Print the report as one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Run only these workloads (get, read-only, write-one, cross-2, cross-3, read-mix,
    /// get-hot, hot-key, and recovery, the replay of a long log); repeatable.
    #[arg(long = "workload", value_name = "NAME")]
    workloads: Vec<String>,
    /// Client counts to sweep, e.g. `--clients 1,16,256`. Below 32 each client is an OS
    /// thread; from 32 up, write-one, cross-2, cross-3 and hot-key run their clients
    /// pipelined (one thread per node, each keeping its share of the clients'
    /// transactions in flight at once), so that the threads do not spend the run
    /// switching.
    #[arg(long, value_delimiter = ',', value_name = "N,N,...")]
    clients: Vec<usize>,
    /// Records in the log the recovery measurement replays (default 1,000,000; 100,000
    /// with --quick).
    #[arg(long, value_name = "N")]
    recovery_records: Option<u64>,
    /// Milliseconds per run.
    #[arg(long, value_name = "MS")]
    millis: Option<u64>,
    /// Where to create the clusters' directories (default: the system temp directory).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// The deadlock policy of every run (detect, wait-die, wound-wait, no-wait, timeout
    /// or off; default detect), as `SET deadlock` takes it.
    #[arg(long, value_name = "POLICY")]
    deadlock: Option<String>,
    /// How the runs' coordinators commit across two or more participants: classic (the
    /// default) or parallel, as `SET commit` takes it; `--commit classic,parallel` runs
    /// the sweep in both.
    #[arg(long, value_name = "MODE,...", value_delimiter = ',', value_parser = ["classic", "parallel"])]
    commit: Vec<String>,
    /// Runs the whole sweep N times, one round after another, and reports each figure's
    /// median over the rounds (each round measures its own limits), e.g. `--repeat 5`.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=100))]
    repeat: Option<u16>,
    /// Where the nodes run: embedded (threads of this process, the default) or
    /// processes (one `kv2pc node` process per node on loopback TCP, the clients in
    /// this process); `--transport embedded,processes` runs the sweep over both.
    #[arg(long, value_name = "WHERE,...", value_delimiter = ',', value_parser = ["embedded", "processes"])]
    transport: Vec<String>,
    /// Also draw the sweep to this SVG file: throughput (operations per fsync time) and
    /// p99 latency against clients, one line per workload.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
}

/// Runs the bench.
pub fn run(args: &BenchArgs) -> Exit {
    let mut options = if args.quick {
        Options::quick()
    } else {
        Options::full()
    };
    if !args.workloads.is_empty() {
        let recovery = args.workloads.iter().any(|w| w == "recovery");
        if !recovery {
            options.recovery_records = None;
        }
        match (args.workloads.iter())
            .filter(|w| *w != "recovery")
            .map(|w| w.parse::<Workload>())
            .collect()
        {
            Ok(workloads) => options.workloads = workloads,
            Err(error) => {
                eprintln!("kv2pc bench: {error}");
                return Exit::Usage;
            }
        }
    }
    if !args.clients.is_empty() {
        options.clients = args.clients.clone();
    }
    if let Some(records) = args.recovery_records {
        options.recovery_records = Some(records);
    }
    if let Some(millis) = args.millis {
        options.duration = Duration::from_millis(millis);
    }
    options.dir = args.dir.clone();
    if let Some(name) = &args.deadlock {
        match DeadlockPolicy::named(&name.to_ascii_lowercase()) {
            Some(policy) => options.deadlock = policy,
            None => {
                let names: Vec<&str> = DeadlockPolicy::ALL.iter().map(|p| p.name()).collect();
                eprintln!(
                    "kv2pc bench: unknown deadlock policy '{name}'; the policies are {}",
                    names.join(", ")
                );
                return Exit::Usage;
            }
        }
    }
    if !args.commit.is_empty() {
        let mut modes: Vec<CommitMode> = Vec::new();
        for mode in args
            .commit
            .iter()
            .filter_map(|name| CommitMode::named(name))
        {
            if !modes.contains(&mode) {
                modes.push(mode);
            }
        }
        options.commits = modes;
    }
    if let Some(rounds) = args.repeat {
        options.repeat = usize::from(rounds);
    }
    if !args.transport.is_empty() {
        let mut transports: Vec<Transport> = Vec::new();
        for transport in (args.transport.iter()).filter_map(|name| Transport::named(name)) {
            if !transports.contains(&transport) {
                transports.push(transport);
            }
        }
        options.transports = transports;
    }
    options.processes = Some(Opener(Arc::new(launch_processes)));
    let progress = progress_bar(bench::steps(&options));
    let report = bench::run(&options, |step| {
        progress.inc(1);
        progress.set_message(step.to_string());
    });
    progress.finish_and_clear();
    let report = match report {
        Ok(report) => report,
        Err(error) => {
            eprintln!("kv2pc bench: {error}");
            return Exit::Failed;
        }
    };
    // The report first: a plot that cannot be written must not lose the figures.
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        print!("{}", report.render());
    }
    match &args.plot {
        Some(path) => match bench::plot::svg(&report, path) {
            Ok(()) => {
                eprintln!("kv2pc bench: plot written to {}", path.display());
                Exit::Success
            }
            Err(error) => {
                eprintln!("kv2pc bench: {error}");
                Exit::Failed
            }
        },
        None => Exit::Success,
    }
}

/// A progress bar on stderr, hidden when stderr is not a terminal.
fn progress_bar(steps: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(steps), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}") {
        bar.set_style(style);
    }
    bar
}

/// Starts one `kv2pc node` process per node with their data under `dir`, and connects
/// to them: a run over `--transport processes`. The processes' events go nowhere (the
/// table is the output); dropping the cluster stops them.
fn launch_processes(dir: &Path, config: Config) -> kv2pc::Result<Cluster> {
    let exe = std::env::current_exe()
        .map_err(|error| kv2pc::Error::io("finding this program to start its nodes", error))?;
    let launch = Launch::start(exe, config.nodes, dir, None)?;
    let addrs = launch.addrs().to_vec();
    let launcher: Arc<dyn kv2pc::cluster::Launcher> = Arc::new(launch);
    let quiet: kv2pc::wire::tcp::Log = Arc::new(|_| {});
    Cluster::connect(
        addrs,
        config.settings,
        Some(launcher),
        dir.to_path_buf(),
        quiet,
    )
}
