//! The hello each end of a connection sends first: who it is and what it speaks. Its
//! layout is fixed for every version (see the `wire` module doc).

use super::WIRE_VERSION;
use crate::error::{Error, Result};
use crate::types::NodeId;
use std::net::SocketAddr;

/// The bytes a hello starts with: a stream that does not is not kv2pc.
const MAGIC: [u8; 6] = *b"kv2pc\0";

/// The length of a hello, in bytes.
pub const HELLO_LEN: usize = 17;

/// Who is at one end of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A node of the cluster, with its id: the connection carries protocol messages.
    Node(NodeId),
    /// A client (a shell): the connection carries requests and replies.
    Client,
}

/// One end's hello.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hello {
    /// The wire version it speaks ([`WIRE_VERSION`] for this build).
    pub version: u16,
    /// Who it is.
    pub role: Role,
    /// The size of the cluster it belongs to (or, for a client, expects).
    pub nodes: u32,
}

impl Hello {
    /// This build's hello for `role` in a cluster of `nodes`.
    pub fn new(role: Role, nodes: u32) -> Hello {
        Hello {
            version: WIRE_VERSION,
            role,
            nodes,
        }
    }

    /// The hello's bytes.
    pub fn encode(&self) -> [u8; HELLO_LEN] {
        let (role, node) = match self.role {
            Role::Node(node) => (1u8, node),
            Role::Client => (2u8, 0),
        };
        let mut bytes = [0u8; HELLO_LEN];
        bytes[..6].copy_from_slice(&MAGIC);
        bytes[6..8].copy_from_slice(&self.version.to_le_bytes());
        bytes[8] = role;
        bytes[9..13].copy_from_slice(&node.to_le_bytes());
        bytes[13..17].copy_from_slice(&self.nodes.to_le_bytes());
        bytes
    }

    /// Reads a hello that `peer` sent. Any version's hello reads (the layout is fixed);
    /// whether this build can talk to it is [`Hello::admit`]'s and [`Hello::confirm`]'s
    /// question.
    pub fn decode(bytes: &[u8; HELLO_LEN], peer: SocketAddr) -> Result<Hello> {
        if bytes[..6] != MAGIC {
            return Err(wire(
                peer,
                format!(
                    "it did not greet as kv2pc does (its first bytes were {}), so it is not \
                     a kv2pc node or client",
                    show_bytes(&bytes[..8])
                ),
            ));
        }
        let version = u16::from_le_bytes([bytes[6], bytes[7]]);
        let node = u32::from_le_bytes([bytes[9], bytes[10], bytes[11], bytes[12]]);
        let nodes = u32::from_le_bytes([bytes[13], bytes[14], bytes[15], bytes[16]]);
        let role = match bytes[8] {
            1 => Role::Node(node),
            2 => Role::Client,
            other => {
                return Err(wire(
                    peer,
                    format!(
                        "its hello names role {other}, which is neither a node (1) nor a \
                         client (2)"
                    ),
                ));
            }
        };
        Ok(Hello {
            version,
            role,
            nodes,
        })
    }

    /// Whether node `me` of a cluster of `nodes` accepts a connection whose dialler sent
    /// this hello: same version, same cluster size, and a node id that exists and is not
    /// its own.
    pub fn admit(&self, me: NodeId, nodes: u32, peer: SocketAddr) -> Result<()> {
        self.check_version_and_size(nodes, peer)?;
        match self.role {
            Role::Node(node) if node >= nodes => Err(wire(
                peer,
                format!(
                    "it says it is node {node}, but this cluster has {nodes} nodes, numbered \
                     0 to {}; check its --id",
                    nodes - 1
                ),
            )),
            Role::Node(node) if node == me => Err(wire(
                peer,
                format!(
                    "it says it is node {node}, which is this node's own id: two processes \
                     were started with --id {node}"
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Whether the answer of the node dialled as node `expected` of a cluster of `nodes`
    /// is the one meant.
    pub fn confirm(&self, expected: NodeId, nodes: u32, peer: SocketAddr) -> Result<()> {
        self.check_version_and_size(nodes, peer)?;
        match self.role {
            Role::Node(node) if node == expected => Ok(()),
            Role::Node(node) => Err(wire(
                peer,
                format!(
                    "it answered as node {node}, but it was dialled as node {expected}: \
                     --peers must list the nodes' addresses in node order"
                ),
            )),
            Role::Client => Err(wire(
                peer,
                format!("it answered as a client, but it was dialled as node {expected}"),
            )),
        }
    }

    fn check_version_and_size(&self, nodes: u32, peer: SocketAddr) -> Result<()> {
        if self.version != WIRE_VERSION {
            return Err(wire(
                peer,
                format!(
                    "it speaks kv2pc wire version {}, and this process speaks version \
                     {WIRE_VERSION}; run the same kv2pc release on every node and client",
                    self.version
                ),
            ));
        }
        if self.nodes != nodes {
            return Err(wire(
                peer,
                format!(
                    "it belongs to a cluster of {} nodes, and this one has {nodes}; start \
                     every node with the same --nodes",
                    self.nodes
                ),
            ));
        }
        Ok(())
    }
}

/// An error about what `peer` sent.
pub(super) fn wire(peer: SocketAddr, detail: String) -> Error {
    Error::Wire { peer, detail }
}

/// Bytes as hex, with the text they spell when they are printable (an HTTP request on
/// the port shows as `"GET / HT"`).
fn show_bytes(bytes: &[u8]) -> String {
    let hex: Vec<String> = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    let text: String = bytes.iter().map(|&byte| byte as char).collect();
    if bytes
        .iter()
        .all(|byte| byte.is_ascii_graphic() || *byte == b' ')
    {
        format!("{} = {text:?}", hex.join(" "))
    } else {
        hex.join(" ")
    }
}
