//! Pipelined transactions: one thread keeps many read-write transactions in flight.
//!
//! A [`Client`] call blocks its thread until the cluster answers, so a program that
//! wants 256 transactions at once needs 256 threads, and on a machine with two cores
//! those threads spend much of their time being switched. A [`Pipeline`] sends the same
//! requests (`Request::BeginAnd`, `Read`, `Write`, `Commit`, `Abort`, each with its own
//! reply [`Mailbox`]) but does not wait for each answer: every mailbox it makes rings one
//! [`Bell`], and [`Pipeline::collect`] sleeps on that bell, then moves every transaction
//! whose answer came on to its next request.
//!
//! # Submitting and collecting
//!
//! A transaction is a [`Program`]: given what its last read returned, it says the next
//! step (read, read for update, write, delete, or commit). [`Pipeline::submit`] starts
//! one and returns its [`Ticket`] at once; at most `limit` are in flight, and a submit
//! when that many are waits (moving the others on) until one finishes. Within a
//! transaction, steps go one at a time, in order, exactly as with [`super::Transaction`]
//! (its first step begins it at the coordinator, `Client::begin_lazily`); between
//! transactions there is no order: each is a separate session of the cluster, and they
//! run concurrently under its locks, so their outcomes are those of some serial order.
//!
//! [`Pipeline::collect`] returns the next finished transaction, in the order they finish
//! (not the order submitted), as its ticket and [`Outcome`]; `None` once nothing is in
//! flight or left to collect. [`Pipeline::poll`] does the same without waiting, and
//! [`Pipeline::collect_timeout`] waits at most a given time. Every submitted transaction
//! is collected exactly once.
//!
//! # Outcomes and errors
//!
//! The outcome is `Ok` with the values read, in order, once the commit is acknowledged;
//! otherwise the first error, as a [`super::Transaction`] would have returned it: a key
//! or value the library refuses (`InvalidInput`, before anything is sent), a node down
//! (`NodeDown`), a deadlock victim or another abort (`Aborted`), a commit whose
//! coordinator died before answering (`OutcomeUnknown`: it may have committed). A failed
//! transaction is aborted at its coordinator and participants, as the module doc of
//! `client` says; the pipeline does not wait for that abort's answer.
//!
//! # A node crash
//!
//! A node that dies drops the reply senders of the requests it held, and a mailbox whose
//! senders are all gone without an answer is closed: the pipeline sees that (it rang the
//! bell) and gives the transaction its outcome (`NodeDown`, or `OutcomeUnknown` for a
//! commit at its coordinator). So a crash never leaves a collect waiting for a dead node.
//!
//! # Limits
//!
//! - A transaction waiting for a lock waits as long as the holder holds it. A holder
//!   that is prepared and whose coordinator is down holds it until that coordinator
//!   returns (2PC's blocking window): use `collect_timeout` to bound a wait.
//! - All transactions of a pipeline share its session's coordinator and clock.
//! - Read-only transactions and range scans are not pipelined (use the `Client`).
//! - Dropping a pipeline with transactions in flight waits (up to a few seconds) for
//!   each to reach a point where it can be aborted, and aborts it; a commit already
//!   sent goes on.
//! - Lock waits are reported to the client's observer, as its calls report them; the
//!   observer's `blocking`/`resumed` are not called (no thread blocks on one request).

use super::{Client, WaitInfo, unexpected};
use crate::error::{Error, Result};
use crate::lock::LockMode;
use crate::message::{Answer, Reply, Request};
use crate::net::{Bell, Mailbox, mailbox, mailbox_ringing};
use crate::types::{NodeId, TxnId, check_key, check_value, owner_of};
use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The next step of a pipelined transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Read a key under a shared lock (`Transaction::get`).
    Get(String),
    /// Read a key under an exclusive lock (`Transaction::get_for_update`).
    GetForUpdate(String),
    /// Write a key.
    Put(String, String),
    /// Delete a key.
    Delete(String),
    /// Commit.
    Commit,
}

/// A pipelined transaction: asked for its next step with what its last step read
/// (`Some(value)` after a read, `None` at the start and after a write).
pub trait Program: Send {
    /// The next step.
    fn next(&mut self, read: Option<Option<String>>) -> Step;
}

impl<F: FnMut(Option<Option<String>>) -> Step + Send> Program for F {
    fn next(&mut self, read: Option<Option<String>>) -> Step {
        self(read)
    }
}

/// A fixed list of steps, then commit.
pub struct Steps(VecDeque<Step>);

impl Steps {
    /// The steps `steps`, then a commit.
    pub fn new(steps: impl IntoIterator<Item = Step>) -> Steps {
        Steps(steps.into_iter().collect())
    }
}

impl Program for Steps {
    fn next(&mut self, _: Option<Option<String>>) -> Step {
        self.0.pop_front().unwrap_or(Step::Commit)
    }
}

/// Names one submitted transaction; unique within its pipeline, numbered from 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticket(pub u64);

/// A finished transaction's outcome: the values it read, in order, if it committed.
pub type Outcome = Result<Vec<Option<String>>>;

/// What a transaction in flight waits for.
enum Awaiting {
    /// The answer to a step sent to `node` (`first`: its first there).
    Step { node: NodeId, first: bool },
    /// The commit's answer.
    Commit,
}

struct Flight {
    ticket: Ticket,
    program: Box<dyn Program>,
    tid: Option<TxnId>,
    began: u64,
    participants: BTreeSet<NodeId>,
    reads: Vec<Option<String>>,
    mailbox: Mailbox,
    awaiting: Awaiting,
}

/// Many read-write transactions in flight on one thread. See the module doc.
pub struct Pipeline {
    client: Client,
    limit: usize,
    bell: Arc<Bell>,
    next_ticket: u64,
    flights: Vec<Flight>,
    finished: VecDeque<(Ticket, Outcome)>,
    /// Set while dropping: transactions are aborted at their next step.
    closing: bool,
}

/// How long one sleep on the bell lasts at most, so that a lost ring costs little.
const NAP: Duration = Duration::from_millis(50);

impl Client {
    /// A pipeline of this session's transactions, at most `limit` (at least 1) in flight.
    pub fn pipeline(&self, limit: usize) -> Pipeline {
        Pipeline {
            client: self.clone(),
            limit: limit.max(1),
            bell: Arc::new(Bell::default()),
            next_ticket: 0,
            flights: Vec::new(),
            finished: VecDeque::new(),
            closing: false,
        }
    }
}

impl Pipeline {
    /// How many transactions are in flight (submitted, not finished).
    pub fn in_flight(&self) -> usize {
        self.flights.len()
    }

    /// Starts `program` as a new transaction and returns its ticket. If `limit`
    /// transactions are in flight, first waits (moving them on) until one finishes.
    pub fn submit(&mut self, program: impl Program + 'static) -> Ticket {
        self.submit_boxed(Box::new(program))
    }

    /// As [`Pipeline::submit`], for a program already boxed.
    pub fn submit_boxed(&mut self, program: Box<dyn Program>) -> Ticket {
        while self.flights.len() >= self.limit {
            self.progress(Some(NAP));
        }
        let ticket = Ticket(self.next_ticket);
        self.next_ticket += 1;
        let (_, placeholder) = mailbox();
        let mut flight = Flight {
            ticket,
            program,
            tid: None,
            began: 0,
            participants: BTreeSet::new(),
            reads: Vec::new(),
            mailbox: placeholder,
            awaiting: Awaiting::Commit,
        };
        match self.advance(&mut flight, None) {
            Ok(true) => self.flights.push(flight),
            Ok(false) => self.finish(flight),
            Err(error) => self.fail(flight, error),
        }
        ticket
    }

    /// The next finished transaction, without waiting; `None` if none has finished.
    pub fn poll(&mut self) -> Option<(Ticket, Outcome)> {
        if self.finished.is_empty() {
            self.progress(None);
        }
        self.finished.pop_front()
    }

    /// The next transaction to finish, waiting for it; `None` when none is in flight
    /// and none is left to collect.
    pub fn collect(&mut self) -> Option<(Ticket, Outcome)> {
        while self.finished.is_empty() && !self.flights.is_empty() {
            self.progress(Some(NAP));
        }
        self.finished.pop_front()
    }

    /// As [`Pipeline::collect`], waiting at most `timeout`: `None` also when none
    /// finished in that time (then [`Pipeline::in_flight`] says how many still run).
    pub fn collect_timeout(&mut self, timeout: Duration) -> Option<(Ticket, Outcome)> {
        let deadline = Instant::now() + timeout;
        while self.finished.is_empty() && !self.flights.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            self.progress(Some(left.min(NAP)));
        }
        self.finished.pop_front()
    }

    /// Moves on every transaction whose answer has come; if none has and `wait` is
    /// given, first sleeps on the bell up to that long.
    fn progress(&mut self, wait: Option<Duration>) {
        if !self.step_ready()
            && let Some(wait) = wait
        {
            let net = &self.client.ctx.net;
            net.wait_bell(&self.bell, self.flights.len(), wait);
            self.step_ready();
        }
    }

    /// Handles every answer that has come; whether there was any.
    fn step_ready(&mut self) -> bool {
        let mut any = false;
        let mut index = 0;
        while index < self.flights.len() {
            let answer = match self.flights[index].mailbox.try_recv() {
                Some((reply, _work)) => Some(reply),
                None if self.flights[index].mailbox.is_closed() => None,
                None => {
                    index += 1;
                    continue;
                }
            };
            any = true;
            let mut flight = self.flights.swap_remove(index);
            match self.answer(&mut flight, answer) {
                Ok(true) => self.flights.push(flight),
                Ok(false) => self.finish(flight),
                Err(error) => self.fail(flight, error),
            }
            // The flight swapped in at `index`, if any, is looked at next; one pushed
            // back at the end is looked at again, which is harmless.
        }
        any
    }

    /// Handles one reply of `flight` (`None`: its mailbox closed unanswered). Whether the
    /// transaction is still in flight (`false`: it committed).
    fn answer(&mut self, flight: &mut Flight, reply: Option<Reply>) -> Result<bool> {
        let coordinator = self.client.coordinator;
        match (reply, &flight.awaiting) {
            (Some(Reply::Begun(tid, began)), _) => {
                flight.tid = Some(tid);
                flight.began = began;
                Ok(true)
            }
            (
                Some(Reply::Waiting {
                    key,
                    mode,
                    blockers,
                }),
                Awaiting::Step { node, .. },
            ) => {
                if let Some(observer) = &self.client.observer {
                    let (tid, node) = (flight.tid, *node);
                    let info = WaitInfo {
                        tid,
                        key,
                        node,
                        mode,
                        blockers,
                    };
                    observer.waiting(&info);
                }
                Ok(true)
            }
            (Some(Reply::Waiting { .. }), Awaiting::Commit) => Ok(true),
            (Some(Reply::Done(Ok(answer))), Awaiting::Step { .. }) => {
                let read = match answer {
                    Answer::Value(value) => Some(value),
                    Answer::Done | Answer::Begun(..) => None,
                    other => return Err(unexpected(other)),
                };
                flight.reads.extend(read.clone());
                self.advance(flight, read)
            }
            (Some(Reply::Done(Ok(answer))), Awaiting::Commit) => match answer {
                Answer::Committed { at, .. } => {
                    self.client.committed(at);
                    Ok(false)
                }
                other => Err(unexpected(other)),
            },
            (Some(Reply::Done(Err(error))), Awaiting::Commit) => {
                Err(commit_error(error, flight.tid, coordinator))
            }
            (None, Awaiting::Commit) => {
                Err(commit_error(crashed(coordinator), flight.tid, coordinator))
            }
            (Some(Reply::Done(Err(error))), Awaiting::Step { node, first }) => {
                if matches!(error, Error::NodeDown { .. }) && *first {
                    // The node never held this transaction's work, or lost it.
                    flight.participants.remove(node);
                }
                Err(error)
            }
            (None, Awaiting::Step { node, first }) => {
                if *first {
                    flight.participants.remove(node);
                }
                Err(crashed(*node))
            }
        }
    }

    /// Sends `flight`'s next step, given what its last one read; `false` if the
    /// transaction is done without one (it commits having touched nothing).
    fn advance(&mut self, flight: &mut Flight, read: Option<Option<String>>) -> Result<bool> {
        if self.closing {
            return Err(Error::InvalidInput(
                "the pipeline was dropped before the transaction finished, so it was aborted"
                    .into(),
            ));
        }
        let nodes = self.client.ctx.nodes;
        let (key, request): (String, MakeRequest) = match flight.program.next(read) {
            Step::Commit => return self.send_commit(flight),
            Step::Get(key) => {
                check_key(&key)?;
                read_request(key, LockMode::Shared)
            }
            Step::GetForUpdate(key) => {
                check_key(&key)?;
                read_request(key, LockMode::Exclusive)
            }
            Step::Put(key, value) => {
                check_key(&key)?;
                check_value(&value)?;
                write_request(key, Some(value))
            }
            Step::Delete(key) => {
                check_key(&key)?;
                write_request(key, None)
            }
        };
        let node = owner_of(&key, nodes);
        let first = flight.participants.insert(node);
        let (target, request) =
            (self.client).addressed(flight.tid, flight.began, node, first, request);
        flight.awaiting = Awaiting::Step { node, first };
        let (reply, answers) = mailbox_ringing(&self.bell);
        flight.mailbox = answers;
        if let Err(error) = self.client.ctx.net.request(target, request, reply) {
            if first {
                flight.participants.remove(&node);
            }
            return Err(error);
        }
        Ok(true)
    }

    /// Sends the commit; `false` if there is nothing to commit (the transaction is done).
    fn send_commit(&mut self, flight: &mut Flight) -> Result<bool> {
        let Some(tid) = flight.tid else {
            // It never read or wrote: nothing to commit (as `Transaction::commit`).
            return Ok(false);
        };
        let coordinator = self.client.coordinator;
        let request = Request::Commit {
            tid,
            participants: flight.participants.iter().copied().collect(),
            clock: self.client.clock.now(),
        };
        flight.awaiting = Awaiting::Commit;
        let (reply, answers) = mailbox_ringing(&self.bell);
        flight.mailbox = answers;
        self.client.ctx.net.request(coordinator, request, reply)?;
        Ok(true)
    }

    /// Records a committed transaction's outcome.
    fn finish(&mut self, flight: Flight) {
        self.finished.push_back((flight.ticket, Ok(flight.reads)));
    }

    /// Records a failed transaction's outcome, and aborts it everywhere it began (not
    /// waiting for that abort's answer).
    fn fail(&mut self, flight: Flight, error: Error) {
        let error = match (error, flight.tid) {
            (Error::InvalidInput(why), Some(tid)) if self.closing => {
                Error::Aborted { tid, reason: why }
            }
            (error, _) => error,
        };
        if let (Some(tid), false) = (flight.tid, matches!(error, Error::OutcomeUnknown { .. })) {
            let request = Request::Abort {
                tid,
                participants: flight.participants.iter().copied().collect(),
            };
            let (reply, _unread) = mailbox();
            let _ = (self.client.ctx.net).request(self.client.coordinator, request, reply);
        }
        self.finished.push_back((flight.ticket, Err(error)));
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.closing = true;
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.flights.is_empty() && Instant::now() < deadline {
            self.progress(Some(NAP));
        }
        for flight in std::mem::take(&mut self.flights) {
            let error = Error::InvalidInput("the pipeline was dropped".into());
            self.fail(flight, error);
        }
    }
}

/// An operation's request, given the transaction's id, whether it is its first on
/// the node, and its begin stamp.
type MakeRequest = Box<dyn FnOnce(TxnId, bool, u64) -> Request>;

fn read_request(key: String, mode: LockMode) -> (String, MakeRequest) {
    let owned = key.clone();
    let make = move |tid, first, began| Request::Read {
        tid,
        key: owned,
        mode,
        first,
        began,
    };
    (key, Box::new(make))
}

fn write_request(key: String, value: Option<String>) -> (String, MakeRequest) {
    let owned = key.clone();
    let make = move |tid, first, began| Request::Write {
        tid,
        key: owned,
        value,
        first,
        began,
    };
    (key, Box::new(make))
}

fn crashed(node: NodeId) -> Error {
    Error::NodeDown {
        node,
        detail: "it crashed before answering".into(),
    }
}

/// A commit's error as the client sees it: its coordinator's death leaves the outcome
/// unknown (it may have decided to commit).
fn commit_error(error: Error, tid: Option<TxnId>, coordinator: NodeId) -> Error {
    match (error, tid) {
        (Error::NodeDown { node, .. }, Some(tid)) if node == coordinator => {
            Error::OutcomeUnknown { tid, coordinator }
        }
        (error, _) => error,
    }
}
