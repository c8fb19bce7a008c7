//! The machinery of the randomized fault runs (`tests/random_faults.rs`): a seeded
//! [`scenario`] generator (with scripted [`episodes`]); the [`driver`] that executes a
//! scenario deterministically on a [`backend`] and records its history (its
//! [`answers`]) and checks it at rest ([`rest`]); the two backends, [`threaded`] (node
//! threads, with the [`client`] threads that run each transaction's calls) and
//! [`simulated`] (the deterministic simulator); and the [`free`]-running runs, where
//! clients and faults race.

pub mod answers;
pub mod backend;
pub mod client;
pub mod driver;
pub mod episodes;
pub mod free;
pub mod generate;
pub mod rest;
pub mod scenario;
pub mod simulated;
pub mod threaded;
