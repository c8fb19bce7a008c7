//! Read locks lost at a restart (issue 9, fault 3), stepped by hand in the adversarial
//! order. T1, begun at node 0, reads r on node 1 (and writes w there, so node 1 votes YES;
//! or writes nothing there, so it votes READ-ONLY) and writes v on node 2. Node 1 votes,
//! crashes and restarts while node 2's vote is still on its way: its read lock on r is
//! gone (the `Prepare` record holds no reads; a READ-ONLY voter logs nothing). T2 then
//! writes r at node 1 and commits there in one phase, and only afterwards does node 2's
//! vote reach the coordinator. T1 read r before T2 overwrote it, so T1 precedes T2 in
//! every serial order: T1 must abort, or commit below T2 (else a snapshot between the two
//! sees T2 without T1).
//!
//! The handshake that closes the window: the restarted node serves no locking operation
//! until every peer has answered its `RESTARTED` (each coordinator first aborting what a
//! vote of the old incarnation vouched for) or is known to be down.

use super::{Fx, Harness, moves};
use kv2pc::message::{Answer, Message, ReadAt, Request, Vote};
use kv2pc::node::{Input, Node};
use kv2pc::wal::Record;
use kv2pc::{Timestamp, TxnId};
use std::collections::VecDeque;

/// Messages sent and not yet delivered, in the order sent: (from, to, message).
type Wire = VecDeque<(u32, u32, Message)>;

/// Puts the messages among `effects`, sent by `from`, on the wire.
fn post(wire: &mut Wire, from: u32, effects: &[Fx]) {
    for fx in effects {
        if let Fx::Send(to, message) | Fx::Durable(to, message) = fx {
            wire.push_back((from, *to, message.clone()));
        }
    }
}

/// The commit timestamp a record among `effects` decided, if any.
fn committed_at(effects: &[Fx]) -> Option<Timestamp> {
    effects.iter().find_map(|fx| match fx {
        Fx::Log(Record::Decision { commit_ts, .. } | Record::OnePhaseCommit { commit_ts, .. }) => {
            Some(*commit_ts)
        }
        _ => None,
    })
}

/// Delivers one message, posting what it makes the receiver send; returns its effects.
fn deliver(h: &mut Harness, wire: &mut Wire, (from, to, message): (u32, u32, Message)) -> Vec<Fx> {
    let effects = moves(h.message(from, to, message));
    post(wire, to, &effects);
    effects
}

/// Delivers everything on the wire, in order, until nothing more is sent; returns every
/// effect, with the node it happened on.
fn drain(h: &mut Harness, wire: &mut Wire) -> Vec<(u32, Fx)> {
    let mut seen = Vec::new();
    while let Some(envelope) = wire.pop_front() {
        let to = envelope.1;
        seen.extend(deliver(h, wire, envelope).into_iter().map(|fx| (to, fx)));
    }
    seen
}

/// Takes the first message on the wire that `pick` accepts.
fn take(wire: &mut Wire, pick: impl Fn(&(u32, u32, Message)) -> bool) -> (u32, u32, Message) {
    let index = wire
        .iter()
        .position(pick)
        .expect("no such message on the wire");
    wire.remove(index).expect("the index was just found")
}

/// T1 as the module doc describes, with phase 1 under way: node 1 has voted and its
/// vote is counted at node 0; node 2's vote is on the wire. Returns T1, node 1's log
/// records (what its recovery replays), and the wire.
fn t1_with_node_2_vote_pending(
    h: &mut Harness,
    writes_at_node_1: bool,
) -> (TxnId, Vec<Record>, Wire) {
    let t1 = h.begin(0);
    assert_eq!(h.read(1, t1, "r", true), vec![Fx::Ok(Answer::Value(None))]);
    if writes_at_node_1 {
        assert_eq!(h.write(1, t1, "w", "1", false), vec![Fx::Ok(Answer::Done)]);
    }
    assert_eq!(h.write(2, t1, "v", "1", true), vec![Fx::Ok(Answer::Done)]);
    let commit = Request::Commit {
        tid: t1,
        participants: vec![1, 2],
        clock: 0,
    };
    let mut wire = Wire::new();
    post(&mut wire, 0, &h.request(0, commit));
    let prepare_1 = take(&mut wire, |(_, to, _)| *to == 1);
    let voted = deliver(h, &mut wire, prepare_1);
    let expected = if writes_at_node_1 {
        Vote::Yes { prepare_ts: 0 }
    } else {
        Vote::ReadOnly
    };
    assert!(
        voted.contains(&Fx::Send(
            0,
            Message::Vote {
                tid: t1,
                vote: expected
            }
        )),
        "{voted:?}"
    );
    let records: Vec<Record> = (voted.iter())
        .filter_map(|fx| match fx {
            Fx::Log(record) => Some(record.clone()),
            _ => None,
        })
        .collect();
    let vote_1 = take(&mut wire, |(from, _, _)| *from == 1);
    assert!(
        deliver(h, &mut wire, vote_1).is_empty(),
        "node 2 has not voted yet"
    );
    let prepare_2 = take(&mut wire, |(_, to, _)| *to == 2);
    deliver(h, &mut wire, prepare_2);
    assert!(matches!(
        wire.back(),
        Some((
            2,
            0,
            Message::Vote {
                vote: Vote::Yes { .. },
                ..
            }
        ))
    ));
    (t1, records, wire)
}

/// Node 1 crashes and recovers from `records`; its recovery's messages go on the wire
/// (behind node 2's vote, which the coordinator has not handled yet).
fn restart_node_1(h: &mut Harness, records: &[Record], wire: &mut Wire) {
    let (node, recovery) = Node::recover(1, super::NODES, None, records, h.now);
    h.nodes[1] = node;
    post(wire, 1, &moves(recovery));
}

/// T2 writes r at node 1, then commits there in one phase: at once if node 1 answers
/// the write, else once it does. Node 2's vote for T1 reaches node 0 after T2's write
/// was sent and, if node 1 answered at once, after T2 committed. Returns the commit
/// timestamps of T1 (`None`: aborted) and T2.
fn t2_overwrites_r_before_t1_is_decided(
    h: &mut Harness,
    t1: TxnId,
    mut wire: Wire,
) -> (Option<Timestamp>, Timestamp) {
    let t2 = h.begin(0);
    let mut answered = h.write(1, t2, "r", "2", true) == vec![Fx::Ok(Answer::Done)];
    let mut t2_ts = None;
    let commit_t2 = |h: &mut Harness| {
        let request = Request::Commit {
            tid: t2,
            participants: vec![1],
            clock: 0,
        };
        assert_eq!(
            h.request(0, request),
            vec![Fx::Send(1, Message::CommitOnePhase { tid: t2 })]
        );
        let effects = moves(h.message(0, 1, Message::CommitOnePhase { tid: t2 }));
        committed_at(&effects).expect("T2 commits in one phase at node 1")
    };
    if answered {
        t2_ts = Some(commit_t2(h));
    }
    let vote_2 = take(&mut wire, |(from, _, m)| {
        *from == 2 && matches!(m, Message::Vote { .. })
    });
    let decided = deliver(h, &mut wire, vote_2);
    let mut t1_ts = committed_at(&decided);
    for (node, fx) in drain(h, &mut wire) {
        if node == 1 && fx == Fx::Ok(Answer::Done) {
            answered = true;
        }
        if let Fx::Log(Record::Decision { tid, commit_ts, .. }) = fx
            && tid == t1
        {
            t1_ts = Some(commit_ts);
        }
    }
    assert!(
        answered,
        "node 1 never served T2's write once its restart was known"
    );
    let t2_ts = t2_ts.unwrap_or_else(|| commit_t2(h));
    let aborted = h.nodes[0].coordinator().open_transactions().is_empty()
        && !h.nodes[0].coordinator().decided().contains_key(&t1);
    assert!(
        t1_ts.is_some() || aborted,
        "T1 is neither committed nor aborted"
    );
    (t1_ts, t2_ts)
}

/// The serialization property: T1 read r before T2 overwrote it.
fn assert_t1_before_t2(t1_ts: Option<Timestamp>, t2_ts: Timestamp) {
    if let Some(t1_ts) = t1_ts {
        assert!(
            t1_ts < t2_ts,
            "T2 committed at {t2_ts}, below T1's {t1_ts}, though T1 read r before T2 \
             overwrote it: a snapshot at {t2_ts} sees T2 without T1"
        );
    }
}

#[test]
fn a_yes_voter_that_restarts_lets_no_writer_of_a_key_it_read_commit_below_the_reader() {
    let mut h = Harness::new();
    let (t1, records, mut wire) = t1_with_node_2_vote_pending(&mut h, true);
    assert!(!records.is_empty(), "a YES vote logs a Prepare record");
    restart_node_1(&mut h, &records, &mut wire);
    let (t1_ts, t2_ts) = t2_overwrites_r_before_t1_is_decided(&mut h, t1, wire);
    assert_t1_before_t2(t1_ts, t2_ts);
}

#[test]
fn a_read_only_voter_that_restarts_lets_no_writer_of_a_key_it_read_commit_below_the_reader() {
    let mut h = Harness::new();
    let (t1, records, mut wire) = t1_with_node_2_vote_pending(&mut h, false);
    assert!(records.is_empty(), "a READ-ONLY vote logs nothing");
    restart_node_1(&mut h, &records, &mut wire);
    let (t1_ts, t2_ts) = t2_overwrites_r_before_t1_is_decided(&mut h, t1, wire);
    assert_t1_before_t2(t1_ts, t2_ts);
}

#[test]
fn a_coordinator_told_of_a_restart_aborts_what_the_old_votes_vouched_for() {
    for writes_at_node_1 in [true, false] {
        let mut h = Harness::new();
        let (t1, records, mut wire) = t1_with_node_2_vote_pending(&mut h, writes_at_node_1);
        restart_node_1(&mut h, &records, &mut wire);
        // Node 1's announcement reaches node 0 before node 2's vote does.
        let announced = take(&mut wire, |(from, to, m)| {
            (*from, *to) == (1, 0) && matches!(m, Message::Restarted { .. })
        });
        let effects = deliver(&mut h, &mut wire, announced);
        assert!(
            effects.contains(&Fx::Send(1, Message::Abort { tid: t1 }))
                && effects.contains(&Fx::Send(2, Message::Abort { tid: t1 })),
            "{effects:?}"
        );
        assert!(
            effects.iter().any(|fx| matches!(fx, Fx::Err(e)
                if e.contains("T1 aborted") && e.contains("node 1 crashed and restarted"))),
            "{effects:?}"
        );
        assert_eq!(effects.last(), Some(&Fx::Durable(1, Message::RestartAck)));
        // Node 2's vote comes too late to commit anything.
        let vote_2 = take(&mut wire, |(from, _, m)| {
            *from == 2 && matches!(m, Message::Vote { .. })
        });
        assert!(deliver(&mut h, &mut wire, vote_2).is_empty());
        drain(&mut h, &mut wire);
        assert!(h.nodes[1].participant().locks().is_empty());
        assert!(h.nodes[2].participant().locks().is_empty());
        assert!(h.nodes[1].participant().in_doubt().is_empty());
    }
}

#[test]
fn a_restarted_node_holds_locking_operations_until_every_peer_has_answered() {
    let mut h = Harness::new();
    let mut wire = Wire::new();
    restart_node_1(&mut h, &[], &mut wire);
    let t2 = h.begin(0);
    assert!(
        h.write(1, t2, "r", "2", true).is_empty(),
        "held, not answered"
    );
    let t3 = h.begin(2);
    assert!(h.read(1, t3, "q", true).is_empty(), "held, not answered");
    assert!(h.nodes[1].participant().locks().is_empty());
    assert_eq!(h.nodes[1].participant().rejoining(), vec![0, 2]);
    // Snapshot reads take no locks: they go on.
    let snapshot = Request::SnapshotRead {
        key: "r".into(),
        at: ReadAt::AtLeast(0),
    };
    assert!(matches!(
        h.request(1, snapshot).as_slice(),
        [Fx::Ok(Answer::Snapshot { value: None, .. })]
    ));
    // Node 0 answers; node 2 has not yet: still held.
    let to_0 = take(&mut wire, |(_, to, _)| *to == 0);
    let ack_0 = deliver(&mut h, &mut wire, to_0);
    assert_eq!(ack_0, vec![Fx::Durable(1, Message::RestartAck)]);
    let ack = take(&mut wire, |(from, _, _)| *from == 0);
    assert!(deliver(&mut h, &mut wire, ack).is_empty());
    assert_eq!(h.nodes[1].participant().rejoining(), vec![2]);
    // Node 2's answer lets both operations through, in the order they came.
    let to_2 = take(&mut wire, |(_, to, _)| *to == 2);
    deliver(&mut h, &mut wire, to_2);
    let ack = take(&mut wire, |(from, _, _)| *from == 2);
    assert_eq!(
        deliver(&mut h, &mut wire, ack),
        vec![Fx::Ok(Answer::Done), Fx::Ok(Answer::Value(None))]
    );
    assert_eq!(h.nodes[1].participant().active(), vec![t2, t3]);
    assert!(h.nodes[1].participant().rejoining().is_empty());
    // Once rejoined, it serves at once.
    assert_eq!(h.write(1, t2, "s", "2", false), vec![Fx::Ok(Answer::Done)]);
}

#[test]
fn a_restarted_node_does_not_wait_for_a_peer_that_is_down() {
    let mut h = Harness::new();
    let mut wire = Wire::new();
    restart_node_1(&mut h, &[], &mut wire);
    // Coordinated by node 1 itself, so node 0's restart below does not end it.
    let t2 = h.begin(1);
    assert!(h.write(1, t2, "r", "2", true).is_empty());
    // Node 2 is down: the router hands the announcement back, undelivered.
    let (_, _, lost) = take(&mut wire, |(_, to, _)| *to == 2);
    let undelivered = Input::Undelivered {
        to: 2,
        message: lost,
    };
    assert!(
        moves(h.input(1, undelivered)).is_empty(),
        "node 0 has not answered"
    );
    // Node 0 restarts (from its log, which is empty): a restarted peer has no votes of
    // this node's old incarnation, so its own announcement answers this node's.
    let (node, recovery) = Node::recover(0, super::NODES, None, &[], h.now);
    h.nodes[0] = node;
    wire.retain(|(_, to, _)| *to != 0);
    post(&mut wire, 0, &moves(recovery));
    let to_1 = take(&mut wire, |(from, to, _)| (*from, *to) == (0, 1));
    let effects = deliver(&mut h, &mut wire, to_1);
    assert_eq!(
        effects,
        vec![Fx::Durable(0, Message::RestartAck), Fx::Ok(Answer::Done)]
    );
}

#[test]
fn a_restarted_node_announces_again_until_answered_so_a_peer_that_crashed_cannot_stall_it() {
    let mut h = Harness::new();
    let mut wire = Wire::new();
    restart_node_1(&mut h, &[], &mut wire);
    let t2 = h.begin(0);
    assert!(h.write(1, t2, "r", "2", true).is_empty());
    // Node 0 answers; node 2 crashed with the announcement in its inbox.
    let to_0 = take(&mut wire, |(_, to, _)| *to == 0);
    deliver(&mut h, &mut wire, to_0);
    let ack = take(&mut wire, |(from, _, _)| *from == 0);
    deliver(&mut h, &mut wire, ack);
    wire.clear();
    // The first tick only schedules; one inquiry interval later, node 2 is asked again,
    // and only node 2.
    assert!(moves(h.input(1, Input::Tick)).is_empty());
    h.now += h.settings.inquiry_interval;
    let again = moves(h.input(1, Input::Tick));
    assert_eq!(
        again,
        vec![Fx::Send(2, Message::Restarted { live_from: 0 })]
    );
    // That one is lost too, and the router says so: node 2 is down, so it holds nothing.
    let undelivered = Input::Undelivered {
        to: 2,
        message: Message::Restarted { live_from: 0 },
    };
    assert_eq!(moves(h.input(1, undelivered)), vec![Fx::Ok(Answer::Done)]);
    h.now += h.settings.inquiry_interval;
    assert!(
        moves(h.input(1, Input::Tick)).is_empty(),
        "nothing more to announce"
    );
}

#[test]
fn a_repeated_announcement_aborts_nothing_begun_after_the_restart() {
    let mut h = Harness::new();
    let mut wire = Wire::new();
    restart_node_1(&mut h, &[], &mut wire);
    let announcement = (1, 0, Message::Restarted { live_from: 0 });
    // Every peer answers: node 1 serves.
    drain(&mut h, &mut wire);
    let t2 = h.begin(0);
    assert_eq!(h.write(1, t2, "r", "2", true), vec![Fx::Ok(Answer::Done)]);
    assert_eq!(h.write(2, t2, "v", "2", true), vec![Fx::Ok(Answer::Done)]);
    let commit = Request::Commit {
        tid: t2,
        participants: vec![1, 2],
        clock: 0,
    };
    post(&mut wire, 0, &h.request(0, commit));
    // A re-announcement sent before the answers came arrives late, before node 1's
    // vote (messages between two nodes arrive in order): no vote of the old
    // incarnation is counted, so nothing is aborted.
    assert_eq!(
        deliver(&mut h, &mut wire, announcement),
        vec![Fx::Durable(1, Message::RestartAck)]
    );
    let seen = drain(&mut h, &mut wire);
    assert!(
        seen.iter()
            .any(|(node, fx)| *node == 0 && *fx == Fx::Committed),
        "{seen:?}"
    );
}
