//! What the driver runs a scenario on: a [`Backend`] gives each transaction a session,
//! hands it commands, lets the cluster run until the run is at rest, injects the faults,
//! and shows what the checks at rest and at the end read. Two implement it:
//! `threaded` (the real cluster of node threads on a manual clock, each session on a
//! thread of its own) and `simulated` (the deterministic simulator, `kv2pc::sim`, on
//! one thread). The driver, the recording of answers and every check are the same for
//! both.

use super::scenario::Event;
use kv2pc::cluster::KeyLocks;
use kv2pc::sim::{Command, Response};
use kv2pc::{NodeId, TxnId};
use std::collections::BTreeMap;

/// A run's failure: what went wrong.
pub type Failure = String;

/// An answer a session gave: to which transaction, and what it was told.
pub type Told = (usize, kv2pc::Result<Response>);

/// A cluster a scenario runs on.
pub trait Backend {
    /// Writes every key blind, in one committed transaction, before the run.
    fn set_up(&mut self, keys: &[String]) -> Result<(), Failure>;
    /// Opens transaction `txn`'s session, coordinated by `coordinator`.
    fn open(&mut self, txn: usize, coordinator: NodeId);
    /// Hands a command to `txn`'s session, which is idle.
    fn send(&mut self, txn: usize, command: Command);
    /// Ends `txn`'s session: its transaction is over.
    fn close(&mut self, txn: usize);
    /// Lets the cluster run until the run is at rest: every session answered or stuck
    /// in the cluster, nothing in flight. Returns the answers that came meanwhile.
    fn quiesce(&mut self) -> Result<Vec<Told>, Failure>;
    /// At rest: whether `txn`'s command is stuck in the cluster, unanswered.
    fn stuck(&self, txn: usize) -> bool;
    /// Injects a fault or a tick (any event but a transaction's); returns what it did.
    fn fault(&mut self, event: &Event) -> Result<String, Failure>;
    /// Whether `node` is up.
    fn is_up(&self, node: NodeId) -> bool;
    /// The held links, as `(from, to, messages waiting)`.
    fn held_links(&self) -> Vec<(NodeId, NodeId, usize)>;
    /// Releases a held link; returns how many messages waited on it.
    fn release_link(&mut self, from: NodeId, to: NodeId) -> usize;
    /// Every lock table's keys with holders or waiters, by node.
    fn locks(&self) -> Vec<(NodeId, KeyLocks)>;
    /// The transactions `node` is in doubt on, with their coordinators.
    fn in_doubt(&self, node: NodeId) -> Vec<(TxnId, NodeId)>;
    /// Restarts every node and resolves everything; what is left over if it never
    /// clears.
    fn recover(&mut self) -> Result<(), Vec<String>>;
    /// Every node's committed data, merged.
    fn data(&self) -> BTreeMap<String, String>;
    /// Ends the sessions for good (the threads join).
    fn join(&mut self) -> Result<(), Failure>;
    /// What the cluster did, step by step, if it keeps a trace (the simulator does).
    fn trace(&self) -> &[String] {
        &[]
    }
}
