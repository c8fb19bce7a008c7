//! The shell over node processes, end to end: a `kv2pc cluster` script that commits,
//! crashes a node's process and restarts it; the in-doubt window of two-phase commit
//! held open by a dead process and closed by its restart; `kv2pc --connect` to `kv2pc
//! node` processes that the test starts and kills by hand; a node's port fed bytes that
//! are not kv2pc's; the commands that cannot work over processes; `--json` over them.
//!
//! Every wait is bounded ([`PATIENCE`]), and no process outlives its test: each `kv2pc`
//! run leads a process group of its own, which holds the node processes a `kv2pc
//! cluster` launches, and the group is killed if the run does not end in time (or
//! leaves a node behind); each `kv2pc node` the test starts is killed when its guard
//! drops.
//!
//! Over processes the shell runs on real time and a piped script does not wait for a
//! timeout (`TICK` is refused): where a scene needs time to pass, the test pauses
//! between parts of the script, as a teacher waits before typing on.
//!
//! The tests marked `#[ignore = "bug: ..."]` show bugs found while writing these; each
//! passes once its bug is fixed.

#![cfg(unix)]

#[path = "support/binary.rs"]
mod binary;

use binary::Run;
use kv2pc::message::{Answer, ReadAt, Reply, Request};
use kv2pc::types::{TxnId, owner_of};
use kv2pc::wire::{
    FRAME_HEADER_LEN, Frame, FrameReader, HELLO_LEN, Hello, Role, WIRE_VERSION, encode_frame,
};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use parking_lot::{Mutex, MutexGuard};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The longest any one wait may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(20);

const NODES: u32 = 3;

/// Long enough for a process that died at a crash point to be gone as the shell sees
/// it (see `restart_right_after_a_crash_point_fired_is_not_refused_as_already_up`).
const DEATH_SETTLES: Duration = Duration::from_millis(300);

/// Past the default vote timeout (1 s), with room for a loaded machine.
const VOTE_TIMEOUT_PASSED: Duration = Duration::from_millis(2500);

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Taken by every test for its whole run, so that the tests run one at a time. Over
/// processes the shell settles by asking every node twice, 2 ms apart, whether it is
/// quiet (`cluster::remote`, `QUIET_GAP`); with several clusters at once on two cores a
/// message can take longer than that, and a command's result then comes after the
/// shell stopped waiting for it, failing the script's next command (see
/// `a_script_line_does_not_fail_when_the_machine_is_busy`).
fn one_at_a_time() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock()
}

// ---------------------------------------------------------------------------------
// Running the binary

/// What is fed to the shell's standard input: lines, or a pause of real time.
enum Feed {
    Lines(String),
    Pause(Duration),
}

use Feed::{Lines, Pause};

/// A `kv2pc` process and, in its process group, whatever it started: all killed with
/// SIGKILL on drop unless the process ended.
struct Group {
    child: Child,
    reaped: bool,
}

impl Drop for Group {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = killpg(pid_of(&self.child), Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

fn pid_of(child: &Child) -> Pid {
    Pid::from_raw(i32::try_from(child.id()).expect("a pid fits in i32"))
}

/// The binary, with the user's directories out of the way under `home`.
fn kv2pc(home: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kv2pc"));
    command
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_STATE_HOME", home.join("state"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("KV2PC_HISTFILE", "")
        .env("NO_COLOR", "1");
    command
}

/// Runs `kv2pc ARGS` fed `script`, in a process group of its own, and waits at most
/// [`PATIENCE`] for it to end (past that, kills the group and fails). Gives what it
/// printed, and the processes of its group that it left running (killed since).
fn run(home: &Path, args: &[&str], script: Vec<Feed>) -> (Run, Vec<String>) {
    let mut command = kv2pc(home);
    command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut group = Group {
        child: command.spawn().expect("the kv2pc binary starts"),
        reaped: false,
    };
    let feeder = feed(group.child.stdin.take().expect("piped stdin"), script);
    let stdout = read_all(group.child.stdout.take().expect("piped stdout"));
    let stderr = read_all(group.child.stderr.take().expect("piped stderr"));
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = group.child.try_wait().expect("waiting for kv2pc") {
            group.reaped = true;
            break status;
        }
        if Instant::now() >= deadline {
            drop(group);
            panic!(
                "kv2pc {args:?} did not end within {PATIENCE:?}; it printed {:?} and {:?}",
                String::from_utf8_lossy(&stdout.join().unwrap_or_default()),
                String::from_utf8_lossy(&stderr.join().unwrap_or_default()),
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let _ = feeder.join();
    let left_behind = left_in_group(pid_of(&group.child));
    let run = Run::from(Output {
        status,
        stdout: stdout.join().expect("the stdout reader"),
        stderr: stderr.join().expect("the stderr reader"),
    });
    (run, left_behind)
}

/// The processes left in `group` once its leader has ended, as `ps` lists them; each
/// is killed with SIGKILL.
fn left_in_group(group: Pid) -> Vec<String> {
    if killpg(group, None).is_err() {
        return Vec::new();
    }
    let ps = Command::new("ps")
        .args(["-eo", "pid,pgid,stat,args"])
        .output();
    let _ = killpg(group, Signal::SIGKILL);
    let group = group.to_string();
    let listed: Vec<String> = ps
        .map(|ps| String::from_utf8_lossy(&ps.stdout).into_owned())
        .unwrap_or_default()
        .lines()
        .filter(|line| line.split_whitespace().nth(1) == Some(group.as_str()))
        .map(str::to_string)
        .collect();
    match listed.is_empty() {
        true => vec![format!(
            "(some process of group {group}, gone before ps looked)"
        )],
        false => listed,
    }
}

/// Writes `script` to `stdin` on a thread, pausing where it says, then closes it.
fn feed(mut stdin: impl Write + Send + 'static, script: Vec<Feed>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for part in script {
            match part {
                Lines(lines) => {
                    if stdin.write_all(lines.as_bytes()).is_err() {
                        return; // The shell is gone.
                    }
                }
                Pause(pause) => std::thread::sleep(pause),
            }
        }
    })
}

fn read_all(mut pipe: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

/// A `kv2pc cluster` of three node processes, its data in a temporary directory.
struct Launched {
    home: TempDir,
}

impl Launched {
    fn new() -> Launched {
        Launched {
            home: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    /// Where the launcher keeps the nodes' data and their logs of events.
    fn dir(&self) -> PathBuf {
        self.home.path().join("cluster")
    }

    /// Runs `script` on the cluster with `option` (`--echo` or `--json`); gives also
    /// the processes it left running.
    fn run(&self, option: &str, script: Vec<Feed>) -> (Run, Vec<String>) {
        let dir = self.dir().display().to_string();
        let args = ["cluster", "--nodes", "3", "--data-dir", &dir, option];
        run(self.home.path(), &args, script)
    }

    /// Runs `script` on the cluster with `--echo`.
    fn script(&self, script: Vec<Feed>) -> Run {
        let (run, left_behind) = self.run("--echo", script);
        if !left_behind.is_empty() {
            // A known bug, shown by its own test: not this test's business.
            eprintln!("left running (and killed): {left_behind:#?}");
        }
        run
    }

    /// The address node `node` served on, as its log of events says.
    fn address(&self, node: u32) -> String {
        let log = self.log(node);
        let marker = format!("kv2pc node {node} of {NODES}: serving on ");
        log.lines()
            .find_map(|line| line.strip_prefix(&marker))
            .and_then(|rest| rest.split(',').next())
            .unwrap_or_else(|| panic!("no {marker:?} in {log}"))
            .to_string()
    }

    /// Node `node`'s log of events, over all its processes.
    fn log(&self, node: u32) -> String {
        let path = self.dir().join(format!("process{node}.log"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }
}

// ---------------------------------------------------------------------------------
// Reading what a run printed

/// The lines `--echo` printed after the `nth` (from 1) `> COMMAND`, up to the next.
fn output_of<'a>(run: &'a Run, command: &str, nth: usize) -> Vec<&'a str> {
    let echo = format!("> {command}");
    let mut lines = run.stdout.lines();
    let mut seen = 0;
    while let Some(line) = lines.next() {
        if line == echo {
            seen += 1;
            if seen == nth {
                return lines.take_while(|line| !line.starts_with("> ")).collect();
            }
        }
    }
    panic!("no {echo:?} number {nth} in\n{}", run.stdout)
}

/// Asserts that the `nth` `command` printed exactly `expected`; shows the whole run if
/// it did not.
#[track_caller]
fn said(run: &Run, command: &str, nth: usize, expected: &[impl AsRef<str>]) {
    let printed = output_of(run, command, nth);
    let expected: Vec<&str> = expected.iter().map(AsRef::as_ref).collect();
    assert!(
        printed == expected,
        "{command} (number {nth}) printed {printed:#?}, not {expected:#?}; the run printed\n\
         {}\nand on standard error\n{}",
        run.stdout,
        run.stderr
    );
}

/// Asserts that the `nth` `GET key` read `value` (`None`: the key is not set).
#[track_caller]
fn read_back(run: &Run, key: &str, nth: usize, value: Option<&str>) {
    let expected = match value {
        Some(value) => format!("{key} = {value}"),
        None => format!("{key} is not set"),
    };
    said(run, &format!("GET {key}"), nth, &[expected]);
}

/// What standard error says of line `line` of the script, after `<stdin>:N: error: `.
fn error_at(run: &Run, line: usize) -> &str {
    let prefix = format!("<stdin>:{line}: error: ");
    run.stderr
        .lines()
        .find_map(|text| text.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no error for line {line} in\n{}", run.stderr))
}

/// The lines of the script, up to `last`, that standard error says failed.
fn failed_lines(run: &Run, last: usize) -> Vec<usize> {
    let failed =
        |line: &usize| (run.stderr.lines()).any(|t| t.starts_with(&format!("<stdin>:{line}: ")));
    (1..=last).filter(failed).collect()
}

/// The row of node `node` in a STATUS table, as its columns.
fn status_row<'a>(status: &[&'a str], node: u32) -> Vec<&'a str> {
    let node = node.to_string();
    (status.iter())
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|columns| columns.first() == Some(&node.as_str()))
        .unwrap_or_else(|| panic!("no row for node {node} in {status:#?}"))
}

/// A STATUS row's state and in-doubt columns: `("up", "-")`, `("up", "T1 (asks node
/// 0)")`, `("DOWN", "-")`.
fn state_and_in_doubt(status: &[&str], node: u32) -> (String, String) {
    let row = status_row(status, node);
    // node, state, keys, log ("68 B"), active, in doubt (-, or "T1 (asks node 0)"), ...
    let in_doubt = match row[6] {
        "-" => "-".to_string(),
        _ => row[6..10].join(" "),
    };
    (row[1].to_string(), in_doubt)
}

/// Asserts that STATUS shows every node up, nothing in doubt, no reason a node is down.
#[track_caller]
fn all_up(status: &[&str]) {
    for node in 0..NODES {
        let (state, in_doubt) = state_and_in_doubt(status, node);
        assert!(state == "up" && in_doubt == "-", "{status:#?}");
    }
    assert!(!status.iter().any(|l| l.contains("is down")), "{status:#?}");
}

/// The transaction a `BEGIN`'s output names: `T1` of `T1 started: ...`.
fn begun(lines: &[&str]) -> String {
    (lines.iter())
        .find_map(|line| line.split_once(" started: "))
        .map(|(tid, _)| tid.to_string())
        .unwrap_or_else(|| panic!("no transaction started in {lines:?}"))
}

/// The first key named `{prefix}N` that node `node` of a three-node cluster owns.
fn key_on(node: u32, prefix: &str) -> String {
    (0..)
        .map(|i| format!("{prefix}{i}"))
        .find(|key| owner_of(key, NODES) == node)
        .expect("some key lands on every node")
}

// ---------------------------------------------------------------------------------
// `kv2pc node` processes started by the test

/// Loopback addresses that were free a moment ago (see `tests/node_process.rs`).
fn free_addrs(count: usize) -> Vec<String> {
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    (listeners.iter())
        .map(|l| l.local_addr().expect("an address").to_string())
        .collect()
}

/// A `kv2pc node` process, killed with SIGKILL if the test ends without it.
struct NodeChild(Child);

impl Drop for NodeChild {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Three `kv2pc node` processes, as an operator starts them in three terminals, each
/// with its data in `home/nID` and its standard error kept line by line.
struct Nodes {
    home: TempDir,
    peers: Vec<String>,
    children: Vec<Option<NodeChild>>,
    /// Each node's standard error, over all its processes so far.
    logs: Vec<Arc<Mutex<Vec<String>>>>,
}

impl Nodes {
    /// Starts the three and waits until each serves and is linked to the other two.
    fn start() -> Nodes {
        let mut nodes = Nodes {
            home: tempfile::tempdir().expect("a temporary directory"),
            peers: free_addrs(NODES as usize),
            children: (0..NODES).map(|_| None).collect(),
            logs: (0..NODES).map(|_| Arc::default()).collect(),
        };
        for node in 0..NODES {
            nodes.spawn(node);
        }
        for node in 0..NODES {
            nodes.wait_ready(node, 1);
        }
        nodes
    }

    fn addr(&self, node: u32) -> &str {
        &self.peers[node as usize]
    }

    /// Starts node `node`'s process, always with the same command line.
    fn spawn(&mut self, node: u32) {
        let (id, peers) = (node.to_string(), self.peers.join(","));
        let mut child = kv2pc(self.home.path())
            .args(["node", "--id", &id, "--nodes", "3", "--data-dir"])
            .arg(self.home.path().join(format!("n{node}")))
            .args(["--listen", self.addr(node), "--peers", &peers])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kv2pc node starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let kept = self.logs[node as usize].clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                kept.lock().push(line);
            }
        });
        self.children[node as usize] = Some(NodeChild(child));
    }

    /// Kills node `node`'s process with SIGKILL, as `kill -9` in another terminal does.
    fn kill(&mut self, node: u32) {
        let mut child = (self.children[node as usize].take()).expect("the node runs");
        child.0.kill().expect("SIGKILL");
        child.0.wait().expect("the killed node is reaped");
    }

    fn is_running(&mut self, node: u32) -> bool {
        let child = self.children[node as usize].as_mut();
        child.is_some_and(|child| matches!(child.0.try_wait(), Ok(None)))
    }

    /// Waits until node `node`'s `incarnation`th process serves, and until it and each
    /// peer have said so many times that they connected to the other.
    fn wait_ready(&self, node: u32, incarnation: usize) {
        self.wait_for(node, "serving on", incarnation);
        for peer in (0..NODES).filter(|peer| *peer != node) {
            self.wait_for(node, &format!("connected to node {peer} at"), incarnation);
            self.wait_for(peer, &format!("connected to node {node} at"), incarnation);
        }
    }

    /// Waits until `text` is in at least `count` lines of node `node`'s log; gives the
    /// last of them.
    fn wait_for(&self, node: u32, text: &str, count: usize) -> String {
        let lines = &self.logs[node as usize];
        let deadline = Instant::now() + PATIENCE;
        loop {
            let found: Vec<String> = (lines.lock().iter())
                .filter(|line| line.contains(text))
                .cloned()
                .collect();
            if found.len() >= count {
                return found.last().cloned().unwrap_or_default();
            }
            assert!(
                Instant::now() < deadline,
                "node {node} never said {text:?} {count} times: {:#?}",
                lines.lock()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Every line of every node's log that mentions a panic.
    fn panics(&self) -> Vec<String> {
        (self.logs.iter())
            .flat_map(|lines| lines.lock().clone())
            .filter(|line| line.contains("panicked"))
            .collect()
    }

    /// Runs `script` with `--echo` in `kv2pc --connect` to the three.
    fn connect(&self, script: &str) -> Run {
        let peers = self.peers.join(",");
        let args = ["--connect", &peers, "--echo"];
        let (run, _) = run(self.home.path(), &args, vec![Lines(script.into())]);
        run
    }

    /// Through `kv2pc --connect`, commits `value` to a key on node 0 and one on node 1
    /// and reads both back.
    fn commits_and_reads(&self, value: &str) {
        let (zero, one) = (key_on(0, "probe"), key_on(1, "probe"));
        let run = self.connect(&format!(
            "BEGIN\nPUT {zero} {value}\nPUT {one} {value}\nCOMMIT\nGET {zero}\nGET {one}\n"
        ));
        assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
        let committed = output_of(&run, "COMMIT", 1);
        assert!(
            committed[0].ends_with(" committed on nodes 0, 1"),
            "{committed:?}"
        );
        read_back(&run, &zero, 1, Some(value));
        read_back(&run, &one, 1, Some(value));
    }
}

// ---------------------------------------------------------------------------------
// 1. A `kv2pc cluster` session: commit, crash a node's process, restart it

/// A transaction over three node processes commits and reads back; `CRASH` kills a
/// participant's process, `STATUS` shows it down at its address, a write to its key
/// fails saying so while the other nodes serve on, and `RESTART` brings it back from
/// its log with the committed data. At exit the launcher stops every node cleanly.
#[test]
fn a_node_process_killed_by_crash_comes_back_by_restart_with_its_committed_data() {
    let _one_at_a_time = one_at_a_time();
    let cluster = Launched::new();
    let (k0, k1, k2) = (key_on(0, "k"), key_on(1, "k"), key_on(2, "k"));
    let script = format!(
        "BEGIN\nPUT {k0} zero\nPUT {k1} one\nPUT {k2} two\nCOMMIT\nGET {k1}\n\
         CRASH node 1\nSTATUS\nPUT {k1} again\nGET {k0}\n\
         RESTART node 1\nSTATUS\nGET {k1}\nSHOW LOG node 1\n"
    );
    let (run, left_behind) = cluster.run("--echo", vec![Lines(script)]);
    let one = cluster.address(1);

    let tid = begun(&output_of(&run, "BEGIN", 1));
    said(
        &run,
        "COMMIT",
        1,
        &[format!("{tid} committed on nodes 0, 1, 2")],
    );
    read_back(&run, &k1, 1, Some("one"));
    let killed = format!(
        "node 1 crashed: its process at {one} was killed with SIGKILL; its memory and \
         unsynced log tail are gone"
    );
    said(&run, "CRASH node 1", 1, &[killed]);
    let status = output_of(&run, "STATUS", 1);
    assert_eq!(state_and_in_doubt(&status, 1).0, "DOWN", "{status:#?}");
    assert_eq!(state_and_in_doubt(&status, 0).0, "up", "{status:#?}");
    let why =
        format!("node 1 is down: its process at {one} was killed; RESTART node 1 starts it again");
    assert!(status.contains(&why.as_str()), "{status:#?}");
    let refused = error_at(&run, 9);
    assert!(
        refused.starts_with(&format!("node 1 is down: its process at {one} ")),
        "{refused}"
    );
    read_back(&run, &k0, 1, Some("zero"));

    let restart = output_of(&run, "RESTART node 1", 1);
    let redone = format!(
        "node 1: redid the writes of 1 committed transaction ({tid}); dropped no aborted one"
    );
    assert_eq!(
        restart,
        ["node 1 recovered from 2 log records", redone.as_str()]
    );
    all_up(&output_of(&run, "STATUS", 2));
    read_back(&run, &k1, 2, Some("one"));
    let log = output_of(&run, "SHOW LOG node 1", 1);
    assert!(log[0].contains(&format!("Prepare {tid}")) && log[0].contains(&format!("{k1}=one")));
    assert!(log[1].contains(&format!("Commit {tid}")), "{log:#?}");

    // Only the write to the dead node's key failed, and the exit status says one did.
    assert_eq!(
        (run.code, failed_lines(&run, 14)),
        (1, vec![9]),
        "{}",
        run.stderr
    );
    assert!(left_behind.is_empty(), "{left_behind:#?}");
    for node in 0..NODES {
        let log = cluster.log(node);
        let stopped = format!("kv2pc node {node}: stopped");
        assert_eq!(log.lines().last(), Some(stopped.as_str()), "{log}");
    }
}

// ---------------------------------------------------------------------------------
// 2. The in-doubt window, held open by a dead process

/// The opening of a scene: session main's transaction, coordinated by node 0, writes
/// `x` and `y`; `crash` arms a crash point, and COMMIT runs into it.
fn commit_into(crash: &str, x: &str, y: &str) -> String {
    format!("BEGIN\nPUT {x} 1\nPUT {y} 2\n{crash}\nCOMMIT\n")
}

/// A scene of the in-doubt window on a fresh `kv2pc cluster`: a transaction writes `x`
/// on node 1 and `y` on node 2 (node 0 coordinates and holds no key) and its COMMIT
/// runs into a crash point; after a pause the shell looks (STATUS, SHOW LOCKS),
/// restarts the dead node, and looks again (STATUS, SHOW LOCKS, GET x, GET y).
struct Scene {
    run: Run,
    tid: String,
    x: String,
    y: String,
}

impl Scene {
    fn play(crash: &str, restarted: u32, pause: Duration) -> Scene {
        let cluster = Launched::new();
        let (x, y) = (key_on(1, "x"), key_on(2, "y"));
        let look = "STATUS\nSHOW LOCKS\n";
        let after = format!("{look}RESTART node {restarted}\n{look}GET {x}\nGET {y}\n");
        let opening = commit_into(crash, &x, &y);
        let run = cluster.script(vec![Lines(opening), Pause(pause), Lines(after)]);
        let tid = begun(&output_of(&run, "BEGIN", 1));
        Scene { run, tid, x, y }
    }

    /// What COMMIT printed, less the notice of the crash point firing, which over
    /// processes is sometimes lost (`bug_the_notice_of_a_crash_point_firing_is_sometimes_lost`).
    fn commit(&self) -> Vec<&str> {
        let notice = |line: &&str| line.starts_with("node") && line.contains("  CRASHED at ");
        let printed = output_of(&self.run, "COMMIT", 1);
        printed.into_iter().filter(|line| !notice(line)).collect()
    }

    /// STATUS before the restart (1) or after it (2).
    fn status(&self, nth: usize) -> Vec<&str> {
        output_of(&self.run, "STATUS", nth)
    }

    /// Asserts what is locked before the restart: `x` on node 1 and `y` on node 2 by
    /// the transaction if `held`, else nothing.
    #[track_caller]
    fn locked_before(&self, held: bool) {
        let (x, y, tid) = (&self.x, &self.y, &self.tid);
        let locks = match held {
            true => vec![
                format!("node 1  {x}  held by {tid} (exclusive)"),
                format!("node 2  {y}  held by {tid} (exclusive)"),
            ],
            false => vec!["no locks are held".to_string()],
        };
        said(&self.run, "SHOW LOCKS", 1, &locks);
    }

    /// Asserts the end of the scene: every node up, nothing in doubt, nothing
    /// coordinated, no lock held, and both writes there if `committed`, else neither.
    #[track_caller]
    fn resolved(&self, committed: bool) {
        let status = self.status(2);
        all_up(&status);
        for node in 0..NODES {
            assert_eq!(status_row(&status, node).last(), Some(&"-"), "{status:#?}");
        }
        said(&self.run, "SHOW LOCKS", 2, &["no locks are held"]);
        read_back(&self.run, &self.x, 1, committed.then_some("1"));
        read_back(&self.run, &self.y, 1, committed.then_some("2"));
    }
}

/// The coordinator's process dies with every vote in and no decision logged: both
/// participants stay in doubt, their keys locked, asking node 0; `RESTART node 0`
/// finds no decision, so the transaction aborted (presumed abort), and the locks go.
#[test]
fn a_coordinator_dead_before_deciding_leaves_its_participants_in_doubt_until_restart_aborts() {
    let _one_at_a_time = one_at_a_time();
    let scene = Scene::play("CRASH node 0 AT decide", 0, DEATH_SETTLES);
    let tid = &scene.tid;
    assert!(scene.commit().is_empty(), "{:?}", scene.commit());
    let crashed = format!(
        "coordinator node 0 crashed while committing {tid}; its outcome will be settled by \
         recovery when node 0 restarts"
    );
    assert_eq!(error_at(&scene.run, 5), crashed);
    let before = scene.status(1);
    assert_eq!(state_and_in_doubt(&before, 0).0, "DOWN", "{before:#?}");
    assert!(
        before
            .iter()
            .any(|l| l.starts_with("node 0 is down: its process at ")),
        "{before:#?}"
    );
    for node in [1, 2] {
        let in_doubt = (String::from("up"), format!("{tid} (asks node 0)"));
        assert_eq!(state_and_in_doubt(&before, node), in_doubt, "{before:#?}");
    }
    scene.locked_before(true);
    let restart = output_of(&scene.run, "RESTART node 0", 1);
    assert!(
        restart[0].starts_with("node 0 recovered from "),
        "{restart:#?}"
    );
    scene.resolved(false);
    assert_eq!(failed_lines(&scene.run, 13), [5], "{}", scene.run.stderr);
}

/// The coordinator's process dies with its commit decision on disk and sent to nobody:
/// the participants stay in doubt, locked, until `RESTART node 0` re-sends COMMIT; the
/// writes are then there.
#[test]
fn a_coordinator_dead_after_logging_commit_leaves_its_participants_in_doubt_until_restart_commits()
{
    let _one_at_a_time = one_at_a_time();
    let scene = Scene::play("CRASH node 0 AT decision", 0, DEATH_SETTLES);
    let tid = &scene.tid;
    assert!(scene.commit().is_empty(), "{:?}", scene.commit());
    let crashed = format!("coordinator node 0 crashed while committing {tid}");
    assert!(
        error_at(&scene.run, 5).starts_with(&crashed),
        "{}",
        scene.run.stderr
    );
    let before = scene.status(1);
    assert_eq!(state_and_in_doubt(&before, 0).0, "DOWN", "{before:#?}");
    for node in [1, 2] {
        let in_doubt = (String::from("up"), format!("{tid} (asks node 0)"));
        assert_eq!(state_and_in_doubt(&before, node), in_doubt, "{before:#?}");
    }
    scene.locked_before(true);
    let restart = output_of(&scene.run, "RESTART node 0", 1);
    let resend = format!(
        "node 0: re-sending the commit decision of {tid} to participants that have not \
         acknowledged it"
    );
    assert!(restart.contains(&resend.as_str()), "{restart:#?}");
    scene.resolved(true);
}

/// A participant's process dies with its Prepare on disk and its vote not sent: the
/// coordinator aborts at the vote timeout, and the other participant lets go; the
/// restarted participant finds the transaction in doubt, locks its key again, asks and
/// hears ABORT.
#[test]
fn a_participant_dead_before_voting_is_in_doubt_after_restart_and_learns_abort() {
    let _one_at_a_time = one_at_a_time();
    let scene = Scene::play("CRASH node 1 AT vote", 1, VOTE_TIMEOUT_PASSED);
    let (tid, x) = (&scene.tid, &scene.x);
    let waiting = format!("<waiting: {tid} is committing, and its coordinator has not decided>");
    assert_eq!(scene.commit(), [waiting.as_str()]);
    let timed_out = format!("{tid} aborted: node 1 did not vote within 1s");
    assert_eq!(error_at(&scene.run, 5), timed_out);
    let before = scene.status(1);
    assert_eq!(state_and_in_doubt(&before, 1).0, "DOWN", "{before:#?}");
    assert_eq!(
        state_and_in_doubt(&before, 2),
        ("up".into(), "-".into()),
        "{before:#?}"
    );
    scene.locked_before(false);
    let restart = output_of(&scene.run, "RESTART node 1", 1);
    for line in [
        format!(
            "node 1: {tid} in doubt (prepared, no outcome logged): its keys stay locked while \
             it asks the coordinator"
        ),
        format!("node 1: took the exclusive lock of {x} again for {tid}, before serving anyone"),
        format!(
            "node 1: asks node 0 (its coordinator) and node 2 (the other participant) for the \
             outcome of {tid}"
        ),
    ] {
        assert!(
            restart.contains(&line.as_str()),
            "no {line:?} in {restart:#?}"
        );
    }
    scene.resolved(false);
}

/// A participant's process dies after voting YES, before it logs the COMMIT it was
/// sent: the client hears the commit (the decision is on the coordinator's disk), the
/// coordinator waits for the acknowledgement, and the restarted participant, in doubt,
/// asks, learns COMMIT and redoes the write.
#[test]
fn a_participant_dead_before_logging_commit_is_in_doubt_after_restart_and_learns_commit() {
    let _one_at_a_time = one_at_a_time();
    let scene = Scene::play("CRASH node 1 AT commit", 1, DEATH_SETTLES);
    let tid = &scene.tid;
    assert_eq!(scene.commit(), [format!("{tid} committed on nodes 1, 2")]);
    let before = scene.status(1);
    assert_eq!(state_and_in_doubt(&before, 1).0, "DOWN", "{before:#?}");
    // The coordinator still waits for node 1's acknowledgement.
    assert_eq!(
        status_row(&before, 0).last(),
        Some(&tid.as_str()),
        "{before:#?}"
    );
    scene.locked_before(false);
    let restart = output_of(&scene.run, "RESTART node 1", 1);
    let in_doubt = format!(
        "node 1: {tid} in doubt (prepared, no outcome logged): its keys stay locked while it \
         asks the coordinator"
    );
    assert!(restart.contains(&in_doubt.as_str()), "{restart:#?}");
    scene.resolved(true);
    assert_eq!(scene.run.code, 0, "{}", scene.run.stderr);
}

// ---------------------------------------------------------------------------------
// 3. `kv2pc --connect` to node processes started, and killed, by hand

/// Three `kv2pc node` processes started by hand; a `--connect` shell commits. One is
/// killed with SIGKILL from outside: the next `--connect` shell shows it down at its
/// address and why, refuses `RESTART` (it has no launcher) saying what to do instead,
/// and serves the other nodes. Started again with the same command line, the node
/// recovers, and a third shell finds the committed data and every node up.
#[test]
fn a_node_killed_by_hand_is_down_for_connect_shells_until_it_is_started_again_by_hand() {
    let _one_at_a_time = one_at_a_time();
    let mut nodes = Nodes::start();
    let (k0, k1, k2) = (key_on(0, "k"), key_on(1, "k"), key_on(2, "k"));
    let first = nodes.connect(&format!(
        "BEGIN\nPUT {k0} zero\nPUT {k1} one\nPUT {k2} two\nCOMMIT\n"
    ));
    let tid = begun(&output_of(&first, "BEGIN", 1));
    said(
        &first,
        "COMMIT",
        1,
        &[format!("{tid} committed on nodes 0, 1, 2")],
    );

    nodes.kill(1);
    let one = nodes.addr(1).to_string();
    let second = nodes.connect(&format!(
        "STATUS\nRESTART node 1\nPUT {k1} again\nGET {k0}\n"
    ));
    let status = output_of(&second, "STATUS", 1);
    assert_eq!(state_and_in_doubt(&status, 1).0, "DOWN", "{status:#?}");
    let why = (status.iter())
        .find_map(|line| line.strip_prefix("node 1 is down: "))
        .unwrap_or_else(|| panic!("no reason in {status:#?}"));
    let unreachable = format!(
        "its process at {one} cannot be reached (dialling node 1 at {one}: Connection refused"
    );
    assert!(
        why.starts_with(&unreachable) && why.ends_with("is it running?"),
        "{why}"
    );
    assert_eq!(
        error_at(&second, 2),
        "node 1 runs in a process this shell did not start: start it again with its `kv2pc \
         node` command (the shell reconnects to it by itself)"
    );
    let refused = error_at(&second, 3);
    assert!(
        refused.starts_with(&format!("node 1 is down: its process at {one} ")),
        "{refused}"
    );
    read_back(&second, &k0, 1, Some("zero"));
    assert_eq!((second.code, failed_lines(&second, 4)), (1, vec![2, 3]));

    nodes.spawn(1);
    nodes.wait_ready(1, 2);
    nodes.wait_for(1, "recovered 2 log records", 1);
    let third = nodes.connect(&format!("STATUS\nGET {k0}\nGET {k1}\nGET {k2}\n"));
    assert_eq!(third.code, 0, "{}\n{}", third.stdout, third.stderr);
    all_up(&output_of(&third, "STATUS", 1));
    for (key, value) in [(&k0, "zero"), (&k1, "one"), (&k2, "two")] {
        read_back(&third, key, 1, Some(value));
    }
    assert!(nodes.panics().is_empty(), "{:#?}", nodes.panics());
}

// ---------------------------------------------------------------------------------
// 4. What is not kv2pc, on a node's port

/// A connection to a node's port, driven byte by byte.
struct Raw {
    stream: TcpStream,
    /// This end's address: what the node's log names the connection by.
    local: SocketAddr,
    node: SocketAddr,
}

impl Raw {
    fn dial(addr: &str) -> Raw {
        let node: SocketAddr = addr.parse().expect("an address");
        let stream = TcpStream::connect_timeout(&node, PATIENCE).expect("the node's port");
        stream
            .set_read_timeout(Some(PATIENCE))
            .expect("a read timeout");
        let local = stream.local_addr().expect("a local address");
        Raw {
            stream,
            local,
            node,
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .expect("the node takes the bytes");
    }

    /// Reads the node's hello, which it sends to whatever greets as kv2pc.
    fn answer(&mut self) -> Hello {
        let mut bytes = [0u8; HELLO_LEN];
        self.stream
            .read_exact(&mut bytes)
            .expect("the node's hello");
        Hello::decode(&bytes, self.node).expect("a hello")
    }

    /// Closes this end for writing and reads what the node sends until it closes.
    fn close(&mut self) -> Vec<u8> {
        let _ = self.stream.shutdown(Shutdown::Write);
        let mut rest = Vec::new();
        // A reset (the node closed with bytes of ours unread) also ends the stream.
        let _ = self.stream.read_to_end(&mut rest);
        rest
    }
}

fn client_hello() -> Vec<u8> {
    Hello::new(Role::Client, NODES).encode().to_vec()
}

// The header built here is the payload's length, then its checksum.
const _: () = assert!(FRAME_HEADER_LEN == 8);

/// A frame header announcing `len` bytes with checksum `crc`.
fn header(len: u32, crc: u32) -> Vec<u8> {
    [len.to_le_bytes(), crc.to_le_bytes()].concat()
}

/// `payload` framed with its right length and checksum.
fn framed(payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("a small payload");
    [header(len, crc32fast::hash(payload)), payload.to_vec()].concat()
}

fn encoded(frame: &Frame) -> Vec<u8> {
    let mut bytes = Vec::new();
    encode_frame(frame, &mut bytes).expect("a frame encodes");
    bytes
}

/// A client connection to a node's port, with requests built by hand.
struct RawClient {
    stream: TcpStream,
    reader: FrameReader<BufReader<TcpStream>>,
    next: u64,
}

impl RawClient {
    fn dial(addr: &str) -> RawClient {
        let mut raw = Raw::dial(addr);
        raw.send(&client_hello());
        raw.answer();
        let reading = raw.stream.try_clone().expect("a second handle");
        RawClient {
            reader: FrameReader::new(BufReader::new(reading), raw.node),
            stream: raw.stream,
            next: 1,
        }
    }

    /// Sends `request` and waits for its final reply.
    fn ask(&mut self, request: Request) -> Result<Answer, String> {
        let id = self.next;
        self.next += 1;
        let frame = encoded(&Frame::Request { id, request });
        self.stream
            .write_all(&frame)
            .expect("the node takes the request");
        loop {
            match self.reader.read_frame().expect("a frame") {
                Some(Frame::Reply {
                    id: answered,
                    reply: Reply::Done(done),
                }) if answered == id => return done.map_err(|error| error.to_string()),
                Some(_) => {}
                None => panic!("the node closed the connection"),
            }
        }
    }

    /// Writes `value` to `key`, owned by the node dialled, commits, and reads it back
    /// as the shell's autocommit GET does.
    fn commit_and_read(&mut self, key: &str, value: &str) -> Option<String> {
        let (tid, written) = self.begin_and_write(key, value);
        written.expect("the write");
        let commit = Request::Commit {
            tid,
            participants: vec![owner_of(key, NODES)],
            clock: 0,
        };
        let Ok(Answer::Committed { at, .. }) = self.ask(commit) else {
            panic!("{tid} did not commit");
        };
        let read = Request::SnapshotRead {
            key: key.to_string(),
            at: ReadAt::AtLeast(at),
        };
        match self.ask(read) {
            Ok(Answer::Snapshot { value, .. }) => value,
            other => panic!("GET {key}: {other:?}"),
        }
    }

    /// Begins a transaction and writes `key` in it.
    fn begin_and_write(&mut self, key: &str, value: &str) -> (TxnId, Result<Answer, String>) {
        let tid = match self.ask(Request::Begin { began: 1 }) {
            Ok(Answer::Begun(tid, _)) => tid,
            other => panic!("BEGIN: {other:?}"),
        };
        let write = Request::Write {
            tid,
            key: key.to_string(),
            value: Some(value.to_string()),
            first: true,
            began: 1,
        };
        (tid, self.ask(write))
    }
}

/// One way of speaking to a node's port that is not kv2pc's: what to send first, and
/// whether the node answers it with its hello; what to send after; what the node must
/// log about it.
struct Stranger {
    name: &'static str,
    opening: Vec<u8>,
    answered: bool,
    then: Vec<u8>,
    logged: String,
}

impl Nodes {
    /// Waits for node 0 to log why it closed `raw`'s connection and checks it says
    /// `logged` and that it serves on; then that the process runs, and commits and reads
    /// `probe` for a client of its own.
    fn refused(&mut self, raw: &Raw, logged: &str, probe: &str) {
        let line = self.wait_for(0, &format!("the connection with {}:", raw.local), 1);
        assert!(
            line.starts_with("kv2pc node 0: closed a connection: ")
                && line.contains(logged)
                && line.ends_with("nothing it sent after that was read, and the node serves on"),
            "{line}\nwanted {logged:?}"
        );
        assert!(
            self.is_running(0),
            "node 0 died: {:#?}",
            self.logs[0].lock()
        );
        let key = key_on(0, "probe");
        let read = RawClient::dial(self.addr(0)).commit_and_read(&key, probe);
        assert_eq!(read, Some(probe.to_string()), "after {probe}");
    }
}

/// Bytes that are not kv2pc's, on the port of the node that coordinates `--connect`
/// sessions: not a greeting at all, a hello cut short, a hello of another wire version,
/// cluster size or id, and after a good hello, frames that are truncated, oversized,
/// damaged, undecodable or of the wrong kind; and a hello begun and left hanging. After
/// each, the node's log names the connection and what was wrong, and the process runs
/// on and commits and reads back for a client (one by hand, to leave the shell's
/// settling out, `a_script_line_does_not_fail_when_the_machine_is_busy`); at the end a
/// `--connect` shell commits across two nodes and reads back, and nothing panicked.
#[test]
fn a_node_closes_connections_that_do_not_speak_kv2pc_and_serves_on() {
    let _one_at_a_time = one_at_a_time();
    let mut nodes = Nodes::start();
    // Begun first: refused only at the handshake timeout (2 s), checked last.
    let mut silent = Raw::dial(nodes.addr(0));
    silent.send(&client_hello()[..5]);

    let another_version = Hello {
        version: WIRE_VERSION + 1,
        ..Hello::new(Role::Client, NODES)
    };
    let a_reply = Frame::Reply {
        id: 1,
        reply: Reply::Done(Ok(Answer::Done)),
    };
    let strangers = [
        Stranger {
            name: "http",
            opening: b"GET / HTTP/1.1\r\nHost: node\r\n\r\n".to_vec(),
            answered: false,
            then: Vec::new(),
            logged: "it did not greet as kv2pc does (its first bytes were 47 45 54 20 2f 20 48 \
                     54 = \"GET / HT\"), so it is not a kv2pc node or client"
                .into(),
        },
        Stranger {
            name: "binary",
            opening: [
                [0x16, 0x03, 0x01, 0x00, 0xff, 0x01, 0x00, 0x00],
                [0; 8],
                [0; 8],
            ]
            .concat(),
            answered: false,
            then: Vec::new(),
            logged: "its first bytes were 16 03 01 00 ff 01 00 00), so it is not".into(),
        },
        Stranger {
            name: "half-a-hello",
            opening: client_hello()[..9].to_vec(),
            answered: false,
            then: Vec::new(),
            logged: "it closed the connection 9 bytes into its 17-byte hello".into(),
        },
        Stranger {
            name: "another-version",
            opening: another_version.encode().to_vec(),
            answered: true,
            then: Vec::new(),
            logged: format!(
                "it speaks kv2pc wire version {}, and this process speaks version \
                 {WIRE_VERSION}; run the same kv2pc release on every node and client",
                WIRE_VERSION + 1
            ),
        },
        Stranger {
            name: "five-nodes",
            opening: Hello::new(Role::Client, 5).encode().to_vec(),
            answered: true,
            then: Vec::new(),
            logged: "it belongs to a cluster of 5 nodes, and this one has 3; start every node \
                     with the same --nodes"
                .into(),
        },
        Stranger {
            name: "a-twin",
            opening: Hello::new(Role::Node(0), NODES).encode().to_vec(),
            answered: true,
            then: Vec::new(),
            logged: "it says it is node 0, which is this node's own id: two processes were \
                     started with --id 0"
                .into(),
        },
        Stranger {
            name: "truncated-frame",
            opening: client_hello(),
            answered: true,
            then: [header(100, 0), b"abc".to_vec()].concat(),
            logged: "the connection closed 3 bytes into a 100-byte frame".into(),
        },
        Stranger {
            name: "oversized-frame",
            opening: client_hello(),
            answered: true,
            then: header(u32::MAX, 0),
            logged: "it announced a frame of 4294967295 bytes, more than the 33554432 one \
                     frame may hold"
                .into(),
        },
        Stranger {
            name: "damaged-frame",
            opening: client_hello(),
            answered: true,
            then: [header(11, 0xdead_beef), b"hello, node".to_vec()].concat(),
            logged: "a 11-byte frame arrived damaged: its checksum says deadbeef".into(),
        },
        Stranger {
            name: "undecodable-frame",
            opening: client_hello(),
            answered: true,
            then: framed(b"hello, node"),
            logged: format!("a 11-byte frame is not a kv2pc wire version {WIRE_VERSION} message"),
        },
        Stranger {
            name: "a-reply-from-a-client",
            opening: client_hello(),
            answered: true,
            then: encoded(&a_reply),
            logged: "a client sent a reply, where only requests travel from a client".into(),
        },
    ];
    for stranger in strangers {
        let mut raw = Raw::dial(nodes.addr(0));
        raw.send(&stranger.opening);
        if stranger.answered {
            // Answered before it is judged, so that a dialler refused can read why.
            assert_eq!(
                raw.answer(),
                Hello::new(Role::Node(0), NODES),
                "{}",
                stranger.name
            );
        }
        raw.send(&stranger.then);
        assert!(raw.close().is_empty(), "{}: answered more", stranger.name);
        nodes.refused(&raw, &stranger.logged, stranger.name);
    }

    let went_silent = "it went silent after 5 bytes, where a kv2pc node or client would have \
                       sent its greeting at once";
    nodes.refused(&silent, went_silent, "after-silence");
    nodes.commits_and_reads("after-all-strangers");
    assert!(nodes.panics().is_empty(), "{:#?}", nodes.panics());
}

// ---------------------------------------------------------------------------------
// 5. What cannot work over processes

/// The step queue and the manual clock belong to nodes inside the shell's process:
/// over node processes each such command fails saying why and what to use instead, and
/// the next command runs.
#[test]
fn step_and_tick_are_refused_over_processes_saying_why_and_the_shell_goes_on() {
    let _one_at_a_time = one_at_a_time();
    let k = key_on(1, "k");
    let script = format!(
        "STEP ON\nPUT {k} 1\nTICK 1s\nGET {k}\nSHOW QUEUE\nDELIVER ALL\nNEXT\nDROP 1\n\
         STEP OFF\nPUT {k} 2\nGET {k}\n"
    );
    let run = Launched::new().script(vec![Lines(script)]);
    let step_queue = "cannot run on a cluster of node processes: the step queue holds the \
                      messages of nodes inside the shell's process, but these nodes are \
                      processes that talk over their own sockets. Open the embedded shell \
                      (kv2pc) to use it";
    assert_eq!(error_at(&run, 1), format!("STEP {step_queue}"));
    said(&run, &format!("PUT {k} 1"), 1, &["ok"]);
    assert_eq!(
        error_at(&run, 3),
        "TICK cannot run on a cluster of node processes: node processes run on real time; \
         TICK moves the manual clock of nodes inside the shell's process. Open the embedded \
         shell (kv2pc) to use it"
    );
    read_back(&run, &k, 1, Some("1"));
    for (line, command) in [
        (5, "SHOW QUEUE"),
        (6, "DELIVER"),
        (7, "NEXT"),
        (8, "DROP"),
        (9, "STEP"),
    ] {
        assert_eq!(error_at(&run, line), format!("{command} {step_queue}"));
    }
    read_back(&run, &k, 2, Some("2"));
    assert_eq!(
        failed_lines(&run, 11),
        [1, 3, 5, 6, 7, 8, 9],
        "{}",
        run.stderr
    );
}

// ---------------------------------------------------------------------------------
// 6. `--json` over processes

/// `kv2pc cluster --json` prints one JSON object per command, in order, also for a
/// crash, a node down, a refusal and a restart.
#[test]
fn json_over_processes_is_one_object_per_command() {
    let _one_at_a_time = one_at_a_time();
    let cluster = Launched::new();
    let (k0, k1) = (key_on(0, "k"), key_on(1, "k"));
    let commands = [
        "BEGIN".to_string(),
        format!("PUT {k0} 1"),
        format!("PUT {k1} 2"),
        "COMMIT".into(),
        "CRASH node 1".into(),
        "STATUS".into(),
        format!("GET {k1}"),
        "STEP ON".into(),
        "RESTART node 1".into(),
        format!("GET {k1}"),
    ];
    let (run, _) = cluster.run("--json", vec![Lines(commands.join("\n") + "\n")]);
    let results: Vec<serde_json::Value> = (run.stdout.lines())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}")))
        .collect();
    assert_eq!(results.len(), commands.len(), "{}", run.stdout);
    let failing = [7, 8];
    for (line, (result, command)) in (1..).zip(results.iter().zip(&commands)) {
        assert_eq!(result["command"], command.as_str(), "{result}");
        assert_eq!(result["line"], line, "{result}");
        assert_eq!(result["ok"], !failing.contains(&line), "{result}");
        assert_eq!(
            result["error"].is_null(),
            !failing.contains(&line),
            "{result}"
        );
    }
    let lines = |value: &serde_json::Value| -> Vec<String> {
        let lines = value.as_array().expect("lines").iter();
        lines
            .map(|line| line.as_str().expect("a line").to_string())
            .collect()
    };
    let status = lines(&results[5]["output"]);
    let status: Vec<&str> = status.iter().map(String::as_str).collect();
    assert_eq!(state_and_in_doubt(&status, 1).0, "DOWN", "{status:#?}");
    let down = results[6]["error"].as_str().expect("an error");
    let one = cluster.address(1);
    assert!(
        down.starts_with(&format!("node 1 is down: its process at {one} ")),
        "{down}"
    );
    assert_eq!(lines(&results[9]["output"]), [format!("{k1} = 2")]);
}

// ---------------------------------------------------------------------------------
// Bugs found on the way

/// A crash point fires and the command that ran into it returns before the process is
/// gone: the node thread dies and its client is answered while the process lives on
/// until its main loop next looks, up to 10 ms later, and raises SIGKILL
/// (`cli::node::run`). A `RESTART` right after is refused as "already up", and a
/// `STATUS` right after shows the node DOWN with no reason line. A teacher's script
/// `CRASH node 0 AT decide`, `COMMIT`, `RESTART node 0` fails about half of the runs.
#[test]
fn restart_right_after_a_crash_point_fired_is_not_refused_as_already_up() {
    let _one_at_a_time = one_at_a_time();
    let (x, y) = (key_on(1, "x"), key_on(2, "y"));
    let mut script = String::new();
    for round in 0..4 {
        script += &commit_into("CRASH node 0 AT decide", &x, &y);
        if round % 2 == 1 {
            script += "STATUS\n";
        }
        script += "RESTART node 0\n";
    }
    let run = Launched::new().script(vec![Lines(script)]);
    assert!(!run.stderr.contains("is already up"), "{}", run.stderr);
    for nth in 1..=2 {
        let status = output_of(&run, "STATUS", nth);
        if state_and_in_doubt(&status, 0).0 == "DOWN" {
            let why = status
                .iter()
                .any(|line| line.starts_with("node 0 is down: "));
            assert!(why, "a DOWN row with no reason: {status:#?}");
        }
    }
}

/// The shell prints `node1  CRASHED at commit` when an armed crash point fires in a
/// node's process. Over processes the notice is sometimes lost: it was about one
/// commit in twenty, the node's trace event racing the process's SIGKILL
/// (`cli::node::run`); the process now waits for its node thread to trace the crash
/// and for the event to leave, and settling waits for a dying process to be gone,
/// but about one in ten rounds here still loses it (a guess: the SIGKILL closes a
/// socket with unread requests in it, and the reset drops the event at the shell's
/// end). The user sees the commit and, at the next STATUS, the node down, never why.
#[test]
#[ignore = "bug: the notice of a crash point firing in a node process is sometimes lost"]
fn bug_the_notice_of_a_crash_point_firing_is_sometimes_lost() {
    let _one_at_a_time = one_at_a_time();
    let (x, y) = (key_on(1, "x"), key_on(2, "y"));
    let rounds = 20;
    let mut script = Vec::new();
    for _ in 0..rounds {
        script.push(Lines(commit_into("CRASH node 1 AT commit", &x, &y)));
        script.push(Pause(DEATH_SETTLES));
        script.push(Lines("RESTART node 1\n".into()));
    }
    let run = Launched::new().script(script);
    let notice =
        |nth: &usize| output_of(&run, "COMMIT", *nth).contains(&"node1  CRASHED at commit");
    assert_eq!(
        (1..=rounds).filter(notice).count(),
        rounds,
        "{}",
        run.stdout
    );
}

/// After `CRASH node 1` the first request to the node is told its process "cannot be
/// reached ...; is it running?", where every later one, and STATUS, say it "was
/// killed; RESTART node 1 starts it again": the first is the one a user reads.
#[test]
#[ignore = "bug: the first error after CRASH asks 'is it running?' instead of advising RESTART"]
fn bug_the_first_request_after_crash_is_not_told_to_restart() {
    let _one_at_a_time = one_at_a_time();
    let cluster = Launched::new();
    let k1 = key_on(1, "k");
    let run = cluster.script(vec![Lines(format!("CRASH node 1\nPUT {k1} 1\nGET {k1}\n"))]);
    let one = cluster.address(1);
    let advice =
        format!("node 1 is down: its process at {one} was killed; RESTART node 1 starts it again");
    assert_eq!(error_at(&run, 3), advice);
    assert_eq!(error_at(&run, 2), advice);
}

/// Node 0 takes, locks and commits a write of a key that node 1 owns when a client
/// sends it there: the key is then on the wrong node, where `KEYS` lists it and `GET`
/// (which asks the owner) never finds it. What the network sends is untrusted (the
/// `wire` module doc), but a well-formed request naming another node's key is obeyed.
#[test]
fn a_node_refuses_a_write_of_a_key_it_does_not_own() {
    let _one_at_a_time = one_at_a_time();
    let nodes = Nodes::start();
    let foreign = key_on(1, "foreign");
    let mut client = RawClient::dial(nodes.addr(0));
    let (tid, written) = client.begin_and_write(&foreign, "by hand");
    let commit = Request::Commit {
        tid,
        participants: vec![0],
        clock: 0,
    };
    let committed = client.ask(commit);
    let keys = nodes.connect(&format!("KEYS\nGET {foreign}\n"));
    assert!(
        written.is_err(),
        "node 0 took a write of {foreign}, which node 1 owns: {written:?}, then {committed:?}; \
         then\n{}",
        keys.stdout
    );
}

/// A commit naming node 7 of a three-node cluster is not refused: the coordinator logs
/// a Prepare with "participants 0,7", waits for node 7's vote and aborts at the vote
/// timeout, "node 7 did not vote within 1s". (A BEGIN naming node 9 is refused at
/// once, "there is no node 9".)
#[test]
fn a_commit_naming_a_node_outside_the_cluster_is_refused() {
    let _one_at_a_time = one_at_a_time();
    let nodes = Nodes::start();
    let mut client = RawClient::dial(nodes.addr(0));
    let (tid, written) = client.begin_and_write(&key_on(0, "k"), "by hand");
    written.expect("a write of node 0's key");
    let commit = Request::Commit {
        tid,
        participants: vec![0, 7],
        clock: 0,
    };
    let error = client.ask(commit).expect_err("no node 7 to commit on");
    assert!(error.contains("there is no node 7"), "{error}");
}

/// Eight `kv2pc cluster` runs at once, each on a cluster of its own, of a script of
/// thirty lines: what each printed, and the processes it left running.
fn eight_at_once() -> Vec<(Run, Vec<String>)> {
    let (k0, k1, k2) = (key_on(0, "k"), key_on(1, "k"), key_on(2, "k"));
    let script = format!(
        "BEGIN\nPUT {k0} 0\nPUT {k1} 1\nPUT {k2} 2\nCOMMIT\nGET {k0}\nGET {k1}\nGET {k2}\n\
         PUT {k1} 5\nGET {k1}\n"
    )
    .repeat(3);
    let runs: Vec<JoinHandle<(Run, Vec<String>)>> = (0..8)
        .map(|_| {
            let script = script.clone();
            std::thread::spawn(move || Launched::new().run("--echo", vec![Lines(script)]))
        })
        .collect();
    (runs.into_iter())
        .map(|run| run.join().expect("a cluster's run"))
        .collect()
}

/// With several clusters of processes at once on a two-core machine, a command's
/// result can come after the shell stopped waiting for it (settling over processes
/// asks twice, 2 ms apart, `QUIET_GAP`): the command prints `<waiting for the
/// cluster>`, and the script's next command in that session fails, "session main is
/// still running PUT ...". About one run in twenty-five shows it, so this test does not
/// fail every time while the bug is there.
#[test]
fn a_script_line_does_not_fail_when_the_machine_is_busy() {
    let _one_at_a_time = one_at_a_time();
    for (run, _) in eight_at_once() {
        let clean = run.code == 0 && !run.stdout.contains("<waiting");
        assert!(clean, "{}\n{}", run.stdout, run.stderr);
    }
}

/// `kv2pc cluster` stops its node processes as it exits (the drop of
/// `process::launch::Launch`), but now and then it exits leaving all of them running,
/// holding their ports and data directories. Likely cause: the launcher is owned
/// through the network of the cluster's context (`ctx.net.set_remote(None,
/// processes.clone())`, `cluster::remote`), so it drops only with the last holder of
/// the context, and a thread still holding it when `run_shell` returns outlives the
/// drop. About one run in a hundred, with eight at once, shows it, so this test does
/// not fail every time while the bug is there.
#[test]
fn kv2pc_cluster_never_exits_leaving_its_node_processes_running() {
    let _one_at_a_time = one_at_a_time();
    for _ in 0..10 {
        for (run, left_behind) in eight_at_once() {
            let left = left_behind.join("\n");
            assert!(
                left.is_empty(),
                "left running:\n{left}\nafter printing\n{}",
                run.stdout
            );
        }
    }
}
