//! The interactive shell: a line editor around `Shell::execute`.
//!
//! The loop is thin on purpose: read a line, run it, print its output. Everything a
//! command does is in the library's shell, which scripts and tests drive the same way;
//! this module only adds what a person at a terminal needs: history kept across runs,
//! tab completion and usage hints (`helper`, `hint`, `words`), a coloured prompt naming
//! the session, its open transaction and whether it waits, Ctrl-C to cancel and
//! Ctrl-D to leave, and what happens on the real clock printed when it happens.
//!
//! # Two threads
//!
//! The editor reads on a thread of its own (`reader`); this loop owns the shell. While
//! the user sits at the prompt the loop asks the shell every [`POLL`] for what happened
//! in the background (`Shell::background`: a vote timeout, an inquiry, a waiting
//! command that completed, a transaction aborted by a crash) and has the editor print
//! it above the prompt, the prompt and the half-typed line redrawn below; repeated
//! identical lines are collapsed (`collapse`). Scripts and transcripts never take this
//! path: they run on the manual clock, where nothing happens between two commands, and
//! print everything under the command that caused it, the same every run.
//!
//! # Ctrl-C
//!
//! Ctrl-C cancels and never ends the shell. At the prompt the editor reads it as a key:
//! on an empty line it cancels the current session's lock wait (the waiting command
//! fails, its transaction is aborted and the session stays in it, aborted, until ABORT
//! or BEGIN: `Shell::cancel_wait`), or, with nothing waiting, says how to leave; on a
//! line with text it only clears the line. While a command runs the terminal is out of
//! raw mode and Ctrl-C is SIGINT, which sets the shell's interrupt flag: a running
//! SOURCE stops before its next line. (`cli::temp` leaves SIGINT to this loop.)
//!
//! Limits: the prompt is drawn when the editor starts reading a line, so a change that
//! happens in the background (a wait ending, a transaction aborted) shows in the line
//! printed above it at once, and in the prompt from the next line on. With `TERM=dumb`
//! rustyline reads plain lines: what happens in the background is printed below them
//! as it comes, and Ctrl-C only sets the flag. What happened in the background is not
//! in a `--record`ing (no command line produced it), so a recording runs on the manual
//! clock (see `cli`); a Ctrl-C that cancels a wait is recorded as the `ABORT` it
//! amounts to, and a `SOURCE` it stopped is marked, since a replay runs it whole.
//! Ctrl-C at the prompt ends rustyline's `readline` with an error, and rustyline drops
//! the input it had buffered then: what was typed ahead in the same instant is lost (a
//! handler that cleared the line without ending `readline` would keep it, but the
//! prompt could then not show that the wait ended).
//!
//! `LESSON 4` hands this loop a lesson (`Output::lesson`), which it plays on the
//! lesson's own cluster with the same editor (`lesson`) before it prompts again over
//! the user's cluster; the line is not recorded by `--record`, which could not replay it.
//!
//! `TIMING ON` makes this loop print each line's wall-clock time after its output;
//! `SHOW LOG` without `LAST` shows the last [`LOG_LIMIT`] records here; the init file
//! ([`init_path`], skipped with `--no-init`) runs before the first prompt as if typed.
//!
//! # Type-ahead
//!
//! Every line typed or pasted runs, in order, and enters the history, even when it
//! arrives while an earlier one is still being read or run. That needs one thing of
//! rustyline that it does not do by default: on a Unix terminal it reads the terminal
//! through a buffer of its own (1 KiB, one `read` takes whatever the terminal has), and
//! without its `buffer-redux` feature that buffer belongs to one `readline` call and is
//! dropped when the call returns. A paste of `BEGIN`, `PUT a 2`, `COMMIT` arrives in one
//! `read`; the first call returned `BEGIN` and threw the other two away, so they neither
//! ran nor entered the history, while lines typed 50 ms apart (one `read` each) all ran.
//! With `buffer-redux` (Cargo.toml) the editor hands the unread bytes to the next call.
//! Bytes typed while a command runs wait in the terminal (which is out of raw mode
//! then, and echoes them), and the next `readline` reads them as typed.
//! The history (see `reader`) is written by the editor thread as each line is read.

mod collapse;
mod helper;
mod hint;
mod lesson;
mod reader;
mod words;

use crate::exit::Exit;
use crate::printer::{Printer, STOPPED_SOURCE_NOTE};
use collapse::Collapse;
use colored::Colorize;
use kv2pc::shell::Shell;
use reader::{Read, Reader};
use signal_hook::consts::signal::SIGINT;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

pub use lesson::play_alone as play_lesson;

/// How often the loop looks for background output while the user sits at the prompt.
const POLL: Duration = Duration::from_millis(100);

/// What Ctrl-C at an empty prompt answers.
const HOW_TO_LEAVE: &str =
    "(Ctrl-C cancels a command that waits; to leave the shell, type QUIT or press Ctrl-D)";

/// What Ctrl-C at an empty prompt says while recording, before the ABORT it runs.
const RECORDED_CANCEL: &str = "(Ctrl-C: recorded as ABORT, so that the recording replays)";

/// Where the cluster lives, for the banner.
pub struct Place<'a> {
    /// The data directory.
    pub dir: &'a Path,
    /// Whether it is removed at exit.
    pub temporary: bool,
    /// Whether the cluster runs on the manual clock (the banner says so).
    pub manual_clock: bool,
}

/// How many records `SHOW LOG` shows at the prompt without `LAST`.
const LOG_LIMIT: usize = 50;

/// How the prompt loop behaves.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Colour the prompt and the output.
    pub color: bool,
    /// No banner.
    pub quiet: bool,
    /// The init file to run before the first prompt, if any (see [`init_path`]).
    pub init: Option<PathBuf>,
}

/// The init file: `kv2pc/init.kv` in the user's configuration directory
/// (`~/.config/kv2pc/init.kv` on Linux), like psql's `.psqlrc`.
pub fn init_path() -> Option<PathBuf> {
    dirs::config_dir().map(|dir| dir.join("kv2pc").join("init.kv"))
}

/// Runs the prompt loop until QUIT, EXIT or Ctrl-D.
pub fn run(shell: &mut Shell, printer: &mut Printer, place: Place<'_>, options: Options) -> Exit {
    // Ctrl-C while a command runs (the terminal is out of raw mode then, so it is a
    // signal) sets the shell's flag instead of ending the program.
    let interrupt = shell.interrupt_flag();
    if let Err(error) = signal_hook::flag::register(SIGINT, interrupt.clone()) {
        eprintln!("kv2pc: warning: Ctrl-C will end the shell: {error}");
    }
    let mut reader = match Reader::start(shell.cluster().nodes(), options.color) {
        Ok(reader) => reader,
        Err(error) => {
            eprintln!("kv2pc: cannot open the terminal: {error}");
            return Exit::Failed;
        }
    };
    if !options.quiet {
        println!("{}", banner(shell, &place));
    }
    shell.set_log_limit(Some(LOG_LIMIT));
    shell.host_lessons(true);
    if let Some(path) = &options.init
        && run_init(shell, printer, &reader, path, options.quiet)
    {
        return Exit::Success;
    }
    let mut collapse = Collapse::default();
    ask(&reader, shell, options.color);
    loop {
        let Some(read) = reader.next(POLL) else {
            show_background(shell, printer, &mut reader, &mut collapse);
            continue;
        };
        match read {
            Read::Line(text) => {
                // A paste arrives as one input holding several lines: run each.
                for line in text.split(['\n', '\r']) {
                    interrupt.store(false, Ordering::SeqCst);
                    if run_line(shell, printer, &reader, line) {
                        return Exit::Success;
                    }
                    let sourced = line.to_ascii_uppercase().contains("SOURCE");
                    if interrupt.load(Ordering::SeqCst) && sourced {
                        printer.comment(STOPPED_SOURCE_NOTE);
                    }
                }
            }
            // A recording holds command lines only, so there Ctrl-C's cancel is run
            // as the ABORT it amounts to, which a replay runs the same.
            Read::Interrupted { empty: true } if printer.recording() && shell.current_waits() => {
                println!("{RECORDED_CANCEL}");
                if run_line(shell, printer, &reader, "ABORT") {
                    return Exit::Success;
                }
            }
            Read::Interrupted { empty } => match shell.cancel_wait() {
                Some(output) if empty => {
                    let _ = printer.show_unrecorded(&output);
                }
                _ if empty => println!("{HOW_TO_LEAVE}"),
                _ => {}
            },
            Read::Eof => return Exit::Success,
            Read::Failed(error) => {
                eprintln!("kv2pc: cannot read the terminal: {error}");
                return Exit::Failed;
            }
        }
        ask(&reader, shell, options.color);
    }
}

/// Runs one line and shows its output, and its time after `TIMING ON`; plays the
/// lesson it asked for (`LESSON 4`) with the editor. Returns whether the shell should
/// end (QUIT, or standard output gone).
fn run_line(shell: &mut Shell, printer: &mut Printer, reader: &Reader, line: &str) -> bool {
    let started = Instant::now();
    let output = shell.execute(line);
    // A lesson is not part of a recording: its line could not be replayed.
    let shown = match output.lesson {
        Some(_) => printer.show_unrecorded(&output),
        None => printer.show(line, &output),
    };
    if shell.timing() && !line.trim().is_empty() {
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        println!("time: {elapsed:.1} ms");
    }
    if let Some(chosen) = output.lesson {
        lesson::play(reader, chosen, printer.color());
        println!("(back to your own cluster)");
    }
    shown.is_err() || output.quit
}

/// Runs the init file's lines before the first prompt, as if typed (a file not there
/// is no error). Returns whether it asked to leave.
fn run_init(
    shell: &mut Shell,
    printer: &mut Printer,
    reader: &Reader,
    path: &Path,
    quiet: bool,
) -> bool {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return false,
        Err(error) => {
            eprintln!(
                "kv2pc: warning: cannot read the init file {}: {error}",
                path.display()
            );
            return false;
        }
    };
    if !quiet {
        println!("running {} (--no-init skips it)", path.display());
    }
    text.lines()
        .any(|line| run_line(shell, printer, reader, line))
}

/// Asks the editor for the next line after the shell's prompt.
fn ask(reader: &Reader, shell: &Shell, color: bool) {
    let prompt = shell.prompt();
    let styled = if color {
        prompt.green().bold().to_string()
    } else {
        prompt.clone()
    };
    reader.ask(prompt, styled, shell.session_names());
}

/// Prints, above the prompt, what happened since the last command, repeats collapsed.
fn show_background(
    shell: &mut Shell,
    printer: &Printer,
    reader: &mut Reader,
    collapse: &mut Collapse,
) {
    let now = Instant::now();
    let output = shell.background();
    let lines = if output.outcomes.is_empty() {
        collapse.due(now)
    } else {
        collapse.lines(&printer.render(&output), now)
    };
    if !lines.is_empty() {
        reader.print(lines.join("\n"));
    }
}

/// The greeting: where the data is, how many nodes, how to get help.
fn banner(shell: &Shell, place: &Place<'_>) -> String {
    let cluster = shell.cluster();
    let kind = if place.temporary {
        " (temporary, removed at exit)"
    } else {
        ""
    };
    let mut text = match cluster.is_remote() {
        false => format!(
            "kv2pc {}: a {}-node cluster in {}{kind}\n",
            env!("CARGO_PKG_VERSION"),
            cluster.nodes(),
            place.dir.display()
        ),
        true => {
            let at: Vec<String> = (0..cluster.nodes())
                .map(|node| {
                    let mut text = format!("node {node}");
                    if let Some(addr) = cluster.address(node) {
                        text.push_str(&format!(" at {addr}"));
                    }
                    if let Some(pid) = cluster.pid(node) {
                        text.push_str(&format!(" (pid {pid})"));
                    }
                    text
                })
                .collect();
            let data = match place.dir.as_os_str().is_empty() {
                true => String::new(),
                false => format!(", their data in {}{kind}", place.dir.display()),
            };
            format!(
                "kv2pc {}: a {}-node cluster of processes: {}{data}\n",
                env!("CARGO_PKG_VERSION"),
                cluster.nodes(),
                at.join(", ")
            )
        }
    };
    for report in cluster.recovery_reports() {
        if !report.in_doubt.is_empty() || !report.resent.is_empty() {
            for line in kv2pc::shell::format::recovery(report) {
                text.push_str(&line);
                text.push('\n');
            }
        }
    }
    if place.manual_clock {
        text.push_str("on the manual clock: time moves only by TICK (a timeout fires then)\n");
    }
    text.push_str("type HELP for the commands, QUIT to leave");
    text
}
