//! The machinery of the randomized fault runs (`tests/random_faults.rs`): a seeded
//! [`scenario`] generator (with scripted [`episodes`]), the [`client`] threads that run each transaction's calls, and
//! the [`driver`] that executes a scenario deterministically and records its history;
//! and the [`free`]-running runs, where clients and faults race.

pub mod answers;
pub mod client;
pub mod driver;
pub mod episodes;
pub mod free;
pub mod generate;
pub mod rest;
pub mod scenario;
