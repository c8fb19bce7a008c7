//! The shell over node processes, end to end: a `kv2pc cluster` script that commits,
//! crashes a node's process and restarts it; the in-doubt window of two-phase commit
//! held open by a dead process and closed by its restart; `kv2pc --connect` to `kv2pc
//! node` processes that the test starts and kills by hand; a node's port fed bytes that
//! are not kv2pc's; the commands that cannot work over processes; `--json` over them.
//!
//! Every wait is bounded ([`PATIENCE`](support::PATIENCE)), and no process outlives its
//! test: each `kv2pc` run leads a process group of its own, which holds the node
//! processes a `kv2pc cluster` launches, and the group is killed if the run does not end
//! in time (or leaves a node behind); each `kv2pc node` the test starts is killed when
//! its guard drops.
//!
//! Over processes the shell runs on real time and a piped script does not wait for a
//! timeout (`TICK` is refused): where a scene needs time to pass, the test pauses
//! between parts of the script, as a teacher waits before typing on.
//!
//! The tests marked `#[ignore = "bug: ..."]` show bugs found while writing these; each
//! passes once its bug is fixed.
//!
//! The tests live by concept in `process_cluster/`: `shell.rs` (a `kv2pc cluster`
//! session, the refusals, `--json`), `in_doubt.rs`, `connect.rs`, `bad_input.rs` and
//! `bugs.rs`; `support.rs` and `raw.rs` hold what they share.

#![cfg(unix)]

#[path = "support/binary.rs"]
mod binary;

#[path = "process_cluster/bad_input.rs"]
mod bad_input;
#[path = "process_cluster/bugs.rs"]
mod bugs;
#[path = "process_cluster/connect.rs"]
mod connect;
#[path = "process_cluster/in_doubt.rs"]
mod in_doubt;
#[path = "process_cluster/raw.rs"]
mod raw;
#[path = "process_cluster/shell.rs"]
mod shell;
#[path = "process_cluster/support.rs"]
mod support;
