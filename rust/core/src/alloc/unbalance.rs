//! Step 3: phase-unbalance limits (max phase current minus min phase current
//! at a node, base load included).
//!
//! Unbalance rows have negative coefficients, so water-filling cannot take
//! them directly. As openWB does, a violated node gets a virtual cap on its
//! one-phase connectors on the heavy phase (three-phase connectors load all
//! phases alike and cannot fix it), then the fill is repeated. After rounding,
//! [`repair`] lowers heavy-phase one-phase connectors step by step (pausing
//! those that would fall below their minimum) until every node is within its
//! limit or no controllable one-phase current is left on its heavy phases.

use super::admission::EPS;
use super::model::{Topology, PHASES};
use super::outcome::{Allocation, Reason};
use super::Work;

/// Phase currents of `node`: base load plus the admitted connectors below it.
pub(crate) fn phase_currents(topo: &Topology, work: &Work, base: &[f64], node: usize) -> [f64; 3] {
    let mut current = [
        base[PHASES * node],
        base[PHASES * node + 1],
        base[PHASES * node + 2],
    ];
    for &i in topo.members(node) {
        let i = i as usize;
        if !work.admitted[i] {
            continue;
        }
        let x = work.x[i];
        match topo.connectors[i]
            .phases
            .single_phase()
            .filter(|_| work.mode[i] == 1)
        {
            Some(p) => current[usize::from(p)] += x,
            None => current.iter_mut().for_each(|c| *c += x),
        }
    }
    current
}

fn gap(current: &[f64; 3]) -> f64 {
    current.iter().copied().fold(f64::NEG_INFINITY, f64::max)
        - current.iter().copied().fold(f64::INFINITY, f64::min)
}

/// Whether connector `i` draws one-phase current on grid phase `p`.
fn one_phase_on(topo: &Topology, work: &Work, i: usize, p: usize) -> bool {
    work.mode[i] == 1 && topo.connectors[i].phases.single_phase() == Some(p as u8)
}

/// Tightens the virtual caps of violated nodes after a fill, pausing one-phase
/// connectors whose minimums alone break the limit (last admitted first); the
/// heavy phase's one-phase connectors lose their deadline floors.
/// Returns whether anything changed, so the fill must be repeated.
pub(crate) fn tighten(
    topo: &Topology,
    work: &mut Work,
    base: &[f64],
    out: &mut Allocation,
) -> bool {
    let mut changed = false;
    for u in 0..work.unbalance_nodes.len() {
        let node = work.unbalance_nodes[u] as usize;
        let limit = topo.nodes[node].unbalance_cap_a;
        let current = phase_currents(topo, work, base, node);
        let low = current.iter().copied().fold(f64::INFINITY, f64::min);
        for (p, &phase_current) in current.iter().enumerate() {
            let excess = phase_current - low - limit;
            if excess <= EPS {
                continue;
            }
            let mut one_phase = 0.0;
            let mut minimums = 0.0;
            for &i in topo.members(node) {
                let i = i as usize;
                if work.admitted[i] && one_phase_on(topo, work, i, p) {
                    one_phase += work.x[i];
                    minimums += topo.lo_a[i];
                    // The refill starts it at its minimum: the limit wins over a deadline.
                    work.lo[i] = topo.lo_a[i];
                }
            }
            let cap = (one_phase - excess).max(0.0);
            changed |= work.space.tighten_unbalance(node, p, cap);
            for o in (0..work.order.len()).rev() {
                if minimums <= cap + EPS {
                    break;
                }
                let i = work.order[o] as usize;
                if topo.path(topo.connectors[i].node).contains(&(node as u32))
                    && one_phase_on(topo, work, i, p)
                {
                    minimums -= topo.lo_a[i];
                    pause(work, out, i, node, p);
                    changed = true;
                }
            }
        }
    }
    if changed {
        let admitted = &work.admitted;
        work.order.retain(|&i| admitted[i as usize]);
    }
    changed
}

fn pause(work: &mut Work, out: &mut Allocation, i: usize, node: usize, p: usize) {
    work.admitted[i] = false;
    work.x[i] = 0.0;
    out.set_reason(i, (Reason::Unbalance, node as i32, p as i8));
}

/// Lowers rounded one-phase setpoints on heavy phases until every node is within
/// its unbalance limit or has no controllable current left there; returns
/// whether anything changed.
pub(crate) fn repair(topo: &Topology, work: &mut Work, base: &[f64], out: &mut Allocation) -> bool {
    // Lowering for one node can unbalance another on the same path: repeat
    // until a whole pass changes nothing (every action lowers a setpoint).
    let mut changed = false;
    let mut acted = true;
    while acted {
        acted = false;
        for u in 0..work.unbalance_nodes.len() {
            acted |= repair_node(topo, work, base, out, work.unbalance_nodes[u] as usize);
        }
        changed |= acted;
    }
    let admitted = &work.admitted;
    work.order.retain(|&i| admitted[i as usize]);
    changed
}

fn repair_node(
    topo: &Topology,
    work: &mut Work,
    base: &[f64],
    out: &mut Allocation,
    node: usize,
) -> bool {
    let limit = topo.nodes[node].unbalance_cap_a;
    let mut acted = false;
    loop {
        let current = phase_currents(topo, work, base, node);
        if gap(&current) <= limit + EPS {
            return acted;
        }
        let high = (0..PHASES)
            .max_by(|&a, &b| current[a].total_cmp(&current[b]))
            .unwrap_or(0);
        let Some(o) = (0..work.order.len()).rev().find(|&o| {
            let i = work.order[o] as usize;
            work.admitted[i]
                && topo.path(topo.connectors[i].node).contains(&(node as u32))
                && one_phase_on(topo, work, i, high)
        }) else {
            return acted;
        };
        acted = true;
        let i = work.order[o] as usize;
        let step = topo.connectors[i].step_a;
        let steps = ((gap(&current) - limit) / step - 1e-9).ceil().max(1.0);
        let lowered = work.x[i] - steps * step;
        if lowered < topo.lo_a[i] - EPS {
            pause(work, out, i, node, high);
        } else {
            work.x[i] = lowered;
            work.bound[i] = (4 * topo.node_count() + PHASES * node + high) as u32;
        }
    }
}

/// Phase currents of the unbalance-limited nodes, kept up to date while
/// setpoints are handed back one step at a time.
#[derive(Debug, Default)]
pub(crate) struct Balance {
    current: Vec<[f64; 3]>,
    slot: Vec<u32>,
}

impl Balance {
    pub(crate) fn reset(&mut self, topo: &Topology, work: &Work, base: &[f64]) {
        self.slot.clear();
        self.slot.resize(topo.node_count(), u32::MAX);
        self.current.clear();
        for &node in &work.unbalance_nodes {
            self.slot[node as usize] = self.current.len() as u32;
            self.current
                .push(phase_currents(topo, work, base, node as usize));
        }
    }

    /// The first node on `i`'s path whose unbalance would exceed its limit (and
    /// grow) if `i` drew `delta` more per phase, as (node, phase).
    pub(crate) fn blocks(
        &self,
        topo: &Topology,
        work: &Work,
        i: usize,
        delta: f64,
    ) -> Option<(usize, usize)> {
        if self.current.is_empty() || work.mode[i] != 1 {
            return None;
        }
        let p = usize::from(topo.connectors[i].phases.single_phase()?);
        for &node in topo.path(topo.connectors[i].node) {
            let slot = self.slot[node as usize];
            if slot == u32::MAX {
                continue;
            }
            let before = self.current[slot as usize];
            let mut after = before;
            after[p] += delta;
            let limit = topo.nodes[node as usize].unbalance_cap_a;
            if gap(&after) > limit.max(gap(&before)) + EPS {
                return Some((node as usize, p));
            }
        }
        None
    }

    /// Records that `i` now draws `delta` more per phase.
    pub(crate) fn add(&mut self, topo: &Topology, work: &Work, i: usize, delta: f64) {
        if self.current.is_empty() {
            return;
        }
        let single = topo.connectors[i]
            .phases
            .single_phase()
            .filter(|_| work.mode[i] == 1);
        for &node in topo.path(topo.connectors[i].node) {
            let slot = self.slot[node as usize];
            if slot == u32::MAX {
                continue;
            }
            let current = &mut self.current[slot as usize];
            match single {
                Some(p) => current[usize::from(p)] += delta,
                None => current.iter_mut().for_each(|c| *c += delta),
            }
        }
    }
}
