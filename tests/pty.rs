//! The interactive shell as a terminal user sees it: the real binary on a pseudo-terminal
//! (rustyline reads keys and draws the prompt only on a terminal whose `TERM` it
//! supports: with `TERM=dumb` it reads plain lines, and Ctrl-C is the terminal's SIGINT),
//! typed at line by line.
//!
//! What `execute` tests cannot show: the prompt the user is given after each command,
//! drawn by the line editor, and what Ctrl-C does at that prompt.

use expectrl::Expect;
use expectrl::process::unix::WaitStatus;
use expectrl::session::OsSession as Session;
use std::process::Command;
use std::time::Duration;

/// The shell on a terminal, with a throwaway cluster, no colour and its own history file.
fn shell(home: &tempfile::TempDir) -> Session {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kv2pc"));
    command
        .arg("--temp")
        .arg("--no-color")
        .env("HOME", home.path())
        .env("KV2PC_HISTFILE", home.path().join("history"))
        .env("TMPDIR", home.path())
        .env("TERM", "xterm")
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
    session.expect("kv2pc[main]> ").expect("a fresh prompt");
    // The half-typed line was dropped, not run, and the cluster is still there.
    type_line(&mut session, "GET x", "x is not set", "kv2pc[main]> ");
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
