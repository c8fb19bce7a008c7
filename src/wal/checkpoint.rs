//! The checkpoint file: a [`Snapshot`] of what recovery needs from the log before it, and
//! the number of the first segment after it.
//!
//! The file is a header with its own magic (`KV2PCCKP`) and one frame, framed like a log
//! record, whose payload is `(first_segment, snapshot)`. It is written to
//! `checkpoint.tmp`, fsynced, renamed over `checkpoint` and the directory fsynced, so the
//! `checkpoint` file is always whole: the old one or the new one. Hence anything wrong
//! with it, even a cut-off tail, is damage, never a torn write.
//!
//! Recording the first segment in the checkpoint (rather than deleting older segments
//! first) makes every step of a checkpoint safe to crash after: segments numbered below
//! it are already covered, and recovery ignores and removes them.

use super::Snapshot;
use super::codec;
use super::files::LogDir;
use super::frame::{self, CHECKPOINT_MAGIC, Damage, Frame, HeaderCheck};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// The largest checkpoint payload. A node whose snapshot grows past it cannot checkpoint
/// (its log keeps growing); the limit only guards allocation when reading.
pub const MAX_CHECKPOINT_BYTES: u32 = 1 << 30;

/// A checkpoint read back from disk.
#[derive(Debug, PartialEq, Eq, Deserialize)]
pub struct Checkpoint {
    /// The first segment recovery replays after the snapshot.
    pub first_segment: u64,
    /// The node's state at the checkpoint.
    pub snapshot: Snapshot,
}

/// The same fields as [`Checkpoint`], borrowed for writing; serde encodes `&T` as `T`.
#[derive(Serialize)]
struct CheckpointRef<'a> {
    first_segment: u64,
    snapshot: &'a Snapshot,
}

/// Writes a checkpoint durably: `checkpoint.tmp`, fsync, rename, directory fsync.
pub fn write(dir: &mut LogDir, first_segment: u64, snapshot: &Snapshot) -> Result<()> {
    let contents = encode(first_segment, snapshot)?;
    let tmp = dir.checkpoint_tmp_path();
    let context = || format!("writing the checkpoint {}", tmp.display());
    let file = dir.create_file(&tmp)?;
    (file.write_at(&contents, 0)).map_err(|e| Error::io(context(), e))?;
    dir.sync_file(&*file, &tmp)?;
    let path = dir.checkpoint_path();
    dir.disk().rename(&tmp, &path).map_err(|e| {
        Error::io(
            format!("renaming {} to {}", tmp.display(), path.display()),
            e,
        )
    })?;
    dir.sync_dir()
}

/// Reads the checkpoint, if there is one.
pub fn read(dir: &LogDir) -> Result<Option<Checkpoint>> {
    let path = dir.checkpoint_path();
    match dir.read_if_present(&path)? {
        Some(bytes) => parse(&bytes)
            .map(Some)
            .map_err(|damage| damage.in_file(&path)),
        None => Ok(None),
    }
}

fn encode(first_segment: u64, snapshot: &Snapshot) -> Result<Vec<u8>> {
    let mut bytes = frame::header(CHECKPOINT_MAGIC).to_vec();
    let contents = CheckpointRef {
        first_segment,
        snapshot,
    };
    frame::push_frame(&mut bytes, &contents, MAX_CHECKPOINT_BYTES)
        .map_err(|e| Error::InvalidInput(format!("cannot write a checkpoint: {e}")))?;
    Ok(bytes)
}

fn parse(bytes: &[u8]) -> std::result::Result<Checkpoint, Damage> {
    let cut = |offset| Damage {
        offset,
        detail: "the checkpoint is cut short".into(),
    };
    if frame::check_header(bytes, CHECKPOINT_MAGIC)? == HeaderCheck::Torn {
        return Err(cut(0));
    }
    let at = frame::HEADER_LEN as usize;
    let (payload, end) = match frame::read_frame(bytes, at, MAX_CHECKPOINT_BYTES)? {
        Frame::Whole { payload, end } => (payload, end),
        Frame::End | Frame::Cut => return Err(cut(at as u64)),
    };
    if end != bytes.len() {
        let detail = format!(
            "{} unexpected bytes after the checkpoint",
            bytes.len() - end
        );
        return Err(Damage {
            offset: end as u64,
            detail,
        });
    }
    let checkpoint: Checkpoint =
        codec::decode_limited::<_, { MAX_CHECKPOINT_BYTES as usize }>(payload).map_err(|e| {
            Damage {
                offset: at as u64,
                detail: format!("undecodable checkpoint: {e}"),
            }
        })?;
    if checkpoint.first_segment == 0 {
        let detail = "the checkpoint names segment 0, which never exists".into();
        return Err(Damage {
            offset: at as u64,
            detail,
        });
    }
    Ok(checkpoint)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::TxnId;
    use crate::wal::Record;

    fn snapshot() -> Snapshot {
        Snapshot {
            data: vec![("k".into(), "v".into(), 3)],
            prepared: vec![Record::Abort { tid: TxnId(1) }],
            decisions: Vec::new(),
            tid_lease: 64,
            clock: 9,
        }
    }

    #[test]
    fn a_checkpoint_parses_back() {
        let bytes = encode(4, &snapshot()).expect("encode");
        let parsed = parse(&bytes).expect("parse");
        assert_eq!(
            parsed,
            Checkpoint {
                first_segment: 4,
                snapshot: snapshot()
            }
        );
    }

    #[test]
    fn any_cut_or_extension_is_damage() {
        let bytes = encode(4, &snapshot()).expect("encode");
        for cut in 0..bytes.len() {
            assert!(parse(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        let err = parse(&longer).expect_err("trailing byte");
        assert_eq!(err.offset, bytes.len() as u64);
    }
}
