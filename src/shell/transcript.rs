//! Recorded transcripts: a shell session written down the way it reads on screen, and
//! replayed to check that the shell still answers the same, byte for byte.
//!
//! # Format
//!
//! ```text
//! #! nodes 3
//! # A commit across two nodes.
//! > BEGIN
//! T1 started: a transaction coordinated by node 0
//! > PUT x 1; PUT y 2
//! ok
//! ok
//!
//! > COMMIT
//! T1 committed on nodes 1, 2
//! ```
//!
//! - A line starting with `> ` (or a lone `>`) is a command line, run as if typed at the
//!   prompt: it may hold several commands separated by `;`.
//! - The lines after it, up to the next command or comment line, are its expected
//!   output, exactly as the shell prints it without colour. Trailing blank lines of an
//!   output are not compared: they only space the file out.
//! - A line starting with `#` is a comment. A directive comment `#! nodes N`, before the
//!   first command, sets the cluster's size (3 when absent); `#!` with no space after it
//!   (a shebang) is a plain comment.
//! - An output line that would read as something else (starting with `#`, `> ` or `\`,
//!   or a lone `>`) is written with a `\` in front, which the reader removes.
//!
//! # Design
//!
//! [`replay`] runs each command on a fresh cluster in a temporary directory with the
//! manual clock, so timeouts fire only at `TICK` and the output is the same every run.
//! It does not compare: it writes the transcript again with the actual outputs, keeping
//! every comment, directive and blank line as it was. The text is then compared with
//! the file by [`diff`], and can replace the file after a deliberate change. Keeping
//! replay and comparison apart is what lets `kv2pc check`, `cargo test` and
//! `UPDATE_TRANSCRIPTS=1` share one path.
//!
//! # Limits
//!
//! A transcript holds only what the shell printed. One recorded on a data directory
//! that already held data, or on real time (the interactive shell), may not replay the
//! same on a fresh manual-clock cluster.

mod diff;

pub use diff::diff;

use super::executor::Shell;
use super::output::Output;
use crate::types::MAX_NODES;
use crate::{Cluster, Config, Error, Result};
use std::path::Path;

/// The cluster size of a transcript without a `#! nodes` directive.
pub const DEFAULT_NODES: u32 = 3;

/// A transcript read into its parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transcript {
    /// The number of nodes of the cluster it runs on.
    pub nodes: u32,
    /// Its parts, in file order.
    pub items: Vec<Item>,
}

/// A part of a transcript.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// A comment, a directive or a blank line outside any output: kept as written.
    Verbatim(String),
    /// A command line and what it should print.
    Step(Step),
}

/// A command line of a transcript with its expected output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// The line number of the command in the file, from 1, for messages.
    pub line: usize,
    /// The command line, as written after `> `.
    pub command: String,
    /// The whole line as written, marker included, kept on rewrite.
    pub written: String,
    /// The expected output lines, unescaped, without the trailing blank lines.
    pub expected: Vec<String>,
    /// The blank lines after the output, as written: not compared, kept on rewrite.
    pub blank_after: Vec<String>,
}

/// What replaying a transcript produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replayed {
    /// The transcript as it should read: the same comments and commands, with the
    /// outputs the shell actually printed.
    pub actual: String,
    /// How many command lines were run.
    pub steps: usize,
}

impl Replayed {
    /// A diff from `expected` (the transcript's text) to the actual one, if they differ.
    pub fn diff(&self, expected: &str) -> Option<String> {
        diff(expected, &self.actual)
    }
}

/// Reads a transcript. A line of text outside any command's output, a directive after
/// the first command, or an unknown directive is an [`Error::InvalidInput`] naming the
/// line.
pub fn parse(text: &str) -> Result<Transcript> {
    let mut transcript = Transcript {
        nodes: DEFAULT_NODES,
        items: Vec::new(),
    };
    let mut step: Option<Step> = None;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if let Some(command) = command_of(line) {
            transcript.push_step(step.take());
            step = Some(Step::new(number, line, command));
        } else if line.starts_with('#') {
            transcript.push_step(step.take());
            transcript.read_directive(number, line)?;
            transcript.items.push(Item::Verbatim(line.to_string()));
        } else if let Some(step) = &mut step {
            step.expected.push(unescape(line).to_string());
        } else if line.trim().is_empty() {
            transcript.items.push(Item::Verbatim(line.to_string()));
        } else {
            return Err(malformed(
                number,
                "text outside a command's output; start the line with '> ' for a \
                 command or '#' for a comment",
            ));
        }
    }
    transcript.push_step(step);
    Ok(transcript)
}

impl Transcript {
    /// The steps, in order.
    pub fn steps(&self) -> impl Iterator<Item = &Step> {
        self.items.iter().filter_map(|item| match item {
            Item::Step(step) => Some(step),
            Item::Verbatim(_) => None,
        })
    }

    fn push_step(&mut self, step: Option<Step>) {
        if let Some(mut step) = step {
            let blank = step.expected.iter().rev();
            let blanks = blank.take_while(|line| line.trim().is_empty()).count();
            step.blank_after = step.expected.split_off(step.expected.len() - blanks);
            self.items.push(Item::Step(step));
        }
    }

    /// Applies `line` if it is a directive (`#! name value`).
    fn read_directive(&mut self, number: usize, line: &str) -> Result<()> {
        let Some(directive) = line.strip_prefix("#!") else {
            return Ok(());
        };
        if !directive.starts_with(char::is_whitespace) {
            return Ok(());
        }
        if self.steps().next().is_some() {
            return Err(malformed(
                number,
                "a directive goes at the top, before the first command",
            ));
        }
        let words: Vec<&str> = directive.split_whitespace().collect();
        match words.as_slice() {
            ["nodes", count] => {
                self.nodes = count
                    .parse()
                    .ok()
                    .filter(|nodes| (1..=MAX_NODES).contains(nodes))
                    .ok_or_else(|| {
                        malformed(number, format!("a cluster has 1 to {MAX_NODES} nodes"))
                    })?;
                Ok(())
            }
            _ => Err(malformed(
                number,
                "unknown directive; the one directive is '#! nodes N' \
                 (write '# !' for a comment)",
            )),
        }
    }
}

impl Step {
    fn new(line: usize, written: &str, command: &str) -> Step {
        Step {
            line,
            command: command.to_string(),
            written: written.to_string(),
            expected: Vec::new(),
            blank_after: Vec::new(),
        }
    }
}

/// The first line of a recorded transcript: the size of the cluster it ran on.
pub fn record_header(nodes: u32) -> String {
    format!("#! nodes {nodes}\n")
}

/// One command line of a session as a transcript records it: `> ` and the line, then
/// its output as rendered without colour. A blank line records as nothing and a `#`
/// comment as itself, since both print nothing.
pub fn record_entry(command_line: &str, output: &Output) -> String {
    let line = command_line.trim();
    if line.is_empty() {
        return String::new();
    }
    if line.starts_with('#') {
        return format!("{line}\n");
    }
    let mut text = String::new();
    let rendered = output.render(false);
    write_step(&mut text, &format!("> {line}"), rendered.lines(), &[]);
    text
}

/// Runs every command of the transcript `text` on a fresh temporary cluster of the
/// transcript's size, on the manual clock, with `SOURCE` paths relative to `base_dir`,
/// and returns the transcript written again with the actual outputs.
pub fn replay(text: &str, base_dir: &Path) -> Result<Replayed> {
    let transcript = parse(text)?;
    let (dir, mut shell) = fresh_shell(&transcript)?;
    shell.set_base_dir(base_dir);
    let mut replayed = Replayed {
        actual: String::new(),
        steps: 0,
    };
    let mut quit_at = None;
    for item in &transcript.items {
        match item {
            Item::Verbatim(line) => {
                replayed.actual.push_str(line);
                replayed.actual.push('\n');
            }
            Item::Step(step) => {
                if let Some(quit_at) = quit_at {
                    let message = format!("a command after the QUIT of line {quit_at} never runs");
                    return Err(malformed(step.line, message));
                }
                let output = shell.execute(&step.command);
                if output.quit {
                    quit_at = Some(step.line);
                }
                let rendered = output.render(false);
                let mut lines: Vec<&str> = rendered.lines().collect();
                while lines.last().is_some_and(|line| line.trim().is_empty()) {
                    lines.pop();
                }
                write_step(
                    &mut replayed.actual,
                    &step.written,
                    lines,
                    &step.blank_after,
                );
                replayed.steps += 1;
            }
        }
    }
    drop(shell);
    drop(dir);
    Ok(replayed)
}

/// A shell over a fresh cluster as `transcript`'s directives set it up (its size), on
/// the manual clock, in a new temporary directory, returned with it: the shell must be
/// dropped first. [`replay`] and the lesson player start from the same, so a lesson
/// plays as `kv2pc check` replays it.
pub fn fresh_shell(transcript: &Transcript) -> Result<(tempfile::TempDir, Shell)> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("creating a temporary directory", e))?;
    let config = Config {
        nodes: transcript.nodes,
        manual_clock: true,
        ..Config::default()
    };
    let shell = Shell::new(Cluster::open(dir.path(), config)?);
    Ok((dir, shell))
}

/// Writes a step: its command line (marker included), its output lines escaped, its
/// blank lines.
fn write_step<'a>(
    text: &mut String,
    command_line: &str,
    output: impl IntoIterator<Item = &'a str>,
    blank_after: &[String],
) {
    text.push_str(command_line);
    text.push('\n');
    for line in output {
        if needs_escape(line) {
            text.push('\\');
        }
        text.push_str(line);
        text.push('\n');
    }
    for line in blank_after {
        text.push_str(line);
        text.push('\n');
    }
}

/// The command of a command line (`> CMD` or a lone `>`).
fn command_of(line: &str) -> Option<&str> {
    match line {
        ">" => Some(""),
        _ => line.strip_prefix("> "),
    }
}

/// The command lines of `text` if it is a transcript (it has a `> ` line, which no
/// script line can be), each with its line number from 1; `None` for a script.
/// `SOURCE` runs only these of a transcript, skipping the recorded outputs.
pub fn command_lines(text: &str) -> Option<Vec<(usize, &str)>> {
    let commands: Vec<(usize, &str)> = (text.lines().enumerate())
        .filter_map(|(index, line)| Some((index + 1, command_of(line)?)))
        .collect();
    (!commands.is_empty()).then_some(commands)
}

/// Whether an output line would be read as a command or a comment, or starts with the
/// escape itself.
fn needs_escape(line: &str) -> bool {
    command_of(line).is_some() || line.starts_with('#') || line.starts_with('\\')
}

/// An output line as printed: without its escaping `\`.
fn unescape(line: &str) -> &str {
    line.strip_prefix('\\').unwrap_or(line)
}

fn malformed(line: usize, message: impl std::fmt::Display) -> Error {
    Error::InvalidInput(format!("line {line}: {message}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::Outcome;

    #[test]
    fn steps_hold_their_output_without_trailing_blanks() {
        let text = "#! nodes 2\n# hello\n\n> PUT x 1\nok\n\n\n> \nfoo\n";
        let transcript = parse(text).unwrap();
        assert_eq!(transcript.nodes, 2);
        let steps: Vec<_> = transcript.steps().collect();
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[0].command, "PUT x 1");
        assert_eq!(steps[0].expected, ["ok"]);
        assert_eq!(steps[0].blank_after.len(), 2);
        assert_eq!((steps[1].line, steps[1].command.as_str()), (8, ""));
    }

    #[test]
    fn misplaced_text_and_directives_are_errors_naming_the_line() {
        let error = |text| parse(text).unwrap_err().to_string();
        assert!(error("# c\nstray\n").starts_with("line 2: text outside"));
        assert!(error("> STATUS\n#! nodes 2\n").starts_with("line 2: a directive"));
        assert!(error("#! nodes 0\n").starts_with("line 1: a cluster has 1 to"));
        assert!(error("#! node 2\n").starts_with("line 1: unknown directive"));
        assert_eq!(
            parse("#!/usr/bin/env kv2pc\n").unwrap().nodes,
            DEFAULT_NODES
        );
    }

    #[test]
    fn output_that_looks_like_a_command_or_comment_is_escaped_and_read_back() {
        let mut outcome = Outcome::new("HELP", None);
        for line in ["> x", "# y", "\\z", ">", ">x"] {
            outcome.say(line);
        }
        let output = Output {
            outcomes: vec![outcome],
            ..Output::default()
        };
        let entry = record_entry("  HELP  ", &output);
        assert_eq!(entry, "> HELP\n\\> x\n\\# y\n\\\\z\n\\>\n>x\n");
        let steps: Vec<_> = parse(&entry).unwrap().steps().cloned().collect();
        assert_eq!(steps[0].expected, ["> x", "# y", "\\z", ">", ">x"]);
    }

    #[test]
    fn a_transcript_has_command_lines_and_a_script_has_none() {
        let text = "# c\n> PUT x 1\nok\n>\n> GET x\nx = 1\n";
        let lines = command_lines(text).unwrap();
        assert_eq!(lines, [(2, "PUT x 1"), (4, ""), (5, "GET x")]);
        assert_eq!(command_lines("PUT x 1\n# > not a command\nGET x\n"), None);
    }

    #[test]
    fn blank_and_comment_lines_record_as_themselves() {
        let output = Output::default();
        assert_eq!(record_entry("   ", &output), "");
        assert_eq!(record_entry("# note", &output), "# note\n");
    }
}
