//! The harness of the partition scenarios ([`Partitioned`]): three `kv2pc node`
//! processes spawned by the test with nodes 0 and 1 linked through the proxy, a commit
//! whose partition comes at one of its messages ([`Cut`]), and the checks while cut and
//! after the heal (every session reads one outcome, nothing left in doubt or locked).

use crate::proxy::Partition;
use crate::{CALL_LIMIT, HEAL_LIMIT, Journal, NODES, at_rest, keys_on, poll, settings, tail};
use kv2pc::cluster::NodeStatus;
use kv2pc::message::Message;
use kv2pc::{Cluster, Error, NodeId, TxnId};
use parking_lot::Mutex;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// Three `kv2pc node` processes spawned by the test, nodes 0 and 1 linked through a
/// [`Partition`], and a client handle that reaches each node directly. Dropping it
/// SIGKILLs the processes, stops the proxy and removes the directory.
pub(crate) struct Partitioned {
    test: &'static str,
    cluster: Option<Cluster>,
    pub(crate) partition: Partition,
    children: Mutex<Vec<Child>>,
    logs: Vec<PathBuf>,
    /// Where each node listens.
    addrs: Vec<SocketAddr>,
    pub(crate) journal: Journal,
    _home: TempDir,
}

impl Partitioned {
    /// Starts the processes and the proxy, and connects to the nodes. A node that
    /// could not bind its address (another program took the free port first) is tried
    /// again on new ports, twice at most.
    pub(crate) fn start(test: &'static str, vote_timeout: Duration) -> Partitioned {
        let mut attempt = 1;
        loop {
            let run = Partitioned::spawn(test);
            match run.wait_linked(1) {
                Ok(()) => return run.connect(vote_timeout),
                Err(why) if attempt < 3 && why.contains("in use") => attempt += 1,
                Err(why) => run.fail(&format!("the nodes did not link up: {why}")),
            }
        }
    }

    fn spawn(test: &'static str) -> Partitioned {
        let home = tempfile::tempdir().expect("a temporary directory");
        let addrs: Vec<SocketAddr> = {
            let listeners: Vec<TcpListener> = (0..NODES)
                .map(|_| TcpListener::bind("127.0.0.1:0").expect("a port"))
                .collect();
            listeners.iter().map(|l| l.local_addr().unwrap()).collect()
        };
        let partition = Partition::start(addrs[0], addrs[1]);
        let mut run = Partitioned {
            test,
            cluster: None,
            partition,
            children: Mutex::default(),
            logs: Vec::new(),
            addrs: Vec::new(),
            journal: Journal::new(),
            _home: home,
        };
        for id in 0..NODES as usize {
            let mut peers = addrs.clone();
            match id {
                0 => peers[1] = run.partition.toward_one,
                1 => peers[0] = run.partition.toward_zero,
                _ => {}
            }
            let peers: Vec<String> = peers.iter().map(ToString::to_string).collect();
            let log = run._home.path().join(format!("node{id}.log"));
            let stderr = std::fs::File::create(&log).expect("a log file");
            let child = Command::new(env!("CARGO_BIN_EXE_kv2pc"))
                .args([
                    "node",
                    "--id",
                    &id.to_string(),
                    "--nodes",
                    &NODES.to_string(),
                ])
                .arg("--data-dir")
                .arg(run._home.path().join(format!("n{id}")))
                .args([
                    "--listen",
                    &addrs[id].to_string(),
                    "--peers",
                    &peers.join(","),
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr)
                .spawn()
                .expect("kv2pc node starts");
            run.children.lock().push(child);
            run.logs.push(log);
            run.addrs.push(addrs[id]);
        }
        run
    }

    fn connect(mut self, vote_timeout: Duration) -> Partitioned {
        let run = &mut self;
        let log = run.journal.log();
        let dir = run._home.path().to_path_buf();
        let settings = settings(vote_timeout);
        match Cluster::connect(run.addrs.clone(), settings, None, dir, log) {
            Ok(cluster) => run.cluster = Some(cluster),
            Err(error) => run.fail(&format!("connecting to the nodes: {error}")),
        }
        let up = poll(Duration::from_secs(10), || {
            let down: Vec<NodeId> = (0..NODES).filter(|n| !run.cluster().is_up(*n)).collect();
            down.is_empty()
                .then_some(())
                .ok_or(format!("down: {down:?}"))
        });
        if let Err(why) = up {
            run.fail(&format!("the handle does not reach every node: {why}"));
        }
        self
    }

    fn cluster(&self) -> &Cluster {
        self.cluster.as_ref().expect("the cluster handle")
    }

    /// Waits until every node serves and has logged the connection of its link to each
    /// peer, and nodes 0 and 1 that of their links to each other `times` times (once
    /// more after each cut).
    fn wait_linked(&self, times: usize) -> Result<(), String> {
        poll(Duration::from_secs(20), || {
            for (id, path) in self.logs.iter().enumerate() {
                let text = std::fs::read_to_string(path).unwrap_or_default();
                if let Some(Ok(Some(status))) =
                    self.children.lock().get_mut(id).map(Child::try_wait)
                {
                    // Not worth waiting for: `poll` gives up at once on `Ok`.
                    return Ok(Err(format!("node {id} exited with {status}: {text}")));
                }
                if !text.contains("serving on") {
                    return Err(format!("node {id} does not serve yet"));
                }
                for peer in (0..NODES as usize).filter(|peer| *peer != id) {
                    let line = format!("connected to node {peer} at");
                    let want = if id + peer == 1 { times } else { 1 };
                    if text.matches(&line).count() < want {
                        return Err(format!("node {id} has not linked to node {peer}"));
                    }
                }
            }
            Ok(Ok(()))
        })?
    }

    pub(crate) fn fail(&self, what: &str) -> ! {
        let mut text = format!(
            "{what}\n\nreplay: cargo test --release --test process_bank {}\n\njournal:\n{}\n",
            self.test,
            self.journal.text()
        );
        let (fired, refused) = {
            let state = self.partition.state.lock();
            (state.fired.clone(), state.refused)
        };
        text.push_str(&format!(
            "partition: cut {}, fired {fired:?}, {refused} connections refused while cut\n",
            self.partition.is_cut()
        ));
        for (id, path) in self.logs.iter().enumerate() {
            text.push_str(&format!("\nnode {id}'s log:\n{}\n", tail(path)));
        }
        panic!("{text}")
    }

    /// Runs `call` on a thread of its own and waits for it at most [`CALL_LIMIT`]: a call
    /// that hangs fails the test (its thread returns once the processes are killed).
    fn within<T: Send + 'static>(
        &self,
        what: &str,
        call: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        let (done, result) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(call());
        });
        match result.recv_timeout(CALL_LIMIT) {
            Ok(value) => value,
            Err(_) => self.fail(&format!(
                "{what} did not return within {CALL_LIMIT:?}: a hang"
            )),
        }
    }

    /// Begins a transaction coordinated by node 0 writing `value` to each of `keys`, arms
    /// the partition at `cut`, and starts its commit on a thread of its own; returns once
    /// the partition came, with the commit's answer to wait for and the id.
    pub(crate) fn begin_commit(&self, keys: &[String], value: &str, cut: Cut) -> (Answer, TxnId) {
        let client = self.cluster().client(0).expect("a client");
        let mut txn = client
            .begin()
            .unwrap_or_else(|e| self.fail(&format!("begin: {e}")));
        let tid = txn.id().expect("an eager transaction has its id");
        for key in keys {
            if let Err(error) = txn.put(key, value) {
                self.fail(&format!("{tid}: writing {key}: {error}"));
            }
        }
        let Cut {
            from,
            what,
            hold,
            matches,
        } = cut;
        self.partition
            .arm(from, &format!("{what} of {tid}"), hold, move |m| {
                matches(m, tid)
            });
        self.journal
            .note(format!("{tid} commits, the partition armed at its {what}"));
        let (done, answer) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(txn.commit());
        });
        let fired = poll(CALL_LIMIT, || {
            self.partition.fired().ok_or("not yet".to_string())
        });
        if fired.is_err() {
            self.fail(&format!("{tid}: the partition at its {what} never came"));
        }
        (Answer(answer), tid)
    }

    /// What the commit answered, within [`CALL_LIMIT`] (a commit that hangs fails the
    /// test; its thread returns once the processes are killed).
    pub(crate) fn answer(&self, Answer(answer): Answer, tid: TxnId) -> kv2pc::Result<()> {
        match answer.recv_timeout(CALL_LIMIT) {
            Ok(result) => {
                self.journal
                    .note(format!("{tid}'s commit answered {result:?}"));
                result
            }
            Err(_) => self.fail(&format!(
                "{tid}'s commit did not return within {CALL_LIMIT:?}"
            )),
        }
    }

    /// [`Partitioned::begin_commit`], then its answer.
    pub(crate) fn commit_cut_at(
        &self,
        keys: &[String],
        value: &str,
        cut: Cut,
    ) -> (kv2pc::Result<()>, TxnId) {
        let (answer, tid) = self.begin_commit(keys, value, cut);
        (self.answer(answer, tid), tid)
    }

    /// Node `node`'s status.
    fn status(&self, node: NodeId) -> NodeStatus {
        self.cluster().status().swap_remove(node as usize)
    }

    /// Heals the partition and waits until both links are connected again and the
    /// cluster is at rest; then every session reads `expected` (`None`: not set) for
    /// every key, in a snapshot and under a lock.
    pub(crate) fn heal_and_agree(&self, keys: &[String], expected: Option<&str>) {
        self.partition.heal();
        self.journal.note("healed");
        let cuts = self.partition.state.lock().cuts;
        if let Err(why) = self.wait_linked(1 + cuts) {
            self.fail(&format!(
                "the links did not come back after the heal: {why}"
            ));
        }
        if let Err(why) = poll(HEAL_LIMIT, || at_rest(self.cluster())) {
            self.fail(&format!(
                "not at rest within {HEAL_LIMIT:?} of the heal (a leak, or stuck in \
                 doubt): {why}"
            ));
        }
        for node in 0..NODES {
            let client = self.cluster().client(node).expect("a client");
            let owned = keys.to_vec();
            let reads = self.within("the reads after the heal", move || {
                let mut reads = Vec::new();
                for key in &owned {
                    reads.push(client.get(key).map_err(|e| e.to_string()));
                    let mut txn = client.begin().map_err(|e| e.to_string())?;
                    reads.push(txn.get(key).map_err(|e| e.to_string()));
                    txn.commit().map_err(|e| e.to_string())?;
                }
                Ok::<_, String>(reads)
            });
            let want = Ok(expected.map(str::to_string));
            let reads =
                reads.unwrap_or_else(|e| self.fail(&format!("session on node {node}: {e}")));
            if reads.iter().any(|read| *read != want) {
                self.fail(&format!(
                    "the session on node {node} reads {reads:?} for {keys:?} (a snapshot read \
                     and a locked read of each), not {want:?}: a split outcome"
                ));
            }
        }
        if let Err(why) = at_rest(self.cluster()) {
            self.fail(&format!("the reads left work behind: {why}"));
        }
    }

    /// Checks, for `hold` (at least once), that `check` keeps holding and the partition
    /// stays cut.
    pub(crate) fn while_cut(
        &self,
        hold: Duration,
        what: &str,
        check: impl Fn(&Self) -> Result<(), String>,
    ) {
        let until = Instant::now() + hold;
        loop {
            if !self.partition.is_cut() {
                self.fail("the partition healed by itself");
            }
            if let Err(why) = check(self) {
                self.fail(&format!("while cut, {what}: {why}"));
            }
            if Instant::now() >= until {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Partitioned {
    fn drop(&mut self) {
        drop(self.cluster.take());
        for child in self.children.get_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Where a partition comes: at the first message from node `from` that `matches` the
/// transaction (`what` names it); it cuts the links, or holds what they carry.
pub(crate) struct Cut {
    from: NodeId,
    what: &'static str,
    hold: bool,
    matches: fn(&Message, TxnId) -> bool,
}

impl Cut {
    /// Cut at the message, which is lost with the connections.
    pub(crate) fn at(
        from: NodeId,
        what: &'static str,
        matches: fn(&Message, TxnId) -> bool,
    ) -> Cut {
        let hold = false;
        Cut {
            from,
            what,
            hold,
            matches,
        }
    }

    /// Hold from the message on, connections open, until the heal.
    pub(crate) fn held(self) -> Cut {
        Cut { hold: true, ..self }
    }
}

/// A commit's answer, to come.
pub(crate) struct Answer(std::sync::mpsc::Receiver<kv2pc::Result<()>>);

pub(crate) fn is_prepare(message: &Message, tid: TxnId) -> bool {
    matches!(message, Message::Prepare { tid: t, .. } if *t == tid)
}

pub(crate) fn is_vote(message: &Message, tid: TxnId) -> bool {
    matches!(message, Message::Vote { tid: t, .. } if *t == tid)
}

pub(crate) fn is_commit(message: &Message, tid: TxnId) -> bool {
    matches!(message, Message::Commit { tid: t, .. } if *t == tid)
}

/// Keys for a scenario: one on each of `nodes`.
pub(crate) fn scenario_keys(prefix: &str, nodes: &[NodeId]) -> Vec<String> {
    nodes
        .iter()
        .map(|node| keys_on(*node, &format!("{prefix}/n{node}/"), 1).remove(0))
        .collect()
}

impl Partitioned {
    /// `Ok` if node `node`'s status `holds`, else the status.
    pub(crate) fn status_is(
        &self,
        node: NodeId,
        holds: impl Fn(&NodeStatus) -> bool,
    ) -> Result<(), String> {
        let status = self.status(node);
        match holds(&status) {
            true => Ok(()),
            false => Err(format!("node {node}: {status:?}")),
        }
    }

    /// Fails unless the commit of `tid` was refused: aborted.
    pub(crate) fn expect_aborted(&self, result: &kv2pc::Result<()>, tid: TxnId, why: &str) {
        if !matches!(result, Err(Error::Aborted { .. })) {
            self.fail(&format!(
                "{tid} should abort ({why}), but commit said {result:?}"
            ));
        }
    }

    /// Fails unless the commit of `tid` was acknowledged.
    pub(crate) fn expect_committed(&self, result: &kv2pc::Result<()>, tid: TxnId, why: &str) {
        if let Err(error) = result {
            self.fail(&format!(
                "{tid} should commit ({why}), but commit said {error}"
            ));
        }
    }
}
