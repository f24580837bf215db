//! The allocation engine: every cycle, share the current the site can carry
//! among the connectors that want it, fairly and safely.
//!
//! Sans-IO: built once from a [`Topology`], then [`Allocator::allocate`] takes
//! plain slices (measurements, EV limits, root caps) and the time `now`, and
//! writes an [`Allocation`]. The pipeline (see `allocation.md` §5):
//!
//! 1. [`admission`]: who gets at least the minimum, and at which phase count;
//! 2. [`filling`]: weighted max-min fair progressive filling per priority tier;
//! 3. [`unbalance`]: phase-unbalance limits by cap tightening and refill;
//! 4. [`quantize`]: round down to each step and hand the leftover back;
//! 5. [`shaping`]: decreases at once, increases only into confirmed headroom.
//!
//! Every setpoint is either 0 or a multiple of its step in `[min, max]`, and no
//! limit is exceeded by the targets nor, during the change, by the sum of
//! max(old, new) per connector.

mod admission;
mod caps;
mod filling;
pub mod model;
mod outcome;
mod quantize;
mod shaping;
mod state;
mod unbalance;

use std::fmt;

pub use model::{ConnectorSpec, NodeSpec, PhaseMap, Settings, Topology, TopologyError, PHASES};
pub use outcome::{Allocation, Reason};

use caps::{RootCaps, Space, Term};
use filling::{FillScratch, OWN};
use model::{ceil_to_step, floor_to_step};
use quantize::QuantizeScratch;
use state::ConnectorState;

/// Unbalance tightening passes before the final repair takes over.
const UNBALANCE_PASSES: usize = 4;

/// One cycle's measurements and limits. Slices are indexed like the topology.
#[derive(Clone, Copy, Debug)]
pub struct CycleInput<'a> {
    /// The time in seconds (any monotonic clock); never earlier than the last call.
    pub now: f64,
    /// Measured non-EV current through each node per grid phase, `3 * nodes` values
    /// (node-major), in A; what the node carries besides its controlled connectors.
    pub base_load_a: &'a [f64],
    /// Each connector's current limit from the EV side (EV maximum or an estimate
    /// from its measured draw), in A; infinity for none.
    pub ev_max_a: &'a [f64],
    /// Nonzero where an EV is plugged in and asks for current.
    pub wanting: &'a [u8],
    /// Nonzero where the connector charges from PV surplus only.
    pub pv_mode: &'a [u8],
    /// The grid operator's limit on the connection's power in W; infinity for none.
    pub grid_operator_w: f64,
    /// Contract or peak-shaving target on the connection's power in W; infinity for none.
    pub peak_w: f64,
    /// PV surplus plus battery discharge budget for PV-mode connectors in W; infinity for none.
    pub pv_budget_w: f64,
    /// Each connector's deadline floor, A per phase: what its session must get now to
    /// leave on time (0 for none); empty for no floors. Granted least laxity first,
    /// within every limit, before the fair share.
    pub floor_a: &'a [f64],
    /// Each connector's laxity in s (time to departure minus time needed at its
    /// maximum), ordering the floors; empty: floors in index order.
    pub laxity_s: &'a [f64],
}

/// A cycle's input that cannot be used; the allocator's state is left unchanged.
#[derive(Clone, Debug, PartialEq)]
pub enum InputError {
    /// A slice has the wrong length.
    Length {
        /// Which input.
        what: &'static str,
        /// Expected length.
        expected: usize,
        /// Given length.
        got: usize,
    },
    /// A value is NaN (or infinite where a measurement is needed).
    NotANumber {
        /// Which input.
        what: &'static str,
        /// Index into it.
        index: usize,
    },
    /// `now` is earlier than the previous call's.
    TimeWentBack {
        /// The previous `now`.
        last: f64,
        /// The given `now`.
        now: f64,
    },
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Length {
                what,
                expected,
                got,
            } => {
                write!(f, "{what}: expected {expected} values, got {got}")
            }
            Self::NotANumber { what, index } => write!(f, "{what}[{index}] is not a finite number"),
            Self::TimeWentBack { last, now } => {
                write!(
                    f,
                    "now ({now}) is earlier than the previous cycle's ({last})"
                )
            }
        }
    }
}

impl std::error::Error for InputError {}

/// Per-cycle working arrays shared by the pipeline steps.
#[derive(Debug)]
pub(crate) struct Work {
    space: Space,
    load: Vec<f64>,
    x: Vec<f64>,
    hi: Vec<f64>,
    admitted: Vec<bool>,
    /// This cycle's starting level of each admitted connector: its minimum, or the
    /// deadline floor admission granted it.
    lo: Vec<f64>,
    /// This cycle's deadline floor (a step multiple in `(min, max]`), 0 for none.
    floor: Vec<f64>,
    /// Each connector's laxity this cycle (infinity for none).
    laxity: Vec<f64>,
    /// Whether any connector has a deadline floor this cycle.
    any_floor: bool,
    mode: Vec<u8>,
    pv: Vec<bool>,
    bound: Vec<u32>,
    order: Vec<u32>,
    keys: Vec<u128>,
    /// Every connector in the last admission order (those admissible first).
    rank: Vec<u32>,
    unbalance_nodes: Vec<u32>,
    /// Each admitted connector's constraints and coefficients this cycle:
    /// `space.terms[terms_at[i].0..][..terms_at[i].1]`.
    terms_at: Vec<(u32, u32)>,
}

impl Work {
    /// Index range into `terms` of admitted connector `i`.
    #[inline]
    fn terms_of(&self, i: usize) -> std::ops::Range<usize> {
        let (start, len) = self.terms_at[i];
        start as usize..(start + len) as usize
    }

    /// Constraints and coefficients of admitted connector `i`.
    #[inline]
    fn terms(&self, i: usize) -> &[Term] {
        &self.space.terms[self.terms_of(i)]
    }
}

/// Sets this cycle's deadline floors: a wanting connector's floor rounded up to its
/// step, at least its minimum (a session the plan needs now at less than that charges
/// at the minimum, least laxity first, rather than wait its turn in the rotation),
/// within its maximum.
fn deadline_floors(topo: &Topology, work: &mut Work, input: &CycleInput<'_>) {
    work.any_floor = false;
    for i in 0..topo.connector_count() {
        let asked = input.floor_a.get(i).copied().unwrap_or(0.0);
        work.floor[i] = if input.wanting[i] != 0 && asked > admission::EPS {
            let step = topo.connectors[i].step_a;
            let floor = ceil_to_step(asked, step).max(topo.lo_a[i]).min(work.hi[i]);
            floor_to_step(floor, step).max(topo.lo_a[i])
        } else {
            0.0
        };
        work.any_floor |= work.floor[i] > 0.0;
        work.laxity[i] = input.laxity_s.get(i).copied().unwrap_or(f64::INFINITY);
    }
}

/// The allocator: the topology, each connector's memory, and reusable buffers.
#[derive(Debug)]
pub struct Allocator {
    topo: Topology,
    /// Each connector's phases as built (`topo` holds them as drawn this cycle).
    configured: Vec<PhaseMap>,
    states: Vec<ConnectorState>,
    last_now: f64,
    work: Work,
    fill: FillScratch,
    quantize: QuantizeScratch,
}

fn check_len(what: &'static str, got: usize, expected: usize) -> Result<(), InputError> {
    if got == expected {
        Ok(())
    } else {
        Err(InputError::Length {
            what,
            expected,
            got,
        })
    }
}

fn check_values(what: &'static str, values: &[f64], allow_inf: bool) -> Result<(), InputError> {
    match values
        .iter()
        .position(|v| v.is_nan() || (!allow_inf && v.is_infinite()))
    {
        Some(index) => Err(InputError::NotANumber { what, index }),
        None => Ok(()),
    }
}

impl Allocator {
    /// An allocator for `topo`, with every connector idle.
    pub fn new(topo: Topology) -> Self {
        let n = topo.connector_count();
        let space = Space::new(&topo);
        let m = space.len();
        let states = topo
            .connectors
            .iter()
            .map(|c| ConnectorState::new(c.phases))
            .collect();
        let unbalance_nodes = (0..topo.node_count())
            .filter(|&n| topo.nodes[n].unbalance_cap_a.is_finite())
            .map(|n| n as u32)
            .collect();
        let fill = FillScratch::new(&topo, m);
        let work = Work {
            space,
            load: vec![0.0; m],
            x: vec![0.0; n],
            hi: vec![0.0; n],
            admitted: vec![false; n],
            lo: topo.lo_a.clone(),
            floor: vec![0.0; n],
            laxity: vec![f64::INFINITY; n],
            any_floor: false,
            mode: vec![3; n],
            pv: vec![false; n],
            bound: vec![OWN; n],
            order: Vec::with_capacity(n),
            keys: Vec::with_capacity(n),
            rank: (0..n as u32).collect(),
            unbalance_nodes,
            terms_at: vec![(0, 0); n],
        };
        Self {
            configured: topo.connectors.iter().map(|c| c.phases).collect(),
            topo,
            states,
            last_now: f64::NEG_INFINITY,
            work,
            fill,
            quantize: QuantizeScratch::default(),
        }
    }

    /// The topology the allocator was built from (with any priority changes).
    pub fn topology(&self) -> &Topology {
        &self.topo
    }

    /// Moves `connector` to priority tier `priority` from the next cycle on.
    /// What the allocator remembers about it (charging or paused since when,
    /// its last setpoint) is kept; it is only served in another order.
    pub fn set_priority(&mut self, connector: usize, priority: u8) -> Result<(), TopologyError> {
        self.topo.set_priority(connector, priority)?;
        self.fill.sort_keys(&self.topo);
        Ok(())
    }

    /// Measurement shows the EV at three-phase `connector` draws on grid phase
    /// `phase` alone (a one-phase EV; `None`: on all three again): from the next
    /// cycle on it counts there only, like a one-phase connector on that phase,
    /// and what it was last sent counts as drawn there too (it was: nothing is
    /// paused or reserved for the change). [`Allocator::topology`] shows the phases
    /// so drawn. A connector built on one phase, or switchable, cannot be set.
    pub fn set_ev_phase(
        &mut self,
        connector: usize,
        phase: Option<u8>,
    ) -> Result<(), TopologyError> {
        let configured = *self
            .configured
            .get(connector)
            .ok_or(TopologyError::NoSuchConnector(connector))?;
        if configured != PhaseMap::Three {
            return Err(TopologyError::BadConnector {
                connector,
                problem: "only a three-phase connector's EV can draw on one phase of it",
            });
        }
        if phase.is_some_and(|p| usize::from(p) >= PHASES) {
            return Err(TopologyError::BadPhase(connector));
        }
        let map = phase.map_or(PhaseMap::Three, PhaseMap::Single);
        if self.topo.connectors[connector].phases != map {
            self.topo.connectors[connector].phases = map;
            self.states[connector].phases = state::default_phases(map);
            self.work.space.rephase(&self.topo);
        }
        Ok(())
    }

    /// A reading taken after `connector`'s last decrease was in force shows it
    /// draws at most `drawn_a` A per phase, above its setpoint: what it keeps
    /// reserved for the EV to follow is lowered to that from the next cycle on (a
    /// draw within the setpoint: [`Allocator::confirm_followed`]). A NaN says nothing.
    pub fn confirm_draw(&mut self, connector: usize, drawn_a: f64) -> Result<(), TopologyError> {
        let map = self
            .topo
            .connectors
            .get(connector)
            .ok_or(TopologyError::NoSuchConnector(connector))?
            .phases;
        let st = &mut self.states[connector];
        if drawn_a.is_nan() {
            return Ok(());
        }
        let voltage = self.topo.settings.voltage_v;
        let (phase, power) = state::draw(map, st.phases, drawn_a.max(st.setpoint), voltage);
        for (r, p) in st.reserve_phase_a.iter_mut().zip(phase) {
            *r = r.min(p);
        }
        st.reserve_power_w = st.reserve_power_w.min(power);
        Ok(())
    }

    /// Measurement shows `connector` draws no more than its last setpoint: the
    /// current it was reserved after a decrease (for `settle_s`) is free from the
    /// next cycle on, and an increase after that decrease need not wait out the
    /// change interval. For a reading taken after the decrease was in force.
    pub fn confirm_followed(&mut self, connector: usize) -> Result<(), TopologyError> {
        let st = self
            .states
            .get_mut(connector)
            .ok_or(TopologyError::NoSuchConnector(connector))?;
        st.reserve_until = f64::NEG_INFINITY;
        st.lowered_followed = st.lowered;
        Ok(())
    }

    /// The current per phase (its largest phase) that `connector` keeps reserved at
    /// `now` for its EV to follow a decrease (`settle_s`, lowered by
    /// [`Self::confirm_draw`], freed by [`Self::confirm_followed`]); 0 for none.
    pub fn reserved_a(&self, connector: usize, now: f64) -> Result<f64, TopologyError> {
        let st = self
            .states
            .get(connector)
            .ok_or(TopologyError::NoSuchConnector(connector))?;
        Ok(if now < st.reserve_until {
            st.reserve_phase_a.iter().copied().fold(0.0, f64::max)
        } else {
            0.0
        })
    }

    fn validate(&self, input: &CycleInput<'_>) -> Result<(), InputError> {
        let (n, c) = (self.topo.node_count(), self.topo.connector_count());
        check_len("base_load_a", input.base_load_a.len(), PHASES * n)?;
        check_len("ev_max_a", input.ev_max_a.len(), c)?;
        check_len("wanting", input.wanting.len(), c)?;
        check_len("pv_mode", input.pv_mode.len(), c)?;
        check_values("base_load_a", input.base_load_a, false)?;
        check_values("ev_max_a", input.ev_max_a, true)?;
        if !input.floor_a.is_empty() {
            check_len("floor_a", input.floor_a.len(), c)?;
            check_values("floor_a", input.floor_a, false)?;
        }
        if !input.laxity_s.is_empty() {
            check_len("laxity_s", input.laxity_s.len(), c)?;
            check_values("laxity_s", input.laxity_s, true)?;
        }
        let roots = [
            input.now,
            input.grid_operator_w,
            input.peak_w,
            input.pv_budget_w,
        ];
        check_values("now/grid_operator_w/peak_w/pv_budget_w", &roots[..1], false)?;
        check_values("grid_operator_w/peak_w/pv_budget_w", &roots[1..], true)?;
        if input.now < self.last_now {
            return Err(InputError::TimeWentBack {
                last: self.last_now,
                now: input.now,
            });
        }
        Ok(())
    }

    /// Runs one cycle: writes every connector's setpoint, target, phase count
    /// and reason into `out`. On error nothing changes.
    pub fn allocate(
        &mut self,
        input: &CycleInput<'_>,
        out: &mut Allocation,
    ) -> Result<(), InputError> {
        self.validate(input)?;
        let now = input.now;
        self.last_now = now;
        let topo = &self.topo;
        let work = &mut self.work;
        out.resize(topo.connector_count());
        for (i, st) in self.states.iter_mut().enumerate() {
            let wanting = input.wanting[i] != 0;
            if wanting && !st.wanting {
                st.wanting = true;
                st.queue_since = now;
            } else if !wanting && st.wanting {
                st.end_session(topo.connectors[i].phases);
            }
            work.pv[i] = input.pv_mode[i] != 0;
            let ev = input.ev_max_a[i];
            work.hi[i] = if ev == f64::INFINITY {
                topo.hi_a[i] // no EV limit: spare the rounding
            } else {
                let ev = floor_to_step(ev, topo.connectors[i].step_a);
                topo.hi_a[i].min(ev).max(topo.lo_a[i])
            };
        }
        deadline_floors(topo, work, input);
        let root = RootCaps {
            grid_operator_w: input.grid_operator_w,
            peak_w: input.peak_w,
            pv_w: input.pv_budget_w,
        };
        work.space.update(topo, input.base_load_a, root);
        work.space
            .mark_slack(topo, input.wanting, &work.hi, &work.pv);
        admission::admit(topo, &self.states, now, work, out);
        filling::fill(topo, work, &mut self.fill, false);
        for _ in 0..UNBALANCE_PASSES {
            if work.unbalance_nodes.is_empty()
                || !unbalance::tighten(topo, work, input.base_load_a, out)
            {
                break;
            }
            filling::fill(topo, work, &mut self.fill, true);
        }
        for i in 0..topo.connector_count() {
            out.fair_a[i] = if work.admitted[i] { work.x[i] } else { 0.0 };
        }
        quantize::round_down(topo, work);
        if unbalance::repair(topo, work, input.base_load_a, out) {
            filling::recompute_load(work);
        }
        quantize::hand_back(topo, work, input.base_load_a, &mut self.quantize);
        for i in 0..topo.connector_count() {
            out.target_a[i] = if work.admitted[i] { work.x[i] } else { 0.0 };
            out.phases[i] = work.mode[i];
            if work.admitted[i] {
                let why = match work.bound[i] {
                    OWN => (Reason::OwnMaximum, -1, -1),
                    k => work.space.describe(topo, k as usize),
                };
                out.set_reason(i, why);
            }
        }
        shaping::shape(topo, &self.states, now, work, out);
        self.remember(now, out);
        Ok(())
    }

    /// Updates each connector's memory from the setpoints just decided.
    fn remember(&mut self, now: f64, out: &Allocation) {
        let voltage = self.topo.settings.voltage_v;
        for (i, st) in self.states.iter_mut().enumerate() {
            let map = self.topo.connectors[i].phases;
            let (old, new) = (st.setpoint, out.setpoint_a[i]);
            let mode = out.phases[i];
            let switched = mode != st.phases;
            if (new - old).abs() > 1e-12 || switched {
                st.changed_at = now;
                st.lowered = new < old && !switched;
                st.lowered_followed = false;
            }
            if new < old - 1e-12 || (switched && old > 0.0) {
                let (phase, power) = state::draw(map, st.phases, old, voltage);
                let active = now < st.reserve_until;
                for (r, p) in st.reserve_phase_a.iter_mut().zip(phase) {
                    *r = if active { r.max(p) } else { p };
                }
                st.reserve_power_w = if active {
                    st.reserve_power_w.max(power)
                } else {
                    power
                };
                st.reserve_until = now + self.topo.settings.settle_s;
            }
            if switched && old > 0.0 && st.wanting {
                st.last_switch = now;
                st.switches += 1;
            }
            if old <= 0.0 && new > 0.0 {
                st.on_since = now;
            }
            if old > 0.0 && new <= 0.0 && st.wanting && out.target_a[i] <= 0.0 {
                st.off_since = now;
                st.queue_since = now;
            }
            st.setpoint = new;
            st.phases = mode;
        }
    }
}
