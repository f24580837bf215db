//! Client-side (master) codecs, sans-IO: encode requests, feed received
//! bytes, take responses matched to their requests.
//!
//! Every [`ClientEvent::Rejected`] that names a transaction finishes that
//! transaction: the transport may retry at once instead of waiting for its
//! timeout.

use super::function::EXCEPTION_FLAG;
use super::matching::{match_response, Mismatch};
use super::pdu::{EncodeError, PduError, Request, Response};
use super::rtu::{self, Direction, Found};
use super::tcp::{self, FrameError};

/// Why a received frame is not a response to a pending request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// No request with this transaction id is pending (late, stale or stray).
    UnknownTransaction,
    /// The unit id differs from the request's.
    Unit {
        /// Unit of the request.
        expected: u8,
    },
    /// The PDU does not decode.
    Pdu(PduError),
    /// The response answers another request.
    Mismatch(Mismatch),
    /// An RTU frame that looked like the response failed its CRC.
    Crc,
    /// Bytes arrived while no request was pending; they were dropped.
    Unsolicited {
        /// Number of bytes dropped.
        bytes: usize,
    },
}

impl core::fmt::Display for Rejection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::UnknownTransaction => f.write_str("no pending request has this transaction id"),
            Self::Unit { expected } => write!(f, "unit differs from the request's unit {expected}"),
            Self::Pdu(err) => write!(f, "undecodable response: {err}"),
            Self::Mismatch(err) => write!(f, "response to another request: {err}"),
            Self::Crc => f.write_str("response failed its CRC check"),
            Self::Unsolicited { bytes } => {
                write!(f, "{bytes} bytes arrived with no request pending")
            }
        }
    }
}

/// What a client codec produced from received bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// A response matched to its request, which is no longer pending.
    Response {
        /// Transaction id of the request.
        transaction_id: u16,
        /// Unit id.
        unit: u8,
        /// The response (possibly an exception response).
        response: Response,
    },
    /// A frame that answers no pending request.
    Rejected {
        /// The transaction it claimed to answer, now finished; `None` when
        /// no pending transaction is concerned.
        transaction_id: Option<u16>,
        /// Unit id of the frame.
        unit: u8,
        /// Why it was rejected.
        reason: Rejection,
    },
}

#[derive(Debug)]
struct Pending {
    transaction_id: u16,
    unit: u8,
    request: Request,
}

fn resolve(pending: Pending, unit: u8, pdu: &[u8]) -> ClientEvent {
    let rejected = |reason| ClientEvent::Rejected {
        transaction_id: Some(pending.transaction_id),
        unit,
        reason,
    };
    if unit != pending.unit {
        return rejected(Rejection::Unit {
            expected: pending.unit,
        });
    }
    match Response::decode(pdu) {
        Err(err) => rejected(Rejection::Pdu(err)),
        Ok(response) => match match_response(&pending.request, response) {
            Err(err) => rejected(Rejection::Mismatch(err)),
            Ok(response) => ClientEvent::Response {
                transaction_id: pending.transaction_id,
                unit,
                response,
            },
        },
    }
}

/// Modbus TCP client codec; several requests may be in flight.
#[derive(Debug, Default)]
pub struct TcpClient {
    decoder: tcp::Decoder,
    pending: Vec<Pending>,
    last_transaction_id: u16,
}

impl TcpClient {
    /// A client with no pending request; the first transaction id is 1.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn next_transaction_id(&mut self) -> u16 {
        loop {
            self.last_transaction_id = self.last_transaction_id.wrapping_add(1);
            let id = self.last_transaction_id;
            if !self.pending.iter().any(|p| p.transaction_id == id) {
                return id;
            }
        }
    }

    /// Encodes `request` for `unit` as a whole ADU and marks it pending.
    ///
    /// # Errors
    /// [`EncodeError`] when the request breaks a specification limit.
    pub fn encode_request(
        &mut self,
        unit: u8,
        request: Request,
    ) -> Result<(u16, Vec<u8>), EncodeError> {
        let mut frame = Vec::with_capacity(tcp::MBAP_LEN + 16);
        let transaction_id = self.encode_request_into(unit, request, &mut frame)?;
        Ok((transaction_id, frame))
    }

    /// Like [`TcpClient::encode_request`], appending the ADU to `out` (which
    /// is left unchanged on error); returns the transaction id.
    ///
    /// # Errors
    /// [`EncodeError`] when the request breaks a specification limit.
    pub fn encode_request_into(
        &mut self,
        unit: u8,
        request: Request,
        out: &mut Vec<u8>,
    ) -> Result<u16, EncodeError> {
        let start = out.len();
        tcp::push_header(out, 0, unit, 0);
        if let Err(err) = request.encode(out) {
            out.truncate(start);
            return Err(err);
        }
        let frame = &mut out[start..];
        tcp::fix_length(frame);
        let transaction_id = self.next_transaction_id();
        frame[..2].copy_from_slice(&transaction_id.to_be_bytes());
        self.pending.push(Pending {
            transaction_id,
            unit,
            request,
        });
        Ok(transaction_id)
    }

    /// Appends received bytes.
    pub fn receive_data(&mut self, data: &[u8]) {
        self.decoder.receive_data(data);
    }

    /// The next event, `Ok(None)` when more bytes are needed.
    ///
    /// # Errors
    /// [`FrameError`] on a bad MBAP header: close the connection.
    pub fn next_event(&mut self) -> Result<Option<ClientEvent>, FrameError> {
        let Some(frame) = self.decoder.next_frame()? else {
            return Ok(None);
        };
        let found = self
            .pending
            .iter()
            .position(|p| p.transaction_id == frame.transaction_id);
        Ok(Some(match found {
            Some(index) => resolve(self.pending.swap_remove(index), frame.unit, frame.pdu),
            None => ClientEvent::Rejected {
                transaction_id: None,
                unit: frame.unit,
                reason: Rejection::UnknownTransaction,
            },
        }))
    }

    /// Stops waiting for a transaction (after a timeout); a late response to
    /// it is then rejected. Returns whether it was pending.
    pub fn forget(&mut self, transaction_id: u16) -> bool {
        let before = self.pending.len();
        self.pending.retain(|p| p.transaction_id != transaction_id);
        self.pending.len() != before
    }

    /// Number of requests waiting for a response.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

/// Modbus RTU client codec (serial line or RTU over TCP): one request at a
/// time. Transaction ids are local, so both clients share one interface.
#[derive(Debug, Default)]
pub struct RtuClient {
    decoder: rtu::Decoder,
    pending: Option<Pending>,
    last_transaction_id: u16,
}

/// Whether a candidate frame head can answer `pending`.
fn can_answer(pending: &Pending, head: &[u8]) -> bool {
    let function = pending.request.function();
    if head[0] != pending.unit {
        return false;
    }
    if head[1] == function | EXCEPTION_FLAG {
        return true;
    }
    if head[1] != function {
        return false;
    }
    let byte_count = match &pending.request {
        Request::ReadCoils { count, .. } | Request::ReadDiscreteInputs { count, .. } => {
            usize::from(*count).div_ceil(8)
        }
        Request::ReadHoldingRegisters { count, .. }
        | Request::ReadInputRegisters { count, .. }
        | Request::ReadWriteMultipleRegisters {
            read_count: count, ..
        } => usize::from(*count) * 2,
        _ => return true,
    };
    head.get(2).is_none_or(|&n| usize::from(n) == byte_count)
}

impl RtuClient {
    /// A client with no pending request; the first transaction id is 1.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Encodes `request` for `unit` as a whole RTU frame and makes it the
    /// pending request. A previous pending request is abandoned and bytes
    /// still buffered are dropped as stale. Broadcasts (unit 0) get no
    /// response and leave nothing pending.
    ///
    /// # Errors
    /// [`EncodeError`] when the request breaks a specification limit.
    pub fn encode_request(
        &mut self,
        unit: u8,
        request: Request,
    ) -> Result<(u16, Vec<u8>), EncodeError> {
        let mut frame = Vec::with_capacity(16);
        let transaction_id = self.encode_request_into(unit, request, &mut frame)?;
        Ok((transaction_id, frame))
    }

    /// Like [`RtuClient::encode_request`], appending the frame to `out`
    /// (which is left unchanged on error); returns the transaction id.
    ///
    /// # Errors
    /// [`EncodeError`] when the request breaks a specification limit.
    pub fn encode_request_into(
        &mut self,
        unit: u8,
        request: Request,
        out: &mut Vec<u8>,
    ) -> Result<u16, EncodeError> {
        let start = out.len();
        out.push(unit);
        if let Err(err) = request.encode(out) {
            out.truncate(start);
            return Err(err);
        }
        rtu::append_crc_from(out, start);
        self.last_transaction_id = self.last_transaction_id.wrapping_add(1);
        let transaction_id = self.last_transaction_id;
        self.decoder.clear();
        self.pending = (unit != 0).then_some(Pending {
            transaction_id,
            unit,
            request,
        });
        Ok(transaction_id)
    }

    /// Appends received bytes.
    pub fn receive_data(&mut self, data: &[u8]) {
        self.decoder.receive_data(data);
    }

    /// The next event, `None` when more bytes are needed.
    pub fn next_event(&mut self) -> Option<ClientEvent> {
        let Some(pending) = &self.pending else {
            let bytes = self.decoder.buffered();
            self.decoder.clear();
            return (bytes > 0).then_some(ClientEvent::Rejected {
                transaction_id: None,
                unit: 0,
                reason: Rejection::Unsolicited { bytes },
            });
        };
        let found = self
            .decoder
            .next_frame(Direction::Responses, |head| can_answer(pending, head))?;
        let pending = self.pending.take()?;
        Some(match found {
            Found::Frame(frame) => resolve(pending, frame.unit, frame.pdu),
            Found::CrcMismatch { unit, .. } => ClientEvent::Rejected {
                transaction_id: Some(pending.transaction_id),
                unit,
                reason: Rejection::Crc,
            },
        })
    }

    /// Stops waiting (after a timeout) and drops buffered bytes. Returns
    /// whether a request was pending.
    pub fn reset(&mut self) -> bool {
        self.decoder.clear();
        self.pending.take().is_some()
    }

    /// Bytes dropped so far while resynchronising.
    #[must_use]
    pub fn discarded(&self) -> u64 {
        self.decoder.discarded()
    }

    /// Whether a request waits for its response.
    #[must_use]
    pub fn is_pending(&self) -> bool {
        self.pending.is_some()
    }
}
