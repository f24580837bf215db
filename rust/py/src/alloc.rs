//! Allocation engine bindings: an `Allocator` built once from the topology,
//! called every cycle with plain buffers.

use hubgate_core::alloc::{
    Allocation as CoreAllocation, Allocator as CoreAllocator, ConnectorSpec, CycleInput, NodeSpec,
    PhaseMap, Reason, Settings, Topology, TopologyError,
};
use pyo3::prelude::*;

use crate::alloc_buffers::{bytes_of, read_f64, read_flags, to_array};
use crate::errors::CoreError;
use crate::ints::TreeInt;

/// Why a connector got its setpoint: `hubgate_core::alloc::Reason` for Python
/// (codes as in `Allocation.reason`; `members()` is indexed by code).
#[pyclass(
    eq,
    eq_int,
    frozen,
    hash,
    module = "hubgate._core",
    name = "AllocReason"
)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum AllocReason {
    /// Unplugged, or the EV does not ask for current.
    #[pyo3(name = "NOT_WANTING")]
    NotWanting = 0,
    /// At its own maximum (hardware, cable, EV limit or draw estimate).
    #[pyo3(name = "OWN_MAXIMUM")]
    OwnMaximum = 1,
    /// Held by a node's per-phase current limit.
    #[pyo3(name = "PHASE_CURRENT")]
    PhaseCurrent = 2,
    /// Held by a node's active power limit.
    #[pyo3(name = "POWER")]
    Power = 3,
    /// Held or paused by a node's phase-unbalance limit.
    #[pyo3(name = "UNBALANCE")]
    Unbalance = 4,
    /// Held by the grid operator's limit.
    #[pyo3(name = "GRID_OPERATOR")]
    GridOperator = 5,
    /// Held by the contract or peak-shaving target.
    #[pyo3(name = "PEAK_TARGET")]
    PeakTarget = 6,
    /// Held by the PV surplus and battery budget.
    #[pyo3(name = "PV_BUDGET")]
    PvBudget = 7,
    /// Paused: its minimum does not fit.
    #[pyo3(name = "PAUSED_NO_CAPACITY")]
    PausedNoCapacity = 8,
    /// Paused: waiting out the minimum off time.
    #[pyo3(name = "PAUSED_MIN_OFF")]
    PausedMinOff = 9,
    /// Increase limited by the ramp rate.
    #[pyo3(name = "RAMPING")]
    Ramping = 10,
    /// Increase waits for the change interval.
    #[pyo3(name = "CHANGE_INTERVAL")]
    ChangeInterval = 11,
    /// Increase waits until freed current is confirmed.
    #[pyo3(name = "AWAITING_HEADROOM")]
    AwaitingHeadroom = 12,
}

impl From<Reason> for AllocReason {
    fn from(reason: Reason) -> Self {
        match reason {
            Reason::NotWanting => Self::NotWanting,
            Reason::OwnMaximum => Self::OwnMaximum,
            Reason::PhaseCurrent => Self::PhaseCurrent,
            Reason::Power => Self::Power,
            Reason::Unbalance => Self::Unbalance,
            Reason::GridOperator => Self::GridOperator,
            Reason::PeakTarget => Self::PeakTarget,
            Reason::PvBudget => Self::PvBudget,
            Reason::PausedNoCapacity => Self::PausedNoCapacity,
            Reason::PausedMinOff => Self::PausedMinOff,
            Reason::Ramping => Self::Ramping,
            Reason::ChangeInterval => Self::ChangeInterval,
            Reason::AwaitingHeadroom => Self::AwaitingHeadroom,
        }
    }
}

#[pymethods]
impl AllocReason {
    /// Every reason, indexed by its code.
    #[staticmethod]
    fn members() -> Vec<AllocReason> {
        Reason::ALL.iter().map(|&r| AllocReason::from(r)).collect()
    }
}

/// One node of the tree (index = position in the list given to `Allocator`).
#[pyclass(frozen, module = "hubgate._core", get_all)]
#[derive(Clone, Debug)]
pub(crate) struct AllocNode {
    parent: Option<usize>,
    phase_cap_a: (f64, f64, f64),
    power_cap_w: f64,
    unbalance_cap_a: f64,
}

#[pymethods]
impl AllocNode {
    #[new]
    #[pyo3(signature = (parent, phase_cap_a, power_cap_w = f64::INFINITY, unbalance_cap_a = f64::INFINITY))]
    fn new(
        parent: Option<TreeInt<usize>>,
        phase_cap_a: (f64, f64, f64),
        power_cap_w: f64,
        unbalance_cap_a: f64,
    ) -> Self {
        Self {
            parent: parent.map(|p| p.0),
            phase_cap_a,
            power_cap_w,
            unbalance_cap_a,
        }
    }
}

/// One connector: its node, grid phases, limits and share.
#[pyclass(frozen, module = "hubgate._core")]
#[derive(Clone, Debug)]
pub(crate) struct AllocConnector {
    #[pyo3(get)]
    node: usize,
    #[pyo3(get)]
    phases: String,
    #[pyo3(get)]
    phase: u8,
    #[pyo3(get)]
    min_a: f64,
    #[pyo3(get)]
    max_a: f64,
    #[pyo3(get)]
    step_a: f64,
    #[pyo3(get)]
    weight: f64,
    #[pyo3(get)]
    priority: u8,
    map: PhaseMap,
}

#[pymethods]
impl AllocConnector {
    #[new]
    #[pyo3(
        text_signature = "(node, phases, phase, min_a, max_a, step_a=0.1, weight=1.0, \
        priority=0)"
    )]
    #[pyo3(signature = (
        node, phases, phase, min_a, max_a, step_a = 0.1, weight = 1.0, priority = TreeInt::new(0)
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        node: TreeInt<usize>,
        phases: String,
        phase: TreeInt<u8>,
        min_a: f64,
        max_a: f64,
        step_a: f64,
        weight: f64,
        priority: TreeInt<u8>,
    ) -> Result<Self, CoreError> {
        let (node, phase, priority) = (node.0, phase.0, priority.0);
        let map = PhaseMap::from_mode(&phases, phase)?;
        Ok(Self {
            node,
            phases,
            phase,
            map,
            min_a,
            max_a,
            step_a,
            weight,
            priority,
        })
    }
}

impl AllocConnector {
    fn spec(&self) -> ConnectorSpec {
        ConnectorSpec {
            node: self.node,
            phases: self.map,
            min_a: self.min_a,
            max_a: self.max_a,
            step_a: self.step_a,
            weight: self.weight,
            priority: self.priority,
        }
    }
}

/// Timing and policy settings (seconds, A/s, W).
#[pyclass(frozen, module = "hubgate._core", get_all)]
#[derive(Clone, Debug)]
pub(crate) struct AllocSettings {
    voltage_v: f64,
    min_on_s: f64,
    min_off_s: f64,
    change_interval_s: f64,
    ramp_a_per_s: f64,
    settle_s: f64,
    phase_switch_s: f64,
    max_phase_switches: u32,
}

#[pymethods]
impl AllocSettings {
    #[new]
    #[pyo3(text_signature = "(voltage_v=230.0, min_on_s=300.0, min_off_s=120.0, \
        change_interval_s=5.0, ramp_a_per_s=..., settle_s=10.0, phase_switch_s=600.0, \
        max_phase_switches=0)")]
    #[pyo3(signature = (
        voltage_v = 230.0, min_on_s = 300.0, min_off_s = 120.0, change_interval_s = 5.0,
        ramp_a_per_s = f64::INFINITY, settle_s = 10.0, phase_switch_s = 600.0,
        max_phase_switches = TreeInt::new(0)
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        voltage_v: f64,
        min_on_s: f64,
        min_off_s: f64,
        change_interval_s: f64,
        ramp_a_per_s: f64,
        settle_s: f64,
        phase_switch_s: f64,
        max_phase_switches: TreeInt<u32>,
    ) -> Self {
        let max_phase_switches = max_phase_switches.0;
        Self {
            voltage_v,
            min_on_s,
            min_off_s,
            change_interval_s,
            ramp_a_per_s,
            settle_s,
            phase_switch_s,
            max_phase_switches,
        }
    }
}

impl From<&AllocSettings> for Settings {
    fn from(s: &AllocSettings) -> Self {
        Settings {
            voltage_v: s.voltage_v,
            min_on_s: s.min_on_s,
            min_off_s: s.min_off_s,
            change_interval_s: s.change_interval_s,
            ramp_a_per_s: s.ramp_a_per_s,
            settle_s: s.settle_s,
            phase_switch_s: s.phase_switch_s,
            max_phase_switches: s.max_phase_switches,
        }
    }
}

/// One cycle's result; each attribute is a new `array.array`, one entry per connector.
#[pyclass(frozen, module = "hubgate._core")]
pub(crate) struct Allocation {
    inner: CoreAllocation,
}

#[pymethods]
impl Allocation {
    fn __len__(&self) -> usize {
        self.inner.setpoint_a.len()
    }

    /// Setpoints to send now, A per phase (`array('d')`; 0 = paused).
    #[getter]
    fn setpoint_a<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_array(py, "d", &bytes_of(&self.inner.setpoint_a, f64::to_ne_bytes))
    }

    /// Fair targets before transition shaping, A per phase (`array('d')`).
    #[getter]
    fn target_a<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_array(py, "d", &bytes_of(&self.inner.target_a, f64::to_ne_bytes))
    }

    /// Exact weighted max-min fair shares before rounding, A per phase (`array('d')`).
    #[getter]
    fn fair_a<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_array(py, "d", &bytes_of(&self.inner.fair_a, f64::to_ne_bytes))
    }

    /// Phases drawn on, 1 or 3 (`array('B')`).
    #[getter]
    fn phases<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_array(py, "B", &self.inner.phases)
    }

    /// Reason codes, `AllocReason.members()[code]` (`array('B')`).
    #[getter]
    fn reason<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let codes: Vec<u8> = self.inner.reason.iter().map(|&r| r as u8).collect();
        to_array(py, "B", &codes)
    }

    /// Node index of the binding limit, or -1 (`array('i')`).
    #[getter]
    fn binding_node<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_array(
            py,
            "i",
            &bytes_of(&self.inner.binding_node, i32::to_ne_bytes),
        )
    }

    /// Grid phase (0-2) of the binding limit, or -1 (`array('b')`).
    #[getter]
    fn binding_phase<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_array(
            py,
            "b",
            &bytes_of(&self.inner.binding_phase, i8::to_ne_bytes),
        )
    }
}

/// The allocator: topology and per-connector memory; call `allocate` every cycle.
#[pyclass(module = "hubgate._core")]
pub(crate) struct Allocator {
    core: CoreAllocator,
    base: Vec<f64>,
    ev_max: Vec<f64>,
    wanting: Vec<u8>,
    pv: Vec<u8>,
    floor: Vec<f64>,
    laxity: Vec<f64>,
}

#[pymethods]
impl Allocator {
    #[new]
    #[pyo3(signature = (nodes, connectors, settings = None))]
    fn new(
        nodes: Vec<Bound<'_, AllocNode>>,
        connectors: Vec<Bound<'_, AllocConnector>>,
        settings: Option<Bound<'_, AllocSettings>>,
    ) -> Result<Self, CoreError> {
        let nodes = nodes
            .iter()
            .map(|n| n.get())
            .map(|n| NodeSpec {
                parent: n.parent,
                phase_cap_a: [n.phase_cap_a.0, n.phase_cap_a.1, n.phase_cap_a.2],
                power_cap_w: n.power_cap_w,
                unbalance_cap_a: n.unbalance_cap_a,
            })
            .collect();
        let connectors = connectors.iter().map(|c| c.get().spec()).collect();
        let settings = settings
            .as_ref()
            .map(|s| Settings::from(s.get()))
            .unwrap_or_default();
        let topo = Topology::new(nodes, connectors, settings)?;
        let n = topo.connector_count();
        Ok(Self {
            core: CoreAllocator::new(topo),
            base: Vec::new(),
            ev_max: Vec::new(),
            wanting: Vec::new(),
            floor: Vec::new(),
            laxity: Vec::new(),
            pv: vec![0; n],
        })
    }

    /// Number of nodes.
    #[getter]
    fn node_count(&self) -> usize {
        self.core.topology().node_count()
    }

    /// Number of connectors.
    #[getter]
    fn connector_count(&self) -> usize {
        self.core.topology().connector_count()
    }

    /// Priority tier of connector `connector`.
    fn priority(&self, connector: TreeInt<usize>) -> Result<u8, CoreError> {
        let connector = connector.0;
        let connectors = self.core.topology().connectors();
        let spec = connectors
            .get(connector)
            .ok_or(TopologyError::NoSuchConnector(connector))?;
        Ok(spec.priority)
    }

    /// Moves connector `connector` to priority tier `priority` from the next
    /// cycle; what the allocator remembers about it is kept.
    fn set_priority(
        &mut self,
        connector: TreeInt<usize>,
        priority: TreeInt<u8>,
    ) -> Result<(), CoreError> {
        Ok(self.core.set_priority(connector.0, priority.0)?)
    }

    /// Measurement shows the EV at three-phase connector `connector` draws on grid
    /// phase `phase` (0-2) alone, or on all three again (None): it counts there only
    /// from the next cycle on.
    #[pyo3(signature = (connector, phase))]
    fn set_ev_phase(
        &mut self,
        connector: TreeInt<usize>,
        phase: Option<TreeInt<u8>>,
    ) -> Result<(), CoreError> {
        Ok(self.core.set_ev_phase(connector.0, phase.map(|p| p.0))?)
    }

    /// A reading after connector `connector`'s last decrease shows it draws at most
    /// `drawn_a` A per phase: what it keeps reserved is lowered to that.
    fn confirm_draw(&mut self, connector: TreeInt<usize>, drawn_a: f64) -> Result<(), CoreError> {
        Ok(self.core.confirm_draw(connector.0, drawn_a)?)
    }

    /// Measurement shows connector `connector` draws no more than its last
    /// setpoint: what it kept reserved after a decrease is free from the next cycle.
    fn confirm_followed(&mut self, connector: TreeInt<usize>) -> Result<(), CoreError> {
        Ok(self.core.confirm_followed(connector.0)?)
    }

    /// The current per phase connector `connector` keeps reserved at `now` for its EV
    /// to follow a decrease; 0 for none.
    fn reserved_a(&self, connector: TreeInt<usize>, now: f64) -> Result<f64, CoreError> {
        Ok(self.core.reserved_a(connector.0, now)?)
    }

    /// Runs one cycle. `base_load_a` has 3 values per node (L1, L2, L3, node by
    /// node); `ev_max_a`, `wanting`, `pv_mode`, `floor_a` and `laxity_s` one per
    /// connector (`floor_a`/`laxity_s` None: no deadline floors).
    #[pyo3(signature = (
        now, base_load_a, ev_max_a, wanting, pv_mode = None,
        grid_operator_w = f64::INFINITY, peak_w = f64::INFINITY, pv_budget_w = f64::INFINITY,
        floor_a = None, laxity_s = None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn allocate(
        &mut self,
        now: f64,
        base_load_a: &Bound<'_, PyAny>,
        ev_max_a: &Bound<'_, PyAny>,
        wanting: &Bound<'_, PyAny>,
        pv_mode: Option<&Bound<'_, PyAny>>,
        grid_operator_w: f64,
        peak_w: f64,
        pv_budget_w: f64,
        floor_a: Option<&Bound<'_, PyAny>>,
        laxity_s: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Allocation> {
        read_f64(base_load_a, &mut self.base)?;
        read_f64(ev_max_a, &mut self.ev_max)?;
        read_flags(wanting, &mut self.wanting)?;
        match pv_mode {
            Some(flags) => read_flags(flags, &mut self.pv)?,
            None => {
                self.pv.clear();
                self.pv.resize(self.core.topology().connector_count(), 0);
            }
        }
        match floor_a {
            Some(values) => read_f64(values, &mut self.floor)?,
            None => self.floor.clear(),
        }
        match laxity_s {
            Some(values) => read_f64(values, &mut self.laxity)?,
            None => self.laxity.clear(),
        }
        let input = CycleInput {
            now,
            base_load_a: &self.base,
            ev_max_a: &self.ev_max,
            wanting: &self.wanting,
            pv_mode: &self.pv,
            grid_operator_w,
            peak_w,
            pv_budget_w,
            floor_a: &self.floor,
            laxity_s: &self.laxity,
        };
        let mut inner = CoreAllocation::default();
        self.core
            .allocate(&input, &mut inner)
            .map_err(CoreError::from)?;
        Ok(Allocation { inner })
    }
}
