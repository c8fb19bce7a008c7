//! The write-ahead log as recovery sees it: every record kind survives a restart, a crash
//! loses exactly what was not fsynced, a torn tail is cut at any byte, damage anywhere is
//! refused with the file and offset, checkpoints survive a crash between any two steps,
//! and the golden logs of earlier versions still read (`golden`). `torn` holds the cut
//! and bit-flip tests of both format versions, `recycled` those of preallocated and
//! recycled segments. Files live in temporary directories; `KV2PC_WRITE_GOLDEN=1 cargo
//! test --test wal golden_writer` rewrites `logs/golden/v2`.

#[path = "wal/golden.rs"]
mod golden;
#[path = "wal/power.rs"]
mod power;
#[path = "wal/recycled.rs"]
mod recycled;
#[path = "wal/torn.rs"]
mod torn;

use kv2pc::types::TxnId;
use kv2pc::wal::frame::{v2, v3};
use kv2pc::wal::{Record, Recovery, Snapshot, Wal};
use kv2pc::{Error, Result};
use proptest::collection::vec;
use proptest::prelude::*;
use std::fs;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

/// The length of a segment header (versions 2 and 3).
const HEADER: usize = v3::HEADER_LEN as usize;
/// The length of a frame header of the version written (3).
const FRAME: usize = v3::FRAME_HEADER_LEN as usize;
/// The length of an end marker of the version written (3).
const MARKER: usize = v3::MARKER_LEN as usize;
/// The length of a new segment file.
const PREALLOCATED: u64 = 64 << 10;

fn tempdir() -> TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

/// One record of every kind the golden logs hold (the golden writer uses it, so it
/// cannot grow: kinds added since are in [`later_kinds`]).
fn every_kind() -> Vec<Record> {
    vec![
        Record::TidLease { upto: 64 },
        Record::Prepare {
            tid: TxnId(1),
            coordinator: 0,
            participants: vec![0, 2],
            writes: vec![("apple".into(), Some("red".into())), ("pear".into(), None)],
            prepare_ts: 3,
        },
        Record::Commit {
            tid: TxnId(1),
            commit_ts: 5,
        },
        Record::Abort { tid: TxnId(4) },
        Record::OnePhaseCommit {
            tid: TxnId(7),
            writes: vec![("fig".into(), Some("purple".into()))],
            commit_ts: 6,
        },
        Record::Decision {
            tid: TxnId(10),
            participants: vec![0, 1],
            commit_ts: 8,
        },
        Record::End { tid: TxnId(10) },
    ]
}

/// One record of every kind added after the v3 golden log was written; with
/// [`every_kind`], one of each ([`kind_index`] fails to compile when a kind is added).
fn later_kinds() -> Vec<Record> {
    vec![
        Record::Heuristic {
            tid: TxnId(1),
            commit: true,
            commit_ts: 4,
        },
        Record::Heuristic {
            tid: TxnId(4),
            commit: false,
            commit_ts: 0,
        },
        Record::Staged {
            tid: TxnId(5),
            participants: vec![1, 2],
        },
        Record::Refused { tid: TxnId(5) },
        Record::StagedAbort { tid: TxnId(5) },
    ]
}

fn kind_index(record: &Record) -> usize {
    match record {
        Record::Prepare { .. } => 0,
        Record::Commit { .. } => 1,
        Record::Abort { .. } => 2,
        Record::OnePhaseCommit { .. } => 3,
        Record::Decision { .. } => 4,
        Record::End { .. } => 5,
        Record::TidLease { .. } => 6,
        Record::Heuristic { .. } => 7,
        Record::Staged { .. } => 8,
        Record::Refused { .. } => 9,
        Record::StagedAbort { .. } => 10,
    }
}

fn snapshot() -> Snapshot {
    Snapshot {
        data: vec![
            ("apple".into(), "red".into(), 5),
            ("kiwi".into(), "green".into(), 2),
        ],
        prepared: vec![Record::Prepare {
            tid: TxnId(4),
            coordinator: 1,
            participants: vec![0, 1],
            writes: vec![("kiwi".into(), None)],
            prepare_ts: 7,
        }],
        decisions: vec![Record::Decision {
            tid: TxnId(3),
            participants: vec![2],
            commit_ts: 6,
        }],
        tid_lease: 128,
        clock: 9,
    }
}

fn open(dir: &Path) -> (Wal, Recovery) {
    Wal::open(dir).unwrap_or_else(|e| panic!("opening {}: {e}", dir.display()))
}

fn append_all(wal: &mut Wal, records: &[Record], sync: bool) {
    for record in records {
        wal.append(record).expect("append");
    }
    wal.flush(sync).expect("flush");
}

/// Logs `records` durably in a fresh log at `dir` and returns the segment's bytes.
fn logged_bytes(dir: &Path, records: &[Record]) -> Vec<u8> {
    let (mut wal, _) = open(dir);
    append_all(&mut wal, records, true);
    fs::read(dir.join("log.000001")).expect("segment")
}

/// Where the records of segment `number` end (where its end marker is), from `wal`.
fn log_end(wal: &Wal) -> usize {
    wal.synced_len() as usize
}

/// A version 1 segment holding `records`, built by hand as version 1 wrote them.
fn v1_segment(records: &[Record]) -> Vec<u8> {
    let mut bytes = b"KV2PCLOG\x01\0\0\0".to_vec();
    for record in records {
        let mut payload = Vec::new();
        kv2pc::wal::codec::encode_into(record, &mut payload).expect("encode");
        bytes.extend_from_slice(&frame(&payload));
    }
    bytes
}

/// The starts of the records of segment `number` in the log at `dir`.
fn frame_starts_in(dir: &Path, number: u64) -> Vec<usize> {
    let listed = Wal::read_records(dir).expect("read_records");
    listed
        .into_iter()
        .filter(|(segment, _, _)| *segment == number)
        .map(|(_, offset, _)| offset as usize)
        .collect()
}

/// The offset where each record's frame starts, from `SHOW LOG`'s listing.
fn frame_starts(dir: &Path) -> Vec<usize> {
    let listed = Wal::read_records(dir).expect("read_records");
    listed
        .into_iter()
        .map(|(_, offset, _)| offset as usize)
        .collect()
}

fn corrupt(result: Result<(Wal, Recovery)>) -> (PathBuf, u64, String) {
    match result {
        Err(Error::Corrupt {
            path,
            offset,
            detail,
        }) => (path, offset, detail),
        Err(other) => panic!("expected a Corrupt error, got: {other}"),
        Ok((_, recovery)) => panic!("expected a Corrupt error, recovered {recovery:?}"),
    }
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("list")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("create copy");
    for name in file_names(from) {
        fs::copy(from.join(&name), to.join(&name)).expect("copy");
    }
}

#[test]
fn every_record_kind_survives_a_restart() {
    let all = [every_kind(), later_kinds()].concat();
    let kinds: std::collections::BTreeSet<usize> = all.iter().map(kind_index).collect();
    assert_eq!(
        kinds.len(),
        11,
        "every_kind and later_kinds must hold one record of each kind"
    );
    let dir = tempdir();
    let (mut wal, recovery) = open(dir.path());
    assert_eq!(recovery, Recovery::default());
    append_all(&mut wal, &all, true);
    let size = wal.size();
    drop(wal);
    let (wal, recovery) = open(dir.path());
    assert_eq!(recovery.records, all);
    assert_eq!(recovery.snapshot, None);
    assert!(recovery.warnings.is_empty(), "{:?}", recovery.warnings);
    assert_eq!(wal.size(), size);
}

#[test]
fn a_fresh_log_is_one_preallocated_segment_holding_a_header_and_an_end_marker() {
    let dir = tempdir();
    let node = dir.path().join("data").join("node1");
    let (wal, _) = open(&node);
    assert_eq!(file_names(&node), ["log.000001"]);
    let bytes = fs::read(node.join("log.000001")).expect("segment");
    assert_eq!(bytes.len() as u64, PREALLOCATED);
    assert_eq!(&bytes[..12], b"KV2PCLOG\x03\x00\x00\x00");
    assert_eq!(&bytes[12..20], &1u64.to_le_bytes());
    assert_eq!(bytes[..HEADER], v3::header(1));
    let marker = v3::marker(1, HEADER as u64, HEADER as u64);
    assert_eq!(bytes[HEADER..HEADER + MARKER], marker);
    assert!(bytes[HEADER + MARKER..].iter().all(|b| *b == 0));
    assert_eq!((wal.size(), wal.segment(), wal.fsyncs()), (0, 1, 0));
}

#[test]
fn an_unreadable_segment_is_an_io_error_naming_it() {
    let dir = tempdir();
    fs::create_dir(dir.path().join("log.000001")).expect("a directory where a file belongs");
    match Wal::open(dir.path()) {
        Err(Error::Io { context, .. }) => assert!(context.contains("log.000001"), "{context}"),
        other => panic!("expected an I/O error, got {:?}", other.map(|(_, r)| r)),
    }
}

#[test]
fn a_crash_loses_what_was_not_fsynced_and_keeps_what_was() {
    let dir = tempdir();
    let records = every_kind();
    let (mut wal, _) = open(dir.path());
    append_all(&mut wal, &records[..2], true);
    let synced = wal.synced_len();
    append_all(&mut wal, &records[2..4], false);
    wal.append(&records[4]).expect("append");
    assert_eq!(wal.synced_len(), synced);
    assert_eq!(wal.fsyncs(), 1);
    let path = dir.path().join("log.000001");
    let written = fs::read(&path).expect("segment");
    assert!(written[synced as usize + MARKER..].iter().any(|b| *b != 0));
    wal.simulate_crash().expect("crash");
    let left = fs::read(&path).expect("segment");
    assert_eq!(
        left.len(),
        written.len(),
        "a crash does not change the length"
    );
    assert_eq!(left[..synced as usize], written[..synced as usize]);
    let marker = synced as usize..synced as usize + MARKER;
    assert_eq!(left[marker], v3::marker(1, synced, synced));
    assert!(left[synced as usize + MARKER..].iter().all(|b| *b == 0));
    let (_, recovery) = open(dir.path());
    assert_eq!(recovery.records, records[..2]);
    assert!(recovery.warnings.is_empty(), "{:?}", recovery.warnings);
}

#[test]
fn group_commit_syncs_once_per_flush_and_only_when_needed() {
    let dir = tempdir();
    let (mut wal, _) = open(dir.path());
    append_all(&mut wal, &every_kind(), false);
    assert_eq!(wal.fsyncs(), 0);
    wal.flush(true).expect("sync");
    wal.flush(true).expect("nothing new to sync");
    assert_eq!(wal.fsyncs(), 1);
    append_all(&mut wal, &every_kind(), true);
    assert_eq!(wal.fsyncs(), 2);
}

#[test]
fn after_a_checkpoint_recovery_reads_the_snapshot_and_later_records_only() {
    let dir = tempdir();
    let (mut wal, _) = open(dir.path());
    append_all(&mut wal, &every_kind()[..3], true);
    wal.append(&every_kind()[3])
        .expect("pending before the checkpoint");
    wal.checkpoint(&snapshot()).expect("checkpoint");
    assert_eq!(wal.size(), 0);
    assert_eq!(file_names(dir.path()), ["checkpoint", "log.000002"]);
    let later = every_kind()[4..].to_vec();
    append_all(&mut wal, &later, true);
    let size = wal.size();
    drop(wal);
    let (wal, recovery) = open(dir.path());
    assert_eq!(recovery.snapshot, Some(snapshot()));
    assert_eq!(recovery.records, later);
    assert!(recovery.warnings.is_empty(), "{:?}", recovery.warnings);
    assert_eq!(wal.size(), size);
    let listed = Wal::read_records(dir.path()).expect("read_records");
    let segments: Vec<u64> = listed.iter().map(|(segment, _, _)| *segment).collect();
    assert_eq!(segments, [2, 2, 2]);
}

/// A log with records in `log.000001`, and the bytes of that segment before a checkpoint.
fn checkpointed(dir: &Path) -> Vec<u8> {
    let old = logged_bytes(dir, &every_kind());
    let (mut wal, _) = open(dir);
    wal.checkpoint(&snapshot()).expect("checkpoint");
    old
}

#[test]
fn a_crash_before_the_checkpoint_rename_keeps_the_old_log() {
    let dir = tempdir();
    logged_bytes(dir.path(), &every_kind());
    fs::write(dir.path().join("checkpoint.tmp"), b"KV2PCCKP\x01\x00").expect("a half checkpoint");
    let (_, recovery) = open(dir.path());
    assert_eq!((recovery.snapshot, recovery.records), (None, every_kind()));
    assert_eq!(recovery.warnings.len(), 1);
    assert!(recovery.warnings[0].contains("removed an unfinished checkpoint"));
    assert_eq!(file_names(dir.path()), ["log.000001"]);
}

#[test]
fn a_crash_after_the_checkpoint_rename_recovers_from_the_checkpoint() {
    for new_segment in ["missing", "torn", "created"] {
        let dir = tempdir();
        let old = checkpointed(dir.path());
        fs::write(dir.path().join("log.000001"), &old).expect("the old segment, not yet deleted");
        let next = dir.path().join("log.000002");
        match new_segment {
            "missing" => fs::remove_file(&next).expect("remove"),
            "torn" => fs::write(&next, b"KV2PC").expect("a cut header"),
            _ => {}
        }
        let (mut wal, recovery) = open(dir.path());
        assert_eq!(recovery.snapshot, Some(snapshot()), "{new_segment}");
        assert!(recovery.records.is_empty(), "{new_segment}");
        assert!(
            recovery
                .warnings
                .iter()
                .any(|w| w.contains("log.000001: removed")),
            "{new_segment}"
        );
        // The covered segment's file is kept as a spare, and taken by the next new
        // segment: the one the crash prevented, or the one after a recycled segment
        // (which holds stale bytes past its end marker).
        let expected: &[&str] = match new_segment {
            "missing" => &["checkpoint", "log.000002"],
            "torn" => &["checkpoint", "log.000002", "spare.000001"],
            _ => &["checkpoint", "log.000002", "log.000003"],
        };
        assert_eq!(file_names(dir.path()), expected, "{new_segment}");
        append_all(&mut wal, &every_kind()[..1], true);
        drop(wal);
        assert_eq!(
            open(dir.path()).1.records,
            every_kind()[..1],
            "{new_segment}"
        );
    }
}

#[test]
fn a_damaged_checkpoint_is_refused() {
    let dir = tempdir();
    checkpointed(dir.path());
    let path = dir.path().join("checkpoint");
    let mut bytes = fs::read(&path).expect("checkpoint");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    fs::write(&path, &bytes).expect("write");
    let (file, offset, detail) = corrupt(Wal::open(dir.path()));
    assert_eq!((file, offset), (path, 12));
    assert!(detail.contains("checksum mismatch"), "{detail}");
}

#[test]
fn records_spread_over_segments_recover_in_order() {
    let dir = tempdir();
    let (mut wal, _) = open(dir.path());
    wal.set_segment_bytes(60);
    for record in every_kind() {
        append_all(&mut wal, &[record], true);
    }
    let size = wal.size();
    assert!(wal.segment() >= 3, "only {} segments", wal.segment());
    drop(wal);
    let (wal, recovery) = open(dir.path());
    assert_eq!(recovery.records, every_kind());
    assert_eq!(wal.size(), size);
    let listed = Wal::read_records(dir.path()).expect("read_records");
    let records: Vec<Record> = listed.iter().map(|(_, _, record)| record.clone()).collect();
    assert_eq!(records, every_kind());
    assert!(
        listed
            .windows(2)
            .all(|pair| (pair[0].0, pair[0].1) < (pair[1].0, pair[1].1))
    );
}

/// A log spread over three segments.
fn three_segments(dir: &Path) {
    let (mut wal, _) = open(dir);
    wal.set_segment_bytes(1);
    for record in &every_kind()[..3] {
        append_all(&mut wal, std::slice::from_ref(record), true);
    }
    assert_eq!(wal.segment(), 3);
}

#[test]
fn a_missing_segment_is_refused() {
    let dir = tempdir();
    three_segments(dir.path());
    fs::remove_file(dir.path().join("log.000002")).expect("remove");
    let (path, _, detail) = corrupt(Wal::open(dir.path()));
    assert_eq!(path, dir.path());
    assert!(
        detail.contains("log.000002 is missing between log.000001 and log.000003"),
        "{detail}"
    );
    fs::remove_file(dir.path().join("log.000001")).expect("remove");
    let (_, _, detail) = corrupt(Wal::open(dir.path()));
    assert!(detail.contains("log.000001 is missing"), "{detail}");
}

#[test]
fn a_torn_record_in_an_earlier_segment_is_refused() {
    let dir = tempdir();
    three_segments(dir.path());
    let path = dir.path().join("log.000002");
    let mut bytes = fs::read(&path).expect("segment");
    let end = bytes[FRAME..]
        .iter()
        .rposition(|b| *b != 0)
        .expect("a marker")
        + 1;
    bytes[end - 3..end + FRAME].fill(0);
    fs::write(&path, &bytes).expect("a torn record, then zeros");
    let (file, offset, detail) = corrupt(Wal::open(dir.path()));
    assert_eq!((file, offset), (path, HEADER as u64));
    assert!(detail.contains("only the last segment"), "{detail}");
}

/// A log of three synced records: its directory, its segment's path and bytes, and
/// where its records end.
fn three_records() -> (TempDir, std::path::PathBuf, Vec<u8>, usize) {
    let dir = tempdir();
    let (mut wal, _) = open(dir.path());
    append_all(&mut wal, &every_kind()[..3], true);
    let end = log_end(&wal);
    drop(wal);
    let path = dir.path().join("log.000001");
    let bytes = fs::read(&path).expect("segment");
    (dir, path, bytes, end)
}

#[test]
fn listing_the_log_changes_nothing() {
    let (dir, path, mut bytes, end) = three_records();
    bytes[end - 2..end + FRAME].fill(0);
    fs::write(&path, &bytes).expect("a torn tail");
    let listed = Wal::read_records(dir.path()).expect("read_records");
    let records: Vec<Record> = listed.into_iter().map(|(_, _, record)| record).collect();
    assert_eq!(records, every_kind()[..2]);
    assert_eq!(fs::read(&path).expect("read back"), bytes);
}

// Whatever the bytes, opening a log returns records or an error; it never panics.

/// A version 1 frame, built by hand.
fn frame(payload: &[u8]) -> Vec<u8> {
    salted_frame(&[], payload)
}

/// A version 2 frame of segment `number` at `offset`, built by hand.
fn v2_frame(number: u64, offset: u64, payload: &[u8]) -> Vec<u8> {
    let salt = [number.to_le_bytes(), offset.to_le_bytes()].concat();
    salted_frame(&salt, payload)
}

/// A frame whose CRC covers `salt`, then the length and the payload.
fn salted_frame(salt: &[u8], payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() as u32).to_le_bytes();
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(salt);
    hasher.update(&len);
    hasher.update(payload);
    let mut bytes = len.to_vec();
    bytes.extend_from_slice(&hasher.finalize().to_le_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

fn open_survives(dir: &Path) -> std::result::Result<Recovery, TestCaseError> {
    match Wal::open(dir) {
        Ok((_, recovery)) => Ok(recovery),
        Err(Error::Corrupt { .. }) => Ok(Recovery::default()),
        Err(other) => Err(TestCaseError::fail(format!("not a Corrupt error: {other}"))),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn appended_garbage_never_panics_or_loses_a_whole_record(garbage in vec(any::<u8>(), 1..120)) {
        let (dir, path, mut bytes, end) = three_records();
        bytes[end..end + garbage.len()].copy_from_slice(&garbage);
        fs::write(&path, &bytes).expect("write");
        if let Ok((_, recovery)) = Wal::open(dir.path()) {
            prop_assert_eq!(&recovery.records[..3], &every_kind()[..3]);
        }
    }

    #[test]
    fn garbage_files_never_panic(
        segment in vec(any::<u8>(), 0..200),
        header in 0..3,
        checkpoint in proptest::option::of(vec(any::<u8>(), 0..80)),
    ) {
        let dir = tempdir();
        let mut bytes = match header {
            0 => Vec::new(),
            1 => b"KV2PCLOG\x01\0\0\0".to_vec(),
            _ => v2::header(1).to_vec(),
        };
        bytes.extend_from_slice(&segment);
        fs::write(dir.path().join("log.000001"), &bytes).expect("write");
        if let Some(checkpoint) = checkpoint {
            fs::write(dir.path().join("checkpoint"), checkpoint).expect("write");
        }
        open_survives(dir.path())?;
    }

    #[test]
    fn garbage_payloads_with_valid_checksums_never_panic(payload in vec(any::<u8>(), 0..64)) {
        let dir = tempdir();
        let mut bytes = b"KV2PCLOG\x01\0\0\0".to_vec();
        bytes.extend_from_slice(&frame(&payload));
        fs::write(dir.path().join("log.000001"), &bytes).expect("write");
        open_survives(dir.path())?;
        let mut bytes = v2::header(1).to_vec();
        bytes.extend_from_slice(&v2_frame(1, HEADER as u64, &payload));
        fs::write(dir.path().join("log.000001"), &bytes).expect("write");
        open_survives(dir.path())?;
        let mut checkpoint = b"KV2PCCKP\x01\0\0\0".to_vec();
        checkpoint.extend_from_slice(&frame(&payload));
        fs::write(dir.path().join("checkpoint"), &checkpoint).expect("write");
        open_survives(dir.path())?;
    }
}
