//! The listings of what the cluster holds and how it is set: `KEYS [prefix]` and
//! `SHOW SETTINGS` (also `SET` alone).
//!
//! `KEYS` asks each node that is up for its committed keys, one node after the other,
//! and sorts them: it takes no lock and waits for no transaction, so a key being written
//! shows with its last committed state, and a commit landing between two nodes' answers
//! may show on one node and not yet on the other (it is a listing for a reader, not a
//! snapshot a transaction could rely on; `BEGIN READ ONLY` gives that). A node that is
//! down is named, since its keys cannot be listed.

use super::command::Text;
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
