//! The threaded backend: the real cluster of node threads on a manual clock, each
//! transaction's calls on a thread of its own (a call may block on a lock, a vote
//! timeout or an in-doubt participant, and the run must go on meanwhile).
//!
//! After each event it waits until every client thread has its answer or is blocked in
//! the cluster (in the same wait before and after a settle, see [`Blocked`]), and the
//! cluster is settled: the run is then at rest, which makes it deterministic. What it
//! finds that the simulator cannot: races between a node's threads (its outbox, its
//! syncer) and the clients'. A power loss it cannot model is a crash here.

use super::backend::{Backend, Failure, Told};
use super::client::{Blocked, client_thread};
use super::scenario::Event;
use crate::support::{Harness, TICK};
use crossbeam::channel::{Receiver, Sender, TryRecvError, unbounded};
use kv2pc::cluster::KeyLocks;
use kv2pc::sim::{Command, Response};
use kv2pc::{Error, NodeId, TxnId};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The longest a run may wait for its client threads between two events.
const QUIESCE_LIMIT: Duration = Duration::from_secs(20);

/// One transaction's thread.
struct Session {
    /// To its thread, while it runs.
    commands: Option<Sender<Command>>,
    answers: Receiver<kv2pc::Result<Response>>,
    /// Whether its thread is stuck in the cluster.
    blocked: Arc<Blocked>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// A command is under way.
    calling: bool,
}

/// The threaded cluster and its client threads.
pub struct Threaded {
    harness: Harness,
    seed: u64,
    sessions: BTreeMap<usize, Session>,
}

impl Threaded {
    /// A fresh cluster of `nodes` with `settings`, for the run of `seed`.
    pub fn new(seed: u64, nodes: u32, settings: kv2pc::Settings) -> Threaded {
        Threaded {
            harness: Harness::open_with(nodes, settings),
            seed,
            sessions: BTreeMap::new(),
        }
    }

    fn context(&self) -> String {
        format!("seed {}", self.seed)
    }

    /// Takes every answer waiting.
    fn collect(&mut self, told: &mut Vec<Told>) -> Result<bool, Failure> {
        let mut any = false;
        for (txn, session) in &mut self.sessions {
            if !session.calling {
                continue;
            }
            match session.answers.try_recv() {
                Ok(answer) => {
                    session.calling = false;
                    any = true;
                    told.push((*txn, answer));
                }
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => {
                    return Err(format!("the client thread of t{txn} died"));
                }
            }
        }
        Ok(any)
    }
}

impl Backend for Threaded {
    fn set_up(&mut self, keys: &[String]) -> Result<(), Failure> {
        let client = (self.harness.cluster().client(0)).map_err(|e| e.to_string())?;
        let mut txn = client.begin().map_err(|e| format!("setup: {e}"))?;
        for key in keys {
            txn.put(key, &format!("s:{key}"))
                .map_err(|e| format!("setup: {e}"))?;
        }
        txn.commit().map_err(|e| format!("setup: {e}"))?;
        self.harness.settle(&self.context());
        Ok(())
    }

    fn open(&mut self, txn: usize, coordinator: NodeId) {
        let (commands, inbox) = unbounded();
        let (outbox, answers) = unbounded();
        let client = self.harness.cluster().client(coordinator).unwrap();
        let blocked = Arc::new(Blocked::default());
        let observer = blocked.clone();
        let thread = std::thread::spawn(move || client_thread(client, observer, inbox, outbox));
        let session = Session {
            commands: Some(commands),
            answers,
            blocked,
            thread: Some(thread),
            calling: false,
        };
        self.sessions.insert(txn, session);
    }

    fn send(&mut self, txn: usize, command: Command) {
        let session = self.sessions.get_mut(&txn).expect("a session is open");
        session.calling = true;
        let sender = session.commands.as_ref().expect("a thread runs");
        sender.send(command).expect("the client thread is alive");
    }

    fn close(&mut self, txn: usize) {
        if let Some(session) = self.sessions.get_mut(&txn) {
            session.commands = None;
        }
    }

    fn quiesce(&mut self) -> Result<Vec<Told>, Failure> {
        let deadline = Instant::now() + QUIESCE_LIMIT;
        let mut seen: BTreeMap<usize, u64> = BTreeMap::new();
        let mut told = Vec::new();
        loop {
            self.harness.settle(&self.context());
            let answered = self.collect(&mut told)?;
            let waits: BTreeMap<usize, u64> = (self.sessions.iter())
                .filter(|(_, session)| session.calling)
                .map(|(txn, session)| (*txn, session.blocked.state()))
                .collect();
            if waits.is_empty() {
                return Ok(told);
            }
            let stuck = waits
                .iter()
                .all(|(t, state)| state % 2 == 1 && seen.get(t) == Some(state));
            if stuck && !answered {
                return Ok(told);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "client threads of {:?} neither answered nor blocked within \
                     {QUIESCE_LIMIT:?}",
                    waits.keys()
                ));
            }
            if waits.values().any(|state| state % 2 == 0) {
                std::thread::sleep(Duration::from_micros(20));
            }
            seen = waits;
        }
    }

    fn stuck(&self, txn: usize) -> bool {
        (self.sessions.get(&txn)).is_some_and(|s| s.calling && s.blocked.is_blocked())
    }

    fn fault(&mut self, event: &Event) -> Result<String, Failure> {
        if *event == Event::Reopen {
            self.harness.reopen();
            return Ok("ok".into());
        }
        let cluster = self.harness.cluster().clone();
        let did = match event {
            // The threaded cluster's disks are real: a power loss is a crash here.
            Event::Crash { node } | Event::PowerLoss { node } => describe(cluster.crash(*node)),
            Event::Arm { node, point } => describe(cluster.arm_crash(*node, *point)),
            Event::Restart { node } => describe(cluster.restart(*node).map(|_| ())),
            Event::Tick => describe(cluster.tick(TICK)),
            Event::Checkpoint { node } => match cluster.checkpoint(*node) {
                Ok(()) => "ok".into(),
                Err(Error::NodeDown { .. }) => "node down".into(),
                Err(other) => return Err(format!("checkpoint of node {node} failed: {other}")),
            },
            Event::Hold { from, to, label } => describe(cluster.hold_link(*from, *to, label)),
            Event::Release { from, to } => {
                format!("{} held", cluster.release_link(*from, *to))
            }
            other => return Err(format!("{other} is not a fault")),
        };
        Ok(did)
    }

    fn is_up(&self, node: NodeId) -> bool {
        self.harness.cluster().is_up(node)
    }

    fn held_links(&self) -> Vec<(NodeId, NodeId, usize)> {
        self.harness.cluster().held_links()
    }

    fn release_link(&mut self, from: NodeId, to: NodeId) -> usize {
        let count = self.harness.cluster().release_link(from, to);
        self.harness.settle(&self.context());
        count
    }

    fn locks(&self) -> Vec<(NodeId, KeyLocks)> {
        self.harness.cluster().locks()
    }

    fn in_doubt(&self, node: NodeId) -> Vec<(TxnId, NodeId)> {
        let status = self.harness.cluster().status();
        (status.into_iter().nth(node as usize)).map_or_else(Vec::new, |s| s.in_doubt)
    }

    fn recover(&mut self) -> Result<(), Vec<String>> {
        self.harness.recover(&self.context())
    }

    fn data(&self) -> BTreeMap<String, String> {
        self.harness.data()
    }

    fn join(&mut self) -> Result<(), Failure> {
        for (txn, session) in &mut self.sessions {
            session.commands = None;
            if let Some(thread) = session.thread.take() {
                let deadline = Instant::now() + QUIESCE_LIMIT;
                while !thread.is_finished() {
                    if Instant::now() > deadline {
                        return Err(format!("t{txn}'s thread does not end"));
                    }
                    std::thread::sleep(Duration::from_micros(50));
                }
                (thread.join()).map_err(|_| format!("t{txn}'s thread panicked"))?;
            }
        }
        Ok(())
    }
}

/// What a fault or tick did, for the log.
pub fn describe(result: kv2pc::Result<()>) -> String {
    match result {
        Ok(()) => "ok".into(),
        Err(error) => format!("refused: {error}"),
    }
}
