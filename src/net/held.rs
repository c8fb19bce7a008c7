//! Links held back by fault injection (`Cluster::hold_link`): a message delayed on the
//! network, without reordering the link.

use super::Stamp;
use crate::message::Message;
use crate::types::NodeId;
use std::sync::atomic::Ordering;

/// One held link: the label that starts holding, and what waits, in order.
struct Hold {
    /// Holding starts at the first message whose label starts with this.
    label: String,
    /// The messages held, with their stamps (clock and causal depth), oldest first.
    waiting: std::collections::VecDeque<(Message, Stamp)>,
}

/// Links held back by fault injection (`Cluster::hold_link`), by `(from, to)`.
///
/// The network promises in-order delivery between two nodes, so a delay is a whole link
/// held from one message on, not a message overtaken by later ones. Once a link holds a
/// message, every later one on it waits behind it; `release` sends them under the same
/// lock that `offer` takes, so nothing sent meanwhile can overtake them.
#[derive(Default)]
pub struct HeldLinks {
    /// Whether any link is held: the common path takes no lock.
    any: std::sync::atomic::AtomicBool,
    links: parking_lot::Mutex<std::collections::BTreeMap<(NodeId, NodeId), Hold>>,
}

impl HeldLinks {
    pub(super) fn hold(&self, from: NodeId, to: NodeId, label: &str) {
        let mut links = self.links.lock();
        let hold = links.entry((from, to)).or_insert_with(|| Hold {
            label: String::new(),
            waiting: Default::default(),
        });
        if hold.waiting.is_empty() {
            hold.label = label.to_string();
        }
        self.any.store(true, Ordering::SeqCst);
    }

    /// Keeps the message if its link holds it; gives it back to send now otherwise, and
    /// also if `to` is down (`to_is_up`, asked under the links' lock): the network loses
    /// it, as it loses any message to a down node, rather than keep it for `to`'s next
    /// incarnation. A message sent just before `to` dies is held and then dropped by
    /// `drop_mail_to`; one sent just after is lost at once; either way it is gone, so
    /// the moment of the death does not decide what the link holds.
    pub(super) fn offer(
        &self,
        from: NodeId,
        to: NodeId,
        message: Message,
        stamp: Stamp,
        to_is_up: impl FnOnce() -> bool,
    ) -> Option<(Message, Stamp)> {
        if !self.any.load(Ordering::SeqCst) {
            return Some((message, stamp));
        }
        let mut links = self.links.lock();
        let Some(hold) = links.get_mut(&(from, to)) else {
            return Some((message, stamp));
        };
        // Down, `to` gets nothing more from this link (what waits on it is dropped as `to`
        // dies: `drop_mail_to`), so losing this message now overtakes nothing that arrives.
        if (hold.waiting.is_empty() && !message.label().starts_with(&hold.label)) || !to_is_up() {
            return Some((message, stamp));
        }
        hold.waiting.push_back((message, stamp));
        None
    }

    pub(super) fn release(
        &self,
        from: NodeId,
        to: NodeId,
        mut send: impl FnMut(Message, Stamp),
    ) -> usize {
        let mut links = self.links.lock();
        let Some(hold) = links.remove(&(from, to)) else {
            return 0;
        };
        self.any.store(!links.is_empty(), Ordering::SeqCst);
        let count = hold.waiting.len();
        for (message, stamp) in hold.waiting {
            send(message, stamp);
        }
        count
    }

    /// Drops the mail held for `node`, returning what of it its senders must hear was
    /// lost (`Message::reports_loss`), with their ids.
    pub(super) fn drop_mail_to(&self, node: NodeId) -> Vec<(NodeId, Message, u32)> {
        let mut links = self.links.lock();
        let mut lost = Vec::new();
        for ((from, to), hold) in links.iter_mut() {
            if *to == node {
                let dropped = hold.waiting.drain(..);
                let told = dropped.filter(|(message, _)| message.reports_loss());
                lost.extend(told.map(|(message, stamp)| (*from, message, stamp.depth)));
            }
        }
        lost
    }

    pub(super) fn links(&self) -> Vec<(NodeId, NodeId, usize)> {
        let links = self.links.lock();
        (links.iter())
            .map(|((from, to), hold)| (*from, *to, hold.waiting.len()))
            .collect()
    }
}
