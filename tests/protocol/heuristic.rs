//! Heuristic decisions stepped by hand: `RESOLVE` settles an in-doubt transaction on one
//! participant (a forced `Heuristic` record, the locks released, a warning); the
//! coordinator's real decision, when it comes, either agrees or is reported as a
//! heuristic mixed outcome; the decision survives a restart; RESOLVE is refused for a
//! transaction not in doubt. And a transaction found in doubt at recovery narrates how
//! it was decided.

use super::*;

/// A pair prepared on nodes 1 and 2, both YES, the coordinator's decision not yet heard.
fn in_doubt_pair(h: &mut Harness) -> TxnId {
    let tid = h.prepared_pair();
    h.prepare(1, tid);
    h.prepare(2, tid);
    tid
}

fn resolve(h: &mut Harness, node: u32, tid: TxnId, commit: bool) -> Result<Vec<Fx>, String> {
    let mut out = Vec::new();
    h.nodes[node as usize]
        .resolve(tid, commit, &mut out)
        .map_err(|e| e.to_string())?;
    Ok(moves(out))
}

fn narrations(effects: &[Fx]) -> Vec<&str> {
    (effects.iter())
        .filter_map(|fx| match fx {
            Fx::Narrate(text) => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn resolve_logs_a_heuristic_decision_releases_the_locks_and_warns() {
    let mut h = Harness::new();
    let tid = in_doubt_pair(&mut h);
    let effects = resolve(&mut h, 2, tid, false).unwrap();
    assert_eq!(
        effects[0],
        Fx::Log(Record::Heuristic {
            tid,
            commit: false,
            commit_ts: 0
        })
    );
    assert!(
        narrations(&effects)[0].starts_with("WARNING: "),
        "{effects:?}"
    );
    assert_eq!(effects.last(), Some(&Fx::Send(0, Message::Inquire { tid })));
    let node = h.nodes[2].participant();
    assert!(node.in_doubt().is_empty());
    assert!(node.locks().is_empty());
    assert_eq!(node.store().get("y"), None);
}

#[test]
fn a_disagreeing_decision_is_a_heuristic_mixed_outcome() {
    let mut h = Harness::new();
    let tid = in_doubt_pair(&mut h);
    resolve(&mut h, 2, tid, false).unwrap();
    // The coordinator decided COMMIT: node 1 commits, node 2 aborted by hand.
    let effects = moves(h.message(0, 2, Message::Commit { tid, commit_ts: 9 }));
    let said = narrations(&effects);
    assert!(said[0].starts_with("HEURISTIC MIXED OUTCOME"), "{said:?}");
    assert!(said[0].contains("node 2 did ABORT"), "{said:?}");
    // Acknowledged, so the coordinator stops resending; the writes stay aborted.
    assert!(effects.contains(&Fx::Durable(0, Message::Ack { tid })));
    let node = h.nodes[2].participant();
    assert_eq!(node.store().get("y"), None);
    assert_eq!(node.mixed().len(), 1);
    assert!(!node.mixed()[0].committed_here);
    // A duplicate COMMIT is an ordinary one now: acknowledged, no second report.
    let again = moves(h.message(0, 2, Message::Commit { tid, commit_ts: 9 }));
    assert_eq!(again, vec![Fx::Durable(0, Message::Ack { tid })]);
    assert_eq!(h.nodes[2].participant().mixed().len(), 1);
}

#[test]
fn an_agreeing_decision_is_no_mixed_outcome() {
    let mut h = Harness::new();
    let tid = in_doubt_pair(&mut h);
    let effects = resolve(&mut h, 2, tid, true).unwrap();
    assert!(matches!(
        effects[0],
        Fx::Log(Record::Heuristic { commit: true, .. })
    ));
    assert_eq!(h.nodes[2].participant().store().get("y"), Some("2"));
    let effects = moves(h.message(0, 2, Message::Commit { tid, commit_ts: 9 }));
    assert!(narrations(&effects)[0].contains("agree"), "{effects:?}");
    assert!(effects.contains(&Fx::Durable(0, Message::Ack { tid })));
    assert!(h.nodes[2].participant().mixed().is_empty());
}

#[test]
fn a_heuristic_commit_against_an_abort_is_mixed_too() {
    let mut h = Harness::new();
    let tid = in_doubt_pair(&mut h);
    resolve(&mut h, 1, tid, true).unwrap();
    let effects = moves(h.message(0, 1, Message::Abort { tid }));
    assert!(
        narrations(&effects)[0].contains("node 1 did COMMIT"),
        "{effects:?}"
    );
    let node = h.nodes[1].participant();
    assert_eq!(node.store().get("x"), Some("1"));
    assert!(node.mixed()[0].committed_here);
}

#[test]
fn a_heuristic_decision_is_not_told_to_peers_in_doubt() {
    let mut h = Harness::new();
    let tid = in_doubt_pair(&mut h);
    resolve(&mut h, 1, tid, true).unwrap();
    assert_eq!(moves(h.message(2, 1, Message::Inquire { tid })), vec![]);
}

#[test]
fn resolve_is_refused_for_a_transaction_not_in_doubt() {
    let mut h = Harness::new();
    let tid = h.begin(0);
    h.write(1, tid, "x", "1", true);
    let active = resolve(&mut h, 1, tid, true).unwrap_err();
    assert!(active.contains("is not in doubt on node 1"), "{active}");
    assert!(active.contains("still active"), "{active}");
    let unknown = resolve(&mut h, 2, TxnId(999), false).unwrap_err();
    assert!(unknown.contains("is not known there"), "{unknown}");
    // Nothing changed: the active transaction still holds its lock.
    assert!(!h.nodes[1].participant().locks().is_empty());
}

#[test]
fn a_heuristic_decision_survives_a_restart_and_is_still_compared() {
    let tid = TxnId(1);
    let records = vec![
        prepare_record(tid, "x", "1", 3),
        Record::Heuristic {
            tid,
            commit: true,
            commit_ts: 4,
        },
    ];
    let (mut node, effects) = Node::recover(1, NODES, None, &records, Duration::ZERO);
    assert!(node.participant().in_doubt().is_empty());
    assert!(node.participant().locks().is_empty());
    assert_eq!(node.participant().store().get("x"), Some("1"));
    assert!(node.participant().heuristic(tid).is_some());
    // It asks nobody at once (nothing is in doubt); the coordinator's restart or
    // decision brings the answer.
    assert!(!moves(effects).contains(&Fx::Send(0, Message::Inquire { tid })));
    let mut out = Vec::new();
    let input = Input::Peer {
        from: 0,
        message: Message::Abort { tid },
        clock: 0,
    };
    node.handle(input, Duration::ZERO, &Settings::default(), &mut out);
    assert!(narrations(&moves(out))[0].starts_with("HEURISTIC MIXED OUTCOME"));
    assert_eq!(node.participant().mixed().len(), 1);
}

#[test]
fn an_outcome_found_in_doubt_at_recovery_is_narrated_with_its_reason() {
    let tid = TxnId(1);
    let records = vec![prepare_record(tid, "x", "1", 3)];
    let (mut node, _) = Node::recover(1, NODES, None, &records, Duration::ZERO);
    let mut out = Vec::new();
    let input = Input::Peer {
        from: 0,
        message: Message::Abort { tid },
        clock: 0,
    };
    node.handle(input, Duration::ZERO, &Settings::default(), &mut out);
    let effects = moves(out);
    assert_eq!(
        narrations(&effects),
        vec![
            "T1 decided ABORT, as the answer said: its coordinator, node 0, holds no commit \
             decision for it (presumed abort), so no participant may commit; node 1 logs \
             Abort, drops the writes and releases x"
        ]
    );
    // Told once: a second answer (a peer's) finds it settled and says nothing.
    let mut out = Vec::new();
    let input = Input::Peer {
        from: 2,
        message: Message::Abort { tid },
        clock: 0,
    };
    node.handle(input, Duration::ZERO, &Settings::default(), &mut out);
    assert!(narrations(&moves(out)).is_empty());
}
