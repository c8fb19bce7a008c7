//! What a scripted driver adds to the step model: sessions it feeds command by command
//! (`session`), links held back as `Cluster::hold_link` holds them, and the death of
//! the whole process. With them a test can run a script written for the threaded
//! cluster (`tests/random_faults.rs`) on the simulator: it gives a command, steps the
//! simulator until nothing is left to do but faults and ticks, and takes the answer.

use super::client::{Shared, SimClient, TxnRecord};
use super::net::{ClientId, Endpoint, Packet};
use super::session::{Command, Response, Session};
use super::{Sim, Step};
use crate::error::{Error, Result};
use crate::message::{Reply, ReqId, Request};
use crate::types::NodeId;

/// A simulated client: one that runs a plan, or a session fed command by command.
#[derive(Clone, Debug)]
pub(super) enum Actor {
    Plan(SimClient),
    Script(Session),
}

impl Actor {
    pub(super) fn ready(&self) -> bool {
        match self {
            Actor::Plan(client) => client.ready(),
            Actor::Script(session) => session.ready(),
        }
    }

    pub(super) fn finished(&self) -> bool {
        match self {
            Actor::Plan(client) => client.finished(),
            Actor::Script(session) => !session.busy() && session.outstanding.is_none(),
        }
    }

    pub(super) fn act(&mut self, shared: &mut Shared) -> Option<(NodeId, Request)> {
        match self {
            Actor::Plan(client) => client.act(shared),
            Actor::Script(session) => session.act(shared),
        }
    }

    /// The request it just sent, whose answer it waits for.
    pub(super) fn sent(&mut self, req: ReqId) {
        match self {
            Actor::Plan(client) => client.outstanding = Some(req),
            Actor::Script(session) => session.outstanding = Some(req),
        }
    }

    pub(super) fn deliver(&mut self, req: ReqId, reply: Reply) {
        match self {
            Actor::Plan(client) => client.mailbox.push_back((req, reply)),
            Actor::Script(session) => session.mailbox.push_back((req, reply)),
        }
    }

    /// Whether what it sends can no longer reach the cluster.
    pub(super) fn cut_off(&self) -> bool {
        matches!(self, Actor::Script(session) if session.cut_off)
    }

    pub(super) fn history(&self) -> &[TxnRecord] {
        match self {
            Actor::Plan(client) => &client.history,
            Actor::Script(_) => &[],
        }
    }
}

impl Sim {
    /// Adds a session coordinated by `home`; returns its id, for [`Sim::command`].
    pub fn add_session(&mut self, home: NodeId) -> ClientId {
        let id = self.clients.len();
        let session = Session::new(home, self.config.nodes);
        self.clients.push(Actor::Script(session));
        id
    }

    /// Gives a session its next command, which the next `Step::Client` of it starts.
    /// Refused if the session is not idle (a command under way, or an answer untaken).
    pub fn command(&mut self, client: ClientId, command: Command) -> Result<()> {
        match self.clients.get_mut(client) {
            Some(Actor::Script(session)) if session.idle() => {
                self.trace.push(format!("  command c{client}: {command:?}"));
                session.give(command);
                Ok(())
            }
            Some(Actor::Script(_)) => Err(Error::InvalidInput(format!(
                "session c{client} is still busy with its last command"
            ))),
            _ => Err(Error::InvalidInput(format!("c{client} is not a session"))),
        }
    }

    /// Takes the answer to a session's last command, once it has one.
    pub fn told(&mut self, client: ClientId) -> Option<Result<Response>> {
        match self.clients.get_mut(client) {
            Some(Actor::Script(session)) => session.take_told(),
            _ => None,
        }
    }

    /// Whether a session's command is under way, unanswered.
    pub fn busy(&self, client: ClientId) -> bool {
        matches!(self.clients.get(client), Some(Actor::Script(session)) if session.busy())
    }

    /// Holds the link from `from` to `to`, from the next message whose label starts with
    /// `label` on (see `net::HeldLinks`).
    pub fn hold_link(&mut self, from: NodeId, to: NodeId, label: &str) {
        self.trace
            .push(format!("  hold n{from}->n{to} from {label:?}"));
        self.held.hold(from, to, label);
    }

    /// Releases a held link: what waited on it goes out, in order (lost if `to` is down);
    /// returns how many messages waited.
    pub fn release_link(&mut self, from: NodeId, to: NodeId) -> usize {
        let waiting = self.held.release(from, to);
        let count = waiting.len();
        self.trace
            .push(format!("  release n{from}->n{to}: {count} waited"));
        for packet in waiting {
            if self.is_up(to) {
                self.net.push(Endpoint::Node(from), to, packet);
            } else if let Packet::Peer(message, _) = packet
                && message.reports_loss()
                && self.is_up(from)
            {
                self.net
                    .push(Endpoint::Node(to), from, Packet::Lost(message));
            }
        }
        count
    }

    /// The held links, as `(from, to, messages waiting)`.
    pub fn held_links(&self) -> Vec<(NodeId, NodeId, usize)> {
        self.held.links()
    }

    /// The whole process dies and starts again, as a test harness reopens a cluster:
    /// every node's process dies (what was not fsynced is lost), held links are
    /// forgotten, every session is cut off (a session of the dead process cannot
    /// reach the new one), the clients' clock starts again, and every node restarts.
    pub fn reopen(&mut self) -> Result<()> {
        self.trace.push("  reopen: the whole process dies".into());
        for node in 0..self.config.nodes {
            if self.is_up(node) {
                self.apply(Step::Crash { node })?;
            }
        }
        self.held = Default::default();
        for actor in &mut self.clients {
            if let Actor::Script(session) = actor {
                session.cut_off = true;
            }
        }
        self.shared = Shared::default();
        for node in 0..self.config.nodes {
            self.apply(Step::Restart { node })?;
        }
        Ok(())
    }
}
