//! Modbus TCP framing: the 7-byte MBAP header and a streaming decoder.
//!
//! A bad header (protocol id other than 0, or a length outside 2..=254) is a
//! [`FrameError`] that closes the stream: MBAP has no way to resynchronise.

use super::function::MAX_PDU_LEN;

/// Length of the MBAP header including the unit id.
pub const MBAP_LEN: usize = 7;

/// One Modbus TCP frame, borrowed from the decoder's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Transaction id.
    pub transaction_id: u16,
    /// Unit id.
    pub unit: u8,
    /// The PDU.
    pub pdu: &'a [u8],
}

/// A header that makes the rest of the stream meaningless.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// Protocol id other than 0.
    Protocol {
        /// Protocol id found.
        protocol_id: u16,
    },
    /// Length field outside 2..=254.
    Length {
        /// Length found.
        length: u16,
    },
}

impl core::fmt::Display for FrameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Protocol { protocol_id } => {
                write!(f, "MBAP protocol id {protocol_id} is not 0 (Modbus)")
            }
            Self::Length { length } => {
                write!(f, "MBAP length {length} is outside 2..={}", MAX_PDU_LEN + 1)
            }
        }
    }
}

impl std::error::Error for FrameError {}

/// Appends an MBAP header for a PDU of `pdu_len` bytes to `out`.
pub fn push_header(out: &mut Vec<u8>, transaction_id: u16, unit: u8, pdu_len: usize) {
    out.extend_from_slice(&transaction_id.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    // The PDU encoders keep `pdu_len` at or below 253.
    out.extend_from_slice(&((pdu_len + 1) as u16).to_be_bytes());
    out.push(unit);
}

/// Writes the length field of a frame whose PDU was appended after
/// [`push_header`] was called with a placeholder length.
pub fn fix_length(frame: &mut [u8]) {
    let length = (frame.len() - 6) as u16;
    frame[4..6].copy_from_slice(&length.to_be_bytes());
}

/// Streaming MBAP decoder: feed bytes, take whole frames.
#[derive(Debug, Default)]
pub struct Decoder {
    buffer: Vec<u8>,
    start: usize,
    broken: Option<FrameError>,
}

impl Decoder {
    /// A decoder with an empty buffer.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes.
    pub fn receive_data(&mut self, data: &[u8]) {
        if self.start > 0 && self.start == self.buffer.len() {
            self.buffer.clear();
            self.start = 0;
        } else if self.start > 4096 {
            self.buffer.drain(..self.start);
            self.start = 0;
        }
        self.buffer.extend_from_slice(data);
    }

    /// Bytes received and not yet returned as frames.
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.buffer.len() - self.start
    }

    /// The next whole frame, `Ok(None)` when more bytes are needed.
    ///
    /// # Errors
    /// [`FrameError`] on a bad header, and on every call after it.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, FrameError> {
        if let Some(err) = self.broken {
            return Err(err);
        }
        let rest = &self.buffer[self.start..];
        if rest.len() < MBAP_LEN {
            return Ok(None);
        }
        let protocol_id = u16::from_be_bytes([rest[2], rest[3]]);
        let length = u16::from_be_bytes([rest[4], rest[5]]);
        let err = if protocol_id != 0 {
            Some(FrameError::Protocol { protocol_id })
        } else if !(2..=MAX_PDU_LEN + 1).contains(&usize::from(length)) {
            Some(FrameError::Length { length })
        } else {
            None
        };
        if let Some(err) = err {
            self.broken = Some(err);
            return Err(err);
        }
        let end = 6 + usize::from(length);
        if rest.len() < end {
            return Ok(None);
        }
        let transaction_id = u16::from_be_bytes([rest[0], rest[1]]);
        let unit = rest[6];
        let first = self.start;
        self.start += end;
        Ok(Some(Frame {
            transaction_id,
            unit,
            pdu: &self.buffer[first + MBAP_LEN..first + end],
        }))
    }
}
