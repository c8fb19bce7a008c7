//! What is not kv2pc, on a node's port: bytes that do not greet as kv2pc, hellos that are
//! cut short or do not match, and bad frames after a good hello. The node closes each
//! such connection, logs why, and serves on.

use crate::raw::{Raw, RawClient, client_hello, encoded, framed, header};
use crate::support::{NODES, Nodes, key_on, one_at_a_time};
use kv2pc::message::{Answer, Reply};
use kv2pc::wire::{Frame, Hello, Role, WIRE_VERSION};

/// One way of speaking to a node's port that is not kv2pc's: what to send first, and
/// whether the node answers it with its hello; what to send after; what the node must
/// log about it.
struct Stranger {
    name: &'static str,
    opening: Vec<u8>,
    answered: bool,
    then: Vec<u8>,
    logged: String,
}

impl Nodes {
    /// Waits for node 0 to log why it closed `raw`'s connection and checks it says
    /// `logged` and that it serves on; then that the process runs, and commits and reads
    /// `probe` for a client of its own.
    fn refused(&mut self, raw: &Raw, logged: &str, probe: &str) {
        let line = self.wait_for(0, &format!("the connection with {}:", raw.local), 1);
        assert!(
            line.starts_with("kv2pc node 0: closed a connection: ")
                && line.contains(logged)
                && line.ends_with("nothing it sent after that was read, and the node serves on"),
            "{line}\nwanted {logged:?}"
        );
        assert!(
            self.is_running(0),
            "node 0 died: {:#?}",
            self.logs[0].lock()
        );
        let key = key_on(0, "probe");
        let read = RawClient::dial(self.addr(0)).commit_and_read(&key, probe);
        assert_eq!(read, Some(probe.to_string()), "after {probe}");
    }
}

/// Bytes that are not kv2pc's, on the port of the node that coordinates `--connect`
/// sessions: not a greeting at all, a hello cut short, a hello of another wire version,
/// cluster size or id, and after a good hello, frames that are truncated, oversized,
/// damaged, undecodable or of the wrong kind; and a hello begun and left hanging. After
/// each, the node's log names the connection and what was wrong, and the process runs
/// on and commits and reads back for a client (one by hand, to leave the shell's
/// settling out, `a_script_line_does_not_fail_when_the_machine_is_busy`); at the end a
/// `--connect` shell commits across two nodes and reads back, and nothing panicked.
#[test]
fn a_node_closes_connections_that_do_not_speak_kv2pc_and_serves_on() {
    let _one_at_a_time = one_at_a_time();
    let mut nodes = Nodes::start();
    // Begun first: refused only at the handshake timeout (2 s), checked last.
    let mut silent = Raw::dial(nodes.addr(0));
    silent.send(&client_hello()[..5]);

    let another_version = Hello {
        version: WIRE_VERSION + 1,
        ..Hello::new(Role::Client, NODES)
    };
    let a_reply = Frame::Reply {
        id: 1,
        reply: Reply::Done(Ok(Answer::Done)),
    };
    let strangers = [
        Stranger {
            name: "http",
            opening: b"GET / HTTP/1.1\r\nHost: node\r\n\r\n".to_vec(),
            answered: false,
            then: Vec::new(),
            logged: "it did not greet as kv2pc does (its first bytes were 47 45 54 20 2f 20 48 \
                     54 = \"GET / HT\"), so it is not a kv2pc node or client"
                .into(),
        },
        Stranger {
            name: "binary",
            opening: [
                [0x16, 0x03, 0x01, 0x00, 0xff, 0x01, 0x00, 0x00],
                [0; 8],
                [0; 8],
            ]
            .concat(),
            answered: false,
            then: Vec::new(),
            logged: "its first bytes were 16 03 01 00 ff 01 00 00), so it is not".into(),
        },
        Stranger {
            name: "half-a-hello",
            opening: client_hello()[..9].to_vec(),
            answered: false,
            then: Vec::new(),
            logged: "it closed the connection 9 bytes into its 17-byte hello".into(),
        },
        Stranger {
            name: "another-version",
            opening: another_version.encode().to_vec(),
            answered: true,
            then: Vec::new(),
            logged: format!(
                "it speaks kv2pc wire version {}, and this process speaks version \
                 {WIRE_VERSION}; run the same kv2pc release on every node and client",
                WIRE_VERSION + 1
            ),
        },
        Stranger {
            name: "five-nodes",
            opening: Hello::new(Role::Client, 5).encode().to_vec(),
            answered: true,
            then: Vec::new(),
            logged: "it belongs to a cluster of 5 nodes, and this one has 3; start every node \
                     with the same --nodes"
                .into(),
        },
        Stranger {
            name: "a-twin",
            opening: Hello::new(Role::Node(0), NODES).encode().to_vec(),
            answered: true,
            then: Vec::new(),
            logged: "it says it is node 0, which is this node's own id: two processes were \
                     started with --id 0"
                .into(),
        },
        Stranger {
            name: "truncated-frame",
            opening: client_hello(),
            answered: true,
            then: [header(100, 0), b"abc".to_vec()].concat(),
            logged: "the connection closed 3 bytes into a 100-byte frame".into(),
        },
        Stranger {
            name: "oversized-frame",
            opening: client_hello(),
            answered: true,
            then: header(u32::MAX, 0),
            logged: "it announced a frame of 4294967295 bytes, more than the 33554432 one \
                     frame may hold"
                .into(),
        },
        Stranger {
            name: "damaged-frame",
            opening: client_hello(),
            answered: true,
            then: [header(11, 0xdead_beef), b"hello, node".to_vec()].concat(),
            logged: "a 11-byte frame arrived damaged: its checksum says deadbeef".into(),
        },
        Stranger {
            name: "undecodable-frame",
            opening: client_hello(),
            answered: true,
            then: framed(b"hello, node"),
            logged: format!("a 11-byte frame is not a kv2pc wire version {WIRE_VERSION} message"),
        },
        Stranger {
            name: "a-reply-from-a-client",
            opening: client_hello(),
            answered: true,
            then: encoded(&a_reply),
            logged: "a client sent a reply, where only requests travel from a client".into(),
        },
    ];
    for stranger in strangers {
        let mut raw = Raw::dial(nodes.addr(0));
        raw.send(&stranger.opening);
        if stranger.answered {
            // Answered before it is judged, so that a dialler refused can read why.
            assert_eq!(
                raw.answer(),
                Hello::new(Role::Node(0), NODES),
                "{}",
                stranger.name
            );
        }
        raw.send(&stranger.then);
        assert!(raw.close().is_empty(), "{}: answered more", stranger.name);
        nodes.refused(&raw, &stranger.logged, stranger.name);
    }

    let went_silent = "it went silent after 5 bytes, where a kv2pc node or client would have \
                       sent its greeting at once";
    nodes.refused(&silent, went_silent, "after-silence");
    nodes.commits_and_reads("after-all-strangers");
    assert!(nodes.panics().is_empty(), "{:#?}", nodes.panics());
}
