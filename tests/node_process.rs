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

/// A listener per node on loopback, bound now, with their addresses in node order.
fn bound(count: usize) -> (Vec<SocketAddr>, Vec<Option<TcpListener>>) {
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    let addrs = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
    (addrs, listeners.into_iter().map(Some).collect())
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
    let (addrs, mut listeners) = bound(2);
    let mut start = |id: u32| {
        let listener = listeners[id as usize].take().expect("a listener per node");
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
fn collect_stderr(child: &mut std::process::Child) -> Lines {
    collect_lines(child.stderr.take().expect("piped stderr"))
}

/// Reads a child's standard output on a thread, keeping every line.
fn collect_stdout(child: &mut std::process::Child) -> Lines {
    collect_lines(child.stdout.take().expect("piped stdout"))
}

fn collect_lines(stream: impl std::io::Read + Send + 'static) -> Lines {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let kept = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            kept.lock().push(line);
        }
    });
    lines
}

type Lines = Arc<Mutex<Vec<String>>>;

/// A `kv2pc node` process that is killed (SIGKILL) if the test ends without stopping
/// it, so that a failing test leaves no node running (and holding the test's output).
struct NodeChild(std::process::Child);

impl Drop for NodeChild {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Starts `kv2pc node` as node `id` of the cluster at `peers`, its data in `dir/nID`.
fn spawn_node(id: usize, dir: &Path, peers: &[String]) -> (NodeChild, Lines) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kv2pc"))
        .args([
            "node",
            "--id",
            &id.to_string(),
            "--nodes",
            &peers.len().to_string(),
        ])
        .arg("--data-dir")
        .arg(dir.join(format!("n{id}")))
        .args(["--listen", &peers[id], "--peers", &peers.join(",")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kv2pc node");
    let lines = collect_stderr(&mut child);
    (NodeChild(child), lines)
}

/// Waits until `text` appears in at least `count` lines.
fn wait_for_lines(lines: &Mutex<Vec<String>>, text: &str, count: usize) {
    let deadline = Instant::now() + PATIENCE;
    while lines
        .lock()
        .iter()
        .filter(|line| line.contains(text))
        .count()
        < count
    {
        assert!(
            Instant::now() < deadline,
            "no {text:?} in {:?}",
            lines.lock()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends SIGTERM to `child` and waits, bounded, for it to exit; gives its status.
fn terminate(NodeChild(child): &mut NodeChild, lines: &Lines) -> std::process::ExitStatus {
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "still running: {:?}",
            lines.lock()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Two `kv2pc node` processes link up; one killed with SIGKILL is seen gone by the
/// other, starts again from its directory and is linked again; SIGTERM then stops
/// both cleanly (exit status 0, after flushing their logs).
#[test]
fn kv2pc_node_survives_a_peer_s_sigkill_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let peers: Vec<String> = free_addrs(2).iter().map(ToString::to_string).collect();
    let (mut zero, zero_lines) = spawn_node(0, dir.path(), &peers);
    let (mut one, one_lines) = spawn_node(1, dir.path(), &peers);
    wait_for_lines(&zero_lines, "connected to node 1", 1);
    wait_for_lines(&one_lines, "connected to node 0", 1);
    wait_for_lines(&one_lines, "SIGTERM stops it cleanly", 1);

    one.0.kill().expect("SIGKILL node 1");
    let _ = one.0.wait();
    wait_for_lines(&zero_lines, "lost the link to node 1", 1);
    let (mut one, one_lines) = spawn_node(1, dir.path(), &peers);
    wait_for_lines(&one_lines, "recovered", 1);
    wait_for_lines(&zero_lines, "connected to node 1", 2);
    wait_for_lines(&one_lines, "connected to node 0", 1);

    for (child, lines) in [(&mut zero, &zero_lines), (&mut one, &one_lines)] {
        let status = terminate(child, lines);
        assert!(status.success(), "{status}: {:?}", lines.lock());
        wait_for_lines(lines, "stopped", 1);
    }
    assert!(dir.path().join("n0/node0").is_dir() && dir.path().join("n1/node1").is_dir());
}

/// Copies the directory tree `from` to `to`.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

/// The scene of the "done when", without the shell: a participant that crashed
/// holding a prepared transaction whose commit its coordinator logged restarts as its
/// own process, finds the transaction in doubt, and learns the outcome from the
/// coordinator's process over TCP; the coordinator then hears its acknowledgement.
#[test]
fn an_in_doubt_transaction_resolves_between_node_processes() {
    let base = tempfile::tempdir().expect("tempdir");
    let embedded = base.path().join("embedded");
    let (x, y) = {
        let cluster = kv2pc::Cluster::open(&embedded, config(2)).expect("open");
        let key_on = |node| {
            (0..)
                .map(|i| format!("k{i}"))
                .find(|key| cluster.owner(key) == node)
                .unwrap()
        };
        let (x, y) = (key_on(0), key_on(1));
        let client = cluster.client(0).expect("client");
        let mut txn = client.begin().expect("begin");
        txn.put(&x, "on zero").expect("put");
        txn.put(&y, "on one").expect("put");
        // Node 1 dies holding its Prepare, before it logs the COMMIT it was sent.
        cluster
            .arm_crash(1, kv2pc::CrashPoint::Commit)
            .expect("arm");
        txn.commit().expect("the decision is logged: committed");
        cluster.settle();
        assert!(!cluster.is_up(1), "node 1 died at the crash point");
        cluster.close();
        (x, y)
    };
    // Each process owns a directory of its own: give each a copy.
    let dir = base.path();
    for id in 0..2 {
        copy_tree(&embedded, &dir.join(format!("process{id}")));
    }
    let (addrs, mut listeners) = bound(2);
    let mut start = |id: u32| {
        let listener = listeners[id as usize].take().expect("a listener per node");
        NodeProcess::start_on(listener, options(id, dir, &addrs), config(2), quiet())
            .expect("the node starts")
    };
    let one = start(1);
    let in_doubt = &one.cluster().recovery_reports()[0].in_doubt;
    assert_eq!(
        in_doubt.len(),
        1,
        "node 1 recovers the transaction in doubt"
    );
    let zero = start(0);
    let deadline = Instant::now() + PATIENCE;
    loop {
        let data = one.cluster().data(1).expect("node 1's data");
        let status = &one.cluster().status()[1];
        if data.contains(&(y.clone(), "on one".into())) && status.in_doubt.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still in doubt: {status:?}, {data:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    loop {
        let status = &zero.cluster().status()[0];
        if status.unacknowledged.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "never acknowledged: {status:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let data = zero.cluster().data(0).expect("node 0's data");
    assert!(data.contains(&(x, "on zero".into())), "{data:?}");
    one.stop();
    zero.stop();
}

/// A shell killed in the middle of a transaction (as a student's terminal closing
/// would) must not leave its locks held: its coordinator sees the connection end with
/// the transaction open and aborts it at every node, so that another shell can write
/// the same keys at once. (Nothing else would end it: a lock wait times out, but the
/// holder is never chosen, and the coordinator would keep it until it restarts.)
#[test]
fn a_shell_killed_mid_transaction_leaves_no_lock_held() {
    let dir = tempfile::tempdir().expect("tempdir");
    let peers: Vec<String> = free_addrs(3).iter().map(ToString::to_string).collect();
    let mut nodes: Vec<(NodeChild, Lines)> = (0..3)
        .map(|id| spawn_node(id, dir.path(), &peers))
        .collect();
    for (_, lines) in &nodes {
        wait_for_lines(lines, "SIGTERM stops it cleanly", 1);
    }
    let connect = peers.join(",");
    let mut shell = NodeChild(
        Command::new(env!("CARGO_BIN_EXE_kv2pc"))
            .args(["--connect", &connect, "--echo"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the shell"),
    );
    let mut input = shell.0.stdin.take().expect("stdin");
    let output = collect_stdout(&mut shell.0);
    use std::io::Write;
    // Keys on two nodes (a and b on node 1, c on node 0).
    writeln!(input, "BEGIN\nPUT a 1\nPUT b 2\nPUT c 3\nSHOW LOCKS").expect("write");
    input.flush().expect("flush");
    wait_for_lines(&output, "held by T", 3);
    shell.0.kill().expect("SIGKILL the shell");
    let _ = shell.0.wait();

    // Bounded: the abort is one message from the coordinator; a second shell's write
    // of the same keys would otherwise wait for the locks and time out.
    let deadline = Instant::now() + PATIENCE;
    let locks = loop {
        let run = Command::new(env!("CARGO_BIN_EXE_kv2pc"))
            .args(["--connect", &connect, "-c", "SHOW LOCKS"])
            .output()
            .expect("run the second shell");
        let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
        if stdout.contains("no locks are held") || Instant::now() >= deadline {
            break stdout;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(locks.contains("no locks are held"), "{locks}");
    let run = Command::new(env!("CARGO_BIN_EXE_kv2pc"))
        .args(["--connect", &connect, "-c", "PUT a 9; GET a; GET b"])
        .output()
        .expect("run the third shell");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(stdout, "ok\na = 9\nb is not set\n", "{run:?}");
    wait_for_lines(&nodes[0].1, "went away with T", 1);
    for (child, lines) in &mut nodes {
        assert!(terminate(child, lines).success(), "{:?}", lines.lock());
    }
}

/// The teacher's scene of issue 15, from outside the shell: `kv2pc cluster` runs three
/// node processes; another terminal freezes participant node 1 (`kill -STOP`), the
/// shell commits (node 0 coordinates, and prepares its own part), the other terminal
/// kills the coordinator with `kill -9` and lets node 1 go on (`kill -CONT`): node 1
/// prepares and votes to a dead coordinator. STATUS shows node 1 holding the
/// transaction in doubt, asking node 0, its lock held; `RESTART node 0` resolves it
/// (no decision was logged: presumed abort) and frees the lock.
#[test]
fn a_kill_9_from_another_terminal_leaves_the_others_holding_the_transaction_in_doubt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("cluster");
    let mut shell = NodeChild(
        Command::new(env!("CARGO_BIN_EXE_kv2pc"))
            .arg("cluster")
            .arg("--data-dir")
            .arg(&data)
            .arg("--echo")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn kv2pc cluster"),
    );
    let mut input = shell.0.stdin.take().expect("stdin");
    let output = collect_stdout(&mut shell.0);
    // Errors go to standard error: both streams, into one list of lines.
    let errors = collect_stderr(&mut shell.0);
    use std::io::Write;
    let mut send = |line: &str| {
        writeln!(input, "{line}").expect("write to the shell");
        input.flush().expect("flush");
    };
    // What `pgrep -f` finds for node `id`'s process, as a user in another terminal would.
    let pid = |id: u32| -> String {
        let pattern = format!("--data-dir {}/process{id} ", data.display());
        let found = Command::new("pgrep")
            .args(["-f", "--", &pattern])
            .output()
            .expect("pgrep");
        let pids = String::from_utf8_lossy(&found.stdout).into_owned();
        pids.split_whitespace().next().expect("a pid").to_string()
    };
    let kill = |signal: &str, pid: &str| {
        let status = Command::new("kill")
            .args([signal, pid])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal} {pid}");
    };
    // a is on node 1, c on node 0 (the coordinator of the main session).
    send("SET vote_timeout 60s\nBEGIN\nPUT a 1\nPUT c 3");
    wait_for_lines(&output, "ok", 2);
    let (zero, one) = (pid(0), pid(1));
    kill("-STOP", &one);
    send("COMMIT");
    // Node 0 logs its own Prepare before it waits for node 1's vote.
    let prepared = Instant::now() + PATIENCE;
    while !std::fs::read_dir(data.join("process0/node0"))
        .map(|files| (files.flatten()).any(|file| file.metadata().is_ok_and(|meta| meta.len() > 0)))
        .unwrap_or(false)
    {
        assert!(Instant::now() < prepared, "node 0 never logged its Prepare");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    kill("-9", &zero);

    wait_for_lines(&errors, "coordinator node 0 crashed while committing T1", 1);
    kill("-CONT", &one);
    // Node 1 reads the PREPARE that waited in its socket, prepares and is in doubt.
    let deadline = Instant::now() + PATIENCE;
    loop {
        send("STATUS");
        std::thread::sleep(Duration::from_millis(100));
        if output
            .lock()
            .iter()
            .any(|line| line.contains("T1 (asks node 0)"))
        {
            break;
        }
        assert!(Instant::now() < deadline, "{:?}", output.lock());
    }
    wait_for_lines(&output, "node 0 is down: its process at 127.0.0.1:", 1);
    send("SHOW LOCKS");
    wait_for_lines(&output, "node 1  a  held by T1 (exclusive)", 1);
    send("RESTART node 0\nSTATUS\nGET a\nSHOW LOCKS");
    wait_for_lines(&output, "no locks are held", 1);
    let lines = output.lock().clone();
    let restart = lines
        .iter()
        .position(|line| line == "> RESTART node 0")
        .expect("RESTART");
    let after = &lines[restart..];
    assert!(
        after.iter().any(|line| line == "a is not set"),
        "presumed abort: {after:?}"
    );
    assert!(
        !after.iter().any(|line| line.contains("T1 (asks")),
        "{after:?}"
    );
    drop(input);
    let deadline = Instant::now() + PATIENCE;
    while matches!(shell.0.try_wait(), Ok(None)) {
        assert!(
            Instant::now() < deadline,
            "the shell did not exit at the end of its input"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = shell.0.wait().expect("wait");
    assert_eq!(
        status.code(),
        Some(1),
        "the failed COMMIT is the script's one failure"
    );
    // It stopped the processes it started, with SIGTERM (they flush and exit).
    let left = Command::new("pgrep")
        .args([
            "-f",
            "--",
            &format!("--data-dir {}/process", data.display()),
        ])
        .output()
        .expect("pgrep");
    assert!(
        left.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&left.stdout)
    );
}
