//! Frames: writing them into a buffer, and reading them from an untrusted stream.

use super::hello::wire;
use super::{FRAME_HEADER_LEN, Frame, HELLO_LEN, Hello, MAX_FRAME_BYTES, WIRE_VERSION};
use crate::error::{Error, Result};
use crate::wal::codec;
use std::io::{ErrorKind, Read};
use std::net::SocketAddr;

/// A payload buffer that grew past this is given back after its frame, so that one
/// large scan answer does not pin its memory for the connection's life.
const KEEP_BUFFER_BYTES: usize = 1024 * 1024;

/// Appends `frame`, header and payload, to `buf`. A frame larger than
/// [`MAX_FRAME_BYTES`] is refused (and `buf` left as it was): only a scan answer can be.
pub fn encode_frame(frame: &Frame, buf: &mut Vec<u8>) -> Result<()> {
    let start = buf.len();
    buf.extend_from_slice(&[0; FRAME_HEADER_LEN]);
    let encoded = codec::encode_into(frame, buf);
    let len = buf.len() - start - FRAME_HEADER_LEN;
    if let Err(detail) = encoded {
        buf.truncate(start);
        return Err(Error::InvalidInput(format!(
            "{} could not be encoded for the wire: {detail}",
            frame.kind()
        )));
    }
    if len > MAX_FRAME_BYTES as usize {
        buf.truncate(start);
        return Err(Error::InvalidInput(format!(
            "{} is {len} bytes encoded, more than the {} MiB one frame may carry; a scan \
             this large must be split into smaller ranges",
            frame.kind(),
            MAX_FRAME_BYTES / (1024 * 1024)
        )));
    }
    let crc = crc32fast::hash(&buf[start + FRAME_HEADER_LEN..]);
    // At most MAX_FRAME_BYTES, checked above: it fits in the u32.
    buf[start..start + 4].copy_from_slice(&(len as u32).to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// Reads a hello and then frames from one connection, refusing whatever is not kv2pc's
/// (see the `wire` module doc). Each error names `peer`.
pub struct FrameReader<R> {
    inner: R,
    peer: SocketAddr,
    payload: Vec<u8>,
}

impl<R: Read> FrameReader<R> {
    /// A reader of what `peer` sends on `inner`.
    pub fn new(inner: R, peer: SocketAddr) -> FrameReader<R> {
        FrameReader {
            inner,
            peer,
            payload: Vec::new(),
        }
    }

    /// The address at the other end.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Reads the hello that opens the connection.
    pub fn read_hello(&mut self) -> Result<Hello> {
        let mut bytes = [0u8; HELLO_LEN];
        match self.fill(&mut bytes)? {
            HELLO_LEN => Hello::decode(&bytes, self.peer),
            0 => Err(wire(
                self.peer,
                "it closed the connection without saying hello".into(),
            )),
            got => Err(wire(
                self.peer,
                format!("it closed the connection {got} bytes into its {HELLO_LEN}-byte hello"),
            )),
        }
    }

    /// Reads the next frame; `None` if the connection closed cleanly between frames.
    pub fn read_frame(&mut self) -> Result<Option<Frame>> {
        let mut header = [0u8; FRAME_HEADER_LEN];
        match self.fill(&mut header)? {
            0 => return Ok(None),
            FRAME_HEADER_LEN => {}
            got => {
                return Err(wire(
                    self.peer,
                    format!(
                        "the connection closed {got} bytes into a frame's \
                         {FRAME_HEADER_LEN}-byte header"
                    ),
                ));
            }
        }
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if len > MAX_FRAME_BYTES {
            return Err(wire(
                self.peer,
                format!(
                    "it announced a frame of {len} bytes, more than the {MAX_FRAME_BYTES} \
                     one frame may hold: it does not speak kv2pc wire version \
                     {WIRE_VERSION}, or the stream is damaged"
                ),
            ));
        }
        self.read_payload(len)?;
        let frame = self.check_and_decode(len, crc);
        if self.payload.capacity() > KEEP_BUFFER_BYTES {
            self.payload = Vec::new();
        }
        frame.map(Some)
    }

    /// Reads `len` payload bytes into `self.payload`, growing it only as bytes arrive
    /// (a length alone, honest or not, allocates nothing).
    fn read_payload(&mut self, len: u32) -> Result<()> {
        self.payload.clear();
        let peer = self.peer;
        // read_to_end retries on `Interrupted` itself.
        let got = (&mut self.inner)
            .take(u64::from(len))
            .read_to_end(&mut self.payload)
            .map_err(|error| Error::io(format!("reading a frame from {peer}"), error))?;
        if got < len as usize {
            return Err(wire(
                peer,
                format!("the connection closed {got} bytes into a {len}-byte frame"),
            ));
        }
        Ok(())
    }

    fn check_and_decode(&self, len: u32, crc: u32) -> Result<Frame> {
        let computed = crc32fast::hash(&self.payload);
        if computed != crc {
            return Err(wire(
                self.peer,
                format!(
                    "a {len}-byte frame arrived damaged: its checksum says {crc:08x} and its \
                     bytes sum to {computed:08x}"
                ),
            ));
        }
        codec::decode_limited::<Frame, { MAX_FRAME_BYTES as usize }>(&self.payload).map_err(
            |detail| {
                wire(
                    self.peer,
                    format!(
                        "a {len}-byte frame is not a kv2pc wire version {WIRE_VERSION} \
                         message ({detail})"
                    ),
                )
            },
        )
    }

    /// Reads until `buf` is full or the stream ends; returns how many bytes came.
    fn fill(&mut self, buf: &mut [u8]) -> Result<usize> {
        let mut got = 0;
        while got < buf.len() {
            match self.inner.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                // A read timeout, set while waiting for a hello: a kv2pc peer greets at
                // once, so one that stays silent is something else.
                Err(error)
                    if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    return Err(wire(
                        self.peer,
                        format!(
                            "it went silent after {got} bytes, where a kv2pc node or \
                             client would have sent its greeting at once"
                        ),
                    ));
                }
                Err(error) => {
                    let context = format!("reading from {}", self.peer);
                    return Err(Error::io(context, error));
                }
            }
        }
        Ok(got)
    }
}
