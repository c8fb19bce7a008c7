//! The crash matrix: every crash point, crossed with who dies, the transaction's shape and
//! the order of the restarts, proves DESIGN.md's invariants hold after recovery.
//!
//! The cases are generated from [`CrashPoint::ALL`], so a new point is covered without a
//! new test. Each case runs one transaction writing a unique value on each of its
//! participants, in a fresh 4-node cluster on the manual clock, with node 0 coordinating:
//!
//! - **commit mode**: classic and parallel (`SET commit parallel`), each with the points
//!   its transactions pass (`decide` is classic's only; `staging` and `staged` are
//!   parallel's);
//! - **point**: every [`CrashPoint`];
//! - **who dies**: the coordinator; one participant (the last, which a broadcast cut short
//!   does not reach); two participants; the coordinator and one participant (the first).
//!   The point is armed on the named nodes that play its role; the named nodes of the
//!   other role are killed outright once the armed ones have died and the cluster has
//!   settled. A combination naming no node of the point's role is not a crash at that
//!   point, so it is not generated;
//! - **shape**: 1, 2 or 3 participants (one participant commits in one phase, where only
//!   the participant's `commit` and `ack` points exist), with the coordinator apart
//!   (participants from nodes 1..=3) or also a participant (nodes 0, 1, 2);
//! - **restart order**: the dead nodes restarted in ascending order (the coordinator
//!   first) and descending (the coordinator last);
//! - **timing**: restarts after the client has its answer, and, where the client is
//!   still waiting for the vote timeout, also before it.
//!
//! After recovery every case asserts: the client was told what the protocol promises at
//! that point; the transaction has one outcome on every participant (all its writes
//! visible, or none); if told Committed they are visible, if told Aborted they are not;
//! no node is in doubt, no decision is unacknowledged, no lock is held, no transaction is
//! left open; and the cluster still commits over the same keys.

mod support;

use kv2pc::message::{Effect, Message, Request};
use kv2pc::node::{Input, Node};
use kv2pc::{CommitMode, CrashPoint, Error, NodeId, Settings, TxnId};
use std::fmt;
use std::time::{Duration, Instant};
use support::Harness;

const NODES: u32 = 4;
const COORDINATOR: NodeId = 0;

/// Which nodes a case kills, by role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Victims {
    Coordinator,
    OneParticipant,
    TwoParticipants,
    CoordinatorAndParticipant,
}

impl Victims {
    const ALL: [Victims; 4] = [
        Victims::Coordinator,
        Victims::OneParticipant,
        Victims::TwoParticipants,
        Victims::CoordinatorAndParticipant,
    ];

    /// The nodes named, given the participants other than the coordinator; `None` if the
    /// transaction has too few of them.
    fn nodes(self, others: &[NodeId]) -> Option<Vec<NodeId>> {
        match self {
            Victims::Coordinator => Some(vec![COORDINATOR]),
            Victims::OneParticipant => others.last().map(|p| vec![*p]),
            Victims::TwoParticipants => (others.len() >= 2).then(|| others[..2].to_vec()),
            Victims::CoordinatorAndParticipant => others.first().map(|p| vec![COORDINATOR, *p]),
        }
    }
}

/// When the dead nodes come back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Timing {
    /// After the client has its answer.
    AfterAnswer,
    /// While the client still waits, before the vote timeout passes.
    BeforeTimeout,
}

/// What the client hears.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Told {
    Committed,
    Aborted,
    Unknown,
}

/// One generated case.
#[derive(Clone, Debug)]
struct Case {
    mode: CommitMode,
    point: CrashPoint,
    victims: Victims,
    participants: Vec<NodeId>,
    /// Nodes the point is armed on.
    armed: Vec<NodeId>,
    /// Nodes killed outright once the armed ones are dead.
    killed: Vec<NodeId>,
    restart_order: Vec<NodeId>,
    timing: Timing,
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} commit, point {}, {:?} die (armed on {:?}, killed {:?}), participants {:?} \
             coordinated by node {COORDINATOR}, restarts {:?} {:?}",
            self.mode,
            self.point,
            self.victims,
            self.armed,
            self.killed,
            self.participants,
            self.restart_order,
            self.timing
        )
    }
}

/// Whether a transaction over `participants` nodes passes `point` at all in `mode`: one
/// participant commits in one phase, with no prepare, vote or coordinator decision; a
/// staged commit has no `decide` (what is durable decides it), a classic one no staging.
fn reached(mode: CommitMode, point: CrashPoint, participants: usize) -> bool {
    if participants < 2 {
        return matches!(point, CrashPoint::Commit | CrashPoint::Ack);
    }
    match mode {
        CommitMode::Classic => !point.is_parallel_only(),
        CommitMode::Parallel => point != CrashPoint::Decide,
    }
}

/// Whether `node` plays `point`'s role in a transaction over `participants`.
fn plays_role(point: CrashPoint, node: NodeId, participants: &[NodeId]) -> bool {
    if point.is_participant() {
        participants.contains(&node)
    } else {
        node == COORDINATOR
    }
}

/// Every case in `mode` for transactions whose coordinator is, or is not, also a
/// participant.
fn cases(mode: CommitMode, coordinator_participates: bool) -> Vec<Case> {
    let first = if coordinator_participates { 0 } else { 1 };
    let mut cases = Vec::new();
    for size in 1..=3 {
        let participants: Vec<NodeId> = (first..first + size).collect();
        let others: Vec<NodeId> = (participants.iter().copied())
            .filter(|p| *p != COORDINATOR)
            .collect();
        for point in CrashPoint::ALL {
            if !reached(mode, point, participants.len()) {
                continue;
            }
            for victims in Victims::ALL {
                let Some(named) = victims.nodes(&others) else {
                    continue;
                };
                let (armed, killed): (Vec<NodeId>, Vec<NodeId>) =
                    (named.iter()).partition(|node| plays_role(point, **node, &participants));
                if armed.is_empty() {
                    continue;
                }
                let mut orders = vec![named.clone()];
                if named.len() > 1 {
                    orders.push(named.iter().rev().copied().collect());
                }
                let case = Case {
                    mode,
                    point,
                    victims,
                    participants: participants.clone(),
                    armed,
                    killed,
                    restart_order: Vec::new(),
                    timing: Timing::AfterAnswer,
                };
                let client_waits = client_waits(&case);
                for order in orders {
                    let case = Case {
                        restart_order: order,
                        ..case.clone()
                    };
                    if client_waits {
                        cases.push(Case {
                            timing: Timing::BeforeTimeout,
                            ..case.clone()
                        });
                    }
                    cases.push(case);
                }
            }
        }
    }
    cases
}

fn coordinator_dies(case: &Case) -> bool {
    case.armed.contains(&COORDINATOR) || case.killed.contains(&COORDINATOR)
}

/// Whether the client is still waiting once the nodes are dead: the coordinator lives
/// and no decision can be made without a vote (or a one-phase outcome) that never comes.
fn client_waits(case: &Case) -> bool {
    !coordinator_dies(case)
        && (matches!(case.point, CrashPoint::Prepare | CrashPoint::Vote)
            || case.participants.len() == 1)
}

/// What the protocol promises: what the client is told and whether the writes survive.
fn expected(case: &Case) -> (Told, bool) {
    let coordinator_dies = coordinator_dies(case);
    let staged = case.mode == CommitMode::Parallel && case.participants.len() >= 2;
    match case.point {
        // Staged: the coordinator's `Staged` was durable when it was killed, and so was
        // every participant's Prepare (the armed one died after logging its own), so the
        // transaction is committed though nobody decided it: status resolution finds
        // every participant prepared.
        CrashPoint::Vote if staged && coordinator_dies => (Told::Unknown, true),
        // The PREPAREs went out, `Staged` never reached the disk: nothing says it may
        // commit, and a participant's inquiry finds no record (presumed abort).
        CrashPoint::Staging => (Told::Unknown, false),
        // Every Prepare and `Staged` are durable: committed, and the client was told so
        // before the coordinator died, its Decision unwritten.
        CrashPoint::Staged => (Told::Committed, true),
        // The client is told before the Decision is forced.
        CrashPoint::Decision | CrashPoint::Broadcast if staged => (Told::Committed, true),
        // Nothing decided: presumed abort. The client learns it at the vote timeout, or
        // not at all if the coordinator died while waiting for the vote.
        CrashPoint::Prepare | CrashPoint::Vote | CrashPoint::Decide => {
            let told = if coordinator_dies || case.point == CrashPoint::Decide {
                Told::Unknown
            } else {
                Told::Aborted
            };
            (told, false)
        }
        // One phase: the participant decides alone and dies before (commit) or after
        // (ack) logging it, so the coordinator cannot tell the client either way.
        CrashPoint::Commit | CrashPoint::Ack if case.participants.len() == 1 => {
            (Told::Unknown, case.point == CrashPoint::Ack)
        }
        // Two phases: the decision was logged and the client told before any COMMIT
        // reached a participant.
        CrashPoint::Commit | CrashPoint::Ack => (Told::Committed, true),
        // The decision is logged: recovery finishes the commit the client never heard of.
        CrashPoint::Decision | CrashPoint::Broadcast => (Told::Unknown, true),
    }
}

fn told(result: kv2pc::Result<()>, case: &Case) -> Told {
    match result {
        Ok(()) => Told::Committed,
        Err(Error::Aborted { .. }) => Told::Aborted,
        Err(Error::OutcomeUnknown { .. }) => Told::Unknown,
        // The only participant of a one-phase commit died: the outcome is its to know.
        Err(Error::NodeDown { node, .. })
            if case.participants.len() == 1 && case.participants.contains(&node) =>
        {
            Told::Unknown
        }
        Err(other) => panic!("{case}: commit failed unexpectedly: {other}"),
    }
}

fn restart_all(harness: &Harness, case: &Case) {
    for node in &case.restart_order {
        harness
            .cluster()
            .restart(*node)
            .unwrap_or_else(|e| panic!("{case}: restarting node {node}: {e}"));
        harness.settle(case);
    }
}

/// Runs one case and asserts every invariant.
fn run(case: &Case) {
    let settings = Settings {
        commit: case.mode,
        ..Settings::default()
    };
    let harness = Harness::open_with(NODES, settings);
    let cluster = harness.cluster();
    let writes: Vec<(String, String)> = (case.participants.iter())
        .map(|p| (harness.keys_on(*p, 1, "k").remove(0), format!("v{p}")))
        .collect();
    let client = cluster.client(COORDINATOR).unwrap();
    let mut txn = client.begin().unwrap();
    for (key, value) in &writes {
        txn.put(key, value).unwrap();
    }
    for node in &case.armed {
        cluster.arm_crash(*node, case.point).unwrap();
    }
    let committing = std::thread::spawn(move || txn.commit());
    // Every point is reached without a timeout; the commit may not have been sent yet.
    let deadline = Instant::now() + Duration::from_secs(10);
    while case.armed.iter().any(|node| cluster.is_up(*node)) {
        assert!(
            Instant::now() < deadline,
            "{case}: the armed point was never reached; status {:?}",
            cluster.status()
        );
        std::thread::sleep(Duration::from_micros(100));
        harness.settle(case);
    }
    for node in &case.killed {
        cluster.crash(*node).unwrap();
    }
    if case.timing == Timing::BeforeTimeout {
        restart_all(&harness, case);
    }
    let result = harness.finish(committing, case);
    if case.timing == Timing::AfterAnswer {
        restart_all(&harness, case);
    }
    if let Err(left) = harness.resolve(case) {
        panic!("{case}: recovery left {left:?}");
    }
    let told = told(result, case);
    let data = harness.data();
    let visible: Vec<bool> = (writes.iter())
        .map(|(key, value)| data.get(key) == Some(value))
        .collect();
    let committed = visible[0];
    assert!(
        visible.iter().all(|v| *v == committed),
        "{case}: atomicity: the writes are visible on some participants only: {visible:?}"
    );
    match told {
        Told::Committed => assert!(committed, "{case}: told Committed, but not visible"),
        Told::Aborted => assert!(!committed, "{case}: told Aborted, but visible"),
        Told::Unknown => {}
    }
    assert_eq!(
        (told, committed),
        expected(case),
        "{case}: (what the client was told, whether the writes survived)"
    );
    still_serves(&harness, case, &writes);
}

/// Clients see what the nodes store (a lock-free read of each key returns it), and the
/// keys are free again: a new transaction over them commits.
fn still_serves(harness: &Harness, case: &Case, writes: &[(String, String)]) {
    let client = harness.cluster().client(COORDINATOR).unwrap();
    let keys: Vec<String> = writes.iter().map(|(key, _)| key.clone()).collect();
    let stored = harness.data();
    let again = std::thread::spawn(move || -> kv2pc::Result<Vec<Option<String>>> {
        let read: Vec<Option<String>> = (keys.iter())
            .map(|key| client.get(key))
            .collect::<kv2pc::Result<_>>()?;
        let mut txn = client.begin()?;
        for key in &keys {
            txn.put(key, "again")?;
        }
        txn.commit()?;
        Ok(read)
    });
    let result = harness.join(again, case);
    let read = result.unwrap_or_else(|e| panic!("{case}: a later transaction failed: {e}"));
    // A client hears COMMIT before the participants apply it (in parallel mode, before
    // the Decision is even forced): the stores are read once the COMMITs have landed.
    harness.settle(case);
    for ((key, _), value) in writes.iter().zip(read) {
        assert_eq!(
            value.as_ref(),
            stored.get(key),
            "{case}: a client reads {key}"
        );
    }
    let data = harness.data();
    for (key, _) in writes {
        assert_eq!(data.get(key).map(String::as_str), Some("again"), "{case}");
    }
}

fn run_all(mode: CommitMode, coordinator_participates: bool) -> usize {
    let cases = cases(mode, coordinator_participates);
    for point in CrashPoint::ALL {
        if !reached(mode, point, 2) {
            continue;
        }
        assert!(
            cases.iter().any(|case| case.point == point),
            "no case crashes at {point}"
        );
    }
    for case in &cases {
        run(case);
    }
    cases.len()
}

#[test]
fn every_case_with_the_coordinator_apart_recovers_to_one_outcome() {
    let count = run_all(CommitMode::Classic, false);
    println!("crash matrix, coordinator not a participant: {count} cases run");
}

#[test]
fn every_case_with_the_coordinator_participating_recovers_to_one_outcome() {
    let count = run_all(CommitMode::Classic, true);
    println!("crash matrix, coordinator also a participant: {count} cases run");
}

#[test]
fn every_parallel_commit_case_with_the_coordinator_apart_recovers_to_one_outcome() {
    let count = run_all(CommitMode::Parallel, false);
    println!("crash matrix, parallel commits, coordinator not a participant: {count} cases run");
}

#[test]
fn every_parallel_commit_case_with_the_coordinator_participating_recovers_to_one_outcome() {
    let count = run_all(CommitMode::Parallel, true);
    println!("crash matrix, parallel commits, coordinator also a participant: {count} cases run");
}

/// An acknowledgement never leaves before the `Commit` record it vouches for is durable:
/// the coordinator forgets a decision once every participant has acknowledged it, so a
/// participant that acknowledged, then lost its `Commit` in a crash, would ask again and
/// be told ABORT (presumed abort) for a transaction its peers committed. The moment is
/// between two batches, before the next fsync, which no crash point names, so this is
/// checked on the state machine: a prepared participant gets COMMIT twice (the decision
/// and the answer to its own inquiry can arrive in one batch), and every acknowledgement
/// it emits must wait for the fsync. The free-running fault test caught the bug this
/// pins down, as a committed write lost on one participant.
#[test]
fn an_acknowledgement_waits_for_its_commit_record() {
    let mut participant = Node::new(1, 3);
    let settings = Settings::default();
    let tid = TxnId::new(COORDINATOR, 0, 3);
    let mut out = Vec::new();
    let write = Request::Write {
        tid,
        key: "x".into(),
        value: Some("1".into()),
        first: true,
        began: 1,
    };
    participant.handle(
        Input::Request {
            req: 0,
            request: write,
        },
        Duration::ZERO,
        &settings,
        &mut out,
    );
    let prepare = Message::Prepare {
        tid,
        participants: vec![1, 2],
    };
    let from_coordinator = |message| Input::Peer {
        from: COORDINATOR,
        message,
        clock: 0,
    };
    participant.handle(
        from_coordinator(prepare),
        Duration::ZERO,
        &settings,
        &mut out,
    );
    out.clear();
    for _ in 0..2 {
        let commit = Message::Commit { tid, commit_ts: 10 };
        participant.handle(
            from_coordinator(commit),
            Duration::ZERO,
            &settings,
            &mut out,
        );
    }
    let acks: Vec<bool> = (out.iter())
        .filter_map(|effect| match effect {
            Effect::Send {
                message: Message::Ack { .. },
                ..
            } => Some(false),
            Effect::SendDurable {
                message: Message::Ack { .. },
                ..
            } => Some(true),
            _ => None,
        })
        .collect();
    assert_eq!(
        acks,
        [true, true],
        "acknowledgements that wait for the fsync: {out:?}"
    );
}
