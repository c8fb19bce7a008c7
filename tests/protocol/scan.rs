//! Range reads stepped by hand: a locking scan holds its range against inserts until
//! the outcome, and a snapshot scan passes undecided writes in its range unless it must
//! see them.

use super::*;
use kv2pc::KeyRange;
use kv2pc::message::ReadAt;

fn scan(h: &mut Harness, node: u32, tid: TxnId, prefix: &str, first: bool) -> Vec<Fx> {
    let range = KeyRange::Prefix(prefix.into());
    h.request(
        node,
        Request::Scan {
            tid,
            range,
            first,
            began: 0,
        },
    )
}

fn rows(rows: &[(&str, &str)]) -> Fx {
    let rows = rows.iter().map(|(k, v)| (k.to_string(), v.to_string()));
    Fx::Ok(Answer::Rows(rows.collect()))
}

#[test]
fn a_locking_scan_sees_its_own_writes_and_holds_its_range_until_the_outcome() {
    let mut h = Harness::new();
    let tid = h.begin(0);
    h.write(1, tid, "p2", "mine", true);
    assert_eq!(
        scan(&mut h, 1, tid, "p", false),
        vec![rows(&[("p2", "mine")])]
    );
    // Another transaction's insert of a key that does not exist waits for the range.
    let writer = h.begin(2);
    assert_eq!(
        h.write(1, writer, "p1", "x", true),
        vec![Fx::Waiting("p1".into(), vec![tid])]
    );
    // Outside the range it does not.
    assert_eq!(
        h.write(1, writer, "q1", "x", false),
        vec![Fx::Ok(Answer::Done)]
    );
}

#[test]
fn a_snapshot_scan_waits_only_for_an_undecided_write_it_must_see() {
    let mut h = Harness::new();
    let tid = h.prepared_pair();
    let prepared = h.prepare(1, tid);
    let Fx::Log(Record::Prepare { prepare_ts, .. }) = &prepared[1] else {
        panic!("{prepared:?}")
    };
    let p = *prepare_ts;
    let at = |at| Request::SnapshotScan {
        range: KeyRange::Prefix(String::new()),
        at,
    };
    // Below the prepare: at once, without x.
    assert_eq!(h.request(1, at(ReadAt::AtLeast(0))), vec![rows(&[])]);
    // Above it: the scan waits for the outcome, then sees x.
    assert_eq!(
        h.request(1, at(ReadAt::Exactly(p + 5))),
        vec![Fx::Waiting("*".into(), vec![tid])]
    );
    let done = moves(h.message(
        0,
        1,
        Message::Commit {
            tid,
            commit_ts: p + 1,
        },
    ));
    assert!(done.contains(&rows(&[("x", "1")])), "{done:?}");
}

#[test]
fn under_the_no_range_locks_mistake_only_the_keys_found_are_locked() {
    let mut h = Harness::new();
    h.settings.mistake = Some(kv2pc::Mistake::NoRangeLocks);
    let setup = h.begin(0);
    h.write(1, setup, "p1", "old", true);
    h.request(
        0,
        Request::Commit {
            tid: setup,
            participants: vec![1],
            clock: 0,
        },
    );
    h.message(0, 1, Message::CommitOnePhase { tid: setup });
    let tid = h.begin(0);
    assert_eq!(
        scan(&mut h, 1, tid, "p", true),
        vec![rows(&[("p1", "old")])]
    );
    let writer = h.begin(2);
    // The phantom's way in: an insert does not wait; a write of the key found does.
    assert_eq!(
        h.write(1, writer, "p2", "x", true),
        vec![Fx::Ok(Answer::Done)]
    );
    assert_eq!(
        h.write(1, writer, "p1", "x", false),
        vec![Fx::Waiting("p1".into(), vec![tid])]
    );
}
