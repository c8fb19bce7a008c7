//! How the driver records each answer a transaction's thread gives: the history's
//! operations, the outcome its client was told, and the checks an answer alone allows
//! (a transaction that commits after one of its operations failed; a deadlock victim
//! that is not the transaction of its cycle that began last).

use super::backend::Failure;
use super::driver::{Driver, Pending, Phase};
use kv2pc::history::{Op, Outcome, parse_list};
use kv2pc::sim::Response as Answer;
use kv2pc::{Error, TxnId};

impl Driver<'_> {
    /// Records a call's answer.
    pub(super) fn answered(
        &mut self,
        txn: usize,
        answer: kv2pc::Result<Answer>,
    ) -> Result<(), Failure> {
        let pending = self.txns[txn].pending.take().expect("a call was under way");
        self.txns[txn].phase = Phase::Idle;
        if let Err(Error::Aborted { tid, reason }) = &answer {
            self.check_victim(txn, *tid, reason)?;
        }
        if self.txns[txn].snapshot {
            self.snapshot_answered(txn, pending, answer)
        } else {
            self.locking_answered(txn, pending, answer)
        }?;
        let run = &mut self.txns[txn];
        if let Phase::Over(Some(outcome)) = run.phase {
            run.record.outcome = outcome;
        }
        Ok(())
    }

    fn snapshot_answered(
        &mut self,
        txn: usize,
        pending: Pending,
        answer: kv2pc::Result<Answer>,
    ) -> Result<(), Failure> {
        let run = &mut self.txns[txn];
        match (pending, answer) {
            (Pending::Begin, Ok(Answer::Snapshot(read_ts))) => {
                run.record.name = format!("t{txn}/snapshot@{read_ts}");
                self.begun += 1;
                run.began = Some(self.begun);
            }
            (Pending::Read(key), Ok(Answer::Read(value))) => {
                run.record.ops.push(Op::Read {
                    key,
                    list: parse_list(value.as_deref()),
                });
            }
            // A node down, or a snapshot older than a recovered node keeps: the reads
            // made so far stand.
            (
                Pending::Read(key),
                Err(error @ (Error::NodeDown { .. } | Error::InvalidInput(_))),
            ) => {
                run.failed.get_or_insert(format!("GET {key}: {error}"));
            }
            (Pending::Commit | Pending::Abort, Ok(Answer::Done)) => {
                run.phase = Phase::Over(Some(Outcome::Committed))
            }
            (_, Err(error)) => {
                return Err(format!("t{txn} (read only): unexpected error: {error}"));
            }
            (_, Ok(_)) => return Err(format!("t{txn}: an answer of the wrong kind")),
        }
        Ok(())
    }

    fn locking_answered(
        &mut self,
        txn: usize,
        pending: Pending,
        answer: kv2pc::Result<Answer>,
    ) -> Result<(), Failure> {
        let over = |outcome| Phase::Over(Some(outcome));
        let run = &mut self.txns[txn];
        match (pending, answer) {
            (Pending::Begin, Ok(Answer::Begun(tid))) => {
                run.record.name = format!("t{txn}/{tid}");
                run.tid = Some(tid);
                self.begun += 1;
                run.began = Some(self.begun);
            }
            (Pending::Begin, Err(Error::NodeDown { .. })) => run.phase = Phase::Over(None),
            (Pending::Read(key), Ok(Answer::Read(value))) => {
                run.record.ops.push(Op::Read {
                    key: key.clone(),
                    list: parse_list(value.as_deref()),
                });
                run.known.insert(key, value);
            }
            (Pending::Write { key, elem, value }, Ok(Answer::Done)) => {
                run.record.ops.push(Op::Append {
                    key: key.clone(),
                    elem,
                });
                run.known.insert(key, Some(value));
            }
            (Pending::Delete(key), Ok(Answer::Done)) => {
                run.record.ops.push(Op::Delete { key: key.clone() });
                run.known.insert(key, None);
            }
            (Pending::Commit, Ok(Answer::Done)) => {
                if let Some(failed) = &run.failed {
                    return Err(format!(
                        "{} was told Committed, although its {failed}: an operation that \
                         fails must end its transaction, never let COMMIT commit the rest",
                        run.record.name
                    ));
                }
                run.phase = over(Outcome::Committed)
            }
            // The coordinator died, or the only participant of a one-phase commit did.
            (Pending::Commit, Err(Error::OutcomeUnknown { .. } | Error::NodeDown { .. })) => {
                run.phase = over(Outcome::Unknown)
            }
            // Refused: aborted, or (after a failed operation) already ended.
            (Pending::Commit, Err(Error::Aborted { .. } | Error::InvalidInput(_))) => {
                run.phase = over(Outcome::Aborted)
            }
            // Never committed, whether or not the abort reached the coordinator.
            (Pending::Abort, _) => run.phase = over(Outcome::Aborted),
            (_, Err(Error::Aborted { .. })) => run.phase = over(Outcome::Aborted),
            // The careless client goes on; the transaction must not commit now.
            (pending, Err(error)) => {
                if let (Pending::Write { key, elem, .. }, Error::NodeDown { .. }) =
                    (&pending, &error)
                {
                    self.lost.push((key.clone(), elem.clone()));
                }
                let run = &mut self.txns[txn];
                run.failed
                    .get_or_insert(format!("{} failed ({error})", pending.describe()));
            }
            (_, Ok(_)) => return Err(format!("t{txn}: an answer of the wrong kind")),
        }
        Ok(())
    }

    /// A deadlock victim must be the transaction of its cycle that began last (the error
    /// names the cycle: `deadlock T1 -> T4 -> T1; ...`).
    fn check_victim(&self, txn: usize, victim: TxnId, reason: &str) -> Result<(), Failure> {
        let Some(cycle) = cycle_of(reason) else {
            return Ok(());
        };
        let began = |tid: TxnId| {
            (self.txns.iter().enumerate())
                .filter(|(_, run)| run.tid == Some(tid))
                .filter_map(|(index, run)| Some((index, run.began?)))
                .next_back()
        };
        let Some((_, victim_began)) = began(victim) else {
            return Ok(());
        };
        for tid in cycle {
            if let Some((other, other_began)) = began(tid)
                && other_began > victim_began
            {
                return Err(format!(
                    "t{txn} ({victim}) was told it is the deadlock victim ({reason}), but \
                     t{other} ({tid}) of that cycle began after it: the victim must be the \
                     one that began last"
                ));
            }
        }
        Ok(())
    }
}

/// The transactions of the cycle an abort reason names, if it names one.
fn cycle_of(reason: &str) -> Option<Vec<TxnId>> {
    let rest = &reason[reason.find("deadlock ")? + "deadlock ".len()..];
    let path = rest.split([';', ':']).next()?;
    let tids: Vec<TxnId> = (path.split("->"))
        .filter_map(|part| part.trim().strip_prefix('T')?.parse().ok().map(TxnId))
        .collect();
    (tids.len() >= 2).then_some(tids)
}
