//! The storage seam: the few file operations the write-ahead log needs, behind a trait, so
//! that the same log code runs on the real file system ([`RealDisk`]) and on a simulated
//! disk that can lose power ([`SimDisk`]).
//!
//! The interface is what a crash-consistency argument is made of, and nothing more:
//! create or open a file, write at an offset, read a whole file, set its length, fsync its
//! data, rename, remove, list a directory and fsync a directory. Every durability promise
//! of the log is stated in these terms (see `logs/FORMAT.md`): *a file's bytes are durable
//! once the file is fsynced; a creation, rename or removal is durable once its directory
//! is fsynced*. Nothing else is assumed, and [`SimDisk`] keeps nothing else at a power
//! loss.
//!
//! The log holds an `Arc<dyn Disk>`; its files are `Arc<dyn DiskFile>`, shared with the
//! node's syncer thread, which fsyncs them while the node thread writes. `Wal::open(dir)`
//! uses [`RealDisk`]; `Wal::open_on(disk, dir)` takes any disk.
//!
//! # Using the simulated disk
//!
//! ```
//! use kv2pc::disk::{Disk, SimDisk};
//! use kv2pc::wal::{Record, Wal};
//! use std::path::Path;
//! use std::sync::Arc;
//!
//! let disk = Arc::new(SimDisk::new());
//! let dir = Path::new("/sim/node0");
//! let (mut wal, _) = Wal::open_on(disk.clone(), dir).unwrap();
//! wal.append(&Record::TidLease { upto: 64 }).unwrap();
//! wal.flush(true).unwrap();              // fsynced: survives any power loss
//! wal.append(&Record::TidLease { upto: 128 }).unwrap();
//! wal.flush(false).unwrap();             // written, not fsynced
//! drop(wal);
//! disk.power_loss(7);                    // keeps the first, and any sectors of the second
//! let (_, recovery) = Wal::open_on(disk.clone(), dir).unwrap();
//! assert_eq!(recovery.records[0], Record::TidLease { upto: 64 });
//! ```
//!
//! [`SimDisk::crash`] is a process death instead: everything written survives, as the
//! page cache keeps it. Both make every file handle opened before them unusable, as the
//! process that held them is gone.

mod real;
mod sim;

pub use real::RealDisk;
pub use sim::{SECTOR_BYTES, SimDisk};

use std::fmt::Debug;
use std::io;
use std::path::Path;
use std::sync::Arc;

/// How [`Disk::open`] opens a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Open {
    /// An existing file, for reading and writing.
    Existing,
    /// A new file; an error if the name exists.
    CreateNew,
    /// A file created if missing and emptied if present.
    Truncate,
}

/// A place to keep files: the real file system, or a simulation of one.
///
/// Paths are absolute or relative as the caller gives them; a directory fsync covers the
/// entries directly in that directory.
pub trait Disk: Send + Sync + Debug {
    /// Creates `dir` and any missing parents. The new entries are durable only once each
    /// one's parent directory is fsynced.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Whether `path` is a directory.
    fn is_dir(&self, path: &Path) -> bool;
    /// Whether anything is at `path`.
    fn exists(&self, path: &Path) -> bool;
    /// Opens the file at `path` as `how` says.
    fn open(&self, path: &Path, how: Open) -> io::Result<Arc<dyn DiskFile>>;
    /// The whole contents of the file at `path`.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Renames `from` to `to`, replacing `to` if it exists.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes the file at `path`.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// The names of the entries in `dir`, in no particular order.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Fsyncs the directory `dir`: creations, renames and removals in it become durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// An open file of a [`Disk`].
pub trait DiskFile: Send + Sync + Debug {
    /// Writes all of `bytes` at `offset`, growing the file if they pass its end (a gap
    /// between the old end and `offset` reads as zeros).
    fn write_at(&self, bytes: &[u8], offset: u64) -> io::Result<()>;
    /// The file's length.
    fn file_len(&self) -> io::Result<u64>;
    /// Cuts or extends (with zeros) the file to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Makes the file's data, and the metadata needed to read it back (its length),
    /// durable: `fdatasync`.
    fn sync_data(&self) -> io::Result<()>;
}

/// The real file system, shared.
pub fn real() -> Arc<dyn Disk> {
    Arc::new(RealDisk)
}
