//! The coordinator and participant state machines stepped by hand: no threads, no I/O.
//! Each test drives `Node::handle` with inputs and checks the exact effects, so every
//! transition of the protocol (and its duplicates and late messages) is pinned down.

use kv2pc::lock::LockMode;
use kv2pc::message::{Answer, Effect, Message, Reply, Request, Vote};
use kv2pc::node::{Input, Node};
use kv2pc::wal::Record;
use kv2pc::{CrashPoint, Settings, TxnId};
use std::time::Duration;

/// Reads for update (`GET key FOR UPDATE`): exclusive locks at the read.
#[path = "protocol/for_update.rs"]
mod for_update;

/// Read locks lost at a restart: the restarted node's handshake with its peers.
#[path = "protocol/restart_reads.rs"]
mod restart_reads;

/// Read-only participants and transactions, and snapshot reads.
#[path = "protocol/read_only.rs"]
mod read_only;

/// Recovery from the log and cooperative termination.
#[path = "protocol/recovery.rs"]
mod recovery;

/// Heuristic decisions (`RESOLVE`) and the narration of outcomes after a restart.
#[path = "protocol/heuristic.rs"]
mod heuristic;

/// Range reads (`SCAN`): range locks and snapshot scans.
#[path = "protocol/scan.rs"]
mod scan;

const NODES: u32 = 3;

/// A compact view of an effect, for assertions.
#[derive(Debug, PartialEq, Eq)]
enum Fx {
    Log(Record),
    Send(u32, Message),
    /// Sent only once what was logged before it is fsynced.
    Durable(u32, Message),
    Ok(Answer),
    /// `Answer::Committed`, whatever timestamp it reports.
    Committed,
    Err(String),
    Waiting(String, Vec<TxnId>),
    /// `BeginAnd` told the client this id.
    Begun(TxnId),
    /// A request handed on to a node.
    Forward(u32, Request),
    Point(CrashPoint),
    /// A deadlock victim aborted here.
    Victim(TxnId),
    /// The node says something in words.
    Narrate(String),
}

fn view(effects: Vec<Effect>) -> Vec<Fx> {
    effects
        .into_iter()
        .map(|effect| match effect {
            Effect::Append(record) | Effect::AppendNoBarrier(record) => Fx::Log(record),
            Effect::Send { to, message } => Fx::Send(to, message),
            Effect::SendDurable { to, message } => Fx::Durable(to, message),
            Effect::Reply {
                reply: Reply::Done(Ok(Answer::Committed { .. })),
                ..
            } => Fx::Committed,
            Effect::Reply {
                reply: Reply::Done(Ok(answer)),
                ..
            } => Fx::Ok(answer),
            Effect::Reply {
                reply: Reply::Done(Err(error)),
                ..
            } => Fx::Err(error.to_string()),
            Effect::Reply {
                reply: Reply::Waiting { key, blockers, .. },
                ..
            } => Fx::Waiting(key, blockers),
            Effect::Reply {
                reply: Reply::Begun(tid, _),
                ..
            } => Fx::Begun(tid),
            Effect::Forward { to, request, .. } => Fx::Forward(to, request),
            Effect::CrashPoint(point) => Fx::Point(point),
            Effect::VictimAborted { tid, .. } => Fx::Victim(tid),
            Effect::Narrate(text) => Fx::Narrate(text),
        })
        .collect()
}

/// Effects without crash-point markers.
fn moves(effects: Vec<Effect>) -> Vec<Fx> {
    view(effects)
        .into_iter()
        .filter(|fx| !matches!(fx, Fx::Point(_)))
        .collect()
}

struct Harness {
    nodes: Vec<Node>,
    now: Duration,
    settings: Settings,
}

impl Harness {
    fn new() -> Harness {
        Harness {
            nodes: (0..NODES).map(|id| Node::new(id, NODES)).collect(),
            now: Duration::ZERO,
            settings: Settings::default(),
        }
    }

    fn input(&mut self, node: u32, input: Input) -> Vec<Effect> {
        let mut out = Vec::new();
        self.nodes[node as usize].handle(input, self.now, &self.settings, &mut out);
        out
    }

    fn request(&mut self, node: u32, request: Request) -> Vec<Fx> {
        view(self.input(node, Input::Request { req: 0, request }))
    }

    fn message(&mut self, from: u32, to: u32, message: Message) -> Vec<Effect> {
        let clock = self.nodes[from as usize].clock();
        self.input(
            to,
            Input::Peer {
                from,
                message,
                clock,
            },
        )
    }

    fn begin(&mut self, coordinator: u32) -> TxnId {
        let effects = self.request(coordinator, Request::Begin { began: 0 });
        match effects.last() {
            Some(Fx::Ok(Answer::Begun(tid, _))) => *tid,
            other => panic!("BEGIN answered {other:?}"),
        }
    }

    fn write(&mut self, node: u32, tid: TxnId, key: &str, value: &str, first: bool) -> Vec<Fx> {
        let request = Request::Write {
            tid,
            key: key.into(),
            value: Some(value.into()),
            first,
            began: 0,
        };
        self.request(node, request)
    }

    fn read(&mut self, node: u32, tid: TxnId, key: &str, first: bool) -> Vec<Fx> {
        self.locked_read(node, tid, key, LockMode::Shared, first)
    }

    /// `GET key FOR UPDATE`: a read under an exclusive lock.
    fn read_for_update(&mut self, node: u32, tid: TxnId, key: &str, first: bool) -> Vec<Fx> {
        self.locked_read(node, tid, key, LockMode::Exclusive, first)
    }

    fn locked_read(
        &mut self,
        node: u32,
        tid: TxnId,
        key: &str,
        mode: LockMode,
        first: bool,
    ) -> Vec<Fx> {
        let key = key.into();
        let request = Request::Read {
            tid,
            key,
            mode,
            first,
            began: 0,
        };
        self.request(node, request)
    }

    /// A transaction begun at node 0 that wrote `x` on node 1 and `y` on node 2, with
    /// phase 1 sent.
    fn prepared_pair(&mut self) -> TxnId {
        let tid = self.begin(0);
        assert_eq!(
            self.write(1, tid, "x", "1", true),
            vec![Fx::Ok(Answer::Done)]
        );
        assert_eq!(
            self.write(2, tid, "y", "2", true),
            vec![Fx::Ok(Answer::Done)]
        );
        let commit = self.request(
            0,
            Request::Commit {
                tid,
                participants: vec![1, 2],
                clock: 0,
            },
        );
        let participants = vec![1, 2];
        assert_eq!(
            commit,
            vec![
                Fx::Send(
                    1,
                    Message::Prepare {
                        tid,
                        participants: participants.clone()
                    }
                ),
                Fx::Send(2, Message::Prepare { tid, participants }),
            ]
        );
        tid
    }

    fn prepare(&mut self, node: u32, tid: TxnId) -> Vec<Fx> {
        self.message(
            0,
            node,
            Message::Prepare {
                tid,
                participants: vec![1, 2],
            },
        )
        .pipe(view)
    }
}

trait Pipe: Sized {
    fn pipe<T>(self, f: impl FnOnce(Self) -> T) -> T {
        f(self)
    }
}
impl<T> Pipe for T {}

fn prepare_record(tid: TxnId, key: &str, value: &str, ts: u64) -> Record {
    Record::Prepare {
        tid,
        coordinator: 0,
        participants: vec![1, 2],
        writes: vec![(key.into(), Some(value.into()))],
        prepare_ts: ts,
    }
}

#[test]
fn begin_reserves_a_lease_then_numbers_from_it() {
    let mut h = Harness::new();
    // The coordinator echoes the client's begin stamp.
    let first = h.request(0, Request::Begin { began: 1 });
    assert_eq!(
        first,
        vec![
            Fx::Log(Record::TidLease { upto: 1000 }),
            Fx::Ok(Answer::Begun(TxnId(1), 1)),
        ]
    );
    assert_eq!(
        h.request(0, Request::Begin { began: 2 }),
        vec![Fx::Ok(Answer::Begun(TxnId(4), 2))]
    );
    assert_eq!(
        h.request(1, Request::Begin { began: 3 }).last(),
        Some(&Fx::Ok(Answer::Begun(TxnId(2), 3)))
    );
}

#[test]
fn a_begin_with_its_first_operation_hands_it_to_the_owner_with_the_new_id() {
    let mut h = Harness::new();
    let write = |key: &str| Request::Write {
        tid: TxnId(0),
        key: key.into(),
        value: Some("v".into()),
        first: false,
        began: 0,
    };
    let begin = Request::BeginAnd {
        owner: 2,
        then: Box::new(write("y")),
        began: 1,
    };
    let expected = Request::Write {
        tid: TxnId(1),
        key: "y".into(),
        value: Some("v".into()),
        first: true,
        began: 1,
    };
    assert_eq!(
        h.request(0, begin),
        vec![
            Fx::Log(Record::TidLease { upto: 1000 }),
            Fx::Begun(TxnId(1)),
            Fx::Forward(2, expected.clone()),
        ]
    );
    // The owner takes it like any first write; the id then commits as usual.
    assert_eq!(h.request(2, expected), vec![Fx::Ok(Answer::Done)]);
    let commit = Request::Commit {
        tid: TxnId(1),
        participants: vec![2],
        clock: 0,
    };
    assert_eq!(
        h.request(0, commit),
        vec![Fx::Send(2, Message::CommitOnePhase { tid: TxnId(1) })]
    );
    // Only a read or a write can begin a transaction, and the id is not left open.
    let refused = Request::BeginAnd {
        owner: 1,
        then: Box::new(Request::Begin { began: 0 }),
        began: 2,
    };
    assert_eq!(
        h.request(0, refused),
        vec![Fx::Err(
            "only a read or a write can begin a transaction".into()
        )]
    );
    assert_eq!(
        h.request(0, Request::Begin { began: 3 }),
        vec![Fx::Ok(Answer::Begun(TxnId(7), 3))]
    );
}

#[test]
fn two_phase_commit_in_protocol_order() {
    let mut h = Harness::new();
    let tid = h.prepared_pair();
    assert_eq!(
        h.prepare(1, tid),
        vec![
            Fx::Point(CrashPoint::Prepare),
            Fx::Log(prepare_record(tid, "x", "1", 0)),
            Fx::Point(CrashPoint::Vote),
            Fx::Send(
                0,
                Message::Vote {
                    tid,
                    vote: Vote::Yes { prepare_ts: 0 }
                }
            ),
        ]
    );
    h.prepare(2, tid);
    let vote = |ts| Message::Vote {
        tid,
        vote: Vote::Yes { prepare_ts: ts },
    };
    assert!(h.message(1, 0, vote(1)).is_empty());
    assert_eq!(
        view(h.message(2, 0, vote(1))),
        vec![
            Fx::Point(CrashPoint::Decide),
            Fx::Log(Record::Decision {
                tid,
                participants: vec![1, 2],
                commit_ts: 2
            }),
            Fx::Point(CrashPoint::Decision),
            Fx::Send(1, Message::Commit { tid, commit_ts: 2 }),
            Fx::Point(CrashPoint::Broadcast),
            Fx::Send(2, Message::Commit { tid, commit_ts: 2 }),
            Fx::Committed,
        ]
    );
    assert_eq!(
        view(h.message(0, 1, Message::Commit { tid, commit_ts: 2 })),
        vec![
            Fx::Point(CrashPoint::Commit),
            Fx::Log(Record::Commit { tid, commit_ts: 2 }),
            Fx::Point(CrashPoint::Ack),
            Fx::Durable(0, Message::Ack { tid }),
        ]
    );
    assert_eq!(h.nodes[1].participant().store().get("x"), Some("1"));
    assert!(h.nodes[1].participant().locks().is_empty());
    assert!(moves(h.message(1, 0, Message::Ack { tid })).is_empty());
    assert_eq!(
        moves(h.message(2, 0, Message::Ack { tid })),
        vec![Fx::Log(Record::End { tid })]
    );
    assert!(h.nodes[0].coordinator().decided().is_empty());
}

#[test]
fn duplicates_are_harmless() {
    let mut h = Harness::new();
    let tid = h.prepared_pair();
    h.prepare(1, tid);
    // A second PREPARE re-sends the vote without logging again.
    assert_eq!(
        moves(h.message(
            0,
            1,
            Message::Prepare {
                tid,
                participants: vec![1, 2]
            }
        )),
        vec![Fx::Send(
            0,
            Message::Vote {
                tid,
                vote: Vote::Yes { prepare_ts: 0 }
            }
        )]
    );
    h.message(0, 1, Message::Commit { tid, commit_ts: 5 });
    // A second COMMIT is acknowledged again, nothing logged or applied twice; the ack
    // still waits for the fsync, since the first Commit record may not be on disk yet.
    assert_eq!(
        moves(h.message(0, 1, Message::Commit { tid, commit_ts: 5 })),
        vec![Fx::Durable(0, Message::Ack { tid })]
    );
    // A duplicate vote for a transaction no longer collecting is ignored.
    h.prepare(2, tid);
    let vote = Message::Vote {
        tid,
        vote: Vote::Yes { prepare_ts: 1 },
    };
    h.message(1, 0, vote.clone());
    h.message(2, 0, vote.clone());
    assert!(h.message(2, 0, vote).is_empty());
    // A duplicate ACK after End is ignored.
    h.message(1, 0, Message::Ack { tid });
    h.message(2, 0, Message::Ack { tid });
    assert!(h.message(2, 0, Message::Ack { tid }).is_empty());
}

#[test]
fn a_no_vote_aborts_everywhere_without_a_decision_record() {
    let mut h = Harness::new();
    let tid = h.prepared_pair();
    h.prepare(1, tid);
    let no = Message::Vote {
        tid,
        vote: Vote::No {
            reason: "lost".into(),
        },
    };
    assert_eq!(
        moves(h.message(2, 0, no)),
        vec![
            Fx::Send(1, Message::Abort { tid }),
            Fx::Send(2, Message::Abort { tid }),
            Fx::Err(format!("{tid} aborted: node 2 voted NO: lost")),
        ]
    );
    // The prepared participant logs a lazy Abort and releases its lock.
    assert_eq!(
        moves(h.message(0, 1, Message::Abort { tid })),
        vec![Fx::Log(Record::Abort { tid })]
    );
    assert!(h.nodes[1].participant().locks().is_empty());
    assert_eq!(h.nodes[1].participant().store().get("x"), None);
    // A late vote is ignored; an inquiry is answered ABORT (presumed abort).
    let yes = Message::Vote {
        tid,
        vote: Vote::Yes { prepare_ts: 1 },
    };
    assert!(h.message(1, 0, yes).is_empty());
    assert_eq!(
        moves(h.message(1, 0, Message::Inquire { tid })),
        vec![Fx::Send(1, Message::Abort { tid })]
    );
}

#[test]
fn a_participant_without_the_workspace_votes_no() {
    let mut h = Harness::new();
    let tid = TxnId(1);
    let effects = moves(h.message(
        0,
        2,
        Message::Prepare {
            tid,
            participants: vec![1, 2],
        },
    ));
    assert!(matches!(
        &effects[..],
        [Fx::Send(
            0,
            Message::Vote {
                vote: Vote::No { .. },
                ..
            }
        )]
    ));
}

#[test]
fn one_participant_commits_in_one_phase() {
    let mut h = Harness::new();
    let tid = h.begin(0);
    h.write(1, tid, "x", "1", true);
    assert_eq!(
        h.request(
            0,
            Request::Commit {
                tid,
                participants: vec![1],
                clock: 0,
            }
        ),
        vec![Fx::Send(1, Message::CommitOnePhase { tid })]
    );
    assert_eq!(
        moves(h.message(0, 1, Message::CommitOnePhase { tid })),
        vec![
            Fx::Log(Record::OnePhaseCommit {
                tid,
                writes: vec![("x".into(), Some("1".into()))],
                commit_ts: 1
            }),
            Fx::Send(
                0,
                Message::OnePhaseOutcome {
                    tid,
                    aborted: None,
                    at: 1
                }
            ),
        ]
    );
    assert_eq!(
        moves(h.message(
            1,
            0,
            Message::OnePhaseOutcome {
                tid,
                aborted: None,
                at: 1
            }
        )),
        vec![Fx::Committed]
    );
}

#[test]
fn a_vote_timeout_aborts() {
    let mut h = Harness::new();
    let tid = h.prepared_pair();
    h.message(
        1,
        0,
        Message::Vote {
            tid,
            vote: Vote::Yes { prepare_ts: 1 },
        },
    );
    h.now = Duration::from_millis(999);
    assert!(h.input(0, Input::Tick).is_empty());
    h.now = Duration::from_secs(1);
    assert_eq!(
        moves(h.input(0, Input::Tick)),
        vec![
            Fx::Send(1, Message::Abort { tid }),
            Fx::Send(2, Message::Abort { tid }),
            Fx::Err(format!("{tid} aborted: node 2 did not vote within 1s")),
        ]
    );
}

#[test]
fn inquiries_wait_while_votes_are_collected() {
    let mut h = Harness::new();
    let tid = h.prepared_pair();
    assert!(h.message(1, 0, Message::Inquire { tid }).is_empty());
    h.message(
        1,
        0,
        Message::Vote {
            tid,
            vote: Vote::Yes { prepare_ts: 1 },
        },
    );
    h.message(
        2,
        0,
        Message::Vote {
            tid,
            vote: Vote::Yes { prepare_ts: 1 },
        },
    );
    assert_eq!(
        moves(h.message(1, 0, Message::Inquire { tid })),
        vec![Fx::Send(1, Message::Commit { tid, commit_ts: 2 })]
    );
}

#[test]
fn locks_conflict_and_reads_see_own_writes() {
    let mut h = Harness::new();
    let t1 = h.begin(0);
    let t2 = h.begin(0);
    h.write(1, t1, "x", "mine", true);
    assert_eq!(
        h.read(1, t1, "x", false),
        vec![Fx::Ok(Answer::Value(Some("mine".into())))]
    );
    assert_eq!(
        h.read(1, t2, "x", true),
        vec![Fx::Waiting("x".into(), vec![t1])]
    );
    // When t1 aborts, t2's read completes with the committed (absent) value.
    assert_eq!(
        moves(h.message(0, 1, Message::Abort { tid: t1 })),
        vec![Fx::Ok(Answer::Value(None))]
    );
}

#[test]
fn operations_of_aborted_or_forgotten_transactions_are_refused() {
    let mut h = Harness::new();
    let tid = h.begin(0);
    h.write(1, tid, "x", "1", true);
    h.message(0, 1, Message::Abort { tid });
    let refused = h.write(1, tid, "x", "2", false);
    assert!(matches!(&refused[..], [Fx::Err(e)] if e.contains("aborted")));
    // A later operation that finds no workspace knows the node lost it.
    let other = h.begin(0);
    let lost = h.write(2, other, "y", "1", false);
    assert!(
        matches!(&lost[..], [Fx::Err(e)] if e.contains("lost that work")),
        "{lost:?}"
    );
}

#[test]
fn a_coordinator_restart_kills_its_undecided_transactions() {
    let mut h = Harness::new();
    let tid = h.begin(0);
    h.write(1, tid, "x", "1", true);
    assert!(!h.nodes[1].participant().locks().is_empty());
    h.message(0, 1, Message::Restarted { live_from: 1000 });
    assert!(h.nodes[1].participant().locks().is_empty());
    assert!(h.nodes[1].participant().active().is_empty());
    let refused = h.write(1, tid, "z", "1", true);
    assert!(
        matches!(&refused[..], [Fx::Err(e)] if e.contains("coordinator node 0")),
        "{refused:?}"
    );
}

#[test]
fn a_deadlock_victim_is_aborted_where_it_waits() {
    let mut h = Harness::new();
    let t1 = h.begin(0);
    let t2 = h.begin(0);
    h.write(1, t1, "x", "1", true);
    h.write(1, t2, "y", "1", true);
    h.write(1, t2, "x", "2", false);
    let cycle = vec![t2, t1, t2];
    let victim = Message::DeadlockVictim { tid: t2, cycle };
    let effects = moves(h.message(1, 1, victim.clone()));
    assert!(
        matches!(&effects[..], [Fx::Err(e), Fx::Victim(t)]
            if e.contains("deadlock T4 -> T1 -> T4") && *t == t2),
        "{effects:?}"
    );
    // Every node that sees the cycle sends the same victim: the others find nothing.
    assert_eq!(moves(h.message(2, 1, victim)), vec![]);
    // The victim's locks are gone; t1 can take y.
    assert_eq!(h.write(1, t1, "y", "1", false), vec![Fx::Ok(Answer::Done)]);
}
