//! The byte layout of log segments and checkpoints, and the rules that tell a torn write
//! from damage. Pure functions over byte slices: no I/O here, so every rule is tested on
//! bytes directly. `logs/FORMAT.md` is the reader's version of this file.
//!
//! A frame is `len: u32 LE`, `crc: u32 LE` and `len` bytes of payload (one bincode value,
//! see [`codec`]); the CRC covers the length, so a damaged length is caught like damaged
//! data. A checkpoint is a 12-byte header (8 magic bytes, the format version as a `u32`
//! LE) and one frame whose CRC covers the length and payload; its layout is the same in
//! every version. Log segments come in three versions.
//!
//! # Torn or damaged
//!
//! A crash while appending leaves the last write cut short, or (since disks persist
//! sectors in any order) with any of its sectors missing. Such a tail is *torn*: recovery
//! may cut it off, because nothing in it was fsynced, so nothing in it was acknowledged.
//! Anything else that does not check out is *damage*, and the node refuses to start
//! rather than silently lose a record that was fsynced. Whether a torn tail is acceptable
//! depends on where it is (only the last segment may have one), which is the caller's
//! decision.
//!
//! ## Version 1: files that grow
//!
//! A segment is the 12-byte header and frames to the end of the file, appended to a file
//! that grows. The file's length, which `fdatasync` makes durable with the data, says
//! where the log ends. A tail is torn when it is:
//!
//! - shorter than a frame header (or than the file header, if it is a prefix of it);
//! - a frame whose length runs past the end of the file and whose payload bytes are a
//!   proper prefix of an encoded record. Bincode decodes front to back and an encoding
//!   has one length, so a cut-off record always decodes as "needs more bytes". A length
//!   that was damaged instead usually leaves a whole record (and more) in place, which
//!   decodes, and is reported as damage;
//! - all zero bytes to the end of the file (what some file systems leave when a crash
//!   follows an append that grew the file; no frame is all zeros, since a valid CRC of a
//!   zero length is not zero).
//!
//! A whole frame with a bad checksum is damage, wherever it is.
//!
//! ## Version 2: preallocated, recycled files
//!
//! The file is longer than the log: past the log come zeros (preallocated space) or, in a
//! recycled file, stale bytes of its earlier use, so the file's length says nothing. In
//! their place:
//!
//! - The 24-byte header holds the magic, version 2, the segment number (`u64` LE, which
//!   must match the file name) and a CRC-32 of those 20 bytes.
//! - A frame's CRC covers the segment number, the frame's offset in the file (both `u64`
//!   LE), the length bytes and the payload. A frame *checks out at offset p of segment n*
//!   when its length is 1 to [`MAX_RECORD_BYTES`], it fits in the file, and its CRC
//!   matches for n and p. Segment numbers are never reused, so nothing a recycled file
//!   held before, and no frame copied or shifted, checks out.
//! - Every write ends with an *end marker* just after its last record: a zero length and
//!   the CRC of (segment number, offset, zero length) with its lowest bit set, so it is
//!   never zeros. The next write starts over it.
//!
//! A header that is the beginning of a header followed only by zeros (or the end of the
//! file) is torn: the segment's creation was cut off, and it holds no records. Any other
//! header that does not check out is damage.
//!
//! Recovery walks frames from the header while they check out. Where the walk stops, at
//! `end`, the log ends:
//!
//! 1. *Cleanly* if an end marker checks out at `end`, or the file ends exactly there.
//!    Nothing past a marker was ever fsynced: the write that followed it would have
//!    replaced it first, and a sync covers the whole write. So the bytes past it are not
//!    read at all.
//! 2. Otherwise the last write was cut or damage hides the rest, and the rest of the
//!    segment is searched: if a frame or an end marker checks out at *any* later offset,
//!    that is **damage** at `end` (a record after it was written later, so it may have
//!    been fsynced: for example a flipped bit in a record followed by more records, or in
//!    the last record followed by its write's marker). The search skips zeros a word at a
//!    time and decodes a candidate before computing its CRC, so it costs about a read.
//! 3. If nothing checks out past `end`, the tail is **torn** and cut at `end`.
//!
//! Known limit of rule 2 in version 2: if a crash persists a later sector of an unsynced
//! write but not an earlier one, its later records check out past a failed one, and the
//! segment is reported as damaged although nothing fsynced was lost. The error names the
//! offset; if nothing from there on was acknowledged, truncating the file there is safe
//! (the file then ends at the end of a record, which reads as a clean end).
//!
//! ## Version 3: the synced position
//!
//! Version 3 ([`v3`], written today) is version 2 with one more field in every frame
//! header and end marker: the offset up to which the segment was known durable when it
//! was written. Rule 2 then counts only a later frame or marker whose synced position is
//! past `end`, one written after an fsync that covered the failed bytes. A power loss
//! keeps everything fsynced, so the walk stops at or past the durable end, and nothing
//! written since carries a synced position past it: whichever sectors of the unsynced
//! writes reached the disk, in whatever order, the tail is torn, never damage. Damage to
//! fsynced bytes is refused once a later write recorded their fsync; damage to the writes
//! since (the last write, or the last few of a group commit) is cut like a torn write.
//! Frames of the torn writes may still check out past `end`: recovery then seals the
//! segment and appends in a new one (see [`super::recover`]).

use super::Record;
use super::codec::{self, Prefix};
use crate::error::Error;
use serde::Serialize;
use std::path::Path;

pub mod v2;
pub mod v3;

/// The magic bytes at the start of every log segment.
pub const LOG_MAGIC: [u8; 8] = *b"KV2PCLOG";
/// The magic bytes at the start of a checkpoint file.
pub const CHECKPOINT_MAGIC: [u8; 8] = *b"KV2PCCKP";
/// The format version this code writes, and the newest it reads.
pub const FORMAT_VERSION: u32 = 3;
/// The length of a checkpoint header and of a version 1 segment header: magic and
/// version. A version 2 segment header is longer ([`v2::HEADER_LEN`]).
pub const HEADER_LEN: u64 = 12;
/// The length of a frame header: payload length and CRC.
pub const FRAME_HEADER_LEN: u64 = 8;
/// The largest payload of a log record. A larger length in a frame header is damage, not
/// a torn write: kv2pc never writes one. The size limits on keys, values and writes per
/// transaction keep every record well below it (a `Prepare` is at most about 68 MiB).
pub const MAX_RECORD_BYTES: u32 = 128 << 20;

/// Something wrong at a byte offset of a file; the caller knows which file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// Where the bad bytes start.
    pub offset: u64,
    /// What is wrong there.
    pub detail: String,
}

impl Damage {
    /// The error for this damage in the file at `path`.
    pub fn in_file(self, path: &Path) -> Error {
        Error::Corrupt {
            path: path.to_path_buf(),
            offset: self.offset,
            detail: self.detail,
        }
    }
}

/// The header of a checkpoint file (`magic` and the current format version).
pub fn header(magic: [u8; 8]) -> [u8; HEADER_LEN as usize] {
    header_with(magic, FORMAT_VERSION)
}

fn header_with(magic: [u8; 8], version: u32) -> [u8; HEADER_LEN as usize] {
    let mut bytes = [0u8; HEADER_LEN as usize];
    bytes[..8].copy_from_slice(&magic);
    bytes[8..].copy_from_slice(&version.to_le_bytes());
    bytes
}

/// What a file's header turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderCheck {
    /// A whole header of a version this code reads; frames start after it.
    Whole,
    /// The file holds only the beginning of a header (or zeros): its creation was cut off.
    Torn,
}

/// Checks the 12-byte header at the start of `bytes` against `magic`: the magic and a
/// version this code reads.
pub fn check_header(bytes: &[u8], magic: [u8; 8]) -> Result<HeaderCheck, Damage> {
    let is_prefix = |version| {
        let expected = header_with(magic, version);
        bytes.len() < expected.len() && expected.starts_with(bytes)
    };
    if is_prefix(1) || is_prefix(2) || is_prefix(FORMAT_VERSION) || all_zero(bytes) {
        return Ok(HeaderCheck::Torn);
    }
    if bytes.len() < HEADER_LEN as usize || bytes[..8] != magic {
        let found = String::from_utf8_lossy(&bytes[..bytes.len().min(8)]).into_owned();
        let wanted = String::from_utf8_lossy(&magic).into_owned();
        let detail =
            format!("the file starts with {found:?}, not {wanted:?}: kv2pc did not write it");
        return Err(damage(0, detail));
    }
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    match version {
        0 => Err(damage(8, "unknown log format version 0".into())),
        v if v > FORMAT_VERSION => Err(damage(
            8,
            format!(
                "log format version {v} is newer than this kv2pc understands ({FORMAT_VERSION})"
            ),
        )),
        _ => Ok(HeaderCheck::Whole),
    }
}

/// Appends one frame holding the encoding of `value` to `buf`, with the version 1
/// checksum (checkpoints and version 1 segments). On error `buf` is left as it was.
pub fn push_frame<T: Serialize + ?Sized>(
    buf: &mut Vec<u8>,
    value: &T,
    limit: u32,
) -> Result<(), String> {
    let start = push_unsealed(buf, value, limit)?;
    let len = [buf[start], buf[start + 1], buf[start + 2], buf[start + 3]];
    let crc = checksum(len, &buf[start + FRAME_HEADER_LEN as usize..]);
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// Appends one frame holding the encoding of `value` to `buf`, with its length and a zero
/// checksum to be filled in later ([`v2::seal`]), and returns where the frame starts. On
/// error `buf` is left as it was.
pub fn push_unsealed<T: Serialize + ?Sized>(
    buf: &mut Vec<u8>,
    value: &T,
    limit: u32,
) -> Result<usize, String> {
    push_unsealed_with(buf, value, limit, FRAME_HEADER_LEN as usize)
}

/// [`push_unsealed`] with a frame header of `head` bytes (16 in version 3, whose synced
/// position [`v3::seal`] fills in with the CRC).
pub fn push_unsealed_with<T: Serialize + ?Sized>(
    buf: &mut Vec<u8>,
    value: &T,
    limit: u32,
    head: usize,
) -> Result<usize, String> {
    let start = buf.len();
    buf.resize(start + head, 0);
    let encoded = codec::encode_into(value, buf).and_then(|()| {
        let len = buf.len() - start - head;
        u32::try_from(len)
            .ok()
            .filter(|len| *len <= limit)
            .ok_or_else(|| format!("a record of {len} bytes is above the limit of {limit}"))
    });
    match encoded {
        Ok(len) => {
            buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
            Ok(start)
        }
        Err(e) => {
            buf.truncate(start);
            Err(e)
        }
    }
}

/// What starts at an offset where a frame is expected.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// The end of the file, exactly.
    End,
    /// A whole frame with a valid checksum.
    Whole {
        /// The payload.
        payload: &'a [u8],
        /// The offset just after the frame.
        end: usize,
    },
    /// A frame header cut short, or a frame whose length runs past the end of the file.
    /// Whether that is a torn write is up to the caller.
    Cut,
}

/// Reads the frame at `at`, checking its length against `limit` and its checksum.
pub fn read_frame(bytes: &[u8], at: usize, limit: u32) -> Result<Frame<'_>, Damage> {
    let rest = &bytes[at.min(bytes.len())..];
    if rest.is_empty() {
        return Ok(Frame::End);
    }
    let Some((head, body)) = rest.split_first_chunk::<{ FRAME_HEADER_LEN as usize }>() else {
        return Ok(Frame::Cut);
    };
    let len_bytes = [head[0], head[1], head[2], head[3]];
    let len = u32::from_le_bytes(len_bytes);
    let stored = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    if len > limit {
        let detail = format!("record length {len} is above the limit of {limit} bytes");
        return Err(damage(at as u64, detail));
    }
    let Some(payload) = body.get(..len as usize) else {
        return Ok(Frame::Cut);
    };
    if checksum(len_bytes, payload) != stored {
        let detail = format!("checksum mismatch in a record of {len} bytes");
        return Err(damage(at as u64, detail));
    }
    let end = at + FRAME_HEADER_LEN as usize + payload.len();
    Ok(Frame::Whole { payload, end })
}

/// The records of one log segment, and how it ends.
#[derive(Debug, PartialEq, Eq)]
pub struct Scanned {
    /// Each whole record with the offset of its frame.
    pub records: Vec<(u64, Record)>,
    /// The segment's format version (the current one for a torn header).
    pub version: u32,
    /// The offset just after the last whole record (or after the header): where the log
    /// ends, and where a torn tail starts.
    pub end: u64,
    /// How the segment ends.
    pub tail: Tail,
    /// How many bytes of a torn write follow `end`, as far as the file holds them.
    pub torn_bytes: u64,
    /// Whether appending may continue at `end`: nothing after it can ever check out as
    /// written in this segment (version 2 only; see the module docs).
    pub appendable: bool,
}

/// How a segment's bytes end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tail {
    /// With a whole record (or a whole header and no records), then (version 2) the end
    /// marker or the end of the file.
    Clean,
    /// Inside the file header: the segment's creation was cut off.
    TornHeader,
    /// Inside a record: an append was cut off at `end`.
    TornRecord,
}

/// Checks the header of segment `number`: its version, or `None` if the header is torn
/// (the beginning of a header followed by zeros or the end of the file, or a file of
/// zeros: its creation was cut off).
pub fn check_segment_header(bytes: &[u8], number: u64) -> Result<Option<u32>, Damage> {
    // Torn: the beginning of a header, then nothing but zeros (or the end of the file).
    let torn = |header: &[u8]| {
        let common = bytes.iter().zip(header).take_while(|(a, b)| a == b).count();
        common < header.len() && v2::first_nonzero(&bytes[common..]).is_none()
    };
    if torn(&header_with(LOG_MAGIC, 1)) || torn(&v2::header(number)) || torn(&v3::header(number)) {
        return Ok(None);
    }
    let version = match check_header(bytes, LOG_MAGIC)? {
        HeaderCheck::Whole => u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]),
        HeaderCheck::Torn => return Ok(None),
    };
    if version >= v2::VERSION {
        v2::check_header(bytes, number)?;
    }
    Ok(Some(version))
}

/// Reads every record of log segment `number`. Damage is an error; a torn tail is
/// reported in [`Scanned::tail`], with the records before it.
pub fn scan_segment(bytes: &[u8], number: u64) -> Result<Scanned, Damage> {
    match check_segment_header(bytes, number)? {
        None => Ok(Scanned {
            records: Vec::new(),
            version: FORMAT_VERSION,
            end: 0,
            tail: Tail::TornHeader,
            torn_bytes: bytes.len() as u64,
            appendable: true,
        }),
        Some(1) => scan_v1(bytes),
        Some(v2::VERSION) => v2::scan(bytes, number),
        Some(_) => v3::scan(bytes, number),
    }
}

/// Reads a version 1 segment, whose header is checked.
fn scan_v1(bytes: &[u8]) -> Result<Scanned, Damage> {
    let mut records = Vec::new();
    let mut at = HEADER_LEN as usize;
    let tail = loop {
        if all_zero(&bytes[at..]) {
            break Tail::TornRecord;
        }
        match read_frame(bytes, at, MAX_RECORD_BYTES)? {
            Frame::End => break Tail::Clean,
            Frame::Cut => {
                check_cut_record(bytes, at)?;
                break Tail::TornRecord;
            }
            Frame::Whole { payload, end } => {
                records.push((at as u64, decode_record(payload, at)?));
                at = end;
            }
        }
    };
    Ok(Scanned {
        records,
        version: 1,
        end: at as u64,
        tail,
        torn_bytes: (bytes.len() - at) as u64,
        appendable: false,
    })
}

fn decode_record(payload: &[u8], at: usize) -> Result<Record, Damage> {
    codec::decode(payload).map_err(|e| {
        let detail = format!("undecodable record of {} bytes: {e}", payload.len());
        damage(at as u64, detail)
    })
}

/// Checks that the cut frame at `at` looks like a write cut off by a crash: a cut frame
/// header, or a payload that is the beginning of a record and no more.
fn check_cut_record(bytes: &[u8], at: usize) -> Result<(), Damage> {
    let rest = &bytes[at..];
    if rest.len() < FRAME_HEADER_LEN as usize {
        return Ok(());
    }
    let payload = &rest[FRAME_HEADER_LEN as usize..];
    let claimed = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
    let detail = match codec::decode_prefix::<Record, { MAX_RECORD_BYTES as usize }>(payload) {
        Prefix::Incomplete => return Ok(()),
        Prefix::Whole { len, .. } => format!(
            "record length {claimed} runs past the end of the file, yet a whole record of \
             {len} bytes is there: the length is damaged"
        ),
        Prefix::Invalid(e) => format!(
            "record length {claimed} runs past the end of the file, and the bytes there \
             cannot begin a record ({e})"
        ),
    };
    Err(damage(at as u64, detail))
}

/// The frame checksum: CRC-32 of the length bytes followed by the payload.
fn checksum(len_bytes: [u8; 4], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len_bytes);
    hasher.update(payload);
    hasher.finalize()
}

fn all_zero(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.iter().all(|b| *b == 0)
}

fn damage(offset: u64, detail: String) -> Damage {
    Damage { offset, detail }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::TxnId;

    fn segment(records: &[Record]) -> Vec<u8> {
        let mut bytes = header_with(LOG_MAGIC, 1).to_vec();
        for record in records {
            push_frame(&mut bytes, record, MAX_RECORD_BYTES).expect("encode");
        }
        bytes
    }

    fn two_records() -> Vec<Record> {
        vec![
            Record::TidLease { upto: 64 },
            Record::Abort { tid: TxnId(4) },
        ]
    }

    #[test]
    fn a_clean_segment_scans_to_its_records_and_offsets() {
        let bytes = segment(&two_records());
        let scanned = scan_segment(&bytes, 1).expect("clean");
        assert_eq!(scanned.tail, Tail::Clean);
        assert_eq!(scanned.end, bytes.len() as u64);
        let offsets: Vec<u64> = scanned.records.iter().map(|(at, _)| *at).collect();
        assert_eq!(offsets[0], HEADER_LEN);
        assert!(offsets[1] > offsets[0]);
        let records: Vec<Record> = scanned.records.into_iter().map(|(_, r)| r).collect();
        assert_eq!(records, two_records());
    }

    #[test]
    fn the_length_is_covered_by_the_checksum() {
        let mut bytes = segment(&[Record::TidLease { upto: 64 }]);
        let at = HEADER_LEN as usize;
        bytes[at] -= 1;
        let err = scan_segment(&bytes, 1).expect_err("shorter length");
        assert_eq!(err.offset, HEADER_LEN);
        assert!(err.detail.contains("checksum mismatch"), "{}", err.detail);
    }

    #[test]
    fn a_length_grown_past_the_end_over_a_whole_record_is_damage() {
        let mut bytes = segment(&two_records());
        let at = HEADER_LEN as usize;
        bytes[at + 1] = 0x10;
        let err = scan_segment(&bytes, 1).expect_err("damaged length");
        assert_eq!(err.offset, HEADER_LEN);
        assert!(
            err.detail.contains("the length is damaged"),
            "{}",
            err.detail
        );
    }

    #[test]
    fn a_zero_tail_is_torn() {
        let mut bytes = segment(&two_records());
        let end = bytes.len() as u64;
        bytes.extend_from_slice(&[0u8; 40]);
        let scanned = scan_segment(&bytes, 1).expect("zeros are torn");
        assert_eq!((scanned.end, scanned.tail), (end, Tail::TornRecord));
        assert_eq!(scanned.records.len(), 2);
    }

    #[test]
    fn headers_are_checked() {
        let good = header_with(LOG_MAGIC, 1);
        assert_eq!(check_header(&good, LOG_MAGIC), Ok(HeaderCheck::Whole));
        assert_eq!(check_header(&good[..5], LOG_MAGIC), Ok(HeaderCheck::Torn));
        assert_eq!(check_header(&[], LOG_MAGIC), Ok(HeaderCheck::Torn));
        assert_eq!(
            check_header(&good, CHECKPOINT_MAGIC).map_err(|d| d.offset),
            Err(0)
        );
        let mut newer = good;
        newer[8] = 9;
        let err = check_header(&newer, LOG_MAGIC).expect_err("newer");
        assert_eq!(err.offset, 8);
        assert_eq!(
            err.detail,
            "log format version 9 is newer than this kv2pc understands (3)"
        );
    }

    #[test]
    fn an_oversized_frame_is_refused_when_written_and_when_read() {
        let mut buf = vec![1, 2, 3];
        let big = Record::OnePhaseCommit {
            tid: TxnId(1),
            writes: vec![("k".into(), Some("v".repeat(100)))],
            commit_ts: 1,
        };
        assert!(push_frame(&mut buf, &big, 50).is_err());
        assert_eq!(buf, vec![1, 2, 3]);
        let mut bytes = segment(&[]);
        bytes.extend_from_slice(&(MAX_RECORD_BYTES + 1).to_le_bytes());
        bytes.extend_from_slice(&[1, 2, 3, 4, 5]);
        let err = scan_segment(&bytes, 1).expect_err("too long");
        assert!(err.detail.contains("above the limit"), "{}", err.detail);
    }
}
