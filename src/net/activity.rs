//! A shell session's commands as work in flight: what `Cluster::activity` hands out.

use super::work::{Label, Ledger, What, Work};
use parking_lot::Mutex;
use std::sync::Arc;

/// Counts a shell session's command as work in flight, so that `Cluster::settle` waits
/// for it, except while the session is blocked on the cluster (then the cluster's own
/// work is what it waits for, or a lock, which is not work). See `Cluster::activity`.
/// Clones share the session's state.
#[derive(Clone)]
pub struct Activity {
    ledger: Arc<Ledger>,
    command: Arc<Mutex<Command>>,
}

/// Where a session is with its command.
enum Command {
    /// No command taken up (one handed over waits with its own token).
    Idle,
    /// Running a command, which this token keeps in flight.
    Running { _work: Work },
    /// Running a command, blocked on the cluster.
    Blocked,
}

impl Activity {
    /// A command is handed to the session: the token keeps it in flight until the
    /// session takes it up ([`Activity::begin`]).
    pub fn dispatched(&self) -> Work {
        let label = Label {
            what: What::Session,
            node: None,
        };
        Work::start(&self.ledger, label)
    }

    /// The session takes up the command handed over with `work`.
    pub fn begin(&self, work: Work) {
        *self.command.lock() = Command::Running { _work: work };
    }

    /// The session blocks until the cluster answers: its command stops counting.
    pub fn blocked(&self) {
        let mut command = self.command.lock();
        if let Command::Running { .. } = *command {
            *command = Command::Blocked;
        }
    }

    /// The session woke with an answer (whose own token is still alive): its command
    /// counts again.
    pub fn resumed(&self) {
        let mut command = self.command.lock();
        if let Command::Blocked = *command {
            *command = Command::Running {
                _work: self.dispatched(),
            };
        }
    }

    /// The session has answered its command.
    pub fn ended(&self) {
        *self.command.lock() = Command::Idle;
    }
}

impl Activity {
    /// The activity of a new session, counted in `ledger`.
    pub(super) fn new(ledger: Arc<Ledger>) -> Activity {
        Activity {
            ledger,
            command: Arc::new(Mutex::new(Command::Idle)),
        }
    }
}
