//! Per-node sums and the failsafe budget: the connectors' paths fixed with the site, each
//! cycle's per-connector columns in, per-node or per-connector `array('d')` columns out.

use hubgate_core::failsafe::{share, Seats};
use hubgate_core::paths::{ConnectorPaths as CorePaths, PHASES};
use pyo3::prelude::*;

use crate::alloc_buffers::{bytes_of, read_column, read_f64, read_flags, to_array};
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

    /// Each connector's setpoint (`setpoint_a`) added up at every node on its path, on the
    /// grid phases it is drawn on: `alone_on`'s phase where that is 0-2 (a one-phase EV at a
    /// three-phase connector; -1: none), else its first phase when it is set on one phase
    /// (`phases`), else all of its phases; three values per node. Raises
    /// `AllocationInputError` for columns of the wrong length, `TopologyError` for a phase
    /// past 2.
    fn sum_setpoints<'py>(
        &self,
        py: Python<'py>,
        setpoint_a: &Bound<'py, PyAny>,
        phases: &Bound<'py, PyAny>,
        alone_on: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (mut amps, mut set_on, mut alone) = (vec![], vec![], vec![]);
        read_f64(setpoint_a, &mut amps)?;
        read_column::<u8>(phases, &mut set_on)?;
        read_column::<i8>(alone_on, &mut alone)?;
        let mut per_node = vec![0.0; PHASES * self.core.nodes()];
        self.core
            .sum_setpoints(&amps, &set_on, &alone, &mut per_node)
            .map_err(CoreError::from)?;
        to_array(py, "d", &bytes_of(&per_node, f64::to_ne_bytes))
    }

    /// The failsafe budget (`hubgate_core::failsafe`): per connector, the failsafe current
    /// it is to be configured with, its fixed one (`fixed_a`, NaN: none), else `failsafe_a`
    /// or 0: the fixed ones first (room or not), then those with a `session`, then those
    /// that `holds` it already (a new grant needs 1 A more room), then by index, each where
    /// every node on its path has room on its phases (`room_a`: 3 values per node); an
    /// increase over what it may fall back to now (`may_hold_a`: verified, or asked for
    /// since) only where that room is left beside what every other may fall back to now,
    /// else 0 until it is. Raises `AllocationInputError` for columns of the wrong length.
    #[allow(clippy::too_many_arguments)]
    fn share_failsafe<'py>(
        &self,
        py: Python<'py>,
        fixed_a: &Bound<'py, PyAny>,
        session: &Bound<'py, PyAny>,
        holds: &Bound<'py, PyAny>,
        may_hold_a: &Bound<'py, PyAny>,
        room_a: &Bound<'py, PyAny>,
        failsafe_a: f64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (mut fixed, mut sessions, mut holding) = (vec![], vec![], vec![]);
        let (mut may_hold, mut room) = (vec![], vec![]);
        read_f64(fixed_a, &mut fixed)?;
        read_flags(session, &mut sessions)?;
        read_flags(holds, &mut holding)?;
        read_f64(may_hold_a, &mut may_hold)?;
        read_f64(room_a, &mut room)?;
        let seats = Seats {
            fixed_a: &fixed,
            session: &sessions,
            holds: &holding,
            may_hold_a: &may_hold,
        };
        let mut granted = Vec::new();
        share(&self.core, seats, &mut room, failsafe_a, &mut granted).map_err(CoreError::from)?;
        to_array(py, "d", &bytes_of(&granted, f64::to_ne_bytes))
    }
}
