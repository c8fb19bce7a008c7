//! A node's committed data, multi-versioned: each key keeps its recent committed values
//! with the commit timestamps that wrote them, so a snapshot read at timestamp `ts` sees
//! the newest version at or below `ts`.
//!
//! Only committed writes reach the store; uncommitted ones live in a transaction's
//! workspace at the participant until COMMIT. A delete is a version too (a tombstone), so
//! a snapshot before it still sees the value.
//!
//! Each key keeps at most [`MAX_VERSIONS`] versions. A snapshot older than every version
//! kept of a key whose history was cut gets [`TooOld`] rather than a wrong answer.
//!
//! **After a checkpoint.** A checkpoint keeps only the latest version of each live key and
//! leaves deleted keys out, so a store recovered from one knows nothing of what happened
//! before it but those latest values. Its history is complete only from the checkpoint's
//! clock up (`complete_from`): every commit applied here at or below that clock is
//! summarized in the checkpoint (the clock is the cluster's counter when it was taken, at
//! or above every commit timestamp applied before, deletes included), and every commit
//! after it is in the log replayed after it, whatever its timestamp (a transaction
//! prepared at the checkpoint may commit after it below its clock: its version is
//! replayed). So a read below `complete_from` of a key with no version at or below it (a
//! key deleted then, or deleted and written again since) is [`TooOld`], not "not set":
//! the key may have had a value then. A restarted node thus answers every snapshot read
//! as it would have before, or refuses it. Without a checkpoint, recovery replays the
//! whole log through [`Store::apply`], in the order the node applied it, so it keeps and
//! cuts exactly the versions the node had.
//!
//! # Snapshot reads: the design
//!
//! Autocommit `GET`s and read-only transactions (`BEGIN READ ONLY`) read these versions
//! without locks. Read-write transactions keep strict two-phase locking; the two meet in
//! the timestamps, which come from each node's own logical clock
//! ([`crate::clock::Lamport`]), carried on every message and moved up by every receipt;
//! a client's commit carries the highest timestamp its client has been told:
//!
//! - a participant that prepares takes `prepare_ts` = its clock, after hearing the
//!   coordinator's clock with the PREPARE;
//! - the coordinator takes a `commit_ts` above its clock and every participant's
//!   `prepare_ts` (a one-phase commit takes one above its participant's clock), and
//!   every participant applies the writes at that `commit_ts`;
//! - a read at snapshot `read_ts` returns, at the key's owner, the newest version at or
//!   below `read_ts`, after waiting if the key has a prepared, undecided write whose
//!   `prepare_ts < read_ts` (its `commit_ts` may still fall at or below `read_ts`). The
//!   read moves the owner's clock up to `read_ts`, so a transaction that prepares there
//!   after the read takes a `prepare_ts >= read_ts` and commits above it: neither can
//!   change what the read saw. (With one shared counter this held because `read_ts` was
//!   taken from the counter; with a clock per node it holds because the read itself
//!   carries `read_ts` to the only node whose later prepares could matter to it.)
//!
//! **Which snapshot.** An autocommit `GET` (`ReadAt::AtLeast`) takes the newest value
//! that needs no wait: just below an undecided write of its key. A read-only transaction
//! takes one `read_ts` for all its reads, chosen by one node that asks every node for
//! its floor, the lowest `prepare_ts` at which a transaction undecided there may be
//! prepared (its coordinator answers for participants that have not voted or not
//! acknowledged, and a down node's last answer stands for it): the asking node's clock,
//! once every answer has moved it, capped at the lowest floor (`node::floors`). So none
//! of its reads waits for a transaction undecided when the snapshot was chosen, and a
//! transaction crashed in doubt does not block readers: they read below it. An answer
//! leaves only once the outcomes it reflects are durable, so a crash cannot make a
//! transaction undecided again below a snapshot already chosen. The exceptions, a
//! transaction that prepares while the round is under way and a node down through
//! every round, may make a read wait; `node::floors` lists them. The session's own
//! commits are the other: a session never reads below its last commit
//! (`Client::seen`), so it always sees its own writes, and if that commit is newer than
//! an undecided write of the key, the read waits for the outcome. (Reads do not move
//! the session forward: two autocommit reads of different keys are two snapshots,
//! possibly the second older than the first. A read-only transaction is the consistent
//! view of several keys.)
//!
//! **No partial transactions.** A transaction's writes carry one `commit_ts` on every
//! participant. A reader at `read_ts >= commit_ts` finds them applied at each owner or
//! waits there until they are (the transaction is prepared there with a `prepare_ts`
//! below it); a reader below finds none of them.
//!
//! **Why it stays serializable.** Locking transactions are serializable by strict 2PL.
//! Every lock, read locks at READ-ONLY voters included, is held until the outcome reaches
//! the participant, and the outcome carries a `commit_ts` chosen before it was sent; a
//! transaction that conflicts later takes its lock after that, and its own `commit_ts`
//! after that. So commit timestamps follow the serialization order of every conflict
//! (write-read, write-write and read-write alike): the later transaction's participant
//! heard the earlier `commit_ts` with the outcome before it granted the lock, so its
//! clock, and the later `prepare_ts` and `commit_ts`, lie above it. A snapshot, being every
//! transaction with `commit_ts <= read_ts`, is a prefix of a serial order: the reader
//! fits in it at `read_ts`. (Releasing read locks at PREPARE, which two-phase locking
//! alone would allow, breaks this: a writer of a key read by T could commit below T's
//! later `commit_ts`, and a snapshot between them would see the writer but not T.)
//!
//! **Restarts.** A restarted participant has lost the read locks of the transactions that
//! voted there (the `Prepare` record holds no reads; a READ-ONLY vote logs nothing), but
//! it serves no locked operation until every coordinator has aborted those still
//! collecting votes (see `participant`, "Restarts"), so nothing can commit below them a
//! write of a key they read.
//!
//! **Limits.** Versions are bounded per key, so
//! a long read-only transaction may be told to retry ([`TooOld`]), never given a wrong
//! value; so may one whose snapshot predates a checkpoint its node restarted from. While
//! a transaction stays in doubt (its coordinator down), new snapshots stay below it, so
//! they fall further behind, and a key rewritten often since may be refused until it is
//! settled.

use crate::keyrange::KeyRange;
use crate::types::{Timestamp, Write};
use crate::wal::Snapshot;
use std::collections::BTreeMap;

/// How many versions of a key are kept for snapshot reads.
pub const MAX_VERSIONS: usize = 8;

/// A snapshot read asked for a version older than the store keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooOld {
    /// The oldest timestamp the key can still be read at.
    pub oldest: Timestamp,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Versions {
    /// Oldest first; `None` is a delete.
    versions: Vec<(Timestamp, Option<String>)>,
    /// Whether older versions were dropped (or never known, after a checkpoint).
    cut: bool,
}

/// The committed key-value data of one node.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Store {
    data: BTreeMap<String, Versions>,
    /// Keys whose newest version is not a delete.
    live: usize,
    /// Reads at or above this timestamp see every commit applied here (0 for a fresh
    /// store, the checkpoint's clock after recovery from one); below it, a key without a
    /// version at or below the read is unknown, not unset.
    complete_from: Timestamp,
}

impl Store {
    /// Rebuilds the store from a checkpoint's data (latest versions only), complete from
    /// the checkpoint's clock up.
    pub fn from_snapshot(snapshot: &Snapshot) -> Store {
        let data: BTreeMap<String, Versions> = snapshot
            .data
            .iter()
            .map(|(key, value, ts)| {
                let versions = Versions {
                    versions: vec![(*ts, Some(value.clone()))],
                    cut: true,
                };
                (key.clone(), versions)
            })
            .collect();
        let live = data.len();
        Store {
            data,
            live,
            complete_from: snapshot.clock,
        }
    }

    /// The latest committed value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        let versions = self.data.get(key)?;
        versions.versions.last()?.1.as_deref()
    }

    /// The value of `key` in the snapshot at `ts`, or [`TooOld`] if this store no longer
    /// knows it (versions cut, or before the checkpoint it was recovered from).
    pub fn get_at(&self, key: &str, ts: Timestamp) -> Result<Option<&str>, TooOld> {
        let versions = self.data.get(key);
        let newest_below =
            versions.and_then(|versions| versions.versions.iter().rev().find(|v| v.0 <= ts));
        if let Some((_, value)) = newest_below {
            return Ok(value.as_deref());
        }
        match versions {
            Some(versions) if versions.cut => Err(TooOld {
                oldest: versions.versions.first().map_or(0, |v| v.0),
            }),
            _ if ts < self.complete_from => Err(TooOld {
                oldest: self.complete_from,
            }),
            _ => Ok(None),
        }
    }

    /// The latest committed value of every live key in `range`, in key order.
    pub fn scan(&self, range: &KeyRange) -> Vec<(String, String)> {
        (range.entries(&self.data))
            .filter_map(|(key, versions)| {
                let value = versions.versions.last()?.1.as_ref()?;
                Some((key.clone(), value.clone()))
            })
            .collect()
    }

    /// Every key in `range` with its value in the snapshot at `ts`, in key order, or the
    /// first key whose value there this store no longer knows (see [`Store::get_at`]).
    /// A key this store has never seen cannot be too old unless the whole store is.
    pub fn scan_at(
        &self,
        range: &KeyRange,
        ts: Timestamp,
    ) -> Result<Vec<(String, String)>, (String, TooOld)> {
        if ts < self.complete_from {
            let oldest = self.complete_from;
            return Err((range.to_string(), TooOld { oldest }));
        }
        let mut rows = Vec::new();
        for (key, _) in range.entries(&self.data) {
            match self.get_at(key, ts) {
                Ok(Some(value)) => rows.push((key.clone(), value.to_string())),
                Ok(None) => {}
                Err(too_old) => return Err((key.clone(), too_old)),
            }
        }
        Ok(rows)
    }

    /// Applies a committed transaction's writes at `commit_ts`.
    pub fn apply(&mut self, writes: &[Write], commit_ts: Timestamp) {
        for (key, value) in writes {
            let versions = self.data.entry(key.clone()).or_default();
            let was_live = versions.versions.last().is_some_and(|v| v.1.is_some());
            versions.versions.push((commit_ts, value.clone()));
            if versions.versions.len() > MAX_VERSIONS {
                versions.versions.remove(0);
                versions.cut = true;
            }
            match (was_live, value.is_some()) {
                (false, true) => self.live += 1,
                (true, false) => self.live -= 1,
                _ => {}
            }
        }
    }

    /// The latest data as a checkpoint stores it, sorted by key, without deleted keys.
    pub fn to_snapshot_data(&self) -> Vec<(String, String, Timestamp)> {
        self.iter_versions()
            .map(|(key, value, ts)| (key.to_string(), value.to_string(), ts))
            .collect()
    }

    fn iter_versions(&self) -> impl Iterator<Item = (&str, &str, Timestamp)> {
        self.data.iter().filter_map(|(key, versions)| {
            let (ts, value) = versions.versions.last()?;
            Some((key.as_str(), value.as_deref()?, *ts))
        })
    }

    /// Every live key and its latest value, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.iter_versions().map(|(key, value, _)| (key, value))
    }

    /// The number of live keys.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether the store holds no live key.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &str, value: &str) -> Write {
        (key.to_string(), Some(value.to_string()))
    }

    #[test]
    fn snapshots_see_the_newest_version_at_or_below_them() {
        let mut store = Store::default();
        store.apply(&[put("x", "1")], 5);
        store.apply(&[put("x", "2")], 9);
        store.apply(&[("x".to_string(), None)], 12);
        assert_eq!(store.get_at("x", 4), Ok(None));
        assert_eq!(store.get_at("x", 5), Ok(Some("1")));
        assert_eq!(store.get_at("x", 11), Ok(Some("2")));
        assert_eq!(store.get_at("x", 12), Ok(None));
        assert_eq!(store.get("x"), None);
        assert_eq!(store.len(), 0);
    }

    #[test]
    fn cut_history_is_too_old_rather_than_wrong() {
        let mut store = Store::default();
        for ts in 1..=(MAX_VERSIONS as u64 + 2) {
            store.apply(&[put("x", &ts.to_string())], ts * 10);
        }
        assert_eq!(store.get_at("x", 15), Err(TooOld { oldest: 30 }));
        assert_eq!(store.get_at("x", 35), Ok(Some("3")));
        let checkpointed = Store::from_snapshot(&Snapshot {
            data: store.to_snapshot_data(),
            ..Default::default()
        });
        assert_eq!(checkpointed.get("x"), Some("10"));
        assert!(checkpointed.get_at("x", 50).is_err());
        assert_eq!(checkpointed.len(), 1);
    }

    #[test]
    fn before_a_checkpoint_a_key_without_a_version_is_unknown_not_unset() {
        let mut store = Store::default();
        store.apply(&[put("x", "1")], 2);
        store.apply(&[("x".to_string(), None)], 5);
        let mut recovered = Store::from_snapshot(&Snapshot {
            data: store.to_snapshot_data(),
            clock: 6,
            ..Default::default()
        });
        assert_eq!(recovered.get_at("x", 3), Err(TooOld { oldest: 6 }));
        assert_eq!(recovered.get_at("x", 6), Ok(None));
        recovered.apply(&[put("x", "2")], 8);
        assert_eq!(recovered.get_at("x", 4), Err(TooOld { oldest: 6 }));
        assert_eq!(recovered.get_at("x", 7), Ok(None));
        assert_eq!(recovered.get_at("x", 8), Ok(Some("2")));
    }
}
