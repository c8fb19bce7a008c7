//! `kv2pc check FILE...`: replays recorded transcripts and shows how each differs.
//!
//! Each file is replayed on a fresh temporary cluster by
//! `kv2pc::shell::transcript::replay`, with `SOURCE` paths relative to the file's
//! folder, and compared with what it says. The run goes through every file and reports
//! each: `ok` with the number of command lines, or `FAIL` with a unified diff from the
//! file (`-`) to what the shell printed now (`+`). A recording made on the real clock
//! (`--record --real-time`) says so in its first comment, and its failure is explained:
//! a replay runs on the manual clock, where its timeouts do not fire by themselves. So is
//! the failure of one where Ctrl-C stopped a `SOURCE` part way (a comment marks it):
//! the replay runs it whole.

use crate::exit::Exit;
use crate::printer::{REAL_TIME_NOTE, STOPPED_SOURCE_NOTE};
use colored::Colorize;
use kv2pc::Error;
use kv2pc::shell::transcript;
use std::path::{Path, PathBuf};

/// Why a recording made on the real clock may not replay, printed after its diff.
const REAL_TIME_EXPLAINED: &str = "\
note: this transcript was recorded on the real clock (kv2pc --record --real-time): a
  timeout in it (a vote not in time, an inquiry) fired because real time passed. A replay
  runs on the manual clock, where time moves only at TICK, so it fires there only if the
  transcript says TICK, and the lines around it differ. Record on the manual clock (the
  default of --record) and type TICK where time should pass.";

/// Why a recording with a SOURCE that Ctrl-C stopped does not replay.
const STOPPED_SOURCE_EXPLAINED: &str = "\
note: Ctrl-C stopped a SOURCE while this transcript was recorded (its comment says
  where). The replay runs that SOURCE whole, so what follows it differs. Record the
  session again without stopping it, or cut the SOURCE'd file to the lines you want.";

/// Checks every transcript of `files`; the worst result decides the exit status.
pub fn run(files: &[PathBuf], color: bool) -> Exit {
    files
        .iter()
        .map(|file| check(file, color))
        .max()
        .unwrap_or(Exit::Success)
}

fn check(path: &Path, color: bool) -> Exit {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) => {
            eprintln!("kv2pc: cannot read {}: {error}", path.display());
            return Exit::Usage;
        }
    };
    let base = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    match transcript::replay(&text, base) {
        Ok(replayed) => match replayed.diff(&text) {
            None => {
                println!(
                    "ok    {} ({} command lines)",
                    path.display(),
                    replayed.steps
                );
                Exit::Success
            }
            Some(diff) => {
                println!("FAIL  {}", path.display());
                print!("{}", paint(&diff, color));
                if text.lines().any(|line| line == REAL_TIME_NOTE) {
                    println!("{REAL_TIME_EXPLAINED}");
                }
                if text.lines().any(|line| line == STOPPED_SOURCE_NOTE) {
                    println!("{STOPPED_SOURCE_EXPLAINED}");
                }
                Exit::Failed
            }
        },
        Err(Error::InvalidInput(message)) => {
            println!("FAIL  {}: {message}", path.display());
            Exit::Failed
        }
        Err(error) => {
            eprintln!("kv2pc: cannot replay {}: {error}", path.display());
            Exit::DataDir
        }
    }
}

/// The diff with removed lines red, added lines green and hunk headers cyan.
fn paint(diff: &str, color: bool) -> String {
    if !color {
        return diff.to_string();
    }
    let mut text = String::new();
    for line in diff.lines() {
        let painted = if line.starts_with("@@") {
            line.cyan().to_string()
        } else if line.starts_with('-') {
            line.red().to_string()
        } else if line.starts_with('+') {
            line.green().to_string()
        } else {
            line.to_string()
        };
        text.push_str(&painted);
        text.push('\n');
    }
    text
}
