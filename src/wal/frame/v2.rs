//! Format version 2 of a log segment: preallocated, recyclable files whose live log is
//! bound to the segment's number; and the reader it shares with version 3
//! ([`super::v3`]), which adds to every frame the log position known durable when it was
//! written. The rules are stated in the parent module's docs and in `logs/FORMAT.md`;
//! this file implements them, for both versions, through a [`Layout`].
//!
//! The segment number is the *salt*: every frame's CRC covers it and the frame's offset,
//! so bytes left in a recycled file by an earlier use (another number) or bytes that
//! moved never check out. After the last record of every write comes an *end marker*,
//! which the next write overwrites; a marker that checks out at the position where the
//! walk of frames stops proves that nothing after it was ever fsynced.

use super::{Damage, FRAME_HEADER_LEN, LOG_MAGIC, MAX_RECORD_BYTES, Scanned, Tail, damage};
use crate::wal::{Record, codec};

/// The format version of preallocated segments.
pub const VERSION: u32 = 2;
/// The length of a version 2 segment header: magic, version, segment number, CRC.
pub const HEADER_LEN: u64 = 24;
/// The length of an end marker.
pub const MARKER_LEN: u64 = FRAME_HEADER_LEN;

/// How the frames of a preallocated segment are laid out: version 2 or 3.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The format version.
    pub version: u32,
    /// The length of a frame header, and of an end marker: 8 (length, CRC), or 16 in
    /// version 3 (length, CRC, synced position).
    pub head: usize,
}

/// Version 2: a frame header is its length and CRC.
pub const V2: Layout = Layout {
    version: VERSION,
    head: FRAME_HEADER_LEN as usize,
};

/// The header of segment `number`.
pub fn header(number: u64) -> [u8; HEADER_LEN as usize] {
    header_of(VERSION, number)
}

/// The header of segment `number` in format `version` (2 or 3: the same layout).
pub fn header_of(version: u32, number: u64) -> [u8; HEADER_LEN as usize] {
    let mut bytes = [0u8; HEADER_LEN as usize];
    bytes[..8].copy_from_slice(&LOG_MAGIC);
    bytes[8..12].copy_from_slice(&version.to_le_bytes());
    bytes[12..20].copy_from_slice(&number.to_le_bytes());
    let crc = crc32fast::hash(&bytes[..20]);
    bytes[20..].copy_from_slice(&crc.to_le_bytes());
    bytes
}

/// Checks the number and CRC of a version 2 or 3 header whose magic and version are
/// checked.
pub fn check_header(bytes: &[u8], number: u64) -> Result<(), Damage> {
    let Some(found) = bytes.get(..HEADER_LEN as usize) else {
        let detail = "the segment header is cut short".into();
        return Err(damage(12, detail));
    };
    let crc = u32::from_le_bytes([found[20], found[21], found[22], found[23]]);
    if crc32fast::hash(&found[..20]) != crc {
        return Err(damage(12, "checksum mismatch in the segment header".into()));
    }
    let named = u64::from_le_bytes(found[12..20].try_into().expect("8 bytes"));
    if named != number {
        let detail = format!("the header says segment {named}, but the file is segment {number}");
        return Err(damage(12, detail));
    }
    Ok(())
}

/// Fills in the CRC of every frame in `frames`, which will be written at `offset` of
/// segment `number`. The frames were laid out by [`super::push_unsealed`].
pub fn seal(frames: &mut [u8], number: u64, offset: u64) {
    let mut at = 0;
    while at < frames.len() {
        let len = u32::from_le_bytes(frames[at..at + 4].try_into().expect("4 bytes"));
        let end = at + FRAME + len as usize;
        let crc = frame_crc(
            number,
            offset + at as u64,
            &frames[at..at + 4],
            &frames[at + FRAME..end],
        );
        frames[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
        at = end;
    }
}

/// The end marker at `offset` of segment `number`: a zero length and a check value that
/// is never zero, so a marker is never mistaken for preallocated zeros.
pub fn marker(number: u64, offset: u64) -> [u8; MARKER_LEN as usize] {
    let mut bytes = [0u8; MARKER_LEN as usize];
    bytes[4..].copy_from_slice(&marker_check(number, offset).to_le_bytes());
    bytes
}

fn marker_check(number: u64, offset: u64) -> u32 {
    frame_crc(number, offset, &[0; 4], &[]) | 1
}

const FRAME: usize = FRAME_HEADER_LEN as usize;

/// CRC-32 over the salt (the segment number), the frame's offset, its length bytes and
/// its payload.
fn frame_crc(number: u64, offset: u64, len_bytes: &[u8], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&number.to_le_bytes());
    hasher.update(&offset.to_le_bytes());
    hasher.update(len_bytes);
    hasher.update(payload);
    hasher.finalize()
}

/// What the bytes at an offset of a segment are.
enum Found<'a> {
    /// A record written there in this segment, when the log was durable up to `synced`.
    Record {
        payload: &'a [u8],
        end: usize,
        synced: u64,
    },
    /// The end marker written there in this segment, when the log was durable up to
    /// `synced`.
    Marker { synced: u64 },
    /// Neither; why not.
    Neither(String),
}

impl Layout {
    /// The position known durable when the frame whose header is `head` was written; in
    /// version 2, which does not say, every frame might have followed any fsync.
    fn synced(self, head: &[u8]) -> u64 {
        match head.get(8..16) {
            Some(bytes) if self.head == 16 => u64::from_le_bytes(bytes.try_into().expect("8")),
            _ => u64::MAX,
        }
    }

    /// The CRC of a frame (or, with no payload, the check of a marker) at `offset` of
    /// segment `number`, over the header's fields and the payload.
    pub(super) fn crc(self, number: u64, offset: u64, head: &[u8], payload: &[u8]) -> u32 {
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&number.to_le_bytes());
        hasher.update(&offset.to_le_bytes());
        hasher.update(&head[..4]);
        hasher.update(&head[8..self.head]);
        hasher.update(payload);
        hasher.finalize()
    }
}

fn found_at(bytes: &[u8], at: usize, number: u64, layout: Layout) -> Found<'_> {
    let Some(head) = bytes.get(at..at + layout.head) else {
        return Found::Neither("a record header cut short by the end of the file".into());
    };
    let len = u32::from_le_bytes(head[..4].try_into().expect("4 bytes"));
    let stored = u32::from_le_bytes(head[4..8].try_into().expect("4 bytes"));
    let synced = layout.synced(head);
    if len == 0 {
        if stored == layout.crc(number, at as u64, head, &[]) | 1 {
            return Found::Marker { synced };
        }
        return Found::Neither(if stored == 0 {
            "zeros where a record or the end marker belongs".into()
        } else {
            "a damaged end marker".into()
        });
    }
    if len > MAX_RECORD_BYTES {
        return Found::Neither(format!(
            "record length {len} is above the limit of {MAX_RECORD_BYTES} bytes"
        ));
    }
    let end = at + layout.head + len as usize;
    let Some(payload) = bytes.get(at + layout.head..end) else {
        return Found::Neither(format!(
            "a record of {len} bytes runs past the end of the file"
        ));
    };
    if layout.crc(number, at as u64, head, payload) != stored {
        return Found::Neither(format!("checksum mismatch in a record of {len} bytes"));
    }
    Found::Record {
        payload,
        end,
        synced,
    }
}

/// Reads the records of version 2 segment `number`, whose header is checked.
pub fn scan(bytes: &[u8], number: u64) -> Result<Scanned, Damage> {
    scan_as(bytes, number, V2)
}

/// Reads the records of segment `number` laid out as `layout`, whose header is checked.
pub fn scan_as(bytes: &[u8], number: u64, layout: Layout) -> Result<Scanned, Damage> {
    let mut records = Vec::new();
    let mut at = HEADER_LEN as usize;
    let (tail, torn_bytes, appendable) = loop {
        if at == bytes.len() {
            break (Tail::Clean, 0, true);
        }
        match found_at(bytes, at, number, layout) {
            Found::Record { payload, end, .. } => {
                records.push((at as u64, super::decode_record(payload, at)?));
                at = end;
            }
            Found::Marker { .. } => {
                let rest = &bytes[at + layout.head..];
                break (Tail::Clean, 0, first_nonzero(rest).is_none());
            }
            Found::Neither(why) => {
                let later = later_writes(bytes, at, number, layout);
                if let Some(proof) = later.proof {
                    let detail = format!(
                        "{why}, yet a record or end marker written later in this segment \
                         follows at byte {proof}: the log is damaged, not cut short"
                    );
                    return Err(damage(at as u64, detail));
                }
                let extent = torn_extent(&bytes[at..], layout.head);
                break (Tail::TornRecord, extent, later.first.is_none());
            }
        }
    };
    Ok(Scanned {
        records,
        version: layout.version,
        end: at as u64,
        tail,
        torn_bytes,
        appendable,
    })
}

/// What lies past an offset where the walk of frames stopped.
struct Later {
    /// The first record or end marker of this segment past it, if any.
    first: Option<usize>,
    /// The first one written after an fsync that covered the offset: proof that the
    /// bytes there were durable, so that their failure is damage.
    proof: Option<usize>,
}

/// Searches past `end` for records and end markers of segment `number` (see [`Later`]).
/// In version 2 every one is a proof; in version 3 only one whose synced position is past
/// `end`, so the search goes on past those of the same unsynced writes.
fn later_writes(bytes: &[u8], end: usize, number: u64, layout: Layout) -> Later {
    let mut later = Later {
        first: None,
        proof: None,
    };
    let mut from = end + 1;
    while let Some((at, synced)) = find_written_as(bytes, from, number, layout) {
        later.first.get_or_insert(at);
        if synced > end as u64 {
            later.proof = Some(at);
            break;
        }
        from = at + 1;
    }
    later
}

/// The first offset from `from` on holding a record or an end marker written in version
/// 2 segment `number`, if any.
pub fn find_written(bytes: &[u8], from: usize, number: u64) -> Option<usize> {
    find_written_as(bytes, from, number, V2).map(|(at, _)| at)
}

/// The first offset from `from` on holding a record or an end marker written in segment
/// `number` laid out as `layout`, if any, and the synced position it carries. Zero runs
/// are skipped a word at a time, and a candidate's payload must decode as one record
/// before its CRC is computed, so stale bytes cost about as much as reading them.
fn find_written_as(bytes: &[u8], from: usize, number: u64, layout: Layout) -> Option<(usize, u64)> {
    let mut at = from;
    while at + layout.head <= bytes.len() {
        // A frame or marker has a non-zero byte in its first eight.
        let nonzero = at + first_nonzero(&bytes[at..])?;
        at = at.max(nonzero.saturating_sub(FRAME - 1));
        if let Some(synced) = written_at(bytes, at, number, layout) {
            return Some((at, synced));
        }
        at += 1;
    }
    None
}

fn written_at(bytes: &[u8], at: usize, number: u64, layout: Layout) -> Option<u64> {
    let head = bytes.get(at..at + layout.head)?;
    let len = u32::from_le_bytes(head[..4].try_into().expect("4 bytes"));
    let body = at + layout.head;
    let fits = len <= MAX_RECORD_BYTES && body + (len as usize) <= bytes.len();
    let decodes = || len == 0 || codec::decode::<Record>(&bytes[body..body + len as usize]).is_ok();
    if !(fits && decodes()) {
        return None;
    }
    match found_at(bytes, at, number, layout) {
        Found::Record { synced, .. } | Found::Marker { synced } => Some(synced),
        Found::Neither(_) => None,
    }
}

/// How many bytes the torn write at the start of `rest` covers, as far as the file holds
/// them: the frame its header claims, or nothing if there are only zeros.
fn torn_extent(rest: &[u8], frame: usize) -> u64 {
    let Some(head) = rest.get(..frame) else {
        return rest.len() as u64;
    };
    let len = u32::from_le_bytes(head[..4].try_into().expect("4 bytes"));
    let extent = match len {
        0 if head.iter().all(|b| *b == 0) => 0,
        1..=MAX_RECORD_BYTES => frame + len as usize,
        _ => frame,
    };
    extent.min(rest.len()) as u64
}

/// The index of the first non-zero byte, scanning eight bytes at a time.
pub fn first_nonzero(bytes: &[u8]) -> Option<usize> {
    let mut chunks = bytes.chunks_exact(64);
    let mut base = 0;
    for chunk in &mut chunks {
        let words = chunk.chunks_exact(8);
        if words.fold(0, |any, w| {
            any | u64::from_ne_bytes(w.try_into().expect("8"))
        }) != 0
        {
            return chunk.iter().position(|b| *b != 0).map(|i| base + i);
        }
        base += 64;
    }
    let rest = chunks.remainder();
    rest.iter().position(|b| *b != 0).map(|i| base + i)
}
