//! The small value types every layer shares: node and transaction ids, keys, values,
//! timestamps, lock modes, and the documented size limits. The bottom layer: it names
//! no other module of the crate.
//!
//! Transaction ids are one number, shown as `T<n>`, yet unique across coordinators and
//! restarts without any coordination: coordinator `c` of an `N`-node cluster hands out
//! `c + 1`, `c + 1 + N`, `c + 1 + 2N`, ... (so with 3 nodes node 0 numbers `T1, T4, T7`
//! and node 1 `T2, T5, T8`). Each coordinator reserves blocks of its counter with a forced
//! `TidLease` log record before using them, so a restart continues after the last block
//! and never reuses an id a participant may still remember. A fresh data directory
//! numbers transactions the same way every time, which keeps transcripts stable.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A node's index in the cluster, `0..N`.
pub type NodeId = u32;

/// A logical timestamp (a Lamport clock shared by prepare and commit records). Logical,
/// not wall-clock, so that logs and transcripts are identical across runs.
pub type Timestamp = u64;

/// The largest number of nodes a cluster may have.
pub const MAX_NODES: u32 = 64;
/// The longest key, in bytes. Keys must also be non-empty.
pub const MAX_KEY_LEN: usize = 1024;
/// The longest value, in bytes.
pub const MAX_VALUE_LEN: usize = 64 * 1024;
/// The most writes one transaction may buffer on one participant, so that a `Prepare`
/// record stays bounded (at most about 68 MiB).
pub const MAX_WRITES_PER_TXN: usize = 1024;

/// A transaction id, unique across coordinators and restarts (see the module doc).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TxnId(pub u64);

impl TxnId {
    /// The id that coordinator `coordinator` of a `nodes`-node cluster gives to the
    /// transaction numbered `counter` (counting from 0).
    pub fn new(coordinator: NodeId, counter: u64, nodes: u32) -> TxnId {
        TxnId(counter * u64::from(nodes) + u64::from(coordinator) + 1)
    }

    /// The coordinator that allocated this id.
    pub fn coordinator(self, nodes: u32) -> NodeId {
        ((self.0 - 1) % u64::from(nodes)) as NodeId
    }

    /// The coordinator's counter value: larger means younger (begun later).
    pub fn counter(self, nodes: u32) -> u64 {
        (self.0 - 1) / u64::from(nodes)
    }
}

impl fmt::Display for TxnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "T{}", self.0)
    }
}

impl fmt::Debug for TxnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "T{}", self.0)
    }
}

/// The two lock modes. A value type here, below the lock table (`lock`) that grants
/// them, because clients ask for them and the cluster shows them too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LockMode {
    /// Held by readers; compatible with other shared locks.
    Shared,
    /// Held by one writer; compatible with nothing.
    Exclusive,
}

/// One buffered write: `Some(value)` puts, `None` deletes.
pub type Write = (String, Option<String>);

/// A key or value outside the documented limits, with the message that says which
/// limit. It becomes [`crate::Error::InvalidInput`] (the error layer sits above this
/// one, so these value types name no error of the library's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutOfLimits(pub String);

impl fmt::Display for OutOfLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks a key against the documented limits.
pub fn check_key(key: &str) -> Result<(), OutOfLimits> {
    if key.is_empty() {
        return Err(OutOfLimits("a key cannot be empty".into()));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(OutOfLimits(format!(
            "a key can be at most {MAX_KEY_LEN} bytes long; this one has {}",
            key.len()
        )));
    }
    Ok(())
}

/// Checks a value against the documented limits.
pub fn check_value(value: &str) -> Result<(), OutOfLimits> {
    if value.len() > MAX_VALUE_LEN {
        return Err(OutOfLimits(format!(
            "a value can be at most {MAX_VALUE_LEN} bytes long; this one has {}",
            value.len()
        )));
    }
    Ok(())
}

/// Where a key lives: a stable FNV-1a hash modulo the node count. Stable across Rust
/// versions and machines (unlike `DefaultHasher`), because data directories outlive them.
pub fn owner_of(key: &str, nodes: u32) -> NodeId {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash % u64::from(nodes)) as NodeId
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txn_ids_interleave_and_decode() {
        let id = TxnId::new(2, 5, 3);
        assert_eq!(id, TxnId(18));
        assert_eq!(id.coordinator(3), 2);
        assert_eq!(id.counter(3), 5);
        assert_eq!(TxnId::new(0, 0, 3).to_string(), "T1");
    }

    #[test]
    fn placement_is_stable() {
        // These values are part of the on-disk contract: changing the hash moves keys.
        assert_eq!(owner_of("a", 3), owner_of("a", 3));
        let spread: std::collections::BTreeSet<_> =
            (0..30).map(|i| owner_of(&format!("k{i}"), 3)).collect();
        assert_eq!(spread.len(), 3);
    }

    #[test]
    fn limits_are_checked() {
        assert!(check_key("").is_err());
        assert!(check_key(&"x".repeat(MAX_KEY_LEN + 1)).is_err());
        assert!(check_key("ok").is_ok());
        assert!(check_value(&"x".repeat(MAX_VALUE_LEN + 1)).is_err());
    }
}
