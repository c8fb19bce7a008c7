//! The `kv2pc` binary end to end: scripts from a pipe, a file and `-c`; `--echo`,
//! `--json`, `--bail`; bad lines that each get an error and change nothing; colour off
//! without a terminal; the data directory's exit status and persistence; `--record` and
//! `kv2pc check`; the prompt after a transaction is aborted out of the session's sight.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use tempfile::TempDir;

#[path = "support/binary.rs"]
mod binary;

use binary::{Run, entries};

/// The binary, with the user's directories and colour settings out of the way.
fn kv2pc(home: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kv2pc"));
    command
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_STATE_HOME", home.join("state"))
        .env("KV2PC_HISTFILE", "")
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR")
        .env_remove("CLICOLOR_FORCE");
    command
}

/// Starts `command` with its standard streams piped.
fn piped(command: &mut Command) -> std::process::Child {
    (command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped()))
    .spawn()
    .expect("the binary starts")
}

/// Runs the binary with `args`, `stdin` piped in.
fn run(home: &Path, args: &[&str], stdin: &str) -> Run {
    let mut child = piped(kv2pc(home).args(args));
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin.as_bytes()).expect("writing stdin");
    drop(input);
    child.wait_with_output().expect("the binary ends").into()
}

fn home() -> TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

/// A data directory argument inside `home`.
fn data_dir(home: &TempDir) -> String {
    home.path().join("cluster").display().to_string()
}

#[test]
fn a_piped_script_runs_without_prompt_or_colour() {
    let home = home();
    let run = run(
        home.path(),
        &["--temp"],
        "PUT x 1\nBEGIN\nPUT y 2\nCOMMIT\nGET y\n",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let expected = "ok\nT4 started: a transaction coordinated by node 0\nok\n\
                    T4 committed on node 1 in one phase\ny = 2\n";
    assert_eq!(run.stdout, expected);
    assert!(!run.stdout.contains("kv2pc["), "no prompt in a script");
}

#[test]
fn a_script_file_runs_with_source_relative_to_it() {
    let home = home();
    let folder = home.path().join("scripts");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join("setup.kv"), "PUT x 1\n").unwrap();
    std::fs::write(
        folder.join("main.kv"),
        "# sets x, then reads it\nSOURCE setup.kv\nGET x\n",
    )
    .unwrap();
    let script = folder.join("main.kv").display().to_string();
    let run = run(home.path(), &["--temp", &script], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "ok\nx = 1\n");
}

#[test]
fn dash_c_runs_each_command_and_echo_shows_them() {
    let home = home();
    let plain = run(home.path(), &["--temp", "-c", "PUT x 1; get x"], "");
    assert_eq!((plain.code, plain.stdout.as_str()), (0, "ok\nx = 1\n"));
    let echoed = run(
        home.path(),
        &["--temp", "--echo", "-c", "PUT x 1; get x"],
        "",
    );
    assert_eq!(echoed.stdout, "> PUT x 1\nok\n> GET x\nx = 1\n");
    let script = "# a comment\nPUT x 1\n\nGET x\n";
    let echoed = run(home.path(), &["--temp", "--echo"], script);
    assert_eq!(
        echoed.stdout,
        "# a comment\n> PUT x 1\nok\n> GET x\nx = 1\n"
    );
}

#[test]
fn json_gives_one_object_per_result_with_the_documented_fields() {
    let home = home();
    let script = "TRACE ON; PUT x 1; GET x\nCOMMIT\nCRASH node two\n";
    let run = run(home.path(), &["--temp", "--json"], script);
    assert_eq!(run.code, 1);
    let objects: Vec<serde_json::Value> = (run.stdout.lines())
        .map(|line| serde_json::from_str(line).expect("a JSON object per line"))
        .collect();
    assert_eq!(objects.len(), 5);
    for object in &objects {
        let keys: Vec<&str> = object.as_object().unwrap().keys().map(|k| &k[..]).collect();
        let fields = ["command", "completed_later", "error", "file", "line", "ok"];
        assert_eq!(
            keys,
            [&fields[..], &["output", "session", "trace"]].concat()
        );
        assert!(object["completed_later"].is_boolean());
        assert!(object["output"].is_array() && object["trace"].is_array());
    }
    let put = &objects[1];
    assert_eq!((&put["file"], &put["line"]), (&"<stdin>".into(), &1.into()));
    assert_eq!(objects[4]["line"], 3, "CRASH node two is on line 3");
    assert_eq!(put["command"], "PUT x 1");
    assert_eq!(put["session"], "main");
    assert_eq!(put["ok"], true);
    assert_eq!(put["output"], serde_json::json!(["ok"]));
    assert!(put["trace"].as_array().unwrap().len() >= 2, "{put}");
    assert_eq!(objects[2]["output"], serde_json::json!(["x = 1"]));
    let commit = &objects[3];
    assert_eq!(
        (commit["ok"].clone(), commit["session"].clone()),
        (false.into(), "main".into())
    );
    assert!(
        commit["error"]
            .as_str()
            .unwrap()
            .contains("no transaction is open")
    );
    assert_eq!(objects[4]["session"], serde_json::Value::Null);
    assert!(
        objects[4]["error"]
            .as_str()
            .unwrap()
            .contains("expected a node number")
    );
}

#[test]
fn bail_stops_at_the_first_failed_command() {
    let home = home();
    let dir = data_dir(&home);
    let script = "PUT x 1\nCOMMIT\nPUT y 2\n";
    let run_bail = run(home.path(), &["--data-dir", &dir, "--bail"], script);
    assert_eq!(run_bail.code, 1);
    assert_eq!(run_bail.stdout, "ok\n");
    assert_eq!(
        run_bail.stderr,
        "<stdin>:2: error: no transaction is open in this session; BEGIN one first\n"
    );
    let after = run(home.path(), &["--data-dir", &dir, "-c", "GET y; GET x"], "");
    assert_eq!(after.stdout, "y is not set\nx = 1\n");
}

#[test]
fn bad_lines_each_get_an_error_and_change_nothing() {
    let home = home();
    let long_key = "k".repeat(1025);
    let bad = [
        "PUT x",
        "CRASH node two",
        "CRASH node 9",
        "RESTART node 1",
        "GET \"\"",
        &format!("GET {long_key}"),
        &format!("PUT {long_key} 1"),
        "COMMIT",
        "ABORT",
        "SET nope 1",
        "SET vote_timeout soon",
        "SOURCE /nonexistent/script.kv",
        "TICK 5",
        "PUT x \"unterminated",
        "BEGINX",
        "SHOW LOG node 7",
        "HELP nothing",
    ];
    let script = format!("PUT x 1\n{}\nGET x\nSTATUS\n", bad.join("\n"));
    let run = run(home.path(), &["--temp"], &script);
    assert_eq!(run.code, 1);
    // Each error is on standard error, naming the line of the bad command.
    let errors: Vec<&str> = (run.stderr.lines())
        .filter(|l| l.starts_with("<stdin>:") && l.contains(": error: "))
        .collect();
    assert_eq!(errors.len(), bad.len(), "{}", run.stderr);
    for (index, error) in errors.iter().enumerate() {
        assert!(
            error.starts_with(&format!("<stdin>:{}: ", index + 2)),
            "{error}"
        );
    }
    assert!(!run.stdout.contains("error"), "{}", run.stdout);
    assert!(run.stdout.contains("\nx = 1\n"), "{}", run.stdout);
    let nodes_up = run.stdout.lines().filter(|l| l.contains("  up  ")).count();
    assert_eq!(nodes_up, 3, "{}", run.stdout);
}

#[test]
fn no_colour_without_a_terminal_or_with_no_color() {
    let home = home();
    let script = "CRASH node 1\nCOMMIT\nTRACE ON\nRESTART node 1\nHELP\n";
    for no_color in [false, true] {
        let mut command = kv2pc(home.path());
        if no_color {
            command.env("NO_COLOR", "1");
        }
        let output = command
            .args(["--temp", "-c", script.replace('\n', ";").as_str()])
            .output()
            .unwrap();
        let stdout = String::from_utf8(output.stdout).unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.contains("error: "), "{stderr}");
        assert!(!stdout.contains('\u{1b}'), "an escape in {stdout:?}");
        assert!(!stderr.contains('\u{1b}'), "an escape in {stderr:?}");
    }
}

#[test]
fn a_data_directory_keeps_its_data_and_its_node_count() {
    let home = home();
    let dir = data_dir(&home);
    let first = run(
        home.path(),
        &["--data-dir", &dir, "--nodes", "4"],
        "PUT x 1\n",
    );
    assert_eq!(first.code, 0, "{}", first.stderr);
    let again = run(
        home.path(),
        &["--data-dir", &dir, "--nodes", "4", "-c", "GET x"],
        "",
    );
    assert_eq!((again.code, again.stdout.as_str()), (0, "x = 1\n"));
    let wrong = run(home.path(), &["--data-dir", &dir, "-c", "GET x"], "");
    assert_eq!(wrong.code, 3);
    assert!(wrong.stdout.is_empty());
    assert!(wrong.stderr.contains(&dir), "{}", wrong.stderr);
    assert!(wrong.stderr.contains("--nodes 4"), "{}", wrong.stderr);
}

#[test]
fn a_data_directory_in_use_is_refused() {
    let home = home();
    let dir = data_dir(&home);
    let mut holder = kv2pc(home.path())
        .args(["--data-dir", &dir])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = holder.stdin.take().unwrap();
    input.write_all(b"PUT x 1\n").unwrap();
    let mut reader = BufReader::new(holder.stdout.take().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "ok\n", "the holder has opened the directory");
    let second = run(home.path(), &["--data-dir", &dir, "-c", "GET x"], "");
    assert_eq!(second.code, 3);
    assert!(second.stderr.contains(&dir), "{}", second.stderr);
    drop(input);
    assert!(holder.wait().unwrap().success());
}

#[test]
fn usage_errors_exit_2_and_help_documents_the_exit_statuses() {
    let home = home();
    assert_eq!(run(home.path(), &["--no-such-option"], "").code, 2);
    assert_eq!(
        run(home.path(), &["--temp", "/no/such/script.kv"], "").code,
        2
    );
    assert_eq!(
        run(home.path(), &["--nodes", "0", "--temp", "-c", "STATUS"], "").code,
        2
    );
    assert_eq!(run(home.path(), &["--json", "check", "x.txt"], "").code, 2);
    let help = run(home.path(), &["--help"], "");
    assert_eq!(help.code, 0);
    for status in [
        "0  success",
        "1  a command failed",
        "2  bad usage",
        "3  the data",
    ] {
        assert!(
            help.stdout.contains(status),
            "{status:?} in {}",
            help.stdout
        );
    }
}

#[test]
fn check_passes_a_good_transcript_and_shows_a_diff_for_a_tampered_one() {
    let home = home();
    let good = home.path().join("good.txt");
    std::fs::write(&good, "# a comment\n> PUT x 1\nok\n\n> GET x\nx = 1\n").unwrap();
    let passed = run(home.path(), &["check", good.to_str().unwrap()], "");
    assert_eq!(passed.code, 0, "{}{}", passed.stdout, passed.stderr);
    assert!(passed.stdout.starts_with("ok "), "{}", passed.stdout);
    let tampered = home.path().join("tampered.txt");
    std::fs::write(&tampered, "# a comment\n> PUT x 1\nok\n\n> GET x\nx = 2\n").unwrap();
    let args = ["check", good.to_str().unwrap(), tampered.to_str().unwrap()];
    let failed = run(home.path(), &args, "");
    assert_eq!(failed.code, 1);
    assert!(failed.stdout.contains("FAIL  "), "{}", failed.stdout);
    assert!(
        failed.stdout.contains("\n-x = 2\n+x = 1\n"),
        "{}",
        failed.stdout
    );
    let missing = run(home.path(), &["check", "/no/such/transcript.txt"], "");
    assert_eq!(missing.code, 2);
}

#[test]
fn a_recorded_session_checks() {
    let home = home();
    let record = home.path().join("session.txt");
    let record_arg = record.display().to_string();
    let script =
        "# a recorded session\nPUT x 1; PUT y 2\nBEGIN\nGET x\nCOMMIT\nCOMMIT\nHELP sessions\n";
    let recorded = run(
        home.path(),
        &["--temp", "--nodes", "2", "--record", &record_arg],
        script,
    );
    assert_eq!(recorded.code, 1, "the second COMMIT fails");
    let text = std::fs::read_to_string(&record).unwrap();
    assert!(text.starts_with("#! nodes 2\n# a recorded session\n> PUT x 1\nok\n> PUT y 2\n"));
    let checked = run(home.path(), &["check", &record_arg], "");
    assert_eq!(checked.code, 0, "{}\n{text}", checked.stdout);
}

/// The log files of node `node` in the data directory `dir`.
fn node_logs(dir: &str, node: u32) -> Vec<std::path::PathBuf> {
    let folder = Path::new(dir).join(format!("node{node}"));
    let mut logs: Vec<_> = (std::fs::read_dir(folder).unwrap())
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("log.")
        })
        .collect();
    logs.sort();
    logs
}

/// Where the end marker of the log segment at `path` is: just before the zeros of its
/// preallocated space.
fn end_marker(path: &Path, bytes: &[u8]) -> usize {
    let name = path.file_name().unwrap().to_string_lossy();
    let number: u64 = name.trim_start_matches("log.").parse().unwrap();
    let last = bytes.iter().rposition(|b| *b != 0).unwrap();
    let is_marker = |at: usize| {
        let synced = u64::from_le_bytes(bytes[at + 8..at + 16].try_into().unwrap());
        bytes[at..at + 16] == kv2pc::wal::frame::v3::marker(number, at as u64, synced)
    };
    (last.saturating_sub(15)..=last)
        .find(|at| is_marker(*at))
        .expect("an end marker")
}

#[test]
fn a_torn_log_tail_is_cut_with_a_warning_and_corruption_exits_3() {
    let home = home();
    let dir = data_dir(&home);
    let writes = "PUT y 1; PUT y 2; PUT y 3; PUT y 4; WHERE y";
    let first = run(home.path(), &["--data-dir", &dir, "-c", writes], "");
    assert!(
        first.stdout.ends_with("y is on node 1\n"),
        "{}",
        first.stdout
    );
    // A torn record where the log ends: over the end marker that follows its records
    // (segments are preallocated, so the file goes on past it).
    let last_log = node_logs(&dir, 1).pop().expect("node 1 has a log");
    let mut bytes = std::fs::read(&last_log).unwrap();
    let marker = end_marker(&last_log, &bytes);
    bytes[marker..marker + 3].copy_from_slice(&[5, 0, 0]);
    std::fs::write(&last_log, bytes).unwrap();
    let torn = run(home.path(), &["--data-dir", &dir, "-c", "GET y"], "");
    assert_eq!((torn.code, torn.stdout.as_str()), (0, "y = 4\n"));
    assert!(torn.stderr.contains("warning: node 1"), "{}", torn.stderr);

    let first_log = node_logs(&dir, 1).remove(0);
    let mut bytes = std::fs::read(&first_log).unwrap();
    bytes[12] ^= 0xff;
    std::fs::write(&first_log, bytes).unwrap();
    let corrupt = run(home.path(), &["--data-dir", &dir, "-c", "GET y"], "");
    assert_eq!(corrupt.code, 3);
    assert!(corrupt.stdout.is_empty());
    let name = first_log.file_name().unwrap().to_string_lossy();
    assert!(corrupt.stderr.contains(&*name), "{}", corrupt.stderr);
}

/// A data directory that cannot be created or written (here: in sysfs, which refuses
/// even root) is a clear error naming it, exit 3, and no panic.
#[test]
fn an_unwritable_data_directory_exits_3_naming_it() {
    if !Path::new("/sys/kernel").is_dir() {
        return;
    }
    let home = home();
    let run = run(
        home.path(),
        &["--data-dir", "/sys/kernel/kv2pc-data", "-c", "GET x"],
        "",
    );
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("/sys/kernel/kv2pc-data"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

/// The shell over a fresh 4-node cluster, and a way to run one line in it.
fn shell(home: &TempDir) -> kv2pc::shell::Shell {
    let config = kv2pc::Config {
        nodes: 4,
        manual_clock: true,
        settings: kv2pc::Settings::default(),
    };
    let cluster = kv2pc::Cluster::open(home.path().join("data"), config).expect("a cluster");
    kv2pc::shell::Shell::new(cluster)
}

/// The text of every error `line` printed.
fn errors(shell: &mut kv2pc::shell::Shell, line: &str) -> Vec<String> {
    let output = shell.execute(line);
    output
        .outcomes
        .into_iter()
        .filter_map(|o| o.error)
        .collect()
}

#[test]
fn the_prompt_shows_a_transaction_aborted_out_of_sight_until_the_next_command() {
    let home = home();
    let mut shell = shell(&home);
    // Its coordinator crashes while the session is idle inside T1.
    assert!(errors(&mut shell, "BEGIN; PUT a 1").is_empty());
    assert_eq!(shell.prompt(), "kv2pc[main T1]> ");
    assert!(errors(&mut shell, "CRASH node 0").is_empty());
    assert_eq!(shell.prompt(), "kv2pc[main T1 aborted]> ");
    let told = errors(&mut shell, "COMMIT");
    assert!(
        told[0].starts_with("T1 was aborted before this COMMIT: its coordinator node 0 crashed"),
        "{told:?}"
    );
    assert_eq!(shell.prompt(), "kv2pc[main]> ");
    // A deadlock victim whose waiting command completes under another session's command.
    let setup = "RESTART node 0; SESSION a ON node 2; SESSION b ON node 3; b: BEGIN; \
                 a: BEGIN; a: GET k1; b: GET k1; a: PUT k1 1; SESSION b";
    assert!(errors(&mut shell, setup).is_empty());
    assert_eq!(shell.prompt(), "kv2pc[b T4]> ");
    assert!(errors(&mut shell, "PUT k1 2; SESSION a").len() == 1);
    assert_eq!(shell.prompt(), "kv2pc[a T3 aborted]> ");
    let told = errors(&mut shell, "GET k1");
    assert!(told[0].starts_with("T3 was aborted: deadlock"), "{told:?}");
    // The session stays in the aborted transaction until it is ended.
    assert_eq!(shell.prompt(), "kv2pc[a T3 aborted]> ");
    assert!(errors(&mut shell, "ABORT").is_empty());
    assert_eq!(shell.prompt(), "kv2pc[a]> ");
}

/// Starts `kv2pc --temp` with its own `TMPDIR` inside `home` and `args` after, and
/// waits for the answer to one command on standard input, so its temporary directory
/// exists and the cluster is open; returns the process, its input and that `TMPDIR`.
fn start_temp_session(
    home: &Path,
    args: &[&str],
) -> (
    std::process::Child,
    std::process::ChildStdin,
    std::path::PathBuf,
) {
    let tmp = home.join("tmp");
    std::fs::create_dir_all(&tmp).expect("a TMPDIR");
    let mut child = piped(kv2pc(home).env("TMPDIR", &tmp).arg("--temp").args(args));
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(b"PUT x 1\n").expect("writing stdin");
    let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    reader.read_line(&mut line).expect("reading stdout");
    assert_eq!(line, "ok\n", "the session has opened its cluster");
    let made = entries(&tmp);
    assert!(
        made.len() == 1 && made[0].starts_with("kv2pc-"),
        "one temporary directory: {made:?}"
    );
    (child, input, tmp)
}

/// Sends `signal` (a name, as `kill` takes it) to `child`.
fn send_signal(child: &std::process::Child, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .expect("running kill");
    assert!(status.success(), "kill -{signal} failed");
}

/// Waits for `child` and checks it ended with 128 + `number`, saying why on stderr.
fn assert_ended_by(child: std::process::Child, signal: &str, number: i32) {
    let output = child.wait_with_output().expect("the binary ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(128 + number),
        "SIG{signal} should end kv2pc with status {}; it ended with {}; stderr: {stderr}",
        128 + number,
        output.status
    );
    assert!(
        stderr.contains(&format!("SIG{signal}")) && stderr.lines().count() <= 2,
        "a short message naming SIG{signal}: {stderr}"
    );
}

#[test]
fn sigint_sigterm_and_sighup_remove_a_piped_scripts_temporary_directory() {
    for (signal, number) in [("INT", 2), ("TERM", 15), ("HUP", 1)] {
        let home = home();
        let (child, input, tmp) = start_temp_session(home.path(), &[]);
        send_signal(&child, signal);
        assert_ended_by(child, signal, number);
        drop(input);
        assert_eq!(
            entries(&tmp),
            Vec::<String>::new(),
            "SIG{signal}: the temporary directory is removed"
        );
    }
}

#[test]
fn sigint_removes_a_script_files_temporary_directory() {
    let home = home();
    let tmp = home.path().join("tmp");
    std::fs::create_dir_all(&tmp).expect("a TMPDIR");
    // Long enough to be still running when the signal comes.
    let script = home.path().join("long.kv");
    let text: String = (0..200_000).map(|i| format!("PUT k{i} {i}\n")).collect();
    std::fs::write(&script, text).expect("writing the script");
    let mut child = kv2pc(home.path())
        .env("TMPDIR", &tmp)
        .arg("--temp")
        .arg(&script)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    reader.read_line(&mut line).expect("reading stdout");
    assert_eq!(line, "ok\n", "the script has begun");
    send_signal(&child, "INT");
    // Let the rest of its output drain so that it is not blocked writing.
    let drained = std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    assert_ended_by(child, "INT", 2);
    drained.join().expect("the reader").expect("reading stdout");
    assert_eq!(
        entries(&tmp),
        Vec::<String>::new(),
        "the directory is removed"
    );
}

#[test]
fn commit_on_the_command_line_sets_the_commit_mode() {
    let home = home();
    let default = run(home.path(), &["--temp", "-c", "SET"], "");
    assert_eq!(default.code, 0, "{}", default.stderr);
    assert!(
        default.stdout.contains("commit = classic"),
        "{}",
        default.stdout
    );
    let parallel = run(
        home.path(),
        &["--temp", "--commit", "parallel", "-c", "SET"],
        "",
    );
    assert_eq!(parallel.code, 0, "{}", parallel.stderr);
    assert!(
        parallel.stdout.contains("commit = parallel"),
        "{}",
        parallel.stdout
    );
    let bad = run(
        home.path(),
        &["--temp", "--commit", "fast", "-c", "SET"],
        "",
    );
    assert_eq!(bad.code, 2, "{}", bad.stdout);
    assert!(bad.stderr.contains("classic"), "{}", bad.stderr);
}
