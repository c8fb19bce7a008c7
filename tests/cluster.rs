//! The embedded cluster end to end: commits across nodes, durability across crashes and
//! reopening, concurrent transfers, isolation, deadlocks, and the data directory's rules.

use kv2pc::{Client, Cluster, Config, Error, Settings};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tempfile::TempDir;

fn manual(nodes: u32) -> Config {
    Config {
        nodes,
        manual_clock: true,
        settings: Settings::default(),
    }
}

fn open(dir: &TempDir, nodes: u32) -> Cluster {
    Cluster::open(dir.path(), manual(nodes)).expect("open cluster")
}

/// Keys owned by `node`, found by probing names.
fn keys_on(cluster: &Cluster, node: u32, count: usize) -> Vec<String> {
    (0..)
        .map(|i| format!("k{i}"))
        .filter(|k| cluster.owner(k) == node)
        .take(count)
        .collect()
}

/// A key owned by node 1 and one owned by node 2.
fn key_on_1_and_2(cluster: &Cluster) -> (String, String) {
    (
        keys_on(cluster, 1, 1).remove(0),
        keys_on(cluster, 2, 1).remove(0),
    )
}

#[test]
fn a_commit_across_nodes_is_visible_and_survives_crashes_and_reopening() {
    let dir = TempDir::new().unwrap();
    let cluster = open(&dir, 3);
    let client = cluster.client(0).unwrap();
    let (x, y) = key_on_1_and_2(&cluster);
    let mut txn = client.begin().unwrap();
    txn.put(&x, "1").unwrap();
    txn.put(&y, "2").unwrap();
    assert_eq!(txn.get(&x).unwrap().as_deref(), Some("1"));
    txn.commit().unwrap();
    for node in 0..3 {
        cluster.crash(node).unwrap();
    }
    for node in 0..3 {
        cluster.restart(node).unwrap();
    }
    cluster.settle();
    assert_eq!(client.get(&x).unwrap().as_deref(), Some("1"));
    drop(cluster);
    let cluster = open(&dir, 3);
    let client = cluster.client(1).unwrap();
    assert_eq!(client.get(&y).unwrap().as_deref(), Some("2"));
    client.delete(&y).unwrap();
    assert_eq!(client.get(&y).unwrap(), None);
}

#[test]
fn an_aborted_transaction_leaves_nothing() {
    let dir = TempDir::new().unwrap();
    let cluster = open(&dir, 3);
    let client = cluster.client(0).unwrap();
    let mut txn = client.begin().unwrap();
    txn.put("a", "1").unwrap();
    txn.put("b", "2").unwrap();
    txn.abort().unwrap();
    assert_eq!(client.get("a").unwrap(), None);
    cluster.settle();
    assert!(cluster.locks().is_empty());
}

#[test]
fn concurrent_transfers_keep_the_total() {
    const ACCOUNTS: usize = 60;
    const THREADS: usize = 8;
    const TRANSFERS: usize = 40;
    let dir = TempDir::new().unwrap();
    let cluster = Arc::new(open(&dir, 3));
    let setup = cluster.client(0).unwrap();
    let mut txn = setup.begin().unwrap();
    for account in 0..ACCOUNTS {
        txn.put(&format!("acct{account}"), "100").unwrap();
    }
    txn.commit().unwrap();
    let committed = Arc::new(AtomicUsize::new(0));
    let deltas = Arc::new(parking_lot::Mutex::new(vec![0i64; ACCOUNTS]));
    let workers: Vec<_> = (0..THREADS)
        .map(|worker| {
            let client = cluster.client(worker as u32 % 3).unwrap();
            let (committed, deltas) = (committed.clone(), deltas.clone());
            std::thread::spawn(move || {
                let mut seed = worker as u64 * 7919 + 1;
                for _ in 0..TRANSFERS {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let from = (seed >> 33) as usize % ACCOUNTS;
                    let to = (from + 1 + (seed >> 17) as usize % (ACCOUNTS - 1)) % ACCOUNTS;
                    let amount = (seed % 7 + 1) as i64;
                    if transfer(&client, from, to, amount).is_ok() {
                        committed.fetch_add(1, Ordering::SeqCst);
                        let mut deltas = deltas.lock();
                        deltas[from] -= amount;
                        deltas[to] += amount;
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    cluster.settle();
    let reader = cluster.client(0).unwrap();
    let mut txn = reader.begin().unwrap();
    let mut total = 0;
    let deltas = deltas.lock();
    for (account, delta) in deltas.iter().enumerate() {
        let balance: i64 = txn
            .get(&format!("acct{account}"))
            .unwrap()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            balance,
            100 + delta,
            "account {account} misses a committed transfer"
        );
        total += balance;
    }
    txn.commit().unwrap();
    assert_eq!(total, 100 * ACCOUNTS as i64);
    assert!(committed.load(Ordering::SeqCst) > 0);
    cluster.settle();
    assert!(
        cluster.locks().is_empty(),
        "locks left: {:?}",
        cluster.locks()
    );
}

fn transfer(client: &Client, from: usize, to: usize, amount: i64) -> kv2pc::Result<()> {
    let mut txn = client.begin()?;
    let (from, to) = (format!("acct{from}"), format!("acct{to}"));
    let a: i64 = txn.get(&from)?.unwrap_or_default().parse().unwrap_or(0);
    let b: i64 = txn.get(&to)?.unwrap_or_default().parse().unwrap_or(0);
    txn.put(&from, &(a - amount).to_string())?;
    txn.put(&to, &(b + amount).to_string())?;
    txn.commit()
}

#[test]
fn concurrent_increments_are_never_lost_and_never_seen_half_done() {
    const THREADS: usize = 6;
    const ROUNDS: usize = 25;
    let dir = TempDir::new().unwrap();
    let cluster = Arc::new(open(&dir, 3));
    let counters: Vec<String> = (0..3)
        .map(|node| keys_on(&cluster, node, 1).remove(0))
        .collect();
    let committed = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..THREADS)
        .map(|worker| {
            let client = cluster.client(worker as u32 % 3).unwrap();
            let (counters, committed) = (counters.clone(), committed.clone());
            std::thread::spawn(move || {
                for round in 0..ROUNDS {
                    if worker % 3 == 0 && round % 2 == 0 {
                        assert_consistent_read(&client, &counters);
                    } else if increment_all(&client, &counters).is_ok() {
                        committed.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    let client = cluster.client(0).unwrap();
    for counter in &counters {
        let value: usize = client
            .get(counter)
            .unwrap()
            .unwrap_or_default()
            .parse()
            .unwrap_or(0);
        assert_eq!(
            value,
            committed.load(Ordering::SeqCst),
            "lost update on {counter}"
        );
    }
}

fn increment_all(client: &Client, counters: &[String]) -> kv2pc::Result<()> {
    let mut txn = client.begin()?;
    for counter in counters {
        let value: u64 = txn.get(counter)?.unwrap_or_default().parse().unwrap_or(0);
        txn.put(counter, &(value + 1).to_string())?;
    }
    txn.commit()
}

/// Every increment touches all counters, so a consistent read sees them equal: a
/// read-only snapshot, and a locking read-write transaction, alternately.
fn assert_consistent_read(client: &Client, counters: &[String]) {
    let snapshot = client.begin_read_only();
    let seen: Vec<_> = counters.iter().map(|c| snapshot.get(c).unwrap()).collect();
    assert!(
        seen.windows(2).all(|w| w[0] == w[1]),
        "snapshot saw a partial transaction: {seen:?}"
    );
    assert_locked_read(client, counters);
}

fn assert_locked_read(client: &Client, counters: &[String]) {
    let Ok(mut txn) = client.begin() else { return };
    let mut seen = Vec::new();
    for counter in counters {
        match txn.get(counter) {
            Ok(value) => seen.push(value),
            Err(Error::Aborted { .. }) => return,
            Err(error) => panic!("read failed: {error}"),
        }
    }
    let _ = txn.commit();
    assert!(
        seen.windows(2).all(|w| w[0] == w[1]),
        "partial transaction seen: {seen:?}"
    );
}

#[test]
fn a_deadlock_across_nodes_aborts_the_youngest_and_names_the_cycle() {
    let dir = TempDir::new().unwrap();
    let cluster = open(&dir, 3);
    let (a, b) = (
        keys_on(&cluster, 1, 1).remove(0),
        keys_on(&cluster, 2, 1).remove(0),
    );
    let mut first = cluster.client(0).unwrap().begin().unwrap();
    let mut second = cluster.client(0).unwrap().begin().unwrap();
    first.put(&a, "1").unwrap();
    second.put(&b, "2").unwrap();
    let waiter = std::thread::spawn(move || {
        let result = first.put(&b, "1");
        (result, first)
    });
    while cluster
        .locks()
        .iter()
        .all(|(_, locks)| locks.waiters.is_empty())
    {
        std::thread::sleep(Duration::from_millis(1));
    }
    let error = second.put(&a, "2").unwrap_err();
    let message = error.to_string();
    assert!(message.contains("deadlock T4 -> T1 -> T4"), "{message}");
    let (result, first) = waiter.join().unwrap();
    result.unwrap();
    first.commit().unwrap();
    cluster.settle();
    assert!(cluster.locks().is_empty());
}

#[test]
fn the_data_directory_is_checked() {
    let dir = TempDir::new().unwrap();
    let cluster = open(&dir, 3);
    let locked = Cluster::open(dir.path(), manual(3))
        .err()
        .expect("second open must fail");
    assert!(locked.to_string().contains("in use by process"), "{locked}");
    drop(cluster);
    let other_size = Cluster::open(dir.path(), manual(4))
        .err()
        .expect("wrong size must fail");
    assert!(
        other_size
            .to_string()
            .contains("holds a 3-node cluster, not 4"),
        "{other_size}"
    );
    let stray = TempDir::new().unwrap();
    std::fs::write(stray.path().join("notes.txt"), "mine").unwrap();
    let error = Cluster::open(stray.path(), manual(3))
        .err()
        .expect("stray dir must fail");
    assert!(error.to_string().contains("not empty"), "{error}");
    assert!(Cluster::open(dir.path(), manual(0)).is_err());
    assert!(Cluster::open(dir.path(), manual(65)).is_err());
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let dir = TempDir::new().unwrap();
    let cluster = open(&dir, 3);
    let client = cluster.client(0).unwrap();
    assert!(matches!(client.put("", "v"), Err(Error::InvalidInput(_))));
    assert!(matches!(
        client.put(&"k".repeat(2000), "v"),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        client.put("k", &"v".repeat(70_000)),
        Err(Error::InvalidInput(_))
    ));
    assert!(cluster.client(7).is_err());
    assert!(cluster.crash(9).is_err());
    assert_eq!(client.get("k").unwrap(), None);
}

#[test]
fn a_failed_log_write_stops_the_node_and_loses_nothing_committed() {
    let dir = TempDir::new().unwrap();
    let cluster = open(&dir, 3);
    let (x, y) = key_on_1_and_2(&cluster);
    let client = cluster.client(0).unwrap();
    client.put(&x, "kept").unwrap();
    client.put(&y, "kept").unwrap();
    // Node 1's disk "fills up" as it forces the Prepare of the next transaction.
    cluster.fail_next_write(1).unwrap();
    let mut txn = client.begin().unwrap();
    txn.put(&x, "lost").unwrap();
    txn.put(&y, "lost").unwrap();
    let committing = std::thread::spawn(move || txn.commit());
    while !committing.is_finished() {
        cluster.settle();
        std::thread::sleep(Duration::from_millis(5));
        cluster.tick(Duration::from_secs(2)).unwrap();
    }
    let error = committing.join().unwrap().unwrap_err();
    assert!(matches!(error, Error::Aborted { .. }), "{error}");
    let status = &cluster.status()[1];
    assert!(!status.up);
    let failure = status.failure.clone().unwrap_or_default();
    assert!(failure.contains("no space left on device"), "{failure}");
    assert!(
        failure.contains("node1"),
        "the failure names the file: {failure}"
    );
    cluster.restart(1).unwrap();
    cluster.settle();
    assert_eq!(client.get(&x).unwrap().as_deref(), Some("kept"));
    assert_eq!(client.get(&y).unwrap().as_deref(), Some("kept"));
    assert!(cluster.locks().is_empty());
    assert!(
        cluster
            .status()
            .iter()
            .all(|s| s.in_doubt.is_empty() && s.failure.is_none())
    );
}

#[test]
fn a_transaction_begun_with_its_first_operation_commits_and_reports_a_down_node() {
    let dir = TempDir::new().unwrap();
    let cluster = open(&dir, 3);
    let client = cluster.client(0).unwrap();
    let (x, y) = key_on_1_and_2(&cluster);
    let mut txn = client.begin_lazily();
    assert_eq!(txn.id(), None, "nothing has begun yet");
    assert_eq!(txn.get(&x).unwrap(), None);
    let tid = txn.id().expect("the first read began it");
    txn.put(&x, "1").unwrap();
    txn.put(&y, "2").unwrap();
    txn.commit().unwrap();
    assert_eq!(client.get(&y).unwrap().as_deref(), Some("2"));
    // A lazy transaction that never operated ends without a message.
    client.begin_lazily().commit().unwrap();

    // The owner of the first key is down: the client hears so from the coordinator,
    // and the transaction, begun, is aborted (a failed operation aborts its
    // transaction), so nothing else of it can commit.
    cluster.crash(1).unwrap();
    let mut txn = client.begin_lazily();
    match txn.put(&x, "2") {
        Err(Error::NodeDown { node: 1, .. }) => {}
        other => panic!("expected node 1 down, got {other:?}"),
    }
    assert!(txn.id().is_some_and(|later| later > tid));
    assert!(matches!(txn.put(&y, "3"), Err(Error::Aborted { .. })));
    assert!(matches!(txn.commit(), Err(Error::Aborted { .. })));
    assert_eq!(client.get(&y).unwrap().as_deref(), Some("2"));

    // The coordinator is down: nothing began.
    cluster.restart(1).unwrap();
    cluster.crash(0).unwrap();
    let mut txn = client.begin_lazily();
    assert!(matches!(
        txn.put(&x, "4"),
        Err(Error::NodeDown { node: 0, .. })
    ));
    assert_eq!(txn.id(), None);
    assert!(txn.participants().is_empty());
}

/// A node restarted while a peer is down serves locked reads and writes at once: the
/// router tells it that its restart announcement to the down peer was lost, so it does
/// not wait for that peer's answer (the manual clock never ticks here, so nothing else
/// would end the wait).
#[test]
fn a_node_restarted_while_a_peer_is_down_serves_without_waiting_for_it() {
    let dir = TempDir::new().unwrap();
    let cluster = Arc::new(open(&dir, 3));
    let (x, _) = key_on_1_and_2(&cluster);
    cluster.crash(2).unwrap();
    cluster.crash(1).unwrap();
    cluster.restart(1).unwrap();
    cluster.settle();
    let (done, finished) = crossbeam::channel::bounded(1);
    let worker = {
        let (cluster, x) = (cluster.clone(), x.clone());
        std::thread::spawn(move || {
            let client = cluster.client(0).unwrap();
            let mut txn = client.begin_lazily();
            let read = txn
                .get(&x)
                .and_then(|_| txn.put(&x, "1"))
                .and_then(|()| txn.commit());
            let _ = done.send(read);
        })
    };
    let outcome = finished.recv_timeout(Duration::from_secs(20));
    assert!(
        matches!(outcome, Ok(Ok(()))),
        "node 1 still holds locked operations for node 2, which is down: {outcome:?}"
    );
    worker.join().unwrap();
    assert_eq!(
        cluster.client(0).unwrap().get(&x).unwrap().as_deref(),
        Some("1")
    );
}

/// A node's prepare floor rises once an outcome is durable even when the node's syncer,
/// not its own thread, did the fsync and nothing else wakes the node afterwards: a
/// read-only transaction begun after the commit, in another session, reads a snapshot
/// that includes it. Clients kept waiting on a lock make the nodes hand their fsyncs to
/// the syncer, as under load.
#[test]
fn a_read_only_snapshot_begun_after_an_outcome_includes_it() {
    let dir = TempDir::new().expect("temp dir");
    let cluster = Arc::new(open(&dir, 3));
    let (x, y) = key_on_1_and_2(&cluster);
    let hot = keys_on(&cluster, 0, 1).remove(0);
    let client = cluster.client(0).expect("client");
    // Another session, so that the snapshot is not simply at or above the session's own
    // last commit (see `Client::begin_read_only`).
    let reader = cluster.client(1).expect("client");
    client.put(&hot, "0").expect("put");
    let holder = cluster.client(0).expect("client");
    let mut held = holder.begin().expect("begin");
    held.put(&hot, "held").expect("lock the hot key");
    let waiters: Vec<_> = (0..3)
        .map(|i| {
            let cluster = cluster.clone();
            let hot = hot.clone();
            std::thread::spawn(move || {
                let client = cluster.client(0).expect("client");
                let mut txn = client.begin().expect("begin");
                let _ = txn.put(&hot, &format!("waiter {i}"));
                let _ = txn.abort();
            })
        })
        .collect();
    cluster.settle();
    for round in 1..=20 {
        let value = round.to_string();
        let mut txn = client.begin().expect("begin");
        txn.put(&x, &value).expect("put x");
        txn.put(&y, &value).expect("put y");
        txn.commit().expect("commit");
        cluster.settle();
        let snapshot = reader.begin_read_only();
        let seen = (
            snapshot.get(&x).expect("read x"),
            snapshot.get(&y).expect("read y"),
        );
        assert_eq!(
            seen,
            (Some(value.clone()), Some(value.clone())),
            "round {round}: a snapshot at {} begun after the commit misses it",
            snapshot.read_ts()
        );
    }
    held.abort().expect("abort");
    for waiter in waiters {
        waiter.join().expect("a waiter");
    }
}

/// A bug that panics a node thread mid-batch must not hang the cluster: the node is
/// reported down with the panic's message (STATUS and the next request say so), its
/// work ends so the cluster settles, and RESTART brings it back with its data.
#[test]
fn a_node_thread_that_panics_is_reported_crashed_and_restarts_with_its_data() {
    let dir = TempDir::new().unwrap();
    let cluster = open(&dir, 3);
    let (x, y) = key_on_1_and_2(&cluster);
    let client = cluster.client(0).unwrap();
    client.put(&x, "kept").unwrap();
    client.put(&y, "kept").unwrap();
    cluster.inject_panic(1, "an injected bug").unwrap();
    let limit = Duration::from_secs(20);
    cluster
        .settle_within(limit)
        .unwrap_or_else(|waiting| panic!("still waiting for: {waiting:?}"));
    let status = &cluster.status()[1];
    assert!(!status.up, "{status:?}");
    assert_eq!(
        status.failure.as_deref(),
        Some("it panicked: an injected bug")
    );
    let error = client.get(&x).unwrap_err().to_string();
    assert_eq!(
        error,
        "node 1 is down: it panicked: an injected bug; RESTART it"
    );
    // The other nodes still answer.
    assert_eq!(client.get(&y).unwrap().as_deref(), Some("kept"));
    cluster.restart(1).unwrap();
    cluster.settle_within(limit).unwrap();
    assert_eq!(client.get(&x).unwrap().as_deref(), Some("kept"));
    client.put(&x, "after").unwrap();
    assert_eq!(client.get(&x).unwrap().as_deref(), Some("after"));
    assert!(cluster.status().iter().all(|s| s.up && s.failure.is_none()));
}

/// `settle_within` names the work it is still waiting for: here a shell-like command
/// that never ends.
#[test]
fn settling_names_what_is_outstanding_when_it_gives_up() {
    let dir = TempDir::new().unwrap();
    let cluster = open(&dir, 2);
    let activity = cluster.activity();
    let command = activity.dispatched();
    let waiting = cluster
        .settle_within(Duration::from_millis(50))
        .unwrap_err();
    assert_eq!(waiting, vec!["1 shell command"]);
    drop(command);
    cluster.settle_within(Duration::from_secs(20)).unwrap();
    assert!(cluster.outstanding().is_empty());
}

/// A deadlock on a node with a long queue of waits beside it is still found and broken.
/// Past 64 waits a node on the real clock looks at its waits only every 16th batch and
/// at every tick (`node::detect`), so this is the case where a deadlock could be
/// missed: 80 transactions queue on one key, then two more deadlock on two other keys
/// of the same node, with nothing else happening there.
#[test]
fn a_deadlock_beside_a_long_queue_is_found() {
    let dir = TempDir::new().unwrap();
    let config = Config {
        manual_clock: false,
        ..manual(3)
    };
    let cluster = Cluster::open(dir.path(), config).expect("open cluster");
    let keys = keys_on(&cluster, 1, 3);
    let (hot, a, b) = (keys[0].clone(), keys[1].clone(), keys[2].clone());
    let mut holder = cluster.client(0).unwrap().begin().unwrap();
    holder.put(&hot, "held").unwrap();
    let client = cluster.client(2).unwrap();
    let mut queue = client.pipeline(100);
    for _ in 0..80 {
        queue.submit(kv2pc::client::Steps::new([
            kv2pc::client::Step::GetForUpdate(hot.clone()),
        ]));
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let waiters = |cluster: &Cluster| {
        (cluster.locks().iter())
            .find(|(_, locks)| locks.key == hot)
            .map_or(0, |(_, locks)| locks.waiters.len())
    };
    while waiters(&cluster) < 80 {
        assert!(
            std::time::Instant::now() < deadline,
            "the queue never formed"
        );
        queue.poll();
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut first = cluster.client(0).unwrap().begin().unwrap();
    let mut second = cluster.client(0).unwrap().begin().unwrap();
    first.put(&a, "1").unwrap();
    second.put(&b, "2").unwrap();
    let wanted = b.clone();
    let waiter = std::thread::spawn(move || (first.put(&wanted, "1"), first));
    while waiters(&cluster) < 80
        || (cluster.locks().iter()).all(|(_, l)| l.key != b || l.waiters.is_empty())
    {
        assert!(
            std::time::Instant::now() < deadline,
            "first never waited for b"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    // Closing the cycle; its answer must come by itself, within seconds.
    let (told, answer) = std::sync::mpsc::channel();
    std::thread::spawn(move || told.send(second.put(&a, "2")));
    let error = (answer.recv_timeout(Duration::from_secs(10)))
        .expect("the deadlock was never broken")
        .unwrap_err();
    assert!(error.to_string().contains("deadlock"), "{error}");
    let (result, first) = waiter.join().unwrap();
    result.unwrap();
    first.commit().unwrap();
    holder.commit().unwrap();
    let mut outcomes = 0;
    while outcomes < 80 {
        let outcome = queue.collect_timeout(Duration::from_secs(10));
        assert!(
            outcome.is_some(),
            "{outcomes} of 80 queued transactions answered"
        );
        outcomes += 1;
    }
}

/// A parallel commit's COMMITs wait for its `Decision`'s fsync, which rides on the next
/// fsync or comes after a short linger: a node kept busy by mail that forces nothing
/// (here a stream of snapshot reads) must still make it durable soon, or the
/// participants would keep the transaction's locks for as long as the stream lasts.
#[test]
fn a_parallel_decision_is_made_durable_while_reads_keep_its_node_busy() {
    let dir = TempDir::new().unwrap();
    let config = Config {
        manual_clock: false,
        settings: Settings {
            commit: kv2pc::CommitMode::Parallel,
            ..Settings::default()
        },
        ..manual(3)
    };
    let cluster = Arc::new(Cluster::open(dir.path(), config).expect("open cluster"));
    let (on_1, on_2) = key_on_1_and_2(&cluster);
    let on_0 = keys_on(&cluster, 0, 1).remove(0);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (cluster, stop, key) = (cluster.clone(), stop.clone(), on_0.clone());
        std::thread::spawn(move || {
            let client = cluster.client(0).unwrap();
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            while !stop.load(Ordering::Relaxed) && std::time::Instant::now() < deadline {
                client.get(&key).unwrap();
            }
        })
    };
    std::thread::sleep(Duration::from_millis(20));
    let mut txn = cluster.client(0).unwrap().begin().unwrap();
    txn.put(&on_1, "1").unwrap();
    txn.put(&on_2, "1").unwrap();
    txn.commit().unwrap();
    // The next writer of the key waits for the COMMIT to reach node 1.
    let (told, answer) = std::sync::mpsc::channel();
    let writer = {
        let (cluster, key) = (cluster.clone(), on_1.clone());
        std::thread::spawn(move || {
            let mut txn = cluster.client(1).unwrap().begin().unwrap();
            let result = txn.put(&key, "2").and_then(|_| txn.commit());
            told.send(result).ok();
        })
    };
    // Milliseconds when the linger is kept; a second and more when it is not.
    let result = answer.recv_timeout(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    writer.join().unwrap();
    let result = result.expect("the COMMIT was held back for as long as the reads lasted");
    assert!(result.is_ok(), "{result:?}");
}
