//! The channel a client request is answered on: zero or more `Waiting` replies (and a
//! `Begun`), then one `Done`, from the node threads that handle the request.
//!
//! # How a receiver waits
//!
//! Every client call waits for exactly one answer, and on this machine there are far more
//! client threads than cores, so how a client waits decides much of the throughput. A
//! receiver waits in up to three stages:
//! 1. **Spin** (up to 20 µs), only when no other receiver is waiting: the cores have
//!    nothing better to do, and the answer, usually back within a few microseconds,
//!    costs no sleep and wake-up (an autocommit `GET` from one client: about 5 µs
//!    instead of 35).
//! 2. **Yield** the core a few times (8) when others wait too: the thread that will
//!    answer is often runnable and gets the core at once, and an answer that comes
//!    meanwhile costs no futex wake-up. Measured here, this took 256 clients' `GET`s from
//!    about 175,000 to 550,000-900,000 a second and 16 clients' 2-node commits from
//!    14,000 to 19,000-22,000.
//! 3. **Park** on a condition variable until the node answers.
//!
//! A crossbeam channel waits much like stages 2 and 3, but it cannot spin only when
//! alone (that needs the count of waiting receivers, which the node threads also read
//! as a measure of load: [`Waiting`], one per cluster, owned by its
//! [`Net`](super::Net)), it cannot take a reply that need not
//! wake the receiver ([`ReplySender::send_quiet`]: a transaction id that precedes its
//! operation's answer), and it costs several allocations per call where a mailbox costs
//! one. `KV2PC_SPIN_US` and `KV2PC_YIELDS` set stages 1 and 2, for measuring.
//!
//! # Disconnection
//!
//! As with a channel, the receiver learns when every [`ReplySender`] is gone without a
//! `Done`: the node died holding the request. `recv` then returns `None`.
//!
//! # Work
//!
//! Each reply travels with its [`Work`] token: the reply counts as in flight
//! (`Cluster::settle`) until the client has taken it and dropped the token, so that
//! settling also waits for clients to wake. A reply handed back (the receiver is gone)
//! comes back with its token, which ends when the caller drops it.

use super::work::Work;
use crate::message::Reply;
use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a receiver watches for its answer before it parks.
fn spin_for() -> Duration {
    static SPIN: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *SPIN.get_or_init(|| {
        let micros = std::env::var("KV2PC_SPIN_US")
            .ok()
            .and_then(|s| s.parse().ok());
        Duration::from_micros(micros.unwrap_or(20))
    })
}

/// How many times a receiver that is not alone yields its core before it parks.
fn yields() -> u32 {
    static YIELDS: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *YIELDS.get_or_init(|| {
        let yields = std::env::var("KV2PC_YIELDS")
            .ok()
            .and_then(|s| s.parse().ok());
        yields.unwrap_or(8)
    })
}

/// The receivers of one cluster waiting now. A receiver spins only when it is the only
/// one: then the cores are idle but for its answer's work, and spinning saves the
/// wake-up (on this machine a GET from one client takes about 6 µs instead of 35). With
/// others waiting, a spinning receiver would take a core their answers need. The node
/// threads read it too, as a measure of load, to decide whether to fsync themselves.
/// Per cluster: clusters in one process (parallel tests) do not see each other's
/// clients.
#[derive(Default)]
pub struct Waiting(AtomicUsize);

impl Waiting {
    /// How many receivers are waiting for an answer now.
    pub fn count(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

struct Inner {
    replies: Mutex<VecDeque<(Reply, Work)>>,
    /// Rung with the receiver's wake-up, for a receiver that waits on many mailboxes.
    bell: Option<Arc<Bell>>,
    /// Set with the queue lock held whenever a reply is queued or the last sender goes.
    ready: AtomicBool,
    senders: AtomicUsize,
    wake: Condvar,
}

/// The receiving end, held by the client waiting for its answer.
pub struct Mailbox {
    inner: Arc<Inner>,
}

/// The sending end, held by the node thread handling the request. Cheap to clone.
pub struct ReplySender {
    inner: Arc<Inner>,
}

/// A new mailbox and its first sender.
pub fn mailbox() -> (ReplySender, Mailbox) {
    new_mailbox(None)
}

/// A new mailbox whose replies (and disconnection) also ring `bell`: for one thread
/// that waits on many mailboxes at once (`client::pipeline`).
pub fn mailbox_ringing(bell: &Arc<Bell>) -> (ReplySender, Mailbox) {
    new_mailbox(Some(bell.clone()))
}

fn new_mailbox(bell: Option<Arc<Bell>>) -> (ReplySender, Mailbox) {
    let inner = Arc::new(Inner {
        replies: Mutex::new(VecDeque::new()),
        bell,
        ready: AtomicBool::new(false),
        senders: AtomicUsize::new(1),
        wake: Condvar::new(),
    });
    let sender = ReplySender {
        inner: inner.clone(),
    };
    (sender, Mailbox { inner })
}

impl ReplySender {
    /// Queues a reply and its work token and wakes the receiver. Never blocks; if the
    /// receiver is gone both are handed back.
    pub fn send(&self, reply: Reply, work: Work) -> Result<(), (Reply, Work)> {
        self.push(reply, work, true)
    }

    /// Which mailbox this sends to: equal for every sender of one mailbox, and unique
    /// among mailboxes alive at once (the address of what they share).
    pub fn id(&self) -> usize {
        Arc::as_ptr(&self.inner) as usize
    }

    /// Queues a reply without waking a receiver that is asleep: for a reply that a later
    /// one is sure to follow (the receiver takes both when that one wakes it).
    pub fn send_quiet(&self, reply: Reply, work: Work) -> Result<(), (Reply, Work)> {
        self.push(reply, work, false)
    }

    fn push(&self, reply: Reply, work: Work, wake: bool) -> Result<(), (Reply, Work)> {
        if Arc::strong_count(&self.inner) <= self.inner.senders.load(Ordering::SeqCst) {
            return Err((reply, work));
        }
        let mut replies = self.inner.replies.lock();
        replies.push_back((reply, work));
        self.inner.ready.store(true, Ordering::SeqCst);
        if wake {
            self.inner.wake.notify_one();
            drop(replies);
            if let Some(bell) = &self.inner.bell {
                bell.ring();
            }
        }
        Ok(())
    }
}

impl Clone for ReplySender {
    fn clone(&self) -> ReplySender {
        // The reference first: `send` takes a strong count no greater than the senders
        // to mean the receiver is gone.
        let inner = self.inner.clone();
        inner.senders.fetch_add(1, Ordering::SeqCst);
        ReplySender { inner }
    }
}

impl Drop for ReplySender {
    fn drop(&mut self) {
        if self.inner.senders.fetch_sub(1, Ordering::SeqCst) == 1 {
            let replies = self.inner.replies.lock();
            self.inner.ready.store(true, Ordering::SeqCst);
            self.inner.wake.notify_one();
            drop(replies);
            if let Some(bell) = &self.inner.bell {
                bell.ring();
            }
        }
    }
}

impl Mailbox {
    /// The next reply if one is queued, without waiting, with its work token (drop it
    /// once the reply is dealt with).
    pub fn try_recv(&self) -> Option<(Reply, Work)> {
        if !self.inner.ready.load(Ordering::SeqCst) {
            return None;
        }
        self.take(&mut self.inner.replies.lock())
    }

    /// Whether every sender is gone and no reply is left: the node died holding the
    /// request (see "Disconnection").
    pub fn is_closed(&self) -> bool {
        let replies = self.inner.replies.lock();
        replies.is_empty() && self.inner.senders.load(Ordering::SeqCst) == 0
    }

    /// Waits for the next reply, counted among its cluster's `waiting` receivers;
    /// `None` once every sender is gone and none is queued.
    pub fn recv(&self, waiting: &Waiting) -> Option<(Reply, Work)> {
        if waiting.0.fetch_add(1, Ordering::SeqCst) == 0 {
            let start = Instant::now();
            'spin: while start.elapsed() < spin_for() {
                for _ in 0..32 {
                    if self.inner.ready.load(Ordering::Acquire) {
                        break 'spin;
                    }
                    std::hint::spin_loop();
                }
            }
        } else {
            // Others wait too: give the core to whoever can use it (a node thread with
            // this answer to send, often) a few times before parking, as a crossbeam
            // channel does; an answer that comes meanwhile costs no sleep and wake-up.
            for _ in 0..yields() {
                if self.inner.ready.load(Ordering::Acquire) {
                    break;
                }
                std::thread::yield_now();
            }
        }
        let reply = self.park();
        waiting.0.fetch_sub(1, Ordering::SeqCst);
        reply
    }

    fn park(&self) -> Option<(Reply, Work)> {
        let mut replies = self.inner.replies.lock();
        loop {
            if let Some(reply) = self.take(&mut replies) {
                return Some(reply);
            }
            if self.inner.senders.load(Ordering::SeqCst) == 0 {
                return None;
            }
            self.inner.wake.wait(&mut replies);
        }
    }

    fn take(&self, replies: &mut VecDeque<(Reply, Work)>) -> Option<(Reply, Work)> {
        let reply = replies.pop_front();
        let disconnected = self.inner.senders.load(Ordering::SeqCst) == 0;
        self.inner
            .ready
            .store(!replies.is_empty() || disconnected, Ordering::SeqCst);
        reply
    }
}

/// What one thread waiting on many mailboxes sleeps on: each mailbox made with
/// [`mailbox_ringing`] rings it when a reply that wakes (not [`ReplySender::send_quiet`])
/// is queued, and when its last sender goes. A ring is remembered until the next wait
/// takes it, so one that comes between the receiver's look at its mailboxes and its
/// wait is not lost.
#[derive(Default)]
pub struct Bell {
    rung: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
}

impl Bell {
    /// Rings the bell: its waiter wakes (now, or at once when it next waits).
    pub fn ring(&self) {
        if !self.rung.swap(true, Ordering::SeqCst) {
            let _lock = self.lock.lock();
            self.wake.notify_one();
        }
    }

    /// Waits until the bell rings or `timeout` passes, counted as `receivers` waiting
    /// receivers of its cluster (each transaction a pipelined client waits for counts,
    /// as its own thread would). Yields the core a few times first, as
    /// [`Mailbox::recv`] does when others wait. Returns whether it rang.
    pub fn wait(&self, waiting: &Waiting, receivers: usize, timeout: Duration) -> bool {
        waiting.0.fetch_add(receivers, Ordering::SeqCst);
        for _ in 0..yields() {
            if self.rung.load(Ordering::Acquire) {
                break;
            }
            std::thread::yield_now();
        }
        let deadline = Instant::now() + timeout;
        let mut lock = self.lock.lock();
        while !self.rung.load(Ordering::SeqCst) {
            if self.wake.wait_until(&mut lock, deadline).timed_out() {
                break;
            }
        }
        drop(lock);
        waiting.0.fetch_sub(receivers, Ordering::SeqCst);
        self.rung.swap(false, Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Answer;
    use crate::net::work::{Label, Ledger, What};

    fn done() -> Reply {
        Reply::Done(Ok(Answer::Done))
    }

    fn work(ledger: &Arc<Ledger>) -> Work {
        Work::start(ledger, Label::on(What::Reply, 0))
    }

    #[test]
    fn replies_arrive_in_order_across_threads() {
        let (sender, mailbox) = mailbox();
        let (ledger, waiting) = (Ledger::new(1), Waiting::default());
        let sending = ledger.clone();
        let thread = std::thread::spawn(move || {
            for _ in 0..3 {
                let waiting = Reply::Waiting {
                    key: "k".into(),
                    mode: crate::lock::LockMode::Shared,
                    blockers: Vec::new(),
                };
                sender
                    .send(waiting, work(&sending))
                    .expect("receiver alive");
            }
            sender.send(done(), work(&sending)).expect("receiver alive");
        });
        for _ in 0..3 {
            let reply = mailbox.recv(&waiting).map(|(reply, _)| reply);
            assert!(matches!(reply, Some(Reply::Waiting { .. })));
        }
        let reply = mailbox.recv(&waiting).map(|(reply, _)| reply);
        assert!(matches!(reply, Some(Reply::Done(Ok(Answer::Done)))));
        thread.join().expect("sender thread");
        assert!(mailbox.recv(&waiting).is_none(), "every sender is gone");
        assert!(ledger.is_quiet(), "every reply's work ended with it");
    }

    #[test]
    fn the_receiver_wakes_when_the_last_sender_drops_unanswered() {
        let (sender, mailbox) = mailbox();
        let second = sender.clone();
        drop(sender);
        assert!(mailbox.try_recv().is_none());
        let thread = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            drop(second);
        });
        assert!(mailbox.recv(&Waiting::default()).is_none());
        thread.join().expect("sender thread");
    }

    #[test]
    fn a_bell_rings_for_a_reply_and_for_a_disconnection_not_for_a_quiet_reply() {
        let bell = Arc::new(Bell::default());
        let (ledger, waiting) = (Ledger::new(1), Waiting::default());
        let (first, answered) = mailbox_ringing(&bell);
        let (second, lost) = mailbox_ringing(&bell);
        let short = Duration::from_millis(1);
        assert!(!bell.wait(&waiting, 2, short), "nothing rang yet");
        first
            .send_quiet(done(), work(&ledger))
            .expect("receiver alive");
        assert!(
            !bell.wait(&waiting, 2, short),
            "a quiet reply does not ring"
        );
        first.send(done(), work(&ledger)).expect("receiver alive");
        assert!(bell.wait(&waiting, 2, short), "a reply rings");
        assert!(!answered.is_closed(), "replies are left, and a sender");
        drop(second);
        assert!(
            bell.wait(&waiting, 2, short),
            "the last sender's going rings"
        );
        assert!(lost.is_closed());
        assert_eq!(waiting.count(), 0, "the waits counted only while waiting");
    }

    #[test]
    fn a_reply_to_a_receiver_that_left_is_handed_back() {
        let (sender, mailbox) = mailbox();
        drop(mailbox);
        let ledger = Ledger::new(1);
        assert!(sender.send(done(), work(&ledger)).is_err());
        assert!(
            ledger.is_quiet(),
            "the reply's work ended as it was handed back"
        );
    }
}
