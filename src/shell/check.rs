//! `CHECK`: the serializability checker (`history::register`) over this shell's own
//! history: what every key held when the shell began, then every transaction each
//! session ended, as the session recorded it (`session::worker`). The verdict is the
//! checker's, in its words; transactions still open are not part of the history yet,
//! and the verdict says which.
//!
//! Range reads (`SCAN`), when they come, enter the history as one read per key they
//! returned (`RegisterTxn::read`, recorded by the session like a `GET`).

use super::executor::Shell;
use super::output::Outcome;
use crate::cluster::Cluster;
use crate::history::{RegisterHistory, check_registers};
use std::collections::{BTreeMap, BTreeSet};

/// The committed contents of every node that is up: where the shell's history starts.
pub(super) fn contents(cluster: &Cluster) -> BTreeMap<String, String> {
    (0..cluster.nodes())
        .filter_map(|node| cluster.data(node).ok())
        .flatten()
        .collect()
}

impl Shell {
    /// This shell's history so far: the contents it began with and every transaction its
    /// sessions ended, session by session in name order, each in the order it ended.
    /// Names are made unique (`snapshot@7#2` for a second snapshot at 7).
    pub fn history(&self) -> RegisterHistory {
        let mut taken = BTreeSet::new();
        let mut txns = Vec::new();
        for session in self.sessions.values() {
            for mut txn in session.history() {
                let base = txn.name.clone();
                let mut copy = 1;
                while !taken.insert(txn.name.clone()) {
                    copy += 1;
                    txn.name = format!("{base}#{copy}");
                }
                txns.push(txn);
            }
        }
        RegisterHistory {
            initial: self.history_start.clone(),
            txns,
        }
    }

    /// `CHECK`: prints the checker's verdict on [`Shell::history`].
    pub(super) fn check(&self, outcome: &mut Outcome) {
        let report = check_registers(&self.history());
        for line in report.verdict() {
            outcome.say(line);
        }
        let open: Vec<String> = (self.sessions.values())
            .filter(|session| session.is_open())
            .filter_map(|session| {
                let label = session.label()?;
                Some(format!("{label} (session {})", session.name()))
            })
            .collect();
        if !open.is_empty() {
            outcome.say(format!(
                "  still open, so not in the history yet: {}",
                open.join(", ")
            ));
        }
    }
}
