//! Nodes as separate processes over TCP (issue 15, first slice): protocol messages
//! cross between two node processes, and `kv2pc node` starts, links up and stops
//! cleanly on SIGTERM. Loopback only; every wait is bounded.

use kv2pc::Config;
use kv2pc::TraceEvent;
use kv2pc::process::{NodeOptions, NodeProcess};
use kv2pc::wire::tcp::Log;
use parking_lot::Mutex;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PATIENCE: Duration = Duration::from_secs(20);

/// Addresses on loopback that were free a moment ago (the listeners are closed again,
/// for the node processes to bind; another socket could take one meanwhile, which
/// would fail the test with "address in use", not pass it wrongly).
fn free_addrs(count: usize) -> Vec<SocketAddr> {
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    listeners.iter().map(|l| l.local_addr().unwrap()).collect()
}

fn options(id: u32, dir: &Path, addrs: &[SocketAddr]) -> NodeOptions {
    NodeOptions {
        id,
        nodes: addrs.len() as u32,
        dir: dir.join(format!("process{id}")),
        listen: addrs[id as usize],
        peers: addrs.to_vec(),
    }
}

fn config(nodes: u32) -> Config {
    Config {
        nodes,
        manual_clock: false,
        ..Config::default()
    }
}

fn quiet() -> Log {
    Arc::new(|_| {})
}

/// Node 1 starts after node 0 and announces its restart (re-sending it until answered);
/// node 0's net gets the announcement from the socket, and its answer, RESTART ACK, is
/// taken by the link back to node 1 (traced as not dropped) once that link is up.
#[test]
fn a_restart_announcement_is_answered_across_processes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listeners: Vec<TcpListener> = (0..2)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    let addrs: Vec<SocketAddr> = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
    let mut listeners = listeners.into_iter();
    let mut start = |id| {
        let listener = listeners.next().expect("a listener per node");
        NodeProcess::start_on(
            listener,
            options(id, dir.path(), &addrs),
            config(2),
            quiet(),
        )
        .expect("the node starts")
    };
    let zero = start(0);
    let sent = Arc::new(Mutex::new(Vec::new()));
    let seen = sent.clone();
    zero.cluster()
        .set_trace(Some(Arc::new(move |event: &TraceEvent| {
            if let TraceEvent::Message {
                from,
                to,
                label,
                dropped,
                ..
            } = event
            {
                seen.lock().push((*from, *to, label.clone(), *dropped));
            }
        })));
    let one = start(1);
    let deadline = Instant::now() + PATIENCE;
    let answered = |sent: &[(u32, u32, String, bool)]| {
        sent.iter().any(|(from, to, label, dropped)| {
            (*from, *to) == (0, 1) && label == "RESTART ACK" && !dropped
        })
    };
    while !answered(&sent.lock()) {
        assert!(Instant::now() < deadline, "no answer: {:?}", sent.lock());
        std::thread::sleep(Duration::from_millis(10));
    }
    one.stop();
    zero.stop();
}

/// A node process refuses options that cannot describe a cluster, with what to change.
#[test]
fn a_peers_list_of_the_wrong_length_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let addrs = free_addrs(2);
    let mut wrong = options(0, dir.path(), &addrs);
    wrong.nodes = 3;
    let error = NodeProcess::start(wrong, config(3), quiet())
        .err()
        .expect("refused");
    assert!(
        error
            .to_string()
            .contains("--peers lists 2 addresses, and the cluster has 3 nodes"),
        "{error}"
    );
}

/// Reads a child's standard error on a thread, keeping every line.
fn collect_stderr(child: &mut std::process::Child) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let kept = lines.clone();
    let stderr = child.stderr.take().expect("piped stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            kept.lock().push(line);
        }
    });
    lines
}

fn wait_for_line(lines: &Mutex<Vec<String>>, text: &str) {
    let deadline = Instant::now() + PATIENCE;
    while !lines.lock().iter().any(|line| line.contains(text)) {
        assert!(
            Instant::now() < deadline,
            "no {text:?} in {:?}",
            lines.lock()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn kv2pc_node_links_up_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let addrs = free_addrs(2);
    let peers: Vec<String> = addrs.iter().map(ToString::to_string).collect();
    let mut children = Vec::new();
    for id in 0..2 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kv2pc"))
            .args(["node", "--id", &id.to_string(), "--nodes", "2"])
            .arg("--data-dir")
            .arg(dir.path().join(format!("n{id}")))
            .args(["--listen", &peers[id], "--peers", &peers.join(",")])
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn kv2pc node");
        let lines = collect_stderr(&mut child);
        children.push((child, lines));
    }
    for (id, (_, lines)) in children.iter().enumerate() {
        wait_for_line(lines, &format!("connected to node {}", 1 - id));
        wait_for_line(lines, "SIGTERM stops it cleanly");
    }
    for (child, lines) in &mut children {
        let killed = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(killed.success());
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "still running: {:?}",
                lines.lock()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "{status}: {:?}", lines.lock());
        wait_for_line(lines, "stopped");
    }
    assert!(dir.path().join("n0/node0").is_dir() && dir.path().join("n1/node1").is_dir());
}
