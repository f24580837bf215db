//! WebSocket framing for Python (server side): `WebSocketDecoder.receive(data)`
//! returns every event the bytes complete as a `(kind, data, code)` tuple, and
//! `receive_from(fd)` reads the bytes from the socket first; given an OCPP call reader
//! (`read_calls`), a text message that is a hot call comes out already read. The
//! encoders return whole frames.

use std::cell::RefCell;
use std::os::fd::RawFd;

use hubgate_core::websocket::{self as ws, Event, ServerDecoder};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};

use crate::ints::Int;
use crate::modbus_codec::with_bytes;
use crate::ocpp::{read_call, OcppCallReader};
use crate::socket_io::{recv_now, Received};

/// Event kind: a compressed message's kind is its opcode with this bit.
const COMPRESSED: u8 = 0x40;
/// Event kind: the peer broke the protocol (`data` says how, `code` is the close code).
const FAILED: u8 = 0xFF;
/// Event kind: a text message that is a hot OCPP call, read (`data` is what
/// `OcppCallReader.read` returns for it).
const HOT: u8 = 0x80;
/// The most `receive_from` reads at once.
const READ_BYTES: usize = 65536;

thread_local! {
    /// Where `receive_from` reads to (one per thread, not per connection).
    static READ_BUFFER: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_BYTES]);
}

/// Decodes a client's frames: RFC 6455 checks, unmasking, fragments joined.
#[pyclass(module = "hubgate._core")]
pub(crate) struct WebSocketDecoder {
    inner: ServerDecoder,
    reader: Option<Py<OcppCallReader>>,
    /// The longest text message (bytes) the reader is given.
    read_max_bytes: usize,
}

fn event<'py>(
    py: Python<'py>,
    kind: u8,
    data: Bound<'py, PyAny>,
    code: u16,
) -> PyResult<Bound<'py, PyTuple>> {
    PyTuple::new(
        py,
        [
            kind.into_pyobject(py)?.into_any(),
            data,
            code.into_pyobject(py)?.into_any(),
        ],
    )
}

#[pymethods]
impl WebSocketDecoder {
    #[new]
    #[pyo3(signature = (max_message_bytes, *, deflate = false))]
    fn new(max_message_bytes: Int<usize>, deflate: bool) -> Self {
        Self {
            inner: ServerDecoder::new(max_message_bytes.0, deflate),
            reader: None,
            read_max_bytes: 0,
        }
    }

    /// From now on an uncompressed text message of at most `max_bytes` that `reader`
    /// reads comes out as a `HOT` event with what it read (None: no reader).
    fn read_calls(&mut self, reader: Option<Py<OcppCallReader>>, max_bytes: Int<usize>) {
        self.reader = reader;
        self.read_max_bytes = max_bytes.0;
    }

    /// Feeds received bytes; returns the events they complete, in order. After a
    /// `FAILED` event nothing more is decoded.
    fn receive<'py>(
        &mut self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        with_bytes(data, |bytes| self.inner.feed(bytes))?;
        self.events(py)
    }

    /// The event of a compressed text message once the caller inflated it (`data`), as
    /// `receive` gives an uncompressed one: `HOT` when the reader reads it, else text;
    /// `FAILED` with close code 1007 when it is not UTF-8.
    fn inflated_text<'py>(&self, data: &Bound<'py, PyBytes>) -> PyResult<Bound<'py, PyTuple>> {
        let py = data.py();
        let Ok(text) = std::str::from_utf8(data.as_bytes()) else {
            let reason = PyString::new(py, "text message is not UTF-8").into_any();
            return event(py, FAILED, reason, ws::INVALID_DATA);
        };
        let reader = self.reader.as_ref().map(|reader| reader.bind(py).clone());
        text_event(py, reader.as_ref(), self.read_max_bytes, text)
    }

    /// Reads what the socket `fd` holds, without waiting (up to 64 KiB), and returns the
    /// events as `receive` does: empty when it holds nothing yet, None once the peer has
    /// closed the connection or it failed.
    fn receive_from<'py>(
        &mut self,
        py: Python<'py>,
        fd: RawFd,
    ) -> PyResult<Option<Bound<'py, PyList>>> {
        let fed = READ_BUFFER.with_borrow_mut(|buffer| match recv_now(py, fd, buffer) {
            Ok(Received::Bytes(count)) => {
                self.inner.feed(&buffer[..count]);
                Ok(true)
            }
            Ok(Received::Nothing) => Ok(true),
            Ok(Received::End) => Ok(false),
            Err(error) if error.is_instance_of::<pyo3::exceptions::PyOSError>(py) => Ok(false),
            Err(error) => Err(error),
        })?;
        if !fed {
            return Ok(None);
        }
        self.events(py).map(Some)
    }
}

impl WebSocketDecoder {
    /// The events the bytes fed so far complete.
    fn events<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let reader = self.reader.as_ref().map(|reader| reader.bind(py).clone());
        let out = PyList::empty(py);
        loop {
            let item = match self.inner.next_event() {
                Ok(None) => return Ok(out),
                Ok(Some(Event::Message {
                    text,
                    compressed,
                    data,
                })) => {
                    let opcode = if text { ws::TEXT } else { ws::BINARY };
                    if text && !compressed {
                        let text = String::from_utf8_lossy(&data);
                        text_event(py, reader.as_ref(), self.read_max_bytes, &text)?
                    } else {
                        let kind = if compressed {
                            opcode | COMPRESSED
                        } else {
                            opcode
                        };
                        event(py, kind, PyBytes::new(py, &data).into_any(), 0)?
                    }
                }
                Ok(Some(Event::Ping(data))) => {
                    event(py, ws::PING, PyBytes::new(py, &data).into_any(), 0)?
                }
                Ok(Some(Event::Pong(data))) => {
                    event(py, ws::PONG, PyBytes::new(py, &data).into_any(), 0)?
                }
                Ok(Some(Event::Close { code, reason })) => {
                    event(py, ws::CLOSE, PyString::new(py, &reason).into_any(), code)?
                }
                Err(error) => {
                    out.append(event(
                        py,
                        FAILED,
                        PyString::new(py, error.reason).into_any(),
                        error.code,
                    )?)?;
                    return Ok(out);
                }
            };
            out.append(item)?;
        }
    }
}

/// A text message's event: `HOT` with what `reader` reads of it (a message of at most
/// `max_bytes`), else the text.
fn text_event<'py>(
    py: Python<'py>,
    reader: Option<&Bound<'py, OcppCallReader>>,
    max_bytes: usize,
    text: &str,
) -> PyResult<Bound<'py, PyTuple>> {
    let read = match reader {
        Some(reader) if text.len() <= max_bytes => read_call(py, reader, text)?,
        _ => None,
    };
    match read {
        Some(call) => event(py, HOT, call.into_any(), 0),
        None => event(py, ws::TEXT, PyString::new(py, text).into_any(), 0),
    }
}

/// One whole unmasked server frame carrying `payload` (text is sent as UTF-8).
#[pyfunction]
#[pyo3(signature = (opcode, payload, *, rsv1 = false))]
pub(crate) fn encode_websocket_frame<'py>(
    py: Python<'py>,
    opcode: Int<u8>,
    payload: &Bound<'py, PyAny>,
    rsv1: bool,
) -> PyResult<Bound<'py, PyBytes>> {
    let mut out = Vec::new();
    if let Ok(text) = payload.cast::<PyString>() {
        ws::encode_frame(opcode.0, text.to_str()?.as_bytes(), rsv1, &mut out);
    } else {
        with_bytes(payload, |bytes| {
            ws::encode_frame(opcode.0, bytes, rsv1, &mut out)
        })?;
    }
    Ok(PyBytes::new(py, &out))
}

/// A close frame with `code` and `reason` (cut to fit 125 bytes).
#[pyfunction]
pub(crate) fn encode_websocket_close<'py>(
    py: Python<'py>,
    code: Int<u16>,
    reason: &str,
) -> Bound<'py, PyBytes> {
    let mut out = Vec::new();
    ws::encode_close(code.0, reason, &mut out);
    PyBytes::new(py, &out)
}
