//! The node processes of the kill tests: three `kv2pc node` processes started by
//! `Launch` ([`Launched`]), SIGKILLed and restarted by a killer thread beside the
//! clients, and the guard that kills them all on every path before the temporary
//! directory goes. Also the clients' pick of a session on a node that is up.

use crate::{
    CLIENT_LIMIT, Journal, NODES, RESOLVE_LIMIT, at_rest, committed, poll, settings, tail,
};
use kv2pc::cluster::Launcher;
use kv2pc::process::launch::Launch;
use kv2pc::rng::Rng;
use kv2pc::{Client, Cluster, CommitMode, NodeId, Settings};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// Three node processes started by `Launch`, and the test's handle on them. Dropping it
/// SIGKILLs every process (whatever else still holds the launch), then removes the
/// directory.
pub(crate) struct Launched {
    test: &'static str,
    seed: u64,
    kills: u64,
    cluster: Option<Cluster>,
    launch: Arc<Launch>,
    journal: Journal,
    dir: PathBuf,
    _home: TempDir,
}

impl Launched {
    /// Starts the processes and connects to them. A node that could not bind its
    /// address (another program took the free port first) is tried again on new ports,
    /// twice at most.
    pub(crate) fn start(test: &'static str, seed: u64, kills: u64, commit: CommitMode) -> Launched {
        let mut attempt = 1;
        loop {
            let launched = Launched::launch(test, seed, kills);
            match launched.serving() {
                Ok(()) => return launched.connect(commit),
                Err(why) if attempt < 3 && why.contains("in use") => attempt += 1,
                Err(why) => launched.fail(&format!("the nodes did not start: {why}")),
            }
        }
    }

    fn launch(test: &'static str, seed: u64, kills: u64) -> Launched {
        let home = tempfile::tempdir().expect("a temporary directory");
        let dir = home.path().join("cluster");
        let exe = PathBuf::from(env!("CARGO_BIN_EXE_kv2pc"));
        let launch = Arc::new(Launch::start(exe, NODES, &dir, None).expect("the nodes start"));
        Launched {
            test,
            seed,
            kills,
            cluster: None,
            launch,
            journal: Journal::new(),
            dir,
            _home: home,
        }
    }

    /// Waits until every node serves, or one has exited (its log says why).
    fn serving(&self) -> Result<(), String> {
        poll(Duration::from_secs(20), || {
            for node in 0..NODES {
                let path = self.dir.join(format!("process{node}.log"));
                let text = std::fs::read_to_string(path).unwrap_or_default();
                if !self.launch.is_running(node) {
                    // Not worth waiting for: `poll` gives up at once on `Ok`.
                    return Ok(Err(format!("node {node} exited: {text}")));
                }
                if !text.contains("serving on") {
                    return Err(format!("node {node} does not serve yet"));
                }
            }
            Ok(Ok(()))
        })?
    }

    fn connect(mut self, commit: CommitMode) -> Launched {
        let launched = &mut self;
        let launcher: Arc<dyn Launcher> = launched.launch.clone();
        let addrs = launched.launch.addrs().to_vec();
        let log = launched.journal.log();
        // Small checkpoints, so that kills land in checkpoints too.
        let settings = Settings {
            commit,
            checkpoint_bytes: 16 * 1024,
            ..settings(Duration::from_millis(500))
        };
        match Cluster::connect(addrs, settings, Some(launcher), launched.dir.clone(), log) {
            Ok(cluster) => launched.cluster = Some(cluster),
            Err(error) => launched.fail(&format!("connecting to the nodes: {error}")),
        }
        let up = poll(Duration::from_secs(10), || {
            let down: Vec<NodeId> = (0..NODES)
                .filter(|n| !launched.cluster().is_up(*n))
                .collect();
            down.is_empty()
                .then_some(())
                .ok_or(format!("down: {down:?}"))
        });
        if let Err(why) = up {
            launched.fail(&format!("the nodes did not all come up: {why}"));
        }
        self
    }

    pub(crate) fn cluster(&self) -> &Cluster {
        self.cluster.as_ref().expect("the cluster handle")
    }

    /// Kills every process now (clients blocked on them are then told they are down).
    fn kill_all(&self) {
        for node in 0..NODES {
            let _ = self.launch.kill(node);
        }
    }

    /// Fails the test with `what`, the command that replays it, the journal and the
    /// tail of every node's log.
    pub(crate) fn fail(&self, what: &str) -> ! {
        panic!("{}", self.report(what))
    }

    fn report(&self, what: &str) -> String {
        let mut text = format!(
            "{what}\n\nreplay: KV2PC_PROCESS_SEED={} KV2PC_PROCESS_KILLS={} cargo test \
             --release --test process_bank {}\n\njournal:\n{}\n",
            self.seed,
            self.kills,
            self.test,
            self.journal.text()
        );
        for node in 0..NODES {
            let path = self.dir.join(format!("process{node}.log"));
            text.push_str(&format!(
                "\nnode {node}'s log ({}):\n{}\n",
                path.display(),
                tail(&path)
            ));
        }
        text
    }

    /// SIGKILLs a random node every 100-300 ms (one time in five a second one with it)
    /// and starts them again 50-200 ms later, `kills` times or until `stop` says so
    /// (a client ended early); the first error that stops it, if any.
    fn killer(&self, rng: &mut Rng, stop: &dyn Fn() -> bool) -> Option<String> {
        let cluster = self.cluster();
        let pause = |rng: &mut Rng, from: usize, to: usize| {
            let pause = Duration::from_millis((from + rng.below(to - from)) as u64);
            let until = Instant::now() + pause;
            while Instant::now() < until && !stop() {
                std::thread::sleep(Duration::from_millis(5));
            }
        };
        for kill in 1..=self.kills {
            pause(rng, 100, 300);
            if stop() {
                return None;
            }
            let first = rng.below(NODES as usize) as NodeId;
            let mut victims = vec![first];
            if rng.chance(20) {
                victims.push((first + 1 + rng.below(NODES as usize - 1) as NodeId) % NODES);
            }
            for &node in &victims {
                let pid = self.launch.pid(node);
                let crashed = cluster.crash(node);
                let note = format!("kill {kill}: SIGKILL node {node} (pid {pid:?}): {crashed:?}");
                self.journal.note(note);
                if self.launch.is_running(node) {
                    return Some(format!(
                        "kill {kill}: node {node}'s process survived SIGKILL"
                    ));
                }
            }
            pause(rng, 50, 200);
            for &node in &victims {
                let started = Instant::now();
                match cluster.restart(node) {
                    Ok(report) => self.journal.note(format!(
                        "kill {kill}: node {node} restarted in {:?}, {} in doubt",
                        started.elapsed(),
                        report.in_doubt.len()
                    )),
                    Err(error) => {
                        return Some(format!("kill {kill}: restarting node {node}: {error}"));
                    }
                }
            }
        }
        None
    }

    /// Runs `clients` client threads (each `client(number, stop)`) beside the killer,
    /// then stops them, restarts whatever is down and waits until the cluster is at
    /// rest. A client that does not stop in time fails the test (all processes are
    /// killed first, so that it returns).
    pub(crate) fn run_with_kills<R: Send>(
        &self,
        clients: usize,
        client: impl Fn(usize, &AtomicBool) -> R + Sync,
    ) -> Vec<R> {
        let stop = AtomicBool::new(false);
        let mut rng = Rng::new(self.seed);
        let (results, problem) = std::thread::scope(|scope| {
            let (client, stopping) = (&client, &stop);
            let workers: Vec<_> = (0..clients)
                .map(|number| scope.spawn(move || client(number, stopping)))
                .collect();
            let killer = self.killer(&mut rng, &|| workers.iter().any(|w| w.is_finished()));
            stop.store(true, Ordering::SeqCst);
            let deadline = Instant::now() + CLIENT_LIMIT;
            while workers.iter().any(|w| !w.is_finished()) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            let hung = workers.iter().filter(|w| !w.is_finished()).count();
            let mut problem = killer;
            if hung > 0 {
                let status = self.cluster().status();
                let locks = self.cluster().locks();
                problem = Some(format!(
                    "{hung} client threads did not stop within {CLIENT_LIMIT:?} of being \
                     told to (a hang); status {status:#?}; locks {locks:#?}"
                ));
                self.kill_all();
            }
            let results: Vec<R> = workers
                .into_iter()
                .map(|w| {
                    w.join()
                        .unwrap_or_else(|panic| self.fail(&panic_message(&*panic)))
                })
                .collect();
            (results, problem)
        });
        if let Some(problem) = problem {
            self.fail(&problem);
        }
        self.recover();
        results
    }

    /// Starts every node that is down and waits until the cluster is at rest.
    fn recover(&self) {
        let cluster = self.cluster();
        for node in 0..NODES {
            if !self.launch.is_running(node)
                && let Err(error) = cluster.restart(node)
            {
                self.fail(&format!("restarting node {node} after the run: {error}"));
            }
        }
        if let Err(why) = poll(RESOLVE_LIMIT, || at_rest(cluster)) {
            self.fail(&format!(
                "the cluster did not come to rest within {RESOLVE_LIMIT:?} of every process \
                 being up: {why}"
            ));
        }
    }

    pub(crate) fn data(&self) -> BTreeMap<String, String> {
        committed(self.cluster()).unwrap_or_else(|why| self.fail(&why))
    }
}

impl Drop for Launched {
    fn drop(&mut self) {
        drop(self.cluster.take());
        self.kill_all();
    }
}

/// What a client thread's panic said.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let text = (panic.downcast_ref::<String>().cloned())
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(no message)".into());
    format!("a client thread panicked: {text}")
}

/// A client session on a random node that is up (a coordinator that is down cannot
/// begin anything), or `None` after a short pause if none is.
pub(crate) fn session(clients: &[Client], cluster: &Cluster, rng: &mut Rng) -> Option<Client> {
    let first = rng.below(clients.len());
    let found = (0..clients.len())
        .map(|i| &clients[(first + i) % clients.len()])
        .find(|client| cluster.is_up(client.coordinator()))
        .cloned();
    if found.is_none() {
        std::thread::sleep(Duration::from_millis(10));
    }
    found
}
