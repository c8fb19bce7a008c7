//! One node's write-ahead log: appending with group commit, recovery, checkpoints.
//!
//! # Writing
//!
//! [`Wal::append`] only encodes a record into an in-memory buffer; [`Wal::flush`] writes
//! the buffer with one `write` call and, when asked, one `fdatasync`. The node thread
//! appends every record its state machines produced in one step and then flushes once,
//! syncing if any of them is forced ([`Record::forced`]): that is group commit, and
//! [`Wal::fsyncs`] counts what it saves. A record is durable once a sync covers it;
//! [`Wal::synced_len`] is that boundary in the current segment, and
//! [`Wal::simulate_crash`] throws away everything past it, as a power failure would.
//!
//! Positions in the log are also counted as LSNs (bytes of records written since the
//! `Wal` was opened, across segments), so that the fsync can run on another thread: the
//! node thread writes, hands [`Wal::sync_target`] to its syncer, goes on working, and
//! learns by [`Wal::note_synced`] which LSN the fsync covered.
//!
//! The log is a sequence of segment files. A new one starts when the current one has
//! grown past [`Wal::set_segment_bytes`] (checked before each write, so a segment can
//! overshoot by one flush) and at every checkpoint. Before a new segment is created the
//! old one is fsynced whole, so only the last segment can ever end in a torn record.
//!
//! # Recovery
//!
//! [`Wal::open`] reads the checkpoint, then every segment from the one the checkpoint
//! names, in order. It checks everything before it changes anything: damage anywhere is
//! an [`Error::Corrupt`] naming the file and offset, and leaves the directory untouched.
//! Then it repairs what a crash leaves behind, each with a warning: a torn tail of the
//! last segment is cut off, a leftover `checkpoint.tmp` and segments older than the
//! checkpoint are removed, and a segment the checkpoint promised but the crash prevented
//! is created. Finally it fsyncs the last segment, so that nothing recovery replays can
//! still vanish (a process that crashed may have left writes in the page cache only).
//!
//! # Checkpoints
//!
//! [`Wal::checkpoint`] syncs the current segment, writes the checkpoint (naming the next
//! segment), creates that segment, then deletes the older ones. A crash between any two
//! steps recovers: before the rename the old checkpoint and all segments are intact;
//! after it, older segments are below the new checkpoint's start and are ignored.
//!
//! # Failures
//!
//! After a failed write or fsync the kernel may have dropped the unwritten pages, and a
//! retry could report success over a hole. So the first I/O error while writing fails
//! the `Wal` for good: every later call returns an error, and the node must be restarted
//! so that recovery reads what really is on disk.
//!
//! Known limits: recovery holds a segment's bytes in memory while it reads it, and reads
//! every record since the last checkpoint, so checkpoints keep restarts quick.

use super::checkpoint;
use super::files::{self, LogDir};
use super::frame::{self, HEADER_LEN, MAX_RECORD_BYTES, Scanned, Tail};
use super::{Record, Snapshot};
use crate::error::{Error, Result};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The default size past which a new segment is started.
pub const SEGMENT_BYTES: u64 = 64 << 20;

/// One node's write-ahead log, open for appending.
///
/// Invariants: every segment before the current one is fsynced whole;
/// `HEADER_LEN <= synced_len <= written_len`, the current segment's length on disk.
#[derive(Debug)]
pub struct Wal {
    dir: LogDir,
    /// Shared with the node's syncer thread, which fsyncs it (see [`Wal::sync_target`]).
    file: Arc<File>,
    first_segment: u64,
    segment: u64,
    pending: Vec<u8>,
    written_len: u64,
    synced_len: u64,
    earlier_bytes: u64,
    segment_bytes: u64,
    failure: Option<String>,
    /// Make the next write fail as a full disk would (fault injection for tests).
    fail_next_write: bool,
    /// Log sequence numbers: positions in the stream of record bytes this `Wal` has
    /// written since it was opened, across segments. `written_lsn` counts what was
    /// handed to the OS; `synced_lsn <= written_lsn` what an fsync is known to cover.
    written_lsn: u64,
    synced_lsn: u64,
    /// An LSN in the current segment and its byte offset there, to map one to the other.
    segment_lsn: u64,
    segment_offset: u64,
}

/// What to fsync to make the log durable through an LSN, for a syncer thread.
#[derive(Clone, Debug)]
pub struct SyncTarget {
    /// The current segment file.
    pub file: Arc<File>,
    /// Its path, for error messages.
    pub path: PathBuf,
    /// Everything before this LSN is durable once `file` is fsynced.
    pub lsn: u64,
}

/// What [`Wal::open`] found: the state to rebuild a node from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// The latest checkpoint's contents, if a checkpoint was ever taken.
    pub snapshot: Option<Snapshot>,
    /// Every record logged after the checkpoint, in order.
    pub records: Vec<Record>,
    /// What recovery repaired (a torn tail cut off, leftovers removed), for the operator.
    pub warnings: Vec<String>,
}

/// One segment as recovery read it.
struct SegmentScan {
    number: u64,
    scanned: Scanned,
    file_len: u64,
}

impl Wal {
    /// Opens (creating if needed) the log in `dir` and recovers what it holds.
    pub fn open(dir: &Path) -> Result<(Wal, Recovery)> {
        let mut log_dir = LogDir::new(dir);
        log_dir.create()?;
        let checkpoint = checkpoint::read(&log_dir)?;
        let first_segment = checkpoint.as_ref().map_or(1, |c| c.first_segment);
        let (covered, live) = live_segments(&log_dir, first_segment)?;
        let scans = scan_segments(&log_dir, &live)?;
        let mut warnings = remove_leftovers(&log_dir, &covered)?;
        let wal = Wal::resume(log_dir, first_segment, &scans, &mut warnings)?;
        let records = scans.into_iter().flat_map(|scan| scan.scanned.records);
        let recovery = Recovery {
            snapshot: checkpoint.map(|c| c.snapshot),
            records: records.map(|(_, record)| record).collect(),
            warnings,
        };
        Ok((wal, recovery))
    }

    /// Lists the records in the log's segments now, as `(segment, offset, record)`, for
    /// `SHOW LOG` on a running or crashed node. Changes nothing on disk: a torn tail is
    /// not listed, and segments the checkpoint covers are skipped.
    pub fn read_records(dir: &Path) -> Result<Vec<(u64, u64, Record)>> {
        let log_dir = LogDir::new(dir);
        let checkpoint = checkpoint::read(&log_dir)?;
        let first_segment = checkpoint.map_or(1, |c| c.first_segment);
        let (_, live) = live_segments(&log_dir, first_segment)?;
        let scans = scan_segments(&log_dir, &live)?;
        let listed = scans.into_iter().flat_map(|scan| {
            let number = scan.number;
            let records = scan.scanned.records.into_iter();
            records.map(move |(offset, record)| (number, offset, record))
        });
        Ok(listed.collect())
    }

    /// Encodes `record` at the end of the pending buffer. Nothing is written until
    /// [`Wal::flush`].
    pub fn append(&mut self, record: &Record) -> Result<()> {
        self.check_usable()?;
        frame::push_frame(&mut self.pending, record, MAX_RECORD_BYTES)
            .map_err(|e| Error::InvalidInput(format!("cannot log a {} record: {e}", record.kind())))
    }

    /// Writes the pending records, and with `sync` makes everything written so far
    /// durable with one `fdatasync`.
    pub fn flush(&mut self, sync: bool) -> Result<()> {
        self.check_usable()?;
        let result = self.write_pending(sync);
        self.fail_on_io_error(result)
    }

    /// Takes a checkpoint holding `snapshot`, after which recovery starts from it and the
    /// older segments are deleted. Pending records are made durable first.
    pub fn checkpoint(&mut self, snapshot: &Snapshot) -> Result<()> {
        self.check_usable()?;
        let result = self.write_checkpoint(snapshot);
        self.fail_on_io_error(result)
    }

    /// Does to the log what a machine crash would: the pending records and everything
    /// written but not fsynced are lost.
    pub fn simulate_crash(self) -> Result<()> {
        let path = self.dir.segment_path(self.segment);
        self.file
            .set_len(self.synced_len)
            .map_err(|e| Error::io(format!("cutting {} as a crash would", path.display()), e))
    }

    /// Bytes of log records since the last checkpoint, pending ones included (segment
    /// headers are not counted, so the size right after a checkpoint is 0).
    pub fn size(&self) -> u64 {
        self.earlier_bytes + (self.written_len - HEADER_LEN) + self.pending.len() as u64
    }

    /// How many fsyncs (of segments, checkpoints and the directory) this log has issued
    /// since [`Wal::open`] returned.
    pub fn fsyncs(&self) -> u64 {
        self.dir.fsyncs()
    }

    /// The length of the current segment known to be durable.
    pub fn synced_len(&self) -> u64 {
        self.synced_len
    }

    /// The LSN just past the last record appended, pending ones included: a record is
    /// durable once [`Wal::synced_lsn`] reaches the value this had right after it was
    /// appended.
    pub fn end_lsn(&self) -> u64 {
        self.written_lsn + self.pending.len() as u64
    }

    /// The LSN through which the log is known to be durable.
    pub fn synced_lsn(&self) -> u64 {
        self.synced_lsn
    }

    /// What another thread must fsync to make everything written so far durable, if
    /// anything is written and not yet known durable. The fsync may run while this
    /// `Wal` goes on writing; report it back with [`Wal::note_synced`].
    pub fn sync_target(&self) -> Option<SyncTarget> {
        (self.synced_lsn < self.written_lsn).then(|| SyncTarget {
            file: self.file.clone(),
            path: self.dir.segment_path(self.segment),
            lsn: self.written_lsn,
        })
    }

    /// Another thread fsynced a [`SyncTarget`] taken at `lsn`: everything before it is
    /// durable. A target of an earlier segment changes nothing, since a segment is
    /// synced whole before the next one starts. (That thread counts its own fsyncs.)
    pub fn note_synced(&mut self, lsn: u64) {
        if lsn > self.synced_lsn && lsn >= self.segment_lsn {
            self.synced_lsn = lsn.min(self.written_lsn);
            self.synced_len = self.segment_offset + (self.synced_lsn - self.segment_lsn);
        }
    }

    /// The number of the segment being appended to.
    pub fn segment(&self) -> u64 {
        self.segment
    }

    /// The log's directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Sets the size past which the next flush starts a new segment.
    pub fn set_segment_bytes(&mut self, bytes: u64) {
        self.segment_bytes = bytes;
    }

    /// Continues the log after the checked `scans`, repairing the last segment's tail.
    fn resume(
        mut dir: LogDir,
        first_segment: u64,
        scans: &[SegmentScan],
        warnings: &mut Vec<String>,
    ) -> Result<Wal> {
        let (file, segment, written_len) = match scans.last() {
            Some(last) => reopen_last(&mut dir, last, warnings)?,
            None => (
                dir.create_segment(first_segment)?,
                first_segment,
                HEADER_LEN,
            ),
        };
        let earlier = scans.iter().rev().skip(1);
        let earlier_bytes = earlier.map(|scan| scan.scanned.end - HEADER_LEN).sum();
        dir.reset_fsyncs();
        Ok(Wal {
            dir,
            file: Arc::new(file),
            first_segment,
            segment,
            pending: Vec::new(),
            written_len,
            synced_len: written_len,
            earlier_bytes,
            segment_bytes: SEGMENT_BYTES,
            failure: None,
            fail_next_write: false,
            written_lsn: 0,
            synced_lsn: 0,
            segment_lsn: 0,
            segment_offset: written_len,
        })
    }

    fn write_pending(&mut self, sync: bool) -> Result<()> {
        if !self.pending.is_empty() && std::mem::take(&mut self.fail_next_write) {
            let path = self.dir.segment_path(self.segment);
            let full = std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "no space left on device (injected)",
            );
            return Err(Error::io(format!("appending to {}", path.display()), full));
        }
        if !self.pending.is_empty() {
            let has_records = self.written_len > HEADER_LEN;
            if has_records && self.written_len >= self.segment_bytes {
                self.start_segment()?;
            }
            let path = self.dir.segment_path(self.segment);
            (&*self.file)
                .write_all(&self.pending)
                .map_err(|e| Error::io(format!("appending to {}", path.display()), e))?;
            self.written_len += self.pending.len() as u64;
            self.written_lsn += self.pending.len() as u64;
            self.pending.clear();
        }
        if sync && self.synced_len < self.written_len {
            self.sync_current()?;
        }
        Ok(())
    }

    fn sync_current(&mut self) -> Result<()> {
        let path = self.dir.segment_path(self.segment);
        self.dir.sync_file(&self.file, &path)?;
        self.synced_len = self.written_len;
        self.synced_lsn = self.written_lsn;
        Ok(())
    }

    /// Moves appending to a new segment; the current one is synced whole first.
    fn start_segment(&mut self) -> Result<()> {
        if self.synced_len < self.written_len {
            self.sync_current()?;
        }
        let next = self.segment + 1;
        self.file = Arc::new(self.dir.create_segment(next)?);
        (self.segment_lsn, self.segment_offset) = (self.written_lsn, HEADER_LEN);
        self.earlier_bytes += self.written_len - HEADER_LEN;
        self.segment = next;
        self.written_len = HEADER_LEN;
        self.synced_len = HEADER_LEN;
        Ok(())
    }

    fn write_checkpoint(&mut self, snapshot: &Snapshot) -> Result<()> {
        self.write_pending(true)?;
        let old = self.first_segment..=self.segment;
        checkpoint::write(&mut self.dir, self.segment + 1, snapshot)?;
        self.start_segment()?;
        self.first_segment = self.segment;
        self.earlier_bytes = 0;
        for number in old {
            self.dir.remove(&self.dir.segment_path(number))?;
        }
        Ok(())
    }

    /// Makes the next write of records fail as a full disk would, so tests can check
    /// that a node that cannot write its log stops, loses nothing committed, and says why.
    pub fn fail_next_write(&mut self) {
        self.fail_next_write = true;
    }

    fn check_usable(&self) -> Result<()> {
        match &self.failure {
            None => Ok(()),
            Some(failure) => Err(Error::io(
                format!("writing the log in {}", self.dir.path().display()),
                std::io::Error::other(format!(
                    "an earlier write failed ({failure}); restart the node so that \
                     recovery reads what is really on disk"
                )),
            )),
        }
    }

    fn fail_on_io_error(&mut self, result: Result<()>) -> Result<()> {
        if let Err(e @ Error::Io { .. }) = &result {
            self.failure = Some(e.to_string());
        }
        result
    }
}

/// Splits the segments present into those the checkpoint covers and the live ones from
/// `first_segment` on, which must be numbered without a gap.
fn live_segments(dir: &LogDir, first_segment: u64) -> Result<(Vec<u64>, Vec<u64>)> {
    let (covered, live): (Vec<u64>, Vec<u64>) = dir
        .segments()?
        .into_iter()
        .partition(|number| *number < first_segment);
    for (expected, found) in (first_segment..).zip(&live) {
        if expected != *found {
            let detail = missing_segment(expected, *found, first_segment);
            let path = dir.path().to_path_buf();
            return Err(Error::Corrupt {
                path,
                offset: 0,
                detail,
            });
        }
    }
    Ok((covered, live))
}

fn missing_segment(expected: u64, found: u64, first_segment: u64) -> String {
    let (missing, found) = (files::segment_name(expected), files::segment_name(found));
    if expected == first_segment {
        format!(
            "log segment {missing} is missing: the log starts there, but its first segment \
             is {found}"
        )
    } else {
        let before = files::segment_name(expected - 1);
        format!("log segment {missing} is missing between {before} and {found}")
    }
}

/// Reads and checks every live segment; only the last may end torn.
fn scan_segments(dir: &LogDir, numbers: &[u64]) -> Result<Vec<SegmentScan>> {
    let mut scans = Vec::with_capacity(numbers.len());
    for (index, number) in numbers.iter().enumerate() {
        let path = dir.segment_path(*number);
        let bytes = files::read(&path)?;
        let scanned = frame::scan_segment(&bytes).map_err(|damage| damage.in_file(&path))?;
        let is_last = index + 1 == numbers.len();
        if !is_last && scanned.tail != Tail::Clean {
            let detail = "the segment ends inside a record, but later segments follow it; \
                          only the last segment can end in a torn write";
            let offset = scanned.end;
            return Err(Error::Corrupt {
                path,
                offset,
                detail: detail.into(),
            });
        }
        scans.push(SegmentScan {
            number: *number,
            scanned,
            file_len: bytes.len() as u64,
        });
    }
    Ok(scans)
}

/// Removes what an interrupted checkpoint leaves: `checkpoint.tmp` and covered segments.
fn remove_leftovers(dir: &LogDir, covered: &[u64]) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    let tmp = dir.checkpoint_tmp_path();
    if tmp.exists() {
        dir.remove(&tmp)?;
        warnings.push(format!(
            "node log {}: removed an unfinished checkpoint",
            tmp.display()
        ));
    }
    for number in covered {
        let path = dir.segment_path(*number);
        dir.remove(&path)?;
        let warning = format!(
            "node log {}: removed, the checkpoint covers it",
            path.display()
        );
        warnings.push(warning);
    }
    Ok(warnings)
}

/// Cuts a torn tail off the last segment, syncs it, and opens it for appending.
fn reopen_last(
    dir: &mut LogDir,
    last: &SegmentScan,
    warnings: &mut Vec<String>,
) -> Result<(File, u64, u64)> {
    let path = dir.segment_path(last.number);
    let end = last.scanned.end;
    let dropped = last.file_len - end;
    match last.scanned.tail {
        Tail::Clean => {}
        Tail::TornRecord => warnings.push(format!(
            "node log {}: cut a torn record at byte {end} ({dropped} bytes)",
            path.display()
        )),
        Tail::TornHeader => warnings.push(format!(
            "node log {}: rewrote a torn segment header ({dropped} bytes)",
            path.display()
        )),
    }
    let file = dir.repair_segment(last.number, end)?;
    Ok((file, last.number, end.max(HEADER_LEN)))
}
