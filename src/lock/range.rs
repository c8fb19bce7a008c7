//! Key-range locks: what makes a range read (`SCAN`) repeatable, phantoms included.
//!
//! Locking the keys a scan found is not enough. A transaction that scans the prefix `p`
//! and finds `p1` and `p2` holds shared locks on them, but nothing stops another
//! transaction from inserting `p3` and committing; scanning again shows a row that was
//! not there, a *phantom*, and two transactions that each scan a range and then insert
//! into it (each deciding from what it saw) form a cycle of read-write anti-dependencies
//! over the range's predicate that no key lock sees (Adya's G2 over a predicate).
//!
//! So a scan takes a shared lock on the range itself, the *predicate*, in this table
//! beside the key locks. The rules, both ways:
//! - an exclusive key lock (a write, a delete, a read for update) of a key inside a range
//!   that another transaction holds waits until that transaction ends, whether or not
//!   the key exists yet: an insert waits, a delete waits;
//! - a scan waits while another transaction holds an exclusive lock on any key inside
//!   its range (it is about to write that key, so what the scan would read is not
//!   settled).
//!
//! Shared key locks (plain reads) and other scans never conflict with a range lock. A
//! transaction's own locks never block it: it may write inside the range it scanned.
//! This is the equivalent of next-key locking (which locks each key found and the gap
//! after it) for a store that keeps a node's keys in one ordered map: the range is the
//! union of those gaps, and locking it directly needs no sentinel for the gap after the
//! last key.
//!
//! Waits are visible: a write blocked by a range lock reports the range's holders as its
//! blockers, and a waiting scan reports the exclusive holders inside it, so the deadlock
//! detector sees every edge (two scan-then-insert transactions over one range deadlock,
//! and one of them is chosen as the victim; serializability by abort).
//!
//! Range locks are released with the transaction's key locks (`LockTable::release_all`),
//! at the outcome, as shared key locks are: through PREPARE, as strict two-phase locking
//! and the snapshot timestamps need (see `participant`). A restarted participant
//! rebuilds only the exclusive locks of its in-doubt transactions, not shared locks,
//! and so not range locks: the `Prepare` record holds no reads. The restart handshake
//! (`participant::rejoin`) is what keeps the lost read locks of a prepared transaction
//! harmless, and the argument there is about a read lock of any kind: no transaction
//! locks anything at the restarted node until every coordinator has aborted the
//! transactions whose votes from the old incarnation it counted, so a writer that would
//! have waited for the lost range lock can only commit after (above) the transaction
//! that held it.
//!
//! # The `no-range-locks` mistake
//!
//! With `SET mistake no-range-locks` a scan locks only the keys it found
//! ([`ScanLock::FoundKeys`]): it waits for writers of those keys and then holds shared
//! locks on them alone, and an insert into the range does not wait. That is the phantom
//! the lesson `phantoms` shows.
//!
//! # Limits
//!
//! A scan does not queue behind writers that are waiting for keys in its range, so a
//! stream of scans can keep an insert waiting (writers are not starved by readers of one
//! key, but can be by scans). Overlapping ranges of one transaction are kept separately,
//! not merged. A range's conflicts are found by walking the locked keys inside it, so a
//! wide range over a busy table costs a walk of those keys per check.

use super::{Entry, LockMode, LockTable, Wait};
use crate::keyrange::KeyRange;
use crate::types::TxnId;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// What a scan locks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScanLock {
    /// The range itself (a predicate lock), so that inserts into it wait.
    Range(KeyRange),
    /// Only these keys, the ones the scan found in `range` (the `no-range-locks`
    /// mistake): each gets a shared key lock, and the range stays open to inserts.
    FoundKeys {
        /// The range scanned, for showing the wait.
        range: KeyRange,
        /// The keys found in it when the scan asked.
        keys: Vec<String>,
    },
}

impl ScanLock {
    /// The range the scan reads.
    pub fn range(&self) -> &KeyRange {
        match self {
            ScanLock::Range(range) | ScanLock::FoundKeys { range, .. } => range,
        }
    }
}

/// The range locks of one node: held ones, and scans waiting for theirs.
#[derive(Clone, Debug, Default)]
pub(super) struct RangeLocks {
    /// The ranges each transaction holds (shared).
    held: BTreeMap<TxnId, BTreeSet<KeyRange>>,
    /// Scans waiting, in arrival order.
    waiting: VecDeque<(TxnId, ScanLock)>,
}

impl RangeLocks {
    /// The transactions other than `tid` holding a range that contains `key`, sorted: the
    /// ones an exclusive lock of `key` for `tid` must wait for.
    pub(super) fn covering(&self, tid: TxnId, key: &str) -> Vec<TxnId> {
        (self.held.iter())
            .filter(|(holder, ranges)| **holder != tid && ranges.iter().any(|r| r.contains(key)))
            .map(|(holder, _)| *holder)
            .collect()
    }

    /// Whether no range is held or waited for.
    pub(super) fn is_empty(&self) -> bool {
        self.held.is_empty() && self.waiting.is_empty()
    }

    /// Whether a scan is waiting.
    pub(super) fn has_waiters(&self) -> bool {
        !self.waiting.is_empty()
    }
}

/// The transactions other than `tid` holding an exclusive lock on a key `lock` covers,
/// sorted: the ones the scan must wait for.
fn scan_blockers(entries: &BTreeMap<String, Entry>, tid: TxnId, lock: &ScanLock) -> Vec<TxnId> {
    let exclusive = |entry: &Entry| -> Vec<TxnId> {
        (entry.holders.iter())
            .filter(|(holder, mode)| **holder != tid && **mode == LockMode::Exclusive)
            .map(|(holder, _)| *holder)
            .collect()
    };
    let blockers: BTreeSet<TxnId> = match lock {
        ScanLock::Range(range) => (range.entries(entries))
            .flat_map(|(_, entry)| exclusive(entry))
            .collect(),
        ScanLock::FoundKeys { keys, .. } => (keys.iter())
            .filter_map(|key| entries.get(key))
            .flat_map(exclusive)
            .collect(),
    };
    blockers.into_iter().collect()
}

impl LockTable {
    /// Requests the locks of a scan for `tid`: granted at once unless another
    /// transaction holds an exclusive lock on a key inside (see the module doc).
    pub fn acquire_scan(&mut self, tid: TxnId, lock: ScanLock) -> super::Acquire {
        assert!(
            !self.ranges.waiting.iter().any(|(waiter, _)| *waiter == tid),
            "{tid} already waits for a range"
        );
        let blockers = scan_blockers(&self.entries, tid, &lock);
        if blockers.is_empty() {
            self.hold_scan(tid, lock);
            return super::Acquire::Granted;
        }
        self.ranges.waiting.push_back((tid, lock));
        super::Acquire::Waiting { blockers }
    }

    fn hold_scan(&mut self, tid: TxnId, lock: ScanLock) {
        match lock {
            ScanLock::Range(range) => {
                self.ranges.held.entry(tid).or_default().insert(range);
            }
            ScanLock::FoundKeys { keys, .. } => {
                // No other transaction holds any of them exclusively, so a shared lock
                // is compatible with every holder.
                for key in keys {
                    let entry = self.entries.entry(key.clone()).or_default();
                    entry.holders.entry(tid).or_insert(LockMode::Shared);
                    self.keys_of.entry(tid).or_default().insert(key);
                }
            }
        }
    }

    /// Releases `tid`'s ranges and withdraws its waiting scan, then grants what that
    /// and the key locks released before it allow: writes inside the ranges, then the
    /// waiting scans that no exclusive lock blocks now. Appends the grants as
    /// `(tid, key or range)`.
    pub(super) fn release_ranges(&mut self, tid: TxnId, granted: &mut Vec<(TxnId, String)>) {
        self.ranges.waiting.retain(|(waiter, _)| *waiter != tid);
        let released = self.ranges.held.remove(&tid).unwrap_or_default();
        let unblocked: BTreeSet<String> = (released.iter())
            .flat_map(|range| range.entries(&self.entries))
            .filter(|(_, entry)| !entry.waiters.is_empty())
            .map(|(key, _)| key.clone())
            .collect();
        for key in unblocked {
            granted.extend(self.grant_waiters(&key));
        }
        let mut still_waiting = VecDeque::new();
        while let Some((waiter, lock)) = self.ranges.waiting.pop_front() {
            if scan_blockers(&self.entries, waiter, &lock).is_empty() {
                granted.push((waiter, lock.range().to_string()));
                self.hold_scan(waiter, lock);
            } else {
                still_waiting.push_back((waiter, lock));
            }
        }
        self.ranges.waiting = still_waiting;
    }

    /// The waits of the scans queued, for the deadlock detector.
    pub(super) fn scan_waits(&self, waits: &mut Vec<Wait>) {
        for (tid, lock) in &self.ranges.waiting {
            waits.push(Wait {
                tid: *tid,
                key: lock.range().to_string(),
                mode: LockMode::Shared,
                blockers: scan_blockers(&self.entries, *tid, lock),
                began: 0,
            });
        }
    }

    /// The held and requested ranges, as `SHOW LOCKS` lists them after the keys: one
    /// entry per range, named as `KeyRange` shows it.
    pub(super) fn range_snapshot(&self) -> Vec<super::KeyLocks> {
        let mut by_range: BTreeMap<String, super::KeyLocks> = BTreeMap::new();
        for (tid, ranges) in &self.ranges.held {
            for range in ranges {
                let key = range.to_string();
                let entry = by_range.entry(key.clone()).or_insert_with(|| empty(key));
                entry.holders.push((*tid, LockMode::Shared));
            }
        }
        for (tid, lock) in &self.ranges.waiting {
            let key = lock.range().to_string();
            let entry = by_range.entry(key.clone()).or_insert_with(|| empty(key));
            entry.waiters.push((*tid, LockMode::Shared));
        }
        by_range.into_values().collect()
    }
}

fn empty(key: String) -> super::KeyLocks {
    super::KeyLocks {
        key,
        holders: Vec::new(),
        waiters: Vec::new(),
        range: true,
    }
}

#[cfg(test)]
mod tests {
    use super::super::Acquire;
    use super::*;
    use LockMode::{Exclusive, Shared};

    const T1: TxnId = TxnId(1);
    const T2: TxnId = TxnId(2);
    const T3: TxnId = TxnId(3);

    fn prefix(p: &str) -> ScanLock {
        ScanLock::Range(KeyRange::Prefix(p.into()))
    }

    fn waits_for(blockers: &[TxnId]) -> Acquire {
        Acquire::Waiting {
            blockers: blockers.to_vec(),
        }
    }

    #[test]
    fn an_insert_into_a_scanned_range_waits_for_the_scanner() {
        let mut table = LockTable::default();
        assert_eq!(table.acquire_scan(T1, prefix("p")), Acquire::Granted);
        // A key that does not exist yet: the insert waits all the same.
        assert_eq!(table.acquire(T2, "p3", Exclusive), waits_for(&[T1]));
        // Outside the range, and plain reads inside it, do not wait.
        assert_eq!(table.acquire(T3, "q1", Exclusive), Acquire::Granted);
        assert_eq!(table.acquire(T3, "p1", Shared), Acquire::Granted);
        let waits = table.waits();
        assert_eq!(waits.len(), 1);
        assert_eq!((waits[0].tid, &waits[0].blockers[..]), (T2, &[T1][..]));
        assert_eq!(table.release_all(T1), vec![(T2, "p3".to_string())]);
        let p3 = table.snapshot().into_iter().find(|locks| locks.key == "p3");
        assert_eq!(p3.map(|locks| locks.holders), Some(vec![(T2, Exclusive)]));
    }

    #[test]
    fn a_scan_waits_for_an_exclusive_lock_inside_its_range() {
        let mut table = LockTable::default();
        table.acquire(T2, "p2", Exclusive);
        table.acquire(T3, "p1", Shared);
        assert_eq!(table.acquire_scan(T1, prefix("p")), waits_for(&[T2]));
        let waits = table.waits();
        assert_eq!(waits.len(), 1);
        assert_eq!(waits[0].key, "p*");
        assert_eq!(waits[0].blockers, vec![T2]);
        assert_eq!(table.release_all(T2), vec![(T1, "p*".to_string())]);
        // Now the range is T1's: T3, which only read p1, waits to write it.
        assert_eq!(table.acquire(T3, "p1", Exclusive), waits_for(&[T1]));
    }

    #[test]
    fn a_transaction_writes_inside_its_own_range() {
        let mut table = LockTable::default();
        let between = ScanLock::Range(KeyRange::Between {
            from: "a".into(),
            to: "c".into(),
        });
        assert_eq!(table.acquire_scan(T1, between), Acquire::Granted);
        assert_eq!(table.acquire(T1, "b", Exclusive), Acquire::Granted);
        // TO is included; just past it is not.
        assert_eq!(table.acquire(T2, "c", Exclusive), waits_for(&[T1]));
        assert_eq!(table.release_all(T2), vec![]);
        assert_eq!(table.acquire(T2, "ca", Exclusive), Acquire::Granted);
    }

    #[test]
    fn two_scanners_that_insert_into_their_range_deadlock_visibly() {
        let mut table = LockTable::default();
        assert_eq!(table.acquire_scan(T1, prefix("p")), Acquire::Granted);
        assert_eq!(table.acquire_scan(T2, prefix("p")), Acquire::Granted);
        assert_eq!(table.acquire(T1, "p1", Exclusive), waits_for(&[T2]));
        assert_eq!(table.acquire(T2, "p2", Exclusive), waits_for(&[T1]));
        let edges: Vec<(TxnId, Vec<TxnId>)> = (table.waits().into_iter())
            .map(|wait| (wait.tid, wait.blockers))
            .collect();
        assert_eq!(edges, vec![(T1, vec![T2]), (T2, vec![T1])]);
        // The victim's end lets the other insert.
        assert_eq!(table.release_all(T2), vec![(T1, "p1".to_string())]);
        table.release_all(T1);
        assert!(table.is_empty() && !table.has_waiters());
    }

    #[test]
    fn a_write_queued_behind_a_key_holder_still_waits_for_the_range() {
        let mut table = LockTable::default();
        table.acquire(T3, "p1", Exclusive);
        assert_eq!(table.acquire(T2, "p1", Exclusive), waits_for(&[T3]));
        // T1's scan waits for T3; once T3 ends, the write is not granted past the scan
        // by accident: the queue hands p1 to T2 first, so the scan waits for T2.
        assert_eq!(table.acquire_scan(T1, prefix("p")), waits_for(&[T3]));
        assert_eq!(table.release_all(T3), vec![(T2, "p1".to_string())]);
        assert_eq!(table.waits()[0].blockers, vec![T2]);
        assert_eq!(table.release_all(T2), vec![(T1, "p*".to_string())]);
    }

    #[test]
    fn found_keys_only_leave_the_range_open_to_inserts() {
        let mut table = LockTable::default();
        let found = ScanLock::FoundKeys {
            range: KeyRange::Prefix("p".into()),
            keys: vec!["p1".into()],
        };
        assert_eq!(table.acquire_scan(T1, found), Acquire::Granted);
        // The phantom: an insert does not wait; a write of a key found does.
        assert_eq!(table.acquire(T2, "p2", Exclusive), Acquire::Granted);
        assert_eq!(table.acquire(T3, "p1", Exclusive), waits_for(&[T1]));
        assert_eq!(table.release_all(T1), vec![(T3, "p1".to_string())]);
    }

    #[test]
    fn show_locks_lists_ranges_after_keys() {
        let mut table = LockTable::default();
        table.acquire_scan(T1, prefix("p"));
        table.acquire(T2, "p1", Exclusive);
        let names: Vec<String> = table.snapshot().into_iter().map(|l| l.key).collect();
        assert_eq!(names, ["p1", "p*"]);
        table.release_all(T1);
        table.release_all(T2);
        assert!(table.is_empty());
    }
}
