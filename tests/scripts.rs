//! Scripts run as psql runs a file: what commands print on standard output, each error
//! on standard error as `FILE:LINE: error: ...` naming the innermost `SOURCE`d file and
//! its line; `--bail` stops inside `SOURCE`; `--echo` shows the lines `SOURCE` reads; a
//! script that ends with a command still waiting says so and exits 1. Transcripts keep
//! their errors inline, so `kv2pc check` is unchanged.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use tempfile::TempDir;

#[path = "support/binary.rs"]
mod binary;

use binary::Run;

/// Runs the binary in `dir` with `args` and `stdin` piped in, on a temporary cluster.
fn run(dir: &Path, args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kv2pc"))
        .current_dir(dir)
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("XDG_STATE_HOME", dir.join("state"))
        .env("KV2PC_HISTFILE", "")
        .arg("--temp")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin.as_bytes()).expect("writing stdin");
    drop(input);
    child.wait_with_output().expect("the binary ends").into()
}

/// A folder holding the script files `files` (name, text).
fn folder(files: &[(&str, &str)]) -> TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).expect("writing a script");
    }
    dir
}

/// `main.kv` sources `inner.kv`, which sources `deep.kv`; each has a bad line.
fn nested() -> TempDir {
    folder(&[
        ("main.kv", "PUT a 1\nSOURCE inner.kv\nGETT a\nGET b\n"),
        (
            "inner.kv",
            "# inner\nPUT b 2\nSOURCE deep.kv\nCOMMIT\nPUT c 3\n",
        ),
        ("deep.kv", "\nPUT x @home\nPUT d 4\n"),
    ])
}

#[test]
fn errors_go_to_stderr_with_the_innermost_file_and_line() {
    let dir = nested();
    let run = run(dir.path(), &["main.kv"], "");
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.stdout, "ok\nok\nok\nok\nb = 2\n");
    let firsts: Vec<&str> = (run.stderr.lines())
        .filter(|line| line.contains(": error: "))
        .collect();
    assert_eq!(
        firsts,
        [
            "deep.kv:2: error: syntax error: '@' cannot be part of a bare word \
             (letters, digits and _ - . / : only)",
            "inner.kv:4: error: no transaction is open in this session; BEGIN one first",
            "main.kv:3: error: syntax error: unknown command 'GETT'; type HELP for the list",
        ]
    );
    // A syntax error goes on with its line, its caret and its hint.
    assert!(
        run.stderr
            .contains("PUT x @home\n      ^\nhint: put it in double quotes: \"@home\"\n"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_piped_script_is_stdin_and_dash_c_the_command_line() {
    let dir = folder(&[]);
    let piped = run(dir.path(), &[], "PUT x 1\n\nCOMMIT\n");
    assert_eq!(piped.stdout, "ok\n");
    assert_eq!(
        piped.stderr,
        "<stdin>:3: error: no transaction is open in this session; BEGIN one first\n"
    );
    let dash_c = run(dir.path(), &["-c", "PUT x 1; ABORT"], "");
    assert_eq!(
        dash_c.stderr,
        "<command line>:1: error: no transaction is open in this session; BEGIN one first\n"
    );
    assert_eq!(dash_c.code, 1);
}

#[test]
fn bail_stops_inside_source_at_the_first_failure() {
    let dir = nested();
    let run = run(dir.path(), &["--bail", "main.kv"], "");
    assert_eq!(run.code, 1);
    // PUT a, PUT b ran; deep.kv's bad line stopped everything after it.
    assert_eq!(run.stdout, "ok\nok\n");
    let errors = run
        .stderr
        .lines()
        .filter(|l| l.contains(": error: "))
        .count();
    assert_eq!(errors, 1, "{}", run.stderr);
    assert!(
        run.stderr.starts_with("deep.kv:2: error: "),
        "{}",
        run.stderr
    );
}

#[test]
fn echo_shows_the_lines_source_reads() {
    let dir = folder(&[
        ("main.kv", "PUT a 1\nSOURCE inner.kv\nGET a\n"),
        ("inner.kv", "# set b\nPUT b 2; GET b\n\nGET a\n"),
    ]);
    let run = run(dir.path(), &["--echo", "main.kv"], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "> PUT a 1\nok\n> SOURCE inner.kv\n# set b\n> PUT b 2; GET b\nok\nb = 2\n\
         > GET a\na = 1\n> GET a\na = 1\n"
    );
}

#[test]
fn a_script_left_waiting_says_where_and_exits_1() {
    let dir = folder(&[("wait.kv", "bob: BEGIN\n\nbob: PUT x 3\n")]);
    let script = "BEGIN; PUT x 2\nSOURCE wait.kv\nSTATUS\n";
    let run = run(dir.path(), &[], script);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("<waiting for an exclusive lock on x, held by T1 (session main)>"),
        "{}",
        run.stdout
    );
    assert_eq!(
        run.stderr,
        "wait.kv:3: error: the script ended while PUT x 3 in session bob was still \
         waiting, so it never completed; end the transaction it waits for (COMMIT or \
         ABORT) before the script ends\n"
    );
    // Ended in time, the same wait is no error.
    let resolved = self::run(dir.path(), &[], &format!("{script}COMMIT\n"));
    assert_eq!(resolved.code, 0, "{}", resolved.stderr);
    assert!(resolved.stdout.contains("<bob: PUT x 3 completed>\nok\n"));
}

#[test]
fn a_waiting_commands_later_error_names_the_line_it_began_at() {
    // Bob waits for main's lock at line 3; the deadlock at line 5 makes bob the victim
    // (it began last), and its error is reported under main's PUT: at line 3.
    let script = "BEGIN; PUT x 1\nbob: BEGIN; bob: PUT y 1\nbob: PUT x 2\n\nPUT y 2\nCOMMIT\n";
    let run = run(folder(&[]).path(), &[], script);
    assert!(
        run.stdout.contains("<bob: PUT x 2 completed>"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.starts_with("<stdin>:3: error: T"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_recorded_script_with_errors_and_source_still_checks() {
    let dir = nested();
    let recorded = run(dir.path(), &["--record", "session.txt", "main.kv"], "");
    assert_eq!(recorded.code, 1);
    let transcript = std::fs::read_to_string(dir.path().join("session.txt")).unwrap();
    assert!(
        transcript.contains("> GETT a\nerror: syntax error: unknown command 'GETT'"),
        "errors stay inline in a transcript: {transcript}"
    );
    // `check` takes no --temp: run it without.
    let output = Command::new(env!("CARGO_BIN_EXE_kv2pc"))
        .current_dir(dir.path())
        .args(["check", "session.txt"])
        .output()
        .expect("kv2pc check runs");
    let checked: Run = output.into();
    assert_eq!(checked.code, 0, "{}{}", checked.stdout, checked.stderr);
}
