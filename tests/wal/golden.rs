//! Golden logs: written once by a version, read by every later one.

use super::*;

fn golden_dir(version: u32) -> PathBuf {
    let dir = format!("logs/golden/v{version}/node0");
    Path::new(env!("CARGO_MANIFEST_DIR")).join(dir)
}

/// Writes the golden log: records before a checkpoint (dropped by it, and left as stale
/// bytes in the recycled segment), the checkpoint, then one record of every kind spread
/// over two segments.
fn write_golden(dir: &Path) {
    let (mut wal, _) = open(dir);
    append_all(&mut wal, &[every_kind(), every_kind()].concat(), true);
    wal.checkpoint(&snapshot()).expect("checkpoint");
    wal.set_segment_bytes(100);
    for record in every_kind() {
        append_all(&mut wal, std::slice::from_ref(&record), record.forced());
    }
    wal.flush(true).expect("flush");
}

/// A golden file as stored: without the zeros of its preallocated space, past the 4 KiB
/// block after its last non-zero byte and any end marker there (they read the same).
fn stored(mut bytes: Vec<u8>) -> Vec<u8> {
    let used = bytes
        .iter()
        .rposition(|b| *b != 0)
        .map_or(0, |last| last + 1 + MARKER);
    bytes.truncate(used.div_ceil(4096) * 4096);
    bytes
}

#[test]
fn the_golden_writer_still_produces_v3_bytes() {
    if std::env::var_os("KV2PC_WRITE_GOLDEN").is_some_and(|v| v == "1") {
        let _ = fs::remove_dir_all(golden_dir(3));
        write_golden(&golden_dir(3));
        for name in file_names(&golden_dir(3)) {
            let path = golden_dir(3).join(name);
            let bytes = stored(fs::read(&path).expect("written"));
            fs::write(&path, bytes).expect("store");
        }
    }
    let dir = tempdir();
    write_golden(dir.path());
    assert_eq!(file_names(dir.path()), file_names(&golden_dir(3)));
    for name in file_names(dir.path()) {
        let written = stored(fs::read(dir.path().join(&name)).expect("written"));
        let golden = fs::read(golden_dir(3).join(&name)).expect("golden");
        assert!(written == golden, "{name} differs from the v3 golden file");
    }
}

#[test]
fn the_v3_golden_log_is_still_read() {
    let listed = Wal::read_records(&golden_dir(3)).expect("listing the golden log");
    let segments: Vec<u64> = listed.iter().map(|(segment, _, _)| *segment).collect();
    assert_eq!(segments, [2, 2, 2, 3, 3, 3, 3]);
    let dir = tempdir();
    copy_dir(&golden_dir(3), dir.path());
    let (mut wal, recovery) = open(dir.path());
    assert_eq!(recovery.snapshot, Some(snapshot()));
    assert_eq!(recovery.records, every_kind());
    assert!(recovery.warnings.is_empty(), "{:?}", recovery.warnings);
    assert_eq!(wal.segment(), 3, "appending goes on in the last segment");
    append_all(&mut wal, &every_kind()[..1], true);
    drop(wal);
    let (_, again) = open(dir.path());
    assert_eq!(again.records.len(), every_kind().len() + 1);
}

#[test]
fn the_v2_golden_log_is_still_read() {
    let listed = Wal::read_records(&golden_dir(2)).expect("listing the golden log");
    let segments: Vec<u64> = listed.iter().map(|(segment, _, _)| *segment).collect();
    assert_eq!(segments, [2, 2, 2, 2, 2, 3, 3]);
    let stale = fs::read(golden_dir(2).join("log.000002")).expect("golden");
    let last_frame = v1_segment(&every_kind()[4..5]).len() - 12;
    let end = listed[4].1 as usize + last_frame;
    assert_eq!(stale[end..end + 8], v2::marker(2, end as u64));
    let end = end + 8;
    assert!(
        stale[end..].iter().any(|b| *b != 0),
        "log.000002 should hold stale records of its use as segment 1 past its end"
    );
    let dir = tempdir();
    copy_dir(&golden_dir(2), dir.path());
    let (mut wal, recovery) = open(dir.path());
    assert_eq!(recovery.snapshot, Some(snapshot()));
    assert_eq!(recovery.records, every_kind());
    assert!(recovery.warnings.is_empty(), "{:?}", recovery.warnings);
    // A segment holds frames of one layout: appending goes on in a new version 3 segment.
    assert_eq!(wal.segment(), 4);
    append_all(&mut wal, &every_kind()[..1], true);
    drop(wal);
    let (_, again) = open(dir.path());
    assert_eq!(again.records.len(), every_kind().len() + 1);
    assert!(again.warnings.is_empty(), "{:?}", again.warnings);
}

#[test]
fn the_v1_golden_log_is_still_read() {
    let listed = Wal::read_records(&golden_dir(1)).expect("listing the golden log");
    let segments: Vec<u64> = listed.iter().map(|(segment, _, _)| *segment).collect();
    assert_eq!(segments, [2, 2, 2, 2, 2, 3, 3]);
    let dir = tempdir();
    copy_dir(&golden_dir(1), dir.path());
    let (mut wal, recovery) = open(dir.path());
    assert_eq!(recovery.snapshot, Some(snapshot()));
    assert_eq!(recovery.records, every_kind());
    assert!(recovery.warnings.is_empty(), "{:?}", recovery.warnings);
    // Version 1 segments are only read: appending goes on in a new version 3 segment.
    assert_eq!(wal.segment(), 4);
    for name in ["checkpoint", "log.000002", "log.000003"] {
        let copied = fs::read(dir.path().join(name)).expect("copy");
        assert_eq!(copied, fs::read(golden_dir(1).join(name)).expect("golden"));
    }
    append_all(&mut wal, &every_kind()[..1], true);
    drop(wal);
    let (_, again) = open(dir.path());
    assert_eq!(again.records.len(), every_kind().len() + 1);
    assert!(again.warnings.is_empty(), "{:?}", again.warnings);
}
