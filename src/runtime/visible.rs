//! Which log record a value read depends on: the rule that lets a lock pass to the next
//! transaction before the fsync of the outcome that released it (controlled lock
//! violation), and that keeps snapshot reads to durable commits.
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
//! - **A read under a lock is answered at once** (a `GET`, `GET ... FOR UPDATE` or
//!   `SCAN` of a read-write transaction), even when the value it returns was made
//!   visible by a one-phase commit still waiting for its fsync. This is Graefe's
//!   controlled lock violation in full: the reader `T2` may go on, write and commit
//!   behind the earlier `T1`, and both commits share one fsync. What keeps it safe is
//!   that nothing `T2` *acknowledges* can overtake `T1`'s record: `T2`'s own outcome
//!   here is a record after `T1`'s in the log, or a message (a vote, READ-ONLY too, a
//!   one-phase outcome) that waits for every barrier record appended before it (the
//!   outbox's rule); across nodes the dependency travels with that vote (see the
//!   participant's module doc). So no client is told of a commit that a crash then
//!   loses, and no transaction that read `T1`'s write survives a crash that loses `T1`.
//! - **A snapshot read waits** (`BEGIN READ ONLY`, autocommit `GET`): a reply carrying
//!   a snapshot's value or rows waits for the records that made what it carries
//!   visible. [`Visibility`] remembers, for each key, the end LSN of the newest record
//!   not yet known durable that changed it (a value written or a key deleted); a key
//!   waits for its entry, a range for the newest entry of every key in it (a row that a
//!   deletion removed from the range counts too). A heuristic commit's record names no
//!   keys (its writes are in its `Prepare`), so every snapshot reply waits for it. A
//!   snapshot read has no commit to hold back (it takes no lock and logs nothing), so
//!   its answer itself must not reveal a commit a crash may lose.
//!
//! Precise rather than "the newest one-phase commit": a snapshot reader of a durable
//! key does not queue behind a hot key's unrelated commit.
//!
//! # Limits
//!
//! The price of answering a locked read at once: a client may be shown a value that a
//! crash then loses, in a transaction that the same crash then aborts (its locks and its
//! work on that node are gone; it can no longer commit). That is the isolation of strict
//! two-phase locking for every transaction that commits, and a dirty read for one that
//! cannot: `history::vanished_reads` checks exactly that line (no *surviving* reader of
//! a lost value). The rule ties a value to the records of this node only: a value read
//! here depends on no other node's log, because a transaction's writes become visible
//! on a node only through an outcome record appended on that node.

use crate::keyrange::KeyRange;
use crate::message::{Answer, Reply, Request};
use crate::wal::Record;
use std::collections::BTreeMap;

/// What a snapshot request reads, to tag its answer with the records it depends on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Reads {
    /// One key.
    Key(String),
    /// A range (a scan).
    Range(KeyRange),
}

impl Reads {
    /// What `request` reads, if it reads data; a request handed on with its first
    /// operation reads what that operation reads.
    pub fn of(request: &Request) -> Option<Reads> {
        match request {
            Request::SnapshotRead { key, .. } => Some(Reads::Key(key.clone())),
            Request::SnapshotScan { range, .. } => Some(Reads::Range(range.clone())),
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
    /// The end LSN of the newest record of either kind.
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

    /// The LSN a reply carrying data must wait for: for a snapshot's `reads`, the
    /// records that made it visible; for a read under a lock (`None`), nothing.
    pub fn lsn(&self, reads: Option<&Reads>) -> u64 {
        let own = match reads {
            Some(Reads::Key(key)) => self.keys.get(key).copied().unwrap_or(0),
            Some(Reads::Range(range)) => (range.entries(&self.keys))
                .map(|(_, lsn)| *lsn)
                .max()
                .unwrap_or(0),
            None => return 0,
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
        assert_eq!(
            visibility.lsn(None),
            0,
            "a read under a lock waits for nothing"
        );
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
    }

    #[test]
    fn only_snapshot_requests_are_tagged() {
        let snapshot = Request::SnapshotRead {
            key: "a".into(),
            at: crate::message::ReadAt::Exactly(3),
        };
        assert_eq!(Reads::of(&snapshot), Some(Reads::Key("a".into())));
        let locked = Request::Read {
            tid: TxnId(1),
            key: "a".into(),
            mode: crate::types::LockMode::Exclusive,
            first: true,
            began: 1,
        };
        assert_eq!(
            Reads::of(&locked),
            None,
            "a read under a lock is answered at once"
        );
        let begun = Request::BeginAnd {
            owner: 0,
            then: Box::new(locked),
            began: 1,
        };
        assert_eq!(Reads::of(&begun), None);
    }
}
