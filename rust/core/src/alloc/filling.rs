//! Step 2: weighted progressive filling ("water-filling") of the admitted set.
//!
//! Within a priority tier every connector follows `x_i(t) = clamp(w_i t, lo_i, hi_i)`
//! as `t` rises; a connector stops when it reaches its maximum or when any
//! constraint it counts in saturates. The result is the tier's unique weighted
//! max-min fair point; tiers are filled one after another, highest first.
//! Events (activations, maxima, saturations) are processed in time order with
//! a heap of saturation times, so a cycle costs O(N·c·log M) for N connectors
//! in c constraints each.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::admission::EPS;
use super::model::{from_ordered_bits, ordered_bits, Topology};
use super::Work;

/// `bound` value of a connector stopped by its own maximum.
pub(crate) const OWN: u32 = u32::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Idle,
    Waiting,
    Growing,
    Frozen,
}

/// A constraint's predicted saturation time and index, packed to sort by time.
fn saturation(t: f64, k: usize) -> Reverse<u128> {
    Reverse((u128::from(ordered_bits(t)) << 32) | k as u128)
}

#[derive(Clone, Copy, Debug)]
enum Event {
    Maximum(u32),
    Saturate(u32),
    Activate(u32),
}

/// Reusable buffers of the filling step.
#[derive(Debug, Default)]
pub(crate) struct FillScratch {
    status: Vec<Status>,
    fixed: Vec<f64>,
    slope: Vec<f64>,
    saturated: Vec<bool>,
    /// The saturation time of each constraint's live heap entry (infinity for none).
    predicted: Vec<f64>,
    dirty: Vec<u32>,
    is_dirty: Vec<bool>,
    heap: BinaryHeap<Reverse<u128>>,
    activations: Vec<(f64, u32)>,
    maxima: Vec<(f64, u32)>,
    tier: Vec<u32>,
}

impl FillScratch {
    pub(crate) fn resize(&mut self, connectors: usize, constraints: usize) {
        self.status.resize(connectors, Status::Idle);
        self.fixed.resize(constraints, 0.0);
        self.slope.resize(constraints, 0.0);
        self.saturated.resize(constraints, false);
        self.predicted.resize(constraints, f64::INFINITY);
        self.is_dirty.resize(constraints, false);
    }
}

/// Recomputes `work.load` from `work.x` over the admitted connectors.
pub(crate) fn recompute_load(work: &mut Work) {
    work.load.iter_mut().for_each(|l| *l = 0.0);
    for o in 0..work.order.len() {
        let i = work.order[o] as usize;
        add_load(work, i, work.x[i]);
    }
}

/// Adds `amount` times connector `i`'s coefficients to the loads.
#[inline]
pub(crate) fn add_load(work: &mut Work, i: usize, amount: f64) {
    for t in work.terms(i) {
        work.load[work.terms_k[t] as usize] += work.terms_a[t] * amount;
    }
}

/// Fills the admitted connectors from their minimums; sets `work.x` and `work.bound`.
/// `refill` recomputes the minimums' loads (admission leaves them in place).
pub(crate) fn fill(topo: &Topology, work: &mut Work, sc: &mut FillScratch, refill: bool) {
    if refill {
        for &i in &work.order {
            work.x[i as usize] = topo.lo_a[i as usize];
        }
        recompute_load(work);
    }
    sc.tier.clear();
    sc.tier.extend_from_slice(&work.order);
    sc.tier
        .sort_unstable_by_key(|&i| (u8::MAX - topo.connectors[i as usize].priority, i));
    let mut start = 0;
    while start < sc.tier.len() {
        let priority = topo.connectors[sc.tier[start] as usize].priority;
        let end = start
            + sc.tier[start..]
                .iter()
                .take_while(|&&i| topo.connectors[i as usize].priority == priority)
                .count();
        fill_tier(topo, work, sc, start, end);
        for &i in &sc.tier[start..end] {
            let i = i as usize;
            add_load(work, i, work.x[i] - topo.lo_a[i]);
        }
        start = end;
    }
}

fn next_event(sc: &FillScratch, ai: usize, mi: usize) -> Option<(f64, Event)> {
    let mut best: Option<(f64, Event)> = sc.maxima.get(mi).map(|&(t, i)| (t, Event::Maximum(i)));
    if let Some(Reverse(key)) = sc.heap.peek() {
        let st = from_ordered_bits((key >> 32) as u64);
        if best.is_none_or(|(t, _)| st < t) {
            best = Some((st, Event::Saturate((key & u128::from(u32::MAX)) as u32)));
        }
    }
    if let Some(&(t, i)) = sc.activations.get(ai) {
        if best.is_none_or(|(bt, _)| t < bt) {
            best = Some((t, Event::Activate(i)));
        }
    }
    best
}

fn mark(sc: &mut FillScratch, k: usize) {
    if !sc.is_dirty[k] {
        sc.is_dirty[k] = true;
        sc.dirty.push(k as u32);
    }
}

fn flush(work: &Work, sc: &mut FillScratch) {
    for &k in &sc.dirty {
        let k = k as usize;
        sc.is_dirty[k] = false;
        // A later time than the live entry's is re-predicted when that entry pops.
        if !sc.saturated[k] && sc.slope[k] > 1e-12 && work.space.cap[k].is_finite() {
            let t = (work.space.cap[k] - sc.fixed[k]) / sc.slope[k];
            if t < sc.predicted[k] {
                sc.predicted[k] = t;
                sc.heap.push(saturation(t, k));
            }
        }
    }
    sc.dirty.clear();
}

fn freeze(topo: &Topology, work: &mut Work, sc: &mut FillScratch, i: usize, t: f64, bound: u32) {
    let (lo, hi, w) = (topo.lo_a[i], work.hi[i], topo.connectors[i].weight);
    if sc.status[i] == Status::Growing {
        let x = (w * t).clamp(lo, hi);
        work.x[i] = x;
        for t in work.terms(i) {
            let (k, a) = (work.terms_k[t] as usize, work.terms_a[t]);
            sc.fixed[k] += a * x;
            sc.slope[k] -= a * w;
            mark(sc, k);
        }
    } else {
        work.x[i] = lo;
    }
    sc.status[i] = Status::Frozen;
    work.bound[i] = bound;
}

fn fill_tier(topo: &Topology, work: &mut Work, sc: &mut FillScratch, start: usize, end: usize) {
    sc.heap.clear();
    sc.activations.clear();
    sc.maxima.clear();
    let mut remaining = 0usize;
    for &i in &sc.tier[start..end] {
        let iu = i as usize;
        let (lo, hi, w) = (topo.lo_a[iu], work.hi[iu], topo.connectors[iu].weight);
        if hi <= lo + EPS {
            sc.status[iu] = Status::Frozen;
            work.x[iu] = lo;
            work.bound[iu] = OWN;
        } else {
            sc.status[iu] = Status::Waiting;
            // Only the tier's own constraints are read: start them afresh.
            for t in work.terms(iu) {
                let k = work.terms_k[t] as usize;
                sc.fixed[k] = work.load[k];
                sc.slope[k] = 0.0;
                sc.saturated[k] = false;
                sc.predicted[k] = f64::INFINITY;
            }
            sc.activations.push((lo / w, i));
            sc.maxima.push((hi / w, i));
            remaining += 1;
        }
    }
    let by_time = |a: &(f64, u32), b: &(f64, u32)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
    sc.activations.sort_unstable_by(by_time);
    sc.maxima.sort_unstable_by(by_time);
    let (mut ai, mut mi, mut t) = (0usize, 0usize, 0.0f64);
    while remaining > 0 {
        let Some((et, event)) = next_event(sc, ai, mi) else {
            break;
        };
        if et > t && !sc.dirty.is_empty() {
            flush(work, sc);
            continue;
        }
        t = t.max(et);
        match event {
            Event::Maximum(i) => {
                mi += 1;
                if sc.status[i as usize] == Status::Growing {
                    freeze(topo, work, sc, i as usize, t, OWN);
                    remaining -= 1;
                }
            }
            Event::Activate(i) => {
                ai += 1;
                let iu = i as usize;
                if sc.status[iu] == Status::Waiting {
                    sc.status[iu] = Status::Growing;
                    let (lo, w) = (topo.lo_a[iu], topo.connectors[iu].weight);
                    for t in work.terms(iu) {
                        let (k, a) = (work.terms_k[t] as usize, work.terms_a[t]);
                        sc.fixed[k] -= a * lo;
                        sc.slope[k] += a * w;
                        mark(sc, k);
                    }
                }
            }
            Event::Saturate(k) => {
                sc.heap.pop();
                let ku = k as usize;
                if sc.saturated[ku] || et != sc.predicted[ku] {
                    continue; // superseded by an earlier prediction
                }
                sc.predicted[ku] = f64::INFINITY;
                let cap = work.space.cap[ku];
                let load = sc.fixed[ku] + sc.slope[ku] * t;
                if cap - load > EPS * (1.0 + cap.abs()) {
                    // Its members slowed down since: predict again.
                    if sc.slope[ku] > 1e-12 {
                        let next = (cap - sc.fixed[ku]) / sc.slope[ku];
                        sc.predicted[ku] = next;
                        sc.heap.push(saturation(next, ku));
                    }
                    continue;
                }
                sc.saturated[ku] = true;
                let owner = work.space.owner(topo, ku);
                for idx in topo.members_start[owner]..topo.members_start[owner + 1] {
                    let i = topo.members[idx as usize] as usize;
                    let status = sc.status[i];
                    if (status == Status::Waiting || status == Status::Growing)
                        && work
                            .space
                            .coefficient(topo, ku, i, work.mode[i], work.pv[i])
                            > 0.0
                    {
                        freeze(topo, work, sc, i, t, k);
                        remaining -= 1;
                    }
                }
            }
        }
    }
    for &i in &sc.tier[start..end] {
        sc.status[i as usize] = Status::Idle;
    }
    for &k in &sc.dirty {
        sc.is_dirty[k as usize] = false;
    }
    sc.dirty.clear();
}
