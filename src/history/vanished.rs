//! Reads of values that vanished: a transaction that survived, yet read an element that
//! no surviving commit holds.
//!
//! Serializability (`check`) judges the transactions that committed, from what they
//! read. This check adds what a crash can do to it: a node lets a lock pass on before
//! the fsync of the commit that released it (controlled lock violation, see
//! `runtime::visible`), and answers the next reader under that lock at once. A crash
//! before the fsync then loses the writer, and the reader must be lost with it: its
//! outcome may never be acknowledged before the writer's record is durable. A reader
//! that survived (told Committed, or with an append in the final data) but read a lost
//! writer's element breaks that, whatever the history's serial order says. A reader
//! that did not survive is not judged: it may have been shown the value before the
//! crash (a dirty read of a transaction that then cannot commit, which Graefe's rule
//! allows).
//!
//! An element's writer is *lost* if it was not told Committed and none of its appends
//! is in the final data: it aborted (presumed or told). Strict two-phase locking lets
//! nobody but the writer itself read an uncommitted write that is not yet appended as
//! committed, so in a correct run no surviving transaction reads a lost writer's
//! element. A transaction whose keys were deleted by one not told Aborted counts as
//! surviving when it writes and is not judged when it reads: a delete can remove every
//! trace of a commit.

use super::{History, Op, Outcome};
use std::collections::{BTreeMap, BTreeSet};

/// Every read, by a transaction that survived, of an element whose writer is lost (see
/// the module doc), given the final contents of every key as lists.
pub fn vanished_reads(history: &History, lists: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    let mut writer: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut deleted: BTreeSet<&str> = BTreeSet::new();
    for (index, txn) in history.txns.iter().enumerate() {
        for op in &txn.ops {
            match op {
                Op::Append { key, elem } => {
                    writer.insert((key, elem), index);
                }
                Op::Delete { key } if txn.outcome != Outcome::Aborted => {
                    deleted.insert(key);
                }
                Op::Delete { .. } | Op::Read { .. } => {}
            }
        }
    }
    let survived = |index: usize| {
        let txn = &history.txns[index];
        txn.outcome == Outcome::Committed
            || txn.ops.iter().any(|op| match op {
                Op::Append { key, elem } => {
                    deleted.contains(key.as_str())
                        || lists.get(key).is_some_and(|l| l.contains(elem))
                }
                _ => false,
            })
    };
    let kept = |index: usize| {
        let txn = &history.txns[index];
        txn.outcome == Outcome::Committed
            || txn.ops.iter().any(|op| match op {
                Op::Append { key, elem } => lists.get(key).is_some_and(|l| l.contains(elem)),
                _ => false,
            })
    };
    let mut problems = Vec::new();
    for (reader, txn) in history.txns.iter().enumerate() {
        if !kept(reader) {
            continue;
        }
        for op in &txn.ops {
            let Op::Read { key, list } = op else {
                continue;
            };
            for elem in list {
                let Some(&index) = writer.get(&(key.as_str(), elem.as_str())) else {
                    continue;
                };
                if index != reader && !survived(index) {
                    problems.push(format!(
                        "{} survived, but was told {key} holds {elem}, written by {}, which \
                         no surviving commit holds: a value that vanished",
                        txn.name, history.txns[index].name
                    ));
                }
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Txn;

    fn lists(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        (pairs.iter())
            .map(|(k, l)| (k.to_string(), l.iter().map(|e| e.to_string()).collect()))
            .collect()
    }

    #[test]
    fn a_surviving_reader_of_a_lost_writers_value_is_reported_and_a_lost_one_is_not() {
        let lost = Txn::new("T1", Outcome::Unknown).append("k", "1");
        let committed = Txn::new("T2", Outcome::Committed).read("k", &["1"]);
        let kept = (Txn::new("T3", Outcome::Unknown))
            .read("k", &["1"])
            .append("j", "3");
        let aborted = Txn::new("T4", Outcome::Aborted).read("k", &["1"]);
        let gone = (Txn::new("T5", Outcome::Unknown))
            .read("k", &["1"])
            .append("j", "5");
        let history = History {
            txns: vec![lost, committed, kept, aborted, gone],
        };
        let problems = vanished_reads(&history, &lists(&[("k", &[]), ("j", &["3"])]));
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("T2 survived, but was told k holds 1, written by T1"));
        assert!(problems[1].starts_with("T3 survived"), "{problems:?}");
    }

    #[test]
    fn surviving_writers_own_reads_and_deleted_keys_are_not_reported() {
        let committed = Txn::new("T1", Outcome::Committed).append("a", "1");
        let unknown_kept = Txn::new("T2", Outcome::Unknown).append("b", "2");
        let own = Txn::new("T3", Outcome::Aborted)
            .append("c", "3")
            .read("c", &["3"]);
        let deleted = Txn::new("T4", Outcome::Unknown).append("d", "4");
        let deleter = Txn::new("T5", Outcome::Committed).delete("d");
        let reader = (Txn::new("T6", Outcome::Aborted))
            .read("a", &["1"])
            .read("b", &["2"])
            .read("d", &["4"]);
        let history = History {
            txns: vec![committed, unknown_kept, own, deleted, deleter, reader],
        };
        let final_lists = lists(&[("a", &["1"]), ("b", &["2"]), ("c", &[]), ("d", &[])]);
        assert_eq!(vanished_reads(&history, &final_lists), Vec::<String>::new());
    }
}
