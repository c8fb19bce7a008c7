//! The client threads of a run: each transaction's calls run on a thread of its own,
//! because a call may block (on a lock, a vote timeout, an in-doubt participant), and the
//! driver must go on with the run meanwhile. [`Blocked`] tells the driver when a thread is
//! stuck in the cluster. The commands and answers are the simulator's sessions' own
//! (`kv2pc::sim::{Command, Response}`), so one driver feeds both.

use crossbeam::channel::{Receiver, Sender};
use kv2pc::client::{ClientObserver, WaitInfo};
use kv2pc::sim::{Command, Response as Answer};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Whether a client thread is blocked waiting for the cluster, and in which wait: the
/// count of its transitions, odd while blocked. One client operation may block more than
/// once (an operation a participant refuses is followed by the abort it sends the
/// coordinator), so "blocked" alone could be the second wait about to end: only the same
/// wait seen before and after the cluster settles is a client stuck in the cluster.
#[derive(Default)]
pub struct Blocked(AtomicU64);

impl Blocked {
    /// The wait the thread is in (an odd number), or the one it left (even).
    pub fn state(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    /// Whether the thread is blocked now.
    pub fn is_blocked(&self) -> bool {
        self.state() % 2 == 1
    }
}

impl ClientObserver for Blocked {
    fn waiting(&self, _info: &WaitInfo) {}
    fn blocking(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
    fn resumed(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Runs one transaction's calls as the driver sends them.
pub fn client_thread(
    mut client: kv2pc::Client,
    blocked: Arc<Blocked>,
    commands: Receiver<Command>,
    answers: Sender<kv2pc::Result<Answer>>,
) {
    client.observe(blocked);
    let mut txn = None;
    let mut snapshot = None;
    for command in commands {
        let answer = match command {
            Command::Begin => client.begin().map(|t| {
                let tid = t.id().expect("an eager begin has an id");
                txn = Some(t);
                Answer::Begun(tid)
            }),
            Command::BeginSnapshot => {
                let read_only = client.begin_read_only();
                let read_ts = read_only.read_ts();
                snapshot = Some(read_only);
                Ok(Answer::Snapshot(read_ts))
            }
            Command::Read(key) if snapshot.is_some() => {
                (snapshot.as_ref().expect("begun").get(&key)).map(Answer::Read)
            }
            // Ending a snapshot sends nothing: it locked and wrote nothing.
            Command::Commit | Command::Abort if snapshot.is_some() => {
                snapshot.take().expect("begun").commit();
                Ok(Answer::Done)
            }
            // A careless client goes on after an error: what follows must fail.
            Command::Read(_)
            | Command::ReadForUpdate(_)
            | Command::Delete(_)
            | Command::Write(..)
            | Command::Commit
            | Command::Abort
                if txn.is_none() =>
            {
                Err(kv2pc::Error::InvalidInput("no transaction is open".into()))
            }
            Command::Read(key) => (txn.as_mut().expect("begun").get(&key)).map(Answer::Read),
            Command::ReadForUpdate(key) => {
                (txn.as_mut().expect("begun").get_for_update(&key)).map(Answer::Read)
            }
            Command::Delete(key) => {
                (txn.as_mut().expect("begun").delete(&key)).map(|()| Answer::Done)
            }
            Command::Write(key, value) => {
                (txn.as_mut().expect("begun").put(&key, &value)).map(|()| Answer::Done)
            }
            Command::Commit => txn.take().expect("begun").commit().map(|()| Answer::Done),
            Command::Abort => txn.take().expect("begun").abort().map(|()| Answer::Done),
        };
        if answers.send(answer).is_err() {
            return;
        }
    }
}
