//! The shell's interactive side through the library (`shell::interactive`): the prompt
//! of a waiting session, ABORT and Ctrl-C ending a lock wait, a SOURCE stopped by
//! Ctrl-C, and what happens on the real clock while nobody types. The terminal itself
//! (the line editor, the printing above the prompt) is `tests/pty.rs`.

use kv2pc::shell::{Output, Shell};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tempfile::TempDir;

fn shell(home: &TempDir, manual_clock: bool) -> Shell {
    let config = kv2pc::Config {
        nodes: 3,
        manual_clock,
        settings: kv2pc::Settings::default(),
    };
    let cluster = kv2pc::Cluster::open(home.path().join("data"), config).expect("a cluster");
    Shell::new(cluster)
}

fn text(output: &Output) -> String {
    output.render(false)
}

/// Runs `line` and returns what it printed.
fn run(shell: &mut Shell, line: &str) -> String {
    text(&shell.execute(line))
}

/// A key owned by `node`.
fn key_on(shell: &Shell, node: u32) -> String {
    (0..)
        .map(|n| format!("k{n}"))
        .find(|key| shell.cluster().owner(key) == node)
        .expect("a key on every node")
}

#[test]
fn abort_typed_while_the_session_waits_ends_the_wait_and_the_transaction() {
    let home = tempfile::tempdir().expect("a temporary directory");
    let mut shell = shell(&home, true);
    run(&mut shell, "alice: BEGIN; alice: PUT w 1; BEGIN; PUT v 1");
    let waited = run(&mut shell, "GET w");
    assert!(
        waited.contains("<waiting for a shared lock on w"),
        "{waited}"
    );
    assert_eq!(shell.prompt(), "kv2pc[main T4 waiting]> ");
    let aborted = run(&mut shell, "ABORT");
    assert!(
        aborted.contains("T4 aborted; so its waiting GET w fails\n<main: GET w completed>\n"),
        "{aborted}"
    );
    assert!(
        aborted
            .contains("error: T4 aborted: ABORT ended it while its GET w waited for a lock on w"),
        "{aborted}"
    );
    assert_eq!(shell.prompt(), "kv2pc[main]> ");
    // Its write is undone and its locks released: alice writes v at once.
    let wrote = run(&mut shell, "alice: PUT v 2");
    assert_eq!(wrote, "ok\n");
    // With a session prefix, from another session.
    run(&mut shell, "bob: BEGIN");
    let waited = run(&mut shell, "bob: GET w");
    assert!(waited.contains("<waiting"), "{waited}");
    let aborted = run(&mut shell, "bob: ABORT");
    assert!(
        aborted.contains("aborted; so its waiting GET w fails"),
        "{aborted}"
    );
    let begun = run(&mut shell, "bob: BEGIN");
    assert!(
        begun.contains("started"),
        "bob left the transaction: {begun}"
    );
}

#[test]
fn ctrl_c_at_the_prompt_cancels_the_wait_and_the_session_stays_in_the_aborted_transaction() {
    let home = tempfile::tempdir().expect("a temporary directory");
    let mut shell = shell(&home, true);
    assert!(shell.cancel_wait().is_none(), "nothing waits yet");
    run(&mut shell, "alice: BEGIN; alice: PUT w 1; BEGIN; GET w");
    let cancelled = text(&shell.cancel_wait().expect("main waits"));
    assert_eq!(
        cancelled,
        "<main: GET w completed>\nerror: T4 aborted: Ctrl-C cancelled its GET w while it \
         waited for a lock on w; its writes are undone\n"
    );
    assert_eq!(shell.prompt(), "kv2pc[main T4 aborted]> ");
    let refused = run(&mut shell, "PUT x 1");
    assert!(
        refused.contains("T4 was aborted: Ctrl-C cancelled its GET w"),
        "{refused}"
    );
    let ended = run(&mut shell, "ABORT");
    assert!(ended.contains("T4 had already been aborted"), "{ended}");
    assert_eq!(shell.prompt(), "kv2pc[main]> ");
}

#[test]
fn a_commit_waiting_for_votes_cannot_be_cancelled_and_says_why() {
    let home = tempfile::tempdir().expect("a temporary directory");
    let mut shell = shell(&home, true);
    let (a, b) = (key_on(&shell, 1), key_on(&shell, 2));
    run(
        &mut shell,
        &format!("BEGIN; PUT {a} 1; PUT {b} 1; CRASH node 2"),
    );
    let waited = run(&mut shell, "COMMIT");
    assert!(waited.contains("<waiting"), "{waited}");
    let refused = run(&mut shell, "ABORT");
    assert!(
        refused.contains(
            "error: session main is running COMMIT, whose outcome only its coordinator decides"
        ),
        "{refused}"
    );
    let cancelled = text(&shell.cancel_wait().expect("main waits"));
    assert!(cancelled.contains("cannot be cancelled"), "{cancelled}");
    let timed_out = run(&mut shell, "TICK 2s");
    assert!(
        timed_out.contains("<main: COMMIT completed>"),
        "{timed_out}"
    );
}

#[test]
fn ctrl_c_stops_a_source_before_its_next_line() {
    let home = tempfile::tempdir().expect("a temporary directory");
    let script = home.path().join("three.kv");
    std::fs::write(&script, "PUT a 1\nPUT b 2\nPUT c 3\n").expect("a script");
    let mut shell = shell(&home, true);
    shell.interrupt_flag().store(true, Ordering::SeqCst);
    let stopped = run(&mut shell, &format!("SOURCE \"{}\"", script.display()));
    assert!(
        stopped.contains("Ctrl-C stopped SOURCE") && stopped.contains("after 0 of its 3 lines"),
        "{stopped}"
    );
    shell.interrupt_flag().store(false, Ordering::SeqCst);
    assert_eq!(run(&mut shell, "GET a"), "a is not set\n");
}

#[test]
fn on_the_real_clock_a_vote_timeout_is_seen_without_a_command() {
    let home = tempfile::tempdir().expect("a temporary directory");
    let mut shell = shell(&home, false);
    let (a, b) = (key_on(&shell, 1), key_on(&shell, 2));
    run(
        &mut shell,
        &format!("BEGIN; PUT {a} 1; PUT {b} 1; CRASH node 2"),
    );
    let waited = run(&mut shell, "COMMIT");
    assert!(waited.contains("<waiting"), "{waited}");
    assert_eq!(shell.prompt(), "kv2pc[main T1 waiting]> ");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = String::new();
    while !seen.contains("COMMIT completed") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        seen.push_str(&text(&shell.background()));
    }
    assert!(
        seen.contains("<main: COMMIT completed>\nerror: T1 aborted"),
        "{seen}"
    );
    assert_eq!(shell.prompt(), "kv2pc[main]> ");
    assert!(shell.background().outcomes.is_empty(), "reported once");
}

/// Runs `kv2pc check` on a transcript of `text` and returns its exit code and output.
fn check(home: &TempDir, text: &str) -> (i32, String) {
    let path = home.path().join("recorded.txt");
    std::fs::write(&path, text).expect("a transcript");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kv2pc"))
        .args(["check", "--no-color"])
        .arg(&path)
        .output()
        .expect("kv2pc check runs");
    let code = output.status.code().expect("an exit code");
    (code, String::from_utf8_lossy(&output.stdout).into_owned())
}

#[test]
fn kv2pc_check_explains_why_a_real_time_recording_does_not_replay() {
    let home = tempfile::tempdir().expect("a temporary directory");
    // What a real-time recording holds: a COMMIT that ended when a vote timed out.
    let recorded = "#! nodes 3\n\
        # recorded on the real clock (--real-time): timeouts fired as time passed\n\
        > BEGIN\nT1 started: a transaction coordinated by node 0\n\n\
        > PUT k1 1\nok\n\n> PUT k2 1\nok\n\n> CRASH node 2\n\
        node 2 crashed: its memory and unsynced log tail are gone\n\n\
        > COMMIT\nerror: T1 aborted: vote timeout\n";
    let (code, stdout) = check(&home, recorded);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("note: this transcript was recorded on the real clock"),
        "{stdout}"
    );
    assert!(
        stdout.contains("type TICK where time should pass"),
        "{stdout}"
    );
    // A recording on the manual clock that differs gets no such note.
    let manual = recorded.replace(
        "# recorded on the real clock (--real-time): timeouts fired as time passed\n",
        "",
    );
    let (code, stdout) = check(&home, &manual);
    assert_eq!(code, 1, "{stdout}");
    assert!(!stdout.contains("real clock"), "{stdout}");
}

#[test]
fn show_log_at_the_prompt_shows_the_last_records_and_says_how_to_see_all() {
    let home = tempfile::tempdir().expect("a temporary directory");
    let mut shell = shell(&home, true);
    let key = key_on(&shell, 1);
    for n in 0..4 {
        run(&mut shell, &format!("PUT {key} {n}"));
    }
    let whole = run(&mut shell, "SHOW LOG node 1");
    let records = whole.lines().count();
    assert!(records > 3, "{whole}");
    shell.set_log_limit(Some(3));
    let limited = run(&mut shell, "SHOW LOG node 1");
    let lines: Vec<&str> = limited.lines().collect();
    assert_eq!(lines[..3], whole.lines().collect::<Vec<_>>()[records - 3..]);
    assert_eq!(
        lines[3],
        format!("(the last 3 of {records} records; SHOW LOG node 1 LAST {records} shows them all)")
    );
    assert_eq!(
        run(&mut shell, &format!("SHOW LOG node 1 LAST {records}")),
        whole
    );
}

#[test]
fn timing_is_a_setting_of_the_prompt_that_prints_no_time_itself() {
    let home = tempfile::tempdir().expect("a temporary directory");
    let mut shell = shell(&home, true);
    assert!(!shell.timing());
    let on = run(&mut shell, "TIMING ON");
    assert_eq!(
        on,
        "timing on (the interactive prompt prints each command's time)\n"
    );
    assert!(shell.timing());
    assert_eq!(
        run(&mut shell, "PUT a 1"),
        "ok\n",
        "no time in the output itself"
    );
    assert_eq!(run(&mut shell, "timing off"), "timing off\n");
    assert!(!shell.timing());
}
