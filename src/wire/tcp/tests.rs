//! The TCP transport on loopback: order, loss to a down peer, reconnection, and
//! garbage on the port. Every wait is bounded; every transport is dropped (its threads
//! joined) at the end of its test.

use super::*;
use crate::clock::Clock;
use crate::config::Settings;
use crate::net::Envelope;
use crate::types::TxnId;
use crate::wire::{Frame, HELLO_LEN, Hello, Role, WIRE_VERSION};
use crossbeam::channel::{Receiver, Sender, unbounded};
use parking_lot::Mutex;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Instant;

/// How long a test waits for something that takes milliseconds.
const PATIENCE: Duration = Duration::from_secs(10);

/// What a transport handed to its node.
#[derive(Debug, PartialEq, Eq)]
enum Event {
    Arrived(NodeId, Message, u64, u32),
    Lost(NodeId, Message),
}

struct Collect(Sender<Event>);

impl Deliver for Collect {
    fn message(&self, from: NodeId, message: Message, stamp: Stamp) {
        let _ = self
            .0
            .send(Event::Arrived(from, message, stamp.clock, stamp.depth));
    }
    fn lost(&self, to: NodeId, message: Message, _: Stamp) {
        let _ = self.0.send(Event::Lost(to, message));
    }
}

/// A node's transport in a test, with what it delivered and what it logged.
struct Node {
    transport: Transport,
    events: Receiver<Event>,
    log: Arc<Mutex<Vec<String>>>,
}

fn bind() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").expect("bind loopback")
}

fn start(me: NodeId, listener: TcpListener, addrs: &[SocketAddr]) -> Node {
    let (sender, events) = unbounded();
    let log = Arc::new(Mutex::new(Vec::new()));
    let lines = log.clone();
    let peers = Peers {
        me,
        addrs: addrs.to_vec(),
    };
    let write_log: Log = Arc::new(move |line| lines.lock().push(line));
    let transport = Transport::start(listener, peers, Arc::new(Collect(sender)), None, write_log)
        .expect("start transport");
    Node {
        transport,
        events,
        log,
    }
}

/// Two nodes, 0 and 1, each dialling the other.
fn pair() -> (Node, Node, Vec<SocketAddr>) {
    let (l0, l1) = (bind(), bind());
    let addrs = vec![l0.local_addr().unwrap(), l1.local_addr().unwrap()];
    let zero = start(0, l0, &addrs);
    let one = start(1, l1, &addrs);
    wait_until("both links up", || {
        zero.transport.is_connected(1) && one.transport.is_connected(0)
    });
    (zero, one, addrs)
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn commit(n: u64) -> Message {
    Message::Commit {
        tid: TxnId(n),
        commit_ts: n,
    }
}

fn stamp(clock: u64) -> Stamp {
    Stamp { clock, depth: 2 }
}

fn next(events: &Receiver<Event>) -> Event {
    events.recv_timeout(PATIENCE).expect("an event in time")
}

/// Waits until the log has a line containing `text`, and returns it.
fn logged(node: &Node, text: &str) -> String {
    let mut found = None;
    wait_until(&format!("a log line with {text:?}"), || {
        found = node
            .log
            .lock()
            .iter()
            .find(|line| line.contains(text))
            .cloned();
        found.is_some()
    });
    found.unwrap_or_default()
}

#[test]
fn messages_arrive_in_the_order_sent_with_their_stamps() {
    let (zero, one, _) = pair();
    for n in 0..2_000 {
        assert!(zero.transport.send(1, commit(n), stamp(n + 100)), "taken");
    }
    one.transport.send(0, Message::RestartAck, stamp(7));
    for n in 0..2_000 {
        assert_eq!(next(&one.events), Event::Arrived(0, commit(n), n + 100, 2));
    }
    assert_eq!(
        next(&zero.events),
        Event::Arrived(1, Message::RestartAck, 7, 2)
    );
}

#[test]
fn a_message_to_a_down_peer_is_dropped_and_a_loss_reported_when_it_must_be() {
    let (l0, down) = (bind(), bind());
    let addrs = vec![l0.local_addr().unwrap(), down.local_addr().unwrap()];
    drop(down); // Nothing listens there now: dialling it is refused.
    let zero = start(0, l0, &addrs);
    logged(&zero, "node 1 is not reachable");
    assert!(
        !zero.transport.send(1, commit(1), stamp(1)),
        "dropped at once"
    );
    let restarted = Message::Restarted { live_from: 4 };
    assert!(!zero.transport.send(1, restarted.clone(), stamp(2)));
    // The commit is dropped silently; the restart announcement comes back as lost.
    assert_eq!(next(&zero.events), Event::Lost(1, restarted));
    assert!(zero.events.try_recv().is_err());
}

#[test]
fn the_link_reconnects_after_the_peer_restarts_and_drops_what_was_sent_meanwhile() {
    let (zero, one, addrs) = pair();
    zero.transport.send(1, commit(1), stamp(1));
    assert_eq!(next(&one.events), Event::Arrived(0, commit(1), 1, 2));
    drop(one);
    wait_until("node 0 to see the link down", || {
        !zero.transport.is_connected(1)
    });
    zero.transport
        .send(1, Message::FloorQuery { round: 9 }, stamp(2));
    assert_eq!(
        next(&zero.events),
        Event::Lost(1, Message::FloorQuery { round: 9 })
    );
    let again = TcpListener::bind(addrs[1]).expect("the same port again");
    let one = start(1, again, &addrs);
    wait_until("node 0 to reconnect", || zero.transport.is_connected(1));
    for n in 10..20 {
        zero.transport.send(1, commit(n), stamp(n));
    }
    for n in 10..20 {
        assert_eq!(next(&one.events), Event::Arrived(0, commit(n), n, 2));
    }
    logged(&zero, "lost the link to node 1");
}

/// A node started with another --nodes than its peer is refused, and both ends say why:
/// the acceptor from the dialler's hello, the dialler from the acceptor's answer.
#[test]
fn a_node_of_another_cluster_size_is_refused_at_both_ends() {
    let (l0, l1) = (bind(), bind());
    let addrs = vec![l0.local_addr().unwrap(), l1.local_addr().unwrap()];
    let third: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let zero = start(0, l0, &[addrs[0], addrs[1], third]);
    let one = start(1, l1, &addrs);
    let line = logged(&zero, "node 1 is not reachable");
    assert!(
        line.contains("it belongs to a cluster of 2 nodes, and this one has 3"),
        "{line}"
    );
    logged(
        &one,
        "it belongs to a cluster of 3 nodes, and this one has 2",
    );
    assert!(!zero.transport.is_connected(1) && !one.transport.is_connected(0));
}

/// Connects to `addr` as a stranger, sends `bytes`, and waits for the node to close
/// the connection; gives back what the node sent first (its hello, if it answered).
fn send_raw(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(bytes).expect("write");
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .expect("the node closes the connection");
    answer
}

fn hello_from(node: NodeId, version: u16) -> Vec<u8> {
    let mut hello = Hello::new(Role::Node(node), 2);
    hello.version = version;
    hello.encode().to_vec()
}

#[test]
fn garbage_and_truncated_frames_are_refused_and_the_node_serves_on() {
    let (zero, one, addrs) = pair();
    let answer = send_raw(addrs[1], b"GET / HTTP/1.1\r\nHost: kv2pc\r\n\r\n");
    assert!(answer.is_empty(), "no hello for a stranger");
    logged(&one, "did not greet as kv2pc does");

    // A valid hello, then a frame header promising 40 bytes, then 3 of them.
    let mut truncated = hello_from(0, WIRE_VERSION);
    truncated.extend_from_slice(&40u32.to_le_bytes());
    truncated.extend_from_slice(&[0, 0, 0, 0, 1, 2, 3]);
    let answer = send_raw(addrs[1], &truncated);
    assert_eq!(answer.len(), HELLO_LEN, "a kv2pc hello is answered");
    logged(&one, "closed 3 bytes into a 40-byte frame");

    let mut oversized = hello_from(0, WIRE_VERSION);
    oversized.extend_from_slice(&[0xff; 8]);
    send_raw(addrs[1], &oversized);
    let line = logged(&one, "announced a frame of 4294967295 bytes");
    assert!(line.contains("the node serves on"), "{line}");

    let mut stray = hello_from(0, WIRE_VERSION);
    let frame = Frame::Request {
        id: 1,
        request: crate::message::Request::Begin { began: 1 },
    };
    crate::wire::encode_frame(&frame, &mut stray).unwrap();
    send_raw(addrs[1], &stray);
    logged(&one, "sent a client request on a link between nodes");

    // Nothing of that reached the node, and the real link still works.
    zero.transport.send(1, commit(5), stamp(5));
    assert_eq!(next(&one.events), Event::Arrived(0, commit(5), 5, 2));
    assert!(zero.transport.is_connected(1));
}

#[test]
fn a_connection_that_says_nothing_is_closed_after_the_handshake_timeout() {
    let (zero, one, addrs) = pair();
    let started = Instant::now();
    let mut silent = TcpStream::connect(addrs[1]).expect("connect");
    silent.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut answer = Vec::new();
    silent.read_to_end(&mut answer).expect("closed by the node");
    assert!(answer.is_empty());
    assert!(
        started.elapsed() >= HANDSHAKE_TIMEOUT,
        "{:?}",
        started.elapsed()
    );
    logged(&one, "went silent after 0 bytes");
    zero.transport.send(1, commit(8), stamp(8));
    assert_eq!(next(&one.events), Event::Arrived(0, commit(8), 8, 2));
}

#[test]
fn another_version_is_refused_with_its_reason() {
    let (_zero, one, addrs) = pair();
    let answer = send_raw(addrs[1], &hello_from(0, WIRE_VERSION + 1));
    assert_eq!(
        answer.len(),
        HELLO_LEN,
        "answered, so the dialler can tell why"
    );
    let line = logged(&one, "wire version");
    assert!(
        line.contains(&format!("wire version {}", WIRE_VERSION + 1))
            && line.contains("same kv2pc release")
            && line.contains("127.0.0.1:"),
        "{line}"
    );
}

#[test]
fn the_node_inbox_gets_peer_inputs_and_undelivered_notices() {
    let (l0, l1) = (bind(), bind());
    let addrs = vec![l0.local_addr().unwrap(), l1.local_addr().unwrap()];
    let context = |dir: &str| {
        let ctx = Context::new(2, dir.into(), Clock::manual(), Settings::default());
        Arc::new(ctx)
    };
    let (ctx0, ctx1) = (context("/nonexistent/0"), context("/nonexistent/1"));
    let (inbox0, mail0) = unbounded::<Envelope>();
    let (inbox1, mail1) = unbounded::<Envelope>();
    ctx0.net.attach(0, inbox0);
    ctx1.net.attach(1, inbox1);
    let quiet: Log = Arc::new(|_| {});
    let start = |me, listener, ctx: &Arc<Context>| {
        let peers = Peers {
            me,
            addrs: addrs.clone(),
        };
        let inbox = Arc::new(NodeInbox::new(ctx, me));
        Transport::start(listener, peers, inbox, None, quiet.clone()).expect("start")
    };
    let zero = start(0, l0, &ctx0);
    let one = start(1, l1, &ctx1);
    wait_until("the link up", || zero.is_connected(1));
    zero.send(
        1,
        commit(3),
        Stamp {
            clock: 40,
            depth: 1,
        },
    );
    let envelope = mail1.recv_timeout(PATIENCE).expect("delivered");
    match envelope.mail {
        Mail::Input(
            Input::Peer {
                from,
                message,
                clock,
            },
            depth,
        ) => {
            assert_eq!((from, message, clock, depth), (0, commit(3), 40, 2));
        }
        _ => panic!("not a peer input"),
    }
    drop(one);
    wait_until("the link down", || !zero.is_connected(1));
    zero.send(1, Message::Restarted { live_from: 1 }, Stamp::default());
    let envelope = mail0.recv_timeout(PATIENCE).expect("a loss notice");
    assert!(
        matches!(
            envelope.mail,
            Mail::Input(
                Input::Undelivered {
                    to: 1,
                    message: Message::Restarted { .. }
                },
                _
            )
        ),
        "not an undelivered notice"
    );
}
