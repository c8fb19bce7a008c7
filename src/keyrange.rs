//! The key ranges a range read (`SCAN`) covers: every key with a prefix, or every key
//! between two keys, both ends included.
//!
//! A value type below every layer that uses it: the client sends a range to each node,
//! the participant reads its keys in it, and the lock table locks it (`lock::range`).
//! Keys compare as strings do in Rust, byte by byte, which is the order the store keeps
//! them in and the order a scan returns them in.
//!
//! `SCAN FROM a TO b` includes `b`, like SQL's `BETWEEN a AND b`: a learner who asks for
//! the keys from `k1` to `k5` expects to see `k5`. A range whose `to` sorts before its
//! `from` is empty (the shell refuses it with a message instead of reading nothing).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Bound;

/// A range of keys.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum KeyRange {
    /// Every key that starts with this prefix (the empty prefix: every key).
    Prefix(String),
    /// Every key `k` with `from <= k <= to`.
    Between {
        /// The smallest key in the range.
        from: String,
        /// The largest key in the range, included.
        to: String,
    },
}

impl KeyRange {
    /// Whether `key` is in the range.
    pub fn contains(&self, key: &str) -> bool {
        match self {
            KeyRange::Prefix(prefix) => key.starts_with(prefix.as_str()),
            KeyRange::Between { from, to } => from.as_str() <= key && key <= to.as_str(),
        }
    }

    /// The smallest key the range may hold: every key in it sorts at or after this one.
    fn start(&self) -> &str {
        match self {
            KeyRange::Prefix(prefix) => prefix,
            KeyRange::Between { from, .. } => from,
        }
    }

    /// The entries of `map` whose keys are in the range, in key order, found without
    /// walking the keys outside it.
    pub fn entries<'a, V>(
        &'a self,
        map: &'a BTreeMap<String, V>,
    ) -> impl Iterator<Item = (&'a String, &'a V)> + 'a {
        let start = (Bound::Included(self.start()), Bound::Unbounded);
        map.range::<str, _>(start)
            .take_while(move |(key, _)| match self {
                KeyRange::Prefix(prefix) => key.starts_with(prefix.as_str()),
                KeyRange::Between { to, .. } => key.as_str() <= to.as_str(),
            })
            .filter(move |(key, _)| self.contains(key))
    }
}

impl fmt::Display for KeyRange {
    /// How waits and `SHOW LOCKS` name the range: `p*` for a prefix, `[a..b]` for the
    /// keys from `a` to `b` (both included).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyRange::Prefix(prefix) => write!(f, "{prefix}*"),
            KeyRange::Between { from, to } => write!(f, "[{from}..{to}]"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(keys: &[&str]) -> BTreeMap<String, ()> {
        keys.iter().map(|key| (key.to_string(), ())).collect()
    }

    fn keys_in(range: &KeyRange, keys: &[&str]) -> Vec<String> {
        let map = map(keys);
        range.entries(&map).map(|(key, _)| key.clone()).collect()
    }

    #[test]
    fn a_prefix_holds_exactly_the_keys_that_start_with_it() {
        let range = KeyRange::Prefix("p".into());
        let keys = ["a", "p", "p1", "pz", "q", "P1"];
        assert_eq!(keys_in(&range, &keys), ["p", "p1", "pz"]);
        assert!(!range.contains("q") && range.contains("p9"));
        let everything = KeyRange::Prefix(String::new());
        assert_eq!(keys_in(&everything, &keys).len(), keys.len());
    }

    #[test]
    fn between_includes_both_ends() {
        let range = KeyRange::Between {
            from: "k2".into(),
            to: "k4".into(),
        };
        let keys = ["k1", "k2", "k3", "k33", "k4", "k40", "k5"];
        assert_eq!(keys_in(&range, &keys), ["k2", "k3", "k33", "k4"]);
        let backwards = KeyRange::Between {
            from: "k4".into(),
            to: "k2".into(),
        };
        assert!(keys_in(&backwards, &keys).is_empty());
    }

    #[test]
    fn ranges_are_shown_as_waits_name_them() {
        assert_eq!(KeyRange::Prefix("acct".into()).to_string(), "acct*");
        let range = KeyRange::Between {
            from: "a".into(),
            to: "b".into(),
        };
        assert_eq!(range.to_string(), "[a..b]");
    }
}
