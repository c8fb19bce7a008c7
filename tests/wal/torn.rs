//! Torn or damaged, in every format version: a log cut at every byte (with the file
//! ending there, or followed by preallocated zeros) recovers exactly the whole records
//! before the cut, and a flipped bit anywhere in the live log is refused with the file
//! and offset, leaving the file as it was, unless (version 3) it is in the last writes,
//! which no later write shows were fsynced: those are cut like a torn write.

use super::*;

/// A log of `records`, each written and fsynced on its own: its segment's bytes, where
/// its records start, and where they end (where the end marker is).
fn four_records(dir: &Path, records: &[Record]) -> (Vec<u8>, Vec<usize>, usize) {
    let (mut wal, _) = open(dir);
    for record in records {
        append_all(&mut wal, std::slice::from_ref(record), true);
    }
    let end = log_end(&wal);
    drop(wal);
    let bytes = fs::read(dir.join("log.000001")).expect("segment");
    (bytes, frame_starts(dir), end)
}

/// The warning recovery gives for a version 2 log whose bytes from `cut` on are zeros.
fn warning_after_zeros(path: &Path, padded: &[u8], cut: usize, ends: &[usize]) -> Option<String> {
    let end = *ends.last().expect("records");
    let last_start = ends.len().checked_sub(2).map_or(HEADER, |i| ends[i]);
    let kept = ends.iter().copied().rfind(|e| *e <= cut).unwrap_or(HEADER);
    let path = path.display();
    if cut < HEADER {
        return Some(format!(
            "node log {path}: rewrote a torn segment header ({PREALLOCATED} bytes)"
        ));
    }
    let head = &padded[kept..kept + FRAME];
    let marker = v3::marker(1, end as u64, last_start as u64);
    let marker_intact = kept == end && padded[kept..kept + MARKER] == marker;
    if marker_intact {
        None
    } else if head.iter().all(|b| *b == 0) {
        Some(format!(
            "node log {path}: wrote the missing end marker at byte {kept} (an append was \
             cut short after its records)"
        ))
    } else {
        let next = ends
            .iter()
            .copied()
            .find(|e| *e > kept)
            .unwrap_or(end + MARKER);
        let torn = next - kept;
        Some(format!(
            "node log {path}: cut a torn record at byte {kept} ({torn} bytes)"
        ))
    }
}

#[test]
fn a_cut_at_every_byte_recovers_exactly_the_whole_records_before_it() {
    let source = tempdir();
    let records = every_kind()[..4].to_vec();
    let (bytes, starts, end) = four_records(source.path(), &records);
    let mut ends = starts[1..].to_vec();
    ends.push(end);
    for cut in 0..=end + MARKER {
        for zeros_after in [false, true] {
            let case = format!("cut at {cut}, zeros after: {zeros_after}");
            let dir = tempdir();
            let path = dir.path().join("log.000001");
            let mut cut_bytes = bytes[..cut].to_vec();
            if zeros_after {
                cut_bytes.resize(bytes.len(), 0);
            }
            fs::write(&path, &cut_bytes).expect("write the cut log");
            let (mut wal, recovery) = open(dir.path());
            let whole = ends.iter().filter(|end| **end <= cut).count();
            let kept = ends[..whole].last().copied().unwrap_or(HEADER);
            assert_eq!(recovery.records, records[..whole], "{case}");
            let expected_warning = if zeros_after {
                warning_after_zeros(&path, &cut_bytes, cut, &ends)
            } else {
                torn_warning(&path, cut, kept, HEADER, cut != end + MARKER)
            };
            assert_eq!(
                recovery.warnings,
                Vec::from_iter(expected_warning),
                "{case}"
            );
            let len = fs::metadata(&path).expect("stat").len();
            assert_eq!(
                len, PREALLOCATED,
                "{case}: appending goes on in this segment"
            );
            // The size leaves out version 3's synced fields: it reads as in version 2.
            let synced_fields = (v3::SYNCED_LEN as usize) * whole;
            assert_eq!(wal.size(), (kept - HEADER - synced_fields) as u64, "{case}");
            append_all(&mut wal, &[Record::End { tid: TxnId(99) }], true);
            drop(wal);
            let (wal, again) = open(dir.path());
            assert!(again.warnings.is_empty(), "{case}: {:?}", again.warnings);
            assert_eq!(again.records.len(), whole + 1, "{case}");
            assert_eq!(wal.segment(), 1, "{case}");
        }
    }
}

#[test]
fn a_version_1_log_cut_at_every_byte_is_read_as_version_1_always_was() {
    let records = every_kind()[..4].to_vec();
    let bytes = v1_segment(&records);
    let mut ends: Vec<usize> = (1..=records.len())
        .map(|n| v1_segment(&records[..n]).len())
        .collect();
    ends.dedup();
    for cut in 0..=bytes.len() {
        let dir = tempdir();
        let path = dir.path().join("log.000001");
        fs::write(&path, &bytes[..cut]).expect("write the cut log");
        let (mut wal, recovery) = open(dir.path());
        let whole = ends.iter().filter(|end| **end <= cut).count();
        let kept = ends[..whole].last().copied().unwrap_or(12);
        assert_eq!(recovery.records, records[..whole], "cut at {cut}");
        let expected_warning = torn_warning(&path, cut, kept, 12, true);
        assert_eq!(
            recovery.warnings,
            Vec::from_iter(expected_warning),
            "cut at {cut}"
        );
        if cut >= 12 {
            let len = fs::metadata(&path).expect("stat").len();
            assert_eq!(
                len, kept as u64,
                "cut at {cut}: version 1 is cut, as always"
            );
            assert_eq!(
                wal.segment(),
                2,
                "cut at {cut}: a version 2 segment follows"
            );
        }
        assert_eq!(wal.size(), (kept - 12) as u64);
        append_all(&mut wal, &[Record::End { tid: TxnId(99) }], true);
        drop(wal);
        let (_, again) = open(dir.path());
        assert!(
            again.warnings.is_empty(),
            "cut at {cut}: {:?}",
            again.warnings
        );
        assert_eq!(again.records.len(), whole + 1, "cut at {cut}");
    }
}

/// Flips bits of every byte in `range` of the live part of a four-record log (`bytes`,
/// records at `starts`) and expects `Corrupt` at the header field or frame holding that
/// byte, with the file left as it was. `fields` are the header fields' offsets.
fn assert_every_flip_is_reported(
    bytes: &[u8],
    starts: &[usize],
    fields: &[usize],
    range: std::ops::Range<usize>,
) {
    for at in range {
        let field = fields.iter().rev().find(|start| **start <= at);
        let frame = starts.iter().rev().find(|start| **start <= at);
        let expected_offset = *frame.or(field).expect("a field or frame");
        for mask in [0x01, 0x80, 0xff] {
            let dir = tempdir();
            let path = dir.path().join("log.000001");
            let mut damaged = bytes.to_vec();
            damaged[at] ^= mask;
            fs::write(&path, &damaged).expect("write the damaged log");
            let (file, offset, detail) = corrupt(Wal::open(dir.path()));
            // A version 3 turned into a version 2 is a version read: its header CRC fails.
            let older_version = expected_offset == 8 && bytes[8] == 3 && damaged[8] == 2;
            let expected_offset = if older_version { 12 } else { expected_offset };
            assert_eq!(
                (file, offset),
                (path.clone(), expected_offset as u64),
                "byte {at} ^ {mask:#x}: {detail}"
            );
            let unchanged = fs::read(&path).expect("read back") == damaged;
            assert!(unchanged, "recovery changed a damaged file");
        }
    }
}

const V2_FIELDS: [usize; 3] = [0, 8, 12];
const V1_FIELDS: [usize; 2] = [0, 8];

#[test]
fn a_damaged_byte_before_the_last_record_is_refused_with_file_and_offset() {
    let source = tempdir();
    let (bytes, starts, _) = four_records(source.path(), &every_kind()[1..5]);
    let last = starts[starts.len() - 1];
    assert_every_flip_is_reported(&bytes, &starts, &V2_FIELDS, 0..last);
}

#[test]
fn a_damaged_byte_in_the_last_write_is_cut_like_a_torn_write() {
    // No later write says the last one was fsynced: it cannot be told from a torn one.
    let source = tempdir();
    let (bytes, starts, end) = four_records(source.path(), &every_kind()[1..5]);
    let last = starts[starts.len() - 1];
    for at in last..end {
        let dir = tempdir();
        let path = dir.path().join("log.000001");
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x41;
        fs::write(&path, &damaged).expect("write the damaged log");
        let (_, recovery) = open(dir.path());
        assert_eq!(recovery.records, every_kind()[1..4], "byte {at}");
        let cut = format!("log.000001: cut a torn record at byte {last} (");
        let warned = recovery.warnings.len() == 1 && recovery.warnings[0].contains(&cut);
        assert!(warned, "byte {at}: {:?}", recovery.warnings);
    }
}

#[test]
fn a_damaged_byte_of_a_version_1_log_is_refused_as_always() {
    let records = &every_kind()[1..5];
    let bytes = v1_segment(records);
    let starts: Vec<usize> = (0..records.len())
        .map(|n| v1_segment(&records[..n]).len())
        .collect();
    assert_every_flip_is_reported(&bytes, &starts, &V1_FIELDS, 0..bytes.len());
}

#[test]
fn a_damaged_end_marker_or_damaged_zeros_lose_no_record() {
    let source = tempdir();
    let (bytes, _, end) = four_records(source.path(), &every_kind()[1..5]);
    for at in end..end + 2 * MARKER {
        let dir = tempdir();
        let path = dir.path().join("log.000001");
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x41;
        fs::write(&path, &damaged).expect("write the damaged log");
        let (_, recovery) = open(dir.path());
        assert_eq!(recovery.records, every_kind()[1..5], "byte {at}");
        let warned = !recovery.warnings.is_empty();
        assert_eq!(
            warned,
            at < end + MARKER,
            "byte {at}: {:?}",
            recovery.warnings
        );
    }
}

#[test]
fn the_checksum_mismatch_is_explained() {
    let dir = tempdir();
    let records = [
        Record::Abort { tid: TxnId(2) },
        Record::End { tid: TxnId(3) },
    ];
    let (mut bytes, starts, _) = four_records(dir.path(), &records);
    let end = starts[1];
    bytes[end - 1] ^= 0x40;
    fs::write(dir.path().join("log.000001"), &bytes).expect("write");
    let (_, offset, detail) = corrupt(Wal::open(dir.path()));
    let payload = end - HEADER - FRAME;
    assert_eq!(offset, HEADER as u64);
    assert_eq!(
        detail,
        format!(
            "checksum mismatch in a record of {payload} bytes, yet a record or end marker \
             written later in this segment follows at byte {end}: the log is damaged, not \
             cut short"
        )
    );
    let error = Wal::open(dir.path())
        .expect_err("still corrupt")
        .to_string();
    assert!(
        error.contains("log.000001 is corrupt at byte 24"),
        "{error}"
    );
}

#[test]
fn a_version_1_checksum_mismatch_is_explained() {
    let dir = tempdir();
    let mut bytes = v1_segment(&[Record::Abort { tid: TxnId(2) }]);
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    fs::write(dir.path().join("log.000001"), &bytes).expect("write");
    let (_, offset, detail) = corrupt(Wal::open(dir.path()));
    assert_eq!(offset, 12);
    assert_eq!(detail, "checksum mismatch in a record of 2 bytes");
}

#[test]
fn a_newer_format_version_is_refused() {
    let dir = tempdir();
    let mut bytes = logged_bytes(dir.path(), &every_kind());
    bytes[8] = 9;
    fs::write(dir.path().join("log.000001"), &bytes).expect("write");
    let (_, offset, detail) = corrupt(Wal::open(dir.path()));
    assert_eq!(offset, 8);
    assert_eq!(
        detail,
        "log format version 9 is newer than this kv2pc understands (3)"
    );
}

#[test]
fn a_length_above_the_limit_before_the_end_marker_is_damage() {
    let dir = tempdir();
    let (mut bytes, starts, _) = four_records(dir.path(), &every_kind()[..2]);
    let last = starts[0];
    bytes[last..last + 4].copy_from_slice(&(kv2pc::wal::MAX_RECORD_BYTES + 1).to_le_bytes());
    fs::write(dir.path().join("log.000001"), &bytes).expect("write");
    let (_, offset, detail) = corrupt(Wal::open(dir.path()));
    assert_eq!(offset, last as u64);
    assert!(detail.contains("above the limit"), "{detail}");
}

#[test]
fn a_version_1_length_above_the_limit_is_damage_not_a_torn_tail() {
    let dir = tempdir();
    let mut bytes = v1_segment(&every_kind()[..2]);
    let end = bytes.len() as u64;
    bytes.extend_from_slice(&(kv2pc::wal::MAX_RECORD_BYTES + 1).to_le_bytes());
    bytes.extend_from_slice(&[0xaa; 6]);
    fs::write(dir.path().join("log.000001"), &bytes).expect("write");
    let (_, offset, detail) = corrupt(Wal::open(dir.path()));
    assert_eq!(offset, end);
    assert!(detail.contains("above the limit"), "{detail}");
}

/// The warning recovery gives for a segment cut at `cut` whose whole records end at
/// `kept`: a rewritten header if the cut is inside the `header`, a cut record if bytes
/// past `kept` were dropped (and `counts` says the cut is not a clean end), else none.
fn torn_warning(
    path: &std::path::Path,
    cut: usize,
    kept: usize,
    header: usize,
    counts: bool,
) -> Option<String> {
    if cut < header {
        Some(format!(
            "node log {}: rewrote a torn segment header ({cut} bytes)",
            path.display()
        ))
    } else if cut > kept && counts {
        let dropped = cut - kept;
        Some(format!(
            "node log {}: cut a torn record at byte {kept} ({dropped} bytes)",
            path.display()
        ))
    } else {
        None
    }
}
