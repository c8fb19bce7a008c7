//! The listings of what the cluster holds and how it is set: `STATUS`, `SHOW LOG`,
//! `KEYS [prefix]` and `SHOW SETTINGS` (also `SET` alone).
//!
//! `KEYS` asks each node that is up for its committed keys, one node after the other,
//! and sorts them: it takes no lock and waits for no transaction, so a key being written
//! shows with its last committed state, and a commit landing between two nodes' answers
//! may show on one node and not yet on the other (it is a listing for a reader, not a
//! snapshot a transaction could rely on; `BEGIN READ ONLY` gives that). A node that is
//! down is named, since its keys cannot be listed.

use super::command::Text;
use super::executor::Shell;
use super::format;
use super::output::{Outcome, Style};
use crate::Cluster;
use crate::config::SETTINGS;
use crate::types::NodeId;

/// Keys wider than this do not widen the column of nodes further.
const MAX_KEY_COLUMN: usize = 40;

/// `KEYS [prefix]`: every committed key starting with `prefix`, sorted, with its node,
/// and a line that counts them.
pub(super) fn keys(cluster: &Cluster, prefix: Option<&str>, outcome: &mut Outcome) {
    let mut keys: Vec<(String, NodeId)> = Vec::new();
    let mut down = Vec::new();
    for node in 0..cluster.nodes() {
        match cluster.data(node) {
            Ok(data) => keys.extend(
                (data.into_iter())
                    .filter(|(key, _)| prefix.is_none_or(|prefix| key.starts_with(prefix)))
                    .map(|(key, _)| (key, node)),
            ),
            Err(_) => down.push(node),
        }
    }
    keys.sort();
    let shown: Vec<(String, NodeId)> = (keys.into_iter())
        .map(|(key, node)| (Text(&key).to_string(), node))
        .collect();
    let width = (shown.iter())
        .map(|(key, _)| key.chars().count())
        .max()
        .unwrap_or(0)
        .min(MAX_KEY_COLUMN);
    for (key, node) in &shown {
        outcome.say(format!("{key:<width$}  node {node}"));
    }
    for node in &down {
        outcome.push(
            Style::Warning,
            format!("node {node} is down: its keys are not listed (RESTART node {node})"),
        );
    }
    let count = match shown.len() {
        0 => "no keys".to_string(),
        1 => "1 key".to_string(),
        n => format!("{n} keys"),
    };
    let starting = prefix.map_or(String::new(), |prefix| {
        format!(" starting with {}", Text(prefix))
    });
    let up = if down.is_empty() {
        ""
    } else {
        " on the nodes that are up"
    };
    outcome.say(format!("({count}{starting}{up})"));
}

/// `SHOW SETTINGS`: each setting of `config::SETTINGS` with its value now, written as
/// `SET` reads it and echoes it.
pub(super) fn settings(cluster: &Cluster, outcome: &mut Outcome) {
    let settings = cluster.settings();
    for setting in SETTINGS {
        outcome.say(format!("{} = {}", setting.name, setting.show(&settings)));
    }
}

impl Shell {
    /// `STATUS`: the nodes' table, a node's failure if it stopped on one, and the
    /// sessions.
    pub(super) fn status(&self, outcome: &mut Outcome) {
        let statuses = self.cluster.status();
        for line in format::status_table(&statuses) {
            outcome.say(line);
        }
        for status in &statuses {
            if let Some(why) = self.cluster.unreachable(status.node) {
                outcome.push(
                    Style::Warning,
                    format!("node {} is down: {why}", status.node),
                );
            }
            if let Some(failure) = &status.failure {
                outcome.push(
                    Style::Warning,
                    format!("node {} stopped on an error: {failure}", status.node),
                );
            }
            for (tid, committed) in &status.mixed {
                let (here, there) = match committed {
                    true => ("committed", "aborted"),
                    false => ("aborted", "committed"),
                };
                outcome.push(
                    Style::Warning,
                    format!(
                        "node {}: HEURISTIC MIXED OUTCOME of {tid}: {here} here by hand (RESOLVE), \
                         {there} by its coordinator node {}: atomicity is broken",
                        status.node,
                        tid.coordinator(statuses.len() as u32)
                    ),
                );
            }
        }
        let sessions: Vec<String> = (self.sessions.values())
            .map(|session| {
                let mut text = format!("{} (node {}", session.name(), session.node());
                match session.label() {
                    Some(label) if session.is_open() => text.push_str(&format!(", {label} open")),
                    Some(label) => text.push_str(&format!(", {label}")),
                    None => {}
                }
                if session.busy().is_some() {
                    text.push_str(", waiting");
                }
                text.push(')');
                text
            })
            .collect();
        outcome.say(format!("sessions: {}", sessions.join(", ")));
    }

    /// `SHOW LOG node N [LAST n]`: the log's records, only the last `log_limit` at the
    /// prompt unless `LAST` is given.
    pub(super) fn show_log(
        &self,
        node: NodeId,
        last: Option<usize>,
        outcome: &mut Outcome,
    ) -> Result<(), String> {
        let records = self.cluster.log_records(node).map_err(|e| e.to_string())?;
        let checkpoint = (self.cluster.log_checkpoint(node)).map_err(|e| e.to_string())?;
        if let Some(checkpoint) = checkpoint {
            for line in format::checkpoint(&checkpoint) {
                outcome.say(line);
            }
        }
        let limited = last.is_none() && self.log_limit.is_some_and(|limit| records.len() > limit);
        let last = last.or(self.log_limit);
        let skip = last.map_or(0, |last| records.len().saturating_sub(last));
        if records.is_empty() {
            outcome.say(format!(
                "node {node}'s log is empty (since its last checkpoint)"
            ));
        }
        // In step mode, the records whose fsync is still held are marked: they are in
        // the file, but a crash would cut them.
        let unsynced = match self.cluster.stepping() {
            true => self.cluster.log_unsynced(node).unwrap_or(0),
            false => 0,
        };
        let synced = records.len().saturating_sub(unsynced);
        for (index, record) in records.iter().enumerate().skip(skip) {
            let mark = match index >= synced {
                true => "  not synced yet: a crash now would cut it",
                false => "",
            };
            outcome.say(format!(
                "{:>4}  {}{mark}",
                index + 1,
                format::record(record)
            ));
        }
        if limited {
            let all = records.len();
            outcome.say(format!(
                "(the last {} of {all} records; SHOW LOG node {node} LAST {all} shows them all)",
                all - skip
            ));
        }
        Ok(())
    }
}
