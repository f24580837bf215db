//! OCPP-J hot calls for Python: `OcppCallReader.read(text)` parses, checks and takes
//! out a MeterValues', StatusNotification's or Heartbeat's fields in one call.

use hubgate_core::ocpp::{Action, CallReader, Fields, HotCall, MeterValue};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple};

use crate::errors::CoreError;

/// Reads the hot calls of one OCPP version; everything else is None.
#[pyclass(module = "hubgate._core")]
pub(crate) struct OcppCallReader {
    inner: CallReader,
}

fn action_name<'py>(py: Python<'py>, action: Action) -> Bound<'py, PyString> {
    PyString::intern(py, action.name())
}

fn phases<'py>(py: Python<'py>, values: &[Option<f64>; 3]) -> PyResult<Bound<'py, PyTuple>> {
    PyTuple::new(py, values)
}

fn meter_value<'py>(py: Python<'py>, value: &MeterValue<'_>) -> PyResult<Bound<'py, PyTuple>> {
    PyTuple::new(
        py,
        [
            PyString::new(py, value.timestamp).into_any(),
            phases(py, &value.current_a)?.into_any(),
            phases(py, &value.voltage_v)?.into_any(),
            value.power_w.into_pyobject(py)?.into_any(),
            value.energy_wh.into_pyobject(py)?.into_any(),
            value.soc_percent.into_pyobject(py)?.into_any(),
            value.offered_current_a.into_pyobject(py)?.into_any(),
        ],
    )
}

/// `(unique_id, action, fields)` of a hot call, as `OcppCallReader.read` returns it.
fn hot_call<'py>(py: Python<'py>, call: &HotCall<'_>) -> PyResult<Bound<'py, PyTuple>> {
    let fields = match &call.fields {
        Fields::Heartbeat => py.None().into_bound(py),
        Fields::Status {
            connector,
            status,
            error_code,
            timestamp,
        } => PyTuple::new(
            py,
            [
                connector.into_pyobject(py)?.into_any(),
                PyString::new(py, status).into_any(),
                error_code.into_pyobject(py)?.into_any(),
                timestamp.into_pyobject(py)?.into_any(),
            ],
        )?
        .into_any(),
        Fields::Meter { connector, values } => {
            let entries = PyList::empty(py);
            for value in values {
                entries.append(meter_value(py, value)?)?;
            }
            PyTuple::new(
                py,
                [connector.into_pyobject(py)?.into_any(), entries.into_any()],
            )?
            .into_any()
        }
    };
    PyTuple::new(
        py,
        [
            PyString::new(py, call.unique_id).into_any(),
            action_name(py, call.action).into_any(),
            fields,
        ],
    )
}

#[pymethods]
impl OcppCallReader {
    #[new]
    #[pyo3(signature = (*, v16))]
    fn new(v16: bool) -> Self {
        Self {
            inner: CallReader::new(v16),
        }
    }

    /// Reads `action` from now on, checked against `schema` (JSON Schema text); False
    /// for an action this reader does not read.
    fn add(&mut self, action: &str, schema: &str) -> PyResult<bool> {
        Ok(self.inner.add(action, schema).map_err(CoreError::from)?)
    }

    /// `(unique_id, action, fields)` of a hot call whose payload is valid, else None (also
    /// while another thread reads with this reader: its tape is in use).
    fn read<'py>(
        slf: &Bound<'py, Self>,
        py: Python<'py>,
        text: &str,
    ) -> PyResult<Option<Bound<'py, PyTuple>>> {
        read_call(py, slf, text)
    }
}

/// What `reader` reads of `text` (None: not a hot call, or the reader is in use).
pub(crate) fn read_call<'py>(
    py: Python<'py>,
    reader: &Bound<'py, OcppCallReader>,
    text: &str,
) -> PyResult<Option<Bound<'py, PyTuple>>> {
    let Ok(mut reader) = reader.try_borrow_mut() else {
        return Ok(None);
    };
    Ok(match reader.inner.read(text) {
        Some(call) => Some(hot_call(py, &call)?),
        None => None,
    })
}
