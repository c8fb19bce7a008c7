//! Snapshot reads across restarts, as a property (issue 9, fault 2): over random
//! histories of one-phase puts and deletes, two-phase transactions (some prepared when a
//! checkpoint is taken and committed after it, below its clock), checkpoints and
//! restarts, a node rebuilt by recovery answers every snapshot read either exactly as the
//! full history says or with "too old, retry": never a value, or an absence, that was not
//! there at that timestamp.
//!
//! The node is driven at the level of its log: each step appends the records the live
//! node would have logged, a checkpoint is `Node::snapshot` of the node recovered so far
//! (with the cluster's clock where it is then), and a restart is `Node::recover` from the
//! last checkpoint and the records after it. Reads go to the recovered node's store.

use kv2pc::node::Node;
use kv2pc::types::{Timestamp, TxnId};
use kv2pc::wal::{Record, Snapshot};
use proptest::prelude::*;
use std::time::Duration;

const KEYS: [&str; 3] = ["a", "b", "c"];
/// The node under test, in a cluster of two; node 0 coordinates its transactions.
const NODE: u32 = 1;
const NODES: u32 = 2;

#[derive(Clone, Debug)]
enum Step {
    /// A one-phase commit of one write (`None`: a delete).
    OnePhase(usize, Option<u8>),
    /// A transaction prepares here with these writes; its coordinator picks its commit
    /// timestamp at once, so the commit may arrive after a checkpoint yet below its clock.
    Prepare(Vec<(usize, Option<u8>)>),
    /// The prepared transaction's outcome arrives.
    Decide(bool),
    /// Other nodes commit: the cluster's clock moves on.
    Elsewhere,
    Checkpoint,
    Restart,
}

fn step() -> impl Strategy<Value = Step> {
    let write = || (0..KEYS.len(), proptest::option::weighted(0.7, 0..10u8));
    prop_oneof![
        6 => write().prop_map(|(key, value)| Step::OnePhase(key, value)),
        2 => proptest::collection::vec(write(), 1..3).prop_map(Step::Prepare),
        2 => any::<bool>().prop_map(Step::Decide),
        1 => Just(Step::Elsewhere),
        2 => Just(Step::Checkpoint),
        2 => Just(Step::Restart),
    ]
}

/// A transaction prepared here and not yet decided.
struct Pending {
    tid: TxnId,
    writes: Vec<(String, Option<String>)>,
    commit_ts: Timestamp,
}

/// The history as the live node sees it, and what recovery would read back.
#[derive(Default)]
struct History {
    /// The cluster's clock.
    clock: Timestamp,
    /// Every commit applied here, in order: `(key, commit_ts, value)`.
    applied: Vec<(String, Timestamp, Option<String>)>,
    checkpoint: Option<Snapshot>,
    /// The records logged since the checkpoint.
    records: Vec<Record>,
    pending: Option<Pending>,
    next_tid: u64,
}

impl History {
    fn run(&mut self, step: &Step) -> std::result::Result<(), TestCaseError> {
        match step {
            Step::OnePhase(key, value) => self.one_phase(*key, *value),
            Step::Prepare(writes) => self.prepare(writes),
            Step::Decide(commit) => self.decide(*commit),
            Step::Elsewhere => self.clock += 1,
            Step::Checkpoint => {
                let snapshot = self.recover().snapshot();
                self.checkpoint = Some(snapshot);
                self.records.clear();
            }
            Step::Restart => return self.check_restart(),
        }
        Ok(())
    }

    fn locked(&self, key: &str) -> bool {
        (self.pending.iter()).any(|p| p.writes.iter().any(|(k, _)| k == key))
    }

    fn one_phase(&mut self, key: usize, value: Option<u8>) {
        let key = KEYS[key].to_string();
        if self.locked(&key) {
            return;
        }
        self.clock += 1;
        let value = value.map(|v| v.to_string());
        self.applied.push((key.clone(), self.clock, value.clone()));
        self.next_tid += 1;
        self.records.push(Record::OnePhaseCommit {
            tid: TxnId(self.next_tid),
            writes: vec![(key, value)],
            commit_ts: self.clock,
        });
    }

    fn prepare(&mut self, writes: &[(usize, Option<u8>)]) {
        if self.pending.is_some() {
            return;
        }
        let mut chosen: Vec<(String, Option<String>)> = Vec::new();
        for (key, value) in writes {
            let key = KEYS[*key].to_string();
            chosen.retain(|(k, _)| *k != key);
            chosen.push((key, value.map(|v| v.to_string())));
        }
        self.next_tid += 1;
        let tid = TxnId(self.next_tid);
        self.records.push(Record::Prepare {
            tid,
            coordinator: 0,
            participants: vec![0, NODE],
            writes: chosen.clone(),
            prepare_ts: self.clock,
        });
        self.clock += 1;
        self.pending = Some(Pending {
            tid,
            writes: chosen,
            commit_ts: self.clock,
        });
    }

    fn decide(&mut self, commit: bool) {
        let Some(pending) = self.pending.take() else {
            return;
        };
        if !commit {
            self.records.push(Record::Abort { tid: pending.tid });
            return;
        }
        for (key, value) in &pending.writes {
            (self.applied).push((key.clone(), pending.commit_ts, value.clone()));
        }
        self.records.push(Record::Commit {
            tid: pending.tid,
            commit_ts: pending.commit_ts,
        });
    }

    /// The node as recovery rebuilds it now, with the cluster's clock where it is.
    fn recover(&self) -> Node {
        let (node, _) = Node::recover(
            NODE,
            NODES,
            self.checkpoint.as_ref(),
            &self.records,
            Duration::ZERO,
        );
        node
    }

    /// What the full history says `key` was at `ts`.
    fn truth(&self, key: &str, ts: Timestamp) -> Option<&str> {
        (self.applied.iter().rev())
            .find(|(k, at, _)| k == key && *at <= ts)
            .and_then(|(_, _, value)| value.as_deref())
    }

    fn check_restart(&self) -> std::result::Result<(), TestCaseError> {
        let node = self.recover();
        let store = node.participant().store();
        for key in KEYS {
            for ts in 0..=self.clock {
                let truth = self.truth(key, ts);
                match store.get_at(key, ts) {
                    Ok(value) => prop_assert_eq!(
                        value,
                        truth,
                        "{} at {} after a restart (clock {})",
                        key,
                        ts,
                        self.clock
                    ),
                    Err(_) => prop_assert!(
                        ts < self.clock,
                        "the newest snapshot of {key} (at {ts}) was refused"
                    ),
                }
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_restarted_node_answers_as_before_or_refuses(
        steps in proptest::collection::vec(step(), 1..60),
    ) {
        let mut history = History::default();
        for step in &steps {
            history.run(step)?;
        }
        history.run(&Step::Restart)?;
    }
}
