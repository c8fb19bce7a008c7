//! The one place that knows how values become bytes: the bincode 2 configuration of every
//! kv2pc file and of every frame on the wire (`wire`), and the encode and decode calls
//! that use it.
//!
//! Upstream bincode is no longer developed, so nothing else in the crate names it: a
//! change of encoder is a change to this file (and a new log format version).
//!
//! The configuration is `bincode::config::standard()`: little-endian, variable-length
//! integers, enums written as their variant index. That last point is why the order of
//! `Record`'s variants is part of the on-disk format.
//!
//! Decoding reads bytes from disk, which may be anything. Bincode allocates a string's
//! buffer from the length written in front of it before reading it, so every decode runs
//! with a byte limit: a damaged length fails with an error instead of asking for
//! exabytes. Through serde, only strings and byte buffers claim against the limit, so a
//! limit equal to the largest payload the frame allows rejects nothing valid.

use bincode::config::{Configuration, standard};
use bincode::error::DecodeError;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The bincode configuration of every kv2pc file.
pub fn config() -> Configuration {
    standard()
}

/// Appends the encoding of `value` to `buf`, reusing its allocation.
pub fn encode_into<T: Serialize + ?Sized>(value: &T, buf: &mut Vec<u8>) -> Result<(), String> {
    bincode::serde::encode_into_std_write(value, buf, config())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Decodes one value that must fill `bytes` exactly, allocating at most
/// [`MAX_RECORD_BYTES`](super::MAX_RECORD_BYTES) for its strings.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    decode_limited::<T, { super::MAX_RECORD_BYTES as usize }>(bytes)
}

/// Decodes one value that must fill `bytes` exactly, allocating at most `LIMIT` bytes for
/// its strings. Trailing bytes are an error: a frame holds exactly one value.
pub fn decode_limited<T: DeserializeOwned, const LIMIT: usize>(bytes: &[u8]) -> Result<T, String> {
    match decode_prefix::<T, LIMIT>(bytes) {
        Prefix::Whole { value, len } if len == bytes.len() => Ok(value),
        Prefix::Whole { len, .. } => Err(format!(
            "{} unexpected bytes after the value",
            bytes.len() - len
        )),
        Prefix::Incomplete => Err("the value ends early".to_string()),
        Prefix::Invalid(detail) => Err(detail),
    }
}

/// What the start of a byte string holds, for telling a torn write from damage.
#[derive(Debug)]
pub enum Prefix<T> {
    /// A whole value, `len` bytes long; any bytes after it were not read.
    Whole {
        /// The value.
        value: T,
        /// How many bytes it took.
        len: usize,
    },
    /// The bytes are the beginning of a value that needs more: what a cut-off write leaves.
    Incomplete,
    /// The bytes cannot be the beginning of any value.
    Invalid(String),
}

/// Decodes a value from the start of `bytes`, saying whether the bytes ran out first.
///
/// Bincode decodes strictly from front to back and an encoding has exactly one length, so
/// every proper prefix of a valid encoding is [`Prefix::Incomplete`].
pub fn decode_prefix<T: DeserializeOwned, const LIMIT: usize>(bytes: &[u8]) -> Prefix<T> {
    match bincode::serde::decode_from_slice(bytes, config().with_limit::<LIMIT>()) {
        Ok((value, len)) => Prefix::Whole { value, len },
        Err(DecodeError::UnexpectedEnd { .. }) => Prefix::Incomplete,
        Err(e) => Prefix::Invalid(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::TxnId;
    use crate::wal::Record;

    #[test]
    fn encodes_into_the_same_buffer_and_decodes_back() {
        let mut buf = Vec::with_capacity(64);
        let first = Record::Commit {
            tid: TxnId(7),
            commit_ts: 9,
        };
        let second = Record::TidLease { upto: 300 };
        encode_into(&first, &mut buf).expect("encode");
        let split = buf.len();
        encode_into(&second, &mut buf).expect("encode");
        assert_eq!(decode::<Record>(&buf[..split]), Ok(first));
        assert_eq!(decode::<Record>(&buf[split..]), Ok(second));
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut buf = Vec::new();
        encode_into(&Record::End { tid: TxnId(1) }, &mut buf).expect("encode");
        buf.push(0);
        let err = decode::<Record>(&buf).expect_err("trailing byte");
        assert!(err.contains("1 unexpected bytes"), "{err}");
    }

    #[test]
    fn every_proper_prefix_is_incomplete() {
        let mut buf = Vec::new();
        let record = Record::OnePhaseCommit {
            tid: TxnId(3),
            writes: vec![("k".into(), Some("v".repeat(300))), ("d".into(), None)],
            commit_ts: 1 << 40,
        };
        encode_into(&record, &mut buf).expect("encode");
        for cut in 0..buf.len() {
            let prefix = decode_prefix::<Record, 1024>(&buf[..cut]);
            assert!(
                matches!(prefix, Prefix::Incomplete),
                "cut {cut}: {prefix:?}"
            );
        }
    }

    #[test]
    fn a_huge_string_length_is_refused_without_allocating_it() {
        // OnePhaseCommit (variant 3), tid 1, one write whose key claims 2^62 bytes
        // (253 is the varint marker of a following u64).
        let mut bytes = vec![3u8, 1, 1, 253];
        bytes.extend_from_slice(&(1u64 << 62).to_le_bytes());
        let prefix = decode_prefix::<Record, 1024>(&bytes);
        assert!(matches!(prefix, Prefix::Invalid(_)), "{prefix:?}");
    }
}
