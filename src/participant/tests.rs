//! Random sequences of inputs to one participant, checking after every step the
//! invariants between its state map and its indexes (`Participant::check_invariants`).
//!
//! The inputs are any the participant accepts, in any order, not only those the protocol
//! sends (a COMMIT after an ABORT, an operation after a commit, a PREPARE that comes
//! twice): a state machine that keeps one state per transaction must keep it whatever
//! arrives.

use super::*;
use crate::message::{Message, ReadAt};
use crate::wal::Record;
use proptest::prelude::*;
use std::time::Duration;

/// The node under test, in a cluster of `NODES`.
const NODE: NodeId = 0;
const NODES: u32 = 3;
const KEYS: [&str; 3] = ["a", "b", "c"];

/// One input to the participant. Transactions are numbered 0..12 (coordinator
/// `n % 3`, counter `n / 3`), keys 0..3.
#[derive(Clone, Debug)]
enum Event {
    Read {
        txn: u8,
        key: u8,
        update: bool,
        first: bool,
    },
    Write {
        txn: u8,
        key: u8,
        delete: bool,
        first: bool,
    },
    Prepare {
        txn: u8,
        everyone: bool,
    },
    Commit {
        txn: u8,
        ts: u64,
    },
    Abort {
        txn: u8,
    },
    OnePhase {
        txn: u8,
    },
    Inquire {
        txn: u8,
        from: u8,
    },
    PeerRestarted {
        peer: u8,
        live_from: u64,
    },
    Victim {
        txn: u8,
    },
    Tick {
        ms: u64,
    },
    Snapshot {
        key: u8,
        exactly: bool,
        ts: u64,
    },
    PeerSettled {
        peer: u8,
    },
    /// `SET deadlock`: the policy from then on (an index into `DeadlockPolicy::ALL`).
    Policy {
        policy: u8,
    },
}

/// What recovery hands the participant before the events: remembered commits and
/// aborts, transactions in doubt (one key each), and whether it rejoins.
#[derive(Clone, Debug, Default)]
struct Recovery {
    committed: Vec<(u8, u64)>,
    aborted: Vec<u8>,
    in_doubt: Vec<(u8, u8)>,
    rejoin: Option<u64>,
}

fn tid(txn: u8) -> TxnId {
    TxnId::new(NodeId::from(txn % 3), u64::from(txn / 3), NODES)
}

fn key(key: u8) -> String {
    KEYS[usize::from(key) % KEYS.len()].to_string()
}

fn event() -> impl Strategy<Value = Event> {
    let txn = 0u8..12;
    prop_oneof![
        4 => (txn.clone(), 0u8..3, any::<bool>(), any::<bool>())
            .prop_map(|(txn, key, update, first)| Event::Read { txn, key, update, first }),
        4 => (txn.clone(), 0u8..3, any::<bool>(), any::<bool>())
            .prop_map(|(txn, key, delete, first)| Event::Write { txn, key, delete, first }),
        3 => (txn.clone(), any::<bool>()).prop_map(|(txn, everyone)| Event::Prepare { txn, everyone }),
        2 => (txn.clone(), 0u64..20).prop_map(|(txn, ts)| Event::Commit { txn, ts }),
        2 => txn.clone().prop_map(|txn| Event::Abort { txn }),
        2 => txn.clone().prop_map(|txn| Event::OnePhase { txn }),
        2 => (txn.clone(), 1u8..3).prop_map(|(txn, from)| Event::Inquire { txn, from }),
        1 => (0u8..3, 0u64..5).prop_map(|(peer, live_from)| Event::PeerRestarted { peer, live_from }),
        1 => txn.clone().prop_map(|txn| Event::Victim { txn }),
        1 => (0u64..300).prop_map(|ms| Event::Tick { ms }),
        2 => (0u8..3, any::<bool>(), 0u64..20)
            .prop_map(|(key, exactly, ts)| Event::Snapshot { key, exactly, ts }),
        1 => (1u8..3).prop_map(|peer| Event::PeerSettled { peer }),
        1 => (0u8..6).prop_map(|policy| Event::Policy { policy }),
    ]
}

fn recovery() -> impl Strategy<Value = Recovery> {
    (
        prop::collection::vec((0u8..12, 1u64..10), 0..4),
        prop::collection::vec(0u8..12, 0..3),
        prop::collection::vec((0u8..12, 0u8..3), 0..3),
        prop::option::of(0u64..5),
    )
        .prop_map(|(committed, aborted, in_doubt, rejoin)| Recovery {
            committed,
            aborted,
            in_doubt,
            rejoin,
        })
}

/// A participant after `recovery`, as `Node::recover` builds one from a log: a
/// transaction has one outcome at most, and is in doubt only without one; in-doubt
/// transactions share no key (their locks were all held at once).
fn recovered(recovery: &Recovery, out: &mut Vec<Effect>) -> Participant {
    let ts = crate::clock::Lamport::default();
    let mut participant = Participant::new(NODE, NODES, Store::default(), ts);
    let committed: BTreeMap<TxnId, Timestamp> = (recovery.committed.iter())
        .map(|(t, ts)| (tid(*t), *ts))
        .collect();
    let aborted: Vec<TxnId> = (recovery.aborted.iter())
        .map(|t| tid(*t))
        .filter(|t| !committed.contains_key(t))
        .collect();
    let mut used: (Vec<u8>, Vec<u8>) = (Vec::new(), Vec::new());
    let decided = |txn: u8| committed.contains_key(&tid(txn)) || aborted.contains(&tid(txn));
    participant.remember(committed.clone(), aborted.clone());
    for (txn, k) in &recovery.in_doubt {
        if used.0.contains(txn) || used.1.contains(k) || decided(*txn) {
            continue;
        }
        used.0.push(*txn);
        used.1.push(*k);
        let record = Record::Prepare {
            tid: tid(*txn),
            coordinator: tid(*txn).coordinator(NODES),
            participants: vec![0, 1],
            writes: vec![(key(*k), Some("in doubt".into()))],
            prepare_ts: u64::from(*k) + 1,
        };
        if let Some((tid, prepared)) = prepared_from_record(&record) {
            participant.restore_in_doubt(tid, prepared, Duration::ZERO, out);
        }
    }
    if let Some(live_from) = recovery.rejoin {
        participant.rejoin(live_from, out);
    }
    participant
}

/// The test's side of the conversation: the time, and the operations not yet answered.
#[derive(Default)]
struct Client {
    now: Duration,
    next_req: ReqId,
    /// Operations sent and not answered, by request: a client sends a transaction's next
    /// operation only once the last one is answered (the lock table asserts as much).
    unanswered: BTreeMap<ReqId, TxnId>,
}

impl Client {
    /// Whether `txn` may send an operation now.
    fn may_operate(&self, txn: u8) -> bool {
        !self.unanswered.values().any(|t| *t == tid(txn))
    }

    /// A new request id, for an operation of `txn` if given.
    fn request(&mut self, txn: Option<u8>) -> ReqId {
        self.next_req += 1;
        if let Some(txn) = txn {
            self.unanswered.insert(self.next_req, tid(txn));
        }
        self.next_req
    }

    /// Notes the answers among `out`.
    fn answered(&mut self, out: &[Effect]) {
        for effect in out {
            if let Effect::Reply {
                req,
                reply: Reply::Done(_),
            } = effect
            {
                self.unanswered.remove(req);
            }
        }
    }
}

/// Applies one event (an operation of a transaction whose last one is unanswered is
/// skipped, as a client would not send it).
fn apply(participant: &mut Participant, event: &Event, client: &mut Client, out: &mut Vec<Effect>) {
    let interval = Duration::from_millis(100);
    match event.clone() {
        Event::Read { txn, .. } | Event::Write { txn, .. } if !client.may_operate(txn) => {}
        Event::Read {
            txn,
            key: k,
            update,
            first,
        } => {
            let req = client.request(Some(txn));
            let mode = if update {
                LockMode::Exclusive
            } else {
                LockMode::Shared
            };
            participant.read(req, (tid(txn), u64::from(txn)), key(k), mode, first, out);
        }
        Event::Write {
            txn,
            key: k,
            delete,
            first,
        } => {
            let req = client.request(Some(txn));
            let value = (!delete).then(|| format!("v{txn}"));
            participant.write(req, (tid(txn), u64::from(txn)), key(k), value, first, out);
        }
        Event::Prepare { txn, everyone } => {
            let participants = if everyone { vec![0, 1, 2] } else { vec![0, 1] };
            let coordinator = tid(txn).coordinator(NODES);
            participant.prepare(
                tid(txn),
                coordinator,
                participants,
                client.now + interval,
                out,
            );
        }
        Event::Commit { txn, ts } => participant.commit(tid(txn), ts, out),
        Event::Abort { txn } => participant.abort(tid(txn), "told to".into(), out),
        Event::OnePhase { txn } => {
            participant.commit_one_phase(tid(txn), tid(txn).coordinator(NODES), out);
        }
        Event::Inquire { txn, from } => participant.peer_inquire(NodeId::from(from), tid(txn), out),
        Event::PeerRestarted { peer, live_from } => {
            participant.peer_restarted(NodeId::from(peer), live_from, out);
        }
        Event::Victim { txn } => participant.deadlock_victim(tid(txn), &[tid(txn)], out),
        Event::Tick { ms } => {
            client.now += Duration::from_millis(ms);
            participant.tick(client.now, interval, out);
            participant.lock_timeouts(client.now, interval, out);
        }
        Event::Snapshot {
            key: k,
            exactly,
            ts,
        } => {
            let req = client.request(None);
            let at = if exactly {
                ReadAt::Exactly(ts)
            } else {
                ReadAt::AtLeast(ts)
            };
            participant.snapshot_read(req, key(k), at, out);
        }
        Event::PeerSettled { peer } => participant.peer_settled(NodeId::from(peer), out),
        Event::Policy { policy } => {
            let policy = crate::config::DeadlockPolicy::ALL[usize::from(policy)];
            participant.set_rule(policy, client.now);
        }
    }
    client.answered(out);
}

/// Runs the events, checking the invariants after each, and returns what was seen: every
/// step's effects and the participant's visible state, one line a step.
fn run(recovery: &Recovery, events: &[Event]) -> Result<String, String> {
    let mut out = Vec::new();
    let mut participant = recovered(recovery, &mut out);
    participant.check_invariants()?;
    let mut trace = format!("recovered {out:?}\n");
    let mut client = Client::default();
    for event in events {
        let mut out = Vec::new();
        apply(&mut participant, event, &mut client, &mut out);
        participant
            .check_invariants()
            .map_err(|broken| format!("after {event:?}: {broken}"))?;
        trace += &format!(
            "{event:?} -> {out:?}; in doubt {:?}; active {:?}; floor {:?}; rejoining {:?}; \
             locks {:?}; waits {:?}; store {:?}\n",
            participant.in_doubt(),
            participant.active(),
            participant.prepare_floor(),
            participant.rejoining(),
            participant.locks().snapshot(),
            participant.waits(),
            participant.store(),
        );
    }
    Ok(trace)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Whatever arrives, in whatever order, a transaction has one state and every index
    /// agrees with the state map.
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

/// At most `REMEMBERED_COMMITS` commits are remembered for peers in doubt, the smallest
/// id forgotten first, and forgetting one leaves no other state behind.
#[test]
fn remembered_commits_are_bounded_smallest_id_first() {
    let ts = crate::clock::Lamport::default();
    let mut participant = Participant::new(NODE, NODES, Store::default(), ts);
    let count = REMEMBERED_COMMITS as u64 + 2;
    let committed = (0..count)
        .map(|n| (TxnId::new(1, n, NODES), n + 1))
        .collect();
    participant.remember(committed, Vec::new());
    let answer = |participant: &mut Participant, n: u64| {
        let mut out = Vec::new();
        participant.peer_inquire(1, TxnId::new(1, n, NODES), &mut out);
        format!("{out:?}")
    };
    assert_eq!(answer(&mut participant, 0), "[]");
    assert_eq!(answer(&mut participant, 1), "[]");
    let commit = Message::Commit {
        tid: TxnId::new(1, 2, NODES),
        commit_ts: 3,
    };
    let told = vec![Effect::Send {
        to: 1,
        message: commit,
    }];
    assert_eq!(answer(&mut participant, 2), format!("{told:?}"));
    assert_eq!(participant.txns.iter().count(), REMEMBERED_COMMITS);
    assert_eq!(participant.check_invariants(), Ok(()));
}
