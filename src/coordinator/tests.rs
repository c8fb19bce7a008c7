//! Random sequences of inputs to one coordinator, checking after every step that each
//! transaction has one state and that the state's own invariants hold
//! (`Coordinator::check_invariants`). The inputs are any the coordinator accepts, in any
//! order: duplicate and late votes, acknowledgements and outcomes, a COMMIT of a
//! transaction it never began.

use super::*;
use crate::lock::LockMode;
use crate::message::StagedStatus;
use proptest::prelude::*;

const NODE: NodeId = 0;
const NODES: u32 = 3;

/// One input. Transactions are numbered 0..10: 0..6 the first ones this incarnation
/// begins, 6..8 its own from before the restart, 8..10 another coordinator's.
#[derive(Clone, Debug)]
enum Event {
    Begin,
    BeginAnd {
        write: bool,
        valid: bool,
    },
    Commit {
        txn: u8,
        participants: Vec<NodeId>,
    },
    Abort {
        txn: u8,
    },
    Vote {
        txn: u8,
        from: NodeId,
        vote: u8,
        prepare_ts: u64,
    },
    Ack {
        txn: u8,
        from: NodeId,
    },
    OnePhaseOutcome {
        txn: u8,
        aborted: bool,
    },
    Inquire {
        txn: u8,
        from: NodeId,
    },
    PeerRestarted {
        peer: NodeId,
    },
    Tick {
        ms: u64,
    },
}

/// The coordinator's restart: the lease its log reserved, and the decisions it owes.
#[derive(Clone, Debug)]
struct Recovery {
    lease: u64,
    decided: Vec<(u8, Vec<NodeId>)>,
}

fn tid(lease: u64, txn: u8) -> TxnId {
    let n = u64::from(txn);
    match txn {
        0..6 => TxnId::new(NODE, lease + n, NODES),
        6..8 => TxnId::new(NODE, n - 6, NODES),
        _ => TxnId::new(1, n - 8, NODES),
    }
}

fn participants() -> impl Strategy<Value = Vec<NodeId>> {
    prop::sample::subsequence(vec![0, 1, 2], 0..=3)
}

fn event() -> impl Strategy<Value = Event> {
    let txn = 0u8..10;
    let node = 0u32..3;
    prop_oneof![
        3 => Just(Event::Begin),
        1 => (any::<bool>(), prop::bool::weighted(0.9))
            .prop_map(|(write, valid)| Event::BeginAnd { write, valid }),
        3 => (txn.clone(), participants())
            .prop_map(|(txn, participants)| Event::Commit { txn, participants }),
        1 => txn.clone().prop_map(|txn| Event::Abort { txn }),
        12 => (txn.clone(), node.clone(), 0u8..5, 0u64..20)
            .prop_map(|(txn, from, vote, prepare_ts)| Event::Vote { txn, from, vote, prepare_ts }),
        2 => (txn.clone(), node.clone()).prop_map(|(txn, from)| Event::Ack { txn, from }),
        1 => (txn.clone(), any::<bool>())
            .prop_map(|(txn, aborted)| Event::OnePhaseOutcome { txn, aborted }),
        2 => (txn.clone(), node.clone()).prop_map(|(txn, from)| Event::Inquire { txn, from }),
        1 => node.prop_map(|peer| Event::PeerRestarted { peer }),
        2 => (0u64..400).prop_map(|ms| Event::Tick { ms }),
    ]
}

fn recovery() -> impl Strategy<Value = Recovery> {
    let decided =
        prop::collection::vec((6u8..8, prop::sample::subsequence(vec![1, 2], 1..=2)), 0..2);
    (prop::sample::select(vec![0, 2, LEASE_BLOCK - 1]), decided)
        .prop_map(|(lease, decided)| Recovery { lease, decided })
}

/// A coordinator restarted as `recovery` says (a fresh one if it owes nothing at lease 0).
fn recovered(recovery: &Recovery, out: &mut Vec<Effect>) -> Coordinator {
    let lease = if recovery.decided.is_empty() {
        recovery.lease
    } else {
        recovery.lease.max(2)
    };
    let decided = (recovery.decided.iter())
        .map(|(txn, participants)| {
            let decided = Decided {
                participants: participants.clone(),
                unacked: participants.iter().copied().collect(),
                commit_ts: u64::from(*txn),
                lowest_prepare_ts: u64::from(*txn).saturating_sub(1),
                unbarred: false,
            };
            (tid(lease, *txn), decided)
        })
        .collect();
    let coordinator = Coordinator::new(NODE, NODES, lease, decided);
    coordinator.resend_decisions(out);
    coordinator
}

fn apply(
    coordinator: &mut Coordinator,
    event: &Event,
    (clock, now, req): (&mut Lamport, &mut Duration, &mut ReqId),
    out: &mut Vec<Effect>,
) {
    *req += 1;
    let req = *req;
    let lease = coordinator.live_from();
    let timeout = Duration::from_millis(200);
    match event.clone() {
        Event::Begin => coordinator.begin(req, req, out),
        Event::BeginAnd { write, valid } => {
            let then = match (valid, write) {
                (false, _) => Request::Begin { began: 0 },
                (true, true) => Request::Write {
                    tid: TxnId(0),
                    key: "k".into(),
                    value: None,
                    first: false,
                    began: 0,
                },
                (true, false) => Request::Read {
                    tid: TxnId(0),
                    key: "k".into(),
                    mode: LockMode::Shared,
                    first: false,
                    began: 0,
                },
            };
            coordinator.begin_and(req, 1, then, req, out);
        }
        Event::Commit { txn, participants } => {
            let deadline = *now + timeout;
            let at = clock.now();
            // Odd transactions commit in parallel (`parallel`), even ones classically.
            let when = (deadline, at, txn % 2 == 1);
            coordinator.commit(req, tid(lease, txn), participants, when, out);
        }
        Event::Abort { txn } => coordinator.abort(req, tid(lease, txn), vec![1, 2], out),
        Event::Vote {
            txn,
            from,
            vote,
            prepare_ts,
        } => {
            let vote = match vote {
                0 | 1 => Vote::Yes { prepare_ts },
                2 | 3 => Vote::ReadOnly,
                _ => Vote::No {
                    reason: "it said no".into(),
                },
            };
            coordinator.vote(from, tid(lease, txn), vote, clock, out);
        }
        Event::Ack { txn, from } => coordinator.ack(from, tid(lease, txn), out),
        Event::OnePhaseOutcome { txn, aborted } => {
            let aborted = aborted.then(|| "it could not".to_string());
            let at = if aborted.is_some() { 0 } else { clock.now() };
            coordinator.one_phase_outcome(tid(lease, txn), aborted, at, *clock, out);
        }
        Event::Inquire { txn, from } => coordinator.inquire(from, tid(lease, txn), None, out),
        Event::PeerRestarted { peer } => coordinator.peer_restarted(peer, out),
        Event::Tick { ms } => {
            *now += Duration::from_millis(ms);
            coordinator.tick(*now, timeout, out);
        }
    }
}

/// Runs the events, checking the invariants after each; returns every step's effects and
/// the coordinator's visible state, a line a step.
fn run(recovery: &Recovery, events: &[Event]) -> Result<String, String> {
    let mut clock = Lamport::default();
    let mut out = Vec::new();
    let mut coordinator = recovered(recovery, &mut out);
    let mut trace = format!("recovered {out:?}\n");
    let (mut now, mut req) = (Duration::ZERO, 0);
    for event in events {
        let mut out = Vec::new();
        apply(
            &mut coordinator,
            event,
            (&mut clock, &mut now, &mut req),
            &mut out,
        );
        (coordinator.check_invariants()).map_err(|broken| format!("after {event:?}: {broken}"))?;
        trace += &format!(
            "{event:?} -> {out:?}; open {:?}; decided {:?}; lease {}\n",
            coordinator.open_transactions(),
            coordinator.decided(),
            coordinator.lease(),
        );
    }
    Ok(trace)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Whatever arrives, in whatever order, a transaction has one state and that state
    /// is consistent.
    #[test]
    fn any_inputs_keep_one_state_per_transaction(
        recovery in recovery(),
        events in prop::collection::vec(event(), 1..60),
    ) {
        if let Err(broken) = run(&recovery, &events) {
            prop_assert!(false, "{}", broken);
        }
    }
}

/// The effects of a staged commit of a fresh transaction at participants 1 and 2, and
/// the coordinator and id.
fn staged_commit() -> (Coordinator, TxnId, Vec<Effect>) {
    let mut coordinator = Coordinator::new(NODE, NODES, 0, BTreeMap::new());
    let mut out = Vec::new();
    coordinator.begin(1, 1, &mut out);
    let tid = TxnId::new(NODE, 0, NODES);
    out.clear();
    let when = (Duration::from_secs(1), 5, true);
    coordinator.commit(2, tid, vec![1, 2], when, &mut out);
    (coordinator, tid, out)
}

fn kinds(out: &[Effect]) -> Vec<String> {
    (out.iter())
        .filter_map(|effect| match effect {
            Effect::Append(record) => Some(record.kind().to_string()),
            Effect::AppendNoBarrier(record) => Some(format!("{} (no barrier)", record.kind())),
            Effect::Send { to, message } => Some(format!("{} to {to}", message.label())),
            Effect::SendDurable { to, message } => {
                Some(format!("{} to {to} once durable", message.label()))
            }
            Effect::Reply { .. } => Some("reply".into()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_staged_commit_sends_the_prepares_before_its_staged_record() {
    let (_, _, out) = staged_commit();
    assert_eq!(kinds(&out), ["PREPARE to 1", "PREPARE to 2", "Staged"]);
}

/// The client is told first; the `Decision` follows without a barrier (the next
/// commit's messages need not wait for it), and every COMMIT of it, sent then, on an
/// inquiry or again after a participant's restart, waits until it is durable.
#[test]
fn a_staged_commit_answers_the_client_before_its_decision_at_max_prepare_plus_one() {
    let (mut coordinator, tid, _) = staged_commit();
    let mut clock = Lamport::starting_at(5);
    let mut out = Vec::new();
    coordinator.vote(1, tid, Vote::Yes { prepare_ts: 7 }, &mut clock, &mut out);
    coordinator.vote(2, tid, Vote::Yes { prepare_ts: 9 }, &mut clock, &mut out);
    assert_eq!(
        kinds(&out),
        [
            "reply",
            "Decision (no barrier)",
            "COMMIT to 1 once durable",
            "COMMIT to 2 once durable"
        ]
    );
    assert!(out.iter().any(|effect| matches!(
        effect,
        Effect::AppendNoBarrier(Record::Decision { commit_ts: 10, .. })
    )));
    assert!(clock.now() >= 10);
    let mut out = Vec::new();
    coordinator.inquire(1, tid, None, &mut out);
    coordinator.peer_restarted(2, &mut out);
    assert_eq!(
        kinds(&out),
        ["COMMIT to 1 once durable", "COMMIT to 2 once durable"]
    );
}

#[test]
fn a_staged_abort_is_forced_before_any_abort_leaves() {
    let (mut coordinator, tid, _) = staged_commit();
    let mut clock = Lamport::default();
    let mut out = Vec::new();
    let no = Vote::No { reason: "x".into() };
    coordinator.vote(1, tid, no, &mut clock, &mut out);
    assert_eq!(
        kinds(&out),
        ["StagedAbort", "ABORT to 1", "ABORT to 2", "reply"]
    );
}

/// A coordinator restarted with `tid` staged at 1 and 2 and no outcome, and what its
/// recovery asks.
fn resolving() -> (Coordinator, TxnId, Vec<Effect>) {
    let tid = TxnId::new(NODE, 0, NODES);
    let staged = BTreeMap::from([(tid, vec![1, 2])]);
    let coordinator = Coordinator::recovered(NODE, NODES, 1000, BTreeMap::new(), staged);
    let mut out = Vec::new();
    coordinator.resend_decisions(&mut out);
    (coordinator, tid, out)
}

#[test]
fn recovery_asks_every_participant_of_a_staged_transaction_and_commits_if_all_prepared() {
    let (mut coordinator, tid, out) = resolving();
    assert_eq!(kinds(&out), ["STATUS? to 1", "STATUS? to 2"]);
    let mut clock = Lamport::default();
    let mut out = Vec::new();
    coordinator.inquire(1, tid, None, &mut out);
    assert!(
        out.is_empty(),
        "an inquiry waits for the resolution: {out:?}"
    );
    let prepared = |prepare_ts| StagedStatus::Prepared { prepare_ts };
    coordinator.status(1, tid, prepared(4), &mut clock, &mut out);
    assert!(out.is_empty(), "{out:?}");
    coordinator.status(2, tid, prepared(8), &mut clock, &mut out);
    assert!(out.iter().any(|effect| matches!(
        effect,
        Effect::Append(Record::Decision { commit_ts: 9, .. })
    )));
    assert_eq!(clock.now(), 9, "the clock is past the commit it assigned");
    out.clear();
    coordinator.inquire(1, tid, None, &mut out);
    assert_eq!(kinds(&out), ["COMMIT to 1"]);
}

#[test]
fn recovery_aborts_a_staged_transaction_that_a_participant_refuses() {
    let (mut coordinator, tid, _) = resolving();
    let mut clock = Lamport::default();
    let mut out = Vec::new();
    let prepared = StagedStatus::Prepared { prepare_ts: 4 };
    coordinator.status(1, tid, prepared, &mut clock, &mut out);
    coordinator.status(2, tid, StagedStatus::Refused, &mut clock, &mut out);
    assert_eq!(kinds(&out), ["StagedAbort", "ABORT to 1", "ABORT to 2"]);
    assert!(coordinator.staged().is_empty());
}

/// An ABORT of a transaction whose commit is under way (a late or stray one: a client
/// that went away is aborted by its connection's end) must not reach its participants:
/// they may have voted yes to a commit the coordinator is about to decide.
#[test]
fn an_abort_of_a_committing_transaction_sends_no_abort() {
    for parallel in [false, true] {
        let mut coordinator = Coordinator::new(NODE, NODES, 0, BTreeMap::new());
        let mut out = Vec::new();
        coordinator.begin(1, 1, &mut out);
        let tid = TxnId::new(NODE, 0, NODES);
        let when = (Duration::from_secs(1), 5, parallel);
        coordinator.commit(2, tid, vec![1, 2], when, &mut out);
        out.clear();
        coordinator.abort(3, tid, vec![0, 1, 2], &mut out);
        assert_eq!(kinds(&out), ["reply"], "parallel: {parallel}");
        assert!(
            matches!(
                &out[0],
                Effect::Reply {
                    reply: Reply::Done(Err(_)),
                    ..
                }
            ),
            "{out:?}"
        );
        let mut clock = Lamport::default();
        out.clear();
        coordinator.vote(1, tid, Vote::Yes { prepare_ts: 7 }, &mut clock, &mut out);
        coordinator.vote(2, tid, Vote::Yes { prepare_ts: 9 }, &mut clock, &mut out);
        assert!(
            kinds(&out)
                .iter()
                .any(|kind| kind.starts_with("COMMIT to 1")),
            "the commit goes on: {:?}",
            kinds(&out)
        );
    }
}
