//! Preallocated and recycled segments: appends overwrite space that is already there (so
//! an fsync has no file size to write), a checkpoint reuses its segment's file instead of
//! deleting it, and the stale records left in a recycled file are never read as live,
//! torn or not.

use super::*;
use std::os::unix::fs::MetadataExt;

fn len_of(path: &Path) -> u64 {
    fs::metadata(path).expect("stat").len()
}

fn inode(path: &Path) -> u64 {
    fs::metadata(path).expect("stat").ino()
}

/// A log whose segment 1 held every kind of record and was recycled by a checkpoint into
/// segment 2, which is open and empty; returns segment 2's bytes.
fn recycled(dir: &Path) -> (Wal, Vec<u8>) {
    let (mut wal, _) = open(dir);
    append_all(&mut wal, &every_kind(), true);
    wal.checkpoint(&snapshot()).expect("checkpoint");
    let bytes = fs::read(dir.join("log.000002")).expect("segment 2");
    (wal, bytes)
}

#[test]
fn a_checkpoint_recycles_its_segment_instead_of_deleting_it() {
    let dir = tempdir();
    let (mut wal, _) = open(dir.path());
    append_all(&mut wal, &every_kind(), true);
    let old = dir.path().join("log.000001");
    let (before, old_inode) = (fs::read(&old).expect("segment 1"), inode(&old));
    wal.checkpoint(&snapshot()).expect("checkpoint");
    assert_eq!(file_names(dir.path()), ["checkpoint", "log.000002"]);
    let path = dir.path().join("log.000002");
    assert_eq!(inode(&path), old_inode, "the same file, renamed");
    let after = fs::read(&path).expect("segment 2");
    assert_eq!(after.len(), before.len(), "no zero-fill");
    assert_eq!(after[..HEADER], v3::header(2));
    let marker = v3::marker(2, HEADER as u64, HEADER as u64);
    assert_eq!(after[HEADER..HEADER + MARKER], marker);
    assert_eq!(
        after[HEADER + MARKER..],
        before[HEADER + MARKER..],
        "old records stay"
    );
    assert_eq!((wal.segment(), wal.size()), (2, 0));
    assert!(Wal::read_records(dir.path()).expect("list").is_empty());
    drop(wal);
    let (wal, recovery) = open(dir.path());
    assert_eq!(recovery.snapshot, Some(snapshot()));
    assert!(recovery.records.is_empty(), "{:?}", recovery.records);
    assert!(recovery.warnings.is_empty(), "{:?}", recovery.warnings);
    // Stale bytes follow segment 2's end marker, so appending moves on to a new segment.
    assert_eq!(wal.segment(), 3);
}

#[test]
fn stale_records_of_a_recycled_segment_are_never_returned() {
    let dir = tempdir();
    let (mut wal, _) = recycled(dir.path());
    let live = Record::End { tid: TxnId(99) };
    append_all(&mut wal, std::slice::from_ref(&live), true);
    append_all(&mut wal, &[Record::Abort { tid: TxnId(98) }], false);
    wal.simulate_crash().expect("crash");
    let listed = Wal::read_records(dir.path()).expect("list");
    assert_eq!(listed, [(2, HEADER as u64, live.clone())]);
    let (mut wal, recovery) = open(dir.path());
    assert_eq!(recovery.records, std::slice::from_ref(&live));
    assert!(recovery.warnings.is_empty(), "{:?}", recovery.warnings);
    assert_eq!(Wal::logged_bytes(dir.path()).expect("bytes"), wal.size());
    append_all(&mut wal, &every_kind()[..1], true);
    drop(wal);
    let (_, again) = open(dir.path());
    assert_eq!(again.records, [live, every_kind()[0].clone()]);
}

#[test]
fn a_torn_final_record_in_a_recycled_segment_followed_by_stale_records_is_cut() {
    let source = tempdir();
    let (mut wal, _) = recycled(source.path());
    let first = Record::TidLease { upto: 128 };
    append_all(&mut wal, std::slice::from_ref(&first), true);
    let start = log_end(&wal);
    let path = source.path().join("log.000002");
    let before = fs::read(&path).expect("segment");
    // Unlike the stale record under it (every_kind()[1]), so no cut can leave it whole.
    let torn_record = Record::Prepare {
        tid: TxnId(42),
        coordinator: 2,
        participants: vec![1, 2],
        writes: vec![("zebra".into(), Some("striped".into()))],
        prepare_ts: 40,
    };
    append_all(&mut wal, std::slice::from_ref(&torn_record), true);
    let end = log_end(&wal);
    let after = fs::read(&path).expect("segment");
    let stale = &before[start + MARKER..end + MARKER];
    assert!(
        stale.iter().any(|b| *b != 0),
        "stale records lie under the new one"
    );
    for cut in start + 1..end + MARKER {
        // The new record's bytes up to the cut, what the file held before from there on.
        let mut torn = after[..cut].to_vec();
        torn.extend_from_slice(&before[cut..]);
        let dir = tempdir();
        fs::copy(
            source.path().join("checkpoint"),
            dir.path().join("checkpoint"),
        )
        .expect("cp");
        fs::write(dir.path().join("log.000002"), &torn).expect("write the torn log");
        let (_, recovery) = open(dir.path());
        let whole = cut >= end;
        let expected = if whole {
            vec![first.clone(), torn_record.clone()]
        } else {
            vec![first.clone()]
        };
        assert_eq!(recovery.records, expected, "cut at {cut}");
        let kept = if whole { end } else { start };
        let marker = v3::marker(2, end as u64, start as u64);
        let intact = whole && torn[end..end + MARKER] == marker;
        if !intact {
            assert_eq!(recovery.warnings.len(), 1, "cut at {cut}");
            let at = format!("log.000002: cut a torn record at byte {kept} (");
            assert!(
                recovery.warnings[0].contains(&at),
                "cut at {cut}: {:?}",
                recovery.warnings
            );
        }
        let (_, again) = open(dir.path());
        assert_eq!(again.records, expected, "cut at {cut}");
        assert!(
            again.warnings.is_empty(),
            "cut at {cut}: {:?}",
            again.warnings
        );
    }
}

#[test]
fn a_flipped_bit_followed_by_a_record_written_after_its_fsync_is_damage_in_a_recycled_segment() {
    let source = tempdir();
    let (mut wal, _) = recycled(source.path());
    for record in &every_kind()[1..5] {
        append_all(&mut wal, std::slice::from_ref(record), true);
    }
    drop(wal);
    let starts = frame_starts_in(source.path(), 2);
    let bytes = fs::read(source.path().join("log.000002")).expect("segment");
    for (start, next) in starts.iter().zip(&starts[1..]) {
        let dir = tempdir();
        copy_dir(source.path(), dir.path());
        let mut damaged = bytes.clone();
        damaged[start + FRAME + 1] ^= 0x04;
        let path = dir.path().join("log.000002");
        fs::write(&path, &damaged).expect("write");
        let (file, offset, detail) = corrupt(Wal::open(dir.path()));
        assert_eq!((file, offset), (path, *start as u64), "{detail}");
        assert!(
            detail.contains(&format!("follows at byte {next}")),
            "{detail}"
        );
    }
}

#[test]
fn fsyncs_after_the_first_in_a_segment_leave_its_length_alone() {
    let dir = tempdir();
    let path = dir.path().join("log.000001");
    let (mut wal, _) = open(dir.path());
    let len = len_of(&path);
    for tid in 0..200 {
        let commit = Record::Commit {
            tid: TxnId(tid),
            commit_ts: tid,
        };
        append_all(&mut wal, &[commit], true);
        assert_eq!(len_of(&path), len, "after {} synced appends", tid + 1);
    }
    assert_eq!(wal.fsyncs(), 200);
    drop(wal);
    let dir = tempdir();
    let (mut wal, _) = recycled(dir.path());
    let path = dir.path().join("log.000002");
    let len = len_of(&path);
    for record in every_kind() {
        append_all(&mut wal, &[record], true);
        assert_eq!(len_of(&path), len, "in a recycled segment");
    }
}

#[test]
fn a_full_preallocated_region_grows_by_zero_filled_chunks() {
    let dir = tempdir();
    let path = dir.path().join("log.000001");
    let (mut wal, _) = open(dir.path());
    let big = Record::OnePhaseCommit {
        tid: TxnId(1),
        writes: vec![("k".into(), Some("v".repeat(1000)))],
        commit_ts: 1,
    };
    let mut lengths = vec![len_of(&path)];
    let mut last_start = 0;
    while wal.size() < 3 * PREALLOCATED {
        last_start = log_end(&wal);
        append_all(&mut wal, std::slice::from_ref(&big), true);
        if len_of(&path) != *lengths.last().expect("a length") {
            lengths.push(len_of(&path));
        }
    }
    // Each growth adds as much as the file holds: 64, 128, 256 KiB.
    assert_eq!(lengths, [PREALLOCATED, 2 * PREALLOCATED, 4 * PREALLOCATED]);
    let bytes = fs::read(&path).expect("segment");
    let end = log_end(&wal);
    let marker = v3::marker(1, end as u64, last_start as u64);
    assert_eq!(bytes[end..end + MARKER], marker);
    assert!(
        bytes[end + MARKER..].iter().all(|b| *b == 0),
        "zero-filled ahead"
    );
    let size = wal.size();
    drop(wal);
    let (wal, recovery) = open(dir.path());
    assert!(recovery.records.iter().all(|record| *record == big));
    assert_eq!(wal.size(), size);
}

#[test]
fn checkpoints_keep_a_few_spares_and_new_segments_reuse_them() {
    let dir = tempdir();
    let (mut wal, _) = open(dir.path());
    wal.set_segment_bytes(1);
    for record in &every_kind()[..4] {
        append_all(&mut wal, std::slice::from_ref(record), true);
    }
    assert_eq!(wal.segment(), 4);
    let first_inode = inode(&dir.path().join("log.000001"));
    wal.checkpoint(&snapshot()).expect("checkpoint");
    let names = ["checkpoint", "log.000005", "spare.000001", "spare.000002"];
    assert_eq!(file_names(dir.path()), names);
    let live = every_kind()[4..6].to_vec();
    for record in &live {
        append_all(&mut wal, std::slice::from_ref(record), true);
    }
    let names = ["checkpoint", "log.000005", "log.000006", "spare.000002"];
    assert_eq!(file_names(dir.path()), names);
    assert_eq!(inode(&dir.path().join("log.000006")), first_inode);
    let size = wal.size();
    drop(wal);
    assert_eq!(Wal::logged_bytes(dir.path()).expect("bytes"), size);
    let (wal, recovery) = open(dir.path());
    assert_eq!(recovery.records, live);
    assert!(recovery.warnings.is_empty(), "{:?}", recovery.warnings);
    assert_eq!(wal.size(), size);
}

#[test]
fn logged_bytes_count_records_not_preallocated_space() {
    let dir = tempdir();
    let (mut wal, _) = open(dir.path());
    assert_eq!(Wal::logged_bytes(dir.path()).expect("bytes"), 0);
    append_all(&mut wal, &every_kind(), true);
    let size = wal.size();
    assert!(size > 0 && size < 400, "{size}");
    assert_eq!(Wal::logged_bytes(dir.path()).expect("bytes"), size);
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("logs/golden/v1/node0");
    let v1 = v1_segment(&every_kind()).len() - 12;
    assert_eq!(Wal::logged_bytes(&golden).expect("bytes"), v1 as u64);
}
