//! A node's committed data: each key's latest committed value and the timestamp of the
//! transaction that wrote it.
//!
//! Only committed writes reach the store; uncommitted ones live in a transaction's
//! workspace at the participant until COMMIT. A delete removes the key.

use crate::types::{Timestamp, Write};
use crate::wal::Snapshot;
use std::collections::BTreeMap;

/// The committed key-value data of one node.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Store {
    data: BTreeMap<String, (String, Timestamp)>,
}

impl Store {
    /// Rebuilds the store from a checkpoint's data.
    pub fn from_snapshot(snapshot: &Snapshot) -> Store {
        let data = snapshot
            .data
            .iter()
            .map(|(key, value, ts)| (key.clone(), (value.clone(), *ts)))
            .collect();
        Store { data }
    }

    /// The committed value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.data.get(key).map(|(value, _)| value.as_str())
    }

    /// Applies a committed transaction's writes at `commit_ts`.
    pub fn apply(&mut self, writes: &[Write], commit_ts: Timestamp) {
        for (key, value) in writes {
            match value {
                Some(value) => self.data.insert(key.clone(), (value.clone(), commit_ts)),
                None => self.data.remove(key),
            };
        }
    }

    /// The data as a checkpoint stores it, sorted by key.
    pub fn to_snapshot_data(&self) -> Vec<(String, String, Timestamp)> {
        self.data
            .iter()
            .map(|(key, (value, ts))| (key.clone(), value.clone(), *ts))
            .collect()
    }

    /// Every key and value, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.data
            .iter()
            .map(|(key, (value, _))| (key.as_str(), value.as_str()))
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the store holds no key.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}
