//! The constraint space of one cycle: every limit as a packing constraint
//! `sum(a_ki * x_i) <= cap_k` with its capacity left after the base load.
//!
//! Index layout for `N` nodes: phase currents `3n + p`, node power `3N + n`,
//! the unbalance pass's virtual one-phase caps `4N + 3n + p`, then the
//! grid-operator, peak and PV constraints (all at the root).

use super::model::{PhaseMap, Topology, PHASES};
use super::outcome::Reason;

/// Relative clearance below its capacity that makes a limit slack for a cycle:
/// far above the float error of any load, far below any step.
const SLACK_MARGIN: f64 = 1e-6;

/// Whether a load of at most `load` stays clear below `cap` (see [`SLACK_MARGIN`]).
fn clear_below(load: f64, cap: f64) -> bool {
    cap == f64::INFINITY || load + SLACK_MARGIN * (1.0 + cap.abs()) < cap
}

/// Which root-level constraints are active this cycle, and their caps.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RootCaps {
    pub(crate) grid_operator_w: f64,
    pub(crate) peak_w: f64,
    pub(crate) pv_w: f64,
}

/// The coefficients a connector can have in a constraint, per A it draws:
/// one A of current, or the power of one or three phases (plus padding).
pub(crate) type Coefficients = [f64; 4];

/// [`Coefficients`] index of one A of current.
const CURRENT: u32 = 0;

/// [`Coefficients`] index of the power drawn per A on `mode` phases.
fn power_code(mode: u8) -> u32 {
    if mode == 3 {
        2
    } else {
        1
    }
}

/// One coefficient of a connector in a constraint, packed into 4 bytes: the
/// constraint index in the low 30 bits, its [`Coefficients`] index in the top 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Term(u32);

impl Term {
    fn new(k: usize, code: u32) -> Self {
        debug_assert!(k < 1 << 30);
        Self(k as u32 | code << 30)
    }

    /// The constraint.
    #[inline]
    pub(crate) fn k(self) -> usize {
        (self.0 & ((1 << 30) - 1)) as usize
    }

    /// The coefficient, from the cycle's table.
    #[inline]
    pub(crate) fn a(self, coefficients: &Coefficients) -> f64 {
        coefficients[(self.0 >> 30) as usize]
    }
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
    /// Per node phase and power limit: whether it cannot bind this cycle (see
    /// [`Space::mark_slack`]), and the load if every wanting connector drew its
    /// maximum, node by node (`4 * nodes`, laid out like the constraints).
    slack: Vec<bool>,
    reach: Vec<f64>,
    /// What the slack limits were last found from: each connector's largest
    /// draw (0 when not wanting), and the node and root-level capacities.
    drawn: Vec<f64>,
    seen_cap: Vec<f64>,
    /// The slack limits the terms were built with.
    built_slack: Vec<bool>,
    /// The minimums of every wanting connector, summed like `reach`; per node,
    /// whether they fit in every limit from it up to the root; whether they fit
    /// in the grid-operator and peak limits.
    need: Vec<f64>,
    free_path: Vec<bool>,
    free_globals: bool,
    /// Non-root nodes, deepest first, with their parents.
    bottom_up: Vec<(u32, u32)>,
    /// The most power one connector can draw (three phases at the largest maximum).
    largest_draw_w: f64,
    /// Per connector, for three then one phase: the constraints it counts in
    /// that can bind (node phase currents, unbalance, power on its path, then
    /// the root-level ones), `terms[at[0]..at[1]]` and `terms[at[1]..at[2]]`.
    /// Rebuilt only when a limit turns slack or binding, a root-level limit
    /// comes or goes, or a connector enters or leaves PV mode.
    pub(crate) terms: Vec<Term>,
    terms_at: Vec<[u32; 3]>,
    /// The PV-mode flags and root-level limits the terms were built with.
    built_pv: Vec<bool>,
    built_globals: (bool, bool, bool),
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
        let mut space = Self {
            nodes: n,
            voltage: topo.settings.voltage_v,
            phase_on,
            power_on,
            unbalance_on,
            cap: vec![f64::INFINITY; 7 * n + 3],
            slack: vec![false; 4 * n],
            reach: vec![0.0; 4 * n],
            drawn: vec![0.0; topo.connector_count()],
            seen_cap: vec![f64::NAN; 4 * n + 2],
            built_slack: vec![false; 4 * n],
            need: vec![0.0; 4 * n],
            free_path: vec![false; n],
            free_globals: false,
            bottom_up: Vec::new(),
            largest_draw_w: 3.0
                * topo.settings.voltage_v
                * topo.hi_a.iter().fold(0.0, |a, &b| f64::max(a, b)),
            terms: Vec::new(),
            terms_at: Vec::with_capacity(topo.connector_count()),
            built_pv: vec![false; topo.connector_count()],
            built_globals: (false, false, false),
            gop_on: false,
            peak_on: false,
            pv_on: false,
        };
        let mut bottom_up: Vec<(u32, u32)> = (0..n)
            .filter_map(|node| Some((node as u32, topo.nodes[node].parent? as u32)))
            .collect();
        bottom_up.sort_by_key(|&(node, _)| std::cmp::Reverse(topo.path(node as usize).len()));
        space.bottom_up = bottom_up;
        space.build_terms(topo);
        space
    }

    fn build_terms(&mut self, topo: &Topology) {
        let mut terms = std::mem::take(&mut self.terms);
        terms.clear();
        self.terms_at.clear();
        for i in 0..topo.connector_count() {
            let mut at = [0u32; 3];
            for (slot, mode) in [(0, 3), (1, 1)] {
                at[slot] = terms.len() as u32;
                self.for_each_on_path(topo, i, mode, |k, code| terms.push(Term::new(k, code)));
                self.global_terms(self.built_pv[i], mode, |t| terms.push(t));
            }
            at[2] = terms.len() as u32;
            self.terms_at.push(at);
        }
        self.terms = terms;
    }

    /// A connector's phases changed: its terms now, the slack limits found again
    /// next cycle (what a connector may draw below a node changed).
    pub(crate) fn rephase(&mut self, topo: &Topology) {
        self.seen_cap.fill(f64::NAN);
        self.build_terms(topo);
    }

    /// Number of constraints.
    pub(crate) fn len(&self) -> usize {
        self.cap.len()
    }

    fn global(&self, which: usize) -> usize {
        7 * self.nodes + which
    }

    /// Sets the capacities left for connectors this cycle.
    pub(crate) fn update(&mut self, topo: &Topology, base: &[f64], root: RootCaps) {
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
        let g = self.global(0);
        self.gop_on = root.grid_operator_w.is_finite();
        self.cap[g] = if self.gop_on {
            root.grid_operator_w - root_base_w
        } else {
            f64::INFINITY
        };
        self.peak_on = root.peak_w.is_finite();
        self.cap[g + 1] = root.peak_w - root_base_w;
        self.pv_on = root.pv_w.is_finite();
        self.cap[g + 2] = root.pv_w;
    }

    /// Marks the node phase and power limits that cannot bind this cycle: even
    /// if every wanting connector drew its maximum `hi` on every phase it may
    /// use, their load would stay clear of the capacity. Those are left out of
    /// the connectors' terms, which changes nothing but the work. Also finds
    /// where the minimums alone all fit (see [`Space::admits_freely`]).
    pub(crate) fn mark_slack(&mut self, topo: &Topology, wanting: &[u8], hi: &[f64], pv: &[bool]) {
        let n = self.nodes;
        let (g, peak) = (self.global(0), self.global(1));
        // Nothing to redo when no connector's maximum draw and no capacity changed.
        let mut same = true;
        for ((drawn, &wants), &hi) in self.drawn.iter_mut().zip(wanting).zip(hi) {
            let now = if wants != 0 { hi } else { 0.0 };
            same &= *drawn == now;
            *drawn = now;
        }
        let caps = self.cap[..4 * n]
            .iter()
            .chain([&self.cap[g], &self.cap[peak]]);
        for (seen, &cap) in self.seen_cap.iter_mut().zip(caps) {
            same &= *seen == cap;
            *seen = cap;
        }
        if !same {
            self.find_slack(topo);
        }
        let mut changed = !same && self.slack != self.built_slack;
        if changed {
            self.built_slack.copy_from_slice(&self.slack);
        }
        let globals = (self.gop_on, self.peak_on, self.pv_on);
        changed |= globals != self.built_globals;
        self.built_globals = globals;
        if self.built_pv != pv {
            self.built_pv.copy_from_slice(pv);
            changed |= self.pv_on;
        }
        if changed {
            self.build_terms(topo);
        }
    }

    /// Sets `slack` from the connectors' largest draws `drawn` and the capacities.
    fn find_slack(&mut self, topo: &Topology) {
        let n = self.nodes;
        let mut reach = std::mem::take(&mut self.reach);
        self.sum_below(topo, |i| self.drawn[i], &mut reach);
        // The root's power limit counts every connector as the grid-operator
        // and peak limits do. When one of them is lower by more than any one
        // connector can draw, the root's limit never even blocks a step first.
        let g = self.global(0);
        let root_power = 3 * n + topo.root;
        let lowest = self.cap[g].min(self.cap[g + 1]) + self.largest_draw_w;
        reach[root_power] = reach[root_power].min(lowest);
        for ((slack, reach), &cap) in self.slack.iter_mut().zip(&reach).zip(&self.cap) {
            *slack = clear_below(*reach, cap);
        }
        self.reach = reach;
        // The same for the minimums alone: where they all fit, admission has nothing to check.
        let mut need = std::mem::take(&mut self.need);
        let wanting_lo = |i: usize| {
            if self.drawn[i] > 0.0 {
                topo.lo_a[i]
            } else {
                0.0
            }
        };
        self.sum_below(topo, wanting_lo, &mut need);
        let root_need_w = need[root_power];
        self.free_globals =
            clear_below(root_need_w, self.cap[g]) && clear_below(root_need_w, self.cap[g + 1]);
        // Top down: the root (no parent), then every node after its parent.
        let root = (topo.root as u32, u32::MAX);
        for &(node, parent) in std::iter::once(&root).chain(self.bottom_up.iter().rev()) {
            let node = node as usize;
            let fits = |slot: usize, on: bool| !on || clear_below(need[slot], self.cap[slot]);
            let free = (0..PHASES)
                .all(|p| fits(PHASES * node + p, self.phase_on[PHASES * node + p]))
                && fits(3 * n + node, self.power_on[node])
                && self.free_path.get(parent as usize).is_none_or(|&up| up);
            self.free_path[node] = free;
        }
        self.need = need;
    }

    /// Sums, node by node up to the root, what the connectors below would draw
    /// with `amount(i)` A on every phase they may use: `sums` by phase and
    /// power slot (`4 * nodes`).
    fn sum_below(&self, topo: &Topology, amount: impl Fn(usize) -> f64, sums: &mut [f64]) {
        let n = self.nodes;
        sums.fill(0.0);
        for (i, c) in topo.connectors.iter().enumerate() {
            let a = amount(i);
            if a == 0.0 {
                continue;
            }
            let node = c.node;
            // Three phases draw on a superset of one phase's limits, at more power.
            if let PhaseMap::Single(p) = c.phases {
                sums[PHASES * node + usize::from(p)] += a;
                sums[3 * n + node] += self.voltage * a;
            } else {
                for r in &mut sums[PHASES * node..PHASES * node + PHASES] {
                    *r += a;
                }
                sums[3 * n + node] += 3.0 * self.voltage * a;
            }
        }
        for &(node, parent) in &self.bottom_up {
            let (node, parent) = (node as usize, parent as usize);
            for p in 0..PHASES {
                sums[PHASES * parent + p] += sums[PHASES * node + p];
            }
            sums[3 * n + parent] += sums[3 * n + node];
        }
    }

    /// Whether connector `i` (in PV mode `pv`) fits its minimum wherever it
    /// counts, whatever else is admitted: every minimum together fits there.
    #[inline]
    pub(crate) fn admits_freely(&self, topo: &Topology, i: usize, pv: bool) -> bool {
        self.free_path[topo.connectors[i].node] && self.free_globals && !(pv && self.pv_on)
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

    /// Calls `f(k, code)` for every path constraint connector `i` counts in that can bind,
    /// with its [`Coefficients`] index when drawing on `mode` (1 or 3) phases.
    fn for_each_on_path(&self, topo: &Topology, i: usize, mode: u8, mut f: impl FnMut(usize, u32)) {
        let c = &topo.connectors[i];
        let n = self.nodes;
        let power = power_code(mode);
        let single = c.phases.single_phase().map_or(0, usize::from);
        for &node in topo.path(c.node) {
            let node = node as usize;
            if mode == 3 {
                for p in 0..PHASES {
                    if self.phase_on[PHASES * node + p] && !self.slack[PHASES * node + p] {
                        f(PHASES * node + p, CURRENT);
                    }
                }
            } else {
                let k = PHASES * node + single;
                if self.phase_on[k] && !self.slack[k] {
                    f(k, CURRENT);
                }
                if self.unbalance_on[node] {
                    f(4 * n + PHASES * node + single, CURRENT);
                }
            }
            if self.power_on[node] && !self.slack[3 * n + node] {
                f(3 * n + node, power);
            }
        }
    }

    /// The coefficient table of every [`Term`].
    pub(crate) fn coefficients(&self) -> Coefficients {
        [1.0, self.voltage, 3.0 * self.voltage, 0.0]
    }

    /// The root-level constraints (grid operator, peak, PV budget) a connector
    /// in PV mode `pv` drawing on `mode` phases counts in; they follow its path terms.
    fn global_terms(&self, pv: bool, mode: u8, mut f: impl FnMut(Term)) {
        let code = power_code(mode);
        self.for_each_global(pv, 0.0, |k, _| f(Term::new(k, code)));
    }

    /// Index range into `terms` of the constraints connector `i` counts in
    /// when drawing on `mode` (1 or 3) phases.
    #[inline]
    pub(crate) fn terms_of(&self, i: usize, mode: u8) -> (u32, u32) {
        let [three, one, end] = self.terms_at[i];
        if mode == 3 {
            (three, one - three)
        } else {
            (one, end - one)
        }
    }

    /// Calls `f(k, a)` for every active root-level constraint (grid operator,
    /// peak, PV budget) a draw of `power` W counts in; they follow the path terms.
    #[inline]
    pub(crate) fn for_each_global(&self, pv: bool, power: f64, mut f: impl FnMut(usize, f64)) {
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
