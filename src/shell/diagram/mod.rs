//! Message-sequence charts of the protocol (`DIAGRAM`): pure functions from what the
//! shell remembers ([`super::history`]) to a [`Chart`], and from a chart to text
//! ([`text`]) or SVG ([`svg`]).
//!
//! # Layout
//!
//! Time runs down the page, one row per step. There is a column (a lifeline) per
//! client session that took part, then one per node, in number order. A row is one of:
//! an arrow from one column to another (a client's command and its answer, or a
//! protocol message, `x` at its end if it was lost because the receiver was down); a
//! box on a node's lifeline for a log write, marked `fsync` (forced: on disk before
//! anything that depends on it leaves the node) or `lazy` (written, synced later); a
//! cross on a node's lifeline where it crashed; and notes (the command that moved the
//! cluster, a deadlock). The last line gives the outcome. A parallel commit's answer
//! is drawn where the client heard it, after the last vote and before the `Decision`
//! (the trace's `Told`), not after the rest of the protocol. Rows come in the trace's
//! fixed order (causal depth, then node), so a chart is the same every run.
//!
//! # Limits
//!
//! The shell remembers the last `HISTORY_LEN` commands: an older transaction is drawn
//! from what is left, with a note. Client requests are not traced messages: the chart
//! draws one arrow per command to the session's coordinator and one back with the
//! answer, though a command may fan out to other nodes (a `GET` is forwarded to the
//! key's owner without a traced message). Labels longer than a column's room are cut
//! with `...`; a chart of many nodes is as wide as they need.

pub mod svg;
pub mod text;

use super::history::{Entry, about};
use crate::cluster::TraceEvent;
use crate::types::{NodeId, TxnId};

/// A column: a client session or a node.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Column {
    /// A client session, by name.
    Session(String),
    /// A node.
    Node(NodeId),
}

impl Column {
    /// The column's heading.
    pub fn heading(&self) -> String {
        match self {
            Column::Session(name) => name.clone(),
            Column::Node(node) => format!("node{node}"),
        }
    }
}

/// One step of a chart; columns are indices into [`Chart::columns`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Row {
    /// A message or a request or an answer.
    Arrow {
        /// The sender's column.
        from: usize,
        /// The receiver's column.
        to: usize,
        /// What it says.
        label: String,
        /// Whether it was lost (the receiver was down).
        lost: bool,
    },
    /// A log write on a node.
    Log {
        /// The node's column.
        column: usize,
        /// The record kind and transaction.
        label: String,
        /// Whether it was forced (fsync) rather than lazy.
        forced: bool,
    },
    /// A node crashed.
    Crash {
        /// The node's column.
        column: usize,
        /// What the cross means (`node2 CRASHED at prepare`).
        note: String,
    },
    /// A line of text across the chart.
    Note(String),
}

/// A chart, ready to draw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chart {
    /// What it shows (`T4`, or `the last command: COMMIT`).
    pub title: String,
    /// The columns, sessions first, then nodes.
    pub columns: Vec<Column>,
    /// The steps, top to bottom.
    pub rows: Vec<Row>,
    /// The outcome (`T4 committed`), if the chart knows one.
    pub outcome: Option<String>,
}

/// The chart of `tid` from the entries that concern it (see `History::of`); `partial`
/// says the history lost older entries, so the start may be missing.
pub fn of_transaction(tid: TxnId, entries: &[&Entry], partial: bool) -> Chart {
    let mut builder = Builder::default();
    if partial {
        builder
            .notes
            .push("(older commands are forgotten; the start may be missing)".into());
    }
    for entry in entries {
        builder.entry(entry, Some(tid));
    }
    let outcome = outcome(tid, entries);
    builder.finish(tid.to_string(), Some(outcome))
}

/// The chart of one command's activity, all transactions together, and the answers of
/// waiting commands that it let complete (the entries after the first).
pub fn of_command(entries: &[&Entry]) -> Chart {
    let mut builder = Builder::default();
    for entry in entries {
        builder.entry(entry, None);
    }
    let title = entries
        .first()
        .map(|entry| entry.command.as_str())
        .unwrap_or("");
    builder.finish(format!("the last command: {title}"), None)
}

/// What became of `tid`: the last answer or log record that says.
fn outcome(tid: TxnId, entries: &[&Entry]) -> String {
    let mut outcome = format!("{tid} has no outcome yet");
    for entry in entries {
        for event in &entry.events {
            if let TraceEvent::Log { kind, tid: t, .. } = event
                && *t == Some(tid)
            {
                match *kind {
                    "Commit" | "OnePhaseCommit" | "Decision" => {
                        outcome = format!("{tid} committed")
                    }
                    "Abort" => outcome = format!("{tid} aborted"),
                    _ => {}
                }
            }
            if let TraceEvent::Deadlock { victim, .. } = event
                && *victim == tid
            {
                outcome = format!("{tid} aborted (deadlock victim)");
            }
        }
        let reply = entry.reply.as_deref().unwrap_or("");
        let named = reply.starts_with(&format!("{tid} "));
        if named && (reply.contains("committed") || reply.contains("aborted")) {
            outcome = reply.to_string();
        }
    }
    outcome
}

/// Collects rows, with columns named as they are met and numbered at the end.
#[derive(Default)]
struct Builder {
    notes: Vec<String>,
    steps: Vec<Step>,
}

/// A row before its columns are numbered.
enum Step {
    Arrow(Column, Column, String, bool),
    Log(NodeId, String, bool),
    Crash(NodeId, String),
    Note(String),
}

impl Builder {
    fn entry(&mut self, entry: &Entry, tid: Option<TxnId>) {
        let events: Vec<&TraceEvent> = (entry.events.iter())
            .filter(|event| {
                tid.is_none_or(|tid| about(event, tid) || matches!(event, TraceEvent::Crash { .. }))
            })
            .collect();
        let client = entry
            .session
            .clone()
            .filter(|_| tid.is_none() || entry.tid == tid);
        if client.is_none() && events.is_empty() {
            return;
        }
        match &client {
            Some(_) if entry.later => {}
            Some((session, node)) => self.steps.push(Step::Arrow(
                Column::Session(session.clone()),
                Column::Node(*node),
                entry.command.clone(),
                false,
            )),
            None => self.steps.push(Step::Note(format!("> {}", entry.command))),
        }
        let show = |t: &Option<TxnId>| match (t, tid) {
            (Some(t), None) => format!(" {t}"),
            _ => String::new(),
        };
        let mut replied = false;
        for event in events {
            self.steps.push(match event {
                TraceEvent::Message {
                    from,
                    to,
                    label,
                    tid: t,
                    dropped,
                    ..
                } => Step::Arrow(
                    Column::Node(*from),
                    Column::Node(*to),
                    format!("{label}{}", show(t)),
                    *dropped,
                ),
                TraceEvent::Log {
                    node,
                    kind,
                    tid: t,
                    forced,
                    ..
                } => Step::Log(*node, format!("{kind}{}", show(t)), *forced),
                TraceEvent::Crash { node, .. } => Step::Crash(*node, event.to_string()),
                // A parallel commit's client hears COMMIT here, before the Decision.
                TraceEvent::Told { node, tid: t, .. } => match (&client, &entry.reply) {
                    (Some((session, coordinator)), Some(reply)) if coordinator == node => {
                        replied = true;
                        Step::Arrow(
                            Column::Node(*node),
                            Column::Session(session.clone()),
                            reply.clone(),
                            false,
                        )
                    }
                    _ => Step::Note(format!("node{node} told its client: {t} committed")),
                },
                TraceEvent::Deadlock { .. } | TraceEvent::Narrate { .. } => {
                    Step::Note(event.to_string())
                }
            });
        }
        if let (Some((session, node)), Some(reply), false) = (&client, &entry.reply, replied) {
            self.steps.push(Step::Arrow(
                Column::Node(*node),
                Column::Session(session.clone()),
                reply.clone(),
                false,
            ));
        }
    }

    fn finish(self, title: String, outcome: Option<String>) -> Chart {
        let mut columns: Vec<Column> = Vec::new();
        let mut add = |column: &Column| {
            if !columns.contains(column) {
                columns.push(column.clone());
            }
        };
        for step in &self.steps {
            match step {
                Step::Arrow(from, to, ..) => {
                    add(from);
                    add(to);
                }
                Step::Log(node, ..) | Step::Crash(node, _) => add(&Column::Node(*node)),
                Step::Note(_) => {}
            }
        }
        // Sessions in order of appearance, then nodes by number.
        columns.sort_by(|a, b| match (a, b) {
            (Column::Session(_), Column::Session(_)) => std::cmp::Ordering::Equal,
            _ => a.cmp(b),
        });
        let index = |column: &Column| columns.iter().position(|c| c == column).unwrap_or(0);
        let mut rows: Vec<Row> = self.notes.into_iter().map(Row::Note).collect();
        for step in self.steps {
            rows.push(match step {
                Step::Arrow(from, to, label, lost) => Row::Arrow {
                    from: index(&from),
                    to: index(&to),
                    label,
                    lost,
                },
                Step::Log(node, label, forced) => Row::Log {
                    column: index(&Column::Node(node)),
                    label,
                    forced,
                },
                Step::Crash(node, note) => Row::Crash {
                    column: index(&Column::Node(node)),
                    note,
                },
                Step::Note(text) => Row::Note(text),
            });
        }
        Chart {
            title,
            columns,
            rows,
            outcome,
        }
    }
}
