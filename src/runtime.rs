//! The node thread: feeds inputs to a node's state machines and executes their effects.
//!
//! # Group commit
//!
//! The thread takes every input waiting in its inbox (up to [`MAX_BATCH`]) and handles
//! them one after another, appending their records to the log buffer and holding back
//! every message and reply. At the end of the batch it writes the buffer and fsyncs once
//! if any record was forced, and only then releases what it held back. So concurrent
//! transactions share fsyncs, and nothing that depends on a forced record leaves before
//! the record is durable.
//!
//! # Crashes
//!
//! A crash point is an effect: when the armed one is reached, the thread makes durable
//! what came before it (the forced records, and the messages already sent), then dies:
//! it answers every client still waiting with "node down", leaves the routing table,
//! truncates the log to what was fsynced and drops its inbox. `Control::Crash` dies at
//! once, without even that: nothing of the current batch escapes (its held answers turn
//! into "node down" too). The "node down" answers count as in flight until the clients
//! take them, like every reply, so `Cluster::settle` returns only once they have woken.

use crate::crash::CrashPoint;
use crate::error::Result;
use crate::message::{Effect, Reply};
use crate::node::{Input, Node};
use crate::router::{Control, Mail, NodeStatus, Shared};
use crate::trace::TraceEvent;
use crate::types::{NodeId, TxnId};
use crate::wal::Wal;
use crossbeam::channel::{Receiver, RecvTimeoutError, Sender};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The most inputs handled before one group fsync.
pub const MAX_BATCH: usize = 512;

/// How long an idle node with acknowledgements waiting for an fsync lingers for more
/// work (whose fsync they can share) before it syncs for them alone.
const LINGER: Duration = Duration::from_millis(2);

/// How often a node on the real clock checks its timeouts.
const TICK_INTERVAL: Duration = Duration::from_millis(20);

/// A message or reply held back until the batch's fsync.
enum Held {
    Send {
        to: NodeId,
        message: crate::message::Message,
        depth: u32,
    },
    Reply {
        reply: Sender<Reply>,
        message: Reply,
    },
}

/// How handling an item ended.
#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    /// Died at a crash point or by command.
    Crashed,
    /// Stopped cleanly.
    Stopped,
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
    held: Vec<Held>,
    needs_sync: bool,
    /// Messages waiting for the next fsync (acknowledgements of `Commit` records), each
    /// counted as in flight until sent.
    durable: Vec<(NodeId, crate::message::Message, u32)>,
    /// Whether the detector holds waits from this node.
    reported_waits: bool,
}

impl Runtime {
    /// A runtime for a recovered node.
    pub fn new(node: Node, wal: Wal, shared: Arc<Shared>, inbox: Receiver<Mail>) -> Runtime {
        Runtime {
            id: node.id(),
            node,
            wal,
            shared,
            inbox,
            replies: HashMap::new(),
            next_req: 0,
            armed: None,
            effects: Vec::new(),
            held: Vec::new(),
            needs_sync: false,
            durable: Vec::new(),
            reported_waits: false,
        }
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

    /// Waits for mail, handles everything waiting, and group-commits.
    fn serve_batch(&mut self) -> Flow {
        let first = if !self.durable.is_empty() {
            match self.inbox.recv_timeout(LINGER) {
                Ok(mail) => mail,
                Err(RecvTimeoutError::Timeout) => return self.sync_durable(),
                Err(RecvTimeoutError::Disconnected) => return Flow::Stopped,
            }
        } else if self.shared.clock.is_manual() {
            match self.inbox.recv() {
                Ok(mail) => mail,
                Err(_) => return Flow::Stopped,
            }
        } else {
            match self.inbox.recv_timeout(TICK_INTERVAL) {
                Ok(mail) => mail,
                Err(RecvTimeoutError::Timeout) => {
                    self.shared.begin_work();
                    Mail::Input(Input::Tick, 0)
                }
                Err(RecvTimeoutError::Disconnected) => return Flow::Stopped,
            }
        };
        let mut count = 1;
        let mut flow = self.handle(first);
        while flow == Flow::Continue && count < MAX_BATCH {
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
        self.shared.handled(count);
        flow
    }

    /// Leaves the routing table before the batch stops counting as in flight, so that
    /// whoever waits for the cluster to settle sees this node down and its clients awake.
    fn leave(&mut self) {
        self.answer_down();
        let lost = std::mem::take(&mut self.durable).len();
        self.shared.handled(lost);
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
                    self.held.push(Held::Send { to, message, depth });
                }
                Effect::SendDurable { to, message } => {
                    self.shared.begin_work();
                    self.durable.push((to, message, depth));
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
                    self.needs_sync = true;
                    flow = match self.finish_batch() {
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

    fn append(&mut self, record: &crate::wal::Record, depth: u32) -> Result<()> {
        self.wal.append(record)?;
        let forced = record.forced();
        self.needs_sync |= record.barrier();
        self.shared.tracer.emit(|| TraceEvent::Log {
            depth,
            node: self.id,
            kind: record.kind(),
            tid: record.tid(),
            forced,
        });
        Ok(())
    }

    fn hold_reply(&mut self, req: u64, reply: Reply) {
        let done = matches!(reply, Reply::Done(_));
        let channel = if done {
            self.replies.remove(&req)
        } else {
            self.replies.get(&req).cloned()
        };
        if let Some(channel) = channel {
            self.held.push(Held::Reply {
                reply: channel,
                message: reply,
            });
        }
    }

    /// Makes the batch durable, then releases what it held back.
    fn finish_batch(&mut self) -> Flow {
        // On the manual clock (scripts, transcripts) acknowledgements do not linger for
        // company: each batch is synced at once, so the trace is the same every run.
        if !self.durable.is_empty() && self.shared.clock.is_manual() {
            self.needs_sync = true;
        }
        if let Err(error) = self.wal.flush(self.needs_sync) {
            self.fail(error);
            return Flow::Crashed;
        }
        if self.needs_sync {
            self.release_durable();
        }
        self.needs_sync = false;
        for held in std::mem::take(&mut self.held) {
            match held {
                Held::Send { to, message, depth } => self.shared.send(self.id, to, message, depth),
                Held::Reply { reply, message } => self.release_reply(reply, message),
            }
        }
        self.report_waits();
        let floor = self.node.participant().prepare_floor();
        self.shared.publish_prepare_floor(self.id, floor);
        self.maybe_checkpoint()
    }

    /// The node is idle with acknowledgements waiting: fsync now and send them.
    fn sync_durable(&mut self) -> Flow {
        self.needs_sync = true;
        match self.finish_batch() {
            Flow::Continue => Flow::Continue,
            other => {
                self.leave();
                other
            }
        }
    }

    /// Sends the messages that waited for an fsync, which has just happened.
    fn release_durable(&mut self) {
        for (to, message, depth) in std::mem::take(&mut self.durable) {
            self.shared.send(self.id, to, message, depth);
            self.shared.handled(1);
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
    /// answered in a batch that never finished) that this node is down. Dropping their
    /// channels would wake them too, but unseen by `Cluster::settle`.
    fn answer_down(&mut self) {
        let held_answers = (self.held.drain(..)).filter_map(|held| match held {
            Held::Reply {
                reply,
                message: Reply::Done(_),
            } => Some(reply),
            // A held `Waiting`'s channel is still in `replies`; messages are lost.
            Held::Reply { .. } | Held::Send { .. } => None,
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
        if self.wal.size() > limit
            && let Err(error) = self.wal.checkpoint(&self.node.snapshot())
        {
            self.fail(error);
            return Flow::Crashed;
        }
        Flow::Continue
    }

    fn control(&mut self, control: Control) -> Flow {
        match control {
            Control::Crash => {
                // Held messages are lost; held answers turn into "node down" in `leave`.
                self.held.retain(|held| matches!(held, Held::Reply { .. }));
                let lost = std::mem::take(&mut self.durable).len();
                self.shared.handled(lost);
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
                self.needs_sync = true;
                return match self.finish_batch() {
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
