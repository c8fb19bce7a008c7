//! The script runner: `kv2pc FILE`, `kv2pc < FILE` and `kv2pc -c "CMD; CMD"`.
//!
//! A script is read line by line and each line runs through `Shell::execute`, as if
//! typed at the prompt but without prompt or colour. A line holding several commands
//! separated by `;` is split into them, each run, echoed and recorded on its own, so that
//! `--bail` stops right after the first failed command and `--echo` shows which command
//! printed what. A failed command does not stop the run unless `--bail` is given; the
//! run's exit status says whether any failed.
//!
//! # Where a script failed
//!
//! As psql runs a file: what commands print goes to standard output, and each error to
//! standard error as `FILE:LINE: error: ...`, naming the innermost file (a `SOURCE`d
//! one, nested as deep as it goes) and its line. A piped script is `<stdin>`, a `-c`
//! one `<command line>`. An error reported later, by a waiting command that completed
//! under another one, names the line where that command began to wait. `--bail` stops
//! inside a `SOURCE`d file too (`Shell::set_bail`), and `--echo` shows the lines it
//! reads. A script that ends (or QUITs) with a command still waiting says which, on
//! standard error, and exits 1: that command never got its answer. With `--json` every
//! error stays in its JSON object on standard output.

use crate::exit::Exit;
use crate::printer::Printer;
use kv2pc::shell::{Command, Origin, Output, Shell, Style, parse_line};
use std::collections::BTreeMap;
use std::io;

/// The name of a script piped on standard input, in its errors.
pub const STDIN: &str = "<stdin>";
/// The name of the script given with `-c`, in its errors.
pub const COMMAND_LINE: &str = "<command line>";

/// Runs the script `lines`, called `name` in its errors, and tells how it went:
/// `Exit::Success`, `Exit::Failed` if a command failed, a command was left waiting (or
/// standard output closed), `Exit::Usage` if the script could not be read.
pub fn run(
    shell: &mut Shell,
    name: &str,
    lines: impl Iterator<Item = io::Result<String>>,
    printer: &mut Printer,
    bail: bool,
) -> Exit {
    shell.set_bail(bail);
    let mut waits = Waits::default();
    let mut failed = false;
    for (index, line) in lines.enumerate() {
        let line = match line {
            Ok(line) => line,
            Err(error) => {
                eprintln!("kv2pc: cannot read the script: {error}");
                return Exit::Usage;
            }
        };
        let origin = Origin {
            file: name.to_string(),
            line: index + 1,
            text: line.clone(),
        };
        for statement in statements(&line) {
            let mut output = shell.execute(&statement);
            waits.locate(&mut output, &origin);
            if printer.show_script(&statement, &output).is_err() {
                return Exit::Failed;
            }
            failed |= output.failed();
            if output.quit || (bail && output.failed()) {
                let left = waits.report(shell);
                return Exit::from_failed(failed || left);
            }
        }
    }
    let left = waits.report(shell);
    Exit::from_failed(failed || left)
}

/// Where each session's waiting command began to wait, so that its completion's error,
/// and a wait left at the end, name that line.
#[derive(Default)]
struct Waits {
    began: BTreeMap<String, Origin>,
}

impl Waits {
    /// Gives each outcome of `output` its origin: the `SOURCE`d line it came from, the
    /// script's `line`, or for a completion the line where it began to wait.
    fn locate(&mut self, output: &mut Output, line: &Origin) {
        for outcome in &mut output.outcomes {
            let session = outcome.session.clone().unwrap_or_default();
            if outcome.completed_later {
                if let Some(began) = self.began.remove(&session) {
                    outcome.origin = Some(began);
                }
                continue;
            }
            let origin = outcome.origin.get_or_insert_with(|| line.clone()).clone();
            if outcome.lines.iter().any(|l| l.style == Style::Waiting) {
                self.began.insert(session, origin);
            }
        }
    }

    /// Says on standard error which commands are still waiting; true if any is.
    fn report(&self, shell: &Shell) -> bool {
        let waiting = shell.still_waiting();
        for (session, command) in &waiting {
            let at = match self.began.get(session) {
                Some(origin) => format!("{}:{}: ", origin.file, origin.line),
                None => String::new(),
            };
            let remedy = match shell.cluster().stepping() {
                true => "let the steps it waits for go (DELIVER, NEXT, or STEP OFF)",
                false => "end the transaction it waits for (COMMIT or ABORT)",
            };
            eprintln!(
                "{at}error: the script ended while {command} in session {session} was still \
                 waiting, so it never completed; {remedy} before the script ends"
            );
        }
        !waiting.is_empty()
    }
}

/// The commands of a line, each in canonical form, when it holds more than one; else the
/// line as written (which also keeps a line that does not parse whole, so that its error
/// shows the line).
fn statements(line: &str) -> Vec<String> {
    match parse_line(line) {
        Ok(commands) if commands.len() > 1 => (commands.iter())
            .filter(|command| **command != Command::Empty)
            .map(Command::to_string)
            .collect(),
        _ => vec![line.to_string()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_several_commands_are_split() {
        assert_eq!(statements("put x 1; get x ;"), ["PUT x 1", "GET x"]);
        assert_eq!(statements("put x 1 # one"), ["put x 1 # one"]);
        assert_eq!(statements("PUT \"a;b\" 1"), ["PUT \"a;b\" 1"]);
        assert_eq!(statements("PUT x; GET x"), ["PUT x; GET x"]);
    }
}
