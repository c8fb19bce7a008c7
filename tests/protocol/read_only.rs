//! Read-only work stepped by hand: a read-only participant logs nothing and holds its
//! read locks until the outcome, a transaction read-only everywhere commits without a
//! log record, a restarted coordinator ends the read-only part of its old transactions,
//! and snapshot reads pass undecided writes unless they must see them.

use super::*;

#[test]
fn a_read_only_participant_logs_nothing_and_holds_its_read_locks_until_the_outcome() {
    let mut h = Harness::new();
    let tid = h.begin(0);
    assert_eq!(h.read(1, tid, "r", true), vec![Fx::Ok(Answer::Value(None))]);
    h.write(2, tid, "w", "v", true);
    h.request(
        0,
        Request::Commit {
            tid,
            participants: vec![1, 2],
            clock: 0,
        },
    );
    assert_eq!(
        h.prepare(1, tid),
        vec![
            Fx::Point(CrashPoint::Prepare),
            Fx::Send(
                0,
                Message::Vote {
                    tid,
                    vote: Vote::ReadOnly
                }
            ),
        ]
    );
    // Its read lock outlives the vote, so no writer of r can commit below this
    // transaction's commit timestamp.
    assert!(!h.nodes[1].participant().locks().is_empty());
    let writer = h.begin(2);
    assert!(matches!(
        h.write(1, writer, "r", "x", true).as_slice(),
        [Fx::Waiting(key, blockers)] if key == "r" && blockers == &vec![tid]
    ));
    h.prepare(2, tid);
    h.message(
        1,
        0,
        Message::Vote {
            tid,
            vote: Vote::ReadOnly,
        },
    );
    let decided = moves(h.message(
        2,
        0,
        Message::Vote {
            tid,
            vote: Vote::Yes { prepare_ts: 1 },
        },
    ));
    assert_eq!(
        decided,
        vec![
            Fx::Log(Record::Decision {
                tid,
                participants: vec![2],
                commit_ts: 2
            }),
            Fx::Send(2, Message::Commit { tid, commit_ts: 2 }),
            Fx::Send(1, Message::Commit { tid, commit_ts: 2 }),
            Fx::Committed,
        ]
    );
    // COMMIT ends the read-only part: no record, no acknowledgement, and the waiting
    // writer gets the lock.
    assert_eq!(
        view(h.message(0, 1, Message::Commit { tid, commit_ts: 2 })),
        vec![Fx::Ok(Answer::Done)]
    );
    assert!(h.nodes[1].participant().active() == vec![writer]);
}

#[test]
fn all_read_only_commits_without_logging() {
    let mut h = Harness::new();
    let tid = h.begin(0);
    h.read(1, tid, "a", true);
    h.read(2, tid, "b", true);
    h.request(
        0,
        Request::Commit {
            tid,
            participants: vec![1, 2],
            clock: 0,
        },
    );
    h.message(
        1,
        0,
        Message::Vote {
            tid,
            vote: Vote::ReadOnly,
        },
    );
    assert_eq!(
        moves(h.message(
            2,
            0,
            Message::Vote {
                tid,
                vote: Vote::ReadOnly
            }
        )),
        vec![
            Fx::Send(1, Message::Commit { tid, commit_ts: 0 }),
            Fx::Send(2, Message::Commit { tid, commit_ts: 0 }),
            Fx::Committed
        ]
    );
}

#[test]
fn a_restarted_coordinator_ends_the_read_only_part_of_its_old_transactions() {
    let mut h = Harness::new();
    let tid = h.begin(0);
    h.read(1, tid, "a", true);
    h.prepare(1, tid);
    assert!(!h.nodes[1].participant().locks().is_empty());
    let restarted = Message::Restarted { live_from: 1000 };
    assert_eq!(
        moves(h.message(0, 1, restarted)),
        vec![Fx::Durable(0, Message::RestartAck)]
    );
    assert!(h.nodes[1].participant().locks().is_empty());
}

#[test]
fn snapshot_reads_pass_undecided_writes_unless_they_must_see_them() {
    use kv2pc::message::ReadAt;
    let mut h = Harness::new();
    let setup = h.begin(0);
    h.write(1, setup, "x", "old", true);
    h.request(
        0,
        Request::Commit {
            tid: setup,
            participants: vec![1],
            clock: 0,
        },
    );
    h.message(0, 1, Message::CommitOnePhase { tid: setup });
    let tid = h.prepared_pair();
    let prepared = h.prepare(1, tid);
    let Fx::Log(Record::Prepare { prepare_ts, .. }) = &prepared[1] else {
        panic!("{prepared:?}")
    };
    let p = *prepare_ts;
    // A read that may pick its snapshot reads below the prepare, at once.
    let read = Request::SnapshotRead {
        key: "x".into(),
        at: ReadAt::AtLeast(0),
    };
    assert_eq!(
        h.request(1, read),
        vec![Fx::Ok(Answer::Snapshot {
            value: Some("old".into()),
            read_ts: p
        })]
    );
    // A read that must see past the prepare waits for the outcome ...
    let read = Request::SnapshotRead {
        key: "x".into(),
        at: ReadAt::Exactly(p + 5),
    };
    assert_eq!(h.request(1, read), vec![Fx::Waiting("x".into(), vec![tid])]);
    // ... and sees the write once it commits at or below its snapshot.
    let done = moves(h.message(
        0,
        1,
        Message::Commit {
            tid,
            commit_ts: p + 1,
        },
    ));
    assert!(
        done.contains(&Fx::Ok(Answer::Snapshot {
            value: Some("1".into()),
            read_ts: p + 5
        })),
        "{done:?}"
    );
}
