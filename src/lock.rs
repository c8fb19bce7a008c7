//! The lock table of one participant: strict two-phase locking on keys.
//!
//! A read takes a shared lock, a write an exclusive one, and so does a read for update
//! (`GET k FOR UPDATE`: a read that means to write next); a transaction holding the only
//! shared lock on a key upgrades it in place. Two transactions that both hold a shared lock
//! and both want to upgrade wait for each other, a deadlock; reading for update avoids it,
//! since the second reader already waits at its read. A request that conflicts waits in the key's
//! FIFO queue. A waiter is blocked by the holders it conflicts with and by the conflicting
//! requests queued ahead of it (so a writer is not starved by a stream of readers); the
//! blockers are reported so the cluster's deadlock detector can see the wait-for graph.
//!
//! The table is pure data: it never blocks a thread. Waiting is a queued request that the
//! node answers later, when [`LockTable::release_all`] grants it.
//!
//! Invariants: a key's holders are either any number of shared holders or exactly one
//! exclusive holder; a transaction waits for at most one key at a time (a client session
//! issues one operation at a time); an entry with no holders and no waiters is removed.
//!
//! Range reads (`SCAN`) lock key ranges beside the keys: see [`range`] for the rules
//! (an exclusive key lock inside another transaction's range waits, and a scan waits
//! for exclusive locks inside its range).

mod range;

pub use range::ScanLock;

use crate::types::TxnId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

pub use crate::types::LockMode;

impl LockMode {
    fn compatible(self, other: LockMode) -> bool {
        self == LockMode::Shared && other == LockMode::Shared
    }
}

/// The answer to a lock request.
#[derive(Debug, PartialEq, Eq)]
pub enum Acquire {
    /// The lock is held now.
    Granted,
    /// The request is queued behind these transactions.
    Waiting {
        /// The transactions the request waits for, sorted.
        blockers: Vec<TxnId>,
    },
}

#[derive(Clone, Debug, Default)]
struct Entry {
    holders: BTreeMap<TxnId, LockMode>,
    waiters: VecDeque<(TxnId, LockMode)>,
}

impl Entry {
    /// Whether `tid` could hold `mode` given the holders alone.
    fn grantable(&self, tid: TxnId, mode: LockMode) -> bool {
        self.holders
            .iter()
            .all(|(holder, held)| *holder == tid || mode.compatible(*held))
    }

    /// The waits of this key's queue for the deadlock detector, in one pass: each waiter
    /// waits for the conflicting holders and for the nearest request ahead of it that
    /// conflicts (the one before it, if it asks for an exclusive lock; the nearest
    /// exclusive one, if for a shared lock). The requests further ahead are left out:
    /// they are reached through that one (a shared request waits for whatever the shared
    /// requests ahead of it wait for), so every cycle of the full graph is still there,
    /// but a queue of n waiters makes n edges instead of n²/2, and a hot key's queue
    /// stays cheap to check.
    fn wait_edges(&self, key: &str, waits: &mut Vec<Wait>) {
        let (mut previous, mut previous_exclusive) = (None, None);
        for (tid, mode) in &self.waiters {
            let mut blockers: Vec<TxnId> = (self.holders.iter())
                .filter(|(holder, held)| *holder != tid && !mode.compatible(**held))
                .map(|(holder, _)| *holder)
                .collect();
            let ahead = match mode {
                LockMode::Exclusive => previous,
                LockMode::Shared => previous_exclusive,
            };
            if let Some(ahead) = ahead.filter(|ahead| ahead != tid && !blockers.contains(ahead)) {
                blockers.push(ahead);
                blockers.sort_unstable();
            }
            waits.push(Wait {
                tid: *tid,
                key: key.to_string(),
                mode: *mode,
                blockers,
                began: 0,
            });
            previous = Some(*tid);
            if *mode == LockMode::Exclusive {
                previous_exclusive = Some(*tid);
            }
        }
    }

    /// Who blocks the waiter at `position`: conflicting holders and queued requests ahead.
    fn blockers(&self, position: usize) -> Vec<TxnId> {
        let (tid, mode) = self.waiters[position];
        let mut blockers: BTreeSet<TxnId> = self
            .holders
            .iter()
            .filter(|(holder, held)| **holder != tid && !mode.compatible(**held))
            .map(|(holder, _)| *holder)
            .collect();
        for (ahead, ahead_mode) in self.waiters.iter().take(position) {
            if *ahead != tid && !(mode.compatible(*ahead_mode)) {
                blockers.insert(*ahead);
            }
        }
        blockers.into_iter().collect()
    }
}

/// A waiter and what it waits for, as reported to the deadlock detector.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wait {
    /// The waiting transaction.
    pub tid: TxnId,
    /// The key it waits for.
    pub key: String,
    /// The mode it asked for.
    pub mode: LockMode,
    /// The conflicting holders, and the nearest conflicting request queued ahead (which
    /// leads on to the rest; see `Entry::wait_edges`). A waiting client is told them all.
    pub blockers: Vec<TxnId>,
    /// The waiter's begin stamp (`message::Answer::Begun`), by which the deadlock
    /// detector picks its victim. The table does not know it (0 here); the participant,
    /// which does, fills it in.
    pub began: u64,
}

/// One key's lock state, for `SHOW LOCKS`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyLocks {
    /// The key.
    pub key: String,
    /// Holders and their modes, sorted by transaction.
    pub holders: Vec<(TxnId, LockMode)>,
    /// Waiters in queue order.
    pub waiters: Vec<(TxnId, LockMode)>,
    /// Whether `key` names a range locked by scans (`p*`, `[a..b]`; see `range`), not
    /// a key.
    pub range: bool,
}

/// The lock table of one node.
#[derive(Clone, Debug, Default)]
pub struct LockTable {
    entries: BTreeMap<String, Entry>,
    /// Keys each transaction holds or waits for, to release in one pass.
    keys_of: BTreeMap<TxnId, BTreeSet<String>>,
    /// How many requests are queued, over all keys.
    waiting: usize,
    /// The range locks of scans, held and requested (see [`range`]).
    ranges: range::RangeLocks,
}

impl LockTable {
    /// Requests `mode` on `key` for `tid`. Re-requesting a held lock, or a shared lock
    /// while holding the exclusive one, is granted at once.
    pub fn acquire(&mut self, tid: TxnId, key: &str, mode: LockMode) -> Acquire {
        let entry = self.entries.entry(key.to_string()).or_default();
        self.keys_of.entry(tid).or_default().insert(key.to_string());
        if let Some(held) = entry.holders.get(&tid)
            && (*held == LockMode::Exclusive || mode == LockMode::Shared)
        {
            return Acquire::Granted;
        }
        let ranges = match mode {
            LockMode::Exclusive => self.ranges.covering(tid, key),
            LockMode::Shared => Vec::new(),
        };
        if entry.waiters.is_empty() && entry.grantable(tid, mode) && ranges.is_empty() {
            entry.holders.insert(tid, mode);
            return Acquire::Granted;
        }
        assert!(
            !entry.waiters.iter().any(|(waiter, _)| *waiter == tid),
            "{tid} already waits for {key}"
        );
        entry.waiters.push_back((tid, mode));
        self.waiting += 1;
        let mut blockers = entry.blockers(entry.waiters.len() - 1);
        blockers.extend(ranges);
        blockers.sort_unstable();
        blockers.dedup();
        Acquire::Waiting { blockers }
    }

    /// Releases every lock `tid` holds and withdraws any request it has queued, returning
    /// the requests this grants as `(tid, key)`, in grant order.
    pub fn release_all(&mut self, tid: TxnId) -> Vec<(TxnId, String)> {
        let keys = self.keys_of.remove(&tid).unwrap_or_default();
        let mut granted = Vec::new();
        for key in keys {
            if let Some(entry) = self.entries.get_mut(&key) {
                entry.holders.remove(&tid);
                let queued = entry.waiters.len();
                entry.waiters.retain(|(waiter, _)| *waiter != tid);
                self.waiting -= queued - entry.waiters.len();
                granted.extend(self.grant_waiters(&key));
            }
        }
        self.release_ranges(tid, &mut granted);
        granted
    }

    /// Releases the shared locks `tid` holds, keeping its exclusive ones; returns the
    /// requests this grants. Only the teaching mistake `release-read-locks-at-prepare`
    /// calls it: the protocol holds every lock until the outcome.
    pub fn release_shared(&mut self, tid: TxnId) -> Vec<(TxnId, String)> {
        let keys: Vec<String> = (self.keys_of.get(&tid).into_iter().flatten())
            .filter(|key| {
                (self.entries.get(*key))
                    .is_some_and(|entry| entry.holders.get(&tid) == Some(&LockMode::Shared))
            })
            .cloned()
            .collect();
        let mut granted = Vec::new();
        for key in keys {
            if let Some(entry) = self.entries.get_mut(&key) {
                entry.holders.remove(&tid);
            }
            if let Some(held) = self.keys_of.get_mut(&tid) {
                held.remove(&key);
            }
            granted.extend(self.grant_waiters(&key));
        }
        granted
    }

    /// Grants queued requests on `key` in FIFO order while they are compatible, and drops
    /// the entry when it is empty.
    fn grant_waiters(&mut self, key: &str) -> Vec<(TxnId, String)> {
        let mut granted = Vec::new();
        let Some(entry) = self.entries.get_mut(key) else {
            return granted;
        };
        while let Some(&(tid, mode)) = entry.waiters.front() {
            let in_a_range =
                mode == LockMode::Exclusive && !self.ranges.covering(tid, key).is_empty();
            if !entry.grantable(tid, mode) || in_a_range {
                break;
            }
            entry.waiters.pop_front();
            self.waiting -= 1;
            let held = entry.holders.entry(tid).or_insert(mode);
            *held = (*held).max(mode);
            granted.push((tid, key.to_string()));
        }
        if entry.holders.is_empty() && entry.waiters.is_empty() {
            self.entries.remove(key);
        }
        granted
    }

    /// Every current wait, for the deadlock detector: one edge to each conflicting holder
    /// and one to the nearest conflicting request ahead, recomputed from the table now.
    pub fn waits(&self) -> Vec<Wait> {
        let mut waits = Vec::new();
        for (key, entry) in &self.entries {
            let from = waits.len();
            entry.wait_edges(key, &mut waits);
            for wait in &mut waits[from..] {
                if wait.mode == LockMode::Exclusive {
                    // A write inside a range another transaction scanned waits for it.
                    wait.blockers.extend(self.ranges.covering(wait.tid, key));
                    wait.blockers.sort_unstable();
                    wait.blockers.dedup();
                }
            }
        }
        self.scan_waits(&mut waits);
        waits
    }

    /// The mode `tid` holds `key` in, if it holds it.
    pub fn held(&self, key: &str, tid: TxnId) -> Option<LockMode> {
        self.entries.get(key)?.holders.get(&tid).copied()
    }

    /// Who blocks `tid`'s request queued on `key` now (as [`Acquire::Waiting`] reports
    /// them); `None` if it has no request queued there.
    pub fn blockers_of(&self, tid: TxnId, key: &str) -> Option<Vec<TxnId>> {
        let entry = self.entries.get(key)?;
        let position = entry
            .waiters
            .iter()
            .position(|(waiter, _)| *waiter == tid)?;
        Some(entry.blockers(position))
    }

    /// The holders and waiters of every locked key, sorted by key, then those of every
    /// locked range (named `p*` or `[a..b]`, see `KeyRange`), sorted by that name.
    pub fn snapshot(&self) -> Vec<KeyLocks> {
        let mut locks: Vec<KeyLocks> = (self.entries.iter())
            .map(|(key, entry)| KeyLocks {
                key: key.clone(),
                holders: entry.holders.iter().map(|(t, m)| (*t, *m)).collect(),
                waiters: entry.waiters.iter().copied().collect(),
                range: false,
            })
            .collect();
        locks.extend(self.range_snapshot());
        locks
    }

    /// Whether no lock is held or requested.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.ranges.is_empty()
    }

    /// Whether any request is queued, answered without walking the table.
    pub fn has_waiters(&self) -> bool {
        self.waiting > 0 || self.ranges.has_waiters()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LockMode::{Exclusive, Shared};

    const T1: TxnId = TxnId(1);
    const T2: TxnId = TxnId(2);
    const T3: TxnId = TxnId(3);

    #[test]
    fn each_waiter_reports_the_holders_and_the_nearest_conflicting_request_ahead() {
        let mut table = LockTable::default();
        let (holder, e1, s1, s2, x) = (TxnId(9), TxnId(10), TxnId(11), TxnId(12), TxnId(13));
        table.acquire(holder, "k", Exclusive);
        for (tid, mode) in [(e1, Exclusive), (s1, Shared), (s2, Shared), (x, Exclusive)] {
            assert!(matches!(
                table.acquire(tid, "k", mode),
                Acquire::Waiting { .. }
            ));
        }
        let edges: Vec<(TxnId, Vec<TxnId>)> = (table.waits().into_iter())
            .map(|wait| (wait.tid, wait.blockers))
            .collect();
        assert_eq!(
            edges,
            vec![
                (e1, vec![holder]),
                // Shared requests wait for the exclusive one ahead, not for each other.
                (s1, vec![holder, e1]),
                (s2, vec![holder, e1]),
                // An exclusive request waits for the one just ahead, which leads on.
                (x, vec![holder, s2]),
            ]
        );
    }

    #[test]
    fn shared_locks_coexist_and_exclusive_waits() {
        let mut table = LockTable::default();
        assert_eq!(table.acquire(T1, "x", Shared), Acquire::Granted);
        assert_eq!(table.acquire(T2, "x", Shared), Acquire::Granted);
        assert_eq!(
            table.acquire(T3, "x", Exclusive),
            Acquire::Waiting {
                blockers: vec![T1, T2]
            }
        );
        assert!(table.release_all(T1).is_empty());
        assert_eq!(table.release_all(T2), vec![(T3, "x".to_string())]);
        assert_eq!(table.snapshot()[0].holders, vec![(T3, Exclusive)]);
        table.release_all(T3);
        assert!(table.is_empty());
    }

    #[test]
    fn sole_reader_upgrades_in_place() {
        let mut table = LockTable::default();
        table.acquire(T1, "x", Shared);
        assert_eq!(table.acquire(T1, "x", Exclusive), Acquire::Granted);
        assert_eq!(table.acquire(T1, "x", Shared), Acquire::Granted);
        assert_eq!(
            table.acquire(T2, "x", Shared),
            Acquire::Waiting { blockers: vec![T1] }
        );
    }

    #[test]
    fn readers_queue_behind_a_waiting_writer() {
        let mut table = LockTable::default();
        table.acquire(T1, "x", Shared);
        table.acquire(T2, "x", Exclusive);
        assert_eq!(
            table.acquire(T3, "x", Shared),
            Acquire::Waiting { blockers: vec![T2] }
        );
        assert_eq!(table.release_all(T1), vec![(T2, "x".to_string())]);
        assert_eq!(table.release_all(T2), vec![(T3, "x".to_string())]);
    }

    #[test]
    fn withdrawn_waiter_unblocks_the_queue() {
        let mut table = LockTable::default();
        table.acquire(T1, "x", Shared);
        table.acquire(T2, "x", Exclusive);
        table.acquire(T3, "x", Shared);
        assert_eq!(table.release_all(T2), vec![(T3, "x".to_string())]);
    }
}
