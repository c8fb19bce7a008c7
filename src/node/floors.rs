//! Choosing a read-only transaction's snapshot by asking every node, not by reading
//! shared memory.
//!
//! A read-only transaction reads every key at one timestamp `S`. A read at a node waits
//! only if the key has a prepared, undecided write whose prepare timestamp is below `S`
//! (its commit timestamp could then fall at or below `S`: `participant::snapshot`). So
//! the snapshot should lie at or below every such prepare timestamp anywhere: then no
//! read of it ever waits, not even for a transaction whose coordinator has crashed.
//!
//! Each node knows only its own prepares, so the node a session asks
//! (`Request::SnapshotTimestamp`) runs a round: it sends `FloorQuery` to every other
//! node, each answers `FloorReply` with its **floor**, and the snapshot is
//! `max(seen, min(clock, every floor))`, where `clock` is the asking node's clock once
//! every reply has moved it (so at or above every commit timestamp any node has taken),
//! and `seen` the session's last commit (so it sees its own writes).
//!
//! # A node's floor
//!
//! The lowest of:
//! - the prepare timestamp of every transaction prepared here and undecided;
//! - for every transaction this node coordinates that is still collecting votes, its
//!   clock when it sent PREPARE (`Coordinator::prepare_floor`): a participant that has
//!   prepared but not yet voted, or died before its vote left, cannot answer for
//!   itself, but its prepare timestamp is at or above that clock, which it heard with
//!   the PREPARE.
//!
//! A transaction prepared after a node answered takes a prepare timestamp at or above
//! that node's clock when it answered. The snapshot's `clock` part may be higher (the
//! asking node may have heard of later commits), so such a late prepare can fall below
//! the snapshot: see the limits.
//!
//! # Why a reply waits for the disk
//!
//! A floor rises when an outcome is applied. If the node then crashed before the
//! outcome's record was durable, the transaction would be undecided again at restart,
//! below a snapshot chosen meanwhile. So a `FloorReply` leaves only once everything the
//! node appended before it is durable (`Effect::SendDurable`).
//!
//! # Nodes that are down
//!
//! A query to a down node comes back undelivered. What that node holds prepared is
//! then only known from its last report to this node: everything it held undecided
//! then was at or above the floor it reported, and everything it prepared since took
//! a prepare timestamp at or above its clock then (a prepare timestamp is the
//! participant's clock). So the round uses the lower of the two (the reply carries
//! the clock). Using the floor alone, as this round once did, let a snapshot rise
//! above a prepare made after the report: with parallel commits a coordinator that
//! dies after telling its client (crash point `staged`) leaves every participant in
//! doubt, and a reader whose snapshot rose above one of them waited for that
//! coordinator's restart (the random fault suite found it; it fails again with the
//! clock left out). For the same reason a participant of a staged transaction
//! reports, for it, the clock its PREPARE carried rather than its own prepare
//! timestamp (`Prepared::floor`): that is at or below every participant's prepare,
//! so while one participant is up, a snapshot stays below the others too. A node that
//! dies after the query reached it, before its answer left, sends nothing: the round
//! asks again at every tick and when that node restarts (`ask_floors_again`), so it
//! ends once the node is back or its query comes back undelivered. (The simulator
//! found the round that waited for ever.) What a down node prepared undecided is
//! restored at its restart with its old prepare timestamp, so the bound still holds.
//!
//! # Limits
//!
//! - A transaction that prepares at a node just after that node answered, while the
//!   round is still collecting other answers, can take a prepare timestamp below the
//!   snapshot (the asking node's clock may be ahead of that node's). A read of that
//!   key then waits for its outcome, as an autocommit read may today. The old design,
//!   one counter and one floor slot per node in shared memory, closed this window; a
//!   second round that first raises every clock to the snapshot would close it too, at
//!   the cost of a second round trip for every read-only transaction.
//! - A node that never reported here and is down counts for nothing (no floor). If
//!   it holds a staged transaction prepared whose coordinator and other participants
//!   are down too, nothing alive knows that prepare, and a snapshot may lie above it:
//!   a read of that key then waits for the coordinator's restart. Counting such a
//!   node as floor 0 would be correct but would make every snapshot the session's
//!   last commit, which in a fresh session reads an empty store (lesson 6 showed
//!   it). Closing it needs every node to report its floor before it is needed (at
//!   start and after each restart), which this design does not do yet.
//! - A session that asks while a round is under way joins it (so under load one round
//!   serves many sessions): the floors it gets were asked for before it came, which
//!   widens the first window by that round's age, never more than one round trip.
//! - If every node is down, the client takes the highest timestamp it has seen
//!   (`Client::begin_read_only`): a read of a key with a transaction in doubt below it
//!   then waits for that outcome.

use super::Node;
use crate::message::{Answer, Effect, Message, Reply, ReqId};
use crate::types::{NodeId, Timestamp};
use std::collections::{BTreeMap, BTreeSet};

/// The rounds this node runs and what it last heard of every node's floor.
#[derive(Clone, Debug, Default)]
pub(super) struct Floors {
    /// The next round's number.
    next: u64,
    /// Rounds still collecting answers.
    open: BTreeMap<u64, Round>,
    /// Per node, a bound below everything it may hold prepared and undecided, from
    /// its last report: the lower of the floor it reported and its clock then. A node
    /// that never reported here is absent: nothing is known of it (bound 0).
    known: BTreeMap<NodeId, Timestamp>,
}

/// One round of asking for floors.
#[derive(Clone, Debug)]
struct Round {
    /// The clients' requests, answered when every node has answered or is down, each
    /// with its session's last commit: its snapshot is never below it.
    asked: Vec<(ReqId, Timestamp)>,
    /// The nodes that have not answered.
    waiting: BTreeSet<NodeId>,
    /// The lowest floor heard so far.
    floor: Option<Timestamp>,
}

/// The lower of two floors (`None` is no floor, above every timestamp).
fn lowest(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl Node {
    /// This node's floor (see the module doc).
    pub fn prepare_floor(&self) -> Option<Timestamp> {
        lowest(
            self.participant.prepare_floor(),
            self.coordinator.prepare_floor(),
        )
    }

    /// A session asks for a snapshot timestamp: ask every other node for its floor, or
    /// join the round already asking (under load, one round serves many sessions).
    pub(super) fn start_floor_round(&mut self, req: ReqId, seen: Timestamp, out: &mut Vec<Effect>) {
        self.participant.clock_mut().observe(seen);
        if let Some((_, state)) = self.floors.open.iter_mut().next_back() {
            state.asked.push((req, seen));
            return;
        }
        let round = self.floors.next;
        self.floors.next += 1;
        let waiting: BTreeSet<NodeId> = (0..self.nodes).filter(|n| *n != self.id).collect();
        for to in &waiting {
            let message = Message::FloorQuery { round };
            out.push(Effect::Send { to: *to, message });
        }
        let state = Round {
            asked: vec![(req, seen)],
            waiting,
            floor: self.prepare_floor(),
        };
        self.floors.open.insert(round, state);
        self.finish_round(round, out);
    }

    /// A peer asks for this node's floor: answer once what it says is durable.
    pub(super) fn answer_floor(&self, from: NodeId, round: u64, out: &mut Vec<Effect>) {
        let floor = self.prepare_floor();
        let clock = self.participant.clock().now();
        let message = Message::FloorReply {
            round,
            floor,
            clock,
        };
        out.push(Effect::SendDurable { to: from, message });
    }

    /// A peer's floor arrived with its clock when it chose it (`answer`), or the query
    /// never reached it (`None` here, and the bound from its last report is used).
    pub(super) fn floor_heard(
        &mut self,
        from: NodeId,
        round: u64,
        answer: Option<(Option<Timestamp>, Timestamp)>,
        out: &mut Vec<Effect>,
    ) {
        let floor = match answer {
            Some((floor, clock)) => {
                let bound = floor.map_or(clock, |floor| floor.min(clock));
                self.floors.known.insert(from, bound);
                floor
            }
            None => self.floors.known.get(&from).copied(),
        };
        if let Some(state) = self.floors.open.get_mut(&round)
            && state.waiting.remove(&from)
        {
            state.floor = lowest(state.floor, floor);
            self.finish_round(round, out);
        }
    }

    /// Asks again the peers that have not answered an open round (only `peer`, if
    /// given): on every tick, and when a peer restarts. A peer that died after the query
    /// reached it never answers, and its death sends no notice; asking again reaches it
    /// once it is back, or comes back undelivered while it is down.
    pub(super) fn ask_floors_again(&self, peer: Option<NodeId>, out: &mut Vec<Effect>) {
        for (round, state) in &self.floors.open {
            let waiting = state
                .waiting
                .iter()
                .filter(|n| peer.is_none_or(|p| p == **n));
            for to in waiting {
                let message = Message::FloorQuery { round: *round };
                out.push(Effect::Send { to: *to, message });
            }
        }
    }

    /// Answers the round's client if every node has answered or is down.
    fn finish_round(&mut self, round: u64, out: &mut Vec<Effect>) {
        if !self
            .floors
            .open
            .get(&round)
            .is_some_and(|r| r.waiting.is_empty())
        {
            return;
        }
        let Some(state) = self.floors.open.remove(&round) else {
            return;
        };
        let newest = self.participant.clock().now();
        let capped = state.floor.map_or(newest, |f| newest.min(f));
        for (req, seen) in state.asked {
            let reply = Reply::Done(Ok(Answer::SnapshotAt(seen.max(capped))));
            out.push(Effect::Reply { req, reply });
        }
    }
}
