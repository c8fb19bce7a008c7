//! The node thread: feeds inputs to a node's state machines and executes their effects.
//!
//! # Group commit, pipelined
//!
//! The thread takes every input waiting in its inbox (up to [`MAX_BATCH`]) and handles
//! them one after another, appending their records to the log buffer. At the end of the
//! batch it writes the buffer to the file and, if a record that others depend on was
//! appended, asks its `syncer` thread to fsync it; then it goes straight back to its
//! inbox. What its state machines said is held in the `outbox` until the fsync covering
//! what it depends on is done, by the rules described there. So under load the node
//! thread does not wait for the disk: while one fsync runs it handles the next inputs,
//! whose records the next fsync covers together, and requests that depend on no pending
//! record (a buffered write, a new transaction id, a read of data already durable) are
//! answered at once rather than after someone else's fsync. When nothing else is
//! waiting or coming (see [`Runtime`]'s `finish_batch`: no mail waiting, no fsync
//! running, at most one client of this cluster waiting, by the net's count), it fsyncs
//! itself instead, which saves the hand-over.
//!
//! Nothing that depends on a record leaves before the record is durable. Every held
//! item and fsync request owns its own work token (see `net`), and the tokens of a
//! batch's mail end only after the batch has ended, so `Cluster::settle` sees the work
//! in flight until every effect of it is out.
//!
//! # Crashes
//!
//! A crash point is an effect: when the armed one is reached, the thread makes durable
//! what came before it (fsyncing itself) and lets out what that covers, then dies: it
//! answers every client still waiting with "node down", leaves the network, stops
//! its syncer, truncates the log to what was fsynced and drops its inbox.
//! `Control::Crash` dies at once, without even that: nothing still held escapes (held
//! answers turn into "node down" too). The "node down" answers count as in flight until
//! the clients take them, like every reply, so `Cluster::settle` returns only once they
//! have woken.
//!
//! # Panics
//!
//! A bug that panics in the middle of a batch must not hang the cluster: each batch
//! runs under `catch_unwind`, and a panic is handled as a crash on an error. The node
//! records "it panicked: <message>" as its failure (`STATUS` shows it), answers its
//! waiting clients "node down", leaves the network (requests to it are told it panicked
//! and to RESTART it), drops its tokens, and its log is cut to what was fsynced, as
//! after any crash. Its state is not trusted further: RESTART recovers it from the log.

mod control;
mod outbox;
mod syncer;
pub(crate) mod visible;

use crate::context::Context;
use crate::crash::CrashPoint;
use crate::error::Result;
use crate::message::{Answer, Effect, Reply};
use crate::net::ReplySender;
use crate::net::{Envelope, Label, Mail, Stamp, What, Work};
use crate::node::{Input, Node};
use crate::trace::TraceEvent;
use crate::types::{NodeId, TxnId};
use crate::wal::{Record, Wal};
use crossbeam::channel::{Receiver, RecvTimeoutError};
use outbox::Held;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use syncer::Syncer;
use visible::{Reads, Visibility};

/// The most inputs handled in one batch.
pub const MAX_BATCH: usize = 512;

/// How long acknowledgements (and a parallel commit's COMMITs) waiting for an fsync
/// linger for more work, whose fsync they can share, before the node asks for an fsync
/// for them alone: counted from when they began to wait, so that a node kept busy by
/// mail that forces nothing still asks within this time.
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
    Mail(Envelope),
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
    ctx: Arc<Context>,
    inbox: Receiver<Envelope>,
    replies: HashMap<u64, ReplySender>,
    next_req: u64,
    armed: Option<CrashPoint>,
    effects: Vec<Effect>,
    /// The syncer thread, and the outbox it shares with this one.
    syncer: Syncer,
    /// The LSN just past the newest barrier record appended: what a message said now
    /// depends on.
    barrier_lsn: u64,
    /// The LSN just past the newest transaction id lease appended.
    lease_lsn: u64,
    /// Which unsynced record made each key's value visible (see `visible`).
    visible: Visibility,
    /// Whether this batch sent a message to this node itself (see `serve_batch`).
    sent_home: bool,
    /// Since when acknowledgements (and a parallel commit's COMMITs) have waited for an
    /// fsync that nothing has asked for yet (see [`LINGER`]).
    lingering: Option<Instant>,
    /// What each client request in progress reads, to tag its answer (see `visible`).
    reads: HashMap<u64, Reads>,
    /// The newest LSN an fsync was asked for (or done).
    sync_asked: u64,
    /// In step mode, the records appended since the last fsync queued, as `Prepare T4`.
    unsynced: Vec<String>,
}

impl Runtime {
    /// A runtime for a recovered node, with its syncer thread started.
    pub fn new(
        node: Node,
        wal: Wal,
        ctx: Arc<Context>,
        inbox: Receiver<Envelope>,
    ) -> Result<Runtime> {
        let id = node.id();
        Ok(Runtime {
            id,
            node,
            wal,
            syncer: Syncer::start(id, ctx.clone())?,
            ctx,
            inbox,
            replies: HashMap::new(),
            next_req: 0,
            armed: None,
            effects: Vec::new(),
            barrier_lsn: 0,
            lease_lsn: 0,
            visible: Visibility::default(),
            sent_home: false,
            lingering: None,
            reads: HashMap::new(),
            sync_asked: 0,
            unsynced: Vec::new(),
        })
    }

    /// Runs recovery's effects (the work `recovering`), then serves the inbox until the
    /// node crashes or stops.
    pub fn run(mut self, recovery: Vec<Effect>, recovering: Work) {
        // The tokens of the work being handled: they end only once what it caused holds
        // tokens of its own, and they live outside the batch, so a panic in it cannot
        // end them before the node has left the network.
        let mut handled = vec![recovering];
        self.effects = recovery;
        let mut flow = self.guarded(&mut handled, Runtime::recover);
        handled.clear();
        while flow == Flow::Continue {
            flow = self.guarded(&mut handled, Runtime::serve_batch);
            handled.clear();
        }
        let inbox = self.inbox.clone();
        if flow == Flow::Crashed {
            self.wal.note_synced(self.syncer.durability.synced());
            let _ = self.wal.simulate_crash();
        }
        let (id, ctx) = (self.id, self.ctx.clone());
        for envelope in inbox.try_iter() {
            drop_mail(id, &ctx, envelope);
        }
    }

    /// Executes recovery's effects and ends that first batch; leaves the network if the
    /// node died doing so.
    fn recover(&mut self, _: &mut Vec<Work>) -> Flow {
        let mut flow = self.execute(0);
        if flow == Flow::Continue {
            flow = self.finish_batch();
        }
        if flow != Flow::Continue {
            self.leave();
        }
        flow
    }

    /// Waits for mail, handles everything waiting, and ends the batch; the tokens of
    /// the mail taken go to `handled`, for the caller to end.
    fn serve_batch(&mut self, handled: &mut Vec<Work>) -> Flow {
        let mut count = 0;
        self.sent_home = false;
        let mut flow = match self.wait() {
            Wakeup::Mail(envelope) => {
                count += 1;
                handled.push(envelope.work);
                self.handle(envelope.mail)
            }
            Wakeup::Linger => self.ask_sync(),
            Wakeup::Tick => {
                handled.push(self.ctx.net.work(Label::on(What::Message, self.id)));
                count += 1;
                self.handle(Mail::Input(Input::Tick, 0))
            }
            Wakeup::Disconnected => Flow::Stopped,
        };
        flow = self.drain(flow, &mut count, handled);
        // What the batch sent to this node itself (a coordinator's PREPARE to itself as
        // a participant) joins the batch, so that its records share the batch's fsync
        // (with parallel commits, the Prepare and the `Staged` record). Only on the real
        // clock: with the manual one, scripts and transcripts keep one batch per mail.
        let manual = self.ctx.clock.is_manual() || self.ctx.net.steps.is_on();
        if flow == Flow::Continue && std::mem::take(&mut self.sent_home) && !manual {
            self.release();
            flow = self.drain(flow, &mut count, handled);
        }
        if let Some(error) = self.syncer.take_failure() {
            self.fail(error);
            flow = Flow::Crashed;
        }
        if flow == Flow::Continue {
            flow = self.finish_batch();
        }
        if flow != Flow::Continue {
            self.leave();
        }
        flow
    }

    /// Handles the mail waiting in the inbox, up to [`MAX_BATCH`] in the batch, while
    /// `flow` continues.
    fn drain(&mut self, mut flow: Flow, count: &mut usize, handled: &mut Vec<Work>) -> Flow {
        while flow == Flow::Continue && *count < MAX_BATCH {
            let Ok(envelope) = self.inbox.try_recv() else {
                break;
            };
            *count += 1;
            handled.push(envelope.work);
            flow = self.handle(envelope.mail);
        }
        flow
    }

    /// Blocks until there is something to do.
    fn wait(&self) -> Wakeup {
        let durable_wanted = self.syncer.durability.outbox.lock().durable_wanted();
        let wanted = durable_wanted.unwrap_or(0);
        if wanted > self.sync_asked.max(self.wal.synced_lsn()) {
            // The linger counts from when they began to wait, not from this wait: mail
            // that forces nothing, however steady, does not hold them back for longer.
            let since = self.lingering.unwrap_or_else(Instant::now);
            let left = LINGER.saturating_sub(since.elapsed());
            return match self.inbox.recv_timeout(left) {
                Ok(mail) => Wakeup::Mail(mail),
                Err(RecvTimeoutError::Timeout) => Wakeup::Linger,
                Err(RecvTimeoutError::Disconnected) => Wakeup::Disconnected,
            };
        }
        if self.ctx.clock.is_manual() {
            return self.inbox.recv().map_or(Wakeup::Disconnected, Wakeup::Mail);
        }
        match self.inbox.recv_timeout(TICK_INTERVAL) {
            Ok(mail) => Wakeup::Mail(mail),
            Err(RecvTimeoutError::Timeout) => Wakeup::Tick,
            Err(RecvTimeoutError::Disconnected) => Wakeup::Disconnected,
        }
    }

    /// Leaves the network before the batch's work ends, so that whoever waits for the
    /// cluster to settle sees this node down and its clients awake. It is unreachable
    /// before its clients are told: a client told "node down" that calls it again (the
    /// abort a failed operation sends its coordinator) is refused at once, instead of
    /// waiting in the inbox of a node that is leaving.
    fn leave(&mut self) {
        self.syncer.stop();
        self.ctx.net.detach(self.id);
        self.answer_down();
    }

    fn handle(&mut self, mail: Mail) -> Flow {
        let settings = self.ctx.settings.read().clone();
        let now = self.ctx.clock.now();
        match mail {
            Mail::Input(input, depth) => {
                self.node.handle(input, now, &settings, &mut self.effects);
                self.execute(depth)
            }
            Mail::Client(request, reply) => {
                let req = self.next_req;
                self.next_req += 1;
                self.replies.insert(req, reply);
                if let Some(reads) = Reads::of(&request) {
                    self.reads.insert(req, reads);
                }
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
        let mistake = self.ctx.settings.read().mistake;
        for effect in effects.drain(..) {
            match effect {
                Effect::Append(ref record) | Effect::AppendNoBarrier(ref record) => {
                    current_tid = record.tid().or(current_tid);
                    let barrier = matches!(effect, Effect::Append(_)) && record.barrier();
                    if let Err(error) = self.append(record, barrier, depth) {
                        self.fail(error);
                        flow = Flow::Crashed;
                        break;
                    }
                }
                Effect::Send { to, message } => {
                    current_tid = message.tid().or(current_tid);
                    self.sent_home |= to == self.id;
                    let work = self.ctx.net.work(Label::on(What::Message, to));
                    let clock = self.node.clock();
                    // Teaching mistake (vote-before-fsync, commit-before-decision-fsync),
                    // never the default: the message waits for no fsync (see `outbox`).
                    let lsn = if message.skips_fsync(mistake) {
                        0
                    } else {
                        self.barrier_lsn
                    };
                    let held = Held::Send {
                        to,
                        message,
                        stamp: Stamp { clock, depth },
                        work,
                    };
                    self.hold(lsn, held);
                }
                Effect::SendDurable { to, message } => {
                    let mut work = self.ctx.net.work(Label::on(What::Message, to));
                    if self.ctx.net.steps.is_on() {
                        work.park();
                    }
                    let mut outbox = self.syncer.durability.outbox.lock();
                    let stamp = Stamp {
                        clock: self.node.clock(),
                        depth,
                    };
                    outbox.hold_durable(self.wal.end_lsn(), to, message, stamp, work);
                }
                Effect::Reply { req, reply } => self.hold_reply(req, reply),
                Effect::VictimAborted { tid, cycle } => {
                    self.ctx.net.tracer.emit(|| TraceEvent::Deadlock {
                        depth: 0,
                        cycle,
                        victim: tid,
                    });
                }
                Effect::Narrate(text) => {
                    let node = self.id;
                    (self.ctx.net.tracer).emit(|| TraceEvent::Narrate { depth, node, text });
                }
                Effect::Forward { req, to, request } => {
                    self.reads.remove(&req);
                    if let Some(reply) = self.replies.remove(&req) {
                        let work = self.ctx.net.work(Label::on(What::Request, to));
                        let held = Held::Forward {
                            to,
                            request,
                            reply,
                            work,
                        };
                        self.hold(self.lease_lsn, held);
                    }
                }
                Effect::CrashPoint(point)
                    if self.ctx.failpoint.is_some() && self.armed != Some(point) =>
                {
                    self.failpoint(point);
                }
                Effect::CrashPoint(point) if self.armed == Some(point) => {
                    // Leave first, so answers to what goes out now are lost, as they
                    // would be: the node is dead once its last messages leave.
                    self.ctx.net.detach(self.id);
                    flow = match self.sync_now() {
                        Flow::Continue => Flow::Crashed,
                        other => other,
                    };
                    self.ctx.net.tracer.emit(|| TraceEvent::Crash {
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

    /// Appends `record`; a `barrier` holds back everything said after it until it is
    /// durable (see `outbox`).
    fn append(&mut self, record: &Record, barrier: bool, depth: u32) -> Result<()> {
        self.wal.append(record)?;
        if barrier {
            self.barrier_lsn = self.wal.end_lsn();
        }
        if let Record::TidLease { .. } = record {
            self.lease_lsn = self.wal.end_lsn();
        }
        self.visible.appended(record, self.wal.end_lsn());
        if self.ctx.net.steps.is_on() {
            self.unsynced.push(match record.tid() {
                Some(tid) => format!("{} {tid}", record.kind()),
                None => record.kind().to_string(),
            });
        }
        self.ctx.net.tracer.emit(|| TraceEvent::Log {
            depth,
            node: self.id,
            kind: record.kind(),
            tid: record.tid(),
            forced: record.forced(),
        });
        Ok(())
    }

    /// Holds a reply until what it depends on is durable (see `outbox`).
    fn hold_reply(&mut self, req: u64, reply: Reply) {
        let lsn = match &reply {
            // Only the fate of the client's own request: a lock wait, a write buffered,
            // an abort done.
            Reply::Waiting { .. } | Reply::Done(Ok(Answer::Done)) => 0,
            // A transaction id, which must come from a durable lease.
            Reply::Done(Ok(Answer::Begun(..))) | Reply::Begun(..) => self.lease_lsn,
            // A value read: under a lock, at once (its transaction's outcome waits for
            // the record that made it visible); in a snapshot, once that record is
            // durable (see `visible`).
            Reply::Done(Ok(Answer::Value(_) | Answer::Snapshot { .. } | Answer::Rows(_))) => {
                self.visible.lsn(self.reads.get(&req))
            }
            // Outcomes and errors: they may reveal any record appended so far.
            Reply::Done(_) => self.barrier_lsn,
        };
        let done = matches!(reply, Reply::Done(_));
        let channel = if done {
            self.reads.remove(&req);
            self.replies.remove(&req)
        } else {
            self.replies.get(&req).cloned()
        };
        if let Some(channel) = channel {
            let held = Held::Reply {
                reply: channel,
                message: reply,
                work: self.ctx.net.work(Label::on(What::Reply, self.id)),
            };
            self.hold(lsn, held);
        }
    }

    /// Holds `held` until the log is durable through `lsn`.
    fn hold(&self, lsn: u64, mut held: Held) {
        if self.ctx.net.steps.is_on() {
            // It may wait for an fsync in the step queue: the cluster is settled then.
            // An item that leaves at the end of this batch is counted again as it does.
            held.park();
        }
        let durability = &self.syncer.durability;
        let mut outbox = durability.outbox.lock();
        outbox.hold(lsn, durability.synced(), held);
    }

    /// Ends a batch: writes its records, has them fsynced if anything depends on them,
    /// lets out what is durable, and publishes the node's state.
    ///
    /// The fsync runs on this thread when there is nothing else to do and nothing else
    /// is coming (no mail waiting, no fsync running, at most one client waiting for an
    /// answer): handing it over would only add a thread's wake-up to that client's
    /// latency (about 50 µs of a one-phase commit's 140 here). Otherwise the syncer runs
    /// it, and this thread goes on serving the others.
    fn finish_batch(&mut self) -> Flow {
        let detect = self.ctx.settings.read().deadlock == crate::config::DeadlockPolicy::Detect;
        let defer_long = !self.ctx.clock.is_manual();
        self.node.end_batch(detect, defer_long, &mut self.effects);
        if self.execute(0) != Flow::Continue {
            return Flow::Crashed;
        }
        if let Err(error) = self.wal.flush(false) {
            self.fail(error);
            return Flow::Crashed;
        }
        self.wal.note_synced(self.syncer.durability.synced());
        self.visible.synced(self.syncer.durability.synced());
        // On the manual clock (scripts, transcripts) acknowledgements do not linger for
        // company: their fsync is asked for at once, so the trace is the same every run.
        let mut wanted = self.barrier_lsn;
        if self.ctx.clock.is_manual() {
            let durable_wanted = self.syncer.durability.outbox.lock().durable_wanted();
            wanted = wanted.max(durable_wanted.unwrap_or(0));
        }
        // Evaluated every batch, so that the time lingering items began to wait is
        // forgotten once an fsync covering them is asked for (else a stale start would
        // cut the next linger short).
        let lingered = self.lingering_enough();
        if wanted > self.sync_asked.max(self.wal.synced_lsn()) && self.ctx.net.steps.is_on() {
            // Step mode: the fsync waits in the step queue until someone lets it go.
            let lsn = self.wal.end_lsn();
            let records = std::mem::take(&mut self.unsynced);
            self.ctx.net.steps.queue_fsync(self.id, lsn, records);
            self.sync_asked = lsn;
        } else if wanted > self.sync_asked.max(self.wal.synced_lsn()) || lingered {
            let alone = self.ctx.net.receivers_waiting() <= 1;
            let flow = if alone && !self.syncer.busy() && self.inbox.is_empty() {
                self.sync_now()
            } else {
                self.ask_sync()
            };
            if flow != Flow::Continue {
                return flow;
            }
        }
        self.release();
        self.maybe_checkpoint()
    }

    /// Whether acknowledgements have waited for an fsync for [`LINGER`] already, counted
    /// from when they began to (a node kept busy by mail that forces nothing never
    /// times out in `wait`). Notes when they begin.
    fn lingering_enough(&mut self) -> bool {
        let wanted = self.syncer.durability.outbox.lock().durable_wanted();
        if wanted.unwrap_or(0) <= self.sync_asked.max(self.wal.synced_lsn()) {
            self.lingering = None;
            return false;
        }
        let since = *self.lingering.get_or_insert_with(Instant::now);
        since.elapsed() >= LINGER
    }

    /// Asks the syncer to fsync everything written so far.
    fn ask_sync(&mut self) -> Flow {
        let Some(target) = self.wal.sync_target() else {
            return Flow::Continue;
        };
        let lsn = target.lsn;
        if !self.syncer.request(target, &self.ctx.net) {
            return self.sync_now();
        }
        self.sync_asked = lsn;
        Flow::Continue
    }

    /// Writes and fsyncs on this thread, then lets out what that covers.
    fn sync_now(&mut self) -> Flow {
        if let Err(error) = self.wal.flush(true) {
            self.fail(error);
            return Flow::Crashed;
        }
        self.synced_here();
        Flow::Continue
    }

    /// This thread has just fsynced the log (also by a checkpoint): let out what waited.
    fn synced_here(&mut self) {
        let lsn = self.wal.synced_lsn();
        if self.ctx.net.steps.is_on() {
            self.unsynced.clear();
            self.ctx.net.steps.covered(self.id, lsn);
        }
        self.sync_asked = self.sync_asked.max(lsn);
        (self.syncer.durability).synced_through(lsn, self.id, &self.ctx.net);
    }

    /// Lets out everything the log is now durable enough for.
    fn release(&self) {
        self.syncer.durability.release(self.id, &self.ctx.net);
    }

    /// Dying: tells every client still waiting for an answer (queued for a lock, or
    /// answered but held back) that this node is down; what it said to nodes is lost.
    /// Dropping their channels would wake them too, but unseen by `Cluster::settle`.
    fn answer_down(&mut self) {
        // What was held ends here (the tokens with it): a dead node says nothing.
        let held = self.syncer.durability.outbox.lock().drain();
        let held_answers = held.into_iter().filter_map(|held| match held {
            Held::Reply {
                reply,
                message: Reply::Done(_),
                ..
            }
            | Held::Forward { reply, .. } => Some(reply),
            // A held `Waiting`'s channel is still in `replies`; messages are lost.
            Held::Reply { .. } | Held::Send { .. } | Held::Ack { .. } => None,
        });
        self.reads.clear();
        let waiting: Vec<ReplySender> = held_answers
            .chain(self.replies.drain().map(|(_, reply)| reply))
            .collect();
        for reply in waiting {
            let down = crate::Error::NodeDown {
                node: self.id,
                detail: "it crashed before answering".into(),
            };
            let held = Held::Reply {
                reply,
                message: Reply::Done(Err(down)),
                work: self.ctx.net.work(Label::on(What::Reply, self.id)),
            };
            held.release(self.id, &self.ctx.net);
        }
    }
}

/// Mail left in a dead node's inbox is lost, as if it had been sent while the node was
/// down: a sender that must learn of the loss is told, and so is a client, in a reply
/// that counts as work (its channel merely dropped would wake it unseen by
/// `Cluster::settle`).
fn drop_mail(node: NodeId, ctx: &Context, envelope: Envelope) {
    match envelope.mail {
        Mail::Input(Input::Peer { from, message, .. }, depth) if message.reports_loss() => {
            ctx.net
                .undelivered(from, node, message, depth, envelope.work);
        }
        Mail::Client(_, reply) => {
            let down = crate::Error::NodeDown {
                node,
                detail: "it crashed before answering".into(),
            };
            let held = Held::Reply {
                reply,
                message: Reply::Done(Err(down)),
                work: ctx.net.work(Label::on(What::Reply, node)),
            };
            held.release(node, &ctx.net);
        }
        _ => {}
    }
}
