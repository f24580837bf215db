//! Failsafe budget bindings: the seats fixed with the site, shared every cycle from plain
//! buffers into an `array('d')`.

use hubgate_core::failsafe::FailsafeSeats as CoreSeats;
use pyo3::prelude::*;

use crate::alloc_buffers::{bytes_of, read_f64, read_flags, to_array};
use crate::errors::CoreError;
use crate::ints::TreeInt;

/// The site's connectors as the failsafe budget sees them (`hubgate.control.failsafe_budget`).
#[pyclass(module = "hubgate._core")]
pub(crate) struct FailsafeSeats {
    core: CoreSeats,
    session: Vec<u8>,
    holds: Vec<u8>,
    room: Vec<f64>,
    granted: Vec<f64>,
}

fn plain(values: Vec<Vec<TreeInt<usize>>>) -> Vec<Vec<usize>> {
    values
        .into_iter()
        .map(|v| v.into_iter().map(|i| *i).collect())
        .collect()
}

#[pymethods]
impl FailsafeSeats {
    /// Per connector: its path of node indices (its own node first), its grid phases (0-2)
    /// and whether its failsafe is fixed on the device; raises `TopologyError` for a node
    /// or phase the site does not have.
    #[new]
    fn new(
        nodes: TreeInt<usize>,
        paths: Vec<Vec<TreeInt<usize>>>,
        phases: Vec<Vec<TreeInt<usize>>>,
        fixed: Vec<bool>,
    ) -> Result<Self, CoreError> {
        let core = CoreSeats::new(*nodes, &plain(paths), &plain(phases), &fixed)?;
        Ok(Self {
            core,
            session: Vec::new(),
            holds: Vec::new(),
            room: Vec::new(),
            granted: Vec::new(),
        })
    }

    fn __len__(&self) -> usize {
        self.core.len()
    }

    /// Per connector, the failsafe current it is to be configured with, `failsafe_a` or 0:
    /// the fixed ones first, then those with a session, then those that hold it already
    /// (a new grant needs 1 A more room), then by index, each where every node on its path
    /// has room on its phases (`room_a`: 3 values per node). Raises `AllocationInputError`
    /// for columns of the wrong length.
    fn share<'py>(
        &mut self,
        py: Python<'py>,
        session: &Bound<'py, PyAny>,
        holds: &Bound<'py, PyAny>,
        room_a: &Bound<'py, PyAny>,
        failsafe_a: f64,
    ) -> PyResult<Bound<'py, PyAny>> {
        read_flags(session, &mut self.session)?;
        read_flags(holds, &mut self.holds)?;
        read_f64(room_a, &mut self.room)?;
        self.core
            .share(
                &self.session,
                &self.holds,
                &mut self.room,
                failsafe_a,
                &mut self.granted,
            )
            .map_err(CoreError::from)?;
        to_array(py, "d", &bytes_of(&self.granted, f64::to_ne_bytes))
    }
}
