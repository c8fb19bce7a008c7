//! Which log record a value read depends on: the rule that lets a lock pass to the next
//! transaction before the fsync of the outcome that released it (controlled lock
//! violation), without letting any client see a value that a crash could still erase.
//!
//! # Why a value can be visible before it is durable
//!
//! A participant applies a transaction's writes and releases its locks as soon as the
//! outcome record is *appended* (`participant::outcome`): the next waiter for the lock is
//! granted at once, in the same batch, before the fsync. Of the outcome records only two
//! make writes visible whose outcome is durable nowhere else: a `OnePhaseCommit` (the
//! record is the decision) and an operator's heuristic commit (`Heuristic`). A 2PC
//! participant's `Commit` makes visible writes whose outcome is already durable in the
//! coordinator's `Decision`: a crash before its fsync leaves the transaction in doubt
//! here, its write locks taken again at recovery, and the inquiry brings COMMIT back.
//!
//! # The rule
//!
//! [`Visibility`] remembers, for each key, the end LSN of the newest record not yet known
//! durable that changed it (a value written or a key deleted). A reply carrying data,
//! a value read under a lock, in a snapshot, or the rows of a scan, waits for the
//! records that made what it carries visible: for a key, that key's entry; for a
//! range, the newest entry of every key in the range (a row that a deletion removed
//! from the range counts too). A heuristic commit's record names no keys (its writes
//! are in its `Prepare`), so every value reply waits for it.
//!
//! Precise rather than "the newest one-phase commit": a reader of a durable key does not
//! queue behind a hot key's unrelated commit.
//!
//! Everything else that could reveal a commit waits for every barrier record appended
//! before it (the outbox's rule): a vote, READ-ONLY included, a one-phase outcome, an
//! inquiry's answer, an error. So the next transaction, which took the released lock,
//! can tell nobody anything that depends on the earlier commit before its fsync.
//!
//! # Limits
//!
//! The rule ties a value to the records of this node only: a value read here depends on
//! no other node's log, because a transaction's writes become visible on a node only
//! through an outcome record appended on that node. It does not let a read-modify-write
//! chain on one key share fsyncs: the next incrementer must see the value before it can
//! write, and it sees it only once durable (see the participant's module doc).

use crate::keyrange::KeyRange;
use crate::message::{Answer, Reply, Request};
use crate::wal::Record;
use std::collections::BTreeMap;

/// What a request reads, to tag its answer with the records it depends on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Reads {
    /// One key (a read under a lock, or in a snapshot).
    Key(String),
    /// A range (a scan, under a range lock or in a snapshot).
    Range(KeyRange),
}

impl Reads {
    /// What `request` reads, if it reads data; a request handed on with its first
    /// operation reads what that operation reads.
    pub fn of(request: &Request) -> Option<Reads> {
        match request {
            Request::Read { key, .. } | Request::SnapshotRead { key, .. } => {
                Some(Reads::Key(key.clone()))
            }
            Request::Scan { range, .. } | Request::SnapshotScan { range, .. } => {
                Some(Reads::Range(range.clone()))
            }
            Request::BeginAnd { then, .. } => Reads::of(then),
            _ => None,
        }
    }
}

/// Per key, the newest record not yet known durable that made its value visible.
#[derive(Clone, Debug, Default, Hash)]
pub struct Visibility {
    /// The end LSN of the newest one-phase commit that wrote (or deleted) the key, while
    /// it may not be durable.
    keys: BTreeMap<String, u64>,
    /// The end LSN of the newest heuristic commit, whose writes its record does not name.
    every_key: u64,
    /// The end LSN of the newest record of either kind: the tag of a value whose request
    /// is not known (none today; a safe default).
    newest: u64,
}

impl Visibility {
    /// Notes `record`, just appended, ending at `end`.
    pub fn appended(&mut self, record: &Record, end: u64) {
        match record {
            Record::OnePhaseCommit { writes, .. } if !writes.is_empty() => {
                for (key, _) in writes {
                    self.keys.insert(key.clone(), end);
                }
                self.newest = end;
            }
            Record::Heuristic { commit: true, .. } => {
                self.every_key = end;
                self.newest = end;
            }
            _ => {}
        }
    }

    /// The log is durable through `synced`: forgets what needs no wait any more.
    pub fn synced(&mut self, synced: u64) {
        if self.newest <= synced {
            self.keys.clear();
        } else {
            self.keys.retain(|_, lsn| *lsn > synced);
        }
    }

    /// The LSN a reply carrying the data `reads` names must wait for.
    pub fn lsn(&self, reads: Option<&Reads>) -> u64 {
        let own = match reads {
            Some(Reads::Key(key)) => self.keys.get(key).copied().unwrap_or(0),
            Some(Reads::Range(range)) => (range.entries(&self.keys))
                .map(|(_, lsn)| *lsn)
                .max()
                .unwrap_or(0),
            None => self.newest,
        };
        own.max(self.every_key)
    }
}

/// Whether `reply` carries data read from the store (a value, a snapshot's value, rows):
/// the replies [`Visibility`] tags.
pub fn carries_data(reply: &Reply) -> bool {
    matches!(
        reply,
        Reply::Done(Ok(Answer::Value(_)
            | Answer::Snapshot { .. }
            | Answer::Rows(_)))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::TxnId;

    fn one_phase(keys: &[&str]) -> Record {
        Record::OnePhaseCommit {
            tid: TxnId(1),
            writes: keys.iter().map(|k| (k.to_string(), None)).collect(),
            commit_ts: 1,
        }
    }

    #[test]
    fn a_value_waits_for_the_record_that_wrote_its_key_only() {
        let mut visibility = Visibility::default();
        visibility.appended(&one_phase(&["a"]), 10);
        visibility.appended(&one_phase(&["b"]), 20);
        let key = |k: &str| Some(Reads::Key(k.to_string()));
        assert_eq!(visibility.lsn(key("a").as_ref()), 10);
        assert_eq!(visibility.lsn(key("b").as_ref()), 20);
        assert_eq!(visibility.lsn(key("c").as_ref()), 0, "c is durable");
        assert_eq!(visibility.lsn(None), 20, "unknown: the newest");
        visibility.synced(10);
        assert_eq!(visibility.lsn(key("a").as_ref()), 0);
        assert_eq!(visibility.lsn(key("b").as_ref()), 20);
        visibility.synced(20);
        assert_eq!(visibility.lsn(key("b").as_ref()), 0);
    }

    #[test]
    fn a_scan_waits_for_every_key_in_its_range_and_a_heuristic_commit_for_all() {
        let mut visibility = Visibility::default();
        visibility.appended(&one_phase(&["p1", "q"]), 10);
        visibility.appended(&one_phase(&["p2"]), 30);
        let range = Reads::Range(KeyRange::Prefix("p".into()));
        assert_eq!(visibility.lsn(Some(&range)), 30);
        let elsewhere = Reads::Range(KeyRange::Prefix("x".into()));
        assert_eq!(visibility.lsn(Some(&elsewhere)), 0);
        let heuristic = Record::Heuristic {
            tid: TxnId(2),
            commit: true,
            commit_ts: 5,
        };
        visibility.appended(&heuristic, 40);
        assert_eq!(visibility.lsn(Some(&elsewhere)), 40);
    }

    #[test]
    fn records_that_reveal_no_value_are_not_waited_for() {
        let mut visibility = Visibility::default();
        let commit = Record::Commit {
            tid: TxnId(3),
            commit_ts: 4,
        };
        visibility.appended(&commit, 10);
        visibility.appended(&one_phase(&[]), 20);
        assert_eq!(visibility.lsn(Some(&Reads::Key("a".into()))), 0);
        assert_eq!(visibility.lsn(None), 0);
    }
}
