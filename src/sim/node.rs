//! One simulated node: the real [`Node`] state machines, its real [`Wal`], and the
//! executor of their [`Effect`]s.
//!
//! # The durability rule
//!
//! Every message, reply and hand-over a node's state machines produce is *held* in the
//! node's outbox, tagged with an LSN, and leaves only once the log is fsynced through
//! it; the outbox lets items out strictly in the order they were held. The tag is:
//!
//! - for `Send`, `Reply` and `Forward`: the end of the newest *barrier* record
//!   ([`Record::barrier`]) appended before the item, whatever it is about;
//! - except for a reply carrying data (a value, a snapshot's value, a scan's rows): the
//!   end of the record that made that data visible, as the runtime tags it
//!   (`runtime::visible`), so that the fault suites check the runtime's own rule for
//!   the replies that a lock handed over before an fsync lets out;
//! - for `SendDurable` (a participant's acknowledgement of its `Commit`): the end of
//!   everything appended before it, `Commit` included.
//!
//! That is at least as strict as the threaded runtime (`runtime::outbox`), which lets a
//! reply that reveals nothing (a lock wait, a buffered write) out at once, makes a
//! transaction id wait only for its lease, and lets an item that waits for nothing overtake earlier items to
//! other destinations. Each of those orders is one the runtime may also produce (its
//! fsync can complete before the batch ends), so every history here is one the runtime
//! allows; the relaxations themselves are the outbox's unit tests' business.
//!
//! A teaching mistake (`SET mistake`, [`Message::skips_fsync`]) breaks this rule on
//! purpose: with `vote-before-fsync` a YES vote, with `commit-before-decision-fsync` a
//! COMMIT, is held with the LSN already durable, so it leaves at the end of its step
//! (behind only what was held before it) instead of after the fsync of its record.
//!
//! Each message leaves stamped with the node's clock when it was held (`net::Stamp`),
//! as the runtime stamps it. The end of each step is the end of a batch
//! (`Node::end_batch`): the node reports its lock waits to the deadlock detector then.

use super::disk::Disk;
use crate::config::{Mistake, Settings};
use crate::crash::CrashPoint;
use crate::error::Result;
use crate::message::{Effect, Message, Reply, ReqId, Request, Vote};
use crate::node::{Input, Node};
use crate::runtime::visible::{Reads, Visibility, carries_data};
use crate::types::{NodeId, Timestamp};
use crate::wal::{Record, Wal};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

/// Something a node said, held until the log is durable through what it depends on.
#[derive(Clone, Debug)]
pub enum Held {
    /// A message to a node.
    Send {
        /// The receiver.
        to: NodeId,
        /// The message.
        message: Message,
        /// The sender's clock when it said it.
        clock: Timestamp,
    },
    /// An answer to a client's request.
    Reply {
        /// The request.
        req: ReqId,
        /// The answer.
        reply: Reply,
    },
    /// A client's request handed on to another node.
    Forward {
        /// The request's ticket.
        req: ReqId,
        /// The node that takes it over.
        to: NodeId,
        /// The request.
        request: Request,
    },
}

/// A node that is up: its state machines, its log and what it holds back.
#[derive(Debug)]
pub(super) struct Up {
    pub(super) node: Node,
    pub(super) wal: Wal,
    /// Held items with the LSN each waits for, in the order held.
    outbox: VecDeque<(u64, Held)>,
    /// The LSN just past the newest barrier record appended.
    barrier_lsn: u64,
    /// Requests received and not yet answered with a held `Done`.
    pub(super) owed: BTreeSet<ReqId>,
    /// Which unsynced record made each key's value visible (`runtime::visible`).
    visible: Visibility,
    /// What each request owed reads, to tag its answer.
    reads: BTreeMap<ReqId, Reads>,
    /// A deliberately broken executor ([`SimConfig::read_only_votes_skip_fsync`](super::SimConfig)):
    /// READ-ONLY votes wait for no fsync. Never on but in the tests that show the
    /// suites catch it.
    pub(super) read_only_votes_skip_fsync: bool,
    /// A deliberately broken executor ([`SimConfig::commits_skip_decision`](super::SimConfig)):
    /// a COMMIT sent by `SendDurable` waits for nothing. Never on but in the test that
    /// shows a suite catches it.
    pub(super) commits_skip_decision: bool,
    /// The crash point this incarnation dies at, if armed.
    pub(super) armed: Option<CrashPoint>,
    /// The teaching mistake switched in (`Settings::mistake`), never on by default.
    mistake: Option<Mistake>,
}

/// One node of the simulated cluster, up or down.
#[derive(Debug)]
pub(super) struct SimNode {
    pub(super) id: NodeId,
    pub(super) up: Option<Up>,
}

/// How a node dies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Death {
    /// Its process, as the runtime's nodes die: the log is cut to what was fsynced.
    Crash,
    /// Its process, but the page cache keeps what it wrote.
    CacheKept,
    /// Its machine's power: any unsynced sectors may be lost, as the seed chooses.
    PowerLoss(u64),
}

/// What the executor tells the simulator about a step, to trace.
pub(super) type Notes = Vec<String>;

impl SimNode {
    /// Opens the node's log and recovers it, as `Cluster::open` and `RESTART` do;
    /// returns the recovery's effects, to execute before anything else.
    pub(super) fn start(
        &mut self,
        nodes: u32,
        disk: &Disk,
        now: Duration,
        settings: &Settings,
    ) -> Result<Vec<Effect>> {
        let (wal, recovery) = disk.open(self.id)?;
        let snapshot = recovery.snapshot.as_ref();
        let records = &recovery.records;
        let (node, effects) = Node::recover_with(self.id, nodes, snapshot, records, now, settings);
        self.up = Some(Up {
            node,
            wal,
            outbox: VecDeque::new(),
            barrier_lsn: 0,
            owed: BTreeSet::new(),
            visible: Visibility::default(),
            reads: BTreeMap::new(),
            read_only_votes_skip_fsync: false,
            commits_skip_decision: false,
            armed: None,
            mistake: settings.mistake,
        });
        Ok(effects)
    }

    /// Feeds one input to the state machines and executes the effects; returns the
    /// armed crash point if they reached it.
    pub(super) fn handle(
        &mut self,
        input: Input,
        now: Duration,
        settings: &Settings,
        notes: &mut Notes,
    ) -> Result<Option<CrashPoint>> {
        let Some(up) = &mut self.up else {
            return Ok(None);
        };
        if let Input::Request { req, request } = &input {
            up.owed.insert(*req);
            if let Some(reads) = Reads::of(request) {
                up.reads.insert(*req, reads);
            }
        }
        up.mistake = settings.mistake;
        let mut effects = Vec::new();
        up.node.handle(input, now, settings, &mut effects);
        self.execute(effects, notes)
    }

    /// Executes effects in order: appends go to the log, everything said is held. Stops
    /// at the armed crash point, if reached, and returns it: the node must then make
    /// durable what came before, let it out, and die (as the runtime does).
    pub(super) fn execute(
        &mut self,
        effects: Vec<Effect>,
        notes: &mut Notes,
    ) -> Result<Option<CrashPoint>> {
        let Some(up) = &mut self.up else {
            return Ok(None);
        };
        for effect in effects {
            match effect {
                Effect::Append(record) => up.append(&record, record.barrier(), notes)?,
                Effect::AppendNoBarrier(record) => up.append(&record, false, notes)?,
                Effect::Send { to, message } => {
                    let clock = up.node.clock();
                    // Teaching mistake (vote-before-fsync, commit-before-decision-fsync),
                    // never the default: the message waits for nothing unsynced.
                    let read_only = matches!(
                        message,
                        Message::Vote {
                            vote: Vote::ReadOnly,
                            ..
                        }
                    );
                    // Deliberately broken (`read_only_votes_skip_fsync`), never the default.
                    let broken = read_only && up.read_only_votes_skip_fsync;
                    let lsn = if message.skips_fsync(up.mistake) || broken {
                        up.wal.synced_lsn()
                    } else {
                        up.barrier_lsn
                    };
                    let held = Held::Send { to, message, clock };
                    if broken {
                        // Ahead of everything held, as if the outbox had no order.
                        up.outbox.push_front((lsn, held));
                    } else {
                        up.outbox.push_back((lsn, held));
                    }
                }
                Effect::SendDurable { to, message } => {
                    let (lsn, clock) = (up.wal.end_lsn(), up.node.clock());
                    let commit = matches!(message, Message::Commit { .. });
                    let held = Held::Send { to, message, clock };
                    if commit && up.commits_skip_decision {
                        // Deliberately broken (`commits_skip_decision`), never the
                        // default: ahead of everything held, waiting for nothing.
                        up.outbox.push_front((up.wal.synced_lsn(), held));
                    } else {
                        up.outbox.push_back((lsn, held));
                    }
                }
                Effect::Reply { req, reply } => {
                    if matches!(reply, Reply::Done(_)) && !up.owed.remove(&req) {
                        continue;
                    }
                    let reads = up.reads.remove(&req);
                    let lsn = match carries_data(&reply) {
                        true => up.visible.lsn(reads.as_ref()),
                        false => up.barrier_lsn,
                    };
                    if !matches!(reply, Reply::Done(_))
                        && let Some(reads) = reads
                    {
                        up.reads.insert(req, reads);
                    }
                    up.outbox.push_back((lsn, Held::Reply { req, reply }));
                }
                Effect::Forward { req, to, request } => {
                    up.reads.remove(&req);
                    if up.owed.remove(&req) {
                        let held = Held::Forward { req, to, request };
                        up.outbox.push_back((up.barrier_lsn, held));
                    }
                }
                Effect::CrashPoint(point) if up.armed == Some(point) => {
                    notes.push(format!("reached crash point {}", point.name()));
                    return Ok(Some(point));
                }
                Effect::CrashPoint(_) => {}
                Effect::VictimAborted { tid, .. } => notes.push(format!("deadlock victim {tid}")),
                Effect::Narrate(text) => notes.push(text),
            }
        }
        Ok(None)
    }

    /// Whether the node has log records appended and not yet fsynced.
    pub(super) fn unsynced(&self) -> bool {
        (self.up.as_ref()).is_some_and(|up| up.wal.end_lsn() > up.wal.synced_lsn())
    }

    /// Fsyncs the node's log.
    pub(super) fn fsync(&mut self, notes: &mut Notes) -> Result<()> {
        if let Some(up) = &mut self.up {
            up.wal.flush(true)?;
            up.visible.synced(up.wal.synced_lsn());
            notes.push(format!("durable through lsn {}", up.wal.synced_lsn()));
        }
        Ok(())
    }

    /// Writes a checkpoint (which fsyncs the log first).
    pub(super) fn checkpoint(&mut self, notes: &mut Notes) -> Result<()> {
        if let Some(up) = &mut self.up {
            up.wal.checkpoint(&up.node.snapshot())?;
            notes.push(format!("checkpoint at lsn {}", up.wal.synced_lsn()));
        }
        Ok(())
    }

    /// Ends a step as the runtime ends a batch: reports the node's lock waits if they
    /// changed (`detect`: the deadlock setting), writes the appended records (not
    /// fsynced), checkpoints if the log has grown past `checkpoint_bytes` (as the
    /// runtime's `maybe_checkpoint`) and takes out what is durable enough to leave.
    pub(super) fn finish(
        &mut self,
        detect: bool,
        checkpoint_bytes: u64,
        notes: &mut Notes,
    ) -> Result<Vec<Held>> {
        let Some(up) = &mut self.up else {
            return Ok(Vec::new());
        };
        let mut effects = Vec::new();
        up.node.end_batch(detect, false, &mut effects);
        self.execute(effects, notes)?;
        let Some(up) = &mut self.up else {
            return Ok(Vec::new());
        };
        up.wal.flush(false)?;
        if up.wal.size() > checkpoint_bytes {
            up.wal.checkpoint(&up.node.snapshot())?;
            notes.push(format!("checkpoint at lsn {}", up.wal.synced_lsn()));
        }
        let synced = up.wal.synced_lsn();
        up.visible.synced(synced);
        let mut out = Vec::new();
        while let Some((lsn, _)) = up.outbox.front()
            && *lsn <= synced
        {
            out.extend(up.outbox.pop_front().map(|(_, held)| held));
        }
        Ok(out)
    }

    /// The node dies: its state and everything it held are lost, and its log is cut to
    /// what was fsynced. Returns the requests it owed an answer (held ones included).
    pub(super) fn crash(&mut self, disk: &Disk, death: Death) -> Result<Vec<ReqId>> {
        let Some(up) = self.up.take() else {
            return Ok(Vec::new());
        };
        let mut owed: Vec<ReqId> = up.owed.into_iter().collect();
        for (_, held) in up.outbox {
            match held {
                Held::Reply {
                    req,
                    reply: Reply::Done(_),
                }
                | Held::Forward { req, .. } => owed.push(req),
                Held::Reply { .. } | Held::Send { .. } => {}
            }
        }
        owed.sort_unstable();
        match death {
            Death::Crash => disk.crash(self.id, up.wal)?,
            Death::CacheKept => disk.process_death(self.id, up.wal),
            Death::PowerLoss(seed) => disk.power_loss(self.id, up.wal, seed),
        }
        Ok(owed)
    }

    /// How many items the node holds back.
    pub(super) fn held(&self) -> usize {
        self.up.as_ref().map_or(0, |up| up.outbox.len())
    }
}

impl Up {
    fn append(&mut self, record: &Record, barrier: bool, notes: &mut Notes) -> Result<()> {
        self.wal.append(record)?;
        let end = self.wal.end_lsn();
        if barrier {
            self.barrier_lsn = end;
        }
        self.visible.appended(record, end);
        let tid = record
            .tid()
            .map(|tid| format!(" {tid}"))
            .unwrap_or_default();
        notes.push(format!("append {}{tid} (lsn {end})", record.kind()));
        Ok(())
    }
}

/// The request a forwarded ticket carries, to name in a trace.
pub(super) fn request_label(request: &Request) -> String {
    match request {
        Request::Begin { .. } => "BEGIN".into(),
        Request::SnapshotTimestamp { .. } => "SNAPSHOT TIMESTAMP".into(),
        Request::BeginAnd { then, .. } => format!("BEGIN+{}", request_label(then)),
        Request::Read { tid, key, .. } => format!("READ {tid} {key}"),
        Request::SnapshotRead { key, .. } => format!("SNAPSHOT READ {key}"),
        Request::Scan { tid, range, .. } => format!("SCAN {tid} {range}"),
        Request::SnapshotScan { range, .. } => format!("SNAPSHOT SCAN {range}"),
        Request::Write { tid, key, .. } => format!("WRITE {tid} {key}"),
        Request::Commit { tid, .. } => format!("COMMIT {tid}"),
        Request::Abort { tid, .. } => format!("ABORT {tid}"),
    }
}

impl SimNode {
    /// Feeds the node's state to `hasher` (see `Sim::fingerprint`): up or down, and if
    /// up its state machines, what it holds back, what it owes and how far its log is
    /// appended and fsynced. The log's bytes are the disk's to feed.
    pub(super) fn fingerprint(&self, hasher: &mut impl std::hash::Hasher) {
        use std::hash::Hash;
        let Some(up) = &self.up else {
            false.hash(hasher);
            return;
        };
        true.hash(hasher);
        super::fingerprint::debug(hasher, &up.node);
        super::fingerprint::debug(hasher, &up.outbox);
        (up.barrier_lsn, &up.owed, up.armed).hash(hasher);
        (&up.visible, &up.reads).hash(hasher);
        (up.wal.end_lsn(), up.wal.synced_lsn()).hash(hasher);
    }
}

impl SimNode {
    /// A copy of the node on `disk`, a copy of the simulation's disks (`Sim::fork`).
    pub(super) fn fork(&self, disk: &Disk) -> Result<SimNode> {
        let up = match &self.up {
            None => None,
            Some(up) => Some(Up {
                node: up.node.clone(),
                wal: disk.duplicate_wal(self.id, &up.wal)?,
                outbox: up.outbox.clone(),
                barrier_lsn: up.barrier_lsn,
                owed: up.owed.clone(),
                visible: up.visible.clone(),
                reads: up.reads.clone(),
                read_only_votes_skip_fsync: up.read_only_votes_skip_fsync,
                commits_skip_decision: up.commits_skip_decision,
                armed: up.armed,
                mistake: up.mistake,
            }),
        };
        Ok(SimNode { id: self.id, up })
    }
}
