//! How the shell shows the cluster's state: `STATUS`, `SHOW LOCKS`, `SHOW LOG`, recovery
//! reports and trace events. Every list is sorted, so output is the same every run.

use super::command::Text;
use crate::cluster::{CheckpointInfo, KeyLocks, LogEntry, LogRecord, NodeStatus, RecoveryReport};
use crate::text::table;
use crate::types::{LockMode, NodeId, TxnId, Write};

/// `T1, T4` or `-`.
pub fn tids(tids: &[TxnId]) -> String {
    if tids.is_empty() {
        return "-".into();
    }
    tids.iter()
        .map(TxnId::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A byte count, as `812 B` or `1.5 KiB`.
pub fn bytes(count: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = count as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{count} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The rows of `STATUS`, as a table.
pub fn status_table(statuses: &[NodeStatus]) -> Vec<String> {
    let mut rows = vec![vec![
        "node".to_string(),
        "state".into(),
        "keys".into(),
        "log".into(),
        "active".into(),
        "in doubt".into(),
        "coordinating".into(),
    ]];
    for status in statuses {
        let armed = status
            .armed
            .map(|point| format!(" (crash armed at {point})"))
            .unwrap_or_default();
        let in_doubt: Vec<String> = (status.in_doubt.iter())
            .map(|(tid, coordinator)| format!("{tid} (asks node {coordinator})"))
            .collect();
        let mut coordinating = status.coordinating.clone();
        coordinating.extend(&status.unacknowledged);
        rows.push(vec![
            status.node.to_string(),
            if status.up {
                format!("up{armed}")
            } else {
                "DOWN".into()
            },
            if status.up {
                status.keys.to_string()
            } else {
                "-".into()
            },
            bytes(status.log_bytes),
            tids(&status.active),
            if in_doubt.is_empty() {
                "-".into()
            } else {
                in_doubt.join(", ")
            },
            tids(&coordinating),
        ]);
    }
    table(&rows)
}

fn mode(mode: LockMode) -> &'static str {
    match mode {
        LockMode::Shared => "shared",
        LockMode::Exclusive => "exclusive",
    }
}

/// The lines of `SHOW LOCKS`.
pub fn locks(locks: &[(NodeId, KeyLocks)]) -> Vec<String> {
    if locks.is_empty() {
        return vec!["no locks are held".into()];
    }
    let mut lines = Vec::new();
    for (node, key) in locks {
        let name = match key.range {
            true => format!("range {}", key.key),
            false => Text(&key.key).to_string(),
        };
        let holders: Vec<String> = (key.holders.iter())
            .map(|(tid, m)| format!("{tid} ({})", mode(*m)))
            .collect();
        let mut line = format!("node {node}  {name}  held by {}", holders.join(", "));
        if !key.waiters.is_empty() {
            let waiters: Vec<String> = (key.waiters.iter())
                .map(|(tid, m)| format!("{tid} ({})", mode(*m)))
                .collect();
            line.push_str(&format!("; waiting: {}", waiters.join(", ")));
        }
        if key.holders.is_empty() {
            line = format!(
                "node {node}  {name}  waiting: {}",
                tids(&key.waiters.iter().map(|w| w.0).collect::<Vec<_>>())
            );
        }
        lines.push(line);
    }
    lines
}

fn writes(writes: &[Write]) -> String {
    let parts: Vec<String> = (writes.iter())
        .map(|(key, value)| match value {
            Some(value) => format!("{}={}", Text(key), Text(value)),
            None => format!("{} deleted", Text(key)),
        })
        .collect();
    parts.join(", ")
}

fn nodes(nodes: &[NodeId]) -> String {
    nodes
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// One log record as `SHOW LOG` prints it.
pub fn record(entry: &LogEntry) -> String {
    let body = match &entry.record {
        LogRecord::Prepare {
            tid,
            coordinator,
            participants,
            writes: w,
            prepare_ts,
        } => format!(
            "Prepare {tid}  coordinator {coordinator}, participants {}, writes {}, ts {prepare_ts}",
            nodes(participants),
            writes(w)
        ),
        LogRecord::Commit { tid, commit_ts } => format!("Commit {tid}  ts {commit_ts}"),
        LogRecord::Abort { tid } => format!("Abort {tid}"),
        LogRecord::OnePhaseCommit {
            tid,
            writes: w,
            commit_ts,
        } => {
            format!("OnePhaseCommit {tid}  writes {}, ts {commit_ts}", writes(w))
        }
        LogRecord::Decision {
            tid,
            participants,
            commit_ts,
        } => {
            format!(
                "Decision {tid} COMMIT  participants {}, ts {commit_ts}",
                nodes(participants)
            )
        }
        LogRecord::End { tid } => format!("End {tid}"),
        LogRecord::TidLease { upto } => format!("TidLease  counters below {upto}"),
        LogRecord::Heuristic {
            tid,
            commit: true,
            commit_ts,
        } => format!("Heuristic {tid} COMMIT  settled by hand, ts {commit_ts}"),
        LogRecord::Heuristic { tid, .. } => format!("Heuristic {tid} ABORT  settled by hand"),
        LogRecord::Staged { tid, participants } => {
            format!("Staged {tid}  participants {}", nodes(participants))
        }
        LogRecord::Refused { tid } => format!("Refused {tid}  never prepared here"),
        LogRecord::StagedAbort { tid } => format!("StagedAbort {tid}"),
    };
    let forced = if entry.forced { "fsync" } else { "lazy" };
    format!("{body}  ({forced})")
}

/// What `RESTART` (and opening a directory) reports about a node's recovery, in the
/// order recovery did it: what it read, what it redid, what it found in doubt and
/// re-locked before serving anyone, whom it asks. (How each in-doubt transaction is then
/// decided, and why, the node tells when the answer comes: a `Narrate` event.)
pub fn recovery(report: &RecoveryReport) -> Vec<String> {
    let node = report.node;
    let source = if report.from_checkpoint {
        "a checkpoint and "
    } else {
        ""
    };
    let plural = if report.records == 1 { "" } else { "s" };
    let mut lines = vec![format!(
        "node {node} recovered from {source}{} log record{plural}",
        report.records
    )];
    if report.from_checkpoint {
        lines.push(format!(
            "node {node}: the checkpoint carried {} key{}, {} and {}",
            report.checkpoint_keys,
            if report.checkpoint_keys == 1 { "" } else { "s" },
            counted(&report.checkpoint_prepared, "in-doubt Prepare"),
            counted(&report.checkpoint_decisions, "unacknowledged Decision"),
        ));
    }
    let redone = match report.redone.len() {
        0 => "redid no committed transaction".to_string(),
        1 => format!(
            "redid the writes of 1 committed transaction ({})",
            tids(&report.redone)
        ),
        n => format!(
            "redid the writes of {n} committed transactions ({})",
            tids(&report.redone)
        ),
    };
    let dropped = match report.dropped.len() {
        0 => "dropped no aborted one".to_string(),
        n => format!(
            "dropped the writes of {n} aborted ({})",
            tids(&report.dropped)
        ),
    };
    lines.push(format!("node {node}: {redone}; {dropped}"));
    if !report.in_doubt.is_empty() {
        lines.push(format!(
            "node {}: {} in doubt (prepared, no outcome logged): its keys stay locked while it asks the coordinator",
            report.node,
            tids(&report.in_doubt)
        ));
    }
    for doubt in &report.in_doubt_detail {
        let keys = doubt.keys.join(", ");
        lines.push(format!(
            "node {node}: took the exclusive lock{} of {keys} again for {}, before serving anyone",
            if doubt.keys.len() == 1 { "" } else { "s" },
            doubt.tid
        ));
        let mut asks = format!("node {} (its coordinator)", doubt.coordinator);
        if !doubt.peers.is_empty() {
            let peers: Vec<String> = doubt.peers.iter().map(|p| format!("node {p}")).collect();
            asks.push_str(&format!(
                " and {} (the other participant{})",
                peers.join(", "),
                if peers.len() == 1 { "" } else { "s" }
            ));
        }
        lines.push(format!(
            "node {node}: asks {asks} for the outcome of {}",
            doubt.tid
        ));
    }
    if !report.heuristic.is_empty() {
        lines.push(format!(
            "node {node}: {} settled by hand (RESOLVE) before: it still asks the coordinator, to compare",
            tids(&report.heuristic)
        ));
    }
    if !report.resent.is_empty() {
        lines.push(format!(
            "node {}: re-sending the commit decision of {} to participants that have not acknowledged it",
            report.node,
            tids(&report.resent)
        ));
    }
    lines
}

/// What `SHOW LOG` says first of a node's checkpoint: what it carries, the records it
/// keeps for recovery marked `c` (the log's records follow, numbered).
pub fn checkpoint(info: &CheckpointInfo) -> Vec<String> {
    let tids = |entries: &[LogEntry]| -> Vec<TxnId> {
        let tid = |entry: &LogEntry| match &entry.record {
            LogRecord::Prepare { tid, .. } | LogRecord::Decision { tid, .. } => Some(*tid),
            _ => None,
        };
        entries.iter().filter_map(tid).collect()
    };
    let mut lines = vec![format!(
        "checkpoint: {} key{}, {}, {}",
        info.keys,
        if info.keys == 1 { "" } else { "s" },
        counted(&tids(&info.prepared), "in-doubt Prepare"),
        counted(&tids(&info.decisions), "unacknowledged Decision"),
    )];
    for entry in info.prepared.iter().chain(&info.decisions) {
        lines.push(format!("   c  {}", record(entry)));
    }
    lines
}

/// `3 in-doubt Prepares (T4, T7)`, or `no in-doubt Prepare`.
fn counted(list: &[TxnId], what: &str) -> String {
    match list.len() {
        0 => format!("no {what}"),
        1 => format!("1 {what} ({})", tids(list)),
        n => format!("{n} {what}s ({})", tids(list)),
    }
}
