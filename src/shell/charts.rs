//! The `DIAGRAM` command and what it needs from the executor: each command's events and
//! answer go into the shell's [`History`] as it completes, and `DIAGRAM` picks entries
//! from it and hands them to the pure drawing functions of [`super::diagram`].
//!
//! Text charts are Unicode only when asked (`UNICODE`) or when the interactive prompt
//! said that its terminal is UTF-8 ([`Shell::set_unicode`]); scripts and transcripts get
//! ASCII, the same bytes every run.

use super::command::DiagramForm;
use super::diagram::{self, text::Charset};
use super::executor::Shell;
use super::history::{Entry, History, short_reply, tid_in};
use super::output::{Line, Outcome, Style};
use crate::types::TxnId;
use std::io::IsTerminal;
use std::path::Path;

/// The state `DIAGRAM` keeps in the shell.
#[derive(Default)]
pub(super) struct Charts {
    /// The recent commands.
    pub(super) history: History,
    /// Events taken from the trace since the last entry was made.
    pub(super) pending: Vec<crate::cluster::TraceEvent>,
    /// Whether text charts use box drawing by default.
    pub(super) unicode: bool,
}

/// Whether standard output is a terminal whose locale is UTF-8 (`LC_ALL`, else
/// `LC_CTYPE`, else `LANG`, names `UTF-8`).
pub fn utf8_terminal() -> bool {
    let locale = ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .find(|value| !value.is_empty())
        .unwrap_or_default()
        .to_ascii_lowercase();
    std::io::stdout().is_terminal() && (locale.contains("utf-8") || locale.contains("utf8"))
}

/// A command's answer as a chart shows it: its first answer line, `(waiting)`, or its
/// error (`T4 aborted`), shortened.
pub(super) fn reply_of(lines: &[Line], error: Option<&str>) -> Option<String> {
    if let Some(error) = error {
        return Some(short_reply(error));
    }
    let line = lines.iter().find(|line| line.style != Style::Trace)?;
    Some(match line.style {
        Style::Waiting => "(waiting)".to_string(),
        _ => short_reply(&line.text),
    })
}

impl Shell {
    /// Text charts use Unicode box drawing by default (for a UTF-8 terminal).
    pub fn set_unicode(&mut self, unicode: bool) {
        self.charts.unicode = unicode;
    }

    /// Remembers a command that completed (or began to wait, or, if `later`, completed
    /// after waiting) with `reply`, run by `session` if it is a transaction command, with
    /// the events taken since the last.
    pub(super) fn remember(
        &mut self,
        command: &str,
        session: Option<&str>,
        reply: Option<String>,
        later: bool,
    ) {
        let events = std::mem::take(&mut self.charts.pending);
        let session = session.and_then(|name| self.sessions.get(name));
        let prefix = session
            .map(|s| format!("{}: ", s.name()))
            .unwrap_or_default();
        let command = command.strip_prefix(&prefix).unwrap_or(command).to_string();
        let tid = (session.and_then(|s| s.tid()))
            .or_else(|| reply.as_deref().and_then(tid_in))
            .filter(|_| session.is_some());
        self.charts.history.push(Entry {
            command,
            session: session.map(|s| (s.name().to_string(), s.node())),
            tid,
            events,
            reply,
            later,
        });
    }

    /// `DIAGRAM [tid] [form]`.
    pub(super) fn diagram(
        &mut self,
        tid: Option<TxnId>,
        form: &DiagramForm,
        outcome: &mut Outcome,
    ) -> Result<(), String> {
        let history = &self.charts.history;
        let chart = match tid {
            Some(tid) => {
                let entries = history.of(tid);
                if entries.is_empty() {
                    return Err(format!(
                        "the shell remembers nothing of {tid}: it draws what it saw in its \
                         last {} commands",
                        super::history::HISTORY_LEN
                    ));
                }
                let partial = history.dropped && entries[0].command != "BEGIN";
                diagram::of_transaction(tid, &entries, partial)
            }
            None => match history.last_command().as_slice() {
                [] => return Err("there is no command to draw yet; run one first".into()),
                entries => diagram::of_command(entries),
            },
        };
        let charset = match form {
            DiagramForm::Ascii => Charset::Ascii,
            DiagramForm::Unicode => Charset::Unicode,
            DiagramForm::Auto if self.charts.unicode => Charset::Unicode,
            DiagramForm::Auto => Charset::Ascii,
            DiagramForm::Svg(path) => {
                let full = match self.base_dir.as_path() {
                    dir if dir == Path::new(".") => Path::new(path).to_path_buf(),
                    dir => dir.join(path),
                };
                std::fs::write(&full, diagram::svg::render(&chart))
                    .map_err(|e| format!("cannot write {}: {e}", full.display()))?;
                outcome.say(format!(
                    "wrote the chart of {} to {path} ({} rows)",
                    chart.title,
                    chart.rows.len()
                ));
                return Ok(());
            }
        };
        for line in diagram::text::render(&chart, charset) {
            outcome.say(line);
        }
        Ok(())
    }
}
