//! Modbus RTU framing: unit id, PDU and CRC-16 (low byte first), with a
//! streaming decoder that predicts each frame's length from its function code
//! and resynchronises after garbage or a bad CRC by dropping one byte at a
//! time. The same framing carries RTU over TCP.

use super::function::*;
use super::pdu::device_identification_len;
use crate::crc::{check_crc, crc16};

/// Largest RTU frame: address, 253-byte PDU and CRC.
pub const MAX_FRAME_LEN: usize = 256;

/// Which kind of frame a decoder expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Requests, as a server receives them.
    Requests,
    /// Responses, as a client receives them.
    Responses,
}

/// One RTU frame whose CRC checked, borrowed from the decoder's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Unit (slave) address.
    pub unit: u8,
    /// The PDU, without address and CRC.
    pub pdu: &'a [u8],
}

/// What the decoder found next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found<'a> {
    /// A whole frame with a good CRC.
    Frame(Frame<'a>),
    /// A frame the filter accepted but whose CRC failed; its first byte was
    /// dropped and decoding resumes after it.
    CrcMismatch {
        /// Unit address of the garbled frame.
        unit: u8,
        /// Function code of the garbled frame.
        function: u8,
    },
}

/// Appends an RTU frame (address, PDU, CRC) to `out`.
pub fn push_frame(out: &mut Vec<u8>, unit: u8, pdu: &[u8]) {
    let start = out.len();
    out.push(unit);
    out.extend_from_slice(pdu);
    append_crc_from(out, start);
}

/// Appends the CRC (low byte first) of `out[start..]`, the frame just written.
pub fn append_crc_from(out: &mut Vec<u8>, start: usize) {
    let crc = crc16(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

enum Length {
    NeedMore,
    Known(usize),
    Invalid,
}

fn counted(head: &[u8], at: usize, fixed: usize) -> Length {
    head.get(at)
        .map_or(Length::NeedMore, |&n| Length::Known(fixed + usize::from(n)))
}

/// Length of the frame starting at `head[0]`, from its first bytes.
fn frame_len(head: &[u8], direction: Direction) -> Length {
    let function = head[1];
    let len = match direction {
        Direction::Requests => match function {
            READ_COILS..=WRITE_SINGLE_REGISTER => Length::Known(8),
            WRITE_MULTIPLE_COILS | WRITE_MULTIPLE_REGISTERS => counted(head, 6, 9),
            READ_WRITE_MULTIPLE_REGISTERS => counted(head, 10, 13),
            ENCAPSULATED_INTERFACE => Length::Known(7),
            _ => Length::Invalid,
        },
        Direction::Responses => match function {
            f if f & EXCEPTION_FLAG != 0 && is_supported(f & !EXCEPTION_FLAG) => Length::Known(5),
            READ_COILS..=READ_INPUT_REGISTERS | READ_WRITE_MULTIPLE_REGISTERS => {
                counted(head, 2, 5)
            }
            WRITE_SINGLE_COIL
            | WRITE_SINGLE_REGISTER
            | WRITE_MULTIPLE_COILS
            | WRITE_MULTIPLE_REGISTERS => Length::Known(8),
            ENCAPSULATED_INTERFACE => match device_identification_len(&head[1..]) {
                None => Length::NeedMore,
                Some(Ok(len)) => Length::Known(len + 3),
                Some(Err(())) => Length::Invalid,
            },
            _ => Length::Invalid,
        },
    };
    match len {
        Length::Known(n) if n > MAX_FRAME_LEN => Length::Invalid,
        other => other,
    }
}

/// Streaming RTU decoder: feed bytes, take frames whose CRC checks.
#[derive(Debug, Default)]
pub struct Decoder {
    buffer: Vec<u8>,
    start: usize,
    discarded: u64,
}

impl Decoder {
    /// A decoder with an empty buffer.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes.
    pub fn receive_data(&mut self, data: &[u8]) {
        if self.start > 0 {
            self.buffer.drain(..self.start);
            self.start = 0;
        }
        self.buffer.extend_from_slice(data);
    }

    /// Drops everything buffered (after a silent interval, or a timeout).
    pub fn clear(&mut self) {
        self.discarded += (self.buffer.len() - self.start) as u64;
        self.buffer.clear();
        self.start = 0;
    }

    /// Bytes received and not yet returned as frames or discarded.
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.buffer.len() - self.start
    }

    /// Bytes dropped so far while resynchronising.
    #[must_use]
    pub fn discarded(&self) -> u64 {
        self.discarded
    }

    fn skip(&mut self, n: usize) {
        self.start += n;
        self.discarded += n as u64;
    }

    /// The next frame, `None` when more bytes are needed.
    ///
    /// `accept` sees the first bytes (at least unit and function code) of a
    /// candidate frame; a rejected candidate loses its first byte, which lets
    /// a client skip everything that cannot answer its pending request.
    pub fn next_frame(
        &mut self,
        direction: Direction,
        accept: impl Fn(&[u8]) -> bool,
    ) -> Option<Found<'_>> {
        loop {
            let head = &self.buffer[self.start..];
            if head.len() < 2 {
                return None;
            }
            if !accept(head) {
                self.skip(1);
                continue;
            }
            let len = match frame_len(head, direction) {
                Length::NeedMore => return None,
                Length::Invalid => {
                    self.skip(1);
                    continue;
                }
                Length::Known(len) => len,
            };
            if head.len() < len {
                return None;
            }
            if check_crc(&head[..len]).is_err() {
                let (unit, function) = (head[0], head[1]);
                self.skip(1);
                return Some(Found::CrcMismatch { unit, function });
            }
            let first = self.start;
            self.start += len;
            return Some(Found::Frame(Frame {
                unit: self.buffer[first],
                pdu: &self.buffer[first + 1..first + len - 2],
            }));
        }
    }
}
