//! Every crash point of two-phase commit, with the coordinator or a participant crashed
//! there: after restart every node agrees on the outcome, nothing stays locked or in
//! doubt, and a commit the client saw survives. While a participant is in doubt, its
//! keys stay locked and other keys stay available.

use kv2pc::cluster::Activity;
use kv2pc::{ClientObserver, Cluster, Config, CrashPoint, Error, Settings, WaitInfo};
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;

/// A 3-node cluster on the manual clock, so timeouts happen only at `tick`.
fn manual_cluster(dir: &TempDir) -> Cluster {
    let config = Config {
        nodes: 3,
        manual_clock: true,
        settings: Settings::default(),
    };
    Cluster::open(dir.path(), config).unwrap()
}

/// Keys owned by `node`, found by probing names.
fn keys_on(cluster: &Cluster, node: u32, count: usize) -> Vec<String> {
    (0..)
        .map(|i| format!("k{i}"))
        .filter(|k| cluster.owner(k) == node)
        .take(count)
        .collect()
}

/// Counts the committing thread as in flight except while it waits for the cluster, so
/// `settle` returns only once the commit is done or blocked.
struct Tracked(Activity);

impl ClientObserver for Tracked {
    fn waiting(&self, _: &WaitInfo) {}
    fn blocking(&self) {
        self.0.blocked();
    }
    fn resumed(&self) {
        self.0.resumed();
    }
}

/// What the client was told.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Told {
    Committed,
    Aborted,
    Unknown,
}

/// Runs one transaction writing on nodes 1 and 2, coordinated by node 0, with `point`
/// armed on `victim`. Returns what the client was told.
fn run_with_crash(cluster: &Cluster, victim: u32, point: CrashPoint, x: &str, y: &str) -> Told {
    let mut client = cluster.client(0).unwrap();
    let activity = cluster.activity();
    client.observe(Arc::new(Tracked(activity.clone())));
    let mut txn = client.begin().unwrap();
    txn.put(x, "1").unwrap();
    txn.put(y, "2").unwrap();
    cluster.arm_crash(victim, point).unwrap();
    let work = activity.dispatched();
    let committing = std::thread::spawn(move || {
        activity.begin(work);
        let result = txn.commit();
        activity.ended();
        result
    });
    // A crashed participant never votes: let the coordinator's vote timeout pass. (A
    // crashed coordinator answers nothing; its client learns that without a tick.)
    for _ in 0..100 {
        cluster.settle();
        if committing.is_finished() || !cluster.is_up(0) {
            break;
        }
        cluster.tick(Duration::from_secs(2)).unwrap();
    }
    match committing.join().unwrap() {
        Ok(()) => Told::Committed,
        Err(Error::Aborted { .. }) => Told::Aborted,
        Err(Error::OutcomeUnknown { .. }) => Told::Unknown,
        Err(other) => panic!("unexpected error at {point}: {other}"),
    }
}

fn expected(point: CrashPoint) -> (Told, bool) {
    match point {
        CrashPoint::Prepare | CrashPoint::Vote => (Told::Aborted, false),
        CrashPoint::Commit | CrashPoint::Ack => (Told::Committed, true),
        CrashPoint::Decide => (Told::Unknown, false),
        CrashPoint::Decision | CrashPoint::Broadcast => (Told::Unknown, true),
        // A classic commit never passes them; tests/crash_matrix.rs runs them in parallel
        // mode.
        CrashPoint::Staging | CrashPoint::Staged => unreachable!("{point} is parallel's"),
    }
}

#[test]
fn every_crash_point_recovers_to_one_outcome() {
    for point in CrashPoint::ALL {
        if point.is_parallel_only() {
            continue;
        }
        let dir = TempDir::new().unwrap();
        let cluster = manual_cluster(&dir);
        let (x, y) = (
            keys_on(&cluster, 1, 1).remove(0),
            keys_on(&cluster, 2, 1).remove(0),
        );
        let victim = if point.is_participant() { 1 } else { 0 };
        let told = run_with_crash(&cluster, victim, point, &x, &y);
        cluster.settle();
        assert!(
            !cluster.is_up(victim),
            "{point}: node {victim} should have crashed"
        );
        let (told_expected, committed) = expected(point);
        assert_eq!(told, told_expected, "{point}: the client was told");
        cluster.restart(victim).unwrap();
        cluster.settle();
        let reader = cluster.client(0).unwrap();
        let values = (reader.get(&x).unwrap(), reader.get(&y).unwrap());
        let want = if committed {
            (Some("1".into()), Some("2".into()))
        } else {
            (None, None)
        };
        assert_eq!(values, want, "{point}: outcome on the participants");
        cluster.settle();
        for status in cluster.status() {
            assert!(
                status.in_doubt.is_empty(),
                "{point}: in doubt left {status:?}"
            );
            assert!(
                status.unacknowledged.is_empty(),
                "{point}: decision left {status:?}"
            );
        }
        assert!(
            cluster.locks().is_empty(),
            "{point}: locks left {:?}",
            cluster.locks()
        );
    }
}

#[test]
fn an_in_doubt_participant_blocks_its_keys_only() {
    let dir = TempDir::new().unwrap();
    let cluster = manual_cluster(&dir);
    let on_one = keys_on(&cluster, 1, 2);
    let (x, other) = (&on_one[0], &on_one[1]);
    let y = keys_on(&cluster, 2, 1).remove(0);
    cluster.client(0).unwrap().put(other, "free").unwrap();
    let told = run_with_crash(&cluster, 0, CrashPoint::Decision, x, &y);
    assert_eq!(told, Told::Unknown);
    cluster.settle();
    let status = &cluster.status()[1];
    assert_eq!(
        status.in_doubt.len(),
        1,
        "node 1 should be in doubt: {status:?}"
    );
    // Other keys on the in-doubt node are served, and snapshot reads of the in-doubt key
    // itself see the value before the undecided write, without waiting, whatever the
    // session read before (only its own commits could make it wait).
    let reader = cluster.client(1).unwrap();
    assert_eq!(reader.get(other).unwrap().as_deref(), Some("free"));
    assert_eq!(reader.get(x).unwrap(), None);
    let fresh = cluster.client(2).unwrap();
    assert_eq!(fresh.get(x).unwrap(), None);
    assert_eq!(
        cluster.client(2).unwrap().begin_read_only().get(x).unwrap(),
        None
    );
    // The in-doubt key blocks a reader until the coordinator returns.
    let blocked_reader = cluster.client(1).unwrap();
    let x_owned = x.clone();
    let read = std::thread::spawn(move || {
        let mut txn = blocked_reader.begin()?;
        let value = txn.get(&x_owned)?;
        txn.commit().map(|_| value)
    });
    // The reader's thread may not have sent its read yet when the cluster settles:
    // wait (bounded) until the read waits in the lock table.
    let waiting = |cluster: &kv2pc::Cluster| {
        (cluster.locks().iter())
            .filter(|(_, l)| !l.waiters.is_empty())
            .count()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while waiting(&cluster) == 0 && std::time::Instant::now() < deadline {
        cluster.settle();
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(!read.is_finished(), "a read of an in-doubt key must wait");
    assert_eq!(waiting(&cluster), 1);
    // In-doubt participants keep asking while the coordinator is down.
    cluster.tick(Duration::from_secs(5)).unwrap();
    cluster.settle();
    assert!(!read.is_finished());
    cluster.restart(0).unwrap();
    assert_eq!(read.join().unwrap().unwrap().as_deref(), Some("1"));
}

#[test]
fn cooperative_termination_resolves_without_the_coordinator() {
    let dir = TempDir::new().unwrap();
    let cluster = manual_cluster(&dir);
    let (x, y) = (
        keys_on(&cluster, 1, 1).remove(0),
        keys_on(&cluster, 2, 1).remove(0),
    );
    // The coordinator dies after COMMIT reached node 1 only.
    let told = run_with_crash(&cluster, 0, CrashPoint::Broadcast, &x, &y);
    assert_eq!(told, Told::Unknown);
    cluster.settle();
    assert_eq!(
        cluster.status()[2].in_doubt.len(),
        1,
        "node 2 should be in doubt"
    );
    // At its next inquiry node 2 asks node 1, which committed, and commits too.
    cluster.tick(Duration::from_secs(1)).unwrap();
    cluster.settle();
    assert!(
        cluster.status()[2].in_doubt.is_empty(),
        "node 2 should have learned COMMIT"
    );
    let reader = cluster.client(1).unwrap();
    assert_eq!(reader.get(&y).unwrap().as_deref(), Some("2"));
    cluster.restart(0).unwrap();
    cluster.settle();
    assert!(cluster.status()[0].unacknowledged.is_empty());
}
