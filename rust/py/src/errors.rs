//! The one place where Rust errors become Python exceptions.
//!
//! Binding functions return `Result<T, CoreError>`; every error of
//! `hubgate-core` converts into [`CoreError`] with `?`, and [`CoreError`]
//! picks the Python exception type. Hierarchy (mirrored in
//! `python/hubgate/_core.pyi`, re-exported by `hubgate.errors`):
//!
//! - `HubgateError(Exception)`: base of every error raised by the extension.
//!   - `CodecError(HubgateError, ValueError)`: bytes that do not form a valid
//!     frame, or a value that cannot be encoded (an integer argument out of its
//!     range included: never `OverflowError`).
//!     - `CrcError(CodecError)`: an RTU frame whose CRC does not match.
//!     - `FrameError(CodecError)`: a Modbus TCP header that closes the stream.
//!     - `EncodeError(CodecError)`: a Modbus request or response outside the
//!       specification's limits; nothing is sent.
//!     - `FieldError(CodecError)`: a register field, value or read plan that
//!       does not make sense.
//!   - `TopologyError(HubgateError, ValueError)`: a site tree or connector set
//!     the allocator cannot work on (an index or priority out of range included).
//!   - `AllocationInputError(HubgateError, ValueError)`: a cycle's measurements
//!     that cannot be used (wrong length, NaN, time going back).
//!   - `PlanInputError(HubgateError, ValueError)`: a deadline plan's slots or
//!     sessions that cannot be used (lengths differ, NaN, negative).

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

create_exception!(
    hubgate._core,
    HubgateError,
    PyException,
    "Base of every error raised by hubgate's Rust core."
);

/// The Python exception types that have more than one base, built at import.
struct Types {
    codec: Py<PyType>,
    crc: Py<PyType>,
    frame: Py<PyType>,
    encode: Py<PyType>,
    field: Py<PyType>,
    topology: Py<PyType>,
    alloc_input: Py<PyType>,
    plan_input: Py<PyType>,
}

static TYPES: PyOnceLock<Types> = PyOnceLock::new();

fn new_type(
    py: Python<'_>,
    name: &str,
    bases: &[Bound<'_, PyType>],
    doc: &str,
) -> PyResult<Py<PyType>> {
    let namespace = PyDict::new(py);
    namespace.set_item("__module__", "hubgate._core")?;
    namespace.set_item("__doc__", doc)?;
    let bases = PyTuple::new(py, bases)?;
    Ok(py
        .get_type::<PyType>()
        .call1((name, bases, namespace))?
        .cast_into::<PyType>()?
        .unbind())
}

fn types(py: Python<'_>) -> PyResult<&Types> {
    TYPES.get_or_try_init(py, || {
        let codec = new_type(
            py,
            "CodecError",
            &[py.get_type::<HubgateError>(), py.get_type::<PyValueError>()],
            "Bytes that do not form a valid frame, or a value that cannot be encoded.",
        )?;
        let crc = new_type(
            py,
            "CrcError",
            &[codec.bind(py).clone()],
            "An RTU frame whose CRC does not match its content.",
        )?;
        let frame = new_type(
            py,
            "FrameError",
            &[codec.bind(py).clone()],
            "A Modbus TCP header that makes the rest of the stream meaningless: close it.",
        )?;
        let encode = new_type(
            py,
            "EncodeError",
            &[codec.bind(py).clone()],
            "A Modbus request or response outside the specification's limits.",
        )?;
        let field = new_type(
            py,
            "FieldError",
            &[codec.bind(py).clone()],
            "A register field, value or read plan that does not make sense.",
        )?;
        let base = || [py.get_type::<HubgateError>(), py.get_type::<PyValueError>()];
        let topology = new_type(
            py,
            "TopologyError",
            &base(),
            "A site tree or connector set the allocator cannot work on.",
        )?;
        let alloc_input = new_type(
            py,
            "AllocationInputError",
            &base(),
            "A cycle's measurements the allocator cannot use; its state is unchanged.",
        )?;
        let plan_input = new_type(
            py,
            "PlanInputError",
            &base(),
            "A deadline plan's slots or sessions that cannot be used.",
        )?;
        Ok(Types {
            codec,
            crc,
            frame,
            encode,
            field,
            topology,
            alloc_input,
            plan_input,
        })
    })
}

/// Adds the exception types to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let types = types(py)?;
    m.add("HubgateError", py.get_type::<HubgateError>())?;
    m.add("CodecError", types.codec.bind(py))?;
    m.add("CrcError", types.crc.bind(py))?;
    m.add("FrameError", types.frame.bind(py))?;
    m.add("EncodeError", types.encode.bind(py))?;
    m.add("FieldError", types.field.bind(py))?;
    m.add("TopologyError", types.topology.bind(py))?;
    m.add("AllocationInputError", types.alloc_input.bind(py))?;
    m.add("PlanInputError", types.plan_input.bind(py))?;
    Ok(())
}

/// Where an integer from Python that does not fit its Rust type belongs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Domain {
    /// A Modbus field: `CodecError`.
    Codec,
    /// The allocator's tree: `TopologyError`.
    Topology,
}

/// Any error of `hubgate-core`, on its way to becoming a Python exception.
#[derive(Debug)]
pub(crate) enum CoreError {
    /// An integer from Python out of its Rust type's range (see `crate::ints`).
    OutOfRange(Domain, String),
    /// See [`hubgate_core::crc::CrcError`].
    Crc(hubgate_core::crc::CrcError),
    /// See [`hubgate_core::modbus::tcp::FrameError`].
    Frame(hubgate_core::modbus::tcp::FrameError),
    /// See [`hubgate_core::modbus::pdu::EncodeError`].
    Encode(hubgate_core::modbus::pdu::EncodeError),
    /// See [`hubgate_core::modbus::values::ValueError`].
    Field(hubgate_core::modbus::values::ValueError),
    /// See [`hubgate_core::alloc::TopologyError`].
    Topology(hubgate_core::alloc::TopologyError),
    /// See [`hubgate_core::alloc::InputError`].
    AllocInput(hubgate_core::alloc::InputError),
    /// See [`hubgate_core::plan::PlanError`].
    PlanInput(hubgate_core::plan::PlanError),
    /// See [`hubgate_core::paths::PathError`]: paths that do not fit the site are a
    /// `TopologyError`, columns that do not fit the paths an `AllocationInputError`.
    Paths(hubgate_core::paths::PathError),
    /// See [`hubgate_core::ocpp::SchemaError`] (our bug: a shipped schema that does not
    /// compile): a `HubgateError`.
    Schema(hubgate_core::ocpp::SchemaError),
}

impl From<hubgate_core::ocpp::SchemaError> for CoreError {
    fn from(err: hubgate_core::ocpp::SchemaError) -> Self {
        Self::Schema(err)
    }
}

impl From<hubgate_core::paths::PathError> for CoreError {
    fn from(err: hubgate_core::paths::PathError) -> Self {
        Self::Paths(err)
    }
}

impl From<hubgate_core::plan::PlanError> for CoreError {
    fn from(err: hubgate_core::plan::PlanError) -> Self {
        Self::PlanInput(err)
    }
}

impl From<hubgate_core::alloc::TopologyError> for CoreError {
    fn from(err: hubgate_core::alloc::TopologyError) -> Self {
        Self::Topology(err)
    }
}

impl From<hubgate_core::alloc::InputError> for CoreError {
    fn from(err: hubgate_core::alloc::InputError) -> Self {
        Self::AllocInput(err)
    }
}

impl From<hubgate_core::modbus::tcp::FrameError> for CoreError {
    fn from(err: hubgate_core::modbus::tcp::FrameError) -> Self {
        Self::Frame(err)
    }
}

impl From<hubgate_core::modbus::pdu::EncodeError> for CoreError {
    fn from(err: hubgate_core::modbus::pdu::EncodeError) -> Self {
        Self::Encode(err)
    }
}

impl From<hubgate_core::modbus::values::ValueError> for CoreError {
    fn from(err: hubgate_core::modbus::values::ValueError) -> Self {
        Self::Field(err)
    }
}

impl From<hubgate_core::crc::CrcError> for CoreError {
    fn from(err: hubgate_core::crc::CrcError) -> Self {
        Self::Crc(err)
    }
}

fn instantiate(py: Python<'_>, pick: fn(&Types) -> &Py<PyType>, message: String) -> PyErr {
    let built = types(py).and_then(|t| pick(t).bind(py).call1((message.clone(),)));
    match built {
        Ok(instance) => PyErr::from_value(instance),
        Err(_) => HubgateError::new_err(message),
    }
}

impl From<CoreError> for PyErr {
    fn from(err: CoreError) -> Self {
        Python::attach(|py| match err {
            CoreError::OutOfRange(Domain::Codec, message) => instantiate(py, |t| &t.codec, message),
            CoreError::OutOfRange(Domain::Topology, message) => {
                instantiate(py, |t| &t.topology, message)
            }
            CoreError::Crc(e) => instantiate(py, |t| &t.crc, e.to_string()),
            CoreError::Frame(e) => instantiate(py, |t| &t.frame, e.to_string()),
            CoreError::Encode(e) => instantiate(py, |t| &t.encode, e.to_string()),
            CoreError::Field(e) => instantiate(py, |t| &t.field, e.to_string()),
            CoreError::Topology(e) => instantiate(py, |t| &t.topology, e.to_string()),
            CoreError::AllocInput(e) => instantiate(py, |t| &t.alloc_input, e.to_string()),
            CoreError::PlanInput(e) => instantiate(py, |t| &t.plan_input, e.to_string()),
            CoreError::Paths(e @ hubgate_core::paths::PathError::Length { .. }) => {
                instantiate(py, |t| &t.alloc_input, e.to_string())
            }
            CoreError::Paths(e) => instantiate(py, |t| &t.topology, e.to_string()),
            CoreError::Schema(e) => HubgateError::new_err(e.0),
        })
    }
}
