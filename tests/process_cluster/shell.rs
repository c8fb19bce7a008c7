//! A `kv2pc cluster` session over node processes: a script that commits, crashes a
//! node's process and restarts it; the commands that cannot work over processes; and
//! `--json` over them.

use crate::support::Feed::Lines;
use crate::support::{
    Launched, NODES, all_up, begun, error_at, failed_lines, key_on, one_at_a_time, output_of,
    read_back, said, state_and_in_doubt,
};

// ---------------------------------------------------------------------------------
// A `kv2pc cluster` session: commit, crash a node's process, restart it

/// A transaction over three node processes commits and reads back; `CRASH` kills a
/// participant's process, `STATUS` shows it down at its address, a write to its key
/// fails saying so while the other nodes serve on, and `RESTART` brings it back from
/// its log with the committed data. At exit the launcher stops every node cleanly.
#[test]
fn a_node_process_killed_by_crash_comes_back_by_restart_with_its_committed_data() {
    let _one_at_a_time = one_at_a_time();
    let cluster = Launched::new();
    let (k0, k1, k2) = (key_on(0, "k"), key_on(1, "k"), key_on(2, "k"));
    let script = format!(
        "BEGIN\nPUT {k0} zero\nPUT {k1} one\nPUT {k2} two\nCOMMIT\nGET {k1}\n\
         CRASH node 1\nSTATUS\nPUT {k1} again\nGET {k0}\n\
         RESTART node 1\nSTATUS\nGET {k1}\nSHOW LOG node 1\n"
    );
    let (run, left_behind) = cluster.run("--echo", vec![Lines(script)]);
    let one = cluster.address(1);

    let tid = begun(&output_of(&run, "BEGIN", 1));
    said(
        &run,
        "COMMIT",
        1,
        &[format!("{tid} committed on nodes 0, 1, 2")],
    );
    read_back(&run, &k1, 1, Some("one"));
    let killed = format!(
        "node 1 crashed: its process at {one} was killed with SIGKILL; its memory and \
         unsynced log tail are gone"
    );
    said(&run, "CRASH node 1", 1, &[killed]);
    let status = output_of(&run, "STATUS", 1);
    assert_eq!(state_and_in_doubt(&status, 1).0, "DOWN", "{status:#?}");
    assert_eq!(state_and_in_doubt(&status, 0).0, "up", "{status:#?}");
    let why =
        format!("node 1 is down: its process at {one} was killed; RESTART node 1 starts it again");
    assert!(status.contains(&why.as_str()), "{status:#?}");
    let refused = error_at(&run, 9);
    assert!(
        refused.starts_with(&format!("node 1 is down: its process at {one} ")),
        "{refused}"
    );
    read_back(&run, &k0, 1, Some("zero"));

    let restart = output_of(&run, "RESTART node 1", 1);
    let redone = format!(
        "node 1: redid the writes of 1 committed transaction ({tid}); dropped no aborted one"
    );
    assert_eq!(
        restart,
        ["node 1 recovered from 2 log records", redone.as_str()]
    );
    all_up(&output_of(&run, "STATUS", 2));
    read_back(&run, &k1, 2, Some("one"));
    let log = output_of(&run, "SHOW LOG node 1", 1);
    assert!(log[0].contains(&format!("Prepare {tid}")) && log[0].contains(&format!("{k1}=one")));
    assert!(log[1].contains(&format!("Commit {tid}")), "{log:#?}");

    // Only the write to the dead node's key failed, and the exit status says one did.
    assert_eq!(
        (run.code, failed_lines(&run, 14)),
        (1, vec![9]),
        "{}",
        run.stderr
    );
    assert!(left_behind.is_empty(), "{left_behind:#?}");
    for node in 0..NODES {
        let log = cluster.log(node);
        let stopped = format!("kv2pc node {node}: stopped");
        assert_eq!(log.lines().last(), Some(stopped.as_str()), "{log}");
    }
}

// ---------------------------------------------------------------------------------
// What cannot work over processes

/// The step queue and the manual clock belong to nodes inside the shell's process:
/// over node processes each such command fails saying why and what to use instead, and
/// the next command runs.
#[test]
fn step_and_tick_are_refused_over_processes_saying_why_and_the_shell_goes_on() {
    let _one_at_a_time = one_at_a_time();
    let k = key_on(1, "k");
    let script = format!(
        "STEP ON\nPUT {k} 1\nTICK 1s\nGET {k}\nSHOW QUEUE\nDELIVER ALL\nNEXT\nDROP 1\n\
         STEP OFF\nPUT {k} 2\nGET {k}\n"
    );
    let run = Launched::new().script(vec![Lines(script)]);
    let step_queue = "cannot run on a cluster of node processes: the step queue holds the \
                      messages of nodes inside the shell's process, but these nodes are \
                      processes that talk over their own sockets. Open the embedded shell \
                      (kv2pc) to use it";
    assert_eq!(error_at(&run, 1), format!("STEP {step_queue}"));
    said(&run, &format!("PUT {k} 1"), 1, &["ok"]);
    assert_eq!(
        error_at(&run, 3),
        "TICK cannot run on a cluster of node processes: node processes run on real time; \
         TICK moves the manual clock of nodes inside the shell's process. Open the embedded \
         shell (kv2pc) to use it"
    );
    read_back(&run, &k, 1, Some("1"));
    for (line, command) in [
        (5, "SHOW QUEUE"),
        (6, "DELIVER"),
        (7, "NEXT"),
        (8, "DROP"),
        (9, "STEP"),
    ] {
        assert_eq!(error_at(&run, line), format!("{command} {step_queue}"));
    }
    read_back(&run, &k, 2, Some("2"));
    assert_eq!(
        failed_lines(&run, 11),
        [1, 3, 5, 6, 7, 8, 9],
        "{}",
        run.stderr
    );
}

// ---------------------------------------------------------------------------------
// `--json` over processes

/// `kv2pc cluster --json` prints one JSON object per command, in order, also for a
/// crash, a node down, a refusal and a restart.
#[test]
fn json_over_processes_is_one_object_per_command() {
    let _one_at_a_time = one_at_a_time();
    let cluster = Launched::new();
    let (k0, k1) = (key_on(0, "k"), key_on(1, "k"));
    let commands = [
        "BEGIN".to_string(),
        format!("PUT {k0} 1"),
        format!("PUT {k1} 2"),
        "COMMIT".into(),
        "CRASH node 1".into(),
        "STATUS".into(),
        format!("GET {k1}"),
        "STEP ON".into(),
        "RESTART node 1".into(),
        format!("GET {k1}"),
    ];
    let (run, _) = cluster.run("--json", vec![Lines(commands.join("\n") + "\n")]);
    let results: Vec<serde_json::Value> = (run.stdout.lines())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}")))
        .collect();
    assert_eq!(results.len(), commands.len(), "{}", run.stdout);
    let failing = [7, 8];
    for (line, (result, command)) in (1..).zip(results.iter().zip(&commands)) {
        assert_eq!(result["command"], command.as_str(), "{result}");
        assert_eq!(result["line"], line, "{result}");
        assert_eq!(result["ok"], !failing.contains(&line), "{result}");
        assert_eq!(
            result["error"].is_null(),
            !failing.contains(&line),
            "{result}"
        );
    }
    let lines = |value: &serde_json::Value| -> Vec<String> {
        let lines = value.as_array().expect("lines").iter();
        lines
            .map(|line| line.as_str().expect("a line").to_string())
            .collect()
    };
    let status = lines(&results[5]["output"]);
    let status: Vec<&str> = status.iter().map(String::as_str).collect();
    assert_eq!(state_and_in_doubt(&status, 1).0, "DOWN", "{status:#?}");
    let down = results[6]["error"].as_str().expect("an error");
    let one = cluster.address(1);
    assert!(
        down.starts_with(&format!("node 1 is down: its process at {one} ")),
        "{down}"
    );
    assert_eq!(lines(&results[9]["output"]), [format!("{k1} = 2")]);
}

/// A node restarted by `RESTART` dials its peers before their links to it have seen
/// the old connection close. What a peer sends the new incarnation then (the answer
/// to its restart announcement) must wait for the new connection, not be written to
/// the dead one: lost, it held the node's first write about a second, until the
/// announcement was repeated, and the shell showed `PUT` waiting. Red with the
/// link's check (`wire::tcp::link`, `write_until_broken`) removed.
#[test]
fn a_write_right_after_a_restart_does_not_wait_for_the_rejoin() {
    let _one_at_a_time = one_at_a_time();
    let key = key_on(2, "r");
    let script = format!("CRASH node 2\nRESTART node 2\nPUT {key} 1\n").repeat(5);
    let (run, _) = Launched::new().run("--echo", vec![Lines(script)]);
    assert!(
        run.code == 0 && !run.stdout.contains("<waiting"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
}
