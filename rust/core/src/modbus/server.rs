//! Server-side (slave) codecs, sans-IO: feed received bytes, take decoded
//! requests, encode responses and exception responses.

use super::pdu::{EncodeError, PduError, Request, Response};
use super::rtu::{self, Direction, Found};
use super::tcp::{self, FrameError};

/// What a server codec produced from received bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// A well-formed request.
    Request {
        /// Transaction id to echo (RTU: always 0).
        transaction_id: u16,
        /// Unit id.
        unit: u8,
        /// The request.
        request: Request,
    },
    /// A frame whose PDU does not decode; answer it with
    /// `error.exception` for `error.function`.
    Invalid {
        /// Transaction id to echo (RTU: always 0).
        transaction_id: u16,
        /// Unit id.
        unit: u8,
        /// Why, and the exception code to answer with.
        error: PduError,
    },
}

fn decode(transaction_id: u16, unit: u8, pdu: &[u8]) -> ServerEvent {
    match Request::decode(pdu) {
        Ok(request) => ServerEvent::Request {
            transaction_id,
            unit,
            request,
        },
        Err(error) => ServerEvent::Invalid {
            transaction_id,
            unit,
            error,
        },
    }
}

/// Modbus TCP server codec for one connection.
#[derive(Debug, Default)]
pub struct TcpServer {
    decoder: tcp::Decoder,
}

impl TcpServer {
    /// A codec with an empty buffer.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes.
    pub fn receive_data(&mut self, data: &[u8]) {
        self.decoder.receive_data(data);
    }

    /// The next event, `Ok(None)` when more bytes are needed.
    ///
    /// # Errors
    /// [`FrameError`] on a bad MBAP header: close the connection.
    pub fn next_event(&mut self) -> Result<Option<ServerEvent>, FrameError> {
        Ok(self
            .decoder
            .next_frame()?
            .map(|frame| decode(frame.transaction_id, frame.unit, frame.pdu)))
    }

    /// Encodes `response` as a whole ADU.
    ///
    /// # Errors
    /// [`EncodeError`] when the response breaks a specification limit.
    pub fn encode_response(
        transaction_id: u16,
        unit: u8,
        response: &Response,
    ) -> Result<Vec<u8>, EncodeError> {
        let mut frame = Vec::with_capacity(tcp::MBAP_LEN + 16);
        tcp::push_header(&mut frame, transaction_id, unit, 0);
        response.encode(&mut frame)?;
        tcp::fix_length(&mut frame);
        Ok(frame)
    }
}

/// Modbus RTU server codec (serial line or RTU over TCP). It answers every
/// unit; a server on a shared bus filters [`ServerEvent`]s by unit itself.
#[derive(Debug, Default)]
pub struct RtuServer {
    decoder: rtu::Decoder,
}

impl RtuServer {
    /// A codec with an empty buffer.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes.
    pub fn receive_data(&mut self, data: &[u8]) {
        self.decoder.receive_data(data);
    }

    /// The next request, `None` when more bytes are needed. Frames failing
    /// their CRC are dropped (a server stays silent on them).
    pub fn next_event(&mut self) -> Option<ServerEvent> {
        loop {
            match self.decoder.next_frame(Direction::Requests, |_| true)? {
                Found::Frame(frame) => return Some(decode(0, frame.unit, frame.pdu)),
                Found::CrcMismatch { .. } => {}
            }
        }
    }

    /// Bytes dropped so far while resynchronising.
    #[must_use]
    pub fn discarded(&self) -> u64 {
        self.decoder.discarded()
    }

    /// Encodes `response` as a whole RTU frame.
    ///
    /// # Errors
    /// [`EncodeError`] when the response breaks a specification limit.
    pub fn encode_response(unit: u8, response: &Response) -> Result<Vec<u8>, EncodeError> {
        let mut pdu = Vec::with_capacity(16);
        response.encode(&mut pdu)?;
        let mut frame = Vec::with_capacity(pdu.len() + 3);
        rtu::push_frame(&mut frame, unit, &pdu);
        Ok(frame)
    }
}
