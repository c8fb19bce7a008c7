//! kv2pc: a transactional key-value store whose nodes commit with two-phase commit.
//!
//! The layers, top to bottom (see `DESIGN.md` in the repository):
//! - [`client`]: sessions and transactions, the API users call;
//! - [`cluster`]: the embedded cluster of node threads, faults and observation;
//! - [`runtime`] and [`net`]: a node's thread and the network of messages between
//!   nodes ([`context`]: what they still share besides);
//! - [`node`], [`coordinator`], [`participant`], [`lock`]: the protocol as pure state
//!   machines, stepped without threads or I/O;
//! - [`wal`] and [`store`]: the write-ahead log, checkpoints and committed data.

pub mod bench;
pub mod client;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod context;
pub mod coordinator;
pub mod crash;
pub mod deadlock;
pub mod disk;
pub mod error;
pub mod lock;
pub mod message;
pub mod net;
pub mod node;
pub mod participant;
pub mod rng;
pub mod runtime;
pub mod shell;
pub mod sim;
pub mod store;
mod text;
pub mod trace;
pub mod types;
pub mod wal;

pub use client::{Client, ClientObserver, ReadOnly, Transaction, WaitInfo};
pub use cluster::{Cluster, RecoveryReport};
pub use config::{Config, DeadlockPolicy, Settings};
pub use crash::CrashPoint;
pub use error::{Error, Result};
pub use trace::TraceEvent;
pub use types::{NodeId, Timestamp, TxnId};
