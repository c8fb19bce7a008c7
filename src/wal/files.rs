//! The log directory on disk: file names, listing, and creating, preallocating and
//! recycling segment files durably.
//!
//! A node's directory holds `log.000001`, `log.000002`, ... (segment numbers are
//! zero-padded to six digits so that names sort; larger numbers simply grow longer), an
//! optional `checkpoint`, `checkpoint.tmp` while a checkpoint is being written, and up to
//! [`MAX_SPARES`] `spare.NNNNNN` files: segments a checkpoint retired, named after their
//! old number, kept so that a later segment reuses their blocks instead of zero-filling
//! new ones. Spares are never read. Files with other names are left alone.
//!
//! A segment file is always longer than its log: [`LogDir::create_segment`] zero-fills a
//! new one to [`PREALLOCATED_BYTES`], with real writes, and [`LogDir::initialize`] turns
//! any old file into an empty segment by writing only its header and end marker (the old
//! bytes past them cannot check out as the new segment's; see [`super::frame`]).
//!
//! Creating a file is durable only once the file *and* its directory entry are fsynced,
//! so every creation here syncs both; a spare is renamed into place only after its new
//! header is fsynced. Creating the log directory fsyncs the parent of every level it
//! creates. [`LogDir`] counts the fsyncs it issues, which is the figure group commit
//! exists to keep low.
//!
//! Every file operation goes through the directory's [`Disk`], the real file system or a
//! simulated one; nothing here touches `std::fs`.

use super::frame::v3;
use crate::disk::{Disk, DiskFile, Open};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An open file of the log: a segment, shared with the node's syncer thread.
pub type LogFile = Arc<dyn DiskFile>;

/// The checkpoint's file name.
pub const CHECKPOINT_FILE: &str = "checkpoint";
/// The name a checkpoint is written under before it is renamed into place.
pub const CHECKPOINT_TMP: &str = "checkpoint.tmp";
/// How much of a new segment is zero-filled when it is created.
pub const PREALLOCATED_BYTES: u64 = 64 << 10;
/// How many retired segment files are kept for reuse; a checkpoint removes the others.
pub const MAX_SPARES: usize = 2;

/// A node's log directory on a disk, and how many fsyncs have been issued in it.
#[derive(Debug)]
pub struct LogDir {
    disk: Arc<dyn Disk>,
    path: PathBuf,
    fsyncs: u64,
}

impl LogDir {
    /// The same directory on `disk`, a copy of this one's disk (see `Wal::duplicate_on`).
    pub fn duplicate_on(&self, disk: Arc<dyn Disk>) -> LogDir {
        LogDir {
            disk,
            path: self.path.clone(),
            fsyncs: self.fsyncs,
        }
    }

    /// The log directory at `path` of `disk` (not touched until a method needs it).
    pub fn new(disk: Arc<dyn Disk>, path: &Path) -> LogDir {
        LogDir {
            disk,
            path: path.to_path_buf(),
            fsyncs: 0,
        }
    }

    /// The disk the directory is on.
    pub fn disk(&self) -> &Arc<dyn Disk> {
        &self.disk
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many fsyncs (of files and of the directory) were issued since the count was
    /// last reset.
    pub fn fsyncs(&self) -> u64 {
        self.fsyncs
    }

    /// Starts counting fsyncs from zero.
    pub fn reset_fsyncs(&mut self) {
        self.fsyncs = 0;
    }

    /// The path of segment `number`.
    pub fn segment_path(&self, number: u64) -> PathBuf {
        self.path.join(segment_name(number))
    }

    /// The path of the checkpoint file.
    pub fn checkpoint_path(&self) -> PathBuf {
        self.path.join(CHECKPOINT_FILE)
    }

    /// The path a checkpoint is written to before it is renamed into place.
    pub fn checkpoint_tmp_path(&self) -> PathBuf {
        self.path.join(CHECKPOINT_TMP)
    }

    /// Creates the directory if it is missing, with any missing parents, making each new
    /// entry durable by fsyncing the directory that holds it.
    pub fn create(&mut self) -> Result<()> {
        let missing: Vec<PathBuf> = (self.path.ancestors())
            .take_while(|level| !level.as_os_str().is_empty() && !self.disk.is_dir(level))
            .map(Path::to_path_buf)
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let context = || format!("creating the log directory {}", self.path.display());
        (self.disk.create_dir_all(&self.path)).map_err(|e| Error::io(context(), e))?;
        for level in missing.iter().rev() {
            let parent = level.parent().filter(|p| !p.as_os_str().is_empty());
            if let Some(parent) = parent {
                self.sync_dir_at(parent)?;
            }
        }
        Ok(())
    }

    /// The numbers of the segments present, in increasing order.
    pub fn segments(&self) -> Result<Vec<u64>> {
        self.numbered(parse_segment_name)
    }

    fn numbered(&self, parse: fn(&str) -> Option<u64>) -> Result<Vec<u64>> {
        let context = || format!("listing the log directory {}", self.path.display());
        let names = self
            .disk
            .list(&self.path)
            .map_err(|e| Error::io(context(), e))?;
        let mut numbers: Vec<u64> = names.iter().filter_map(|name| parse(name)).collect();
        numbers.sort_unstable();
        Ok(numbers)
    }

    /// Fsyncs a file's data (and the metadata needed to read it back, such as its length).
    pub fn sync_file(&mut self, file: &dyn DiskFile, path: &Path) -> Result<()> {
        self.fsyncs += 1;
        file.sync_data()
            .map_err(|e| Error::io(format!("fsyncing {}", path.display()), e))
    }

    /// Fsyncs the directory, making created, renamed and removed entries durable.
    pub fn sync_dir(&mut self) -> Result<()> {
        let path = self.path.clone();
        self.sync_dir_at(&path)
    }

    fn sync_dir_at(&mut self, dir: &Path) -> Result<()> {
        let context = || format!("fsyncing the directory {}", dir.display());
        self.fsyncs += 1;
        self.disk.sync_dir(dir).map_err(|e| Error::io(context(), e))
    }

    /// Creates segment `number` as an empty version 2 segment (header, end marker, zeros
    /// to [`PREALLOCATED_BYTES`]), durably, and opens it for writing. The segment must not
    /// exist yet.
    pub fn create_segment(&mut self, number: u64) -> Result<(LogFile, u64)> {
        let path = self.segment_path(number);
        let context = || format!("creating the log segment {}", path.display());
        let file = (self.disk.open(&path, Open::CreateNew)).map_err(|e| Error::io(context(), e))?;
        let allocated = self.initialize(&*file, &path, number)?;
        self.sync_dir()?;
        Ok((file, allocated))
    }

    /// Makes segment `number` out of an old file: a spare if there is one (renamed into
    /// place), else a new file. Either way the segment is durable and empty.
    pub fn new_segment(&mut self, number: u64) -> Result<(LogFile, u64)> {
        match self.spares()?.first() {
            Some(spare) => {
                let spare = self.path.join(spare_name(*spare));
                let file = self.open_rw(&spare)?;
                let allocated = self.reuse(&*file, &spare, number)?;
                self.sync_dir()?;
                Ok((file, allocated))
            }
            None => self.create_segment(number),
        }
    }

    /// Turns the open file at `from`, whose contents are no longer needed, into the empty
    /// segment `number`: writes its header and end marker, fsyncs it, and renames it into
    /// place. The caller fsyncs the directory.
    pub fn reuse(&mut self, file: &dyn DiskFile, from: &Path, number: u64) -> Result<u64> {
        let allocated = self.initialize(file, from, number)?;
        let path = self.segment_path(number);
        self.disk.rename(from, &path).map_err(|e| {
            let context = format!("renaming {} to {}", from.display(), path.display());
            Error::io(context, e)
        })?;
        Ok(allocated)
    }

    /// Writes the header and end marker of empty segment `number` at the start of `file`,
    /// zero-fills it up to [`PREALLOCATED_BYTES`] if it is shorter, and fsyncs it. Returns
    /// the file's length. Old bytes past the marker stay: they cannot check out as this
    /// segment's.
    pub fn initialize(&mut self, file: &dyn DiskFile, path: &Path, number: u64) -> Result<u64> {
        let context = || format!("preparing the log segment {}", path.display());
        let mut start = v3::header(number).to_vec();
        start.extend_from_slice(&v3::marker(number, v3::HEADER_LEN, v3::HEADER_LEN));
        let len = file.file_len().map_err(|e| Error::io(context(), e))?;
        let allocated = len.max(PREALLOCATED_BYTES);
        file.write_at(&start, 0)
            .map_err(|e| Error::io(context(), e))?;
        write_zeros(file, (start.len() as u64).max(len), allocated)
            .map_err(|e| Error::io(context(), e))?;
        self.sync_file(file, path)?;
        Ok(allocated)
    }

    /// Writes `bytes` at `offset` of the open segment `number`.
    pub fn write_at(
        &self,
        file: &dyn DiskFile,
        number: u64,
        bytes: &[u8],
        offset: u64,
    ) -> Result<()> {
        file.write_at(bytes, offset).map_err(|e| {
            let path = self.segment_path(number);
            Error::io(format!("writing to {}", path.display()), e)
        })
    }

    /// Writes zeros to `from..to` of the open segment `number`.
    pub fn zero(&self, file: &dyn DiskFile, number: u64, from: u64, to: u64) -> Result<()> {
        write_zeros(file, from, to).map_err(|e| {
            let path = self.segment_path(number);
            Error::io(format!("zero-filling {}", path.display()), e)
        })
    }

    /// Opens the existing segment `number` for writing.
    pub fn open_segment(&self, number: u64) -> Result<LogFile> {
        self.open_rw(&self.segment_path(number))
    }

    /// Truncates the version 1 segment `number` to `len` bytes and fsyncs it.
    pub fn truncate_segment(&mut self, number: u64, len: u64) -> Result<()> {
        let path = self.segment_path(number);
        let file = self.open_rw(&path)?;
        file.set_len(len)
            .map_err(|e| Error::io(format!("repairing the log segment {}", path.display()), e))?;
        self.sync_file(&*file, &path)
    }

    /// Retires segment `number`, which a checkpoint covers: it becomes a spare if fewer
    /// than [`MAX_SPARES`] are kept, else it is removed. Returns the spare's name, if
    /// kept. The caller fsyncs the directory (until then either name may be found, and
    /// both are handled).
    pub fn retire(&self, number: u64) -> Result<Option<String>> {
        let path = self.segment_path(number);
        if self.spares()?.len() >= MAX_SPARES {
            self.remove(&path)?;
            return Ok(None);
        }
        let spare = spare_name(number);
        self.disk
            .rename(&path, &self.path.join(&spare))
            .map_err(|e| {
                let context = format!("renaming {} to {spare}", path.display());
                Error::io(context, e)
            })?;
        Ok(Some(spare))
    }

    /// The old segment numbers of the spare files present, in increasing order.
    pub fn spares(&self) -> Result<Vec<u64>> {
        self.numbered(parse_spare_name)
    }

    /// Removes a file, if it is there.
    pub fn remove(&self, path: &Path) -> Result<()> {
        match self.disk.remove(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::io(format!("removing {}", path.display()), e))
            }
            _ => Ok(()),
        }
    }

    /// Whether a file is at `path`.
    pub fn exists(&self, path: &Path) -> bool {
        self.disk.exists(path)
    }

    /// Reads a whole file, or `None` if it does not exist.
    pub fn read_if_present(&self, path: &Path) -> Result<Option<Vec<u8>>> {
        match self.disk.read(path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
        }
    }

    /// Reads a whole file that must exist.
    pub fn read(&self, path: &Path) -> Result<Vec<u8>> {
        (self.disk.read(path)).map_err(|e| Error::io(format!("reading {}", path.display()), e))
    }

    /// Creates (or empties) the file at `path` and opens it for writing.
    pub fn create_file(&self, path: &Path) -> Result<LogFile> {
        (self.disk.open(path, Open::Truncate))
            .map_err(|e| Error::io(format!("creating {}", path.display()), e))
    }

    fn open_rw(&self, path: &Path) -> Result<LogFile> {
        (self.disk.open(path, Open::Existing))
            .map_err(|e| Error::io(format!("opening {}", path.display()), e))
    }
}

/// The file name of segment `number`.
pub fn segment_name(number: u64) -> String {
    format!("log.{number:06}")
}

/// The file name of the spare that was segment `number`.
pub fn spare_name(number: u64) -> String {
    format!("spare.{number:06}")
}

fn parse_segment_name(name: &str) -> Option<u64> {
    parse_number(name.strip_prefix("log.")?)
}

fn parse_spare_name(name: &str) -> Option<u64> {
    parse_number(name.strip_prefix("spare.")?)
}

fn parse_number(digits: &str) -> Option<u64> {
    let well_formed = digits.len() >= 6 && digits.bytes().all(|b| b.is_ascii_digit());
    well_formed.then(|| digits.parse().ok()).flatten()
}

/// Writes zeros to `from..to` of `file` (really writes them: space that `fallocate`
/// reserves is marked unwritten, and converting it on the first write is metadata again).
fn write_zeros(file: &dyn DiskFile, from: u64, to: u64) -> std::io::Result<()> {
    static ZEROS: [u8; 64 << 10] = [0; 64 << 10];
    let mut at = from;
    while at < to {
        let n = (to - at).min(ZEROS.len() as u64);
        file.write_at(&ZEROS[..n as usize], at)?;
        at += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_round_trip_and_sort() {
        assert_eq!(segment_name(3), "log.000003");
        assert_eq!(segment_name(1_234_567), "log.1234567");
        assert_eq!(parse_segment_name("log.000003"), Some(3));
        assert_eq!(parse_segment_name("log.1234567"), Some(1_234_567));
        for stranger in [
            "log.3",
            "log.00000x",
            "checkpoint",
            "log.000003.bak",
            "xlog.000003",
        ] {
            assert_eq!(parse_segment_name(stranger), None, "{stranger}");
        }
    }
}
