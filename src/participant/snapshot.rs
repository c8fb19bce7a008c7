//! The participant's side of snapshot reads: which keys have a prepared, undecided
//! write, the reads that wait for one, and the lowest prepare timestamp a read-only
//! transaction's snapshot must stay below. The design, and why it stays serializable, is
//! in the `store` module's doc.

use super::{Participant, Prepared, TxnState, reply};
use crate::error::Error;
use crate::lock::LockMode;
use crate::message::{Answer, Effect, ReadAt, Reply, ReqId};
use crate::types::{Timestamp, TxnId};

impl Participant {
    /// Records a transaction as prepared, with its keys, for snapshot readers.
    pub(super) fn mark_prepared(&mut self, tid: TxnId, prepared: Prepared) {
        for (key, _) in &prepared.writes {
            self.prepared_keys.insert(key.clone(), tid);
        }
        self.txns.put(tid, TxnState::Prepared(prepared));
    }

    /// A prepared transaction was decided here: its keys no longer hold snapshot readers
    /// back, so the reads that waited for it run again.
    pub(super) fn unmark_prepared(
        &mut self,
        tid: TxnId,
        prepared: &Prepared,
        out: &mut Vec<Effect>,
    ) {
        for (key, _) in &prepared.writes {
            self.prepared_keys.remove(key);
        }
        for (req, key, at) in self.blocked_reads.remove(&tid).unwrap_or_default() {
            self.snapshot_read(req, key, at, out);
        }
        self.rerun_blocked_scans(tid, out);
    }

    /// A read without locks, of the committed snapshot at a timestamp (see `ReadAt`).
    ///
    /// The reader never waits for a lock. It waits only when the key has a prepared,
    /// undecided write whose outcome could be in its snapshot: that write's commit
    /// timestamp will be above its prepare timestamp `p`, so a snapshot at or below `p`
    /// cannot contain it and is read at once; a snapshot above `p` must wait for the
    /// outcome. `AtLeast` reads pick their snapshot below `p` when they may.
    pub fn snapshot_read(&mut self, req: ReqId, key: String, at: ReadAt, out: &mut Vec<Effect>) {
        let prepared = (self.prepared_keys.get(&key)).and_then(|tid| match self.txns.get(tid) {
            Some(TxnState::Prepared(prepared)) => Some((*tid, prepared.prepare_ts)),
            _ => None,
        });
        let read_ts = match at {
            ReadAt::Exactly(ts) => ts,
            ReadAt::AtLeast(floor) => {
                let newest = self.clock.now();
                floor.max(prepared.map_or(newest, |(_, p)| newest.min(p)))
            }
        };
        // Whatever this node prepares from now on takes a timestamp at or above this
        // read's, so it commits above it and cannot change what the read saw.
        self.clock.observe(read_ts);
        if let Some((tid, p)) = prepared
            && p < read_ts
        {
            self.blocked_reads
                .entry(tid)
                .or_default()
                .push((req, key.clone(), at));
            let reply = Reply::Waiting {
                key,
                mode: LockMode::Shared,
                blockers: vec![tid],
            };
            return out.push(Effect::Reply { req, reply });
        }
        let answer = match self.store.get_at(&key, read_ts) {
            Ok(value) => Ok(Answer::Snapshot {
                value: value.map(str::to_string),
                read_ts,
            }),
            Err(too_old) => Err(Error::InvalidInput(format!(
                "node {} cannot tell what {key} was at timestamp {read_ts}: it keeps the \
                 history of {key} only from timestamp {} on (it drops old versions, and a \
                 checkpoint keeps only the newest); read a newer snapshot: COMMIT this \
                 read-only transaction and BEGIN READ ONLY again",
                self.node, too_old.oldest
            ))),
        };
        reply(out, req, answer);
    }

    /// The lowest floor (`Prepared::floor`, at or below its prepare timestamp) of a
    /// transaction prepared here, if any: snapshots at or below it never wait here.
    pub fn prepare_floor(&self) -> Option<Timestamp> {
        (self.txns.live())
            .filter_map(|(_, state)| match state {
                TxnState::Prepared(prepared) => Some(prepared.floor),
                _ => None,
            })
            .min()
    }
}
