//! A node's protocol state: its participant and coordinator roles and its logical clock,
//! driven by one input at a time and answering with effects. No threads, no I/O: the
//! runtime (`runtime.rs`) feeds it and executes what it returns, and tests step it by
//! hand.
//!
//! Recovery is here too: [`Node::recover`] rebuilds the state from a checkpoint and the
//! log records after it, and returns the effects that resume the protocol (inquiries for
//! in-doubt transactions, re-sent commit decisions).
//!
//! Teaching mistakes (`SET mistake`, never the default) are switched in here where they
//! change what a node decides: `forget-in-doubt` in [`Node::recover_with`],
//! `presume-commit-without-log` at an inquiry, `release-read-locks-at-prepare` at
//! PREPARE; `no-tombstone` is the participant's (it is told the setting with every
//! input). The two that let a message out early are the runtimes' (`runtime::outbox`,
//! `sim::node`).

mod detect;
mod floors;

use crate::clock::Lamport;
use crate::config::{CommitMode, Mistake, Settings};
use crate::coordinator::{Coordinator, Decided};
use crate::message::{Effect, Message, ReqId, Request};
use crate::participant::{Participant, Prepared, prepared_from_record};
use crate::store::Store;
use crate::types::{NodeId, Timestamp, TxnId};
use crate::wal::{Record, Snapshot};
use std::collections::BTreeMap;
use std::time::Duration;

/// Something a node reacts to.
#[derive(Clone, Debug)]
pub enum Input {
    /// A client's request.
    Request {
        /// Identifies the reply channel.
        req: ReqId,
        /// The request.
        request: Request,
    },
    /// A message from a node (possibly this one).
    Peer {
        /// The sender.
        from: NodeId,
        /// The message.
        message: Message,
        /// The sender's clock when it sent the message: the receiver's moves up to it.
        clock: Timestamp,
    },
    /// Time passed: check timeouts.
    Tick,
    /// The network could not deliver `message`, which this node sent, to `to`: it was
    /// down, or died with the message unread in its inbox. Only messages whose loss the
    /// sender must learn come back (`Message::reports_loss`).
    Undelivered {
        /// The node that was down.
        to: NodeId,
        /// The message it never received.
        message: Message,
    },
}

/// One node's protocol state.
#[derive(Clone, Debug)]
pub struct Node {
    id: NodeId,
    nodes: u32,
    participant: Participant,
    coordinator: Coordinator,
    /// Snapshot timestamps asked for, and the floors peers reported.
    floors: floors::Floors,
    /// This node's part in deadlock detection.
    detect: detect::DetectRole,
    /// What recovery read and redid, until the runtime takes it for the narration.
    recovered: Option<Recovered>,
}

/// What replaying a log yields before the node resumes.
struct Replay {
    store: Store,
    prepared: BTreeMap<TxnId, Prepared>,
    decided: BTreeMap<TxnId, Decided>,
    /// Staged transactions (parallel commits) with no outcome logged.
    staged: BTreeMap<TxnId, Vec<NodeId>>,
    lease: u64,
    clock: Timestamp,
    /// Outcomes the log shows, remembered for peers in doubt.
    committed: BTreeMap<TxnId, Timestamp>,
    aborted: Vec<TxnId>,
    /// Decisions taken by hand (`Heuristic` records), with the coordinator of each.
    heuristics: BTreeMap<TxnId, crate::participant::Heuristic>,
    /// What the replay did, for the restart's narration.
    summary: Recovered,
}

/// What recovery read and redid, as `RESTART` tells it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Keys in the checkpoint's data, if there was a checkpoint.
    pub checkpoint_keys: Option<usize>,
    /// In-doubt `Prepare` records the checkpoint carried.
    pub checkpoint_prepared: Vec<TxnId>,
    /// Unacknowledged `Decision` records the checkpoint carried.
    pub checkpoint_decisions: Vec<TxnId>,
    /// Transactions whose committed writes the log's records redid, in log order.
    pub redone: Vec<TxnId>,
    /// Prepared transactions the log shows aborted: their writes dropped.
    pub dropped: Vec<TxnId>,
    /// Transactions settled by hand (`RESOLVE`) whose coordinator's decision is awaited.
    pub heuristic: Vec<TxnId>,
}

impl Replay {
    fn from_snapshot(snapshot: Option<&Snapshot>) -> Replay {
        let mut replay = Replay {
            store: Store::default(),
            prepared: BTreeMap::new(),
            decided: BTreeMap::new(),
            staged: BTreeMap::new(),
            lease: 0,
            clock: 0,
            committed: BTreeMap::new(),
            aborted: Vec::new(),
            heuristics: BTreeMap::new(),
            summary: Recovered::default(),
        };
        if let Some(snapshot) = snapshot {
            replay.store = Store::from_snapshot(snapshot);
            replay.lease = snapshot.tid_lease;
            replay.clock = snapshot.clock;
            for record in snapshot.prepared.iter().chain(&snapshot.decisions) {
                replay.apply(record);
            }
            let tids = |records: &[Record]| records.iter().filter_map(Record::tid).collect();
            replay.summary = Recovered {
                checkpoint_keys: Some(snapshot.data.len()),
                checkpoint_prepared: tids(&snapshot.prepared),
                checkpoint_decisions: tids(&snapshot.decisions),
                ..Recovered::default()
            };
        }
        replay
    }

    /// Redoes one record of the log (after the checkpoint), noting what it redid.
    fn redo(&mut self, record: &Record) {
        match record {
            Record::Commit { tid, .. } if self.prepared.contains_key(tid) => {
                self.summary.redone.push(*tid)
            }
            Record::OnePhaseCommit { tid, writes, .. } if !writes.is_empty() => {
                self.summary.redone.push(*tid)
            }
            Record::Abort { tid } if self.prepared.contains_key(tid) => {
                self.summary.dropped.push(*tid)
            }
            _ => {}
        }
        self.apply(record);
    }

    /// Redoes one record.
    fn apply(&mut self, record: &Record) {
        match record {
            Record::Prepare { prepare_ts, .. } => {
                self.clock = self.clock.max(*prepare_ts);
                if let Some((tid, prepared)) = prepared_from_record(record) {
                    self.prepared.insert(tid, prepared);
                }
            }
            Record::Commit { tid, commit_ts } => {
                self.clock = self.clock.max(*commit_ts);
                if let Some(prepared) = self.prepared.remove(tid) {
                    self.store.apply(&prepared.writes, *commit_ts);
                    self.committed.insert(*tid, *commit_ts);
                }
            }
            Record::Abort { tid } => {
                self.prepared.remove(tid);
                self.aborted.push(*tid);
            }
            Record::OnePhaseCommit {
                writes, commit_ts, ..
            } => {
                self.clock = self.clock.max(*commit_ts);
                self.store.apply(writes, *commit_ts);
            }
            Record::Decision {
                tid,
                participants,
                commit_ts,
            } => {
                self.clock = self.clock.max(*commit_ts);
                self.staged.remove(tid);
                let decided = Decided {
                    participants: participants.clone(),
                    unacked: participants.iter().copied().collect(),
                    commit_ts: *commit_ts,
                    lowest_prepare_ts: commit_ts.saturating_sub(1),
                    // Read back from the log: durable.
                    unbarred: false,
                };
                self.decided.insert(*tid, decided);
            }
            Record::End { tid } => {
                self.decided.remove(tid);
            }
            Record::Staged { tid, participants } => {
                self.staged.insert(*tid, participants.clone());
            }
            Record::StagedAbort { tid } => {
                self.staged.remove(tid);
            }
            Record::Refused { tid } => self.aborted.push(*tid),
            Record::TidLease { upto } => self.lease = self.lease.max(*upto),
            Record::Heuristic {
                tid,
                commit,
                commit_ts,
            } => {
                self.clock = self.clock.max(*commit_ts);
                if let Some(prepared) = self.prepared.remove(tid) {
                    if *commit {
                        self.store.apply(&prepared.writes, *commit_ts);
                        self.committed.insert(*tid, *commit_ts);
                    } else {
                        self.aborted.push(*tid);
                    }
                    let heuristic = crate::participant::Heuristic {
                        commit: *commit,
                        coordinator: prepared.coordinator,
                    };
                    self.heuristics.insert(*tid, heuristic);
                }
            }
        }
    }
}

impl Node {
    /// A node of a fresh cluster.
    pub fn new(id: NodeId, nodes: u32) -> Node {
        Node {
            id,
            nodes,
            participant: Participant::new(id, nodes, Store::default(), Lamport::default()),
            coordinator: Coordinator::new(id, nodes, 0, BTreeMap::new()),
            floors: Default::default(),
            detect: detect::DetectRole::new(nodes),
            recovered: None,
        }
    }

    /// Rebuilds a node from its checkpoint and the records after it. The returned effects
    /// must run before the node serves anyone: they re-lock nothing (that is done here)
    /// but ask about in-doubt transactions, re-send commit decisions and announce the
    /// restart to every node, so dead transactions this node coordinated are released and
    /// undecided ones its old votes vouched for are aborted. Until every peer has answered
    /// the announcement (or is known to be down), the node holds locking operations
    /// (`participant::rejoin`). The clock starts at the highest timestamp in the log.
    pub fn recover(
        id: NodeId,
        nodes: u32,
        snapshot: Option<&Snapshot>,
        records: &[Record],
        now: Duration,
    ) -> (Node, Vec<Effect>) {
        Node::recover_with(id, nodes, snapshot, records, now, &Settings::default())
    }

    /// [`Node::recover`] under `settings`, which matter only for a teaching mistake:
    /// with `forget-in-doubt` a `Prepare` with no outcome is aborted (logged, its locks
    /// never taken, its coordinator never asked) instead of held in doubt.
    pub fn recover_with(
        id: NodeId,
        nodes: u32,
        snapshot: Option<&Snapshot>,
        records: &[Record],
        now: Duration,
        settings: &Settings,
    ) -> (Node, Vec<Effect>) {
        let mut replay = Replay::from_snapshot(snapshot);
        for record in records {
            replay.redo(record);
        }
        let mut node = Node {
            id,
            nodes,
            participant: Participant::new(
                id,
                nodes,
                replay.store,
                Lamport::starting_at(replay.clock),
            ),
            coordinator: Coordinator::recovered(
                id,
                nodes,
                replay.lease,
                replay.decided,
                replay.staged,
            ),
            floors: Default::default(),
            detect: detect::DetectRole::new(nodes),
            recovered: None,
        };
        let mut summary = replay.summary;
        summary.heuristic = replay.heuristics.keys().copied().collect();
        node.recovered = Some(summary);
        node.participant.remember(replay.committed, replay.aborted);
        (node.participant).remember_heuristics(replay.heuristics.into_iter().collect());
        node.participant.set_mistake(settings.mistake);
        let mut out = Vec::new();
        for (tid, prepared) in replay.prepared {
            if settings.mistake == Some(Mistake::ForgetInDoubt) {
                // Teaching mistake (forget-in-doubt), never the default: the undecided
                // Prepare is taken for aborted, though its coordinator may have committed.
                node.participant.forget_in_doubt(tid, &mut out);
                continue;
            }
            node.participant
                .restore_in_doubt(tid, prepared, now, &mut out);
        }
        node.coordinator.resend_decisions(&mut out);
        let live_from = node.coordinator.live_from();
        let mut local = Vec::new();
        node.participant.peer_restarted(id, live_from, &mut local);
        node.participant.rejoin(live_from, &mut out);
        (node, out)
    }

    /// Handles one input, appending the effects to `out`.
    pub fn handle(
        &mut self,
        input: Input,
        now: Duration,
        settings: &Settings,
        out: &mut Vec<Effect>,
    ) {
        self.participant.set_mistake(settings.mistake);
        self.participant.set_rule(settings.deadlock, now);
        match input {
            Input::Request { req, request } => self.request(req, request, now, settings, out),
            Input::Peer {
                from,
                message,
                clock,
            } => {
                self.participant.clock_mut().observe(clock);
                self.message(from, message, now, settings, out)
            }
            Input::Tick => {
                self.coordinator.tick(now, settings.vote_timeout, out);
                self.participant.tick(now, settings.inquiry_interval, out);
                (self.participant).lock_timeouts(now, settings.lock_timeout, out);
                if !self.detect_reported_nothing() {
                    self.report_waits_again();
                }
                self.ask_floors_again(None, out);
            }
            // Participant: a peer that never got the restart announcement was down, so it
            // holds no vote of the old incarnation.
            Input::Undelivered {
                to,
                message: Message::Restarted { .. },
            } => self.participant.peer_settled(to, out),
            // A floor query to a down node: the bound from its last report stands for it.
            Input::Undelivered {
                to,
                message: Message::FloorQuery { round },
            } => self.floor_heard(to, round, None, out),
            Input::Undelivered { .. } => {}
        }
    }

    fn request(
        &mut self,
        req: ReqId,
        request: Request,
        now: Duration,
        settings: &Settings,
        out: &mut Vec<Effect>,
    ) {
        match request {
            // Coordinator: allocate an id.
            Request::Begin { began } => self.coordinator.begin(req, began, out),
            // Coordinator: allocate an id and hand the first operation to its key's owner.
            Request::BeginAnd { owner, then, began } => {
                (self.coordinator).begin_and(req, owner, *then, began, out)
            }
            // Participant: a read under a shared lock, or an exclusive one for update.
            Request::Read {
                tid,
                key,
                mode,
                first,
                began,
            } => (self.participant).read(req, (tid, began), key, mode, first, out),
            // Participant: a read of a committed snapshot, without locks.
            Request::SnapshotRead { key, at } => self.participant.snapshot_read(req, key, at, out),
            // Participant: a range read under a range lock (or, under the no-range-locks
            // mistake, locks on the keys it finds).
            Request::Scan {
                tid,
                range,
                first,
                began,
            } => {
                let lock_range = settings.mistake != Some(Mistake::NoRangeLocks);
                let p = &mut self.participant;
                p.scan(req, (tid, began), range, first, lock_range, out)
            }
            // Participant: a range read of a committed snapshot, without locks.
            Request::SnapshotScan { range, at } => {
                self.participant.snapshot_scan(req, range, at, out)
            }
            // Any node: choose a read-only transaction's snapshot.
            Request::SnapshotTimestamp { seen, clock } => {
                self.participant.clock_mut().observe(clock);
                self.start_floor_round(req, seen, out)
            }
            // Participant: a buffered write under an exclusive lock.
            Request::Write {
                tid,
                key,
                value,
                first,
                began,
            } => (self.participant).write(req, (tid, began), key, value, first, out),
            // Coordinator: start phase 1 (or one-phase commit).
            Request::Commit {
                tid,
                participants,
                clock,
            } => {
                self.participant.clock_mut().observe(clock);
                let deadline = now.saturating_add(settings.vote_timeout);
                let clock = self.participant.clock().now();
                let parallel = settings.commit == CommitMode::Parallel;
                let when = (deadline, clock, parallel);
                self.coordinator.commit(req, tid, participants, when, out)
            }
            // Coordinator: abort at every participant.
            Request::Abort { tid, participants } => {
                self.coordinator.abort(req, tid, participants, out)
            }
        }
    }

    fn message(
        &mut self,
        from: NodeId,
        message: Message,
        now: Duration,
        settings: &Settings,
        out: &mut Vec<Effect>,
    ) {
        match message {
            // Participant, phase 1: log the writes and vote.
            Message::Prepare { tid, participants } => {
                self.participant.prepare(
                    tid,
                    from,
                    participants,
                    now.saturating_add(settings.inquiry_interval),
                    out,
                );
                if settings.mistake == Some(Mistake::ReleaseReadLocksAtPrepare) {
                    // Teaching mistake (release-read-locks-at-prepare), never the
                    // default: the read locks go before the commit timestamp is known.
                    self.participant.release_read_locks(tid, out);
                }
            }
            // Participant, parallel commits: a read-only part prepares durably too.
            Message::PrepareStaged {
                tid,
                participants,
                floor,
            } => {
                let next_inquiry = now.saturating_add(settings.inquiry_interval);
                let p = &mut self.participant;
                p.prepare_staged(tid, from, participants, floor, next_inquiry, out)
            }
            // Participant: a restarted coordinator resolves a staged transaction.
            Message::StatusQuery { tid } => self.participant.status_query(from, tid, out),
            // Coordinator: a participant's answer about a staged transaction.
            Message::Status { tid, status } => {
                let clock = self.participant.clock_mut();
                self.coordinator.status(from, tid, status, clock, out)
            }
            // Coordinator: count the vote; decide when all are in.
            Message::Vote { tid, vote } => {
                let clock = self.participant.clock_mut();
                self.coordinator.vote(from, tid, vote, clock, out)
            }
            // Participant, phase 2: log, apply, release, acknowledge.
            // A transaction settled by hand here compares instead (`participant::heuristic`).
            Message::Commit { tid, commit_ts } => {
                self.participant.clock_mut().observe(commit_ts);
                let p = &mut self.participant;
                if !p.heuristic_outcome(tid, from, Some(commit_ts), out) {
                    let keys = p.recovered_keys(tid);
                    p.commit(tid, commit_ts, out);
                    if let Some(keys) = keys {
                        p.narrate_outcome(tid, &keys, out);
                    }
                }
            }
            // Participant: drop the workspace and release.
            Message::Abort { tid } => {
                let p = &mut self.participant;
                if !p.heuristic_outcome(tid, from, None, out) {
                    let keys = p.recovered_keys(tid);
                    let reason = format!("its coordinator node {from} aborted it");
                    p.abort(tid, reason, out);
                    if let Some(keys) = keys {
                        p.narrate_outcome(tid, &keys, out);
                    }
                }
            }
            // Coordinator: one more participant has logged the commit.
            Message::Ack { tid } => self.coordinator.ack(from, tid, out),
            // Participant: the only one; commit in one phase.
            Message::CommitOnePhase { tid } => self.participant.commit_one_phase(tid, from, out),
            // Coordinator: relay the one-phase outcome.
            Message::OnePhaseOutcome { tid, aborted, at } => {
                let clock = self.participant.clock();
                (self.coordinator).one_phase_outcome(tid, aborted, at, clock, out)
            }
            // An in-doubt participant asks: the coordinator decides, a peer may know.
            Message::Inquire { tid } if tid.coordinator(self.nodes) == self.id => {
                let presume_commit = settings.mistake == Some(Mistake::PresumeCommitWithoutLog);
                let clock = self.participant.clock_mut();
                self.coordinator
                    .inquire(from, tid, presume_commit.then_some(clock), out)
            }
            Message::Inquire { tid } => self.participant.peer_inquire(from, tid, out),
            // Both roles: a peer recovered. The coordinator first aborts what the peer's
            // old votes vouched for, then the answer lets the peer serve again; and a peer
            // that restarted holds no vote of this node's old incarnation either. The
            // answer needs no record, but it leaves in line with the acknowledgements
            // said before it (as one of them), so the trace is the same every run.
            Message::Restarted { live_from } => {
                self.detector_peer_restarted(from, out);
                self.ask_floors_again(Some(from), out);
                self.participant.peer_restarted(from, live_from, out);
                self.coordinator.peer_restarted(from, out);
                out.push(Effect::SendDurable {
                    to: from,
                    message: Message::RestartAck,
                });
                self.participant.peer_settled(from, out);
            }
            // Participant: one more peer has answered this node's restart.
            Message::RestartAck => self.participant.peer_settled(from, out),
            // Participant: a node's deadlock detection chose a victim waiting here.
            Message::DeadlockVictim { tid, cycle } => {
                self.participant.deadlock_victim(tid, &cycle, out)
            }
            // Deadlock detection: another node's waits (see `detect`).
            Message::WaitReport { waits } => self.waits_reported(from, &waits, out),
            // Snapshot timestamps (see `floors`).
            Message::FloorQuery { round } => self.answer_floor(from, round, out),
            Message::FloorReply {
                round,
                floor,
                clock,
            } => self.floor_heard(from, round, Some((floor, clock)), out),
        }
    }

    /// What a checkpoint must hold to recover this node without the log before it.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            data: self.participant.store().to_snapshot_data(),
            prepared: (self.participant.in_doubt().into_iter())
                .map(|(tid, prepared)| prepared.to_record(tid))
                .collect(),
            decisions: (self.coordinator.decided().iter())
                .map(|(tid, decided)| Record::Decision {
                    tid: *tid,
                    participants: decided.participants.clone(),
                    commit_ts: decided.commit_ts,
                })
                .chain(
                    (self.coordinator.staged().into_iter())
                        .map(|(tid, participants)| Record::Staged { tid, participants }),
                )
                .collect(),
            tid_lease: self.coordinator.lease(),
            clock: self.participant.clock().now(),
        }
    }

    /// What recovery read and redid (`None` for a fresh node, or once taken).
    pub fn take_recovered(&mut self) -> Option<Recovered> {
        self.recovered.take()
    }

    /// `RESOLVE tid COMMIT|ABORT` here: a heuristic decision (`participant::heuristic`).
    pub fn resolve(
        &mut self,
        tid: TxnId,
        commit: bool,
        out: &mut Vec<Effect>,
    ) -> crate::error::Result<()> {
        self.participant.resolve(tid, commit, out)
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The participant role.
    pub fn participant(&self) -> &Participant {
        &self.participant
    }

    /// The coordinator role.
    pub fn coordinator(&self) -> &Coordinator {
        &self.coordinator
    }

    /// This node's logical clock's reading: what every message it sends carries.
    pub fn clock(&self) -> Timestamp {
        self.participant.clock().now()
    }
}
