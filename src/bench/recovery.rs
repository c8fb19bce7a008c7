//! The `recovery` measurement: how fast a node replays its log, and how checkpoints bound
//! the work.
//!
//! It writes a node's log directly (no cluster, so a million records take a second, not
//! a minute of transactions): a mix like a busy node's, of a participant's `Prepare` and
//! `Commit`, one-phase commits, and a coordinator's `Decision` and `End`, over a fixed
//! set of keys. Then it recovers the node as `RESTART` does (`Wal::open` reads and checks
//! every record, `Node::recover` replays them) and times both. Finally it takes a
//! checkpoint and recovers again: the log since the checkpoint is empty, and recovery
//! reads the snapshot instead, which grows with the data, not with the history.

use super::micros;
use crate::error::Result;
use crate::node::Node;
use crate::types::TxnId;
use crate::wal::{Record, Wal};
use serde::Serialize;
use std::path::Path;
use std::time::{Duration, Instant};

/// Distinct keys the generated log writes.
const KEYS: u64 = 100_000;
/// Records appended per write to the file while generating.
const CHUNK: u64 = 4096;

/// One recovery measurement.
#[derive(Clone, Debug, Serialize)]
pub struct RecoveryRun {
    /// Records in the log.
    pub records: u64,
    /// Bytes of log.
    pub log_bytes: u64,
    /// Reading and checking the log (`Wal::open`), milliseconds.
    pub read_ms: f64,
    /// Replaying it into the node's state (`Node::recover`), milliseconds.
    pub replay_ms: f64,
    /// Records recovered per second, reading and replaying together.
    pub records_per_second: f64,
    /// Recovery right after a checkpoint of the same state, milliseconds.
    pub after_checkpoint_ms: f64,
    /// Records replayed after the checkpoint.
    pub after_checkpoint_records: u64,
}

/// Writes a log of `records` records in `dir` and measures its recovery.
pub fn measure(dir: &Path, records: u64) -> Result<RecoveryRun> {
    let log = dir.join("node0");
    let log_bytes = write_log(&log, records)?;
    let (read, replay, node) = recover(&log)?;
    let (mut wal, _) = Wal::open(&log)?;
    wal.checkpoint(&node.snapshot())?;
    drop(wal);
    let start = Instant::now();
    let (wal, recovery) = Wal::open(&log)?;
    let replayed = recovery.records.len() as u64;
    rebuild(&recovery);
    let after_checkpoint = start.elapsed();
    drop(wal);
    let total = (read + replay).as_secs_f64().max(1e-9);
    Ok(RecoveryRun {
        records,
        log_bytes,
        read_ms: millis(read),
        replay_ms: millis(replay),
        records_per_second: records as f64 / total,
        after_checkpoint_ms: millis(after_checkpoint),
        after_checkpoint_records: replayed,
    })
}

fn millis(duration: Duration) -> f64 {
    micros(duration) / 1000.0
}

/// Reads and replays the log at `log`, timing each.
fn recover(log: &Path) -> Result<(Duration, Duration, Node)> {
    let start = Instant::now();
    let (wal, recovery) = Wal::open(log)?;
    let read = start.elapsed();
    drop(wal);
    let start = Instant::now();
    let node = rebuild(&recovery);
    Ok((read, start.elapsed(), node))
}

fn rebuild(recovery: &crate::wal::Recovery) -> Node {
    let snapshot = recovery.snapshot.as_ref();
    let (node, _) = Node::recover(0, 3, snapshot, &recovery.records, Duration::ZERO);
    node
}

/// Writes `records` records to a fresh log at `log`; returns the log's size.
fn write_log(log: &Path, records: u64) -> Result<u64> {
    let (mut wal, _) = Wal::open(log)?;
    for n in 0..records {
        wal.append(&record(n))?;
        if (n + 1) % CHUNK == 0 {
            wal.flush(false)?;
        }
    }
    wal.flush(true)?;
    Ok(wal.size())
}

/// The `n`th record of the generated log: transactions of five records each, in turn a
/// participant's two-phase commit, a one-phase commit, and a coordinated decision.
fn record(n: u64) -> Record {
    let txn = n / 5;
    let tid = TxnId(txn * 3 + 1);
    let key = format!("key{}", txn % KEYS);
    let value = format!("value-{txn}");
    match n % 5 {
        0 => Record::Prepare {
            tid,
            coordinator: 1,
            participants: vec![0, 1],
            writes: vec![(key, Some(value))],
            prepare_ts: 2 * txn,
        },
        1 => Record::Commit {
            tid,
            commit_ts: 2 * txn + 1,
        },
        2 => Record::OnePhaseCommit {
            tid: TxnId(txn * 3),
            writes: vec![(key, Some(value))],
            commit_ts: 2 * txn + 1,
        },
        3 => Record::Decision {
            tid: TxnId(txn * 3 + 2),
            participants: vec![1, 2],
            commit_ts: 2 * txn + 1,
        },
        _ => Record::End {
            tid: TxnId(txn * 3 + 2),
        },
    }
}
