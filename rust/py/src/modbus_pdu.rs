//! Modbus request and response PDUs as Python classes: `Request.*` and
//! `Response.*` variants (frozen, comparable, usable in `match`).

use hubgate_core::modbus::pdu;
use hubgate_core::modbus::planner::Block;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::ints::{Int, Ints};

/// A byte string that crosses into Python as `bytes` (a `Vec<u8>` would
/// become a list of ints).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Bytes(Vec<u8>);

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "b'{}'", self.0.escape_ascii())
    }
}

impl<'py> IntoPyObject<'py> for Bytes {
    type Target = PyBytes;
    type Output = Bound<'py, PyBytes>;
    type Error = std::convert::Infallible;

    fn into_pyobject(self, py: Python<'py>) -> Result<Self::Output, Self::Error> {
        Ok(PyBytes::new(py, &self.0))
    }
}

impl<'py> IntoPyObject<'py> for &Bytes {
    type Target = PyBytes;
    type Output = Bound<'py, PyBytes>;
    type Error = std::convert::Infallible;

    fn into_pyobject(self, py: Python<'py>) -> Result<Self::Output, Self::Error> {
        Ok(PyBytes::new(py, &self.0))
    }
}

impl FromPyObject<'_, '_> for Bytes {
    type Error = PyErr;

    fn extract(obj: Borrowed<'_, '_, PyAny>) -> PyResult<Self> {
        Ok(Self(obj.cast::<PyBytes>()?.as_bytes().to_vec()))
    }
}

/// A Modbus request PDU; build one of its variants.
#[pyclass(eq, module = "hubgate._core")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Request {
    /// FC1: read `count` (1–2000) coils.
    ReadCoils { address: Int<u16>, count: Int<u16> },
    /// FC2: read `count` (1–2000) discrete inputs.
    ReadDiscreteInputs { address: Int<u16>, count: Int<u16> },
    /// FC3: read `count` (1–125) holding registers.
    ReadHoldingRegisters { address: Int<u16>, count: Int<u16> },
    /// FC4: read `count` (1–125) input registers.
    ReadInputRegisters { address: Int<u16>, count: Int<u16> },
    /// FC5: switch one coil.
    WriteSingleCoil { address: Int<u16>, value: bool },
    /// FC6: write one register.
    WriteSingleRegister { address: Int<u16>, value: Int<u16> },
    /// FC15: write 1–1968 coils.
    WriteMultipleCoils {
        address: Int<u16>,
        values: Vec<bool>,
    },
    /// FC16: write 1–123 registers.
    WriteMultipleRegisters {
        address: Int<u16>,
        values: Ints<u16>,
    },
    /// FC23: write 1–121 registers, then read 1–125.
    ReadWriteMultipleRegisters {
        read_address: Int<u16>,
        read_count: Int<u16>,
        write_address: Int<u16>,
        values: Ints<u16>,
    },
    /// FC43/14: read device identification objects (read code 1 and object 0 for the
    /// basic objects).
    ReadDeviceIdentification {
        read_code: Int<u8>,
        object_id: Int<u8>,
    },
}

#[pymethods]
impl Request {
    /// The function code.
    #[getter]
    fn function_code(&self) -> u8 {
        pdu::Request::from(self.clone()).function()
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        variant_repr(slf.as_any())
    }
}

/// A Modbus response PDU, including exception responses.
#[pyclass(eq, module = "hubgate._core")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Response {
    /// FC1: coil states, as many as requested once matched.
    ReadCoils { bits: Vec<bool> },
    /// FC2: input states, as many as requested once matched.
    ReadDiscreteInputs { bits: Vec<bool> },
    /// FC3.
    ReadHoldingRegisters { registers: Ints<u16> },
    /// FC4.
    ReadInputRegisters { registers: Ints<u16> },
    /// FC5 echo.
    WriteSingleCoil { address: Int<u16>, value: bool },
    /// FC6 echo.
    WriteSingleRegister { address: Int<u16>, value: Int<u16> },
    /// FC15.
    WriteMultipleCoils { address: Int<u16>, count: Int<u16> },
    /// FC16.
    WriteMultipleRegisters { address: Int<u16>, count: Int<u16> },
    /// FC23: the registers read.
    ReadWriteMultipleRegisters { registers: Ints<u16> },
    /// FC43/14.
    ReadDeviceIdentification {
        read_code: Int<u8>,
        conformity: Int<u8>,
        more_follows: bool,
        next_object_id: Int<u8>,
        objects: Vec<(Int<u8>, Bytes)>,
    },
    /// An exception response to `function` with exception `code`.
    Exception { function: Int<u8>, code: Int<u8> },
}

#[pymethods]
impl Response {
    /// The function code of the request this answers.
    #[getter]
    fn function_code(&self) -> u8 {
        match self {
            Self::Exception { function, .. } => **function,
            other => pdu::Response::from(other.clone()).function(),
        }
    }

    /// Whether this is an exception response.
    #[getter]
    fn is_exception(&self) -> bool {
        matches!(self, Self::Exception { .. })
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        variant_repr(slf.as_any())
    }
}

impl Response {
    /// Registers or bits of a read response, without copying.
    pub(crate) fn block(&self) -> Option<Block<'_>> {
        match self {
            Self::ReadHoldingRegisters { registers }
            | Self::ReadInputRegisters { registers }
            | Self::ReadWriteMultipleRegisters { registers } => {
                Some(Block::Registers(&registers.0))
            }
            Self::ReadCoils { bits } | Self::ReadDiscreteInputs { bits } => Some(Block::Bits(bits)),
            _ => None,
        }
    }
}

/// `name(a=repr(obj.a), ...)`: the constructor-like repr of `obj`.
pub(crate) fn attribute_repr(
    obj: &Bound<'_, PyAny>,
    name: &str,
    fields: &[String],
) -> PyResult<String> {
    let parts = fields
        .iter()
        .map(|field| Ok(format!("{field}={}", obj.getattr(field.as_str())?.repr()?)))
        .collect::<PyResult<Vec<_>>>()?;
    Ok(format!("{name}({})", parts.join(", ")))
}

/// Repr of a `Request.*` or `Response.*` variant, from its `__match_args__`.
fn variant_repr(obj: &Bound<'_, PyAny>) -> PyResult<String> {
    let class = obj.get_type();
    let fields: Vec<String> = class.getattr("__match_args__")?.extract()?;
    attribute_repr(obj, &class.qualname()?.to_string(), &fields)
}

/// Field conversion between the core enums and their Python mirrors.
trait Mirror<T> {
    fn mirror(self) -> T;
}

impl<T> Mirror<T> for T {
    fn mirror(self) -> T {
        self
    }
}

impl<T> Mirror<Int<T>> for T {
    fn mirror(self) -> Int<T> {
        Int::new(self)
    }
}

impl<T> Mirror<T> for Int<T> {
    fn mirror(self) -> T {
        self.0
    }
}

impl Mirror<Ints<u16>> for Vec<u16> {
    fn mirror(self) -> Ints<u16> {
        Ints(self)
    }
}

impl Mirror<Vec<u16>> for Ints<u16> {
    fn mirror(self) -> Vec<u16> {
        self.0
    }
}

impl Mirror<Vec<(Int<u8>, Bytes)>> for Vec<(u8, Vec<u8>)> {
    fn mirror(self) -> Vec<(Int<u8>, Bytes)> {
        self.into_iter()
            .map(|(id, v)| (Int::new(id), Bytes(v)))
            .collect()
    }
}

impl Mirror<Vec<(u8, Vec<u8>)>> for Vec<(Int<u8>, Bytes)> {
    fn mirror(self) -> Vec<(u8, Vec<u8>)> {
        self.into_iter().map(|(id, v)| (id.0, v.0)).collect()
    }
}

macro_rules! mirror {
    ($from:ty => $to:ty { $($variant:ident { $($field:ident),* }),* $(,)? }) => {
        impl From<$from> for $to {
            fn from(value: $from) -> Self {
                type Source = $from;
                type Target = $to;
                match value {
                    $(Source::$variant { $($field),* } => Target::$variant { $($field: Mirror::mirror($field)),* },)*
                }
            }
        }
    };
}

macro_rules! both_ways {
    ($a:ty, $b:ty, $($body:tt)*) => {
        mirror!($a => $b { $($body)* });
        mirror!($b => $a { $($body)* });
    };
}

both_ways!(
    Request,
    pdu::Request,
    ReadCoils { address, count },
    ReadDiscreteInputs { address, count },
    ReadHoldingRegisters { address, count },
    ReadInputRegisters { address, count },
    WriteSingleCoil { address, value },
    WriteSingleRegister { address, value },
    WriteMultipleCoils { address, values },
    WriteMultipleRegisters { address, values },
    ReadWriteMultipleRegisters {
        read_address,
        read_count,
        write_address,
        values
    },
    ReadDeviceIdentification {
        read_code,
        object_id
    },
);

both_ways!(
    Response,
    pdu::Response,
    ReadCoils { bits },
    ReadDiscreteInputs { bits },
    ReadHoldingRegisters { registers },
    ReadInputRegisters { registers },
    WriteSingleCoil { address, value },
    WriteSingleRegister { address, value },
    WriteMultipleCoils { address, count },
    WriteMultipleRegisters { address, count },
    ReadWriteMultipleRegisters { registers },
    ReadDeviceIdentification {
        read_code,
        conformity,
        more_follows,
        next_object_id,
        objects
    },
    Exception { function, code },
);
