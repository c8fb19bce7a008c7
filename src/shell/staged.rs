//! The trace of a parallel commit in its causal order.
//!
//! The shell prints a batch of trace events sorted by causal depth, then node
//! ([`event_order`]), which is the order things happened in as far as the events can
//! tell. Two facts of a parallel commit (`SET commit parallel`, see
//! `coordinator::parallel`) are not in the events' own order, and this module supplies
//! them:
//!
//! - **The PREPAREs leave before `Staged` is appended.** A log record is traced when it
//!   is appended, a message when it leaves the node's outbox, which is later: so the
//!   coordinator's `Staged` (and a crash at `staging`, between the two) would print
//!   above the PREPAREs that went first. [`event_order`] ranks them after the messages
//!   of their depth and node.
//! - **The client hears COMMIT when the last YES vote arrives**, before the `Decision`
//!   is logged. A reply to a client is not a protocol message and no node traces it;
//!   [`Staging`] counts each staged transaction's PREPAREs and YES votes, and at the
//!   last vote places a [`TraceEvent::Told`] at the depth of its handling, ranked
//!   before what the coordinator does next (the `Decision`, or a crash at `staged`).
//!
//! Classic mode has neither a `Staged` record nor a `Told` event: its order, and so
//! every recorded transcript, is what it was.
//!
//! # Limits
//!
//! In step mode (`STEP ON`) a held fsync of `Staged` holds the client's reply too; the
//! `Told` line is still placed at the last vote, where the reply became due.

use crate::cluster::{CrashPoint, TraceEvent};
use crate::types::{NodeId, TxnId};
use std::collections::BTreeMap;

/// Where an event goes among those of the same causal depth and node: the client's
/// reply first, then what the events' arrival order says, then `Staged` (and a crash at
/// `staging`), which the coordinator did after sending its PREPAREs.
fn rank(event: &TraceEvent) -> u8 {
    match event {
        TraceEvent::Told { .. } => 0,
        TraceEvent::Log { kind: "Staged", .. } => 2,
        TraceEvent::Crash {
            point: Some(CrashPoint::Staging),
            ..
        } => 2,
        _ => 1,
    }
}

/// A trace event's sort key: causal depth, then the node it happened on, then its
/// [`rank`] there (a stable sort keeps arrival order within a rank).
pub fn event_order(event: &TraceEvent) -> (u32, u32, u8) {
    let (depth, node) = match event {
        TraceEvent::Message { depth, from, .. } => (*depth, *from),
        TraceEvent::Log { depth, node, .. }
        | TraceEvent::Crash { depth, node, .. }
        | TraceEvent::Told { depth, node, .. }
        | TraceEvent::Narrate { depth, node, .. } => (*depth, *node),
        TraceEvent::Deadlock { depth, .. } => (*depth, u32::MAX),
    };
    (depth, node, rank(event))
}

/// A transaction whose PREPAREs the shell saw, until its outcome.
#[derive(Debug)]
struct Commit {
    /// Its coordinator, which sent the PREPAREs.
    coordinator: NodeId,
    /// PREPAREs sent: one per participant.
    prepares: usize,
    /// YES votes the coordinator received.
    yes_votes: usize,
    /// Whether the coordinator appended `Staged`: a parallel commit.
    staged: bool,
}

/// The commits in flight, across batches of events (in step mode a commit's events
/// come one step at a time).
#[derive(Debug, Default)]
pub struct Staging {
    commits: BTreeMap<TxnId, Commit>,
}

impl Staging {
    /// Sorts a batch of events into their causal order, with a `Told` placed where a
    /// parallel commit's client heard COMMIT.
    pub fn order(&mut self, events: &mut Vec<TraceEvent>) {
        events.sort_by_key(event_order);
        let told: Vec<TraceEvent> = events.iter().filter_map(|e| self.observe(e)).collect();
        if !told.is_empty() {
            events.extend(told);
            events.sort_by_key(event_order);
        }
    }

    /// Follows one event; returns the `Told` it completes, if any.
    fn observe(&mut self, event: &TraceEvent) -> Option<TraceEvent> {
        match event {
            // A PREPARE: one more participant of the coordinator's commit.
            TraceEvent::Message {
                from,
                label,
                tid: Some(tid),
                ..
            } if label == "PREPARE" => {
                let commit = self.commits.entry(*tid).or_insert(Commit {
                    coordinator: *from,
                    prepares: 0,
                    yes_votes: 0,
                    staged: false,
                });
                commit.prepares += 1;
            }
            // Staged: the commit is a parallel one.
            TraceEvent::Log {
                node,
                kind: "Staged",
                tid: Some(tid),
                ..
            } => {
                if let Some(commit) = self.commits.get_mut(tid)
                    && commit.coordinator == *node
                {
                    commit.staged = true;
                }
            }
            // A YES vote: the last one of a staged commit tells the client.
            TraceEvent::Message {
                depth,
                to,
                label,
                tid: Some(tid),
                dropped: false,
                ..
            } if label == "VOTE YES" => {
                let commit = self.commits.get_mut(tid)?;
                if commit.coordinator != *to {
                    return None;
                }
                commit.yes_votes += 1;
                if commit.staged && commit.yes_votes == commit.prepares {
                    self.commits.remove(tid);
                    return Some(TraceEvent::Told {
                        depth: depth + 1,
                        node: *to,
                        tid: *tid,
                    });
                }
            }
            // An outcome, or a NO: nothing more to tell.
            TraceEvent::Message {
                label,
                tid: Some(tid),
                ..
            } if ["ABORT", "COMMIT", "VOTE NO"].contains(&label.as_str()) => {
                self.commits.remove(tid);
            }
            TraceEvent::Log {
                kind: "Decision" | "StagedAbort" | "End",
                tid: Some(tid),
                ..
            } => {
                self.commits.remove(tid);
            }
            // A crashed coordinator tells no client.
            TraceEvent::Crash { node, .. } => {
                self.commits.retain(|_, commit| commit.coordinator != *node);
            }
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(depth: u32, from: NodeId, to: NodeId, label: &str) -> TraceEvent {
        TraceEvent::Message {
            depth,
            from,
            to,
            label: label.into(),
            tid: Some(TxnId(1)),
            dropped: false,
        }
    }

    fn log(depth: u32, node: NodeId, kind: &'static str) -> TraceEvent {
        TraceEvent::Log {
            depth,
            node,
            kind,
            tid: Some(TxnId(1)),
            forced: true,
        }
    }

    /// The events of a parallel commit over nodes 1 and 2, in the order a node thread
    /// may report them: `Staged` before the PREPAREs, node 2 before node 1.
    fn parallel_commit() -> Vec<TraceEvent> {
        vec![
            log(1, 0, "Staged"),
            message(1, 0, 1, "PREPARE"),
            message(1, 0, 2, "PREPARE"),
            log(2, 2, "Prepare"),
            message(2, 2, 0, "VOTE YES"),
            log(2, 1, "Prepare"),
            message(2, 1, 0, "VOTE YES"),
            log(3, 0, "Decision"),
            message(3, 0, 1, "COMMIT"),
            message(3, 0, 2, "COMMIT"),
        ]
    }

    fn lines(events: &[TraceEvent]) -> Vec<String> {
        events.iter().map(TraceEvent::to_string).collect()
    }

    #[test]
    fn a_parallel_commit_prints_prepares_staged_votes_reply_then_decision() {
        let mut events = parallel_commit();
        Staging::default().order(&mut events);
        assert_eq!(
            lines(&events),
            [
                "node0 -> node1  PREPARE T1",
                "node0 -> node2  PREPARE T1",
                "node0  log Staged T1 (fsync)",
                "node1  log Prepare T1 (fsync)",
                "node1 -> node0  VOTE YES T1",
                "node2  log Prepare T1 (fsync)",
                "node2 -> node0  VOTE YES T1",
                "node0 -> client  COMMITTED T1  (Staged and every Prepare are durable)",
                "node0  log Decision T1 (fsync)",
                "node0 -> node1  COMMIT T1",
                "node0 -> node2  COMMIT T1",
            ]
        );
    }

    #[test]
    fn the_reply_waits_for_the_last_vote_across_batches() {
        let mut staging = Staging::default();
        let events = parallel_commit();
        let mut first = events[..5].to_vec();
        staging.order(&mut first);
        assert!(!first.iter().any(|e| matches!(e, TraceEvent::Told { .. })));
        let mut rest = events[5..].to_vec();
        staging.order(&mut rest);
        let told = rest
            .iter()
            .position(|e| matches!(e, TraceEvent::Told { .. }));
        assert_eq!(told, Some(2), "{:#?}", lines(&rest));
    }

    #[test]
    fn a_classic_commit_keeps_its_order_and_tells_nothing() {
        let mut events: Vec<TraceEvent> = (parallel_commit().into_iter())
            .filter(|event| !matches!(event, TraceEvent::Log { kind: "Staged", .. }))
            .collect();
        let mut expected = events.clone();
        expected.sort_by_key(|event| (event.depth(), event_order(event).1));
        Staging::default().order(&mut events);
        assert_eq!(events, expected);
    }

    #[test]
    fn a_no_vote_or_a_crashed_coordinator_tells_the_client_nothing() {
        let mut no = parallel_commit();
        no[4] = message(2, 2, 0, "VOTE NO");
        Staging::default().order(&mut no);
        assert!(!no.iter().any(|e| matches!(e, TraceEvent::Told { .. })));
        // A crash at staging: the PREPAREs left, Staged was never appended.
        let mut crashed = parallel_commit();
        crashed.remove(0);
        crashed.insert(
            0,
            TraceEvent::Crash {
                depth: 1,
                node: 0,
                point: Some(CrashPoint::Staging),
                tid: Some(TxnId(1)),
            },
        );
        Staging::default().order(&mut crashed);
        assert!(!crashed.iter().any(|e| matches!(e, TraceEvent::Told { .. })));
        let crash = crashed
            .iter()
            .position(|e| matches!(e, TraceEvent::Crash { .. }));
        assert_eq!(crash, Some(2), "a crash at staging follows the PREPAREs");
    }
}
