//! The wire format: every message kind survives the trip, and nothing a peer sends can
//! panic the reader or pass for a frame it is not.

use super::*;
use crate::error::Error;
use crate::keyrange::KeyRange;
use crate::lock::Wait;
use crate::message::{Answer, ReadAt, StagedStatus, Vote};
use crate::types::{LockMode, TxnId};
use proptest::prelude::*;
use std::io::Cursor;
use std::net::SocketAddr;
use std::path::PathBuf;

fn peer() -> SocketAddr {
    "127.0.0.1:7001".parse().expect("address")
}

/// One of each protocol message; the `match` fails to compile when a kind is added
/// without a sample here.
fn every_message() -> Vec<Message> {
    let tid = TxnId(7);
    let samples = vec![
        Message::Prepare {
            tid,
            participants: vec![0, 2],
        },
        Message::PrepareStaged {
            tid,
            participants: vec![1],
            floor: 40,
        },
        Message::StatusQuery { tid },
        Message::Status {
            tid,
            status: StagedStatus::Prepared { prepare_ts: 3 },
        },
        Message::Status {
            tid,
            status: StagedStatus::Committed { commit_ts: 4 },
        },
        Message::Status {
            tid,
            status: StagedStatus::Refused,
        },
        Message::Vote {
            tid,
            vote: Vote::Yes { prepare_ts: 9 },
        },
        Message::Vote {
            tid,
            vote: Vote::No {
                reason: "wounded by T3".into(),
            },
        },
        Message::Vote {
            tid,
            vote: Vote::ReadOnly,
        },
        Message::Commit { tid, commit_ts: 12 },
        Message::Abort { tid },
        Message::Ack { tid },
        Message::CommitOnePhase { tid },
        Message::OnePhaseOutcome {
            tid,
            aborted: Some("a NO vote".into()),
            at: 0,
        },
        Message::Inquire { tid },
        Message::Restarted { live_from: 1 << 40 },
        Message::RestartAck,
        Message::DeadlockVictim {
            tid,
            cycle: vec![tid, TxnId(8), tid],
        },
        Message::WaitReport {
            waits: vec![Wait {
                tid,
                key: "k".into(),
                mode: LockMode::Exclusive,
                blockers: vec![TxnId(2)],
                began: 5,
            }],
        },
        Message::FloorQuery { round: 3 },
        Message::FloorReply {
            round: 3,
            floor: Some(17),
            clock: 20,
        },
    ];
    let kinds: std::collections::BTreeSet<u8> = samples.iter().map(kind_of).collect();
    assert_eq!(kinds.len(), 17, "every kind of message has a sample");
    samples
}

fn kind_of(message: &Message) -> u8 {
    match message {
        Message::Prepare { .. } => 0,
        Message::PrepareStaged { .. } => 1,
        Message::StatusQuery { .. } => 2,
        Message::Status { .. } => 3,
        Message::Vote { .. } => 4,
        Message::Commit { .. } => 5,
        Message::Abort { .. } => 6,
        Message::Ack { .. } => 7,
        Message::CommitOnePhase { .. } => 8,
        Message::OnePhaseOutcome { .. } => 9,
        Message::Inquire { .. } => 10,
        Message::Restarted { .. } => 11,
        Message::RestartAck => 12,
        Message::DeadlockVictim { .. } => 13,
        Message::WaitReport { .. } => 14,
        Message::FloorQuery { .. } => 15,
        Message::FloorReply { .. } => 16,
    }
}

/// One of each client request.
fn every_request() -> Vec<Request> {
    let tid = TxnId(4);
    let read = Request::Read {
        tid,
        key: "apple".into(),
        mode: LockMode::Shared,
        first: true,
        began: 2,
    };
    vec![
        Request::Begin { began: 1 },
        Request::BeginAnd {
            owner: 2,
            then: Box::new(read.clone()),
            began: 1,
        },
        read,
        Request::SnapshotRead {
            key: "pear".into(),
            at: ReadAt::AtLeast(5),
        },
        Request::Scan {
            tid,
            range: KeyRange::Prefix("p".into()),
            first: false,
            began: 2,
        },
        Request::SnapshotScan {
            range: KeyRange::Between {
                from: "a".into(),
                to: "m".into(),
            },
            at: ReadAt::Exactly(6),
        },
        Request::Write {
            tid,
            key: "k".into(),
            value: Some("v".repeat(70_000)),
            first: false,
            began: 2,
        },
        Request::Write {
            tid,
            key: "k".into(),
            value: None,
            first: false,
            began: 2,
        },
        Request::Commit {
            tid,
            participants: vec![0, 1, 2],
            clock: 33,
        },
        Request::SnapshotTimestamp { seen: 3, clock: 4 },
        Request::Abort {
            tid,
            participants: vec![1],
        },
    ]
}

/// One of each reply, with every answer and every error.
fn every_reply() -> Vec<Reply> {
    let tid = TxnId(10);
    let answers = vec![
        Answer::Begun(tid, 3),
        Answer::Value(Some("v".into())),
        Answer::Value(None),
        Answer::Snapshot {
            value: None,
            read_ts: 8,
        },
        Answer::Rows(vec![("a".into(), "1".into()), ("b".into(), "2".into())]),
        Answer::SnapshotAt(9),
        Answer::Done,
        Answer::Committed {
            at: 12,
            serial_ts: 11,
        },
    ];
    let errors = vec![
        Error::Aborted {
            tid,
            reason: "deadlock".into(),
        },
        Error::InvalidInput("a key cannot be empty".into()),
        Error::NodeDown {
            node: 2,
            detail: "it is crashed; RESTART it first".into(),
        },
        Error::OutcomeUnknown {
            tid,
            coordinator: 1,
        },
        Error::Corrupt {
            path: PathBuf::from("/d/node1/log.000001"),
            offset: 4096,
            detail: "bad checksum".into(),
        },
        Error::DataDir {
            path: PathBuf::from("/d"),
            detail: "locked".into(),
        },
        Error::io("appending", std::io::Error::other("disk full")),
        Error::Wire {
            peer: peer(),
            detail: "garbage".into(),
        },
        Error::Closed,
    ];
    let mut replies = vec![
        Reply::Waiting {
            key: "k".into(),
            mode: LockMode::Exclusive,
            blockers: vec![TxnId(1), TxnId(4)],
        },
        Reply::Begun(tid, 3),
    ];
    replies.extend(answers.into_iter().map(|answer| Reply::Done(Ok(answer))));
    replies.extend(errors.into_iter().map(|error| Reply::Done(Err(error))));
    replies
}

/// Every sample as a frame, in one stream.
fn every_frame() -> Vec<Frame> {
    let mut frames: Vec<Frame> = (every_message().into_iter().enumerate())
        .map(|(depth, message)| Frame::Peer {
            message,
            clock: 1 << 33,
            depth: depth as u32,
        })
        .collect();
    frames.extend(
        (every_request().into_iter().enumerate()).map(|(id, request)| Frame::Request {
            id: id as u64,
            request,
        }),
    );
    frames.extend(
        (every_reply().into_iter().enumerate()).map(|(id, reply)| Frame::Reply {
            id: id as u64,
            reply,
        }),
    );
    frames
}

/// A hello then every frame, as a node would send them.
fn stream_of(frames: &[Frame]) -> Vec<u8> {
    let mut bytes = Hello::new(Role::Node(1), 3).encode().to_vec();
    for frame in frames {
        encode_frame(frame, &mut bytes).expect("encode");
    }
    bytes
}

fn reader(bytes: &[u8]) -> FrameReader<Cursor<&[u8]>> {
    FrameReader::new(Cursor::new(bytes), peer())
}

/// Reads the whole stream, hello and frames, until it ends or fails.
fn read_all(bytes: &[u8]) -> Result<Vec<Frame>, Error> {
    let mut reader = reader(bytes);
    reader.read_hello()?;
    let mut frames = Vec::new();
    while let Some(frame) = reader.read_frame()? {
        frames.push(frame);
    }
    Ok(frames)
}

#[test]
fn every_message_request_and_reply_round_trips() {
    let frames = every_frame();
    let bytes = stream_of(&frames);
    let mut reader = reader(&bytes);
    assert_eq!(
        reader.read_hello().expect("hello"),
        Hello::new(Role::Node(1), 3)
    );
    for sent in &frames {
        let got = reader.read_frame().expect("frame").expect("not the end");
        // `Reply` holds an `Error`, which has no `PartialEq` (an `io::Error` cannot be
        // compared); its debug form shows every field.
        assert_eq!(format!("{got:?}"), format!("{sent:?}"));
    }
    assert!(reader.read_frame().expect("clean end").is_none());
}

#[test]
fn an_io_error_crosses_as_its_message() {
    let error = Error::io(
        "appending to log.000001",
        std::io::Error::other("disk full"),
    );
    let frame = Frame::Reply {
        id: 1,
        reply: Reply::Done(Err(error)),
    };
    let frames = read_all(&stream_of(&[frame])).expect("read");
    let Frame::Reply {
        reply: Reply::Done(Err(error)),
        ..
    } = &frames[0]
    else {
        panic!("{frames:?}");
    };
    assert_eq!(error.to_string(), "appending to log.000001: disk full");
}

#[test]
fn another_version_is_refused_and_told_why() {
    let mut theirs = Hello::new(Role::Node(2), 3);
    theirs.version = WIRE_VERSION + 1;
    let read = Hello::decode(&theirs.encode(), peer()).expect("any version's hello reads");
    let error = read.admit(0, 3, peer()).expect_err("another version");
    let text = error.to_string();
    assert!(
        text.contains("127.0.0.1:7001")
            && text.contains(&format!("wire version {}", WIRE_VERSION + 1))
            && text.contains(&format!("speaks version {WIRE_VERSION}"))
            && text.contains("same kv2pc release"),
        "{text}"
    );
    let error = read.confirm(2, 3, peer()).expect_err("another version");
    assert!(matches!(error, Error::Wire { .. }), "{error}");
}

#[test]
fn a_hello_from_another_cluster_or_identity_is_refused() {
    let from = |role, nodes| Hello::new(role, nodes);
    let refused = |hello: Hello, me| hello.admit(me, 3, peer()).expect_err("refused").to_string();
    assert!(refused(from(Role::Node(1), 5), 0).contains("cluster of 5 nodes, and this one has 3"));
    assert!(refused(from(Role::Node(3), 3), 0).contains("numbered 0 to 2"));
    assert!(refused(from(Role::Node(1), 3), 1).contains("two processes were started with --id 1"));
    assert!(from(Role::Node(1), 3).admit(0, 3, peer()).is_ok());
    assert!(from(Role::Client, 3).admit(0, 3, peer()).is_ok());
    let misdialled = from(Role::Node(2), 3)
        .confirm(1, 3, peer())
        .expect_err("wrong node");
    assert!(
        misdialled.to_string().contains("--peers must list"),
        "{misdialled}"
    );
}

#[test]
fn an_http_request_on_the_port_is_named_for_what_it_is() {
    let error = read_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").expect_err("not kv2pc");
    let text = error.to_string();
    assert!(
        text.contains("\"GET / HT\"") && text.contains("not a kv2pc node"),
        "{text}"
    );
}

#[test]
fn a_huge_length_is_refused_before_anything_is_allocated() {
    let mut bytes = Hello::new(Role::Node(1), 3).encode().to_vec();
    bytes.extend_from_slice(&u32::MAX.to_le_bytes());
    bytes.extend_from_slice(&[0; 4]);
    let text = read_all(&bytes).expect_err("oversized").to_string();
    assert!(
        text.contains("announced a frame of 4294967295 bytes"),
        "{text}"
    );
}

#[test]
fn a_flipped_bit_is_caught_by_the_checksum() {
    let mut bytes = stream_of(&[Frame::Peer {
        message: Message::Commit {
            tid: TxnId(5),
            commit_ts: 9,
        },
        clock: 9,
        depth: 0,
    }]);
    let last = bytes.len() - 1;
    bytes[last] ^= 0x10;
    let text = read_all(&bytes).expect_err("damaged").to_string();
    assert!(text.contains("arrived damaged"), "{text}");
}

#[test]
fn a_sound_frame_that_is_not_a_message_is_refused() {
    let mut bytes = Hello::new(Role::Node(1), 3).encode().to_vec();
    let payload = [200u8, 1, 2, 3];
    bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    bytes.extend_from_slice(&payload);
    let text = read_all(&bytes).expect_err("not a frame").to_string();
    assert!(text.contains("is not a kv2pc wire version"), "{text}");
}

#[test]
fn a_frame_too_large_to_send_is_refused_at_the_sender() {
    let row = ("k".to_string(), "v".repeat(64 * 1024));
    let rows = vec![row; (MAX_FRAME_BYTES as usize) / (64 * 1024) + 1];
    let frame = Frame::Reply {
        id: 1,
        reply: Reply::Done(Ok(Answer::Rows(rows))),
    };
    let mut buf = vec![1, 2, 3];
    let error = encode_frame(&frame, &mut buf).expect_err("too large");
    assert!(
        error.to_string().contains("more than the 32 MiB"),
        "{error}"
    );
    assert_eq!(buf, [1, 2, 3], "the buffer is left as it was");
}

#[test]
fn every_truncation_is_refused_or_ends_on_a_frame_boundary() {
    let frames = every_frame();
    let bytes = stream_of(&frames);
    let mut boundaries = vec![HELLO_LEN];
    let mut end = HELLO_LEN;
    for frame in &frames {
        let mut one = Vec::new();
        encode_frame(frame, &mut one).expect("encode");
        end += one.len();
        boundaries.push(end);
    }
    // Every cut inside the small frames and hello, and a spread through the large ones.
    for cut in (0..bytes.len()).filter(|cut| *cut < 2_000 || cut % 97 == 0) {
        let result = read_all(&bytes[..cut]);
        let at_boundary = boundaries.contains(&cut);
        match result {
            Ok(read) => assert!(at_boundary, "cut {cut} read {} frames", read.len()),
            Err(error) => {
                assert!(!at_boundary, "cut {cut}: {error}");
                assert!(matches!(error, Error::Wire { .. }), "cut {cut}: {error}");
                assert!(error.to_string().contains("127.0.0.1:7001"), "{error}");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// Random bytes as the whole stream: an error or frames, never a panic.
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = read_all(&bytes);
    }

    /// Random bytes after a valid hello, with a plausible header in front (a small
    /// length and the right CRC), so that bincode itself meets the garbage.
    #[test]
    fn random_payloads_never_panic(payload in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut bytes = Hello::new(Role::Node(1), 3).encode().to_vec();
        bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        bytes.extend_from_slice(&payload);
        let _ = read_all(&bytes);
    }

    /// A valid stream with one byte changed: refused, or read as frames, never a panic.
    #[test]
    fn a_changed_byte_never_panics(at in 0usize..4_000, to in any::<u8>()) {
        let mut bytes = stream_of(&every_frame()[..24]);
        let at = at % bytes.len();
        bytes[at] = to;
        let _ = read_all(&bytes);
    }
}
