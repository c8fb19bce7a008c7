//! Bugs found while writing these tests: those fixed, each kept as the test that showed
//! it, and those still open, marked `#[ignore = "bug: ..."]`, each passing once its bug
//! is fixed.

use crate::binary::Run;
use crate::in_doubt::commit_into;
use crate::raw::RawClient;
use crate::support::Feed::{Lines, Pause};
use crate::support::{
    DEATH_SETTLES, Launched, Nodes, error_at, key_on, one_at_a_time, output_of, state_and_in_doubt,
};
use kv2pc::message::Request;
use std::thread::JoinHandle;

/// A crash point fires and the command that ran into it returns before the process is
/// gone: the node thread dies and its client is answered while the process lives on
/// until its main loop next looks, up to 10 ms later, and raises SIGKILL
/// (`cli::node::run`). A `RESTART` right after is refused as "already up", and a
/// `STATUS` right after shows the node DOWN with no reason line. A teacher's script
/// `CRASH node 0 AT decide`, `COMMIT`, `RESTART node 0` fails about half of the runs.
#[test]
fn restart_right_after_a_crash_point_fired_is_not_refused_as_already_up() {
    let _one_at_a_time = one_at_a_time();
    let (x, y) = (key_on(1, "x"), key_on(2, "y"));
    let mut script = String::new();
    for round in 0..4 {
        script += &commit_into("CRASH node 0 AT decide", &x, &y);
        if round % 2 == 1 {
            script += "STATUS\n";
        }
        script += "RESTART node 0\n";
    }
    let run = Launched::new().script(vec![Lines(script)]);
    assert!(!run.stderr.contains("is already up"), "{}", run.stderr);
    for nth in 1..=2 {
        let status = output_of(&run, "STATUS", nth);
        if state_and_in_doubt(&status, 0).0 == "DOWN" {
            let why = status
                .iter()
                .any(|line| line.starts_with("node 0 is down: "));
            assert!(why, "a DOWN row with no reason: {status:#?}");
        }
    }
}

/// The shell prints `node1  CRASHED at commit` when an armed crash point fires in a
/// node's process. Over processes the notice is sometimes lost: it was about one
/// commit in twenty, the node's trace event racing the process's SIGKILL
/// (`cli::node::run`); the process now waits for its node thread to trace the crash
/// and for the event to leave, and settling waits for a dying process to be gone,
/// but about one in ten rounds here still loses it (a guess: the SIGKILL closes a
/// socket with unread requests in it, and the reset drops the event at the shell's
/// end). The user sees the commit and, at the next STATUS, the node down, never why.
#[test]
#[ignore = "bug: the notice of a crash point firing in a node process is sometimes lost"]
fn bug_the_notice_of_a_crash_point_firing_is_sometimes_lost() {
    let _one_at_a_time = one_at_a_time();
    let (x, y) = (key_on(1, "x"), key_on(2, "y"));
    let rounds = 20;
    let mut script = Vec::new();
    for _ in 0..rounds {
        script.push(Lines(commit_into("CRASH node 1 AT commit", &x, &y)));
        script.push(Pause(DEATH_SETTLES));
        script.push(Lines("RESTART node 1\n".into()));
    }
    let run = Launched::new().script(script);
    let notice =
        |nth: &usize| output_of(&run, "COMMIT", *nth).contains(&"node1  CRASHED at commit");
    assert_eq!(
        (1..=rounds).filter(notice).count(),
        rounds,
        "{}",
        run.stdout
    );
}

/// After `CRASH node 1` the first request to the node is told its process "cannot be
/// reached ...; is it running?", where every later one, and STATUS, say it "was
/// killed; RESTART node 1 starts it again": the first is the one a user reads.
#[test]
#[ignore = "bug: the first error after CRASH asks 'is it running?' instead of advising RESTART"]
fn bug_the_first_request_after_crash_is_not_told_to_restart() {
    let _one_at_a_time = one_at_a_time();
    let cluster = Launched::new();
    let k1 = key_on(1, "k");
    let run = cluster.script(vec![Lines(format!("CRASH node 1\nPUT {k1} 1\nGET {k1}\n"))]);
    let one = cluster.address(1);
    let advice =
        format!("node 1 is down: its process at {one} was killed; RESTART node 1 starts it again");
    assert_eq!(error_at(&run, 3), advice);
    assert_eq!(error_at(&run, 2), advice);
}

/// Node 0 takes, locks and commits a write of a key that node 1 owns when a client
/// sends it there: the key is then on the wrong node, where `KEYS` lists it and `GET`
/// (which asks the owner) never finds it. What the network sends is untrusted (the
/// `wire` module doc), but a well-formed request naming another node's key is obeyed.
#[test]
fn a_node_refuses_a_write_of_a_key_it_does_not_own() {
    let _one_at_a_time = one_at_a_time();
    let nodes = Nodes::start();
    let foreign = key_on(1, "foreign");
    let mut client = RawClient::dial(nodes.addr(0));
    let (tid, written) = client.begin_and_write(&foreign, "by hand");
    let commit = Request::Commit {
        tid,
        participants: vec![0],
        clock: 0,
    };
    let committed = client.ask(commit);
    let keys = nodes.connect(&format!("KEYS\nGET {foreign}\n"));
    assert!(
        written.is_err(),
        "node 0 took a write of {foreign}, which node 1 owns: {written:?}, then {committed:?}; \
         then\n{}",
        keys.stdout
    );
}

/// A commit naming node 7 of a three-node cluster is not refused: the coordinator logs
/// a Prepare with "participants 0,7", waits for node 7's vote and aborts at the vote
/// timeout, "node 7 did not vote within 1s". (A BEGIN naming node 9 is refused at
/// once, "there is no node 9".)
#[test]
fn a_commit_naming_a_node_outside_the_cluster_is_refused() {
    let _one_at_a_time = one_at_a_time();
    let nodes = Nodes::start();
    let mut client = RawClient::dial(nodes.addr(0));
    let (tid, written) = client.begin_and_write(&key_on(0, "k"), "by hand");
    written.expect("a write of node 0's key");
    let commit = Request::Commit {
        tid,
        participants: vec![0, 7],
        clock: 0,
    };
    let error = client.ask(commit).expect_err("no node 7 to commit on");
    assert!(error.contains("there is no node 7"), "{error}");
}

/// Eight `kv2pc cluster` runs at once, each on a cluster of its own, of a script of
/// thirty lines: what each printed, and the processes it left running.
fn eight_at_once() -> Vec<(Run, Vec<String>)> {
    let (k0, k1, k2) = (key_on(0, "k"), key_on(1, "k"), key_on(2, "k"));
    let script = format!(
        "BEGIN\nPUT {k0} 0\nPUT {k1} 1\nPUT {k2} 2\nCOMMIT\nGET {k0}\nGET {k1}\nGET {k2}\n\
         PUT {k1} 5\nGET {k1}\n"
    )
    .repeat(3);
    let runs: Vec<JoinHandle<(Run, Vec<String>)>> = (0..8)
        .map(|_| {
            let script = script.clone();
            std::thread::spawn(move || Launched::new().run("--echo", vec![Lines(script)]))
        })
        .collect();
    (runs.into_iter())
        .map(|run| run.join().expect("a cluster's run"))
        .collect()
}

/// With several clusters of processes at once on a two-core machine, a command's
/// result can come after the shell stopped waiting for it (settling over processes
/// asks twice, 2 ms apart, `QUIET_GAP`): the command prints `<waiting for the
/// cluster>`, and the script's next command in that session fails, "session main is
/// still running PUT ...". About one run in twenty-five showed it. Settling now waits
/// up to a second for requests that have had no reply (`cluster::remote`), which made
/// it rarer, not gone: it still failed once in a few runs of the file, so it is not in
/// CI, where it would make the suite flaky.
#[test]
#[ignore = "bug: under heavy load a script's command over processes can still be left waiting"]
fn a_script_line_does_not_fail_when_the_machine_is_busy() {
    let _one_at_a_time = one_at_a_time();
    for (run, _) in eight_at_once() {
        let clean = run.code == 0 && !run.stdout.contains("<waiting");
        assert!(clean, "{}\n{}", run.stdout, run.stderr);
    }
}

/// `kv2pc cluster` stops its node processes as it exits (the drop of
/// `process::launch::Launch`), but now and then it exits leaving all of them running,
/// holding their ports and data directories. Likely cause: the launcher is owned
/// through the network of the cluster's context (`ctx.net.set_remote(None,
/// processes.clone())`, `cluster::remote`), so it drops only with the last holder of
/// the context, and a thread still holding it when `run_shell` returns outlives the
/// drop. About one run in a hundred, with eight at once, shows it, so this test does
/// not fail every time while the bug is there.
#[test]
fn kv2pc_cluster_never_exits_leaving_its_node_processes_running() {
    let _one_at_a_time = one_at_a_time();
    for _ in 0..10 {
        for (run, left_behind) in eight_at_once() {
            let left = left_behind.join("\n");
            assert!(
                left.is_empty(),
                "left running:\n{left}\nafter printing\n{}",
                run.stdout
            );
        }
    }
}
