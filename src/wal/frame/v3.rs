//! Format version 3 of a log segment: version 2 ([`super::v2`], whose reader it shares)
//! with one more field in every frame header and end marker, `synced`: the offset in the
//! segment up to which the log was known durable (fsynced) when the frame was written.
//!
//! The field is what lets recovery tell a torn write from damage whatever parts of the
//! write reached the disk. A frame that does not check out is damage only if a record or
//! end marker written *after an fsync that covered it* follows (its `synced` is past the
//! failed frame's offset). Records of the same unsynced write, or of later unsynced ones,
//! carry a `synced` at or before it: they prove nothing, and the tail is cut. So a power
//! loss never stops a node, and damage to a record is still refused once a later write
//! shows the record had been fsynced. Damage in the writes since the last fsync that a
//! later write recorded cannot be told from a torn write, and is cut like one.

use super::v2::{self, Layout};
use super::{Damage, Scanned};

/// The format version of preallocated segments with synced positions.
pub const VERSION: u32 = 3;
/// The length of the segment header: as in version 2.
pub const HEADER_LEN: u64 = v2::HEADER_LEN;
/// The length of a frame header: payload length (`u32` LE), CRC (`u32` LE), synced
/// position (`u64` LE).
pub const FRAME_HEADER_LEN: u64 = 16;
/// The bytes version 3 adds to every frame header. The log's size ([`crate::wal::Wal::size`])
/// does not count them, so that it reads the same in every version (`STATUS` shows it).
pub const SYNCED_LEN: u64 = 8;
/// The length of an end marker: a frame header with a zero length and no payload.
pub const MARKER_LEN: u64 = FRAME_HEADER_LEN;

/// The layout of version 3 frames.
pub const V3: Layout = Layout {
    version: VERSION,
    head: FRAME_HEADER_LEN as usize,
};

const FRAME: usize = FRAME_HEADER_LEN as usize;

/// The header of segment `number`.
pub fn header(number: u64) -> [u8; HEADER_LEN as usize] {
    v2::header_of(VERSION, number)
}

/// Fills in the synced position and the CRC of every frame in `frames`, which will be
/// written at `offset` of segment `number` while the log is durable up to `synced`. The
/// frames were laid out by [`super::push_unsealed_with`] with a 16-byte header.
pub fn seal(frames: &mut [u8], number: u64, offset: u64, synced: u64) {
    let mut at = 0;
    while at < frames.len() {
        let len = u32::from_le_bytes(frames[at..at + 4].try_into().expect("4 bytes"));
        let end = at + FRAME + len as usize;
        frames[at + 8..at + FRAME].copy_from_slice(&synced.to_le_bytes());
        let (head, payload) = frames[at..end].split_at(FRAME);
        let crc = V3.crc(number, offset + at as u64, head, payload);
        frames[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
        at = end;
    }
}

/// The end marker at `offset` of segment `number`, written while the log is durable up to
/// `synced`: a zero length, a check value that is never zero (so a marker is never
/// mistaken for preallocated zeros), and the synced position.
pub fn marker(number: u64, offset: u64, synced: u64) -> [u8; MARKER_LEN as usize] {
    let mut bytes = [0u8; MARKER_LEN as usize];
    bytes[8..].copy_from_slice(&synced.to_le_bytes());
    let check = V3.crc(number, offset, &bytes, &[]) | 1;
    bytes[4..8].copy_from_slice(&check.to_le_bytes());
    bytes
}

/// Reads the records of version 3 segment `number`, whose header is checked.
pub fn scan(bytes: &[u8], number: u64) -> Result<Scanned, Damage> {
    v2::scan_as(bytes, number, V3)
}
