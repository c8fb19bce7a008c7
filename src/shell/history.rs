//! What the shell remembers of recent commands, for `DIAGRAM`: a bounded ring of
//! [`Entry`]s, one per command run (and one per waiting command that completed later),
//! each with the trace events it caused.
//!
//! The shell's trace hook records every event whether or not `TRACE ON` is set (TRACE
//! only decides what is printed), so a diagram can be drawn after the fact. The ring
//! keeps the last [`HISTORY_LEN`] entries: a transaction that began longer ago than that
//! is drawn from what is left, with a note saying so (see `diagram`).

use crate::cluster::TraceEvent;
use crate::types::{NodeId, TxnId};
use std::collections::VecDeque;

/// How many entries the ring keeps.
pub const HISTORY_LEN: usize = 256;

/// One command as the diagram needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The command in canonical form, without a `session:` prefix.
    pub command: String,
    /// The client session that ran it and the node coordinating that session's
    /// transactions, for transaction commands; `None` for the rest (`TICK`, `CRASH`).
    pub session: Option<(String, NodeId)>,
    /// The transaction the command belonged to, when known (the session's open
    /// transaction, or the one its answer names).
    pub tid: Option<TxnId>,
    /// The events it caused, in the trace's fixed order.
    pub events: Vec<TraceEvent>,
    /// Its answer, shortened to the part before a `:` (`T4 committed on nodes 1, 2`,
    /// `ok`, `(waiting)`), if it has one yet.
    pub reply: Option<String>,
    /// Whether this is the answer of a command that waited, arriving later: the chart
    /// draws the answer without the request again.
    pub later: bool,
}

/// The ring of recent entries.
#[derive(Debug, Default)]
pub struct History {
    entries: VecDeque<Entry>,
    /// Whether entries were dropped from the front since the shell started.
    pub(crate) dropped: bool,
}

impl History {
    /// Remembers an entry, forgetting the oldest if the ring is full.
    pub fn push(&mut self, entry: Entry) {
        if self.entries.len() == HISTORY_LEN {
            self.entries.pop_front();
            self.dropped = true;
        }
        self.entries.push_back(entry);
    }

    /// The entries, oldest first.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    /// The last command that has something to draw (events, or a session's command),
    /// with the answers of waiting commands that arrived after it; empty if none.
    pub fn last_command(&self) -> Vec<&Entry> {
        let active =
            |entry: &Entry| !entry.later && (entry.session.is_some() || !entry.events.is_empty());
        match self.entries.iter().rposition(active) {
            Some(start) => self.entries.range(start..).collect(),
            None => Vec::new(),
        }
    }

    /// The entries that concern `tid`: those of its session's commands, and those
    /// whose events name it.
    pub fn of(&self, tid: TxnId) -> Vec<&Entry> {
        (self.entries.iter())
            .filter(|entry| entry.tid == Some(tid) || entry.events.iter().any(|e| about(e, tid)))
            .collect()
    }
}

/// Whether an event is about `tid`.
pub fn about(event: &TraceEvent, tid: TxnId) -> bool {
    match event {
        TraceEvent::Message { tid: t, .. }
        | TraceEvent::Log { tid: t, .. }
        | TraceEvent::Crash { tid: t, .. } => *t == Some(tid),
        TraceEvent::Told { tid: t, .. } => *t == tid,
        TraceEvent::Deadlock { cycle, victim, .. } => *victim == tid || cycle.contains(&tid),
        TraceEvent::Narrate { text, .. } => tid_in(text) == Some(tid),
    }
}

/// The first transaction id (`T12`) written in `text`, if any.
pub fn tid_in(text: &str) -> Option<TxnId> {
    let words = text.split(|c: char| !c.is_ascii_alphanumeric());
    words
        .filter_map(|word| word.strip_prefix('T')?.parse().ok())
        .map(TxnId)
        .next()
}

/// A command's answer as an arrow label: the part before `: ` or `; `, at most
/// [`REPLY_LEN`] characters.
pub fn short_reply(text: &str) -> String {
    let cut = [": ", "; "]
        .iter()
        .filter_map(|sep| text.find(sep))
        .min()
        .unwrap_or(text.len());
    let text = &text[..cut];
    if text.chars().count() <= REPLY_LEN {
        return text.to_string();
    }
    let short: String = text.chars().take(REPLY_LEN - 3).collect();
    format!("{short}...")
}

/// The longest answer label.
pub const REPLY_LEN: usize = 30;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_shortened_and_name_their_transaction() {
        let reply = "T4 started: a transaction coordinated by node 0";
        assert_eq!(short_reply(reply), "T4 started");
        assert_eq!(tid_in(reply), Some(TxnId(4)));
        assert_eq!(tid_in("x = T"), None);
        assert_eq!(tid_in("ok"), None);
        assert_eq!(short_reply(&"a".repeat(40)).chars().count(), REPLY_LEN);
    }

    #[test]
    fn the_ring_forgets_the_oldest() {
        let mut history = History::default();
        for n in 0..HISTORY_LEN + 2 {
            history.push(Entry {
                command: format!("TICK {n}ms"),
                session: None,
                tid: None,
                events: Vec::new(),
                reply: None,
                later: false,
            });
        }
        assert_eq!(history.entries().count(), HISTORY_LEN);
        assert_eq!(history.entries().next().unwrap().command, "TICK 2ms");
        assert!(history.dropped);
    }
}
