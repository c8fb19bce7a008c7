//! The log directory on disk: file names, listing, and creating files durably.
//!
//! A node's directory holds `log.000001`, `log.000002`, ... (segment numbers are
//! zero-padded to six digits so that names sort; larger numbers simply grow longer), an
//! optional `checkpoint`, and `checkpoint.tmp` while a checkpoint is being written.
//! Files with other names are left alone.
//!
//! Creating a file is durable only once the file *and* its directory entry are fsynced,
//! so every creation here syncs both. [`LogDir`] counts the fsyncs it issues, which is
//! the figure group commit exists to keep low.

use super::frame::{self, LOG_MAGIC};
use crate::error::{Error, Result};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The checkpoint's file name.
pub const CHECKPOINT_FILE: &str = "checkpoint";
/// The name a checkpoint is written under before it is renamed into place.
pub const CHECKPOINT_TMP: &str = "checkpoint.tmp";

/// A node's log directory, and how many fsyncs have been issued in it.
#[derive(Debug)]
pub struct LogDir {
    path: PathBuf,
    fsyncs: u64,
}

impl LogDir {
    /// The log directory at `path` (not touched until a method needs it).
    pub fn new(path: &Path) -> LogDir {
        LogDir {
            path: path.to_path_buf(),
            fsyncs: 0,
        }
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

    /// Creates the directory if it is missing, making its entry in the parent durable.
    pub fn create(&mut self) -> Result<()> {
        if self.path.is_dir() {
            return Ok(());
        }
        let context = || format!("creating the log directory {}", self.path.display());
        fs::create_dir_all(&self.path).map_err(|e| Error::io(context(), e))?;
        let parent = self.path.parent().map(Path::to_path_buf);
        match parent.filter(|p| !p.as_os_str().is_empty()) {
            Some(parent) => self.sync_dir_at(&parent),
            None => Ok(()),
        }
    }

    /// The numbers of the segments present, in increasing order.
    pub fn segments(&self) -> Result<Vec<u64>> {
        let context = || format!("listing the log directory {}", self.path.display());
        let mut numbers = Vec::new();
        for entry in fs::read_dir(&self.path).map_err(|e| Error::io(context(), e))? {
            let entry = entry.map_err(|e| Error::io(context(), e))?;
            if let Some(number) = entry.file_name().to_str().and_then(parse_segment_name) {
                numbers.push(number);
            }
        }
        numbers.sort_unstable();
        Ok(numbers)
    }

    /// Fsyncs a file's data (and the metadata needed to read it back, such as its length).
    pub fn sync_file(&mut self, file: &File, path: &Path) -> Result<()> {
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
        let handle = File::open(dir).map_err(|e| Error::io(context(), e))?;
        self.fsyncs += 1;
        handle.sync_all().map_err(|e| Error::io(context(), e))
    }

    /// Creates segment `number` holding just a header, durably, and opens it for
    /// appending. The segment must not exist yet.
    pub fn create_segment(&mut self, number: u64) -> Result<File> {
        let path = self.segment_path(number);
        let context = || format!("creating the log segment {}", path.display());
        let mut file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::io(context(), e))?;
        file.write_all(&frame::header(LOG_MAGIC))
            .map_err(|e| Error::io(context(), e))?;
        self.sync_file(&file, &path)?;
        self.sync_dir()?;
        Ok(file)
    }

    /// Truncates segment `number` to `len` bytes, rewriting its header if `len` does not
    /// cover it, fsyncs it, and opens it for appending.
    pub fn repair_segment(&mut self, number: u64, len: u64) -> Result<File> {
        let path = self.segment_path(number);
        let context = || format!("repairing the log segment {}", path.display());
        let mut file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(context(), e))?;
        let keep = if len < frame::HEADER_LEN { 0 } else { len };
        file.set_len(keep).map_err(|e| Error::io(context(), e))?;
        if keep == 0 {
            file.write_all(&frame::header(LOG_MAGIC))
                .map_err(|e| Error::io(context(), e))?;
        }
        self.sync_file(&file, &path)?;
        Ok(file)
    }

    /// Removes a file, if it is there.
    pub fn remove(&self, path: &Path) -> Result<()> {
        match fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::io(format!("removing {}", path.display()), e))
            }
            _ => Ok(()),
        }
    }
}

/// Reads a whole file, or `None` if it does not exist.
pub fn read_if_present(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
    }
}

/// Reads a whole file that must exist.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))
}

/// The file name of segment `number`.
pub fn segment_name(number: u64) -> String {
    format!("log.{number:06}")
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("log.")?;
    let well_formed = digits.len() >= 6 && digits.bytes().all(|b| b.is_ascii_digit());
    well_formed.then(|| digits.parse().ok()).flatten()
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
