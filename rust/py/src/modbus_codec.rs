//! Sans-IO Modbus codecs for Python (h11 style): `receive_data(bytes)`, then
//! `next_event()` until it returns `None`; encoders return whole frames.

use hubgate_core::modbus::{client, pdu, server};
use pyo3::buffer::PyBuffer;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes};

use crate::errors::CoreError;
use crate::ints::Int;
use crate::modbus_pdu::{Request, Response};

/// Runs `f` on the bytes of a `bytes`, `bytearray` or buffer object.
pub(crate) fn with_bytes<R>(data: &Bound<'_, PyAny>, f: impl FnOnce(&[u8]) -> R) -> PyResult<R> {
    if let Ok(bytes) = data.cast::<PyBytes>() {
        return Ok(f(bytes.as_bytes()));
    }
    if let Ok(array) = data.cast::<PyByteArray>() {
        return Ok(f(&array.to_vec()));
    }
    let buffer = PyBuffer::<u8>::get(data)?;
    Ok(f(&buffer.to_vec(data.py())?))
}

/// A response matched to its request, which is no longer pending.
#[pyclass(frozen, get_all, eq, module = "hubgate._core")]
pub(crate) struct ResponseReceived {
    transaction_id: u16,
    unit: u8,
    /// Held as a Python object so that reading it copies nothing.
    response: Py<Response>,
}

impl PartialEq for ResponseReceived {
    fn eq(&self, other: &Self) -> bool {
        (self.transaction_id, self.unit) == (other.transaction_id, other.unit)
            && self.response.get() == other.response.get()
    }
}

/// A frame that answers no pending request. When `transaction_id` is set,
/// that request is finished (failed) and may be retried at once.
#[pyclass(frozen, get_all, eq, module = "hubgate._core")]
#[derive(Debug, PartialEq)]
pub(crate) struct ResponseRejected {
    transaction_id: Option<u16>,
    unit: u8,
    reason: String,
}

impl ResponseRejected {
    pub(crate) fn new(transaction_id: Option<u16>, unit: u8, reason: String) -> Self {
        Self {
            transaction_id,
            unit,
            reason,
        }
    }
}

/// A well-formed request received by a server.
#[pyclass(frozen, get_all, eq, module = "hubgate._core")]
#[derive(Debug, PartialEq)]
pub(crate) struct RequestReceived {
    transaction_id: u16,
    unit: u8,
    request: Request,
}

/// A request that does not decode; answer with `exception_code` for
/// `function_code` (see `encode_exception`).
#[pyclass(frozen, get_all, eq, module = "hubgate._core")]
#[derive(Debug, PartialEq)]
pub(crate) struct RequestRejected {
    transaction_id: u16,
    unit: u8,
    function_code: u8,
    exception_code: u8,
    reason: String,
}

macro_rules! event_repr {
    ($($class:ident [$($field:ident),*]),* $(,)?) => {$(
        #[pymethods]
        impl $class {
            fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
                let fields = [$(stringify!($field).to_owned()),*];
                crate::modbus_pdu::attribute_repr(slf.as_any(), stringify!($class), &fields)
            }
        }
    )*};
}

event_repr!(
    ResponseReceived[transaction_id, unit, response],
    ResponseRejected[transaction_id, unit, reason],
    RequestReceived[transaction_id, unit, request],
    RequestRejected[transaction_id, unit, function_code, exception_code, reason],
);

fn client_event(py: Python<'_>, event: client::ClientEvent) -> PyResult<Py<PyAny>> {
    Ok(match event {
        client::ClientEvent::Response {
            transaction_id,
            unit,
            response,
        } => ResponseReceived {
            transaction_id,
            unit,
            response: Response::from(response)
                .into_pyobject(py)?
                .cast_into::<Response>()?
                .unbind(),
        }
        .into_pyobject(py)?
        .into_any()
        .unbind(),
        client::ClientEvent::Rejected {
            transaction_id,
            unit,
            reason,
        } => ResponseRejected {
            transaction_id,
            unit,
            reason: reason.to_string(),
        }
        .into_pyobject(py)?
        .into_any()
        .unbind(),
    })
}

fn server_event(py: Python<'_>, event: server::ServerEvent) -> PyResult<Py<PyAny>> {
    Ok(match event {
        server::ServerEvent::Request {
            transaction_id,
            unit,
            request,
        } => RequestReceived {
            transaction_id,
            unit,
            request: request.into(),
        }
        .into_pyobject(py)?
        .into_any()
        .unbind(),
        server::ServerEvent::Invalid {
            transaction_id,
            unit,
            error,
        } => RequestRejected {
            transaction_id,
            unit,
            function_code: error.function,
            exception_code: error.exception,
            reason: error.to_string(),
        }
        .into_pyobject(py)?
        .into_any()
        .unbind(),
    })
}

pub(crate) fn request_of(request: &Bound<'_, Request>) -> pdu::Request {
    request.get().clone().into()
}

/// A client codec class: the core codec with a scratch buffer reused for every
/// frame (so encoding allocates nothing), `new`, `encode_request` (documented by
/// `$encode_doc`) and `receive_data`, then the class's own methods.
macro_rules! client_codec {
    (
        $(#[$class_doc:meta])*
        $name:ident($core:ty);
        $(#[$encode_doc:meta])*
        encode_request;
        $($methods:tt)*
    ) => {
        $(#[$class_doc])*
        #[pyclass(module = "hubgate._core")]
        #[derive(Default)]
        pub(crate) struct $name {
            pub(crate) codec: $core,
            scratch: Vec<u8>,
        }

        #[pymethods]
        impl $name {
            #[new]
            fn new() -> Self {
                Self::default()
            }

            $(#[$encode_doc])*
            fn encode_request<'py>(
                &mut self,
                py: Python<'py>,
                unit: Int<u8>,
                request: &Bound<'py, Request>,
            ) -> Result<(u16, Bound<'py, PyBytes>), CoreError> {
                self.scratch.clear();
                let id = self
                    .codec
                    .encode_request_into(*unit, request_of(request), &mut self.scratch)?;
                Ok((id, PyBytes::new(py, &self.scratch)))
            }

            /// Appends received bytes (`bytes`, `bytearray` or `memoryview`).
            fn receive_data(&mut self, data: &Bound<'_, PyAny>) -> PyResult<()> {
                with_bytes(data, |d| self.codec.receive_data(d))
            }

            $($methods)*
        }
    };
}

client_codec! {
    /// Modbus TCP client codec: several requests may be in flight, matched by
    /// transaction id, unit and function.
    TcpClientCodec(client::TcpClient);
    /// Encodes `request` for `unit`; returns `(transaction_id, frame)`.
    encode_request;

    /// The next `ResponseReceived` or `ResponseRejected`, `None` when more
    /// bytes are needed; raises `FrameError` on a bad MBAP header.
    fn next_event(&mut self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        match self.codec.next_event().map_err(CoreError::from)? {
            Some(event) => client_event(py, event).map(Some),
            None => Ok(None),
        }
    }

    /// Stops waiting for a transaction; returns whether it was pending.
    fn forget(&mut self, transaction_id: Int<u16>) -> bool {
        self.codec.forget(*transaction_id)
    }

    /// Number of requests waiting for a response.
    #[getter]
    fn pending(&self) -> usize {
        self.codec.pending()
    }
}

client_codec! {
    /// Modbus RTU client codec (serial or RTU over TCP): one request at a time.
    RtuClientCodec(client::RtuClient);
    /// Encodes `request` for `unit`; returns `(transaction_id, frame)`. It
    /// replaces any pending request and drops buffered bytes as stale.
    encode_request;

    /// The next `ResponseReceived` or `ResponseRejected`, `None` when more
    /// bytes are needed.
    fn next_event(&mut self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        self.codec
            .next_event()
            .map(|event| client_event(py, event))
            .transpose()
    }

    /// Stops waiting (after a timeout) and drops buffered bytes; returns
    /// whether a request was pending.
    fn reset(&mut self) -> bool {
        self.codec.reset()
    }

    /// Number of requests waiting for a response (0 or 1).
    #[getter]
    fn pending(&self) -> usize {
        usize::from(self.codec.is_pending())
    }

    /// Bytes dropped so far while resynchronising.
    #[getter]
    fn discarded(&self) -> u64 {
        self.codec.discarded()
    }
}

fn exception(function_code: u8, exception_code: u8) -> pdu::Response {
    pdu::Response::Exception {
        function: function_code,
        code: exception_code,
    }
}

/// How a server codec frames a response; RTU frames carry no transaction id.
trait ResponseFrame {
    fn frame(
        transaction_id: u16,
        unit: u8,
        response: &pdu::Response,
    ) -> Result<Vec<u8>, pdu::EncodeError>;
}

impl ResponseFrame for server::TcpServer {
    fn frame(
        transaction_id: u16,
        unit: u8,
        response: &pdu::Response,
    ) -> Result<Vec<u8>, pdu::EncodeError> {
        Self::encode_response(transaction_id, unit, response)
    }
}

impl ResponseFrame for server::RtuServer {
    fn frame(_: u16, unit: u8, response: &pdu::Response) -> Result<Vec<u8>, pdu::EncodeError> {
        Self::encode_response(unit, response)
    }
}

/// A server codec class: the core codec, `new`, `receive_data`, `encode_response` and
/// `encode_exception` (framed by its `ResponseFrame`), then the class's own methods.
macro_rules! server_codec {
    ($(#[$class_doc:meta])* $name:ident($core:ty); $($methods:tt)*) => {
        $(#[$class_doc])*
        #[pyclass(module = "hubgate._core")]
        #[derive(Default)]
        pub(crate) struct $name($core);

        #[pymethods]
        impl $name {
            #[new]
            fn new() -> Self {
                Self::default()
            }

            /// Appends received bytes (`bytes`, `bytearray` or `memoryview`).
            fn receive_data(&mut self, data: &Bound<'_, PyAny>) -> PyResult<()> {
                with_bytes(data, |d| self.0.receive_data(d))
            }

            /// Encodes `response` as a whole frame.
            #[staticmethod]
            fn encode_response<'py>(
                py: Python<'py>,
                transaction_id: Int<u16>,
                unit: Int<u8>,
                response: &Bound<'py, Response>,
            ) -> Result<Bound<'py, PyBytes>, CoreError> {
                let response = pdu::Response::from(response.get().clone());
                let frame = <$core as ResponseFrame>::frame(*transaction_id, *unit, &response)?;
                Ok(PyBytes::new(py, &frame))
            }

            /// Encodes an exception response as a whole frame.
            #[staticmethod]
            fn encode_exception<'py>(
                py: Python<'py>,
                transaction_id: Int<u16>,
                unit: Int<u8>,
                function_code: Int<u8>,
                exception_code: Int<u8>,
            ) -> Result<Bound<'py, PyBytes>, CoreError> {
                let response = exception(*function_code, *exception_code);
                let frame = <$core as ResponseFrame>::frame(*transaction_id, *unit, &response)?;
                Ok(PyBytes::new(py, &frame))
            }

            $($methods)*
        }
    };
}

server_codec! {
    /// Modbus TCP server codec for one connection.
    TcpServerCodec(server::TcpServer);

    /// The next `RequestReceived` or `RequestRejected`, `None` when more
    /// bytes are needed; raises `FrameError` on a bad MBAP header.
    fn next_event(&mut self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        match self.0.next_event().map_err(CoreError::from)? {
            Some(event) => server_event(py, event).map(Some),
            None => Ok(None),
        }
    }
}

server_codec! {
    /// Modbus RTU server codec (serial or RTU over TCP); answers every unit.
    /// Transaction ids are always 0 and ignored when encoding.
    RtuServerCodec(server::RtuServer);

    /// The next `RequestReceived` or `RequestRejected`, `None` when more
    /// bytes are needed; frames with a bad CRC are dropped silently.
    fn next_event(&mut self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        self.0
            .next_event()
            .map(|event| server_event(py, event))
            .transpose()
    }

    /// Bytes dropped so far while resynchronising.
    #[getter]
    fn discarded(&self) -> u64 {
        self.0.discarded()
    }
}
