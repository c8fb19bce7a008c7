//! Each policy's rule ([`verdict`]) on small cases, and each policy at a participant on
//! the classic deadlock: two transactions crossing on two keys.

use super::*;
use crate::clock::Lamport;
use crate::error::Error;
use crate::message::Answer;
use crate::store::Store;
use DeadlockPolicy::*;

fn age(began: u64) -> Age {
    Age {
        began,
        tid: TxnId(began * 10),
    }
}

fn active(began: u64) -> Blocker {
    Blocker {
        tid: TxnId(began * 10),
        age: Some(age(began)),
        holds: Some(LockMode::Exclusive),
    }
}

fn prepared(tid: u64) -> Blocker {
    Blocker {
        tid: TxnId(tid),
        age: None,
        holds: Some(LockMode::Exclusive),
    }
}

#[test]
fn wait_die_lets_the_older_wait_and_kills_the_younger() {
    assert_eq!(
        verdict(WaitDie, age(1), &[active(2), active(3)]),
        Verdict::Wait
    );
    // Younger than one of them: dies, naming the oldest.
    assert_eq!(
        verdict(WaitDie, age(3), &[active(4), active(2), active(1)]),
        Verdict::Abort(active(1))
    );
    // A prepared holder waits for nothing: waiting for it is safe at any age.
    assert_eq!(verdict(WaitDie, age(9), &[prepared(1)]), Verdict::Wait);
}

#[test]
fn wound_wait_wounds_the_younger_and_waits_for_the_older() {
    assert_eq!(verdict(WoundWait, age(5), &[active(2)]), Verdict::Wait);
    assert_eq!(
        verdict(
            WoundWait,
            age(2),
            &[active(1), active(3), prepared(4), active(5)]
        ),
        Verdict::Wound(vec![active(3), active(5)])
    );
    // A prepared transaction cannot be wounded: the older requester waits.
    assert_eq!(verdict(WoundWait, age(1), &[prepared(7)]), Verdict::Wait);
}

#[test]
fn no_wait_aborts_on_any_conflict_and_the_others_wait() {
    assert_eq!(
        verdict(NoWait, age(1), &[prepared(7)]),
        Verdict::Abort(prepared(7))
    );
    assert_eq!(
        verdict(NoWait, age(9), &[active(2)]),
        Verdict::Abort(active(2))
    );
    for policy in [Detect, Timeout, Off] {
        assert_eq!(verdict(policy, age(9), &[active(2)]), Verdict::Wait);
    }
}

/// Every wait a prevention policy lets stand runs one way in age, so no cycle can form:
/// checked over all small cases.
#[test]
fn waits_that_stand_run_one_way_in_age() {
    for me in 1..=4 {
        for a in (1..=4).filter(|a| *a != me) {
            for b in (1..=4).filter(|b| *b != me) {
                let blockers = [active(a), active(b)];
                match verdict(WaitDie, age(me), &blockers) {
                    Verdict::Wait => assert!(me < a && me < b),
                    Verdict::Abort(_) => assert!(me > a || me > b),
                    Verdict::Wound(_) => panic!("wait-die never wounds"),
                }
                match verdict(WoundWait, age(me), &blockers) {
                    Verdict::Wait => assert!(me > a && me > b),
                    Verdict::Wound(wounded) => {
                        let kept = blockers.iter().filter(|b| !wounded.contains(b));
                        assert!(wounded.iter().all(|w| w.age > Some(age(me))));
                        assert!(kept.into_iter().all(|b| b.age < Some(age(me))));
                    }
                    Verdict::Abort(_) => panic!("wound-wait never aborts the requester"),
                }
            }
        }
    }
}

const OLD: TxnId = TxnId(3);
const YOUNG: TxnId = TxnId(4);

/// What each request was answered, in order: `wait`, `done`, or the abort's reason.
fn answers(out: &[Effect]) -> Vec<(ReqId, String)> {
    (out.iter())
        .filter_map(|effect| match effect {
            Effect::Reply { req, reply } => Some((*req, answer(reply))),
            _ => None,
        })
        .collect()
}

fn answer(reply: &Reply) -> String {
    match reply {
        Reply::Waiting { .. } => "wait".into(),
        Reply::Done(Ok(Answer::Done)) => "done".into(),
        Reply::Done(Err(Error::Aborted { tid, reason })) => format!("{tid} aborted: {reason}"),
        other => format!("{other:?}"),
    }
}

/// OLD (begun first) writes a, YOUNG writes b; then OLD asks for b (request 3) and, a
/// little later, YOUNG for a (request 4): the answers to requests 3 and 4, and to a
/// tick at 1s.
fn crossing(policy: DeadlockPolicy) -> Vec<(ReqId, String)> {
    let mut p = Participant::new(0, 1, Store::default(), Lamport::default());
    let mut out = Vec::new();
    let write = |p: &mut Participant, req, tid, began, key: &str, now, out: &mut Vec<_>| {
        p.set_rule(policy, Duration::from_millis(now));
        let first = req <= 2;
        p.write(req, (tid, began), key.into(), Some("v".into()), first, out);
        p.check_invariants().unwrap();
    };
    write(&mut p, 1, OLD, 1, "a", 0, &mut out);
    write(&mut p, 2, YOUNG, 2, "b", 0, &mut out);
    out.clear();
    write(&mut p, 3, OLD, 1, "b", 0, &mut out);
    if !p
        .txns
        .get(&YOUNG)
        .is_some_and(|s| matches!(s, TxnState::Active(_)))
    {
        // Wounded: its next request is refused.
        p.write(4, (YOUNG, 2), "a".into(), None, false, &mut out);
    } else {
        write(&mut p, 4, YOUNG, 2, "a", 100, &mut out);
    }
    p.lock_timeouts(Duration::from_secs(1), Duration::from_secs(1), &mut out);
    p.check_invariants().unwrap();
    answers(&out)
}

#[test]
fn each_policy_on_two_transactions_crossing_on_two_keys() {
    let wait_die = "T4 aborted: wait-die: it is younger than T3, which holds a (exclusive), \
                    and under wait-die a younger transaction dies rather than wait for an \
                    older one";
    let wound = "T4 aborted: wound-wait: the older T3 asked for b (exclusive), which T4 held \
                 (exclusive), and under wound-wait an older transaction aborts the younger \
                 ones in its way";
    let no_wait = "T3 aborted: no-wait: T4 is in its way, which holds b (exclusive), and \
                   under no-wait a conflict aborts the requester at once";
    let timeout = "T3 aborted: timeout: it waited for b (behind T4) as long as lock_timeout \
                   allows (1s)";
    let s = |req, text: &str| (req, text.to_string());
    // Detection runs over the cluster at the end of the batch, not here.
    for policy in [Detect, Off] {
        assert_eq!(crossing(policy), [s(3, "wait"), s(4, "wait")], "{policy:?}");
    }
    assert_eq!(
        crossing(WaitDie),
        [s(3, "wait"), s(4, wait_die), s(3, "done")]
    );
    assert_eq!(crossing(WoundWait), [s(3, "done"), s(4, wound)]);
    // No-wait: OLD dies at once, and YOUNG then gets a.
    assert_eq!(crossing(NoWait), [s(3, no_wait), s(4, "done")]);
    // Timeout: OLD began to wait first, so it times out first; YOUNG is let through.
    assert_eq!(
        crossing(Timeout),
        [s(3, "wait"), s(4, "wait"), s(3, timeout), s(4, "done")]
    );
}
