//! kv2pc: a transactional key-value store whose nodes commit with two-phase commit.

pub mod crash;
pub mod error;
pub mod types;
pub mod wal;

pub use crash::CrashPoint;
pub use error::{Error, Result};
pub use types::{NodeId, Timestamp, TxnId};
