//! The interactive shell as a terminal user sees it: the real binary on a pseudo-terminal
//! (rustyline reads keys and draws the prompt only on a terminal whose `TERM` it
//! supports: with `TERM=dumb` it reads plain lines, and Ctrl-C is the terminal's SIGINT),
//! typed at line by line.
//!
//! What `execute` tests cannot show: the prompt the user is given after each command,
//! drawn by the line editor; lines pasted or typed ahead; what happens on the real
//! clock printed without a keystroke; what Ctrl-C does at the prompt, during a lock
//! wait and during SOURCE; the `--temp` directory gone at exit; a lesson played step by
//! step with the same editor.
//!
//! Every wait is bounded by the session's expect timeout (generous, for a loaded
//! machine); nothing sleeps for a fixed time to make a point.

#[path = "support/binary.rs"]
mod binary;

use expectrl::Expect;
use expectrl::process::unix::WaitStatus;
use expectrl::session::OsSession as Session;
use std::process::Command;
use std::time::Duration;

/// The shell on a terminal, with a throwaway cluster, no colour and its own history file.
fn shell(home: &tempfile::TempDir) -> Session {
    shell_with(home, &[])
}

/// As [`shell`], with more arguments.
fn shell_with(home: &tempfile::TempDir, args: &[&str]) -> Session {
    shell_on(home, args, "xterm")
}

/// As [`shell_with`], on a terminal of type `term`.
fn shell_on(home: &tempfile::TempDir, args: &[&str], term: &str) -> Session {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kv2pc"));
    command
        .arg("--temp")
        .args(args)
        .arg("--no-color")
        .env("HOME", home.path())
        .env("KV2PC_HISTFILE", home.path().join("history"))
        .env("TMPDIR", home.path())
        .env("TERM", term)
        .env_remove("NO_COLOR");
    let mut session = Session::spawn(command).expect("the shell starts on a terminal");
    session.set_expect_timeout(Some(Duration::from_secs(20)));
    session
}

/// Types `line` and waits until the shell has printed `answer` and then `prompt`.
fn type_line(session: &mut Session, line: &str, answer: &str, prompt: &str) {
    session.send_line(line).expect("typing");
    session
        .expect(answer)
        .unwrap_or_else(|e| panic!("after {line:?}, no {answer:?}: {e}"));
    session
        .expect(prompt)
        .unwrap_or_else(|e| panic!("after {line:?}, no prompt {prompt:?}: {e}"));
}

#[test]
fn the_prompt_shows_an_aborted_transaction_until_it_is_ended() {
    let home = tempfile::tempdir().expect("a temporary home");
    let mut session = shell(&home);
    session.expect("kv2pc[main]> ").expect("the first prompt");
    type_line(&mut session, "BEGIN", "T1 started", "kv2pc[main T1]> ");
    type_line(&mut session, "PUT a 1", "ok", "kv2pc[main T1]> ");
    // Its coordinator dies while the session sits in T1: the prompt says so at once.
    type_line(
        &mut session,
        "CRASH node 0",
        "main: T1 was aborted",
        "kv2pc[main T1 aborted]> ",
    );
    // A write is not run outside the transaction, and the session stays in it.
    type_line(
        &mut session,
        "PUT b 2",
        "so PUT b 2 was not run",
        "kv2pc[main T1 aborted]> ",
    );
    type_line(
        &mut session,
        "ABORT",
        "T1 had already been aborted",
        "kv2pc[main]> ",
    );
    session.send_line("QUIT").expect("typing");
    let status = session.get_process_mut().wait().expect("the shell ends");
    assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
}

#[test]
fn ctrl_c_at_the_prompt_clears_the_line_and_the_shell_goes_on() {
    let home = tempfile::tempdir().expect("a temporary home");
    let mut session = shell(&home);
    session.expect("kv2pc[main]> ").expect("the first prompt");
    session.send("PUT x 1").expect("typing");
    session
        .send(expectrl::ControlCode::EndOfText)
        .expect("Ctrl-C");
    // The editor redraws the prompt as the line is typed; the fresh prompt comes on a
    // new line. (What is typed ahead in the same instant as a Ctrl-C is lost: see the
    // `repl` module doc.)
    session
        .expect(expectrl::Regex("\n[^\n]*kv2pc\\[main\\]> "))
        .expect("a fresh prompt");
    // The half-typed line was dropped, not run, and the cluster is still there.
    type_line(&mut session, "GET x", "x is not set", "kv2pc[main]> ");
    // On an empty line, Ctrl-C says how to leave.
    session
        .send(expectrl::ControlCode::EndOfText)
        .expect("Ctrl-C");
    session
        .expect("to leave the shell, type QUIT")
        .expect("how to leave");
    session.expect("kv2pc[main]> ").expect("a fresh prompt");
    session.send_line("QUIT").expect("typing");
    let status = session.get_process_mut().wait().expect("the shell ends");
    assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
}

/// Waits for the shell to end after QUIT and asserts it exited 0.
fn quit(mut session: Session) {
    session.send_line("QUIT").expect("typing");
    let status = session.get_process_mut().wait().expect("the shell ends");
    assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
}

#[test]
fn lines_pasted_at_once_all_run_in_order_and_enter_the_history() {
    let home = tempfile::tempdir().expect("a temporary home");
    let mut session = shell(&home);
    session.expect("kv2pc[main]> ").expect("the first prompt");
    // A plain paste: four lines in one write, as a terminal delivers them.
    session
        .send("BEGIN\rPUT a 2\rCOMMIT\rGET a\r")
        .expect("pasting");
    session.expect("T1 started").expect("BEGIN ran");
    session.expect("ok").expect("PUT a 2 ran");
    session.expect("T1 committed").expect("COMMIT ran");
    session.expect("a = 2").expect("GET a ran");
    session
        .expect("kv2pc[main]> ")
        .expect("a prompt after them");
    // Typed ahead while the first is still running: three lines, then one more.
    session.send("PUT b 3\rGET b\rWHERE b\r").expect("typing");
    session.expect("b = 3").expect("GET b ran");
    session.expect("b is on node").expect("WHERE b ran");
    session
        .expect("kv2pc[main]> ")
        .expect("a prompt after them");
    let history = std::fs::read_to_string(home.path().join("history")).expect("the history");
    let lines: Vec<&str> = history.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        lines,
        [
            "BEGIN", "PUT a 2", "COMMIT", "GET a", "PUT b 3", "GET b", "WHERE b"
        ],
        "{history}"
    );
    quit(session);
}

/// Begins T1, writes on nodes 1 and 2, crashes node 2 and types COMMIT, which waits for
/// node 2's vote.
fn commit_with_a_participant_down(session: &mut Session) {
    type_line(session, "BEGIN", "T1 started", "kv2pc[main T1]> ");
    for key in [key_on(1), key_on(2)] {
        type_line(session, &format!("PUT {key} 1"), "ok", "kv2pc[main T1]> ");
    }
    type_line(
        session,
        "CRASH node 2",
        "node 2 crashed",
        "kv2pc[main T1]> ",
    );
    type_line(session, "COMMIT", "<waiting", "kv2pc[main T1 waiting]> ");
}

/// A key that node `node` of a 3-node cluster owns.
fn key_on(node: u32) -> String {
    (0..)
        .map(|n| format!("k{n}"))
        .find(|key| kv2pc::types::owner_of(key, 3) == node)
        .expect("a key on every node")
}

#[test]
fn a_vote_timeout_on_the_real_clock_is_printed_without_a_keystroke() {
    let home = tempfile::tempdir().expect("a temporary home");
    let mut session = shell(&home);
    session.expect("kv2pc[main]> ").expect("the first prompt");
    commit_with_a_participant_down(&mut session);
    // Nothing more is typed: the abort appears on its own, above a fresh prompt.
    session
        .expect("<main: COMMIT completed>")
        .expect("the completion, printed when it happens");
    session.expect("error: T1 aborted").expect("the abort");
    session
        .expect("kv2pc[main T1 waiting]> ")
        .expect("the prompt redrawn");
    type_line(
        &mut session,
        "STATUS",
        "sessions: main (node 0)",
        "kv2pc[main]> ",
    );
    quit(session);
}

#[test]
fn ctrl_c_ends_a_lock_wait_and_the_shell_lives() {
    let home = tempfile::tempdir().expect("a temporary home");
    let mut session = shell(&home);
    session.expect("kv2pc[main]> ").expect("the first prompt");
    type_line(&mut session, "alice: BEGIN", "started", "kv2pc[main]> ");
    type_line(&mut session, "alice: PUT w 1", "ok", "kv2pc[main]> ");
    type_line(&mut session, "BEGIN", "started", "kv2pc[main T");
    session.send_line("GET w").expect("typing");
    session
        .expect("<waiting for a shared lock on w")
        .expect("the wait");
    session
        .expect(" waiting]> ")
        .expect("the prompt says it waits");
    session
        .send(expectrl::ControlCode::EndOfText)
        .expect("Ctrl-C");
    session
        .expect("Ctrl-C cancelled its GET w while it waited for a lock on w")
        .expect("the waiting command fails and says why");
    session
        .expect(" aborted]> ")
        .expect("the prompt shows the aborted transaction");
    type_line(
        &mut session,
        "ABORT",
        "had already been aborted",
        "kv2pc[main]> ",
    );
    type_line(&mut session, "alice: COMMIT", "committed", "kv2pc[main]> ");
    quit(session);
}

/// The size of the files under `dir`, its subdirectories included.
fn bytes_under(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    (entries.flatten())
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => bytes_under(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

/// The `--temp` directories (`kv2pc-*`) in `dir`.
fn temp_dirs(dir: &std::path::Path) -> Vec<String> {
    let mut names = binary::entries(dir);
    names.retain(|name| name.starts_with("kv2pc-"));
    names
}

#[test]
fn ctrl_c_stops_a_source_and_the_temp_directory_goes_at_exit() {
    let home = tempfile::tempdir().expect("a temporary home");
    let script = home.path().join("long.kv");
    std::fs::write(&script, "PUT a 1\n".repeat(100_000)).expect("a script");
    let mut session = shell(&home);
    session.expect("kv2pc[main]> ").expect("the first prompt");
    assert_eq!(temp_dirs(home.path()).len(), 1, "the shell runs on --temp");
    session
        .send_line(format!("SOURCE \"{}\"", script.display()))
        .expect("typing");
    // A SOURCE prints when it ends; that it runs shows in the data directory growing.
    let before = bytes_under(home.path());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while bytes_under(home.path()) < before + 4096 {
        assert!(
            std::time::Instant::now() < deadline,
            "the SOURCE never wrote"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    session
        .send(expectrl::ControlCode::EndOfText)
        .expect("Ctrl-C");
    session
        .expect("error: Ctrl-C stopped SOURCE")
        .expect("the SOURCE stops after the current command");
    session.expect("kv2pc[main]> ").expect("the shell lives");
    type_line(&mut session, "GET a", "a = 1", "kv2pc[main]> ");
    quit(session);
    assert_eq!(
        temp_dirs(home.path()),
        Vec::<String>::new(),
        "removed at exit"
    );
}

#[test]
fn an_interactive_recording_runs_on_the_manual_clock_and_replays() {
    let home = tempfile::tempdir().expect("a temporary home");
    let recording = home.path().join("lesson.txt");
    let path = recording.to_str().expect("a UTF-8 path");
    let mut session = shell_with(&home, &["--record", path]);
    session
        .expect("on the manual clock: time moves only by TICK")
        .expect("the banner names the clock");
    session.expect("kv2pc[main]> ").expect("the first prompt");
    commit_with_a_participant_down(&mut session);
    // The vote timeout fires at TICK, not as real time passes, so the recording replays.
    type_line(
        &mut session,
        "TICK 2s",
        "<main: COMMIT completed>",
        "kv2pc[main]> ",
    );
    // A lock wait cancelled by Ctrl-C is recorded as the ABORT it amounts to.
    type_line(&mut session, "RESTART node 2", "recovered", "kv2pc[main]> ");
    type_line(&mut session, "alice: BEGIN", "started", "kv2pc[main]> ");
    type_line(&mut session, "alice: PUT x 1", "ok", "kv2pc[main]> ");
    type_line(&mut session, "BEGIN", "started", "kv2pc[main T");
    session.send_line("GET x").expect("typing");
    session.expect("<waiting").expect("GET x waits for alice");
    session.expect("waiting]> ").expect("the waiting prompt");
    session
        .send(expectrl::ControlCode::EndOfText)
        .expect("Ctrl-C");
    session
        .expect("recorded as ABORT")
        .expect("Ctrl-C says what it records");
    session.expect("aborted").expect("the wait ends");
    session
        .expect("kv2pc[main]> ")
        .expect("the session is free");
    quit(session);
    let check = Command::new(env!("CARGO_BIN_EXE_kv2pc"))
        .args(["check", "--no-color"])
        .arg(&recording)
        .output()
        .expect("kv2pc check runs");
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{stdout}");
    assert!(stdout.starts_with("ok "), "{stdout}");
}

#[test]
fn the_init_file_runs_before_the_first_prompt_unless_no_init() {
    let home = tempfile::tempdir().expect("a temporary home");
    let config = home.path().join(".config").join("kv2pc");
    std::fs::create_dir_all(&config).expect("a config directory");
    std::fs::write(config.join("init.kv"), "TIMING ON\n").expect("an init file");
    let mut session = shell(&home);
    session
        .expect("init.kv (--no-init skips it)")
        .expect("the init file named");
    session.expect("timing on").expect("its command ran");
    session.expect("kv2pc[main]> ").expect("the first prompt");
    type_line(&mut session, "PUT a 1", "ok", "time: ");
    session.expect("kv2pc[main]> ").expect("a prompt");
    quit(session);
    // With --no-init, and -q: no banner, no init file, no times.
    let mut session = shell_with(&home, &["--no-init", "-q"]);
    let first = session.expect("kv2pc[main]> ").expect("the first prompt");
    let before = String::from_utf8_lossy(first.before()).into_owned();
    assert!(!before.contains("type HELP"), "no banner: {before:?}");
    assert!(!before.contains("init.kv"), "no init file: {before:?}");
    session.send_line("PUT a 2").expect("typing");
    session.expect("ok").expect("PUT a 2 ran");
    let after = session.expect("kv2pc[main]> ").expect("a prompt");
    let after = String::from_utf8_lossy(after.before()).into_owned();
    assert!(
        !after.contains("time:"),
        "no time without TIMING ON: {after:?}"
    );
    quit(session);
}

#[test]
fn a_dumb_terminal_gets_a_plain_shell_that_still_prints_what_happens_by_itself() {
    let home = tempfile::tempdir().expect("a temporary home");
    let mut session = shell_on(&home, &[], "dumb");
    session.expect("kv2pc[main]> ").expect("the first prompt");
    type_line(&mut session, "WHERE x", "x is on node 2", "kv2pc[main]> ");
    let (one, two) = (key_on(1), key_on(2));
    session
        .send_line(format!(
            "CRASH node 1 AT vote; BEGIN; PUT {one} 1; PUT {two} 1; COMMIT"
        ))
        .expect("typing");
    session
        .expect("did not vote within")
        .expect("the vote timeout is printed without a keystroke");
    quit(session);
}

#[test]
fn sigquit_removes_the_temp_directory() {
    let home = tempfile::tempdir().expect("a temporary home");
    let mut session = shell(&home);
    session.expect("kv2pc[main]> ").expect("the first prompt");
    assert_eq!(temp_dirs(home.path()).len(), 1, "the shell runs on --temp");
    let pid = session.get_process().pid();
    let killed = Command::new("kill")
        .args(["-QUIT", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let status = session.get_process_mut().wait().expect("the shell ends");
    assert!(matches!(status, WaitStatus::Exited(_, 131)), "{status:?}");
    assert_eq!(temp_dirs(home.path()), Vec::<String>::new(), "removed");
}

#[test]
fn an_error_in_a_sourced_file_at_the_prompt_names_its_file_and_line() {
    let home = tempfile::tempdir().expect("a temporary home");
    let script = home.path().join("steps.kv");
    std::fs::write(&script, "PUT a 1\nGETT a\n").expect("a script");
    let mut session = shell(&home);
    session.expect("kv2pc[main]> ").expect("the first prompt");
    type_line(
        &mut session,
        &format!("SOURCE \"{}\"", script.display()),
        &format!("{}:2: error: syntax error", script.display()),
        "kv2pc[main]> ",
    );
    quit(session);
}
/// `LESSON 2` at the prompt plays the lesson with the shell's own editor: Enter runs the
/// step shown, a look around runs and the step waits, a command typed instead runs and
/// is noted, Ctrl-C only says how to go on,
/// Ctrl-D leaves the lesson and the shell's prompt comes back over the user's cluster,
/// untouched by the lesson's.
#[test]
fn a_lesson_plays_step_by_step_at_the_prompt_and_ctrl_d_returns_to_the_shell() {
    let home = tempfile::tempdir().expect("a temporary home");
    let mut session = shell(&home);
    session.expect("kv2pc[main]> ").expect("the first prompt");
    type_line(&mut session, "PUT mine 1", "ok", "kv2pc[main]> ");
    type_line(
        &mut session,
        "LESSON 2",
        "[lesson 2, step 1 of 20] press Enter to run: WHERE x",
        "lesson 2> ",
    );
    type_line(
        &mut session,
        "",
        "x is on node 2",
        "[lesson 2, step 2 of 20] press Enter to run: WHERE y",
    );
    session.expect("lesson 2> ").expect("the lesson's prompt");
    type_line(
        &mut session,
        "STATUS",
        "(a look around, which changes nothing: the step still waits)",
        "[lesson 2, step 2 of 20] press Enter to run: WHERE y",
    );
    session.expect("lesson 2> ").expect("the lesson's prompt");
    type_line(
        &mut session,
        "PUT z 9",
        "(your own command, instead of the lesson's WHERE y",
        "lesson 2> ",
    );
    session
        .send(expectrl::ControlCode::EndOfText)
        .expect("Ctrl-C");
    session
        .expect("QUIT or Ctrl-D leaves the lesson")
        .expect("Ctrl-C says how to go on");
    session
        .expect("lesson 2> ")
        .expect("the lesson's prompt again");
    session
        .send(expectrl::ControlCode::EndOfTransmission)
        .expect("Ctrl-D");
    session
        .expect("You left lesson 2 after 2 of its 20 steps.")
        .expect("Ctrl-D leaves the lesson");
    session.expect("kv2pc[main]> ").expect("the shell's prompt");
    type_line(&mut session, "KEYS", "mine", "kv2pc[main]> ");
    quit(session);
}

/// `kv2pc lesson 1` on a terminal plays with the line editor too; QUIT leaves.
#[test]
fn kv2pc_lesson_on_a_terminal_plays_and_quit_leaves() {
    let home = tempfile::tempdir().expect("a temporary home");
    let mut command = Command::new(env!("CARGO_BIN_EXE_kv2pc"));
    command
        .args(["lesson", "1", "--no-color"])
        .env("HOME", home.path())
        .env("KV2PC_HISTFILE", home.path().join("history"))
        .env("TMPDIR", home.path())
        .env("TERM", "xterm");
    let mut session = Session::spawn(command).expect("the lesson starts on a terminal");
    session.set_expect_timeout(Some(Duration::from_secs(20)));
    session
        .expect("[lesson 1, step 1 of ")
        .expect("the first step");
    session.expect("lesson 1> ").expect("the lesson's prompt");
    type_line(&mut session, "", "x is on node", "lesson 1> ");
    session.send_line("QUIT").expect("typing");
    session
        .expect("You left lesson 1 after 1 of its")
        .expect("QUIT leaves");
    let status = session.get_process_mut().wait().expect("the lesson ends");
    assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
}

#[test]
fn step_mode_at_a_real_time_prompt_stops_the_clock_and_gives_it_back() {
    let home = tempfile::tempdir().expect("a temporary home");
    let mut session = shell(&home);
    session.expect("kv2pc[main]> ").expect("the first prompt");
    type_line(&mut session, "BEGIN", "T1 started", "kv2pc[main T1]> ");
    for key in [key_on(1), key_on(2)] {
        type_line(
            &mut session,
            &format!("PUT {key} 1"),
            "ok",
            "kv2pc[main T1]> ",
        );
    }
    type_line(&mut session, "STEP ON", "step mode on", "kv2pc[main T1]> ");
    type_line(
        &mut session,
        "COMMIT",
        "held 2  node0 -> node2  PREPARE T1",
        "kv2pc[main T1 waiting]> ",
    );
    // Past the vote timeout (1s) on the real clock: nothing fires, as time stands.
    std::thread::sleep(Duration::from_millis(1500));
    type_line(
        &mut session,
        "SHOW QUEUE",
        "  2  node0 -> node2  PREPARE T1",
        "kv2pc[main T1 waiting]> ",
    );
    type_line(
        &mut session,
        "DELIVER 1",
        "held 3  node1  fsync",
        "kv2pc[main T1 waiting]> ",
    );
    // Everything held goes, and the commit completes.
    type_line(&mut session, "STEP OFF", "T1 committed", "kv2pc[main]> ");
    // The clock runs again: a vote that never comes times out by itself.
    commit_with_a_participant_down_again(&mut session);
    session
        .expect("did not vote within 1s")
        .expect("the vote timeout fires on real time");
    session.expect("waiting]> ").expect("the prompt redrawn");
    quit(session);
}

/// As `commit_with_a_participant_down`, for a second transaction.
fn commit_with_a_participant_down_again(session: &mut Session) {
    type_line(session, "BEGIN", "started", "]> ");
    for key in [key_on(1), key_on(2)] {
        type_line(session, &format!("PUT {key} 2"), "ok", "]> ");
    }
    type_line(session, "CRASH node 2", "node 2 crashed", "]> ");
    type_line(session, "COMMIT", "<waiting", "waiting]> ");
}

/// `kv2pc cluster` at a terminal: the banner names each node process's address and
/// pid; `CRASH` kills one (the pid is gone), `RESTART` brings it back, and `QUIT`
/// stops every node process it started.
#[test]
fn kv2pc_cluster_at_a_terminal_names_its_processes_and_stops_them_at_quit() {
    let home = tempfile::tempdir().expect("home");
    let mut command = Command::new(env!("CARGO_BIN_EXE_kv2pc"));
    command
        .args(["cluster", "--temp", "--no-init"])
        .env("HOME", home.path())
        .env("KV2PC_HISTFILE", home.path().join("history"))
        .env("TMPDIR", home.path())
        .env("TERM", "xterm")
        .env("NO_COLOR", "1");
    let mut session = Session::spawn(command).expect("the shell starts on a terminal");
    session.set_expect_timeout(Some(Duration::from_secs(20)));
    let banner = session
        .expect(expectrl::Regex("cluster of processes: [^\n]*\n"))
        .expect("the banner");
    let banner = String::from_utf8_lossy(banner.get(0).expect("a match")).into_owned();
    let pids: Vec<i32> = (banner.split("(pid ").skip(1))
        .filter_map(|rest| rest.split(')').next()?.parse().ok())
        .collect();
    assert_eq!(pids.len(), 3, "{banner}");
    assert!(banner.contains("node 2 at 127.0.0.1:"), "{banner}");
    let alive = |pid: i32| std::path::Path::new(&format!("/proc/{pid}")).exists();
    session.expect("kv2pc[main]> ").expect("the prompt");
    type_line(
        &mut session,
        "CRASH node 2",
        "killed with SIGKILL",
        "kv2pc[main]> ",
    );
    assert!(!alive(pids[2]), "node 2's process is gone");
    type_line(
        &mut session,
        "RESTART node 2",
        "node 2 recovered",
        "kv2pc[main]> ",
    );
    type_line(&mut session, "PUT x 1", "ok", "kv2pc[main]> ");
    session.send_line("QUIT").expect("typing");
    let status = session.get_process_mut().wait().expect("the shell ends");
    assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
    for pid in &pids[..2] {
        assert!(!alive(*pid), "node process {pid} outlived the shell");
    }
}
