//! What the tests share: running `kv2pc` (a `kv2pc cluster` or a `--connect` shell) in a
//! process group of its own, bounded by [`PATIENCE`] and killed if it overstays; reading
//! what a run printed (a command's output, its errors, STATUS rows); and `kv2pc node`
//! processes started by the test, each killed when its guard drops.

use crate::binary::Run;
use kv2pc::types::owner_of;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use parking_lot::{Mutex, MutexGuard};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The longest any one wait may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(20);

pub const NODES: u32 = 3;

/// Long enough for a process that died at a crash point to be gone as the shell sees
/// it (see `restart_right_after_a_crash_point_fired_is_not_refused_as_already_up`).
pub const DEATH_SETTLES: Duration = Duration::from_millis(300);

/// Past the default vote timeout (1 s), with room for a loaded machine.
pub const VOTE_TIMEOUT_PASSED: Duration = Duration::from_millis(2500);

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Taken by every test for its whole run, so that the tests run one at a time. Over
/// processes the shell settles by asking every node twice, 2 ms apart, whether it is
/// quiet (`cluster::remote`, `QUIET_GAP`); with several clusters at once on two cores a
/// message can take longer than that, and a command's result then comes after the
/// shell stopped waiting for it, failing the script's next command (see
/// `a_script_line_does_not_fail_when_the_machine_is_busy`).
pub fn one_at_a_time() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock()
}

// ---------------------------------------------------------------------------------
// Running the binary

/// What is fed to the shell's standard input: lines, or a pause of real time.
pub enum Feed {
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
pub struct Launched {
    home: TempDir,
}

impl Launched {
    pub fn new() -> Launched {
        Launched {
            home: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    /// Where the launcher keeps the nodes' data and their logs of events.
    pub fn dir(&self) -> PathBuf {
        self.home.path().join("cluster")
    }

    /// Runs `script` on the cluster with `option` (`--echo` or `--json`); gives also
    /// the processes it left running.
    pub fn run(&self, option: &str, script: Vec<Feed>) -> (Run, Vec<String>) {
        let dir = self.dir().display().to_string();
        let args = ["cluster", "--nodes", "3", "--data-dir", &dir, option];
        run(self.home.path(), &args, script)
    }

    /// Runs `script` on the cluster with `--echo`.
    pub fn script(&self, script: Vec<Feed>) -> Run {
        let (run, left_behind) = self.run("--echo", script);
        if !left_behind.is_empty() {
            // A known bug, shown by its own test: not this test's business.
            eprintln!("left running (and killed): {left_behind:#?}");
        }
        run
    }

    /// The address node `node` served on, as its log of events says.
    pub fn address(&self, node: u32) -> String {
        let log = self.log(node);
        let marker = format!("kv2pc node {node} of {NODES}: serving on ");
        log.lines()
            .find_map(|line| line.strip_prefix(&marker))
            .and_then(|rest| rest.split(',').next())
            .unwrap_or_else(|| panic!("no {marker:?} in {log}"))
            .to_string()
    }

    /// Node `node`'s log of events, over all its processes.
    pub fn log(&self, node: u32) -> String {
        let path = self.dir().join(format!("process{node}.log"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }
}

// ---------------------------------------------------------------------------------
// Reading what a run printed

/// The lines `--echo` printed after the `nth` (from 1) `> COMMAND`, up to the next.
pub fn output_of<'a>(run: &'a Run, command: &str, nth: usize) -> Vec<&'a str> {
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
pub fn said(run: &Run, command: &str, nth: usize, expected: &[impl AsRef<str>]) {
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
pub fn read_back(run: &Run, key: &str, nth: usize, value: Option<&str>) {
    let expected = match value {
        Some(value) => format!("{key} = {value}"),
        None => format!("{key} is not set"),
    };
    said(run, &format!("GET {key}"), nth, &[expected]);
}

/// What standard error says of line `line` of the script, after `<stdin>:N: error: `.
pub fn error_at(run: &Run, line: usize) -> &str {
    let prefix = format!("<stdin>:{line}: error: ");
    run.stderr
        .lines()
        .find_map(|text| text.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no error for line {line} in\n{}", run.stderr))
}

/// The lines of the script, up to `last`, that standard error says failed.
pub fn failed_lines(run: &Run, last: usize) -> Vec<usize> {
    let failed =
        |line: &usize| (run.stderr.lines()).any(|t| t.starts_with(&format!("<stdin>:{line}: ")));
    (1..=last).filter(failed).collect()
}

/// The row of node `node` in a STATUS table, as its columns.
pub fn status_row<'a>(status: &[&'a str], node: u32) -> Vec<&'a str> {
    let node = node.to_string();
    (status.iter())
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|columns| columns.first() == Some(&node.as_str()))
        .unwrap_or_else(|| panic!("no row for node {node} in {status:#?}"))
}

/// A STATUS row's state and in-doubt columns: `("up", "-")`, `("up", "T1 (asks node
/// 0)")`, `("DOWN", "-")`.
pub fn state_and_in_doubt(status: &[&str], node: u32) -> (String, String) {
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
pub fn all_up(status: &[&str]) {
    for node in 0..NODES {
        let (state, in_doubt) = state_and_in_doubt(status, node);
        assert!(state == "up" && in_doubt == "-", "{status:#?}");
    }
    assert!(!status.iter().any(|l| l.contains("is down")), "{status:#?}");
}

/// The transaction a `BEGIN`'s output names: `T1` of `T1 started: ...`.
pub fn begun(lines: &[&str]) -> String {
    (lines.iter())
        .find_map(|line| line.split_once(" started: "))
        .map(|(tid, _)| tid.to_string())
        .unwrap_or_else(|| panic!("no transaction started in {lines:?}"))
}

/// The first key named `{prefix}N` that node `node` of a three-node cluster owns.
pub fn key_on(node: u32, prefix: &str) -> String {
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
pub struct Nodes {
    home: TempDir,
    peers: Vec<String>,
    children: Vec<Option<NodeChild>>,
    /// Each node's standard error, over all its processes so far.
    pub logs: Vec<Arc<Mutex<Vec<String>>>>,
}

impl Nodes {
    /// Starts the three and waits until each serves and is linked to the other two.
    pub fn start() -> Nodes {
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

    pub fn addr(&self, node: u32) -> &str {
        &self.peers[node as usize]
    }

    /// Starts node `node`'s process, always with the same command line.
    pub fn spawn(&mut self, node: u32) {
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
    pub fn kill(&mut self, node: u32) {
        let mut child = (self.children[node as usize].take()).expect("the node runs");
        child.0.kill().expect("SIGKILL");
        child.0.wait().expect("the killed node is reaped");
    }

    pub fn is_running(&mut self, node: u32) -> bool {
        let child = self.children[node as usize].as_mut();
        child.is_some_and(|child| matches!(child.0.try_wait(), Ok(None)))
    }

    /// Waits until node `node`'s `incarnation`th process serves, and until it and each
    /// peer have said so many times that they connected to the other.
    pub fn wait_ready(&self, node: u32, incarnation: usize) {
        self.wait_for(node, "serving on", incarnation);
        for peer in (0..NODES).filter(|peer| *peer != node) {
            self.wait_for(node, &format!("connected to node {peer} at"), incarnation);
            self.wait_for(peer, &format!("connected to node {node} at"), incarnation);
        }
    }

    /// Waits until `text` is in at least `count` lines of node `node`'s log; gives the
    /// last of them.
    pub fn wait_for(&self, node: u32, text: &str, count: usize) -> String {
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
    pub fn panics(&self) -> Vec<String> {
        (self.logs.iter())
            .flat_map(|lines| lines.lock().clone())
            .filter(|line| line.contains("panicked"))
            .collect()
    }

    /// Runs `script` with `--echo` in `kv2pc --connect` to the three.
    pub fn connect(&self, script: &str) -> Run {
        let peers = self.peers.join(",");
        let args = ["--connect", &peers, "--echo"];
        let (run, _) = run(self.home.path(), &args, vec![Lines(script.into())]);
        run
    }

    /// Through `kv2pc --connect`, commits `value` to a key on node 0 and one on node 1
    /// and reads both back.
    pub fn commits_and_reads(&self, value: &str) {
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
