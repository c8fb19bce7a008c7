//! What the simulated cluster shows without being stepped: the trace, the clients'
//! history, the committed data, and what is left over (`observe` changes nothing).

use super::{Endpoint, Packet, Sim, TxnRecord};
use crate::types::NodeId;
use std::collections::BTreeMap;

impl Sim {
    /// Whether `node` is up.
    pub fn is_up(&self, node: NodeId) -> bool {
        (self.nodes.get(node as usize)).is_some_and(|node| node.up.is_some())
    }

    /// The trace so far: one line per step, and an indented line per thing it did.
    pub fn trace(&self) -> &[String] {
        &self.trace
    }

    /// What each client was told, transaction by transaction (running ones left out).
    pub fn history(&self) -> Vec<TxnRecord> {
        (self.clients.iter())
            .flat_map(|client| client.history().iter().cloned())
            .collect()
    }

    /// Every node's committed data, merged (each key lives on one node); down nodes'
    /// keys are missing.
    pub fn data(&self) -> BTreeMap<String, String> {
        let mut data = BTreeMap::new();
        for node in self.nodes.iter().filter_map(|node| node.up.as_ref()) {
            let store = node.node.participant().store();
            data.extend(store.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        }
        data
    }

    /// What should not be left once every node is up and nothing runs: a node down, a
    /// transaction active, in doubt or being coordinated, a decision unacknowledged, a
    /// lock, something held or in flight, a client not done. Empty when clean.
    pub fn leftovers(&self) -> Vec<String> {
        let mut found = Vec::new();
        for node in &self.nodes {
            let id = node.id;
            let Some(up) = &node.up else {
                found.push(format!("node {id} is down"));
                continue;
            };
            let (participant, coordinator) = (up.node.participant(), up.node.coordinator());
            let in_doubt: Vec<_> = participant.in_doubt().into_iter().map(|(t, _)| t).collect();
            let checks = [
                ("is in doubt on", in_doubt),
                ("has active", participant.active()),
                ("coordinates", coordinator.open_transactions()),
                (
                    "has unacknowledged decisions",
                    coordinator.decided().keys().copied().collect(),
                ),
            ];
            for (what, tids) in checks {
                if !tids.is_empty() {
                    found.push(format!("node {id} {what} {tids:?}"));
                }
            }
            // A node settled a transaction by hand against its coordinator: the only
            // way atomicity can break, and the simulator never takes such a decision.
            for mixed in participant.mixed() {
                found.push(format!(
                    "node {id}: heuristic mixed outcome of {} (settled by hand, atomicity broken)",
                    mixed.tid
                ));
            }
            if !participant.locks().is_empty() {
                found.push(format!(
                    "node {id} holds locks {:?}",
                    participant.locks().snapshot()
                ));
            }
            if node.held() > 0 {
                found.push(format!("node {id} holds {} items back", node.held()));
            }
        }
        if self.net.in_flight() > 0 {
            found.push(format!("{} packets in flight", self.net.in_flight()));
        }
        for (id, client) in self.clients.iter().enumerate() {
            if !client.finished() {
                found.push(format!("client {id} has not finished its plan"));
            }
        }
        found
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The number of nodes.
    pub fn nodes(&self) -> u32 {
        self.config.nodes
    }

    /// The packet at the head of a link, to show before delivering it.
    pub fn head(&self, from: Endpoint, to: NodeId) -> Option<&Packet> {
        self.net.head(from, to)
    }
}

impl Sim {
    /// Every lock table's keys with holders or waiters, by node (down nodes have none).
    pub fn locks(&self) -> Vec<(NodeId, crate::lock::KeyLocks)> {
        let mut all = Vec::new();
        for node in &self.nodes {
            if let Some(up) = &node.up {
                let locks = up.node.participant().locks().snapshot();
                all.extend(locks.into_iter().map(|locks| (node.id, locks)));
            }
        }
        all
    }

    /// The transactions `node` is in doubt on, with their coordinators (none if down).
    pub fn in_doubt(&self, node: NodeId) -> Vec<(crate::types::TxnId, NodeId)> {
        let Some(up) = self.nodes.get(node as usize).and_then(|n| n.up.as_ref()) else {
            return Vec::new();
        };
        (up.node.participant().in_doubt().into_iter())
            .map(|(tid, prepared)| (tid, prepared.coordinator))
            .collect()
    }
}
