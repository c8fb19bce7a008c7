//! Deletes in a list-append history. A delete empties a key, so a read of "not set" says
//! nothing by itself about which version it saw; this module gives such reads (and the
//! lists written after a delete) their place in the key's version order, so that the
//! rest of the checker needs no notion of a delete.
//!
//! # The rule a history with deletes keeps
//!
//! Every key it deletes was first written blind (appended to without being read: the
//! fault runs' setup transaction writes every key at the start), and is deleted by at
//! most one transaction that was not told Aborted. Then a list is either *before* the
//! delete (its first element was appended blind) or *after* it: empty, or starting with
//! an element appended after an empty read or after the writer's own delete.
//!
//! # The rewriting
//!
//! Each key's deleter `D` (the one not told Aborted, else the last one, so that reading
//! what it deleted is a G1a) gets a marker element, `del(k)@D`, appended where its delete
//! was. A read after the delete becomes a read of `P ++ [marker] ++ list`, with `P` the
//! longest list read before the delete (ending with what `D` itself appended before it
//! deleted, if anything): every version before the delete comes before the
//! marker, every one after it comes after. The edges this adds (the last writer before
//! `D` → `D`, `D` → who read "not set", those readers → the first writer after it) all
//! hold in any serial order of a correct run, so nothing correct is flagged; a snapshot
//! that reads a key as deleted yet another key as before the deleter wrote it becomes an
//! rw/wr cycle, as it should.
//!
//! A transaction that deleted the key itself and is not its deleter (one told Aborted,
//! by the rule) read its own delete under its exclusive lock, not `D`'s: its later reads
//! become what it knew of the key before, then its own marker, then the list. Given
//! `D`'s marker, such a read would count as a sighting of `D`'s delete, making a `D`
//! whose outcome is unknown (and which in fact aborted) committed.

use super::{History, Op, Outcome, Txn};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

/// `history` with its deletes turned into marker appends and its reads after a delete
/// into full lists (see the module doc); itself if it deletes nothing.
pub fn resolve(history: &History) -> Cow<'_, History> {
    let deleters = deleters(history);
    if deleters.is_empty() {
        return Cow::Borrowed(history);
    }
    let fresh = fresh_heads(history);
    let mut before = longest_before(history, &deleters, &fresh);
    for (key, deleter) in &deleters {
        let list = before.entry(key).or_default();
        for elem in appends_before_delete(&history.txns[*deleter], key) {
            if !list.contains(&elem) {
                list.push(elem);
            }
        }
    }
    let txns = (0..history.txns.len())
        .map(|index| resolve_txn(history, index, &deleters, &before, &fresh))
        .collect();
    Cow::Owned(History { txns })
}

/// The transaction at `index` with its deletes turned into markers and its reads after a
/// delete into full lists: after its own delete of a key it is not the deleter of (so it
/// was told Aborted, by the rule), what it read before, its own appends and its own marker,
/// since under its exclusive lock it saw its own delete and no other; after any other
/// delete, the longest list before the deleter's delete and the deleter's marker.
fn resolve_txn(
    history: &History,
    index: usize,
    deleters: &BTreeMap<&str, usize>,
    before: &BTreeMap<&str, Vec<String>>,
    fresh: &BTreeSet<&str>,
) -> Txn {
    let txn = &history.txns[index];
    let mut copy = Txn::new(txn.name.clone(), txn.outcome);
    // Per key: the list as this transaction knows it, rewritten.
    let mut known: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    // Per key it deleted without being its deleter: what its later reads begin with.
    let mut own_delete: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for op in &txn.ops {
        copy.ops.push(match op {
            Op::Delete { key } => {
                let elem = marker(key, &txn.name);
                if deleters.get(key.as_str()) != Some(&index) {
                    let mut base = known.get(key.as_str()).cloned().unwrap_or_default();
                    base.push(elem.clone());
                    own_delete.insert(key, base);
                }
                Op::Append {
                    key: key.clone(),
                    elem,
                }
            }
            Op::Read { key, list } => {
                let full = match (own_delete.get(key.as_str()), deleters.get(key.as_str())) {
                    (Some(base), _) => [base.as_slice(), list].concat(),
                    (None, Some(deleter)) if is_after(list, fresh) => {
                        let mut full = before.get(key.as_str()).cloned().unwrap_or_default();
                        full.push(marker(key, &history.txns[*deleter].name));
                        full.extend(list.iter().cloned());
                        full
                    }
                    _ => list.clone(),
                };
                known.insert(key, full.clone());
                Op::Read {
                    key: key.clone(),
                    list: full,
                }
            }
            Op::Append { key, elem } => {
                known.entry(key).or_default().push(elem.clone());
                op.clone()
            }
        });
    }
    copy
}

/// What `txn` appended to `key` before it deleted it: the versions just before its
/// delete.
fn appends_before_delete(txn: &Txn, key: &str) -> Vec<String> {
    let mut appends = Vec::new();
    for op in &txn.ops {
        match op {
            Op::Append { key: k, elem } if k == key => appends.push(elem.clone()),
            Op::Delete { key: k } if k == key => return appends,
            _ => {}
        }
    }
    appends
}

/// The element standing for `txn`'s delete of `key`.
fn marker(key: &str, txn: &str) -> String {
    format!("del({key})@{txn}")
}

/// Each deleted key's deleter: the first not told Aborted, else the last.
pub fn deleters(history: &History) -> BTreeMap<&str, usize> {
    let mut found: BTreeMap<&str, usize> = BTreeMap::new();
    for (index, txn) in history.txns.iter().enumerate() {
        for op in &txn.ops {
            let Op::Delete { key } = op else { continue };
            let keep = found
                .get(key.as_str())
                .is_some_and(|d| history.txns[*d].outcome != Outcome::Aborted);
            if !keep {
                found.insert(key, index);
            }
        }
    }
    found
}

/// Elements appended where their writer knew the key as not set (after an empty read or
/// its own delete): the first elements of lists written after a delete.
pub fn fresh_heads(history: &History) -> BTreeSet<&str> {
    let mut fresh = BTreeSet::new();
    for txn in &history.txns {
        // Per key: whether the transaction last knew it as not set.
        let mut unset: BTreeMap<&str, bool> = BTreeMap::new();
        for op in &txn.ops {
            match op {
                Op::Read { key, list } => {
                    unset.insert(key, list.is_empty());
                }
                Op::Delete { key } => {
                    unset.insert(key, true);
                }
                Op::Append { key, elem } => {
                    if unset.get(key.as_str()) == Some(&true) {
                        fresh.insert(elem.as_str());
                    }
                    unset.insert(key, false);
                }
            }
        }
    }
    fresh
}

/// Whether `list` was read after its key's delete.
pub fn is_after(list: &[String], fresh: &BTreeSet<&str>) -> bool {
    list.first()
        .is_none_or(|head| fresh.contains(head.as_str()))
}

/// Per deleted key, the longest list read before the delete: by a transaction that
/// committed (told so, or with an outcome unknown but an element another transaction
/// read, as `committed_set` judges, or a delete another transaction read), or without the reader's own appends by any other,
/// aborted ones included (under locks or in a snapshot, each such read saw a committed
/// version), or else the element written blind.
fn longest_before<'h>(
    history: &'h History,
    deleters: &BTreeMap<&str, usize>,
    fresh: &BTreeSet<&str>,
) -> BTreeMap<&'h str, Vec<String>> {
    let mut longest: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let seen = seen_by_others(history);
    let sighted = deletes_seen_by_others(history, deleters, fresh);
    for (index, txn) in history.txns.iter().enumerate() {
        let own: BTreeSet<&str> = (txn.ops.iter())
            .filter_map(|op| match op {
                Op::Append { elem, .. } => Some(elem.as_str()),
                _ => None,
            })
            .collect();
        let committed = txn.outcome == Outcome::Committed
            || (txn.outcome == Outcome::Unknown
                && (own.iter().any(|elem| seen.contains(elem)) || sighted.contains(&index)));
        let mut blind: BTreeSet<&str> = BTreeSet::new();
        for op in &txn.ops {
            match op {
                Op::Read { key, list } => {
                    blind.insert(key);
                    if !deleters.contains_key(key.as_str()) || is_after(list, fresh) {
                        continue;
                    }
                    let external: Vec<String> = (list.iter())
                        .take_while(|e| committed || !own.contains(e.as_str()))
                        .cloned()
                        .collect();
                    let entry = longest.entry(key).or_default();
                    if external.len() > entry.len() {
                        *entry = external;
                    }
                }
                Op::Delete { key } => {
                    blind.insert(key);
                }
                Op::Append { key, elem } => {
                    if blind.insert(key) && deleters.contains_key(key.as_str()) {
                        longest.entry(key).or_insert_with(|| vec![elem.clone()]);
                    }
                }
            }
        }
    }
    longest
}

/// The deleters whose delete a transaction other than them read (a read of the key
/// after the delete, by one that did not delete it itself): the evidence that an unknown deleter committed, as its marker
/// read is to `committed_set`.
fn deletes_seen_by_others(
    history: &History,
    deleters: &BTreeMap<&str, usize>,
    fresh: &BTreeSet<&str>,
) -> BTreeSet<usize> {
    let mut sighted = BTreeSet::new();
    for (reader, txn) in history.txns.iter().enumerate() {
        for op in &txn.ops {
            let Op::Read { key, list } = op else { continue };
            let own_delete = (txn.ops.iter())
                .any(|op| matches!(op, Op::Delete { key: deleted } if deleted == key));
            if let Some(deleter) = deleters.get(key.as_str())
                && *deleter != reader
                && !own_delete
                && is_after(list, fresh)
            {
                sighted.insert(*deleter);
            }
        }
    }
    sighted
}

/// The elements some transaction other than their writer read: the evidence that an
/// unknown writer committed.
fn seen_by_others(history: &History) -> BTreeSet<&str> {
    let mut writer: BTreeMap<&str, usize> = BTreeMap::new();
    for (index, txn) in history.txns.iter().enumerate() {
        for op in &txn.ops {
            if let Op::Append { elem, .. } = op {
                writer.insert(elem, index);
            }
        }
    }
    let mut seen = BTreeSet::new();
    for (reader, txn) in history.txns.iter().enumerate() {
        for op in &txn.ops {
            let Op::Read { list, .. } = op else { continue };
            let others = list.iter().map(String::as_str);
            seen.extend(others.filter(|elem| writer.get(elem).is_some_and(|w| *w != reader)));
        }
    }
    seen
}
