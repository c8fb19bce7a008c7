//! The node thread: feeds inputs to a node's state machines and executes their effects.
//!
//! # Group commit, pipelined
//!
//! The thread takes every input waiting in its inbox (up to [`MAX_BATCH`]) and handles
//! them one after another, appending their records to the log buffer. At the end of the
//! batch it writes the buffer to the file and, if a record that others depend on was
//! appended, asks its [`syncer`] thread to fsync it; then it goes straight back to its
//! inbox. What its state machines said is held in the [`outbox`] until the fsync covering
//! what it depends on is done, by the rule described there. So the node thread never
//! waits for the disk: while one fsync runs it handles the next inputs, whose records the
//! next fsync covers together, and requests that need no log write (a read, a buffered
//! write, a new transaction id) are answered at once rather than after someone else's
//! fsync.
//!
//! Nothing that depends on a record leaves before the record is durable; nothing is
//! counted as handled (`Cluster::settle`) while a held item or an fsync is outstanding.
//!
//! # Crashes
//!
//! A crash point is an effect: when the armed one is reached, the thread makes durable
//! what came before it (fsyncing itself) and lets out what that covers, then dies: it
//! answers every client still waiting with "node down", leaves the routing table, stops
//! its syncer, truncates the log to what was fsynced and drops its inbox.
//! `Control::Crash` dies at once, without even that: nothing still held escapes (held
//! answers turn into "node down" too). The "node down" answers count as in flight until
//! the clients take them, like every reply, so `Cluster::settle` returns only once they
//! have woken.

mod outbox;
mod syncer;

use crate::crash::CrashPoint;
use crate::error::Result;
use crate::message::{Answer, Effect, Reply};
use crate::node::{Input, Node};
use crate::router::{Control, Mail, NodeStatus, Shared};
use crate::trace::TraceEvent;
use crate::types::{NodeId, TxnId};
use crate::wal::{Record, Wal};
use crossbeam::channel::{Receiver, Sender, select};
use outbox::{Held, Outbox};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use syncer::{Synced, Syncer};

/// The most inputs handled in one batch.
pub const MAX_BATCH: usize = 512;

/// How long an idle node with acknowledgements waiting for an fsync lingers for more
/// work (whose fsync they can share) before it asks for an fsync for them alone.
const LINGER: Duration = Duration::from_millis(2);

/// How often a node on the real clock checks its timeouts.
const TICK_INTERVAL: Duration = Duration::from_millis(20);

/// How handling an item ended.
#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    /// Died at a crash point or by command.
    Crashed,
    /// Stopped cleanly.
    Stopped,
}

/// What the thread woke up for.
enum Wakeup {
    Mail(Mail),
    Synced(Synced),
    /// Acknowledgements have lingered long enough: fsync for them.
    Linger,
    /// Time to check timeouts.
    Tick,
    /// The cluster is gone.
    Disconnected,
}

/// One node's thread state.
pub struct Runtime {
    id: NodeId,
    node: Node,
    wal: Wal,
    shared: Arc<Shared>,
    inbox: Receiver<Mail>,
    replies: HashMap<u64, Sender<Reply>>,
    next_req: u64,
    armed: Option<CrashPoint>,
    effects: Vec<Effect>,
    outbox: Outbox,
    syncer: Syncer,
    /// The LSN just past the newest barrier record appended: what a message said now
    /// depends on.
    barrier_lsn: u64,
    /// The LSN just past the newest transaction id lease appended.
    lease_lsn: u64,
    /// The newest LSN an fsync was asked for (or done).
    sync_asked: u64,
    /// Requests to the syncer not yet reported, each counted as in flight.
    sync_jobs: usize,
    /// Requests reported in this batch, to count as handled when the batch ends.
    sync_jobs_done: usize,
    /// Whether the detector holds waits from this node.
    reported_waits: bool,
}

impl Runtime {
    /// A runtime for a recovered node, with its syncer thread started.
    pub fn new(
        node: Node,
        wal: Wal,
        shared: Arc<Shared>,
        inbox: Receiver<Mail>,
    ) -> Result<Runtime> {
        let id = node.id();
        Ok(Runtime {
            id,
            node,
            wal,
            shared,
            inbox,
            replies: HashMap::new(),
            next_req: 0,
            armed: None,
            effects: Vec::new(),
            outbox: Outbox::default(),
            syncer: Syncer::start(id)?,
            barrier_lsn: 0,
            lease_lsn: 0,
            sync_asked: 0,
            sync_jobs: 0,
            sync_jobs_done: 0,
            reported_waits: false,
        })
    }

    /// Runs recovery's effects, then serves the inbox until the node crashes or stops.
    pub fn run(mut self, recovery: Vec<Effect>) {
        self.effects = recovery;
        let mut flow = self.execute(0);
        if flow == Flow::Continue {
            flow = self.finish_batch();
        }
        if flow != Flow::Continue {
            self.leave();
        }
        self.shared.handled(1);
        while flow == Flow::Continue {
            flow = self.serve_batch();
        }
        let inbox = self.inbox.clone();
        if flow == Flow::Crashed {
            let _ = self.wal.simulate_crash();
        }
        let dropped = inbox.try_iter().count();
        self.shared.handled(dropped);
    }

    /// Waits for mail (or an fsync done), handles everything waiting, and ends the batch.
    fn serve_batch(&mut self) -> Flow {
        let mut count = 0;
        let mut flow = match self.wait() {
            Wakeup::Mail(mail) => {
                count += 1;
                self.handle(mail)
            }
            Wakeup::Synced(synced) => self.synced(synced),
            Wakeup::Linger => self.ask_sync(),
            Wakeup::Tick => {
                self.shared.begin_work();
                count += 1;
                self.handle(Mail::Input(Input::Tick, 0))
            }
            Wakeup::Disconnected => Flow::Stopped,
        };
        while flow == Flow::Continue {
            if let Ok(synced) = self.syncer.done.try_recv() {
                flow = self.synced(synced);
                continue;
            }
            if count >= MAX_BATCH {
                break;
            }
            let Ok(mail) = self.inbox.try_recv() else {
                break;
            };
            count += 1;
            flow = self.handle(mail);
        }
        if flow == Flow::Continue {
            flow = self.finish_batch();
        }
        if flow != Flow::Continue {
            self.leave();
        }
        self.shared
            .handled(count + std::mem::take(&mut self.sync_jobs_done));
        flow
    }

    /// Blocks until there is something to do.
    fn wait(&self) -> Wakeup {
        let lingering = (self.outbox.durable_wanted()).is_some_and(|lsn| lsn > self.sync_asked);
        let timeout = if lingering {
            Some(LINGER)
        } else if self.shared.clock.is_manual() {
            None
        } else {
            Some(TICK_INTERVAL)
        };
        let on_timeout = if lingering {
            Wakeup::Linger
        } else {
            Wakeup::Tick
        };
        let done = &self.syncer.done;
        match timeout {
            Some(timeout) => select! {
                recv(self.inbox) -> mail => mail.map_or(Wakeup::Disconnected, Wakeup::Mail),
                recv(done) -> synced => synced.map_or(Wakeup::Disconnected, Wakeup::Synced),
                default(timeout) => on_timeout,
            },
            None => select! {
                recv(self.inbox) -> mail => mail.map_or(Wakeup::Disconnected, Wakeup::Mail),
                recv(done) -> synced => synced.map_or(Wakeup::Disconnected, Wakeup::Synced),
            },
        }
    }

    /// The syncer made the log durable through an LSN (or failed to).
    fn synced(&mut self, synced: Synced) -> Flow {
        self.sync_jobs -= synced.requests;
        self.sync_jobs_done += synced.requests;
        match synced.lsn {
            Ok(lsn) => {
                self.wal.note_synced(lsn);
                Flow::Continue
            }
            Err(error) => {
                self.fail(error);
                Flow::Crashed
            }
        }
    }

    /// Leaves the routing table before the batch stops counting as in flight, so that
    /// whoever waits for the cluster to settle sees this node down and its clients awake.
    fn leave(&mut self) {
        self.syncer.stop();
        let reported: usize = self.syncer.done.try_iter().map(|s| s.requests).sum();
        debug_assert!(reported <= self.sync_jobs);
        self.shared.handled(std::mem::take(&mut self.sync_jobs));
        self.answer_down();
        self.shared.detach(self.id);
        self.shared.publish_prepare_floor(self.id, None);
        self.shared.detector.update(self.id, &[]);
    }

    fn handle(&mut self, mail: Mail) -> Flow {
        let settings = self.shared.settings.read().clone();
        let now = self.shared.clock.now();
        match mail {
            Mail::Input(input, depth) => {
                self.node.handle(input, now, &settings, &mut self.effects);
                self.execute(depth)
            }
            Mail::Client(request, reply) => {
                let req = self.next_req;
                self.next_req += 1;
                self.replies.insert(req, reply);
                self.node.handle(
                    Input::Request { req, request },
                    now,
                    &settings,
                    &mut self.effects,
                );
                self.execute(0)
            }
            Mail::Control(control) => self.control(control),
        }
    }

    /// Executes the pending effects in order; stops at an armed crash point.
    fn execute(&mut self, depth: u32) -> Flow {
        let mut effects = std::mem::take(&mut self.effects);
        let mut flow = Flow::Continue;
        let mut current_tid: Option<TxnId> = None;
        for effect in effects.drain(..) {
            match effect {
                Effect::Append(record) => {
                    current_tid = record.tid().or(current_tid);
                    if let Err(error) = self.append(&record, depth) {
                        self.fail(error);
                        flow = Flow::Crashed;
                        break;
                    }
                }
                Effect::Send { to, message } => {
                    current_tid = message.tid().or(current_tid);
                    let held = Held::Send { to, message, depth };
                    self.outbox
                        .hold(self.barrier_lsn, self.wal.synced_lsn(), held);
                }
                Effect::SendDurable { to, message } => {
                    self.shared.begin_work();
                    self.outbox
                        .hold_durable(self.wal.end_lsn(), to, message, depth);
                }
                Effect::Reply { req, reply } => self.hold_reply(req, reply),
                Effect::CrashPoint(point)
                    if self.shared.failpoint.is_some() && self.armed != Some(point) =>
                {
                    self.failpoint(point);
                }
                Effect::CrashPoint(point) if self.armed == Some(point) => {
                    // Leave first, so answers to what goes out now are lost, as they
                    // would be: the node is dead once its last messages leave.
                    self.shared.detach(self.id);
                    flow = match self.sync_now() {
                        Flow::Continue => Flow::Crashed,
                        other => other,
                    };
                    self.shared.tracer.emit(|| TraceEvent::Crash {
                        depth,
                        node: self.id,
                        point: Some(point),
                        tid: current_tid,
                    });
                    break;
                }
                Effect::CrashPoint(_) => {}
            }
        }
        self.effects = effects;
        self.effects.clear();
        flow
    }

    fn append(&mut self, record: &Record, depth: u32) -> Result<()> {
        self.wal.append(record)?;
        if record.barrier() {
            self.barrier_lsn = self.wal.end_lsn();
        }
        if matches!(record, Record::TidLease { .. }) {
            self.lease_lsn = self.wal.end_lsn();
        }
        self.shared.tracer.emit(|| TraceEvent::Log {
            depth,
            node: self.id,
            kind: record.kind(),
            tid: record.tid(),
            forced: record.forced(),
        });
        Ok(())
    }

    /// Holds a reply until what it depends on is durable (see [`outbox`]).
    fn hold_reply(&mut self, req: u64, reply: Reply) {
        let lsn = match &reply {
            // Only the fate of the client's own request: a lock wait, a write buffered,
            // an abort done.
            Reply::Waiting { .. } | Reply::Done(Ok(Answer::Done)) => 0,
            // A transaction id, which must come from a durable lease.
            Reply::Done(Ok(Answer::Begun(_))) => self.lease_lsn,
            // Values read, outcomes: they may reveal any record appended so far.
            Reply::Done(_) => self.barrier_lsn,
        };
        let done = matches!(reply, Reply::Done(_));
        let channel = if done {
            self.replies.remove(&req)
        } else {
            self.replies.get(&req).cloned()
        };
        if let Some(channel) = channel {
            let held = Held::Reply {
                reply: channel,
                message: reply,
            };
            self.outbox.hold(lsn, self.wal.synced_lsn(), held);
        }
    }

    /// Ends a batch: writes its records, asks for the fsync they need, lets out what is
    /// durable, and publishes the node's state.
    fn finish_batch(&mut self) -> Flow {
        if let Err(error) = self.wal.flush(false) {
            self.fail(error);
            return Flow::Crashed;
        }
        // On the manual clock (scripts, transcripts) acknowledgements do not linger for
        // company: their fsync is asked for at once, so the trace is the same every run.
        let mut wanted = self.barrier_lsn;
        if self.shared.clock.is_manual() {
            wanted = wanted.max(self.outbox.durable_wanted().unwrap_or(0));
        }
        if wanted > self.sync_asked.max(self.wal.synced_lsn()) {
            let flow = self.ask_sync();
            if flow != Flow::Continue {
                return flow;
            }
        }
        self.release();
        self.report_waits();
        let floor = self.node.participant().prepare_floor();
        self.shared.publish_prepare_floor(self.id, floor);
        self.maybe_checkpoint()
    }

    /// Asks the syncer to fsync everything written so far.
    fn ask_sync(&mut self) -> Flow {
        let Some(target) = self.wal.sync_target() else {
            return Flow::Continue;
        };
        let lsn = target.lsn;
        self.shared.begin_work();
        self.sync_jobs += 1;
        if !self.syncer.request(target) {
            self.sync_jobs -= 1;
            self.shared.handled(1);
            return self.sync_now();
        }
        self.sync_asked = lsn;
        Flow::Continue
    }

    /// Writes and fsyncs on this thread, then lets out everything held.
    fn sync_now(&mut self) -> Flow {
        if let Err(error) = self.wal.flush(true) {
            self.fail(error);
            return Flow::Crashed;
        }
        self.sync_asked = self.sync_asked.max(self.wal.synced_lsn());
        self.release();
        Flow::Continue
    }

    /// Lets out everything the log is now durable enough for.
    fn release(&mut self) {
        for held in self.outbox.release(self.wal.synced_lsn()) {
            match held {
                Held::Send { to, message, depth } => self.shared.send(self.id, to, message, depth),
                Held::Reply { reply, message } => self.release_reply(reply, message),
                Held::Ack { to, message, depth } => {
                    self.shared.send(self.id, to, message, depth);
                    self.shared.handled(1);
                }
            }
        }
    }

    /// Sends a reply. A reply counts as in flight until the client has taken it
    /// (`Client::call`), so that `Cluster::settle` also waits for clients to wake.
    fn release_reply(&self, reply: Sender<Reply>, message: Reply) {
        self.shared.begin_work();
        if reply.send(message).is_err() {
            self.shared.handled(1);
        }
    }

    /// Dying: tells every client still waiting for an answer (queued for a lock, or
    /// answered but held back) that this node is down; what it said to nodes is lost.
    /// Dropping their channels would wake them too, but unseen by `Cluster::settle`.
    fn answer_down(&mut self) {
        let (held, acks) = self.outbox.drain();
        self.shared.handled(acks);
        let held_answers = held.into_iter().filter_map(|held| match held {
            Held::Reply {
                reply,
                message: Reply::Done(_),
            } => Some(reply),
            // A held `Waiting`'s channel is still in `replies`; messages are lost.
            Held::Reply { .. } | Held::Send { .. } | Held::Ack { .. } => None,
        });
        let waiting: Vec<Sender<Reply>> = held_answers
            .chain(self.replies.drain().map(|(_, reply)| reply))
            .collect();
        for reply in waiting {
            let down = crate::Error::NodeDown {
                node: self.id,
                detail: "it crashed before answering".into(),
            };
            self.release_reply(reply, Reply::Done(Err(down)));
        }
    }

    /// Tells the deadlock detector this node's waits and aborts any victim.
    fn report_waits(&mut self) {
        let has_waiters = self.node.participant().locks().has_waiters();
        if !has_waiters && !self.reported_waits {
            return;
        }
        let detect = self.shared.settings.read().deadlock == crate::config::DeadlockPolicy::Detect;
        let waits = if detect {
            self.node.participant().waits()
        } else {
            Vec::new()
        };
        self.reported_waits = !waits.is_empty();
        for victim in self.shared.detector.update(self.id, &waits) {
            self.shared.tracer.emit(|| TraceEvent::Deadlock {
                depth: 0,
                cycle: victim.cycle.clone(),
                victim: victim.tid,
            });
            let message = crate::message::Message::DeadlockVictim {
                tid: victim.tid,
                cycle: victim.cycle,
            };
            let input = Input::Peer {
                from: self.id,
                message,
            };
            let _ = self.shared.deliver(victim.node, Mail::Input(input, 1));
        }
    }

    fn maybe_checkpoint(&mut self) -> Flow {
        let limit = self.shared.settings.read().checkpoint_bytes;
        if self.wal.size() > limit {
            if let Err(error) = self.wal.checkpoint(&self.node.snapshot()) {
                self.fail(error);
                return Flow::Crashed;
            }
            // The checkpoint synced the log: what waited for it may leave.
            self.release();
        }
        Flow::Continue
    }

    fn control(&mut self, control: Control) -> Flow {
        match control {
            Control::Crash => {
                // Held messages are lost; held answers turn into "node down" in `leave`.
                self.shared.tracer.emit(|| TraceEvent::Crash {
                    depth: 0,
                    node: self.id,
                    point: None,
                    tid: None,
                });
                return Flow::Crashed;
            }
            Control::Arm(point) => self.armed = Some(point),
            Control::Wake => self.reported_waits = true,
            Control::FailNextWrite => self.wal.fail_next_write(),
            Control::Checkpoint(reply) => {
                let result = match self.finish_batch() {
                    Flow::Continue => self.wal.checkpoint(&self.node.snapshot()),
                    _ => Err(crate::Error::NodeDown {
                        node: self.id,
                        detail: "it failed while checkpointing".into(),
                    }),
                };
                let _ = reply.send(result);
                self.release();
            }
            Control::Status(reply) => {
                let _ = reply.send(self.status());
            }
            Control::Locks(reply) => {
                let _ = reply.send(self.node.participant().locks().snapshot());
            }
            Control::Data(reply) => {
                let data = self.node.participant().store().iter();
                let _ = reply.send(data.map(|(k, v)| (k.to_string(), v.to_string())).collect());
            }
            Control::Shutdown => {
                return match self.sync_now() {
                    Flow::Continue => Flow::Stopped,
                    other => other,
                };
            }
        }
        Flow::Continue
    }

    fn status(&self) -> NodeStatus {
        let participant = self.node.participant();
        NodeStatus {
            node: self.id,
            up: true,
            active: participant.active(),
            in_doubt: (participant.in_doubt().into_iter())
                .map(|(tid, prepared)| (tid, prepared.coordinator))
                .collect(),
            coordinating: self.node.coordinator().open_transactions(),
            unacknowledged: self.node.coordinator().decided().keys().copied().collect(),
            keys: participant.store().len(),
            log_bytes: self.wal.size(),
            fsyncs: self.wal.fsyncs(),
            armed: self.armed,
            failure: None,
        }
    }

    /// Records an I/O failure: the node cannot go on without its log, so it dies, and
    /// `STATUS` says why.
    fn fail(&self, error: crate::Error) {
        self.shared.set_failure(self.id, Some(error.to_string()));
    }

    /// `KV2PC_FAILPOINT`: makes durable what precedes the point, then kills the process.
    fn failpoint(&mut self, point: CrashPoint) {
        if self.shared.failpoint == Some((self.id, point)) {
            let _ = self.wal.flush(true);
            eprintln!(
                "kv2pc: fail point node{}:{point} reached; aborting the process",
                self.id
            );
            std::process::abort();
        }
    }
}
