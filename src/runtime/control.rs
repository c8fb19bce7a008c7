//! A node thread's work outside the protocol: the cluster's control requests (crash,
//! arm a crash point, checkpoint, status, lock table, data, failure injection),
//! automatic checkpoints, and stopping on an error (a failed write, or a panic: see
//! the runtime's doc).

use super::{Flow, Runtime};
use crate::crash::CrashPoint;
use crate::net::Work;
use crate::net::{Control, NodeStatus};
use crate::trace::TraceEvent;

impl Runtime {
    /// Runs `step` (which puts the tokens of the mail it takes in `handled`); a panic in
    /// it is a crash, reported with its message (see the module doc).
    pub(super) fn guarded(
        &mut self,
        handled: &mut Vec<Work>,
        step: impl FnOnce(&mut Runtime, &mut Vec<Work>) -> Flow,
    ) -> Flow {
        let run = std::panic::AssertUnwindSafe(|| step(self, handled));
        match std::panic::catch_unwind(run) {
            Ok(flow) => flow,
            Err(panic) => self.panicked(panic.as_ref()),
        }
    }

    /// The node thread panicked mid-batch: it dies as on a failed log write, saying why.
    fn panicked(&mut self, panic: &(dyn std::any::Any + Send)) -> Flow {
        let message = (panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".into());
        let why = format!("it panicked: {message}");
        self.ctx.set_failure(self.id, Some(why.clone()));
        self.ctx
            .net
            .detach_because(self.id, format!("{why}; RESTART it"));
        // Leaving reads the node's state, which the panic may have left half changed.
        let leave = std::panic::AssertUnwindSafe(|| self.leave());
        let _ = std::panic::catch_unwind(leave);
        Flow::Crashed
    }

    pub(super) fn maybe_checkpoint(&mut self) -> Flow {
        let limit = self.ctx.settings.read().checkpoint_bytes;
        if self.wal.size() > limit {
            if let Err(error) = self.wal.checkpoint(&self.node.snapshot()) {
                self.fail(error);
                return Flow::Crashed;
            }
            // The checkpoint synced the log: what waited for it may leave.
            self.synced_here();
        }
        Flow::Continue
    }

    pub(super) fn control(&mut self, control: Control) -> Flow {
        match control {
            Control::Crash => {
                // Held messages are lost; held answers turn into "node down" in `leave`.
                self.ctx.net.tracer.emit(|| TraceEvent::Crash {
                    depth: 0,
                    node: self.id,
                    point: None,
                    tid: None,
                });
                return Flow::Crashed;
            }
            Control::Arm(point) => self.armed = Some(point),
            Control::Wake => self.node.report_waits_again(),
            // Step mode let a queued fsync go: everything written so far is synced.
            Control::StepFsync => return self.sync_now(),
            Control::FailNextWrite => self.wal.fail_next_write(),
            Control::Checkpoint(reply) => {
                let result = match self.finish_batch() {
                    Flow::Continue => self.wal.checkpoint(&self.node.snapshot()),
                    _ => Err(crate::Error::NodeDown {
                        node: self.id,
                        detail: "it failed while checkpointing".into(),
                    }),
                };
                let synced = result.is_ok();
                let _ = reply.send(result);
                if synced {
                    self.synced_here();
                }
            }
            Control::Status(reply) => {
                let _ = reply.send(self.status());
            }
            Control::Synced(reply) => {
                let _ = reply.send((self.wal.segment(), self.wal.synced_len()));
            }
            Control::Locks(reply) => {
                let _ = reply.send(self.node.participant().locks().snapshot());
            }
            Control::Data(reply) => {
                let data = self.node.participant().store().iter();
                let _ = reply.send(data.map(|(k, v)| (k.to_string(), v.to_string())).collect());
            }
            Control::Resolve(tid, commit, reply) => {
                let mut effects = std::mem::take(&mut self.effects);
                let result = self.node.resolve(tid, commit, &mut effects);
                self.effects = effects;
                let mut flow = self.execute(0);
                // The operator is told once the Heuristic record is durable; in step mode
                // its fsync waits in the queue like any other (the shell says so).
                if flow == Flow::Continue && result.is_ok() && !self.ctx.net.steps.is_on() {
                    flow = self.sync_now();
                }
                let _ = reply.send(result);
                return flow;
            }
            Control::Panic(message) => panic!("{message}"),
            Control::Shutdown => {
                return match self.sync_now() {
                    Flow::Continue => Flow::Stopped,
                    other => other,
                };
            }
        }
        Flow::Continue
    }

    pub(super) fn status(&self) -> NodeStatus {
        let participant = self.node.participant();
        NodeStatus {
            node: self.id,
            up: true,
            active: participant.active(),
            in_doubt: (participant.in_doubt().into_iter())
                .map(|(tid, prepared)| (tid, prepared.coordinator))
                .collect(),
            coordinating: self.node.coordinator().open_transactions(),
            unacknowledged: self.node.coordinator().decided().keys().copied().collect(),
            keys: participant.store().len(),
            log_bytes: self.wal.size(),
            fsyncs: self.wal.fsyncs() + self.syncer.fsyncs(),
            armed: self.armed,
            failure: None,
            mixed: (participant.mixed().iter())
                .map(|mixed| (mixed.tid, mixed.committed_here))
                .collect(),
        }
    }

    /// Records an I/O failure: the node cannot go on without its log, so it dies, and
    /// `STATUS` says why.
    pub(super) fn fail(&self, error: crate::Error) {
        self.ctx.set_failure(self.id, Some(error.to_string()));
    }

    /// `KV2PC_FAILPOINT`: makes durable what precedes the point, then kills the process.
    pub(super) fn failpoint(&mut self, point: CrashPoint) {
        if self.ctx.failpoint == Some((self.id, point)) {
            let _ = self.wal.flush(true);
            eprintln!(
                "kv2pc: fail point node{}:{point} reached; aborting the process",
                self.id
            );
            std::process::abort();
        }
    }
}
