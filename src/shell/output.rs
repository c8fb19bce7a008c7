//! What a command produced, as data: the shell's `execute` returns an [`Output`], and
//! the renderer, the JSON writer and the transcript recorder each turn it into text.
//! Keeping output as data is what lets the prompt loop, scripts and tests share one
//! `execute`.

use crate::TxnId;
use colored::Colorize;
use serde::Serialize;

/// The role of a line, which decides its colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Style {
    /// A command's answer.
    Result,
    /// Something the cluster did on its own: a crash at an armed point, a recovery.
    Event,
    /// A protocol step shown by `TRACE ON`.
    Trace,
    /// A command blocked: `<waiting for x held by T3>`.
    Waiting,
    /// A warning that did not stop the command.
    Warning,
}

/// One line of output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Line {
    /// Its role.
    pub style: Style,
    /// Its text, without colour.
    pub text: String,
}

/// The result of one command, or of a blocked command that completed later.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// The command in canonical form (or the line as typed, if it did not parse).
    pub command: String,
    /// The session that ran it, for transaction commands.
    pub session: Option<String>,
    /// Whether this reports the completion of a command that was waiting.
    pub completed_later: bool,
    /// What it printed.
    pub lines: Vec<Line>,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// The transaction this command's failure aborted, and why (not printed: the error
    /// says it; the shell uses it to remind a session that was not looking).
    #[serde(skip)]
    pub aborted: Option<(TxnId, String)>,
    /// The line of a `SOURCE`d file that printed this, innermost file first; `None` for
    /// the line given to `execute` itself, which its caller knows.
    #[serde(skip)]
    pub origin: Option<Origin>,
}

/// A line of a file that `SOURCE` ran: where a script's error is said to be
/// (`FILE:LINE: error: ...`), and what `--echo` shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The file, as opened (the `SOURCE` path joined to the shell's base folder).
    pub file: String,
    /// The line number in it, from 1.
    pub line: usize,
    /// The line as written.
    pub text: String,
}

impl Outcome {
    /// An empty outcome of `command`.
    pub fn new(command: impl Into<String>, session: Option<String>) -> Outcome {
        Outcome {
            command: command.into(),
            session,
            completed_later: false,
            lines: Vec::new(),
            error: None,
            aborted: None,
            origin: None,
        }
    }

    /// Adds a line.
    pub fn push(&mut self, style: Style, text: impl Into<String>) {
        self.lines.push(Line {
            style,
            text: text.into(),
        });
    }

    /// Adds an answer line.
    pub fn say(&mut self, text: impl Into<String>) {
        self.push(Style::Result, text);
    }

    /// Marks the outcome failed.
    pub fn fail(&mut self, error: impl Into<String>) {
        self.error = Some(error.into());
    }

    /// What it printed, as the user reads it, without its error: the header of a
    /// completion, then its lines.
    pub fn render_lines(&self, color: bool) -> String {
        let mut text = String::new();
        if self.completed_later {
            let header = match &self.session {
                Some(session) => format!("<{session}: {} completed>", self.command),
                None => format!("<{} completed>", self.command),
            };
            push_line(&mut text, &paint(&header, Style::Waiting, color));
        }
        for line in &self.lines {
            push_line(&mut text, &paint(&line.text, line.style, color));
        }
        text
    }
}

/// What one `execute` call produced.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Output {
    /// One outcome per command run, then completions of commands that were waiting.
    pub outcomes: Vec<Outcome>,
    /// Whether the user asked to leave.
    pub quit: bool,
    /// The lines `SOURCE` read, each with the number of outcomes before its own, in the
    /// order read (comments and blank lines too), for `--echo`.
    #[serde(skip)]
    pub sourced: Vec<(usize, Origin)>,
    /// The lesson `LESSON name` asked the caller to play, if the shell hosts lessons
    /// (see `Shell::host_lessons`).
    #[serde(skip)]
    pub lesson: Option<&'static super::lesson::Lesson>,
}

impl Output {
    /// Whether any command failed.
    pub fn failed(&self) -> bool {
        self.outcomes.iter().any(|outcome| outcome.error.is_some())
    }

    /// The output as the user reads it, coloured if `color` (and `colored` agrees): as
    /// a transcript records it.
    pub fn render(&self, color: bool) -> String {
        self.render_errors(color, false)
    }

    /// As [`Output::render`], with each error of a `SOURCE`d line located, as
    /// `FILE:LINE: error: ...` (what the prompt shows; a transcript keeps errors
    /// unlocated, so that it reads the same wherever its files lie).
    pub fn render_located(&self, color: bool) -> String {
        self.render_errors(color, true)
    }

    fn render_errors(&self, color: bool, located: bool) -> String {
        let mut text = String::new();
        for outcome in &self.outcomes {
            text.push_str(&outcome.render_lines(color));
            if let Some(error) = &outcome.error {
                let at = (outcome.origin.as_ref())
                    .filter(|_| located)
                    .map_or(String::new(), |o| format!("{}:{}: ", o.file, o.line));
                let error = format!("{at}error: {error}");
                let error = if color {
                    error.red().bold().to_string()
                } else {
                    error
                };
                push_line(&mut text, &error);
            }
        }
        text
    }

    /// One JSON object per outcome, one per line.
    pub fn to_json_lines(&self) -> String {
        let mut text = String::new();
        for outcome in &self.outcomes {
            let object = serde_json::json!({
                "command": outcome.command,
                "session": outcome.session,
                "completed_later": outcome.completed_later,
                "ok": outcome.error.is_none(),
                "output": outcome.lines.iter().filter(|l| l.style != Style::Trace).map(|l| &l.text).collect::<Vec<_>>(),
                "trace": outcome.lines.iter().filter(|l| l.style == Style::Trace).map(|l| &l.text).collect::<Vec<_>>(),
                "error": outcome.error,
                "file": outcome.origin.as_ref().map(|o| &o.file),
                "line": outcome.origin.as_ref().map(|o| o.line),
            });
            text.push_str(&object.to_string());
            text.push('\n');
        }
        text
    }
}

fn push_line(text: &mut String, line: &str) {
    text.push_str(line);
    text.push('\n');
}

fn paint(text: &str, style: Style, color: bool) -> String {
    if !color {
        return text.to_string();
    }
    match style {
        Style::Result => text.to_string(),
        Style::Event => text.magenta().bold().to_string(),
        Style::Trace => text.dimmed().to_string(),
        Style::Waiting => text.yellow().to_string(),
        Style::Warning => text.yellow().bold().to_string(),
    }
}
