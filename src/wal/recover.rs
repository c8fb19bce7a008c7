//! Opening a log: recovery of what it holds, and repair of what a crash left behind.
//!
//! [`Wal::open`] reads the checkpoint, then every segment from the one the checkpoint
//! names, in order, by the rules of [`super::frame`]. It checks everything before it
//! changes anything: damage anywhere is an [`Error::Corrupt`] naming the file and offset,
//! and leaves the directory untouched. Then it repairs, each with a warning: a leftover
//! `checkpoint.tmp` is removed, segments older than the checkpoint are retired (kept as
//! spares or removed), and the last segment is made ready to append to:
//!
//! - a torn header (its creation was cut off) is rewritten, and appending starts after it;
//! - a version 3 segment whose walk ended torn gets an end marker at the end of its last
//!   whole record and zeros over the rest of the torn record. If the walk found no frame
//!   or marker of this segment anywhere after that point, appending continues there:
//!   appending only ever writes at that point, so nothing already past it can come to
//!   check out. If it found some (of the same unsynced write, which reached the disk in
//!   part, or of later unsynced ones), the segment is left sealed by the new marker and a
//!   new segment is started, so that a later torn write can never bring one of them back
//!   into the walk;
//! - a version 3 segment that ended cleanly continues in place if only zeros follow its
//!   end marker. Otherwise (stale bytes of a recycled file, or bytes of a write that
//!   never was synced) it is left as it is, sealed by its marker, and a new segment is
//!   started: recovery never has to tell what lies past a marker;
//! - a version 2 segment is repaired the same way (with a version 2 marker), and a new
//!   version 3 segment is always started after it: a segment holds frames of one layout;
//! - a version 1 segment is cut at its torn tail as version 1 always was, and a new
//!   version 2 segment is started after it.
//!
//! Finally the last segment is fsynced (or, when a new one starts, the one before it), and
//! then the directory, so that nothing recovery replays can still vanish: a process that
//! crashed may have left writes in the page cache only, and names too (a segment created
//! or renamed into place, a spare retired, before the directory fsync that would have
//! made it durable). Without the directory fsync, records appended to such a segment
//! after the restart would be fsynced and acknowledged, and lost with its name at the next
//! power loss.
//!
//! Known limits: recovery holds a segment's bytes in memory while it reads it, and reads
//! every record since the last checkpoint, so checkpoints keep restarts quick. Each
//! restart after a checkpoint starts a new segment (the recycled one holds stale bytes
//! past its end), until the next checkpoint recycles them.

use super::checkpoint;
use super::files::{self, LogDir, PREALLOCATED_BYTES};
use super::frame::{self, Scanned, Tail, v2, v3};
use super::log::{Resume, Wal};
use super::{Record, Snapshot};
use crate::disk::{self, Disk, DiskFile};
use crate::error::{Error, Result};
use std::path::Path;
use std::sync::Arc;

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
}

impl SegmentScan {
    /// The bytes of its whole records, counted as [`Wal::size`] does (without the synced
    /// fields of version 3).
    fn record_bytes(&self) -> u64 {
        let (header, extra) = match self.scanned.version {
            1 => (frame::HEADER_LEN, 0),
            v2::VERSION => (v2::HEADER_LEN, 0),
            _ => (v3::HEADER_LEN, v3::SYNCED_LEN),
        };
        let records = self.scanned.records.len() as u64;
        self.scanned.end.saturating_sub(header) - extra * records
    }
}

impl Wal {
    /// Opens (creating if needed) the log in `dir` of the real file system and recovers
    /// what it holds.
    pub fn open(dir: &Path) -> Result<(Wal, Recovery)> {
        Wal::open_on(disk::real(), dir)
    }

    /// Opens (creating if needed) the log in `dir` of `disk` and recovers what it holds:
    /// [`Wal::open`] on any disk, such as a [`SimDisk`](crate::disk::SimDisk).
    pub fn open_on(disk: Arc<dyn Disk>, dir: &Path) -> Result<(Wal, Recovery)> {
        let mut log_dir = LogDir::new(disk, dir);
        log_dir.create()?;
        let checkpoint = checkpoint::read(&log_dir)?;
        let first_segment = checkpoint.as_ref().map_or(1, |c| c.first_segment);
        let (covered, live) = live_segments(&log_dir, first_segment)?;
        let scans = scan_segments(&log_dir, &live)?;
        let mut warnings = remove_leftovers(&log_dir, &covered)?;
        let mut resume = resume(log_dir, first_segment, &scans, &mut warnings)?;
        resume.dir.sync_dir()?;
        let records = scans.into_iter().flat_map(|scan| scan.scanned.records);
        let recovery = Recovery {
            snapshot: checkpoint.map(|c| c.snapshot),
            records: records.map(|(_, record)| record).collect(),
            warnings,
        };
        Ok((Wal::resume(resume), recovery))
    }

    /// Lists the records in the log's segments now, as `(segment, offset, record)`, for
    /// `SHOW LOG` on a running or crashed node. Changes nothing on disk: a torn tail, the
    /// preallocated zeros and a recycled file's stale bytes are not listed, and segments
    /// the checkpoint covers are skipped.
    pub fn read_records(dir: &Path) -> Result<Vec<(u64, u64, Record)>> {
        Wal::read_records_on(disk::real(), dir)
    }

    /// [`Wal::read_records`] on any disk.
    pub fn read_records_on(disk: Arc<dyn Disk>, dir: &Path) -> Result<Vec<(u64, u64, Record)>> {
        let scans = read_live(&LogDir::new(disk, dir))?;
        let listed = scans.into_iter().flat_map(|scan| {
            let number = scan.number;
            let records = scan.scanned.records.into_iter();
            records.map(move |(offset, record)| (number, offset, record))
        });
        Ok(listed.collect())
    }

    /// The snapshot of the latest checkpoint of the log at `dir`, if there is one (for
    /// `SHOW LOG`: what the checkpoint carries). Changes nothing on disk.
    pub fn read_checkpoint(dir: &Path) -> Result<Option<Snapshot>> {
        let log_dir = LogDir::new(disk::real(), dir);
        Ok(checkpoint::read(&log_dir)?.map(|checkpoint| checkpoint.snapshot))
    }

    /// The bytes of log records since the last checkpoint in the log at `dir`, as
    /// [`Wal::size`] would report after opening it (for a node that is down). Changes
    /// nothing on disk.
    pub fn logged_bytes(dir: &Path) -> Result<u64> {
        let log_dir = LogDir::new(disk::real(), dir);
        Ok(read_live(&log_dir)?
            .iter()
            .map(SegmentScan::record_bytes)
            .sum())
    }
}

fn read_live(log_dir: &LogDir) -> Result<Vec<SegmentScan>> {
    let checkpoint = checkpoint::read(log_dir)?;
    let first_segment = checkpoint.map_or(1, |c| c.first_segment);
    let (_, live) = live_segments(log_dir, first_segment)?;
    scan_segments(log_dir, &live)
}

/// Makes the last segment ready to append to (or starts a new one), per the module docs.
fn resume(
    mut dir: LogDir,
    first_segment: u64,
    scans: &[SegmentScan],
    warnings: &mut Vec<String>,
) -> Result<Resume> {
    let Some((last, earlier)) = scans.split_last() else {
        let (file, allocated) = dir.new_segment(first_segment)?;
        return Ok(Resume {
            dir,
            file,
            first_segment,
            segment: first_segment,
            written_len: v3::HEADER_LEN,
            allocated,
            earlier_bytes: 0,
            records: 0,
        });
    };
    let earlier_bytes: u64 = earlier.iter().map(SegmentScan::record_bytes).sum();
    let number = last.number;
    let path = dir.segment_path(number);
    let scanned = &last.scanned;
    let (end, torn) = (scanned.end, scanned.torn_bytes);
    let file = dir.open_segment(number)?;
    let continues = match (scanned.tail, scanned.version) {
        (Tail::TornHeader, _) => {
            warnings.push(format!(
                "node log {}: rewrote a torn segment header ({torn} bytes)",
                path.display()
            ));
            let allocated = dir.initialize(&*file, &path, number)?;
            Some((v3::HEADER_LEN, allocated))
        }
        (tail, 1) => {
            if tail == Tail::TornRecord {
                warnings.push(torn_warning(&path, end, torn));
                dir.truncate_segment(number, end)?;
            } else {
                dir.sync_file(&*file, &path)?;
            }
            None
        }
        (Tail::TornRecord, version) => {
            warnings.push(torn_warning(&path, end, torn));
            let allocated = mark_end(&mut dir, &*file, (number, version), end, torn)?;
            let in_place = version == v3::VERSION && scanned.appendable;
            in_place.then_some((end, allocated))
        }
        (_, v3::VERSION) if scanned.appendable => Some((
            end,
            mark_end(&mut dir, &*file, (number, v3::VERSION), end, torn)?,
        )),
        (_, _) => {
            dir.sync_file(&*file, &path)?;
            None
        }
    };
    let records = scanned.records.len() as u64;
    let (file, segment, written_len, allocated, earlier_bytes, records) = match continues {
        Some((written_len, allocated)) => {
            let records = if written_len == v3::HEADER_LEN {
                0
            } else {
                records
            };
            (file, number, written_len, allocated, earlier_bytes, records)
        }
        None => {
            let (file, allocated) = dir.new_segment(number + 1)?;
            let sealed = earlier_bytes + last.record_bytes();
            (file, number + 1, v3::HEADER_LEN, allocated, sealed, 0)
        }
    };
    Ok(Resume {
        dir,
        file,
        first_segment,
        segment,
        written_len,
        allocated,
        earlier_bytes,
        records,
    })
}

fn torn_warning(path: &Path, end: u64, torn: u64) -> String {
    if torn == 0 {
        format!(
            "node log {}: wrote the missing end marker at byte {end} (an append was cut \
             short after its records)",
            path.display()
        )
    } else {
        format!(
            "node log {}: cut a torn record at byte {end} ({torn} bytes)",
            path.display()
        )
    }
}

/// Writes the end marker at `end` of segment `number` (of format `version`, 2 or 3) over
/// the first of the `torn` bytes there, zeros over the rest of them, zero-fills the file
/// up to the preallocated size if it is shorter, and fsyncs it. Returns the file's length.
fn mark_end(
    dir: &mut LogDir,
    file: &dyn DiskFile,
    (number, version): (u64, u32),
    end: u64,
    torn: u64,
) -> Result<u64> {
    let path = dir.segment_path(number);
    let io = |e| Error::io(format!("repairing the log segment {}", path.display()), e);
    let len = file.file_len().map_err(io)?;
    let marker = match version {
        v2::VERSION => v2::marker(number, end).to_vec(),
        _ => v3::marker(number, end, end).to_vec(),
    };
    let after = end + (marker.len() as u64).max(torn);
    let mut repair = marker;
    repair.resize((after - end) as usize, 0);
    dir.write_at(file, number, &repair, end)?;
    let allocated = len.max(after).max(PREALLOCATED_BYTES);
    dir.zero(file, number, len.max(after), allocated)?;
    dir.sync_file(file, &path)?;
    Ok(allocated)
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
        let bytes = dir.read(&path)?;
        let scanned =
            frame::scan_segment(&bytes, *number).map_err(|damage| damage.in_file(&path))?;
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
        });
    }
    Ok(scans)
}

/// Removes what an interrupted checkpoint leaves: `checkpoint.tmp`, and covered segments
/// (retired: kept as spares, or removed).
fn remove_leftovers(dir: &LogDir, covered: &[u64]) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    let tmp = dir.checkpoint_tmp_path();
    if dir.exists(&tmp) {
        dir.remove(&tmp)?;
        warnings.push(format!(
            "node log {}: removed an unfinished checkpoint",
            tmp.display()
        ));
    }
    for number in covered {
        let path = dir.segment_path(*number);
        let kept = match dir.retire(*number)? {
            Some(spare) => format!(" (its file is kept as {spare}, to be reused)"),
            None => String::new(),
        };
        let warning = format!(
            "node log {}: removed, the checkpoint covers it{kept}",
            path.display()
        );
        warnings.push(warning);
    }
    Ok(warnings)
}
