//! The write-ahead log: records, their encoding, the log file and checkpoints.

pub mod record;

pub use record::{Record, Snapshot};
