//! Reads for update stepped by hand: `GET key FOR UPDATE` takes the exclusive lock at the
//! read, so it conflicts with every other locked read and write of the key, still sees
//! the transaction's own writes, and votes READ-ONLY (releasing the lock) if nothing was
//! written. Two read-then-write increments of one key, which deadlock when they read
//! under shared locks, run one after the other when they read for update.

use super::{Fx, Harness, moves};
use kv2pc::lock::LockMode::{Exclusive, Shared};
use kv2pc::message::{Answer, Message, Request, Vote};
use kv2pc::wal::Record;
use kv2pc::{CrashPoint, TxnId};

/// The holders and waiters of `key` on `node`, with their modes.
type Locks = (
    Vec<(TxnId, kv2pc::lock::LockMode)>,
    Vec<(TxnId, kv2pc::lock::LockMode)>,
);

fn locks_of(h: &Harness, node: u32, key: &str) -> Locks {
    let snapshot = h.nodes[node as usize].participant().locks().snapshot();
    snapshot
        .into_iter()
        .find(|locks| locks.key == key)
        .map(|locks| (locks.holders, locks.waiters))
        .unwrap_or_default()
}

/// COMMIT of a transaction whose only participant is node 1: the coordinator's request,
/// then node 1's effects when it commits in one phase.
fn commit_on_node_1(h: &mut Harness, tid: TxnId) -> Vec<Fx> {
    let request = Request::Commit {
        tid,
        participants: vec![1],
        clock: 0,
    };
    assert_eq!(
        h.request(0, request),
        vec![Fx::Send(1, Message::CommitOnePhase { tid })]
    );
    moves(h.message(0, 1, Message::CommitOnePhase { tid }))
}

#[test]
fn a_read_for_update_blocks_plain_reads_reads_for_update_and_writes() {
    let mut h = Harness::new();
    let t1 = h.begin(0);
    let t2 = h.begin(0);
    let t3 = h.begin(0);
    let t4 = h.begin(0);
    assert_eq!(
        h.read_for_update(1, t1, "x", true),
        vec![Fx::Ok(Answer::Value(None))]
    );
    assert_eq!(
        h.read(1, t2, "x", true),
        vec![Fx::Waiting("x".into(), vec![t1])]
    );
    assert_eq!(
        h.read_for_update(1, t3, "x", true),
        vec![Fx::Waiting("x".into(), vec![t1, t2])]
    );
    assert_eq!(
        h.write(1, t4, "x", "4", true),
        vec![Fx::Waiting("x".into(), vec![t1, t2, t3])]
    );
    let (holders, waiters) = locks_of(&h, 1, "x");
    assert_eq!(holders, vec![(t1, Exclusive)]);
    assert_eq!(
        waiters,
        vec![(t2, Shared), (t3, Exclusive), (t4, Exclusive)]
    );
    // t1 ends: the plain reader gets its shared lock, and the others still wait for it.
    assert_eq!(
        moves(h.message(0, 1, Message::Abort { tid: t1 })),
        vec![Fx::Ok(Answer::Value(None))]
    );
    assert_eq!(locks_of(&h, 1, "x").0, vec![(t2, Shared)]);
}

#[test]
fn plain_reads_and_reads_for_update_block_a_read_for_update() {
    let mut h = Harness::new();
    let reader = h.begin(0);
    let updater = h.begin(0);
    let second = h.begin(0);
    h.read(1, reader, "x", true);
    assert_eq!(
        h.read_for_update(1, updater, "x", true),
        vec![Fx::Waiting("x".into(), vec![reader])]
    );
    // The plain reader commits: it only read, so it votes READ-ONLY, and the outcome
    // (COMMIT) releases its shared lock, which grants the read for update.
    assert_eq!(
        h.prepare(1, reader),
        vec![
            Fx::Point(CrashPoint::Prepare),
            Fx::Send(
                0,
                Message::Vote {
                    tid: reader,
                    vote: Vote::ReadOnly
                }
            ),
        ]
    );
    let commit = Message::Commit {
        tid: reader,
        commit_ts: 0,
    };
    assert_eq!(
        moves(h.message(0, 1, commit)),
        vec![Fx::Ok(Answer::Value(None))]
    );
    assert_eq!(
        h.read_for_update(1, second, "x", true),
        vec![Fx::Waiting("x".into(), vec![updater])]
    );
    assert_eq!(locks_of(&h, 1, "x").1, vec![(second, Exclusive)]);
}

#[test]
fn a_read_for_update_sees_the_transactions_own_write() {
    let mut h = Harness::new();
    let tid = h.begin(0);
    h.write(1, tid, "x", "mine", true);
    assert_eq!(
        h.read_for_update(1, tid, "x", false),
        vec![Fx::Ok(Answer::Value(Some("mine".into())))]
    );
    // And a shared read after it is granted under the exclusive lock already held.
    let other = h.begin(0);
    h.read_for_update(1, other, "y", true);
    assert_eq!(
        h.read(1, other, "y", false),
        vec![Fx::Ok(Answer::Value(None))]
    );
    assert_eq!(locks_of(&h, 1, "y").0, vec![(other, Exclusive)]);
}

#[test]
fn a_read_for_update_that_writes_nothing_votes_read_only_and_the_outcome_releases_it() {
    let mut h = Harness::new();
    let t1 = h.begin(0);
    let t2 = h.begin(0);
    h.read_for_update(1, t1, "x", true);
    h.read_for_update(1, t2, "x", true);
    assert_eq!(
        h.prepare(1, t1),
        vec![
            Fx::Point(CrashPoint::Prepare),
            Fx::Send(
                0,
                Message::Vote {
                    tid: t1,
                    vote: Vote::ReadOnly
                }
            ),
        ]
    );
    assert_eq!(
        locks_of(&h, 1, "x"),
        (vec![(t1, Exclusive)], vec![(t2, Exclusive)])
    );
    let commit = Message::Commit {
        tid: t1,
        commit_ts: 0,
    };
    assert_eq!(
        moves(h.message(0, 1, commit)),
        vec![Fx::Ok(Answer::Value(None))]
    );
    assert_eq!(locks_of(&h, 1, "x"), (vec![(t2, Exclusive)], vec![]));
}

#[test]
fn a_yes_voter_keeps_every_lock_until_the_outcome() {
    let mut h = Harness::new();
    let t1 = h.begin(0);
    let t2 = h.begin(0);
    h.read_for_update(1, t1, "r", true);
    h.write(1, t1, "w", "1", false);
    h.read(1, t2, "r", true);
    let prepare_ts = 0;
    assert_eq!(
        h.prepare(1, t1),
        vec![
            Fx::Point(CrashPoint::Prepare),
            Fx::Log(Record::Prepare {
                tid: t1,
                coordinator: 0,
                participants: vec![1, 2],
                writes: vec![("w".into(), Some("1".into()))],
                prepare_ts,
            }),
            Fx::Point(CrashPoint::Vote),
            Fx::Send(
                0,
                Message::Vote {
                    tid: t1,
                    vote: Vote::Yes { prepare_ts }
                }
            ),
        ]
    );
    // The key read for update stays locked with the written one until the outcome (a
    // restart in doubt would lock only the written key again: the Prepare record holds
    // no reads).
    assert_eq!(
        locks_of(&h, 1, "r"),
        (vec![(t1, Exclusive)], vec![(t2, Shared)])
    );
    assert_eq!(locks_of(&h, 1, "w").0, vec![(t1, Exclusive)]);
    let commit = Message::Commit {
        tid: t1,
        commit_ts: 1,
    };
    assert!(moves(h.message(0, 1, commit)).contains(&Fx::Ok(Answer::Value(None))));
    assert_eq!(locks_of(&h, 1, "r").0, vec![(t2, Shared)]);
}

#[test]
fn two_increments_deadlock_under_shared_reads() {
    let mut h = Harness::new();
    let t1 = h.begin(0);
    let t2 = h.begin(0);
    h.read(1, t1, "hot", true);
    h.read(1, t2, "hot", true);
    // Each wants to upgrade its shared lock and waits for the other's: a cycle, which
    // the cluster's deadlock detector breaks by aborting one of them.
    assert_eq!(
        h.write(1, t1, "hot", "1", false),
        vec![Fx::Waiting("hot".into(), vec![t2])]
    );
    assert_eq!(
        h.write(1, t2, "hot", "1", false),
        vec![Fx::Waiting("hot".into(), vec![t1])]
    );
}

#[test]
fn two_increments_for_update_never_deadlock() {
    // Whichever increment reads first, the other waits at its read, never while holding
    // a lock, and then reads the first one's value.
    for first_reader in [0, 1] {
        let mut h = Harness::new();
        let tids = [h.begin(0), h.begin(0)];
        let (first, second) = (tids[first_reader], tids[1 - first_reader]);
        assert_eq!(
            h.read_for_update(1, first, "hot", true),
            vec![Fx::Ok(Answer::Value(None))]
        );
        assert_eq!(
            h.read_for_update(1, second, "hot", true),
            vec![Fx::Waiting("hot".into(), vec![first])]
        );
        assert_eq!(
            h.write(1, first, "hot", "1", false),
            vec![Fx::Ok(Answer::Done)]
        );
        let committed = commit_on_node_1(&mut h, first);
        assert_eq!(
            committed[1..],
            [
                Fx::Ok(Answer::Value(Some("1".into()))),
                Fx::Send(
                    0,
                    Message::OnePhaseOutcome {
                        tid: first,
                        aborted: None,
                        at: 1,
                    }
                ),
            ]
        );
        assert_eq!(
            h.write(1, second, "hot", "2", false),
            vec![Fx::Ok(Answer::Done)]
        );
        commit_on_node_1(&mut h, second);
        let node = h.nodes[1].participant();
        assert!(node.locks().is_empty());
        assert!(node.locks().waits().is_empty());
        let check = h.begin(0);
        assert_eq!(
            h.read(1, check, "hot", true),
            vec![Fx::Ok(Answer::Value(Some("2".into())))]
        );
    }
}
