//! The lesson player: a lesson's transcript replayed one step at a time, with the
//! learner's hand on each step.
//!
//! [`play`] opens a fresh cluster in a temporary directory, of the transcript's size
//! (`#! nodes`), on the manual clock, as `kv2pc check` replays it
//! (`transcript::fresh_shell`), so every step prints what it printed when the lesson
//! was recorded. It prints the lesson's comments as it reaches them, then shows the
//! next command (`[lesson 4, step 3 of 12] press Enter to run: PUT x 1`) and asks the
//! [`Learner`] for a line: an empty one runs the lesson's command; a command that only
//! looks (`STATUS`, `SHOW LOCKS`, `HELP`, ...) runs and the step still waits; anything
//! else runs instead of it, and the player says so (a deviation: the lesson's cluster
//! now differs from the recording, so later outputs may too). After the lesson's own
//! command it compares the output with the recorded one and, when they differ, shows
//! the difference as a unified diff (`transcript::diff`). `QUIT` (or `EXIT`, `\q`) or
//! the end of the learner's input leaves.
//!
//! The player neither reads a terminal nor knows one: the learner is a trait, which the
//! interactive prompt implements with its line editor, `kv2pc lesson N` with standard
//! input when it is not a terminal, and tests with a list of lines. Everything goes to
//! one writer.
//!
//! Limits: a learner's command that waits for a lock waits as in any transcript (its
//! completion prints under a later step); a learner's own `SOURCE` is relative to the
//! current directory.

use super::{Lesson, is_directive};
use crate::shell::command::Command;
use crate::shell::executor::Shell;
use crate::shell::parser::parse_line;
use crate::shell::transcript::{self, Item, Step};
use crate::{Error, Result};
use colored::{ColoredString, Colorize};
use std::io::Write;

/// Who plays the lesson: where its lines come from.
pub trait Learner {
    /// The learner's next line, asked for after `prompt`: empty to run the lesson's
    /// command, else a command of their own. `None` when they leave (Ctrl-D, the end
    /// of their input).
    fn read(&mut self, prompt: &str) -> Option<String>;

    /// Whether what the learner types shows by itself (a terminal echoes it); if not,
    /// the player prints the command it runs.
    fn echoes(&self) -> bool;
}

/// How a lesson went.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Played {
    /// The lesson's steps.
    pub steps: usize,
    /// How many of them ran (the lesson's command or the learner's).
    pub ran: usize,
    /// How many the learner replaced by a command of their own.
    pub own: usize,
    /// How many of the lesson's commands printed something else than recorded.
    pub differences: usize,
    /// Whether the lesson ran to its end (not left early).
    pub finished: bool,
}

/// Plays `lesson` for `learner`, writing to `out`, in colour if `color`.
pub fn play(
    lesson: &Lesson,
    learner: &mut dyn Learner,
    out: &mut dyn Write,
    color: bool,
) -> Result<Played> {
    let parsed = transcript::parse(lesson.text)?;
    let (dir, shell) = transcript::fresh_shell(&parsed)?;
    let mut player = Player {
        lesson,
        shell,
        _dir: dir,
        played: Played {
            steps: parsed.steps().count(),
            ..Played::default()
        },
        deviated_at: None,
        color,
        last: Last::Text,
    };
    let io = |e| Error::io("writing the lesson", e);
    player.introduce(out, parsed.nodes).map_err(io)?;
    let mut heading = true;
    for item in &parsed.items {
        match item {
            Item::Verbatim(line) if is_directive(line) => {}
            // The heading was the introduction's first line.
            Item::Verbatim(line) if heading && line.starts_with('#') => heading = false,
            Item::Verbatim(line) => player.teach(out, line).map_err(io)?,
            Item::Step(step) => {
                if !player.step(step, learner, out).map_err(io)? {
                    player.leave(out).map_err(io)?;
                    return Ok(player.played);
                }
            }
        }
    }
    player.played.finished = true;
    player.finish(out).map_err(io)?;
    Ok(player.played)
}

/// A lesson being played.
struct Player<'a> {
    lesson: &'a Lesson,
    shell: Shell,
    /// The cluster's directory, removed after the shell has stopped (fields drop in
    /// order).
    _dir: tempfile::TempDir,
    played: Played,
    /// The first step the learner replaced by a command of their own.
    deviated_at: Option<usize>,
    color: bool,
    /// What was printed last, to space the steps out.
    last: Last,
}

/// What the player printed last: a step's output is followed by a blank line before
/// what comes next, and the lesson's blank lines are not doubled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Last {
    Text,
    Blank,
    Output,
}

impl Player<'_> {
    /// The heading and how to play.
    fn introduce(&self, out: &mut dyn Write, nodes: u32) -> std::io::Result<()> {
        writeln!(out, "{}", self.lesson.heading())?;
        writeln!(
            out,
            "({} steps on a fresh {nodes}-node cluster on the manual clock: time moves only by TICK.",
            self.played.steps
        )?;
        writeln!(
            out,
            " Press Enter to run each step, or type a command of your own instead; \
             QUIT or Ctrl-D leaves.)"
        )
    }

    /// Offers one step and runs what the learner chose. Returns whether to go on.
    fn step(
        &mut self,
        step: &Step,
        learner: &mut dyn Learner,
        out: &mut dyn Write,
    ) -> std::io::Result<bool> {
        let number = self.played.ran + 1;
        let name = self.lesson.name();
        let shown = match step.command.trim() {
            "" => "(an empty line)",
            command => command,
        };
        let header = format!(
            "[lesson {name}, step {number} of {}] press Enter to run: {shown}",
            self.played.steps
        );
        let typed = loop {
            self.space(out)?;
            writeln!(out, "{}", self.paint(&header, |t| t.bold()))?;
            self.last = Last::Output;
            out.flush()?;
            let Some(typed) = learner.read(&format!("lesson {name}> ")) else {
                return Ok(false);
            };
            let typed = typed.trim().to_string();
            if typed.is_empty() || same_command(&typed, &step.command) || !only_looks(&typed) {
                break typed;
            }
            // A look around changes nothing: it runs, and the step still waits.
            if !learner.echoes() {
                writeln!(out, "> {typed}")?;
            }
            write!(out, "{}", self.shell.execute(&typed).render(self.color))?;
            let note = "(a look around, which changes nothing: the step still waits)";
            writeln!(out, "{}", self.paint(note, |t| t.dimmed()))?;
        };
        let typed = typed.as_str();
        let own = !typed.is_empty() && !same_command(typed, &step.command);
        if own && is_quit(typed) {
            return Ok(false);
        }
        let line = if own { typed } else { step.command.as_str() };
        // What runs, unless the terminal has just shown it as typed.
        if !learner.echoes() {
            writeln!(out, "> {line}")?;
        }
        let output = self.shell.execute(line);
        write!(out, "{}", output.render(self.color))?;
        self.played.ran += 1;
        if own {
            self.played.own += 1;
            self.deviated_at.get_or_insert(number);
            let note = format!(
                "(your own command, instead of the lesson's {shown}: from here on, what the \
                 lesson prints may differ from its recording)"
            );
            writeln!(out, "{}", self.paint(&note, |t| t.yellow()))?;
        } else {
            let rendered = output.render(false);
            let mut actual: Vec<&str> = rendered.lines().collect();
            while actual.last().is_some_and(|line| line.trim().is_empty()) {
                actual.pop();
            }
            if let Some(diff) = transcript::diff(&step.expected.join("\n"), &actual.join("\n")) {
                self.played.differences += 1;
                self.flag(out, step, &diff)?;
            }
        }
        Ok(!output.quit)
    }

    /// Shows how a step's output differs from the recorded one.
    fn flag(&self, out: &mut dyn Write, step: &Step, diff: &str) -> std::io::Result<()> {
        let why = match self.deviated_at {
            Some(at) => format!(", as it may since your own command at step {at}"),
            None => String::new(),
        };
        let flag = format!(
            "! this differs from the recording ({}, line {}){why}:",
            self.lesson.file, step.line
        );
        writeln!(out, "{}", self.paint(&flag, |t| t.red().bold()))?;
        write!(out, "{diff}")?;
        if !diff.ends_with('\n') {
            writeln!(out)?;
        }
        Ok(())
    }

    /// The learner left before the end.
    fn leave(&mut self, out: &mut dyn Write) -> std::io::Result<()> {
        self.space(out)?;
        writeln!(
            out,
            "You left lesson {} after {} of its {} steps.",
            self.lesson.name(),
            self.played.ran,
            self.played.steps
        )
    }

    /// The lesson ran to its end.
    fn finish(&mut self, out: &mut dyn Write) -> std::io::Result<()> {
        self.space(out)?;
        let played = &self.played;
        let own = match played.own {
            0 => String::new(),
            1 => ", 1 of them your own command".to_string(),
            n => format!(", {n} of them your own commands"),
        };
        let differences = match played.differences {
            0 => "every output as recorded".to_string(),
            1 => "1 output differed from the recording".to_string(),
            n => format!("{n} outputs differed from the recording"),
        };
        writeln!(
            out,
            "Lesson {} done: {} steps{own}; {differences}.",
            self.lesson.name(),
            played.ran
        )
    }
}

impl Player<'_> {
    /// Prints a comment of the lesson without its `#`, or a blank line of it.
    fn teach(&mut self, out: &mut dyn Write, line: &str) -> std::io::Result<()> {
        if line.trim().is_empty() {
            if self.last != Last::Blank {
                writeln!(out)?;
            }
            self.last = Last::Blank;
            return Ok(());
        }
        self.space(out)?;
        let text = line.strip_prefix('#').unwrap_or(line);
        writeln!(out, "{}", text.strip_prefix(' ').unwrap_or(text))?;
        self.last = Last::Text;
        Ok(())
    }

    /// A blank line after a step's output, before whatever comes next.
    fn space(&mut self, out: &mut dyn Write) -> std::io::Result<()> {
        if self.last == Last::Output {
            writeln!(out)?;
            self.last = Last::Blank;
        }
        Ok(())
    }

    /// `text` in colour, if the player colours.
    fn paint(&self, text: &str, style: fn(&str) -> ColoredString) -> String {
        match self.color {
            true => style(text).to_string(),
            false => text.to_string(),
        }
    }
}

/// Whether `typed` is the lesson's `command`, as written or in canonical form.
fn same_command(typed: &str, command: &str) -> bool {
    typed == command.trim()
        || matches!((parse_line(typed), parse_line(command)), (Ok(a), Ok(b)) if a == b)
}

/// Whether the line only looks at the cluster (HELP, STATUS, SHOW, KEYS, WHERE, the
/// list of lessons): it changes nothing the lesson's later steps would see.
fn only_looks(line: &str) -> bool {
    let looks = |command: &Command| {
        matches!(
            command,
            Command::Help { .. }
                | Command::Status
                | Command::ShowLocks
                | Command::ShowLog { .. }
                | Command::ShowSettings
                | Command::Keys { .. }
                | Command::Where { .. }
                | Command::Lesson { name: None }
                | Command::Empty
        )
    };
    parse_line(line).is_ok_and(|commands| commands.iter().all(looks))
}

/// Whether the line asks to leave.
fn is_quit(line: &str) -> bool {
    matches!(parse_line(line).as_deref(), Ok([Command::Quit]))
}
