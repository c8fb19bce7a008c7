//! One node's write-ahead log: appending with group commit into preallocated segments,
//! and checkpoints that recycle them. Opening and recovery are in [`super::recover`].
//!
//! # Writing
//!
//! [`Wal::append`] only encodes a record into an in-memory buffer; [`Wal::flush`] writes
//! the buffer with one positioned write and, when asked, one `fdatasync`. The node thread
//! appends every record its state machines produced in one step and then flushes once,
//! syncing if any of them is forced ([`Record::forced`]): that is group commit, and
//! [`Wal::fsyncs`] counts what it saves. A record is durable once a sync covers it;
//! [`Wal::synced_len`] is that boundary in the current segment, and
//! [`Wal::simulate_crash`] throws away everything past it, as a power failure would.
//!
//! Positions in the log are also counted as LSNs (bytes of records written since the
//! `Wal` was opened, across segments), so that the fsync can run on another thread: the
//! node thread writes, hands [`Wal::sync_target`] to its syncer, goes on working, and
//! learns by [`Wal::note_synced`] which LSN that fsync covered.
//!
//! # Preallocation
//!
//! An `fdatasync` after a write that grows a file must also write the file's new size
//! and extent map; after a write over bytes already allocated and written, it writes the
//! data only (about 92 µs against 125 µs here). So a segment is zero-filled ahead of the
//! write position: [`PREALLOCATED_BYTES`](super::files::PREALLOCATED_BYTES) when it is
//! created, then, when a write would pass the end, as much again as the file holds (up
//! to [`MAX_GROWTH`] at a time). Only the fsync after such a growth pays for metadata.
//! The zeros are real writes (`fallocate` leaves unwritten extents, whose conversion is
//! metadata again) and become durable with the next fsync, before any record past them.
//! The write position (`written_len`) is the Wal's, not the file's length.
//!
//! Every write ends with the segment's *end marker* just after its last record, and the
//! next write starts over it. Every frame and marker of a write carries `synced_len` as
//! it was when the write was issued (format version 3): the proof recovery needs to call
//! a bad frame damage rather than a torn unsynced tail (see [`super::frame`]). The marker is how recovery knows the log ends there (see
//! [`super::frame`]); it is not a record and [`Wal::size`] does not count it.
//!
//! # Segments and recycling
//!
//! The log is a sequence of segment files. A new one starts when the current one has
//! grown past [`Wal::set_segment_bytes`] (checked before each write, so a segment can
//! overshoot by one flush) and at every checkpoint. Before a new segment is started the
//! old one is fsynced whole, so only the last segment can ever end in a torn record.
//!
//! [`Wal::checkpoint`] syncs the current segment N, writes the checkpoint (naming N+1),
//! then turns N's own file into segment N+1: a new header, an end marker, fsync, rename,
//! directory fsync. Its blocks are reused without a zero-fill; its old records stay in
//! place but cannot check out as segment N+1's, since every frame's CRC covers the
//! segment number. Older covered segments become spares (up to
//! [`MAX_SPARES`](super::files::MAX_SPARES)) for the next new segment, or are deleted. A
//! crash between any two steps recovers: before the checkpoint's rename the old one and
//! all segments are intact; after it, segments below N+1 are covered and ignored, whatever
//! their header says.
//!
//! # Failures
//!
//! After a failed write or fsync the kernel may have dropped the unwritten pages, and a
//! retry could report success over a hole. So the first I/O error while writing fails
//! the `Wal` for good: every later call returns an error, and the node must be restarted
//! so that recovery reads what really is on disk.

use super::checkpoint;
use super::files::{LogDir, LogFile};
use super::frame::{self, MAX_RECORD_BYTES, v3};
use super::{Record, Snapshot};
use crate::disk::Disk;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The default size past which a new segment is started.
pub const SEGMENT_BYTES: u64 = 64 << 20;
/// The most a segment's zero-filled region grows by at once.
pub const MAX_GROWTH: u64 = 4 << 20;

/// One node's write-ahead log, open for appending.
///
/// Invariants: every segment before the current one is fsynced whole, and ends with its
/// end marker; the current segment is in format version 3, holds its end marker at
/// `written_len`, and `HEADER_LEN <= synced_len <= written_len`,
/// `written_len + MARKER_LEN <= allocated`, the file's length.
#[derive(Debug)]
pub struct Wal {
    pub(super) dir: LogDir,
    /// Shared with the node's syncer thread, which fsyncs it (see [`Wal::sync_target`]).
    pub(super) file: LogFile,
    pub(super) first_segment: u64,
    pub(super) segment: u64,
    pending: Vec<u8>,
    pub(super) written_len: u64,
    pub(super) synced_len: u64,
    pub(super) allocated: u64,
    pub(super) earlier_bytes: u64,
    /// How many records the current segment holds, and the pending buffer: the size
    /// leaves out their synced fields.
    segment_records: u64,
    pending_records: u64,
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
    pub file: LogFile,
    /// Its path, for error messages.
    pub path: PathBuf,
    /// Everything before this LSN is durable once `file` is fsynced.
    pub lsn: u64,
}

/// Where appending continues when a log is opened (built by recovery).
pub(super) struct Resume {
    /// The log directory.
    pub dir: LogDir,
    /// The segment to append to, open for writing.
    pub file: LogFile,
    /// The first segment after the checkpoint.
    pub first_segment: u64,
    /// The number of the segment to append to (version 2, durable up to `written_len`).
    pub segment: u64,
    /// Where its records end and its end marker is.
    pub written_len: u64,
    /// Its file's length.
    pub allocated: u64,
    /// The bytes of records in the live segments before it.
    pub earlier_bytes: u64,
    /// How many records it holds before `written_len`.
    pub records: u64,
}

impl Wal {
    pub(super) fn resume(mut resume: Resume) -> Wal {
        resume.dir.reset_fsyncs();
        Wal {
            dir: resume.dir,
            file: resume.file,
            first_segment: resume.first_segment,
            segment: resume.segment,
            pending: Vec::new(),
            written_len: resume.written_len,
            synced_len: resume.written_len,
            allocated: resume.allocated,
            earlier_bytes: resume.earlier_bytes,
            segment_records: resume.records,
            pending_records: 0,
            segment_bytes: SEGMENT_BYTES,
            failure: None,
            fail_next_write: false,
            written_lsn: 0,
            synced_lsn: 0,
            segment_lsn: 0,
            segment_offset: resume.written_len,
        }
    }

    /// Encodes `record` at the end of the pending buffer. Nothing is written until
    /// [`Wal::flush`].
    pub fn append(&mut self, record: &Record) -> Result<()> {
        self.check_usable()?;
        let head = v3::FRAME_HEADER_LEN as usize;
        frame::push_unsealed_with(&mut self.pending, record, MAX_RECORD_BYTES, head)
            .map(|_| self.pending_records += 1)
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
    /// older segments are recycled. Pending records are made durable first.
    pub fn checkpoint(&mut self, snapshot: &Snapshot) -> Result<()> {
        self.check_usable()?;
        let result = self.write_checkpoint(snapshot);
        self.fail_on_io_error(result)
    }

    /// Does to the log what a machine crash would: the pending records and everything
    /// written but not fsynced are lost. The bytes past the synced boundary go back to
    /// what they were at the last fsync: an end marker there (whose synced position is
    /// its own offset), then zeros (a recycled segment held stale bytes there instead,
    /// which recovery treats the same way). For losses of any subset of unsynced sectors,
    /// open the log on a [`SimDisk`](crate::disk::SimDisk) instead.
    pub fn simulate_crash(self) -> Result<()> {
        if self.synced_len == self.written_len {
            return Ok(());
        }
        let marker = v3::marker(self.segment, self.synced_len, self.synced_len);
        let after = self.synced_len + v3::MARKER_LEN;
        let end = self.written_len + v3::MARKER_LEN;
        self.dir
            .write_at(&*self.file, self.segment, &marker, self.synced_len)?;
        self.dir.zero(&*self.file, self.segment, after, end)
    }

    /// Bytes of log records since the last checkpoint, pending ones included (segment
    /// headers, end markers and preallocated space are not counted, so the size right
    /// after a checkpoint is 0).
    pub fn size(&self) -> u64 {
        let pending = self.pending.len() as u64 - v3::SYNCED_LEN * self.pending_records;
        self.earlier_bytes + self.segment_size() + pending
    }

    /// The bytes of records written in the current segment, counted as in [`Wal::size`].
    fn segment_size(&self) -> u64 {
        (self.written_len - v3::HEADER_LEN) - v3::SYNCED_LEN * self.segment_records
    }

    /// How many fsyncs (of segments, checkpoints and the directory) this log has issued
    /// since [`Wal::open`] returned.
    pub fn fsyncs(&self) -> u64 {
        self.dir.fsyncs()
    }

    /// The offset in the current segment up to which records are known to be durable.
    pub fn synced_len(&self) -> u64 {
        self.synced_len
    }

    /// The number of the segment being appended to.
    pub fn segment(&self) -> u64 {
        self.segment
    }

    /// The log's directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
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

    /// This log on `disk`, a copy of the disk it is on (`SimDisk::duplicate`): the same
    /// state, its segment opened again on the copy. For an explorer that forks a
    /// simulated cluster instead of replaying it.
    pub fn duplicate_on(&self, disk: Arc<dyn Disk>) -> Result<Wal> {
        let dir = self.dir.duplicate_on(disk);
        let file = dir.open_segment(self.segment)?;
        Ok(Wal {
            dir,
            file,
            first_segment: self.first_segment,
            segment: self.segment,
            pending: self.pending.clone(),
            written_len: self.written_len,
            synced_len: self.synced_len,
            allocated: self.allocated,
            earlier_bytes: self.earlier_bytes,
            segment_records: self.segment_records,
            pending_records: self.pending_records,
            segment_bytes: self.segment_bytes,
            failure: self.failure.clone(),
            fail_next_write: self.fail_next_write,
            written_lsn: self.written_lsn,
            synced_lsn: self.synced_lsn,
            segment_lsn: self.segment_lsn,
            segment_offset: self.segment_offset,
        })
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

    /// Sets the size past which the next flush starts a new segment.
    pub fn set_segment_bytes(&mut self, bytes: u64) {
        self.segment_bytes = bytes;
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
            let has_records = self.written_len > v3::HEADER_LEN;
            if has_records && self.written_len >= self.segment_bytes {
                self.start_segment()?;
            }
            self.write_records()?;
        }
        if sync && self.synced_len < self.written_len {
            self.sync_current()?;
        }
        Ok(())
    }

    /// Writes the pending frames and the end marker after them at `written_len`, growing
    /// the zero-filled region first if they would not fit.
    fn write_records(&mut self) -> Result<()> {
        let records_len = self.pending.len() as u64;
        let end = self.written_len + records_len;
        let synced = self.synced_len;
        v3::seal(&mut self.pending, self.segment, self.written_len, synced);
        self.pending
            .extend_from_slice(&v3::marker(self.segment, end, synced));
        let write_end = end + v3::MARKER_LEN;
        self.dir
            .write_at(&*self.file, self.segment, &self.pending, self.written_len)?;
        self.pending.clear();
        self.segment_records += std::mem::take(&mut self.pending_records);
        self.written_len = end;
        self.written_lsn += records_len;
        if write_end > self.allocated {
            let growth = self.allocated.min(MAX_GROWTH);
            let allocated = write_end.max(self.allocated + growth);
            self.dir
                .zero(&*self.file, self.segment, write_end, allocated)?;
            self.allocated = allocated;
        }
        Ok(())
    }

    fn sync_current(&mut self) -> Result<()> {
        let path = self.dir.segment_path(self.segment);
        self.dir.sync_file(&*self.file, &path)?;
        self.synced_len = self.written_len;
        self.synced_lsn = self.written_lsn;
        Ok(())
    }

    /// Moves appending to a new segment (a spare or a new file); the current one is
    /// synced whole first.
    fn start_segment(&mut self) -> Result<()> {
        if self.synced_len < self.written_len {
            self.sync_current()?;
        }
        let next = self.segment + 1;
        let (file, allocated) = self.dir.new_segment(next)?;
        self.earlier_bytes += self.segment_size();
        self.file = file;
        self.moved_to(next, allocated);
        Ok(())
    }

    /// Points appending at the start of the empty segment `segment`, in `self.file`.
    fn moved_to(&mut self, segment: u64, allocated: u64) {
        self.segment = segment;
        self.written_len = v3::HEADER_LEN;
        self.synced_len = v3::HEADER_LEN;
        self.segment_records = 0;
        self.allocated = allocated;
        (self.segment_lsn, self.segment_offset) = (self.written_lsn, v3::HEADER_LEN);
    }

    fn write_checkpoint(&mut self, snapshot: &Snapshot) -> Result<()> {
        self.write_pending(true)?;
        let (first, current, next) = (self.first_segment, self.segment, self.segment + 1);
        checkpoint::write(&mut self.dir, next, snapshot)?;
        let path = self.dir.segment_path(current);
        let allocated = self.dir.reuse(&*self.file, &path, next)?;
        for number in first..current {
            self.dir.retire(number)?;
        }
        self.dir.sync_dir()?;
        self.moved_to(next, allocated);
        self.first_segment = next;
        self.earlier_bytes = 0;
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
