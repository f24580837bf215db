//! Per-node sums and the failsafe budget: the connectors' paths fixed with the site, each
//! cycle's per-connector columns in, per-node or per-connector `array('d')` columns out.

use hubgate_core::failsafe::FailsafeSeats as CoreSeats;
use hubgate_core::paths::{ConnectorPaths as CorePaths, PHASES};
use pyo3::prelude::*;

use crate::alloc_buffers::{bytes_of, read_f64, read_flags, to_array};
use crate::errors::CoreError;
use crate::ints::TreeInt;

fn plain(values: Vec<Vec<TreeInt<usize>>>) -> Vec<Vec<usize>> {
    values
        .into_iter()
        .map(|v| v.into_iter().map(|i| *i).collect())
        .collect()
}

/// Each connector's path up the site's tree and its grid phases.
#[pyclass(frozen, module = "hubgate._core")]
pub(crate) struct ConnectorPaths {
    core: CorePaths,
}

#[pymethods]
impl ConnectorPaths {
    /// Per connector: its path of node indices (its own node first) in a tree of `nodes`
    /// nodes, and its grid phases (0-2); raises `TopologyError` for a node or phase the
    /// site does not have.
    #[new]
    fn new(
        nodes: TreeInt<usize>,
        paths: Vec<Vec<TreeInt<usize>>>,
        phases: Vec<Vec<TreeInt<usize>>>,
    ) -> Result<Self, CoreError> {
        let core = CorePaths::new(*nodes, &plain(paths), &plain(phases))?;
        Ok(Self { core })
    }

    fn __len__(&self) -> usize {
        self.core.len()
    }

    /// Each connector's (L1, L2, L3) currents added up at every node on its path, in
    /// connector order: three values per node. Raises `AllocationInputError` when there
    /// is not one triple per connector.
    fn sum_up<'py>(
        &self,
        py: Python<'py>,
        per_connector: Vec<(f64, f64, f64)>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let values: Vec<[f64; PHASES]> = per_connector.iter().map(|&(a, b, c)| [a, b, c]).collect();
        let mut per_node = vec![0.0; PHASES * self.core.nodes()];
        self.core
            .sum_up(&values, &mut per_node)
            .map_err(CoreError::from)?;
        to_array(py, "d", &bytes_of(&per_node, f64::to_ne_bytes))
    }
}

/// The site's connectors as the failsafe budget sees them (`hubgate_core::failsafe`).
#[pyclass(module = "hubgate._core")]
pub(crate) struct FailsafeSeats {
    core: CoreSeats,
    session: Vec<u8>,
    holds: Vec<u8>,
    room: Vec<f64>,
    granted: Vec<f64>,
}

#[pymethods]
impl FailsafeSeats {
    /// The connectors of `paths`; `fixed_a`: per connector, the current its device falls back
    /// to whatever it is told (None: the one it is told). Raises `AllocationInputError` when
    /// there is not one per connector.
    #[new]
    fn new(paths: &ConnectorPaths, fixed_a: Vec<Option<f64>>) -> Result<Self, CoreError> {
        let core = CoreSeats::new(paths.core.clone(), &fixed_a)?;
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

    /// Per connector, the failsafe current it is to be configured with, its fixed one, else
    /// `failsafe_a` or 0: the fixed ones first (room or not), then those with a session,
    /// then those that hold it already
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
