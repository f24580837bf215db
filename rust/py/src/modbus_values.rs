//! Typed register fields and compiled read plans for Python.

use hubgate_core::modbus::planner::{self, Limits};
use hubgate_core::modbus::values::{Codec, Sentinel, Value, ValueType, WordOrder};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyInt, PyList, PyString};

use crate::errors::CoreError;
use crate::modbus_pdu::{Request, Response};

/// One typed value in registers: where it is and how it decodes.
#[pyclass(frozen, module = "hubgate._core")]
#[derive(Clone)]
pub(crate) struct Field {
    inner: planner::Field,
    type_name: String,
    size: Option<u16>,
    order_name: String,
    sentinel: Option<u64>,
    standard_sentinel: bool,
}

fn value_to_py(py: Python<'_>, value: Value) -> PyResult<Bound<'_, PyAny>> {
    Ok(match value {
        Value::Int(v) => v.into_pyobject(py)?.into_any(),
        Value::UInt(v) => v.into_pyobject(py)?.into_any(),
        Value::Float(v) => PyFloat::new(py, v).into_any(),
        Value::Bool(v) => PyBool::new(py, v).to_owned().into_any(),
        Value::Text(v) => PyString::new(py, &v).into_any(),
        Value::Missing => py.None().into_bound(py),
    })
}

fn value_from_py(value: &Bound<'_, PyAny>) -> PyResult<Value> {
    Ok(if value.is_instance_of::<PyBool>() {
        Value::Bool(value.extract()?)
    } else if value.is_instance_of::<PyInt>() {
        match value.extract::<i64>() {
            Ok(v) => Value::Int(v),
            Err(_) => Value::UInt(value.extract()?),
        }
    } else if value.is_instance_of::<PyString>() {
        Value::Text(value.extract()?)
    } else {
        Value::Float(value.extract()?)
    })
}

/// Registers of a `Response` (without copying) or of a sequence of ints.
enum Registers<'a> {
    Borrowed(&'a [u16]),
    Owned(Vec<u16>),
}

impl Registers<'_> {
    fn get(&self) -> &[u16] {
        match self {
            Self::Borrowed(r) => r,
            Self::Owned(r) => r,
        }
    }
}

fn registers_of<'a>(
    item: &'a Bound<'_, PyAny>,
    response: Option<&'a Response>,
) -> PyResult<Registers<'a>> {
    match response {
        Some(response) => response
            .registers()
            .map(Registers::Borrowed)
            .ok_or_else(|| pyo3::exceptions::PyTypeError::new_err("response carries no registers")),
        None => Ok(Registers::Owned(item.extract()?)),
    }
}

#[pymethods]
impl Field {
    /// A field of `type` (`u16`, `i16`, `u32`, `i32`, `u64`, `i64`, `f32`,
    /// `f64`, `bitfield16`, `bitfield32`, `bit` with `size` = bit index,
    /// `string` with `size` = registers) at `address`, read with `function`
    /// 3 or 4. `sentinel`: `True` for the type's standard "not available"
    /// marker, an int for a raw marker, `None` for none.
    #[new]
    #[pyo3(signature = (address, r#type, *, function = 3, order = "ABCD", scale = 1.0, offset = 0.0, sentinel = None, size = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        address: u16,
        r#type: &str,
        function: u8,
        order: &str,
        scale: f64,
        offset: f64,
        sentinel: Option<&Bound<'_, PyAny>>,
        size: Option<u16>,
    ) -> PyResult<Self> {
        let kind = ValueType::parse(r#type, size).map_err(CoreError::from)?;
        let order_value: WordOrder = order.parse().map_err(CoreError::from)?;
        let (sentinel_value, standard) = match sentinel {
            None => (Sentinel::None, false),
            Some(s) if s.is_instance_of::<PyBool>() => {
                if s.extract::<bool>()? {
                    (Sentinel::Standard, true)
                } else {
                    (Sentinel::None, false)
                }
            }
            Some(s) => (Sentinel::Raw(s.extract()?), false),
        };
        if !scale.is_finite() || scale == 0.0 || !offset.is_finite() {
            return Err(CoreError::Field(hubgate_core::modbus::values::ValueError(
                "scale must be finite and nonzero, offset finite".into(),
            ))
            .into());
        }
        Ok(Self {
            inner: planner::Field {
                function,
                address,
                codec: Codec {
                    kind,
                    order: order_value,
                    scale,
                    offset,
                    sentinel: sentinel_value,
                },
            },
            type_name: r#type.to_owned(),
            size,
            order_name: order.to_owned(),
            sentinel: match sentinel_value {
                Sentinel::Raw(v) => Some(v),
                _ => None,
            },
            standard_sentinel: standard,
        })
    }

    /// First register.
    #[getter]
    fn address(&self) -> u16 {
        self.inner.address
    }

    /// Number of registers the value occupies.
    #[getter]
    fn count(&self) -> usize {
        self.inner.codec.kind.registers()
    }

    /// 3 (holding) or 4 (input registers).
    #[getter]
    fn function(&self) -> u8 {
        self.inner.function
    }

    /// Decodes the field's registers (a register `Response` or ints); `None`
    /// when the sentinel is found.
    fn decode<'py>(&self, registers: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let response = registers.cast::<Response>().ok().map(|r| r.get());
        let words = registers_of(registers, response)?;
        if words.get().len() != self.count() {
            return Err(
                CoreError::Field(hubgate_core::modbus::values::ValueError(format!(
                    "field takes {} registers, got {}",
                    self.count(),
                    words.get().len()
                )))
                .into(),
            );
        }
        value_to_py(registers.py(), self.inner.codec.decode(words.get()))
    }

    /// Registers holding `value` (scale and offset undone), for writing.
    fn encode(&self, value: &Bound<'_, PyAny>) -> PyResult<Vec<u16>> {
        Ok(self
            .inner
            .codec
            .encode(&value_from_py(value)?)
            .map_err(CoreError::from)?)
    }

    fn __repr__(&self) -> String {
        let c = &self.inner.codec;
        let sentinel = if self.standard_sentinel {
            "True".to_owned()
        } else {
            self.sentinel.map_or("None".into(), |v| format!("0x{v:X}"))
        };
        let size = self.size.map_or(String::new(), |s| format!(", size={s}"));
        format!(
            "Field({}, {:?}{size}, function={}, order={:?}, scale={:?}, offset={:?}, sentinel={sentinel})",
            self.inner.address, self.type_name, self.inner.function, self.order_name, c.scale, c.offset,
        )
    }
}

/// Fields compiled into the fewest read requests; decodes every field from
/// the responses in one call.
#[pyclass(frozen, module = "hubgate._core")]
pub(crate) struct ReadPlan {
    plan: planner::ReadPlan,
    requests: Py<PyList>,
}

#[pymethods]
impl ReadPlan {
    /// Plans reads for `fields`: gaps of at most `max_gap` unwanted registers
    /// are read through, blocks hold at most `max_block` registers, no read
    /// touches a `forbidden` `(first, last)` range, and `single_register`
    /// devices get one register per request.
    #[new]
    #[pyo3(signature = (fields, *, max_gap = 0, max_block = 125, forbidden = Vec::new(), single_register = false))]
    fn new(
        py: Python<'_>,
        fields: Vec<PyRef<'_, Field>>,
        max_gap: u16,
        max_block: u16,
        forbidden: Vec<(u16, u16)>,
        single_register: bool,
    ) -> PyResult<Self> {
        let limits = Limits {
            max_gap,
            max_block,
            forbidden,
            single_register,
        };
        let fields = fields.iter().map(|f| f.inner).collect();
        let plan = planner::ReadPlan::new(fields, &limits).map_err(CoreError::from)?;
        let requests = plan
            .reads()
            .iter()
            .map(|read| Request::from(read.request()))
            .collect::<Vec<_>>();
        Ok(Self {
            plan,
            requests: PyList::new(py, requests)?.unbind(),
        })
    }

    /// The read requests to send, in the order `decode` takes their responses.
    #[getter]
    fn requests<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = self.requests.bind(py);
        PyList::new(py, list.iter())
    }

    /// Number of fields.
    fn __len__(&self) -> usize {
        self.plan.fields().len()
    }

    /// Values of every field in the order given (`None` where the sentinel
    /// is found or the read failed) from one response per request: a register
    /// `Response`, a sequence of ints, or `None` for a failed read.
    fn decode<'py>(
        &self,
        py: Python<'py>,
        responses: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let items: Vec<Bound<'py, PyAny>> = responses.try_iter()?.collect::<PyResult<_>>()?;
        let borrowed: Vec<Option<&Response>> = items
            .iter()
            .map(|item| item.cast::<Response>().ok().map(|r| r.get()))
            .collect();
        let mut words = Vec::with_capacity(items.len());
        for (item, response) in items.iter().zip(&borrowed) {
            words.push(if item.is_none() {
                None
            } else {
                Some(registers_of(item, *response)?)
            });
        }
        let slices: Vec<Option<&[u16]>> = words
            .iter()
            .map(|w| w.as_ref().map(Registers::get))
            .collect();
        let out = PyList::empty(py);
        let mut failed = None;
        self.plan
            .decode_each(&slices, |value| {
                if failed.is_none() {
                    if let Err(err) = value_to_py(py, value).and_then(|v| out.append(v)) {
                        failed = Some(err);
                    }
                }
            })
            .map_err(CoreError::from)?;
        failed.map_or(Ok(out), Err)
    }
}
