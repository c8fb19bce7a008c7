//! The lessons from outside: `LESSON` in a shell that hosts lessons and in one that does
//! not (a script), `SOURCE` of a recorded transcript, and `kv2pc lesson` through the real
//! binary with standard input as the learner. (The player itself is tested in
//! `src/shell/lesson/tests_player.rs`, and at a terminal in `tests/pty.rs`.)

use kv2pc::shell::Shell;
use kv2pc::shell::lesson::LESSONS;
use kv2pc::{Cluster, Config};
use std::io::Write;
use std::process::{Command, Stdio};

/// A shell on a fresh manual-clock cluster in `dir`.
fn shell(dir: &tempfile::TempDir) -> Shell {
    let config = Config {
        manual_clock: true,
        ..Config::default()
    };
    let mut shell = Shell::new(Cluster::open(dir.path(), config).unwrap());
    shell.set_base_dir(dir.path());
    shell
}

#[test]
fn lesson_lists_and_a_script_cannot_play_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut shell = shell(&dir);
    let listed = shell.execute("LESSON").render(false);
    assert!(listed.starts_with(" 1  a commit across two nodes, step by step.\n"));
    assert_eq!(listed.lines().count(), LESSONS.len() + 1, "{listed}");
    let output = shell.execute("LESSON 4");
    assert_eq!(output.lesson, None);
    assert_eq!(
        output.outcomes[0].error.as_deref(),
        Some(
            "LESSON 4 plays only at the interactive prompt; from a shell command line, \
             run kv2pc lesson 4 (LESSON alone lists the lessons)"
        )
    );
    let unknown = shell.execute("LESSON 5");
    let error = unknown.outcomes[0].error.clone().unwrap();
    assert!(error.starts_with("lesson 5 has 4 parts: 5a"), "{error}");
}

#[test]
fn a_hosting_shell_hands_the_lesson_to_its_caller() {
    let dir = tempfile::tempdir().unwrap();
    let mut shell = shell(&dir);
    shell.host_lessons(true);
    let output = shell.execute("lesson 04-deadlock");
    assert!(!output.failed(), "{}", output.render(false));
    assert_eq!(output.lesson.map(|l| l.name()), Some("4"));
    assert!(
        output
            .render(false)
            .starts_with("lesson 4 starts on a cluster of its own")
    );
}

#[test]
fn source_of_a_transcript_runs_only_its_command_lines() {
    let data = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let transcript = "#! nodes 3\n# A recording.\n> PUT x 1\nok\n\n> GET x\nx = 999\n";
    std::fs::write(dir.path().join("t.txt"), transcript).unwrap();
    let mut shell = shell(&data);
    shell.set_base_dir(dir.path());
    let output = shell.execute("SOURCE t.txt");
    assert!(!output.failed(), "{}", output.render(false));
    assert_eq!(output.render(false), "ok\nx = 1\n");
    let lines: Vec<usize> = output.sourced.iter().map(|(_, o)| o.line).collect();
    assert_eq!(lines, [3, 6], "the file's own line numbers");
    // A script keeps running every line, so its errors still name them.
    std::fs::write(dir.path().join("s.kv"), "GET x\nok\n").unwrap();
    let script = shell.execute("SOURCE s.kv");
    assert!(script.failed(), "'ok' is not a command in a script");
}

/// The binary, with the user's directories out of the way.
fn kv2pc(home: &tempfile::TempDir) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kv2pc"));
    command
        .env("XDG_DATA_HOME", home.path().join("data"))
        .env("XDG_STATE_HOME", home.path().join("state"))
        .env("KV2PC_HISTFILE", "")
        .env_remove("NO_COLOR");
    command
}

#[test]
fn kv2pc_lesson_lists_and_plays_from_standard_input() {
    let home = tempfile::tempdir().unwrap();
    let list = kv2pc(&home).arg("lesson").output().unwrap();
    assert!(list.status.success());
    let listed = String::from_utf8(list.stdout).unwrap();
    assert!(listed.contains("\n 9  reading for update"), "{listed}");

    let mut child = kv2pc(&home)
        .args(["lesson", "2"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Enter, then a command of the learner's own, then Enter to the end.
    let answers = format!("\nPUT z 9\n{}", "\n".repeat(40));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(answers.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.starts_with("Lesson 2: ABORT leaves nothing behind.\n"),
        "{text}"
    );
    assert!(text.contains("[lesson 2, step 1 of 20] press Enter to run: WHERE x\n> WHERE x\n"));
    assert!(text.contains("> PUT z 9\nok\n(your own command, instead of the lesson's WHERE y"));
    assert!(
        text.contains("Lesson 2 done: 20 steps, 1 of them your own command;"),
        "{text}"
    );

    let unknown = kv2pc(&home).args(["lesson", "42"]).output().unwrap();
    assert_eq!(unknown.status.code(), Some(2));
    let error = String::from_utf8(unknown.stderr).unwrap();
    assert!(
        error.starts_with("kv2pc: there is no lesson '42'"),
        "{error}"
    );
}
