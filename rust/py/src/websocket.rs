//! WebSocket framing for Python (server side): `WebSocketDecoder.receive(data)`
//! returns every event the bytes complete as a `(kind, data, code)` tuple; the
//! encoders return whole frames.

use hubgate_core::websocket::{self as ws, Event, ServerDecoder};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};

use crate::ints::Int;
use crate::modbus_codec::with_bytes;

/// Event kind: a compressed message's kind is its opcode with this bit.
const COMPRESSED: u8 = 0x40;
/// Event kind: the peer broke the protocol (`data` says how, `code` is the close code).
const FAILED: u8 = 0xFF;

/// Decodes a client's frames: RFC 6455 checks, unmasking, fragments joined.
#[pyclass(module = "hubgate._core")]
pub(crate) struct WebSocketDecoder {
    inner: ServerDecoder,
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
        }
    }

    /// Feeds received bytes; returns the events they complete, in order. After a
    /// `FAILED` event nothing more is decoded.
    fn receive<'py>(
        &mut self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        with_bytes(data, |bytes| self.inner.feed(bytes))?;
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
                        event(py, opcode, PyString::new(py, &text).into_any(), 0)?
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
