//! The constraint space of one cycle: every limit as a packing constraint
//! `sum(a_ki * x_i) <= cap_k` with its capacity left after the base load.
//!
//! Index layout for `N` nodes: phase currents `3n + p`, node power `3N + n`,
//! the unbalance pass's virtual one-phase caps `4N + 3n + p`, then the
//! grid-operator, peak and PV constraints (all at the root).

use super::model::{Topology, PHASES};
use super::outcome::Reason;

/// Which root-level constraints are active this cycle, and their caps.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RootCaps {
    pub(crate) grid_operator_w: f64,
    pub(crate) peak_w: f64,
    pub(crate) pv_w: f64,
}

/// Capacities and membership of all constraints for one cycle.
#[derive(Debug)]
pub(crate) struct Space {
    nodes: usize,
    voltage: f64,
    phase_on: Vec<bool>,
    power_on: Vec<bool>,
    unbalance_on: Vec<bool>,
    pub(crate) cap: Vec<f64>,
    gop_on: bool,
    peak_on: bool,
    pv_on: bool,
}

impl Space {
    pub(crate) fn new(topo: &Topology) -> Self {
        let n = topo.node_count();
        let phase_on = topo
            .nodes
            .iter()
            .flat_map(|node| node.phase_cap_a.map(f64::is_finite))
            .collect();
        let power_on = topo
            .nodes
            .iter()
            .map(|node| node.power_cap_w.is_finite())
            .collect();
        let unbalance_on = topo
            .nodes
            .iter()
            .map(|node| node.unbalance_cap_a.is_finite())
            .collect();
        Self {
            nodes: n,
            voltage: topo.settings.voltage_v,
            phase_on,
            power_on,
            unbalance_on,
            cap: vec![f64::INFINITY; 7 * n + 3],
            gop_on: false,
            peak_on: false,
            pv_on: false,
        }
    }

    /// Number of constraints.
    pub(crate) fn len(&self) -> usize {
        self.cap.len()
    }

    fn global(&self, which: usize) -> usize {
        7 * self.nodes + which
    }

    /// Sets the capacities left for connectors this cycle.
    pub(crate) fn update(&mut self, topo: &Topology, base: &[f64], root: RootCaps, wanting: usize) {
        let n = self.nodes;
        for (node, spec) in topo.nodes.iter().enumerate() {
            let b = &base[PHASES * node..PHASES * node + PHASES];
            let phase_caps = &mut self.cap[PHASES * node..PHASES * node + PHASES];
            for ((cap, limit), load) in phase_caps.iter_mut().zip(spec.phase_cap_a).zip(b) {
                *cap = limit - load;
            }
            self.cap[3 * n + node] = spec.power_cap_w - self.voltage * (b[0] + b[1] + b[2]);
            let virtual_caps = &mut self.cap[4 * n + PHASES * node..4 * n + PHASES * node + PHASES];
            virtual_caps.fill(f64::INFINITY);
        }
        let r = topo.root;
        let root_base_w = self.voltage * (base[3 * r] + base[3 * r + 1] + base[3 * r + 2]);
        let floor_w = topo.settings.grid_operator_floor_w * wanting as f64;
        let gop = (root.grid_operator_w - root_base_w).max(floor_w);
        let g = self.global(0);
        self.gop_on = root.grid_operator_w.is_finite();
        self.cap[g] = if self.gop_on { gop } else { f64::INFINITY };
        self.peak_on = root.peak_w.is_finite();
        self.cap[g + 1] = root.peak_w - root_base_w;
        self.pv_on = root.pv_w.is_finite();
        self.cap[g + 2] = root.pv_w;
    }

    /// Tightens the virtual cap on the one-phase connectors of `node` on `phase`.
    pub(crate) fn tighten_unbalance(&mut self, node: usize, phase: usize, cap: f64) -> bool {
        let k = 4 * self.nodes + PHASES * node + phase;
        if cap < self.cap[k] - 1e-9 {
            self.cap[k] = cap;
            true
        } else {
            false
        }
    }

    /// Calls `f(k, a)` for every active constraint connector `i` counts in, drawing
    /// one unit of current per phase in `mode` (1 or 3 phases).
    #[inline]
    pub(crate) fn for_each(
        &self,
        topo: &Topology,
        i: usize,
        mode: u8,
        pv: bool,
        mut f: impl FnMut(usize, f64),
    ) {
        let c = &topo.connectors[i];
        let n = self.nodes;
        let power = f64::from(mode) * self.voltage;
        let single = c.phases.single_phase().map_or(0, usize::from);
        for &node in topo.path(c.node) {
            let node = node as usize;
            if mode == 3 {
                for p in 0..PHASES {
                    if self.phase_on[PHASES * node + p] {
                        f(PHASES * node + p, 1.0);
                    }
                }
            } else {
                if self.phase_on[PHASES * node + single] {
                    f(PHASES * node + single, 1.0);
                }
                if self.unbalance_on[node] {
                    f(4 * n + PHASES * node + single, 1.0);
                }
            }
            if self.power_on[node] {
                f(3 * n + node, power);
            }
        }
        self.for_each_global(pv, power, f);
    }

    #[inline]
    fn for_each_global(&self, pv: bool, power: f64, mut f: impl FnMut(usize, f64)) {
        if self.gop_on {
            f(self.global(0), power);
        }
        if self.peak_on {
            f(self.global(1), power);
        }
        if self.pv_on && pv {
            f(self.global(2), power);
        }
    }

    /// Calls `f(k, load)` for every physical constraint (no virtual unbalance
    /// caps) that a draw of `phase_a` per grid phase and `power_w` counts in.
    pub(crate) fn for_each_draw(
        &self,
        topo: &Topology,
        i: usize,
        phase_a: [f64; PHASES],
        power_w: f64,
        pv: bool,
        mut f: impl FnMut(usize, f64),
    ) {
        let n = self.nodes;
        for &node in topo.path(topo.connectors[i].node) {
            let node = node as usize;
            for (p, &a) in phase_a.iter().enumerate() {
                if self.phase_on[PHASES * node + p] {
                    f(PHASES * node + p, a);
                }
            }
            if self.power_on[node] {
                f(3 * n + node, power_w);
            }
        }
        self.for_each_global(pv, power_w, f);
    }

    /// The grid phase a physical constraint counts, or `None` for power-type ones.
    pub(crate) fn phase_of(&self, k: usize) -> Option<usize> {
        (k < 3 * self.nodes).then_some(k % PHASES)
    }

    /// The coefficient of connector `i` (in the subtree of `k`'s node) in constraint `k`.
    #[inline]
    pub(crate) fn coefficient(
        &self,
        topo: &Topology,
        k: usize,
        i: usize,
        mode: u8,
        pv: bool,
    ) -> f64 {
        let n = self.nodes;
        let single = topo.connectors[i]
            .phases
            .single_phase()
            .map_or(0, usize::from);
        let power = f64::from(mode) * self.voltage;
        if k < 3 * n {
            f64::from(u8::from(mode == 3 || single == k % PHASES))
        } else if k < 4 * n {
            power
        } else if k < 7 * n {
            f64::from(u8::from(mode == 1 && single == (k - 4 * n) % PHASES))
        } else if k == self.global(2) {
            if pv {
                power
            } else {
                0.0
            }
        } else {
            power
        }
    }

    /// The node whose subtree holds every member of constraint `k`.
    pub(crate) fn owner(&self, topo: &Topology, k: usize) -> usize {
        let n = self.nodes;
        if k < 3 * n {
            k / PHASES
        } else if k < 4 * n {
            k - 3 * n
        } else if k < 7 * n {
            (k - 4 * n) / PHASES
        } else {
            topo.root
        }
    }

    /// What constraint `k` is, for the decision log: reason, node, phase (-1 for none).
    pub(crate) fn describe(&self, topo: &Topology, k: usize) -> (Reason, i32, i8) {
        let n = self.nodes;
        let root = topo.root as i32;
        if k < 3 * n {
            (
                Reason::PhaseCurrent,
                (k / PHASES) as i32,
                (k % PHASES) as i8,
            )
        } else if k < 4 * n {
            (Reason::Power, (k - 3 * n) as i32, -1)
        } else if k < 7 * n {
            (
                Reason::Unbalance,
                ((k - 4 * n) / PHASES) as i32,
                ((k - 4 * n) % PHASES) as i8,
            )
        } else if k == self.global(0) {
            (Reason::GridOperator, root, -1)
        } else if k == self.global(1) {
            (Reason::PeakTarget, root, -1)
        } else {
            (Reason::PvBudget, root, -1)
        }
    }
}
