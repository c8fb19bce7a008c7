//! The shell records its own history as it runs, and `CHECK` checks it: every session's
//! transactions with what each read and wrote, what its client was told, and the
//! timestamp the cluster committed it at (a snapshot's, for a read-only one).

use kv2pc::history::{Outcome, RegisterOp};
use kv2pc::shell::Shell;
use kv2pc::{Cluster, Config};

fn shell() -> (tempfile::TempDir, Shell) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let config = Config {
        manual_clock: true,
        ..Config::default()
    };
    let shell = Shell::new(Cluster::open(dir.path(), config).expect("a cluster"));
    (dir, shell)
}

fn run(shell: &mut Shell, lines: &[&str]) -> String {
    let mut text = String::new();
    for line in lines {
        let output = shell.execute(line);
        text.push_str(&output.render(false));
    }
    text
}

#[test]
fn every_session_s_transactions_are_recorded_with_their_outcome_and_timestamp() {
    let (_dir, mut shell) = shell();
    run(
        &mut shell,
        &[
            "PUT x 1",
            "SESSION alice",
            "BEGIN",
            "GET x",
            "PUT y 2",
            "COMMIT",
            "BEGIN",
            "PUT x 3",
            "ABORT",
            "BEGIN READ ONLY",
            "GET y",
            "COMMIT",
            "GET x",
            "BEGIN",
            "COMMIT",
        ],
    );
    let history = shell.history();
    let summary: Vec<(String, &str, Outcome, bool, usize)> = (history.txns.iter())
        .map(|t| {
            let name = t.name.split('@').next().unwrap_or_default().to_string();
            (
                name,
                t.session.as_str(),
                t.outcome,
                t.at.is_some(),
                t.ops.len(),
            )
        })
        .collect();
    let expected = [
        // alice: a read-write transaction, an aborted one, a snapshot, an autocommit GET;
        // the empty transaction is not recorded.
        ("T4".to_string(), "alice", Outcome::Committed, true, 2),
        ("T7".to_string(), "alice", Outcome::Aborted, false, 1),
        ("snapshot".to_string(), "alice", Outcome::Committed, true, 1),
        ("GET x".to_string(), "alice", Outcome::Committed, true, 1),
        // main: the autocommit PUT, a transaction of its own.
        ("T1".to_string(), "main", Outcome::Committed, true, 1),
    ];
    assert_eq!(summary, expected, "{history:#?}");
    let reads: Vec<&RegisterOp> = history.txns[0].ops.iter().collect();
    assert_eq!(
        reads[0],
        &RegisterOp::Read {
            key: "x".into(),
            value: Some("1".into())
        }
    );
    // T4 read T1's x, so it committed above it.
    assert!(history.txns[0].at > history.txns[4].at, "{history:#?}");
    let verdict = run(&mut shell, &["CHECK"]);
    assert!(
        verdict.starts_with("the history of 4 committed transactions is serializable"),
        "{verdict}"
    );
    assert!(
        verdict.contains("left out: T7 (session alice), aborted"),
        "{verdict}"
    );
}

#[test]
fn check_names_what_is_still_open_and_a_read_that_waited() {
    let (_dir, mut shell) = shell();
    let text = run(
        &mut shell,
        &[
            "SESSION alice",
            "BEGIN",
            "PUT x 1",
            "SESSION bob",
            "BEGIN",
            "GET x",
            "alice: COMMIT",
            "PUT y 1",
            "COMMIT",
            "SESSION carol",
            "BEGIN",
            "GET y",
            "CHECK",
        ],
    );
    let verdict = text.split("> CHECK").last().unwrap_or_default();
    assert!(
        text.contains(
            "the history of 2 committed transactions is serializable: an equivalent serial \
             order is T1, T4"
        ),
        "{text}"
    );
    assert!(
        verdict.contains("still open, so not in the history yet: T7 (session carol)"),
        "{text}"
    );
}
