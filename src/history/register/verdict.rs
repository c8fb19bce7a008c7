//! The verdict in words, as `CHECK` prints it: a serial order, or each anomaly with the
//! transactions, sessions and keys on it and why each step of a cycle holds.

use super::check::and_list;
use super::{Anomaly, Dep, INITIAL, RegisterReport};
use crate::history::Edge;

impl RegisterReport {
    /// A transaction as the verdict names it: `T3 (session alice)`.
    fn named(&self, name: &str) -> String {
        match self.sessions.get(name) {
            Some(session) => format!("{name} (session {session})"),
            None => name.to_string(),
        }
    }

    /// The verdict, line by line: the first line says whether the history is
    /// serializable; the rest explain, as a teacher would.
    pub fn verdict(&self) -> Vec<String> {
        let count = self.committed.len();
        let txns = match count {
            1 => "1 committed transaction".to_string(),
            n => format!("{n} committed transactions"),
        };
        let mut lines = Vec::new();
        if count == 0 && self.anomalies.is_empty() {
            lines.push(
                "the history has no committed transaction yet: nothing to check (run some \
                 with BEGIN, GET, PUT and COMMIT, in one session or several, then CHECK)"
                    .to_string(),
            );
            lines.extend(self.left_out_lines());
            return lines;
        }
        match (&self.serial_order, self.is_serializable()) {
            (Some(order), true) => {
                lines.push(format!(
                    "the history of {txns} is serializable: an equivalent serial order is {}",
                    order.join(", ")
                ));
                lines.push(format!("  {}", self.sessions_line(order)));
                if self.timestamps_agree() {
                    lines.push(format!(
                        "  {} dependencies (ww, wr, rw) order them, and every read returned the \
                         newest version at or below its transaction's timestamp",
                        self.edges
                    ));
                } else {
                    lines.push(
                        "  but that is not the order of the engine's timestamps: some reads \
                         did not return the newest version at or below their timestamp:"
                            .to_string(),
                    );
                }
            }
            _ => lines.push(format!("the history of {txns} is NOT serializable:")),
        }
        let mut anomalies: Vec<&Anomaly> = self.anomalies.iter().collect();
        anomalies.sort_by_key(|anomaly| severity(anomaly));
        for anomaly in anomalies {
            lines.extend(self.explain(anomaly).into_iter().map(|l| format!("  {l}")));
        }
        lines.extend(self.left_out_lines());
        lines.extend(self.notes.iter().map(|note| format!("  note: {note}")));
        lines
    }

    /// `main ran T1 and T2; alice ran T3`.
    fn sessions_line(&self, order: &[String]) -> String {
        let mut by_session: Vec<(String, Vec<String>)> = Vec::new();
        for name in order {
            let session = self.sessions.get(name).cloned().unwrap_or_default();
            match by_session.iter_mut().find(|(s, _)| *s == session) {
                Some((_, names)) => names.push(name.clone()),
                None => by_session.push((session, vec![name.clone()])),
            }
        }
        let parts: Vec<String> = (by_session.iter())
            .map(|(session, names)| format!("session {session} ran {}", and_list(names)))
            .collect();
        format!("where {}", parts.join("; "))
    }

    fn left_out_lines(&self) -> Vec<String> {
        (self.left_out.iter())
            .map(|(name, why)| format!("  left out: {}, {why}", self.named(name)))
            .collect()
    }

    /// One anomaly, explained: a headline, then a line per step or fact.
    fn explain(&self, anomaly: &Anomaly) -> Vec<String> {
        let n = |name: &String| self.named(name);
        match anomaly {
            Anomaly::G0 { cycle } => self.cycle(
                "G0 (write cycle)",
                cycle,
                "their writes were installed in opposite orders on different keys",
            ),
            Anomaly::G1c { cycle } => self.cycle(
                "G1c (circular information flow)",
                cycle,
                "each saw what the other wrote",
            ),
            Anomaly::G2 { cycle } => {
                let skew = cycle.len() == 2 && cycle.iter().all(|e| e.dep == Dep::Rw);
                let moral = match skew {
                    true => "each read what the other then overwrote: this is write skew",
                    false => "a read missed a write that any serial order would have shown it",
                };
                self.cycle("G2 (anti-dependency cycle)", cycle, moral)
            }
            Anomaly::G1a {
                reader,
                writer,
                key,
                elem,
            } => vec![format!(
                "G1a (aborted read): {} read {key} = {elem}, which only {} wrote, and {writer} aborted: a committed transaction saw a write that never happened",
                n(reader),
                n(writer)
            )],
            Anomaly::G1b {
                reader,
                writer,
                key,
                elem,
            } => vec![format!(
                "G1b (intermediate read): {} read {key} = {elem}, which {} wrote but overwrote itself before it committed: it saw a state that never was committed",
                n(reader),
                n(writer)
            )],
            Anomaly::Internal { txn, key, read } => vec![format!(
                "internal inconsistency: {} wrote {key}, then read {key} = {}: a transaction must see its own writes",
                n(txn),
                read.join(", ")
            )],
            Anomaly::UnknownElement { reader, key, elem } => vec![format!(
                "{} read {key} = {elem}, which no transaction of this history wrote (and {key} was not {elem} when the history began)",
                n(reader)
            )],
            Anomaly::DuplicateElement { elem, writers } => {
                vec![format!("{elem} was written by {}", and_list(writers))]
            }
            Anomaly::NotAtTimestamp {
                reader,
                at,
                key,
                read,
                writer,
                latest,
                latest_writer,
            } => vec![format!(
                "timestamp order broken: {}, at timestamp {at}, read {key} = {read}, from {}; but the newest version of {key} at or below {at} is {key} = {latest}, from {}",
                n(reader),
                self.named_writer(writer),
                self.named_writer(latest_writer)
            )],
            Anomaly::IncompatibleOrder { .. } => vec![anomaly.to_string()],
        }
    }

    fn named_writer(&self, name: &str) -> String {
        match name {
            INITIAL => "the initial state".to_string(),
            other => self.named(other),
        }
    }

    /// A cycle: `G2 (anti-dependency cycle): T3 -rw(x)-> T5 -rw(y)-> T3`, then why each
    /// step holds, then why no serial order can keep them all.
    fn cycle(&self, title: &str, cycle: &[Edge], moral: &str) -> Vec<String> {
        let mut chain = cycle.first().map(|e| e.from.clone()).unwrap_or_default();
        for edge in cycle {
            chain.push_str(&format!(
                " -{}({})-> {}",
                dep_name(edge.dep),
                edge.key,
                edge.to
            ));
        }
        let mut lines = vec![format!("{title}: {chain}")];
        for edge in cycle {
            let id = (
                edge.from.clone(),
                edge.to.clone(),
                edge.dep,
                edge.key.clone(),
            );
            let why = self.reasons.get(&id).cloned().unwrap_or_default();
            lines.push(format!(
                "  {}: {why}, so {} comes before {}",
                dep_name(edge.dep),
                self.named(&edge.from),
                self.named(&edge.to)
            ));
        }
        let first = cycle.first().map(|e| e.from.as_str()).unwrap_or_default();
        lines.push(format!(
            "  so {first} would come before itself: no serial order keeps every step; {moral}"
        ));
        lines
    }
}

/// Cycles first, then the other phenomena, then what only the timestamps contradict.
fn severity(anomaly: &Anomaly) -> u8 {
    match anomaly {
        Anomaly::G0 { .. } | Anomaly::G1c { .. } | Anomaly::G2 { .. } => 0,
        Anomaly::NotAtTimestamp { .. } => 2,
        _ => 1,
    }
}

fn dep_name(dep: Dep) -> &'static str {
    match dep {
        Dep::Ww => "ww",
        Dep::Wr => "wr",
        Dep::Rw => "rw",
    }
}
