//! The script runner: `kv2pc FILE`, `kv2pc < FILE` and `kv2pc -c "CMD; CMD"`.
//!
//! A script is read line by line and each line runs through `Shell::execute`, as if
//! typed at the prompt but without prompt or colour. A line holding several commands
//! separated by `;` is split into them, each run, echoed and recorded on its own, so that
//! `--bail` stops right after the first failed command and `--echo` shows which command
//! printed what. A failed command does not stop the run unless `--bail` is given; the
//! run's exit status says whether any failed.

use crate::exit::Exit;
use crate::printer::Printer;
use kv2pc::shell::{Command, Shell, parse_line};
use std::io;

/// Runs the script `lines` and tells how it went: `Exit::Success`, `Exit::Failed` if a
/// command failed (or standard output closed), `Exit::Usage` if the script could not be
/// read.
pub fn run(
    shell: &mut Shell,
    lines: impl Iterator<Item = io::Result<String>>,
    printer: &mut Printer,
    bail: bool,
) -> Exit {
    let mut failed = false;
    for line in lines {
        let line = match line {
            Ok(line) => line,
            Err(error) => {
                eprintln!("kv2pc: cannot read the script: {error}");
                return Exit::Usage;
            }
        };
        for statement in statements(&line) {
            let output = shell.execute(&statement);
            if printer.show(&statement, &output).is_err() {
                return Exit::Failed;
            }
            failed |= output.failed();
            if output.quit || (bail && output.failed()) {
                return Exit::from_failed(failed);
            }
        }
    }
    Exit::from_failed(failed)
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
