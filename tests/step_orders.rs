//! Step mode, exhaustively: every order in which a learner can let one commit's messages
//! and fsyncs go ends with the transaction committed everywhere, nothing in doubt,
//! nothing unacknowledged, and the nodes' logs agreeing after every step.
//!
//! The commit: node 0 coordinates a transaction that wrote `a` (node 1) and `x` (node
//! 2). With step mode on, its COMMIT holds two PREPAREs; each participant's Prepare
//! record waits for its fsync, its vote for that, the coordinator's Decision for its
//! fsync, and so on to the acknowledgements. At each point the test may let any one of
//! the held steps go (`DELIVER n`); it walks every sequence of choices, each on a fresh
//! cluster, as an odometer over the queue positions. A sequence's numbering is the
//! same every run (several nodes never work at once in step mode), so a sequence of
//! positions names one execution.
//!
//! Then one order with a crash of the coordinator, or of a participant, before each of
//! its steps: a crash anywhere in the middle leaves the commit all or nothing, and a
//! client told "committed" finds its writes.

use kv2pc::shell::Shell;
use kv2pc::{Cluster, Config};

fn shell(dir: &tempfile::TempDir) -> Shell {
    let config = Config {
        manual_clock: true,
        ..Config::default()
    };
    Shell::new(Cluster::open(dir.path(), config).expect("a cluster opens"))
}

fn run(shell: &mut Shell, line: &str) -> String {
    let output = shell.execute(line);
    let text = output.render(false);
    assert!(!text.contains("INVARIANT BROKEN"), "after {line}:\n{text}");
    text
}

/// Runs one order: the positions in `prefix`, then always the first held step. Returns
/// each step's (position taken, queue length), and the shell at the end.
fn one_order(prefix: &[usize]) -> (Vec<(usize, usize)>, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut shell = shell(&dir);
    assert_eq!(
        run(&mut shell, "WHERE a; WHERE x"),
        "a is on node 1\nx is on node 2\n"
    );
    run(&mut shell, "BEGIN; PUT a 1; PUT x 1; STEP ON");
    let mut log = run(&mut shell, "COMMIT");
    let mut taken = Vec::new();
    loop {
        let queue = shell.cluster().step_queue();
        if queue.is_empty() {
            break;
        }
        assert!(taken.len() < 64, "a commit that does not end: {log}");
        let position = prefix.get(taken.len()).copied().unwrap_or(0);
        taken.push((position, queue.len()));
        let (number, _) = queue[position];
        log += &run(&mut shell, &format!("DELIVER {number}"));
    }
    log += &run(&mut shell, "STEP OFF");
    assert!(log.contains("T1 committed"), "{log}");
    for status in shell.cluster().status() {
        assert!(status.up, "{log}");
        assert!(status.in_doubt.is_empty(), "node {}: {log}", status.node);
        assert!(
            status.unacknowledged.is_empty(),
            "node {}: {log}",
            status.node
        );
        assert!(
            status.coordinating.is_empty(),
            "node {}: {log}",
            status.node
        );
    }
    assert_eq!(run(&mut shell, "GET a; GET x"), "a = 1\nx = 1\n");
    assert!(shell.cluster().check_atomicity().is_empty());
    (taken, log)
}

/// The next sequence of positions after `taken`, odometer-wise; `None` after the last.
fn next(mut taken: Vec<(usize, usize)>) -> Option<Vec<usize>> {
    while let Some((position, length)) = taken.pop() {
        if position + 1 < length {
            let mut prefix: Vec<usize> = taken.iter().map(|(p, _)| *p).collect();
            prefix.push(position + 1);
            return Some(prefix);
        }
    }
    None
}

#[test]
fn every_delivery_order_of_a_two_participant_commit_commits_everywhere() {
    let mut prefix = Vec::new();
    let mut orders = 0;
    let mut longest = 0;
    loop {
        let (taken, _) = one_order(&prefix);
        orders += 1;
        longest = longest.max(taken.len());
        match next(taken) {
            Some(following) => prefix = following,
            None => break,
        }
    }
    // Two participants, each PREPARE, fsync, VOTE and then COMMIT, fsync, ACK around
    // the coordinator's Decision fsync: two interleavings of 3 and 3, C(6,3) = 20 each.
    assert_eq!(longest, 13, "one order's steps");
    assert_eq!(orders, 400, "the orders walked");
}

#[test]
fn a_crash_of_the_coordinator_or_a_participant_before_any_step_keeps_the_commit_atomic() {
    let (steps, _) = one_order(&[]);
    for (node, crash_at) in [0, 1]
        .into_iter()
        .flat_map(|n| (0..=steps.len()).map(move |s| (n, s)))
    {
        let dir = tempfile::tempdir().unwrap();
        let mut shell = shell(&dir);
        run(&mut shell, "BEGIN; PUT a 1; PUT x 1; STEP ON");
        let mut log = run(&mut shell, "COMMIT");
        for _ in 0..crash_at {
            log += &run(&mut shell, "NEXT");
        }
        log += &run(&mut shell, &format!("CRASH node {node}"));
        // Time passes, every step goes, and the node comes back.
        log += &run(&mut shell, "DELIVER ALL; TICK 2s; DELIVER ALL");
        log += &run(&mut shell, &format!("RESTART node {node}"));
        log += &run(&mut shell, "STEP OFF; TICK 2s; TICK 2s");
        for status in shell.cluster().status() {
            assert!(
                status.in_doubt.is_empty(),
                "crash of node {node} at {crash_at}: {log}"
            );
        }
        let values = run(&mut shell, "GET a; GET x");
        assert!(
            values == "a = 1\nx = 1\n" || values == "a is not set\nx is not set\n",
            "crash of node {node} at {crash_at}: all or nothing, not\n{values}\n{log}"
        );
        let committed = log.contains("T1 committed");
        assert!(
            !committed || values == "a = 1\nx = 1\n",
            "crash of node {node} at {crash_at}: told committed, but\n{values}\n{log}"
        );
    }
}
