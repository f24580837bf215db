//! Deadline planner bindings: a `DeadlinePlanner` with reusable buffers, called
//! every cycle with plain buffers, answering with `array('d')` columns.

use hubgate_core::plan::{DeadlinePlanner as CorePlanner, Plan, PlanInput};
use pyo3::prelude::*;

use crate::alloc_buffers::{bytes_of, read_f64, to_array};
use crate::errors::CoreError;

/// One planning call's result; each attribute is a new `array('d')`, one entry per session.
#[pyclass(frozen, module = "hubgate._core")]
pub(crate) struct DeadlinePlan {
    inner: Plan,
}

#[pymethods]
impl DeadlinePlan {
    fn __len__(&self) -> usize {
        self.inner.now_w.len()
    }

    /// Power each session must get while plugged in during the first slot, W.
    #[getter]
    fn now_w<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_array(py, "d", &bytes_of(&self.inner.now_w, f64::to_ne_bytes))
    }

    /// Energy no schedule delivers by the departure, Wh.
    #[getter]
    fn shortfall_wh<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_array(
            py,
            "d",
            &bytes_of(&self.inner.shortfall_wh, f64::to_ne_bytes),
        )
    }

    /// Time to departure minus time needed at the maximum, s (inf: not planned).
    #[getter]
    fn laxity_s<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_array(py, "d", &bytes_of(&self.inner.laxity_s, f64::to_ne_bytes))
    }
}

/// Plans sessions with deadlines over a horizon of slots (see `docs/allocation.md`).
#[pyclass(module = "hubgate._core")]
pub(crate) struct DeadlinePlanner {
    core: CorePlanner,
    buffers: [Vec<f64>; 5],
}

#[pymethods]
impl DeadlinePlanner {
    #[new]
    fn new() -> Self {
        Self {
            core: CorePlanner::new(),
            buffers: Default::default(),
        }
    }

    /// Plans every session; raises `PlanInputError` for unusable input.
    fn plan(
        &mut self,
        slot_s: &Bound<'_, PyAny>,
        cap_w: &Bound<'_, PyAny>,
        need_wh: &Bound<'_, PyAny>,
        departure_s: &Bound<'_, PyAny>,
        max_w: &Bound<'_, PyAny>,
    ) -> PyResult<DeadlinePlan> {
        let [slots, caps, need, departure, max] = &mut self.buffers;
        read_f64(slot_s, slots)?;
        read_f64(cap_w, caps)?;
        read_f64(need_wh, need)?;
        read_f64(departure_s, departure)?;
        read_f64(max_w, max)?;
        let mut out = Plan::default();
        self.core
            .plan(
                &PlanInput {
                    slot_s: slots,
                    cap_w: caps,
                    need_wh: need,
                    departure_s: departure,
                    max_w: max,
                },
                &mut out,
            )
            .map_err(CoreError::from)?;
        Ok(DeadlinePlan { inner: out })
    }
}
