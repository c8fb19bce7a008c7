//! The write-ahead log: records, their encoding, the log files and checkpoints.
//!
//! Every node keeps one log in its own directory. The protocol's state machines decide
//! *what* to log and whether it must be forced ([`Record::forced`]); this module decides
//! *how*: [`codec`] turns records into bytes (the only place bincode is named), [`frame`]
//! lays the bytes out in checksummed frames and tells a torn write from damage, `files`
//! names, preallocates and recycles the files, [`Wal`] appends with group commit and
//! checkpoints (`log`), and `recover` opens and repairs a log. `logs/FORMAT.md` is the
//! byte-level description, and `logs/golden/` holds logs of earlier versions that must
//! stay readable.
//!
//! Every file operation goes through a [`Disk`](crate::disk::Disk): [`Wal::open`] uses the
//! real file system, [`Wal::open_on`] any disk, such as the simulated one that loses
//! power. The durability argument (what is fsynced before what) is made in the disk's
//! terms, and tested by power losses on that simulated disk (`tests/wal/power.rs`).
//!
//! Segments are preallocated so that an `fdatasync` after an append has only data to
//! write, and a checkpoint recycles its segment's file instead of deleting it. Since such
//! a file is longer than its log, where the log ends is told by end markers and by CRCs
//! that cover the segment number, not by the file's length.

mod checkpoint;
pub mod codec;
mod files;
pub mod frame;
mod log;
pub mod record;
mod recover;

pub use checkpoint::MAX_CHECKPOINT_BYTES;
pub use frame::MAX_RECORD_BYTES;
pub use log::{MAX_GROWTH, SEGMENT_BYTES, SyncTarget, Wal};
pub use record::{Record, Snapshot};
pub use recover::Recovery;
