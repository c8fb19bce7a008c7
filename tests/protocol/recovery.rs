//! Recovery and termination stepped by hand: a node rebuilt from its log (and from a
//! checkpoint plus the log after it) holds its in-doubt transactions locked, redoes
//! commits, drops aborts, re-sends unended decisions, continues ids after its lease and
//! remembers outcomes for its peers; an in-doubt participant learns the outcome from a
//! peer (cooperative termination).

use super::*;

#[test]
fn recovery_restores_in_doubt_transactions_locked() {
    let tid = TxnId(1);
    let records = vec![prepare_record(tid, "x", "1", 3)];
    let (node, effects) = Node::recover(1, NODES, None, &records, Duration::ZERO);
    assert_eq!(node.participant().in_doubt().len(), 1);
    assert_eq!(node.participant().locks().snapshot()[0].key, "x");
    let effects = moves(effects);
    assert_eq!(effects[0], Fx::Send(0, Message::Inquire { tid }));
    assert!(effects.contains(&Fx::Send(0, Message::Restarted { live_from: 0 })));
    assert!(effects.contains(&Fx::Send(2, Message::Restarted { live_from: 0 })));
}

#[test]
fn recovery_redoes_commits_and_drops_aborts() {
    let (t1, t2, t3) = (TxnId(1), TxnId(4), TxnId(7));
    let records = vec![
        prepare_record(t1, "a", "1", 1),
        Record::Commit {
            tid: t1,
            commit_ts: 2,
        },
        prepare_record(t2, "b", "2", 3),
        Record::Abort { tid: t2 },
        Record::OnePhaseCommit {
            tid: t3,
            writes: vec![("c".into(), Some("3".into()))],
            commit_ts: 4,
        },
    ];
    let (node, _) = Node::recover(1, NODES, None, &records, Duration::ZERO);
    let store = node.participant().store();
    assert_eq!(
        (store.get("a"), store.get("b"), store.get("c")),
        (Some("1"), None, Some("3"))
    );
    assert!(node.participant().in_doubt().is_empty());
    assert!(node.participant().locks().is_empty());
}

#[test]
fn recovery_resends_unended_decisions_and_continues_ids_after_the_lease() {
    let tid = TxnId(1);
    let records = vec![
        Record::TidLease { upto: 1000 },
        Record::Decision {
            tid,
            participants: vec![1, 2],
            commit_ts: 5,
        },
        Record::Decision {
            tid: TxnId(4),
            participants: vec![1],
            commit_ts: 6,
        },
        Record::End { tid: TxnId(4) },
    ];
    let (mut node, effects) = Node::recover(0, NODES, None, &records, Duration::ZERO);
    let effects = moves(effects);
    assert_eq!(
        &effects[..2],
        &[
            Fx::Send(1, Message::Commit { tid, commit_ts: 5 }),
            Fx::Send(2, Message::Commit { tid, commit_ts: 5 }),
        ]
    );
    assert!(effects.contains(&Fx::Send(1, Message::Restarted { live_from: 1000 })));
    let mut out = Vec::new();
    node.handle(
        Input::Request {
            req: 0,
            request: Request::Begin { began: 1 },
        },
        Duration::ZERO,
        &Settings::default(),
        &mut out,
    );
    assert_eq!(
        moves(out),
        vec![
            Fx::Log(Record::TidLease { upto: 2000 }),
            Fx::Ok(Answer::Begun(TxnId::new(0, 1000, NODES), 1)),
        ]
    );
    // A checkpoint keeps the unended decision.
    assert_eq!(node.snapshot().decisions.len(), 1);
}

#[test]
fn checkpoint_plus_log_recovers_the_same_state_as_the_full_log() {
    let (t1, t2) = (TxnId(1), TxnId(4));
    let before = vec![
        prepare_record(t1, "a", "1", 1),
        Record::Commit {
            tid: t1,
            commit_ts: 2,
        },
        prepare_record(t2, "b", "2", 3),
        Record::TidLease { upto: 1000 },
    ];
    let after = vec![Record::Commit {
        tid: t2,
        commit_ts: 4,
    }];
    let (mid, _) = Node::recover(1, NODES, None, &before, Duration::ZERO);
    let snapshot = mid.snapshot();
    let (from_checkpoint, _) = Node::recover(1, NODES, Some(&snapshot), &after, Duration::ZERO);
    let full: Vec<Record> = before.into_iter().chain(after).collect();
    let (from_log, _) = Node::recover(1, NODES, None, &full, Duration::ZERO);
    assert_eq!(from_checkpoint.snapshot(), from_log.snapshot());
    assert_eq!(from_log.participant().store().get("b"), Some("2"));
}

#[test]
fn cooperative_termination_learns_a_commit_from_a_peer() {
    let mut h = Harness::new();
    let tid = h.prepared_pair();
    h.prepare(1, tid);
    h.prepare(2, tid);
    // Node 1 heard COMMIT; node 2 did not (the coordinator died mid-broadcast).
    h.message(0, 1, Message::Commit { tid, commit_ts: 2 });
    h.now = Duration::from_secs(1);
    let asked = moves(h.input(2, Input::Tick));
    assert_eq!(
        asked,
        vec![
            Fx::Send(0, Message::Inquire { tid }),
            Fx::Send(1, Message::Inquire { tid }),
        ]
    );
    let answer = moves(h.message(2, 1, Message::Inquire { tid }));
    assert_eq!(
        answer,
        vec![Fx::Send(2, Message::Commit { tid, commit_ts: 2 })]
    );
    // The peer's answer commits node 2, whose acknowledgement goes to the coordinator.
    assert_eq!(
        moves(h.message(1, 2, Message::Commit { tid, commit_ts: 2 })),
        vec![
            Fx::Log(Record::Commit { tid, commit_ts: 2 }),
            Fx::Durable(0, Message::Ack { tid }),
        ]
    );
    assert_eq!(h.nodes[2].participant().store().get("y"), Some("2"));
}

#[test]
fn cooperative_termination_aborts_at_a_peer_that_has_not_voted() {
    let mut h = Harness::new();
    let tid = h.prepared_pair();
    h.prepare(1, tid);
    // Node 2 has not voted: asked by node 1, it aborts at once and says so.
    assert_eq!(
        moves(h.message(1, 2, Message::Inquire { tid })),
        vec![Fx::Send(1, Message::Abort { tid })]
    );
    let vote = moves(h.message(
        0,
        2,
        Message::Prepare {
            tid,
            participants: vec![1, 2],
        },
    ));
    assert!(matches!(
        &vote[..],
        [Fx::Send(
            0,
            Message::Vote {
                vote: Vote::No { .. },
                ..
            }
        )]
    ));
    // A peer that is in doubt too stays silent.
    let mut h = Harness::new();
    let other = h.prepared_pair();
    h.prepare(1, other);
    h.prepare(2, other);
    assert!(h.message(1, 2, Message::Inquire { tid: other }).is_empty());
}

#[test]
fn recovery_remembers_outcomes_for_peers() {
    let (t1, t2) = (TxnId(1), TxnId(4));
    let records = vec![
        prepare_record(t1, "a", "1", 1),
        Record::Commit {
            tid: t1,
            commit_ts: 2,
        },
        prepare_record(t2, "b", "2", 3),
        Record::Abort { tid: t2 },
    ];
    let (mut node, _) = Node::recover(1, NODES, None, &records, Duration::ZERO);
    let mut out = Vec::new();
    node.handle(
        Input::Peer {
            from: 2,
            message: Message::Inquire { tid: t1 },
            clock: 0,
        },
        Duration::ZERO,
        &Settings::default(),
        &mut out,
    );
    node.handle(
        Input::Peer {
            from: 2,
            message: Message::Inquire { tid: t2 },
            clock: 0,
        },
        Duration::ZERO,
        &Settings::default(),
        &mut out,
    );
    assert_eq!(
        moves(out),
        vec![
            Fx::Send(
                2,
                Message::Commit {
                    tid: t1,
                    commit_ts: 2
                }
            ),
            Fx::Send(2, Message::Abort { tid: t2 }),
        ]
    );
}
