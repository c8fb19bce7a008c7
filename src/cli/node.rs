//! `kv2pc node`: one node of a cluster as its own process, over TCP (see `process` in
//! the library for what it runs, and `wire::tcp` for the links).
//!
//! It logs to standard error, one line per event (`kv2pc node 1: connected to node 2 at
//! 127.0.0.1:7002`), and runs until SIGTERM or SIGINT, when it stops cleanly: the node
//! finishes the fsync in flight and flushes its log, the links close, and it exits 0.
//! SIGKILL kills it like a crash; the next start recovers from the log.

use crate::exit::Exit;
use clap::Args;
use kv2pc::Config;
use kv2pc::process::{NodeOptions, NodeProcess};
use kv2pc::types::{MAX_NODES, NodeId};
use signal_hook::consts::signal::{SIGINT, SIGTERM};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The options of `kv2pc node`.
#[derive(Args, Debug)]
pub struct NodeArgs {
    /// This node's id, from 0 to --nodes minus 1.
    #[arg(long)]
    id: NodeId,
    /// The number of nodes in the cluster (recorded in the data directory).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=MAX_NODES as i64))]
    nodes: u32,
    /// The data directory this process owns (one per node process).
    #[arg(long, value_name = "DIR")]
    data_dir: PathBuf,
    /// Where to listen for the other nodes, e.g. 127.0.0.1:7001.
    #[arg(long, value_name = "ADDR")]
    listen: SocketAddr,
    /// Every node's address, in node order, this one's included: ADDR,ADDR,...
    #[arg(long, value_name = "ADDRS", value_delimiter = ',', required = true)]
    peers: Vec<SocketAddr>,
}

/// Runs the node until SIGTERM or SIGINT.
pub fn run(args: &NodeArgs) -> Exit {
    let id = args.id;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [SIGTERM, SIGINT] {
        if let Err(error) = signal_hook::flag::register(signal, stop.clone()) {
            eprintln!("kv2pc node {id}: cannot listen for signals: {error}");
            return Exit::Failed;
        }
    }
    let options = NodeOptions {
        id,
        nodes: args.nodes,
        dir: args.data_dir.clone(),
        listen: args.listen,
        peers: args.peers.clone(),
    };
    let config = Config {
        nodes: args.nodes,
        manual_clock: false,
        ..Config::default()
    };
    let log = Arc::new(move |line: String| eprintln!("kv2pc {line}"));
    let process = match NodeProcess::start(options, config, log) {
        Ok(process) => process,
        Err(error) => {
            eprintln!("kv2pc node {id}: cannot start: {error}");
            return match error {
                kv2pc::Error::InvalidInput(_) => Exit::Usage,
                _ => Exit::DataDir,
            };
        }
    };
    report_start(&process, args);
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(10));
        if !process.is_up() {
            // It died at an armed crash point (CRASH node N AT ...), or on a failed log
            // write: the process dies with it, as the machine would.
            return die(&process, id, process.failure());
        }
    }
    eprintln!("kv2pc node {id}: stopping: flushing the log, closing the links");
    process.stop();
    eprintln!("kv2pc node {id}: stopped");
    Exit::Success
}

/// Says what the node recovered and where it serves.
fn report_start(process: &NodeProcess, args: &NodeArgs) {
    let id = args.id;
    for report in process.cluster().recovery_reports() {
        for warning in &report.warnings {
            eprintln!("kv2pc node {id}: warning: {warning}");
        }
        let in_doubt = if report.in_doubt.is_empty() {
            String::new()
        } else {
            let tids: Vec<String> = report.in_doubt.iter().map(ToString::to_string).collect();
            format!(
                "; in doubt, locked until their coordinators answer: {}",
                tids.join(" ")
            )
        };
        eprintln!(
            "kv2pc node {id}: recovered {} log records{in_doubt}",
            report.records
        );
    }
    let addr = process.listen_addr().unwrap_or(args.listen);
    eprintln!(
        "kv2pc node {id} of {}: serving on {addr}, data in {}; SIGTERM stops it cleanly",
        args.nodes,
        args.data_dir.display()
    );
}

/// Ends the process of a node that died: with SIGKILL after a crash (nothing flushed,
/// nothing closed, as `kill -9`), or with a failure status after an error.
fn die(process: &NodeProcess, id: NodeId, failure: Option<String>) -> Exit {
    match failure {
        Some(failure) => {
            eprintln!("kv2pc node {id}: stopped on an error: {failure}; restart it to recover");
            std::process::exit(1);
        }
        None => {
            eprintln!(
                "kv2pc node {id}: crashed at its armed crash point; the process dies with it"
            );
            // The shell watching it hears where it crashed (its trace event) first.
            process.flush_trace(Duration::from_millis(100));
            let _ = signal_hook::low_level::raise(signal_hook::consts::SIGKILL);
            Exit::Failed
        }
    }
}
