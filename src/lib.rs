//! kv2pc: a transactional key-value store whose nodes commit with two-phase commit.
//!
//! The layers, top to bottom (see `DESIGN.md` in the repository); a module imports only
//! modules of its own layer or below, never one above, and no two import each other
//! (`tests/layers.rs` checks both on every test run):
//! - [`shell`] and [`bench`](mod@bench): the shell's commands over a cluster, and the
//!   benchmark; the shell renders only what [`cluster`] and [`client`] return;
//! - [`client`]: sessions and transactions, the API users call (`Cluster::client` is
//!   defined there, so the cluster names no client type);
//! - [`cluster`]: the embedded cluster of node threads, faults, and its own observation
//!   types (`NodeStatus`, `KeyLocks`, `LogEntry`);
//! - `runtime`, `context` and `net`: a node's thread, what the threads still share,
//!   and the network of messages between nodes; beside the runtime, [`sim`], the
//!   deterministic simulator that drives the same state machines on one thread;
//! - [`node`], [`coordinator`], [`participant`], [`deadlock`], [`message`], [`lock`],
//!   `store`: the protocol as pure state machines, stepped without threads or I/O;
//! - [`wal`]: the write-ahead log and checkpoints, over [`disk`], the storage seam (the
//!   real file system, or a simulated disk that loses power);
//! - [`trace`], [`crash`], [`config`], [`clock`], [`error`], [`rng`], `text` and, at the
//!   bottom, [`types`]: the vocabulary every layer shares.
//!
//! # What is public
//!
//! The API: [`Cluster`], [`Client`] and its transactions, [`Config`] and [`Settings`],
//! [`Error`], the value types, the shell (which the `kv2pc` binary drives), the bench,
//! and the seeded generator. For tests and tools, not as a stable API: [`node`],
//! [`coordinator`], [`participant`], [`deadlock`], [`message`], [`lock`] and [`wal`],
//! so that the protocol can be stepped by hand (`tests/protocol.rs`) and logs read and
//! damaged on purpose (`tests/wal.rs`). The node threads' machinery (`runtime`, `net`,
//! `context`) and the committed data (`store`) are internal.

pub mod bench;
pub mod client;
pub mod clock;
pub mod cluster;
pub mod config;
pub(crate) mod context;
pub mod coordinator;
pub mod crash;
pub mod deadlock;
pub mod disk;
pub mod error;
pub mod explore;
pub mod history;
pub mod keyrange;

pub mod lock;
pub mod message;
pub(crate) mod net;
pub mod node;
pub mod participant;
pub mod process;
pub mod rng;
pub(crate) mod runtime;
pub mod shell;
pub mod sim;
pub(crate) mod store;
mod text;
pub mod trace;
pub mod types;
pub mod wal;
pub mod wire;

pub use client::{Client, ClientObserver, ReadOnly, Transaction, WaitInfo};
pub use cluster::{Cluster, RecoveryReport};
pub use config::{CommitMode, Config, DeadlockPolicy, Mistake, Settings};
pub use crash::CrashPoint;
pub use error::{Error, Result};
pub use keyrange::KeyRange;
pub use trace::TraceEvent;
pub use types::{NodeId, Timestamp, TxnId};
