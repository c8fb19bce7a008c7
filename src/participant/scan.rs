//! The participant's side of range reads (`SCAN`): the keys this node owns in a range.
//!
//! Keys are spread over the nodes by hash (`types::owner_of`), so a range has keys on
//! every node and the client asks each; each answers with its own keys in order, and the
//! client merges them.
//!
//! In a read-write transaction the scan takes a shared lock on the range itself (see
//! `lock::range`): it waits while another transaction holds an exclusive lock on a key
//! inside it, and from then until the outcome any insert, update or delete inside the
//! range by another transaction waits. It sees the transaction's own buffered writes,
//! deletes included. With the `no-range-locks` mistake it locks only the keys it found.
//!
//! A snapshot scan (a read-only transaction, or a `SCAN` outside any transaction) takes
//! no lock and reads the versions at its timestamp. Like a snapshot read of one key it
//! waits only for a prepared, undecided write inside the range whose prepare timestamp
//! is below the snapshot's (its commit may land inside the snapshot); it then runs again
//! from the start when that transaction is decided.

use super::{Participant, PendingOp, TxnState, reply};
use crate::error::Error;
use crate::keyrange::KeyRange;
use crate::lock::{LockMode, ScanLock};
use crate::message::{Answer, Effect, ReadAt, Reply, ReqId};
use crate::store::Store;
use crate::types::{Timestamp, TxnId};
use std::collections::BTreeMap;

impl Participant {
    /// A client's range read within `tid` (begun at stamp `began`). `lock_range` is
    /// false only under the `no-range-locks` mistake: the scan then locks the keys it
    /// finds now, not the range.
    pub fn scan(
        &mut self,
        req: ReqId,
        (tid, began): (TxnId, u64),
        range: KeyRange,
        first: bool,
        lock_range: bool,
        out: &mut Vec<Effect>,
    ) {
        let lock = if lock_range {
            ScanLock::Range(range)
        } else {
            let keys = (self.store.scan(&range).into_iter())
                .map(|(key, _)| key)
                .collect();
            ScanLock::FoundKeys { range, keys }
        };
        self.operate(req, (tid, began), PendingOp::Scan(lock), first, out);
    }

    /// A range read without locks, of the committed snapshot at a timestamp (see the
    /// module doc, and `snapshot_read` for the single key).
    pub fn snapshot_scan(
        &mut self,
        req: ReqId,
        range: KeyRange,
        at: ReadAt,
        out: &mut Vec<Effect>,
    ) {
        let prepared: Vec<(TxnId, Timestamp)> = (range.entries(&self.prepared_keys))
            .filter_map(|(_, tid)| match self.txns.get(tid) {
                Some(TxnState::Prepared(prepared)) => Some((*tid, prepared.prepare_ts)),
                _ => None,
            })
            .collect();
        let read_ts = match at {
            ReadAt::Exactly(ts) => ts,
            ReadAt::AtLeast(floor) => {
                let below = prepared.iter().map(|(_, p)| *p).min();
                floor.max(below.map_or(self.clock.now(), |p| self.clock.now().min(p)))
            }
        };
        // As for a snapshot read: what prepares here from now on commits above it.
        self.clock.observe(read_ts);
        if let Some((tid, _)) = prepared.iter().find(|(_, p)| *p < read_ts) {
            let reply = Reply::Waiting {
                key: range.to_string(),
                mode: LockMode::Shared,
                blockers: vec![*tid],
            };
            self.blocked_scans.entry(*tid).or_default().push((
                req,
                range,
                ReadAt::Exactly(read_ts),
            ));
            return out.push(Effect::Reply { req, reply });
        }
        let answer = match self.store.scan_at(&range, read_ts) {
            Ok(rows) => Ok(Answer::Rows(rows)),
            Err((key, too_old)) => Err(Error::InvalidInput(format!(
                "node {} cannot tell what {key} held at timestamp {read_ts}: it keeps its \
                 history only from timestamp {} on (it drops old versions, and a checkpoint \
                 keeps only the newest); read a newer snapshot: COMMIT this read-only \
                 transaction and BEGIN READ ONLY again",
                self.node, too_old.oldest
            ))),
        };
        reply(out, req, answer);
    }

    /// A prepared transaction was decided: the snapshot scans that waited for it run
    /// again (each may find another undecided write in its range and wait again).
    pub(super) fn rerun_blocked_scans(&mut self, tid: TxnId, out: &mut Vec<Effect>) {
        for (req, range, at) in self.blocked_scans.remove(&tid).unwrap_or_default() {
            self.snapshot_scan(req, range, at, out);
        }
    }
}

/// The rows a locking scan sees: the committed keys in `range` with the transaction's
/// own buffered `writes` over them (a buffered delete hides a key, a buffered put adds
/// or replaces one), in key order.
pub(super) fn rows(
    store: &Store,
    writes: &BTreeMap<String, Option<String>>,
    range: &KeyRange,
) -> Vec<(String, String)> {
    let mut rows: BTreeMap<String, String> = store.scan(range).into_iter().collect();
    for (key, write) in range.entries(writes) {
        match write {
            Some(value) => rows.insert(key.clone(), value.clone()),
            None => rows.remove(key),
        };
    }
    rows.into_iter().collect()
}
