//! Typed register fields and compiled read plans for Python.

use hubgate_core::modbus::function::{READ_COILS, READ_DISCRETE_INPUTS};
use hubgate_core::modbus::pdu;
use hubgate_core::modbus::planner::{self, Block, Limits};
use hubgate_core::modbus::values::{Codec, Sentinel, Value, ValueError, ValueType};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyInt, PyList, PyString};

use crate::errors::CoreError;
use crate::ints::{Int, Ints};
use crate::modbus_pdu::{Request, Response};

fn field_error(message: String) -> PyErr {
    CoreError::Field(ValueError(message)).into()
}

/// One typed value in registers (or one bit): where it is and how it decodes.
#[pyclass(frozen, module = "hubgate._core")]
#[derive(Clone)]
pub(crate) struct Field {
    inner: planner::Field,
    repr: String,
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
            Err(_) => Value::UInt(value.extract::<Int<u64>>()?.0),
        }
    } else if value.is_instance_of::<PyString>() {
        Value::Text(value.extract()?)
    } else {
        Value::Float(value.extract()?)
    })
}

fn sentinel_of(sentinel: Option<&Bound<'_, PyAny>>) -> PyResult<Sentinel> {
    Ok(match sentinel {
        None => Sentinel::None,
        Some(s) if s.is_instance_of::<PyBool>() => {
            if s.extract::<bool>()? {
                Sentinel::Standard
            } else {
                Sentinel::None
            }
        }
        Some(s) if s.is_instance_of::<PyInt>() => Sentinel::Raw(vec![s.extract::<Int<u64>>()?.0]),
        Some(s) => {
            let values = s.extract::<Ints<u64>>()?.0;
            if values.is_empty() {
                Sentinel::None
            } else {
                Sentinel::Raw(values)
            }
        }
    })
}

/// What a read brought back: a `Response` (borrowed) or a sequence (copied).
enum Owned<'a> {
    Borrowed(Block<'a>),
    Registers(Vec<u16>),
    Bits(Vec<bool>),
}

impl Owned<'_> {
    fn block(&self) -> Block<'_> {
        match self {
            Self::Borrowed(block) => *block,
            Self::Registers(r) => Block::Registers(r),
            Self::Bits(b) => Block::Bits(b),
        }
    }
}

fn block_of<'a>(item: &'a Bound<'_, PyAny>, bits: bool) -> PyResult<Owned<'a>> {
    if let Ok(response) = item.cast::<Response>() {
        return response
            .get()
            .block()
            .map(Owned::Borrowed)
            .ok_or_else(|| field_error("response carries no registers or bits".into()));
    }
    Ok(if bits {
        Owned::Bits(item.extract()?)
    } else {
        Owned::Registers(item.extract::<Ints<u16>>()?.0)
    })
}

#[pymethods]
impl Field {
    /// A field of `type` at `address`, read with `function` 1 (coil), 2
    /// (discrete input), 3 (holding) or 4 (input register); see the stub.
    #[new]
    // The text signature spelled out: PyO3 shows a default that is not a literal as `...`.
    #[pyo3(
        text_signature = "(address, type='u16', *, function=3, count=None, order='ABCD', \
        scale=1.0, offset=0.0, sentinel=None, mask=None, shift=0, scale_factor=None, \
        invert=False, charset='utf-8')"
    )]
    #[pyo3(signature = (
        address, r#type = "u16", *, function = Int::new(3), count = None, order = "ABCD",
        scale = 1.0, offset = 0.0, sentinel = None, mask = None, shift = Int::new(0),
        scale_factor = None,
        invert = false, charset = "utf-8"
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        address: Int<u16>,
        r#type: &str,
        function: Int<u8>,
        count: Option<Int<u16>>,
        order: &str,
        scale: f64,
        offset: f64,
        sentinel: Option<&Bound<'_, PyAny>>,
        mask: Option<Int<u64>>,
        shift: Int<u8>,
        scale_factor: Option<Int<u16>>,
        invert: bool,
        charset: &str,
    ) -> PyResult<Self> {
        let (address, function, shift) = (address.0, function.0, shift.0);
        let (count, mask, scale_factor) = (
            count.map(|c| c.0),
            mask.map(|m| m.0),
            scale_factor.map(|f| f.0),
        );
        let is_bit = matches!(function, READ_COILS | READ_DISCRETE_INPUTS);
        let kind = if is_bit {
            ValueType::U16
        } else {
            ValueType::parse(r#type, count).map_err(CoreError::from)?
        };
        if !scale.is_finite() || scale == 0.0 || !offset.is_finite() {
            return Err(field_error(
                "scale must be finite and nonzero, offset finite".into(),
            ));
        }
        if shift > 63 {
            return Err(field_error("shift must be 0..=63".into()));
        }
        let codec = Codec {
            kind,
            order: order.parse().map_err(CoreError::from)?,
            scale,
            offset,
            sentinel: sentinel_of(sentinel)?,
            mask,
            shift,
            charset: charset.parse().map_err(CoreError::from)?,
        };
        let optional = |v: Option<u64>| v.map_or_else(|| "None".to_owned(), |v| v.to_string());
        let repr = format!(
            "Field({address}, {type:?}, function={function}, count={count}, order={order:?}, \
             scale={scale:?}, offset={offset:?}, sentinel={sentinel}, mask={mask}, \
             shift={shift}, scale_factor={scale_factor}, invert={invert}, charset={charset:?})",
            type = r#type,
            count = optional(count.map(u64::from)),
            sentinel = sentinel.map_or(Ok("None".to_owned()), |s| s.repr().map(|r| r.to_string()))?,
            mask = optional(mask),
            scale_factor = optional(scale_factor.map(u64::from)),
            invert = if invert { "True" } else { "False" },
        );
        Ok(Self {
            inner: planner::Field {
                function,
                address,
                codec,
                scale_factor,
                invert,
            },
            repr,
        })
    }

    /// First register (or the bit).
    #[getter]
    fn address(&self) -> u16 {
        self.inner.address
    }

    /// Number of registers (or bits) the value occupies.
    #[getter]
    fn count(&self) -> usize {
        self.inner.width()
    }

    /// 1, 2, 3 or 4.
    #[getter]
    fn function(&self) -> u8 {
        self.inner.function
    }

    /// Address of the scale-factor register, if any.
    #[getter]
    fn scale_factor(&self) -> Option<u16> {
        self.inner.scale_factor
    }

    /// Decodes exactly this field's registers (or its one bit); `None` when
    /// the sentinel is found. A field with a scale factor needs `exponent`.
    #[pyo3(signature = (registers, *, exponent = None))]
    fn decode<'py>(
        &self,
        registers: &Bound<'py, PyAny>,
        exponent: Option<Int<i64>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let is_bit = matches!(self.inner.function, READ_COILS | READ_DISCRETE_INPUTS);
        let exponent = self.exponent(exponent.map(|e| e.0))?;
        let owned = block_of(registers, is_bit)?;
        let block = owned.block();
        let width = self.inner.width();
        let value = match block {
            Block::Bits([bit]) if is_bit => Value::Bool(*bit != self.inner.invert),
            Block::Registers(r) if !is_bit && r.len() == width => {
                self.inner.codec.decode_with(r, exponent)
            }
            _ => {
                return Err(field_error(format!(
                    "field takes {width} {}",
                    if is_bit { "bit" } else { "registers" }
                )))
            }
        };
        value_to_py(registers.py(), value)
    }

    /// Registers holding `value` (scale, offset and exponent undone), for
    /// writing; a bit field gives `[0]` or `[1]`.
    #[pyo3(signature = (value, *, exponent = None))]
    fn encode(&self, value: &Bound<'_, PyAny>, exponent: Option<Int<i64>>) -> PyResult<Vec<u16>> {
        let exponent = self.exponent(exponent.map(|e| e.0))?;
        if matches!(self.inner.function, READ_COILS | READ_DISCRETE_INPUTS) {
            let on: bool = value.extract()?;
            return Ok(vec![u16::from(on != self.inner.invert)]);
        }
        Ok(self
            .inner
            .codec
            .encode_with(&value_from_py(value)?, exponent)
            .map_err(CoreError::from)?)
    }

    fn __repr__(&self) -> String {
        self.repr.clone()
    }
}

impl Field {
    fn exponent(&self, exponent: Option<i64>) -> PyResult<Option<i64>> {
        match (self.inner.scale_factor, exponent) {
            (Some(_), None) => Err(field_error(
                "field has a scale factor: pass exponent, or decode through a ReadPlan".into(),
            )),
            (None, Some(_)) => Err(field_error("field has no scale factor".into())),
            (_, exponent) => Ok(exponent),
        }
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
    #[pyo3(
        text_signature = "(fields, *, max_gap=0, max_block=125, forbidden=..., \
        single_register=False)"
    )]
    #[pyo3(signature = (
        fields, *, max_gap = Int::new(0), max_block = Int::new(125), forbidden = Vec::new(),
        single_register = false
    ))]
    fn new(
        py: Python<'_>,
        fields: Vec<PyRef<'_, Field>>,
        max_gap: Int<u16>,
        max_block: Int<u16>,
        forbidden: Vec<(Int<u16>, Int<u16>)>,
        single_register: bool,
    ) -> PyResult<Self> {
        let limits = Limits {
            max_gap: max_gap.0,
            max_block: max_block.0,
            forbidden: forbidden.into_iter().map(|(a, b)| (a.0, b.0)).collect(),
            single_register,
        };
        let fields = fields.iter().map(|f| f.inner.clone()).collect();
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
        PyList::new(py, self.requests.bind(py).iter())
    }

    /// Number of fields.
    fn __len__(&self) -> usize {
        self.plan.fields().len()
    }

    /// Values of every field in the order given (`None` where the sentinel
    /// is found or the read failed) from one item per request: a read
    /// `Response`, a sequence of ints (or bools), or `None` for a failed read.
    fn decode<'py>(
        &self,
        py: Python<'py>,
        responses: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let items: Vec<Bound<'py, PyAny>> = responses.try_iter()?.collect::<PyResult<_>>()?;
        let reads = self.plan.reads();
        if items.len() != reads.len() {
            return Err(field_error(format!(
                "plan has {} reads, got {} responses",
                reads.len(),
                items.len()
            )));
        }
        let mut owned = Vec::with_capacity(items.len());
        for (item, read) in items.iter().zip(reads) {
            let bits = matches!(read.function, READ_COILS | READ_DISCRETE_INPUTS);
            owned.push(if item.is_none() {
                None
            } else {
                Some(block_of(item, bits)?)
            });
        }
        let blocks: Vec<Option<Block<'_>>> =
            owned.iter().map(|o| o.as_ref().map(Owned::block)).collect();
        decode_blocks(py, self, &blocks)
    }
}

impl ReadPlan {
    /// The core requests, in plan order.
    pub(crate) fn requests_of(&self) -> Vec<pdu::Request> {
        self.plan
            .reads()
            .iter()
            .map(planner::Read::request)
            .collect()
    }
}

/// Every field of `plan` as a Python list, from one block per planned read.
pub(crate) fn decode_blocks<'py>(
    py: Python<'py>,
    plan: &ReadPlan,
    blocks: &[Option<Block<'_>>],
) -> PyResult<Bound<'py, PyList>> {
    let values = plan.plan.decode(blocks).map_err(CoreError::from)?;
    let out = PyList::empty(py);
    for value in values {
        out.append(value_to_py(py, value)?)?;
    }
    Ok(out)
}
