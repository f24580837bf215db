//! Sans-IO WebSocket framing (RFC 6455), server side: the client's masked frames
//! in, whole messages and control events out; the server's unmasked frames out.
//!
//! Permessage-deflate (RFC 7692) stays with the caller: when it was negotiated,
//! a message whose first frame has RSV1 set comes out whole and still
//! compressed (`compressed: true`), for the caller to inflate and check.
//! Any breach of the protocol ends decoding with the close code to send.

use std::fmt;

/// Continuation frame opcode.
pub const CONTINUATION: u8 = 0x0;
/// Text frame opcode.
pub const TEXT: u8 = 0x1;
/// Binary frame opcode.
pub const BINARY: u8 = 0x2;
/// Close frame opcode.
pub const CLOSE: u8 = 0x8;
/// Ping frame opcode.
pub const PING: u8 = 0x9;
/// Pong frame opcode.
pub const PONG: u8 = 0xA;

/// Close code: the peer broke the protocol.
pub const PROTOCOL_ERROR: u16 = 1002;
/// Close code: a close frame without a status code (never sent).
pub const NO_STATUS: u16 = 1005;
/// Close code: text that is not UTF-8.
pub const INVALID_DATA: u16 = 1007;
/// Close code: a message over the size limit.
pub const TOO_BIG: u16 = 1009;

/// The longest payload a control frame may carry.
const MAX_CONTROL_PAYLOAD: usize = 125;

/// What the decoder found in the client's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A whole data message. Uncompressed text is valid UTF-8.
    Message {
        /// A text message (else binary).
        text: bool,
        /// Still permessage-deflate compressed (RSV1 was set).
        compressed: bool,
        /// The unmasked payload of all its frames.
        data: Vec<u8>,
    },
    /// A ping, with its application data (answer with a pong carrying it).
    Ping(Vec<u8>),
    /// A pong, with its application data.
    Pong(Vec<u8>),
    /// The peer closes; `code` is [`NO_STATUS`] when it gave none.
    Close {
        /// The status code.
        code: u16,
        /// The reason (UTF-8).
        reason: String,
    },
}

/// A breach of the protocol: close the connection with `code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError {
    /// The close code to send.
    pub code: u16,
    /// What was wrong.
    pub reason: &'static str,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (close code {})", self.reason, self.code)
    }
}

impl std::error::Error for ProtocolError {}

const fn breach(code: u16, reason: &'static str) -> ProtocolError {
    ProtocolError { code, reason }
}

/// A frame's header, checked.
struct Header {
    fin: bool,
    rsv1: bool,
    opcode: u8,
    mask: [u8; 4],
    header_len: usize,
    payload_len: usize,
}

/// Decodes the frames a client sends to a server.
#[derive(Debug)]
pub struct ServerDecoder {
    buffer: Vec<u8>,
    start: usize,
    message: Vec<u8>,
    /// The data message in progress: (text, compressed).
    partial: Option<(bool, bool)>,
    max_message_bytes: usize,
    deflate: bool,
    failed: Option<ProtocolError>,
}

impl ServerDecoder {
    /// A decoder for messages of up to `max_message_bytes` (as received, before any
    /// decompression); `deflate`: permessage-deflate was negotiated (RSV1 allowed).
    pub fn new(max_message_bytes: usize, deflate: bool) -> Self {
        Self {
            buffer: Vec::new(),
            start: 0,
            message: Vec::new(),
            partial: None,
            max_message_bytes,
            deflate,
            failed: None,
        }
    }

    /// Adds received bytes.
    pub fn feed(&mut self, data: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        if self.start == self.buffer.len() {
            self.buffer.clear();
            self.start = 0;
        } else if self.start > 4096 && self.start * 2 > self.buffer.len() {
            self.buffer.drain(..self.start);
            self.start = 0;
        }
        self.buffer.extend_from_slice(data);
    }

    /// The next event, `None` when more bytes are needed; after an error, the same
    /// error for ever.
    pub fn next_event(&mut self) -> Result<Option<Event>, ProtocolError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        let result = self.decode();
        if let Err(error) = &result {
            self.failed = Some(error.clone());
            self.buffer = Vec::new();
            self.message = Vec::new();
        }
        result
    }

    fn decode(&mut self) -> Result<Option<Event>, ProtocolError> {
        loop {
            let Some(header) = self.header()? else {
                return Ok(None);
            };
            let begin = self.start + header.header_len;
            let Some(end) = begin
                .checked_add(header.payload_len)
                .filter(|end| *end <= self.buffer.len())
            else {
                return Ok(None);
            };
            self.start = end;
            let masked = &self.buffer[begin..end];
            if header.opcode >= CLOSE {
                return control(header.opcode, unmask(masked, header.mask, Vec::new())).map(Some);
            }
            if header.opcode != CONTINUATION {
                self.partial = Some((header.opcode == TEXT, header.rsv1));
            }
            let taken = std::mem::take(&mut self.message);
            self.message = unmask(masked, header.mask, taken);
            if header.fin {
                let (text, compressed) = self.partial.take().unwrap_or((false, false));
                let data = std::mem::take(&mut self.message);
                if text && !compressed && std::str::from_utf8(&data).is_err() {
                    return Err(breach(INVALID_DATA, "text message is not UTF-8"));
                }
                return Ok(Some(Event::Message {
                    text,
                    compressed,
                    data,
                }));
            }
        }
    }

    /// The header at the start of the buffer, checked; `None` until it is all there.
    fn header(&self) -> Result<Option<Header>, ProtocolError> {
        let bytes = &self.buffer[self.start..];
        let [first, second, ..] = *bytes else {
            return Ok(None);
        };
        let (fin, rsv1, opcode) = (first & 0x80 != 0, first & 0x40 != 0, first & 0x0F);
        if first & 0x30 != 0 {
            return Err(breach(PROTOCOL_ERROR, "reserved bits RSV2/RSV3 set"));
        }
        if second & 0x80 == 0 {
            return Err(breach(PROTOCOL_ERROR, "client frame not masked"));
        }
        match opcode {
            CONTINUATION if self.partial.is_none() => {
                return Err(breach(
                    PROTOCOL_ERROR,
                    "continuation frame outside a message",
                ));
            }
            TEXT | BINARY if self.partial.is_some() => {
                return Err(breach(
                    PROTOCOL_ERROR,
                    "new message inside a fragmented one",
                ));
            }
            CONTINUATION | TEXT | BINARY => {
                if rsv1 && (opcode == CONTINUATION || !self.deflate) {
                    return Err(breach(
                        PROTOCOL_ERROR,
                        "RSV1 set without a compressed message",
                    ));
                }
            }
            CLOSE | PING | PONG => {
                if rsv1 {
                    return Err(breach(PROTOCOL_ERROR, "RSV1 set on a control frame"));
                }
                if !fin {
                    return Err(breach(PROTOCOL_ERROR, "fragmented control frame"));
                }
            }
            _ => return Err(breach(PROTOCOL_ERROR, "unknown opcode")),
        }
        let short = usize::from(second & 0x7F);
        let (length_bytes, payload_len) = match short {
            126 => {
                let Some(raw) = bytes.get(2..4) else {
                    return Ok(None);
                };
                let len = usize::from(u16::from_be_bytes([raw[0], raw[1]]));
                if len < 126 {
                    return Err(breach(
                        PROTOCOL_ERROR,
                        "payload length not minimally encoded",
                    ));
                }
                (2, len)
            }
            127 => {
                let Some(raw) = bytes.get(2..10) else {
                    return Ok(None);
                };
                let len = u64::from_be_bytes(raw.try_into().unwrap_or([0xFF; 8]));
                if len >> 63 != 0 {
                    return Err(breach(PROTOCOL_ERROR, "payload length has its top bit set"));
                }
                if len <= 0xFFFF {
                    return Err(breach(
                        PROTOCOL_ERROR,
                        "payload length not minimally encoded",
                    ));
                }
                (8, usize::try_from(len).unwrap_or(usize::MAX))
            }
            len => (0, len),
        };
        if opcode >= CLOSE && payload_len > MAX_CONTROL_PAYLOAD {
            return Err(breach(
                PROTOCOL_ERROR,
                "control frame payload over 125 bytes",
            ));
        }
        if opcode < CLOSE && self.message.len().saturating_add(payload_len) > self.max_message_bytes
        {
            return Err(breach(TOO_BIG, "message over the size limit"));
        }
        let header_len = 2 + length_bytes + 4;
        let Some(mask) = bytes.get(2 + length_bytes..header_len) else {
            return Ok(None);
        };
        Ok(Some(Header {
            fin,
            rsv1,
            opcode,
            mask: [mask[0], mask[1], mask[2], mask[3]],
            header_len,
            payload_len,
        }))
    }
}

/// `masked` unmasked with `mask`, appended to `out`.
fn unmask(masked: &[u8], mask: [u8; 4], mut out: Vec<u8>) -> Vec<u8> {
    let word = u32::from_ne_bytes(mask);
    let from = out.len();
    out.extend_from_slice(masked);
    let mut chunks = out[from..].chunks_exact_mut(4);
    for chunk in &mut chunks {
        let value = u32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]) ^ word;
        chunk.copy_from_slice(&value.to_ne_bytes());
    }
    for (byte, key) in chunks.into_remainder().iter_mut().zip(mask) {
        *byte ^= key;
    }
    out
}

/// A control frame's event, its close payload checked.
fn control(opcode: u8, payload: Vec<u8>) -> Result<Event, ProtocolError> {
    match opcode {
        PING => Ok(Event::Ping(payload)),
        PONG => Ok(Event::Pong(payload)),
        _ => {
            let Some((code, reason)) = payload.split_first_chunk::<2>() else {
                return match payload.len() {
                    0 => Ok(Event::Close {
                        code: NO_STATUS,
                        reason: String::new(),
                    }),
                    _ => Err(breach(
                        PROTOCOL_ERROR,
                        "close frame with a one-byte payload",
                    )),
                };
            };
            let code = u16::from_be_bytes(*code);
            if !sendable_close_code(code) {
                return Err(breach(PROTOCOL_ERROR, "close code not allowed on the wire"));
            }
            let reason = std::str::from_utf8(reason)
                .map_err(|_| breach(INVALID_DATA, "close reason is not UTF-8"))?;
            Ok(Event::Close {
                code,
                reason: reason.to_owned(),
            })
        }
    }
}

/// Whether a peer may send `code` in a close frame (RFC 6455 7.4, IANA registry).
pub fn sendable_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Appends one whole (FIN) unmasked server frame to `out`.
pub fn encode_frame(opcode: u8, payload: &[u8], rsv1: bool, out: &mut Vec<u8>) {
    out.push(0x80 | if rsv1 { 0x40 } else { 0 } | (opcode & 0x0F));
    match payload.len() {
        len @ 0..=125 => out.push(len as u8),
        len @ 126..=0xFFFF => {
            out.push(126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            out.push(127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
}

/// Appends a close frame with `code` and `reason`, the reason cut to fit the 125 bytes
/// of a control frame on a character boundary.
pub fn encode_close(code: u16, reason: &str, out: &mut Vec<u8>) {
    let mut cut = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut payload = Vec::with_capacity(2 + cut);
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(&reason.as_bytes()[..cut]);
    encode_frame(CLOSE, &payload, false, out);
}

#[cfg(test)]
mod tests;
