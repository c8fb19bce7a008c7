//! A restarted participant rejoining the cluster: it announces its restart to every peer
//! and holds every locking operation (a read or write under a lock) until each peer has
//! answered or is known to be down. Snapshot reads, PREPAREs and outcomes go on
//! meanwhile. Why this is needed and why it is enough: "Restarts" in the module doc
//! above.
//!
//! # What counts as an answer from a peer
//!
//! - Its `RestartAck`: it has handled the announcement, aborting, as a coordinator,
//!   every transaction still collecting votes that counted a vote of this node's old
//!   incarnation.
//! - Its own `Restarted`: it restarted after this node did (this node's inbox is new),
//!   and a new incarnation knows no vote of this node's old one.
//! - The router's word that the announcement was not delivered (`Input::Undelivered`):
//!   the peer was down when it was sent, or died with it unread in its inbox. The
//!   incarnation that might have counted an old vote is dead, and the next one starts
//!   with nothing collecting (presumed abort).
//!
//! An answer can still be lost: a peer that handles the announcement and crashes before
//! its `RestartAck` leaves. So the node announces again, every inquiry interval, to the
//! peers it still waits for; to a peer that is down, the new announcement is undelivered,
//! and the router says so. The node never waits for ever: each peer is either up, and
//! answers, or down, and the router reports it. A repeated announcement that arrives
//! after the handshake aborts nothing the new incarnation voted for: it was sent before
//! any of its votes, and messages between two nodes arrive in order.
//!
//! # Limits
//!
//! "Down" is exact here: nodes are threads of one process, and the router knows which
//! inboxes are attached. Across a network it would be a failure detector's verdict, and
//! a wrong one (a slow peer judged down) would reopen the window, unless the peer judged
//! down were fenced first (its incarnation ended before this node serves). The shell has
//! no words yet for an operation held here: it shows as a plain wait, which in the
//! scripts' manual clock lasts only when a peer died before its answer left, until the
//! next TICK re-announces.

use super::{Participant, PendingOp};
use crate::message::{Effect, Message, ReqId};
use crate::types::{NodeId, TxnId};
use std::collections::BTreeSet;
use std::time::Duration;

/// A locking operation that arrived while the node was rejoining.
#[derive(Clone, Debug)]
struct HeldOp {
    req: ReqId,
    /// The transaction and its begin stamp.
    txn: (TxnId, u64),
    op: PendingOp,
    first: bool,
}

/// The handshake of a restarted participant with its peers.
#[derive(Clone, Debug)]
pub(super) struct Rejoin {
    /// This incarnation's first transaction counter, repeated in every announcement.
    live_from: u64,
    /// Peers that have neither answered the announcement nor been found down.
    awaiting: BTreeSet<NodeId>,
    /// Locking operations that arrived meanwhile, in arrival order.
    held: Vec<HeldOp>,
    /// When to announce again to the peers still awaited; `None` until the first tick.
    announce_at: Option<Duration>,
}

impl Participant {
    /// Recovery: announces the restart to every peer, and holds locking operations until
    /// each has answered (see the module doc).
    pub fn rejoin(&mut self, live_from: u64, out: &mut Vec<Effect>) {
        let awaiting: BTreeSet<NodeId> = (0..self.nodes).filter(|p| *p != self.node).collect();
        announce(&awaiting, live_from, out);
        if !awaiting.is_empty() {
            self.rejoin = Some(Rejoin {
                live_from,
                awaiting,
                held: Vec::new(),
                announce_at: None,
            });
        }
    }

    /// `peer` answered the announcement, announced its own restart, or was found down:
    /// once no peer is awaited, the held operations run, in the order they came.
    pub fn peer_settled(&mut self, peer: NodeId, out: &mut Vec<Effect>) {
        let Some(rejoin) = &mut self.rejoin else {
            return;
        };
        rejoin.awaiting.remove(&peer);
        if !rejoin.awaiting.is_empty() {
            return;
        }
        let held = self.rejoin.take().map(|rejoin| rejoin.held);
        for HeldOp {
            req,
            txn,
            op,
            first,
        } in held.unwrap_or_default()
        {
            self.operate(req, txn, op, first, out);
        }
    }

    /// The peers whose answer to this node's restart it still waits for, sorted.
    pub fn rejoining(&self) -> Vec<NodeId> {
        (self.rejoin.iter())
            .flat_map(|rejoin| rejoin.awaiting.iter().copied())
            .collect()
    }

    /// While rejoining, keeps a locking operation for later and returns `None`; else
    /// gives it back.
    pub(super) fn hold_while_rejoining(
        &mut self,
        req: ReqId,
        txn: (TxnId, u64),
        op: PendingOp,
        first: bool,
    ) -> Option<PendingOp> {
        match &mut self.rejoin {
            Some(rejoin) => {
                rejoin.held.push(HeldOp {
                    req,
                    txn,
                    op,
                    first,
                });
                None
            }
            None => Some(op),
        }
    }

    /// Time passed: announce again to the peers that have not answered.
    pub(super) fn rejoin_tick(&mut self, now: Duration, interval: Duration, out: &mut Vec<Effect>) {
        let Some(rejoin) = &mut self.rejoin else {
            return;
        };
        match rejoin.announce_at {
            Some(at) if now < at => return,
            Some(_) => announce(&rejoin.awaiting, rejoin.live_from, out),
            None => {}
        }
        rejoin.announce_at = Some(now.saturating_add(interval));
    }
}

fn announce(peers: &BTreeSet<NodeId>, live_from: u64, out: &mut Vec<Effect>) {
    for peer in peers {
        out.push(Effect::Send {
            to: *peer,
            message: Message::Restarted { live_from },
        });
    }
}
