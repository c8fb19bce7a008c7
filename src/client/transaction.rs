//! A session's transactions: read-write ones, which lock and commit with two-phase
//! commit, and read-only ones, which read one committed snapshot (see the module doc of
//! `client`).

use super::{Client, unexpected};
use crate::error::{Error, Result};
use crate::keyrange::KeyRange;
use crate::lock::LockMode;
use crate::message::{Answer, ReadAt, Request};
use crate::types::{NodeId, Timestamp, TxnId, check_key, check_value, owner_of};
use std::collections::BTreeSet;

/// An open transaction. Dropping it without `commit` aborts it.
pub struct Transaction {
    pub(super) client: Client,
    /// `None` until a transaction from `begin_lazily` has begun.
    pub(super) tid: Option<TxnId>,
    /// Its begin stamp from the client's clock, sent with every operation so that a
    /// lock wait can tell the deadlock detector when the transaction began.
    pub(super) began: u64,
    /// The nodes this transaction has read or written on.
    pub(super) participants: BTreeSet<NodeId>,
    /// Committed, aborted, or known aborted by a participant.
    pub(super) finished: bool,
    /// Why it was aborted, if an operation failed (see the module doc).
    pub(super) aborted: Option<String>,
}

impl Transaction {
    /// The transaction's id; `None` for one from [`Client::begin_lazily`] that has not
    /// read or written yet.
    pub fn id(&self) -> Option<TxnId> {
        self.tid
    }

    /// The nodes the transaction has touched, sorted.
    pub fn participants(&self) -> Vec<NodeId> {
        self.participants.iter().copied().collect()
    }

    /// Reads `key` under a ctx lock, seeing this transaction's own writes.
    pub fn get(&mut self, key: &str) -> Result<Option<String>> {
        self.read(key, LockMode::Shared)
    }

    /// Reads `key` under an exclusive lock held until the transaction ends (`SELECT ...
    /// FOR UPDATE`), seeing this transaction's own writes. Use it to read a key that the
    /// transaction will then write: with `get`, two transactions that read and then write
    /// one key both hold ctx locks and deadlock when each upgrades; with
    /// `get_for_update` the second waits at its read until the first ends. If nothing is
    /// written, the lock is released at COMMIT like a ctx one (READ-ONLY vote).
    pub fn get_for_update(&mut self, key: &str) -> Result<Option<String>> {
        self.read(key, LockMode::Exclusive)
    }

    fn read(&mut self, key: &str, mode: LockMode) -> Result<Option<String>> {
        self.check_open()?;
        let what = match mode {
            LockMode::Shared => "read",
            LockMode::Exclusive => "read for update",
        };
        let result = check_key(key).map_err(Error::from).and_then(|()| {
            let node = owner_of(key, self.client.ctx.nodes);
            let key = key.to_string();
            let request = |tid, first, began| Request::Read {
                tid,
                key,
                mode,
                first,
                began,
            };
            match self.operate(node, request)? {
                Answer::Value(value) => Ok(value),
                other => Err(unexpected(other)),
            }
        });
        self.abort_on_error(result, what, key)
    }

    /// Reads every key in `range`, on every node, in key order with its value, seeing
    /// this transaction's own writes. Each node locks the range until the transaction
    /// ends (see `lock::range`), so another transaction's insert into it, update or
    /// delete waits: scanning again shows the same rows. A scan makes every node a
    /// participant (a node it only read on votes READ-ONLY).
    pub fn scan(&mut self, range: &KeyRange) -> Result<Vec<(String, String)>> {
        self.check_open()?;
        let mut rows = Vec::new();
        for node in 0..self.client.ctx.nodes {
            let owned = range.clone();
            let request = |tid, first, began| Request::Scan {
                tid,
                range: owned,
                first,
                began,
            };
            let result = match self.operate(node, request) {
                Ok(Answer::Rows(found)) => Ok(found),
                Ok(other) => Err(unexpected(other)),
                Err(error) => Err(error),
            };
            rows.extend(self.abort_on_error(result, "scan", &range.to_string())?);
        }
        rows.sort();
        Ok(rows)
    }

    /// Writes `value` to `key`.
    pub fn put(&mut self, key: &str, value: &str) -> Result<()> {
        self.check_open()?;
        let result = (check_value(value).map_err(Error::from))
            .and_then(|()| self.write(key, Some(value.to_string())));
        self.abort_on_error(result, "write", key)
    }

    /// Deletes `key`.
    pub fn delete(&mut self, key: &str) -> Result<()> {
        self.check_open()?;
        let result = self.write(key, None);
        self.abort_on_error(result, "delete", key)
    }

    fn write(&mut self, key: &str, value: Option<String>) -> Result<()> {
        check_key(key)?;
        let node = owner_of(key, self.client.ctx.nodes);
        let key = key.to_string();
        self.operate(node, |tid, first, began| Request::Write {
            tid,
            key,
            value,
            first,
            began,
        })?;
        Ok(())
    }

    /// Sends an operation to `node`, beginning the transaction with it if it has not
    /// begun.
    fn operate(
        &mut self,
        node: NodeId,
        request: impl FnOnce(TxnId, bool, u64) -> Request,
    ) -> Result<Answer> {
        let first = self.participants.insert(node);
        let (target, request) = (self.client).addressed(self.tid, self.began, node, first, request);
        let result = match self.tid {
            Some(tid) => self.client.call(target, request, Some(tid)),
            None => {
                let mut begun = (None, 0);
                let result = self.client.call_tracking(target, request, &mut begun);
                (self.tid, self.began) = begun;
                result
            }
        };
        if matches!(result, Err(Error::NodeDown { .. })) && first {
            // The node never held this transaction's work, or lost it as it crashed.
            self.participants.remove(&node);
        }
        result
    }

    /// After an operation failed (`what` of `key`): aborts the transaction everywhere
    /// and remembers why, so that `commit` refuses (see the module doc).
    fn abort_on_error<T>(&mut self, result: Result<T>, what: &str, key: &str) -> Result<T> {
        let Err(error) = &result else {
            return result;
        };
        let reason = match error {
            Error::Aborted { reason, .. } => reason.clone(),
            other => format!(
                "its {what} of {key} failed ({other}), and a failed operation aborts its \
                 transaction"
            ),
        };
        self.aborted = Some(reason);
        self.abort_everywhere();
        result
    }

    fn check_open(&self) -> Result<()> {
        if let Some(reason) = &self.aborted {
            return Err(match self.tid {
                Some(tid) => Error::Aborted {
                    tid,
                    reason: reason.clone(),
                },
                None => Error::InvalidInput(format!("the transaction was aborted: {reason}")),
            });
        }
        if self.finished {
            let what = self
                .tid
                .map_or("the transaction".into(), |tid| tid.to_string());
            return Err(Error::InvalidInput(format!("{what} has already ended")));
        }
        Ok(())
    }

    /// Commits: two-phase commit over the nodes touched (one phase if only one).
    pub fn commit(self) -> Result<()> {
        self.commit_at().map(|_| ())
    }

    /// Commits as [`Transaction::commit`] does, and returns the timestamp the cluster
    /// serialized it at: its writes' commit timestamp, or for a transaction that only
    /// read, a timestamp at or above every version it read and below every later write
    /// of those keys; 0 if it touched nothing. The shell's history orders versions by
    /// it (`history::register`).
    pub fn commit_at(mut self) -> Result<Timestamp> {
        self.check_open()?;
        self.finished = true;
        let Some(tid) = self.tid else {
            return Ok(0);
        };
        let coordinator = self.client.coordinator;
        let request = Request::Commit {
            tid,
            participants: self.participants(),
            clock: self.client.clock.now(),
        };
        match self.client.call(coordinator, request, Some(tid)) {
            Ok(Answer::Committed { at, serial_ts }) => {
                self.client.committed(at);
                Ok(serial_ts)
            }
            Ok(other) => Err(unexpected(other)),
            Err(Error::NodeDown { node, .. }) if node == coordinator => {
                Err(Error::OutcomeUnknown { tid, coordinator })
            }
            Err(error) => Err(error),
        }
    }

    /// Aborts: every participant drops the transaction's writes and releases its locks.
    /// A transaction a failed operation aborted is aborted already: nothing to do.
    pub fn abort(mut self) -> Result<()> {
        if self.aborted.is_some() {
            return Ok(());
        }
        self.check_open()?;
        self.finished = true;
        let Some(tid) = self.tid else {
            return Ok(());
        };
        let request = Request::Abort {
            tid,
            participants: self.participants(),
        };
        self.client
            .call(self.client.coordinator, request, None)
            .map(|_| ())
    }

    /// After a participant aborted the transaction: tell the others, best effort.
    fn abort_everywhere(&mut self) {
        self.finished = true;
        let Some(tid) = self.tid else {
            return;
        };
        let request = Request::Abort {
            tid,
            participants: self.participants(),
        };
        let _ = self.client.call(self.client.coordinator, request, None);
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        if !self.finished {
            self.abort_everywhere();
        }
    }
}

/// A read-only transaction: reads of one committed snapshot, without locks.
pub struct ReadOnly {
    pub(super) client: Client,
    pub(super) read_ts: Timestamp,
}

impl ReadOnly {
    /// The snapshot's timestamp.
    pub fn read_ts(&self) -> Timestamp {
        self.read_ts
    }

    /// Reads `key` in the snapshot.
    pub fn get(&self, key: &str) -> Result<Option<String>> {
        check_key(key)?;
        self.client
            .snapshot_read(key, ReadAt::Exactly(self.read_ts))
    }

    /// Reads every key in `range`, on every node, in the snapshot, in key order.
    pub fn scan(&self, range: &KeyRange) -> Result<Vec<(String, String)>> {
        let mut rows = Vec::new();
        for node in 0..self.client.ctx.nodes {
            let request = Request::SnapshotScan {
                range: range.clone(),
                at: ReadAt::Exactly(self.read_ts),
            };
            match self.client.call(node, request, None)? {
                Answer::Rows(found) => rows.extend(found),
                other => return Err(unexpected(other)),
            }
        }
        rows.sort();
        Ok(rows)
    }

    /// Ends the transaction. Nothing was locked or written, so there is nothing to send.
    pub fn commit(self) {}
}
