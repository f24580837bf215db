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

/// A time and an index packed into one number that sorts by time, then index.
fn at_time(t: f64, index: usize) -> u128 {
    (u128::from(ordered_bits(t)) << 32) | index as u128
}

/// The time and index of an [`at_time`] key.
fn time_and_index(key: u128) -> (f64, u32) {
    (from_ordered_bits((key >> 32) as u64), key as u32)
}

/// Low bits of a [`by_tier`] key: its [`at_time`] key.
const TIME_AND_INDEX: u128 = (1 << 96) - 1;

/// An [`at_time`] key of connector `i` ordered first by tier, highest first.
fn by_tier(topo: &Topology, i: usize, t: f64) -> u128 {
    (u128::from(u8::MAX - topo.connectors[i].priority) << 96) | at_time(t, i)
}

/// A constraint's predicted saturation time and index, as a min-heap entry.
fn saturation(t: f64, k: usize) -> Reverse<u128> {
    Reverse(at_time(t, k))
}

/// One constraint's state during a tier's fill: its load is `fixed + slope * t`.
#[derive(Clone, Copy, Debug)]
struct Load {
    fixed: f64,
    slope: f64,
    /// The saturation time of its live heap entry (infinity for none).
    predicted: f64,
    saturated: bool,
    dirty: bool,
    /// The [`FillScratch::pass`] that last started it afresh.
    pass: u32,
}

impl Default for Load {
    fn default() -> Self {
        Self {
            fixed: 0.0,
            slope: 0.0,
            predicted: f64::INFINITY,
            saturated: false,
            dirty: false,
            pass: 0,
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Event {
    Maximum(u32),
    Saturate(u32),
    /// The next activations (every one at that time).
    Activate,
}

/// Reusable buffers of the filling step.
#[derive(Debug, Default)]
pub(crate) struct FillScratch {
    status: Vec<Status>,
    loads: Vec<Load>,
    dirty: Vec<u32>,
    heap: BinaryHeap<Reverse<u128>>,
    /// Activation and maximum times of the tier's connectors, as [`at_time`] keys.
    activations: Vec<u128>,
    maxima: Vec<u128>,
    /// The same for every admitted connector, tier by tier (see [`by_tier`]).
    all_activations: Vec<u128>,
    all_maxima: Vec<u128>,
    /// Activation and maximum keys of every connector, sorted: they change
    /// with the topology (priorities), the starting levels `activation_lo`
    /// (minimums or deadline floors) and the maxima `maximum_hi` only.
    activation_keys: Vec<u128>,
    maximum_keys: Vec<u128>,
    activation_lo: Vec<f64>,
    maximum_hi: Vec<f64>,
    tier: Vec<u32>,
    /// The connectors a saturating constraint stops.
    caught: Vec<u32>,
    /// Counts tier fills; a constraint whose `Load::pass` differs is started
    /// afresh when a connector of the tier first grows in it.
    pass: u32,
}

impl FillScratch {
    pub(crate) fn new(topo: &Topology, constraints: usize) -> Self {
        let connectors = topo.connector_count();
        let mut sc = Self {
            status: vec![Status::Idle; connectors],
            loads: vec![Load::default(); constraints],
            activation_lo: topo.lo_a.clone(),
            maximum_hi: topo.hi_a.clone(),
            ..Self::default()
        };
        sc.sort_keys(topo);
        sc
    }

    /// Sorts the activation and maximum keys (again, after a priority change).
    pub(crate) fn sort_keys(&mut self, topo: &Topology) {
        self.sort_activations(topo);
        self.sort_maxima(topo);
    }

    fn sort_activations(&mut self, topo: &Topology) {
        let connectors = &topo.connectors;
        self.activation_keys = (0..connectors.len())
            .map(|i| by_tier(topo, i, self.activation_lo[i] / connectors[i].weight))
            .collect();
        self.activation_keys.sort_unstable();
    }

    fn sort_maxima(&mut self, topo: &Topology) {
        let connectors = &topo.connectors;
        self.maximum_keys = (0..connectors.len())
            .map(|i| by_tier(topo, i, self.maximum_hi[i] / connectors[i].weight))
            .collect();
        self.maximum_keys.sort_unstable();
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
    let coef = work.space.coefficients();
    for t in &work.space.terms[work.terms_of(i)] {
        work.load[t.k()] += t.a(&coef) * amount;
    }
}

/// Fills the admitted connectors from their minimums; sets `work.x` and `work.bound`.
/// `refill` recomputes the minimums' loads (admission leaves them in place).
/// `work.load` is left without the last tier's growth: every later step
/// recomputes it from `work.x` before reading it.
pub(crate) fn fill(topo: &Topology, work: &mut Work, sc: &mut FillScratch, refill: bool) {
    if refill {
        for &i in &work.order {
            work.x[i as usize] = work.lo[i as usize];
        }
        recompute_load(work);
    }
    sc.tier.clear();
    let admitted = &work.admitted;
    sc.tier
        .extend(topo.by_tier.iter().filter(|&&i| admitted[i as usize]));
    if sc.maximum_hi != work.hi {
        sc.maximum_hi.copy_from_slice(&work.hi);
        sc.sort_maxima(topo);
    }
    if sc.activation_lo != work.lo {
        sc.activation_lo.copy_from_slice(&work.lo);
        sc.sort_activations(topo);
    }
    let admitted_keys = |keys: &[u128], into: &mut Vec<u128>| {
        into.clear();
        into.extend(keys.iter().filter(|&&key| admitted[key as u32 as usize]));
    };
    admitted_keys(&sc.activation_keys, &mut sc.all_activations);
    admitted_keys(&sc.maximum_keys, &mut sc.all_maxima);
    let mut start = 0;
    while start < sc.tier.len() {
        let priority = topo.connectors[sc.tier[start] as usize].priority;
        let end = start
            + sc.tier[start..]
                .iter()
                .take_while(|&&i| topo.connectors[i as usize].priority == priority)
                .count();
        fill_tier(topo, work, sc, start, end);
        if end < sc.tier.len() {
            // The next tier fills on top of this one's shares.
            for &i in &sc.tier[start..end] {
                let i = i as usize;
                add_load(work, i, work.x[i] - work.lo[i]);
            }
        }
        start = end;
    }
}

fn next_event(sc: &FillScratch, ai: usize, mi: usize) -> Option<(f64, Event)> {
    let mut best: Option<(f64, Event)> = sc.maxima.get(mi).map(|&key| {
        let (t, i) = time_and_index(key);
        (t, Event::Maximum(i))
    });
    if let Some(&Reverse(key)) = sc.heap.peek() {
        let (st, k) = time_and_index(key);
        if best.is_none_or(|(t, _)| st < t) {
            best = Some((st, Event::Saturate(k)));
        }
    }
    if let Some((t, _)) = sc.activations.get(ai).map(|&key| time_and_index(key)) {
        if best.is_none_or(|(bt, _)| t < bt) {
            best = Some((t, Event::Activate));
        }
    }
    best
}

/// Adds `dfixed + dslope * t` to constraint `k`'s load and queues it for a new prediction.
#[inline]
fn shift(sc: &mut FillScratch, k: usize, dfixed: f64, dslope: f64) {
    let load = &mut sc.loads[k];
    load.fixed += dfixed;
    load.slope += dslope;
    if !load.dirty {
        load.dirty = true;
        sc.dirty.push(k as u32);
    }
}

fn flush(work: &Work, sc: &mut FillScratch) {
    for &k in &sc.dirty {
        let k = k as usize;
        let load = &mut sc.loads[k];
        load.dirty = false;
        // A later time than the live entry's is re-predicted when that entry pops.
        if !load.saturated && load.slope > 1e-12 && work.space.cap[k].is_finite() {
            let t = (work.space.cap[k] - load.fixed) / load.slope;
            if t < load.predicted {
                load.predicted = t;
                sc.heap.push(saturation(t, k));
            }
        }
    }
    sc.dirty.clear();
}

/// Stops connector `i` at time `t`, held by `bound`. `last`: no connector of
/// the tier moves after it, so the tier's loads are not read again.
fn freeze(
    topo: &Topology,
    work: &mut Work,
    sc: &mut FillScratch,
    i: usize,
    (t, bound): (f64, u32),
    last: bool,
) {
    let (lo, hi, w) = (work.lo[i], work.hi[i], topo.connectors[i].weight);
    if sc.status[i] == Status::Growing {
        let x = (w * t).clamp(lo, hi);
        work.x[i] = x;
        if !last {
            let coef = work.space.coefficients();
            for t in work.terms(i) {
                let a = t.a(&coef);
                shift(sc, t.k(), a * x, -(a * w));
            }
        }
    } else {
        work.x[i] = lo;
    }
    sc.status[i] = Status::Frozen;
    work.bound[i] = bound;
}

/// Starts connector `i` growing from its minimum, if it is still waiting.
fn activate(topo: &Topology, work: &Work, sc: &mut FillScratch, i: usize) {
    if sc.status[i] == Status::Waiting {
        sc.status[i] = Status::Growing;
        let (lo, w) = (work.lo[i], topo.connectors[i].weight);
        let coef = work.space.coefficients();
        let pass = sc.pass;
        for t in work.terms(i) {
            let (k, a) = (t.k(), t.a(&coef));
            let load = &mut sc.loads[k];
            if load.pass != pass {
                // Only the tier's own constraints are read: start them afresh.
                *load = Load {
                    fixed: work.load[k],
                    pass,
                    dirty: true,
                    ..Load::default()
                };
                sc.dirty.push(k as u32);
            } else if !load.dirty {
                load.dirty = true;
                sc.dirty.push(k as u32);
            }
            load.fixed += -(a * lo);
            load.slope += a * w;
        }
    }
}

fn fill_tier(topo: &Topology, work: &mut Work, sc: &mut FillScratch, start: usize, end: usize) {
    sc.heap.clear();
    sc.pass = sc.pass.wrapping_add(1);
    if sc.pass == 0 {
        sc.loads.iter_mut().for_each(|load| load.pass = 0);
        sc.pass = 1;
    }
    sc.activations.clear();
    sc.maxima.clear();
    let mut remaining = 0usize;
    for &i in &sc.tier[start..end] {
        let iu = i as usize;
        let (lo, hi) = (work.lo[iu], work.hi[iu]);
        if hi <= lo + EPS {
            sc.status[iu] = Status::Frozen;
            work.x[iu] = lo;
            work.bound[iu] = OWN;
        } else {
            sc.status[iu] = Status::Waiting;
            remaining += 1;
        }
    }
    // The tier's connectors are the same range of the tier-major sorted keys.
    let status = &sc.status;
    let waiting = |key: &&u128| status[**key as u32 as usize] == Status::Waiting;
    let events = |all: &[u128], into: &mut Vec<u128>| {
        into.extend(
            all[start..end]
                .iter()
                .filter(waiting)
                .map(|&key| key & TIME_AND_INDEX),
        );
    };
    events(&sc.all_activations, &mut sc.activations);
    events(&sc.all_maxima, &mut sc.maxima);
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
                    freeze(topo, work, sc, i as usize, (t, OWN), remaining == 1);
                    remaining -= 1;
                }
            }
            Event::Activate => {
                // Activations at one time come before any other event: take them together.
                let time = sc.activations[ai] >> 32;
                while let Some(&key) = sc.activations.get(ai) {
                    if key >> 32 != time {
                        break;
                    }
                    ai += 1;
                    activate(topo, work, sc, key as u32 as usize);
                }
            }
            Event::Saturate(k) => {
                sc.heap.pop();
                let ku = k as usize;
                let state = &mut sc.loads[ku];
                if state.saturated || et != state.predicted {
                    continue; // superseded by an earlier prediction
                }
                state.predicted = f64::INFINITY;
                let cap = work.space.cap[ku];
                let load = state.fixed + state.slope * t;
                if cap - load > EPS * (1.0 + cap.abs()) {
                    // Its members slowed down since: predict again.
                    if state.slope > 1e-12 {
                        let next = (cap - state.fixed) / state.slope;
                        state.predicted = next;
                        sc.heap.push(saturation(next, ku));
                    }
                    continue;
                }
                state.saturated = true;
                let owner = work.space.owner(topo, ku);
                sc.caught.clear();
                for &i in topo.members(owner) {
                    let iu = i as usize;
                    let status = sc.status[iu];
                    if (status == Status::Waiting || status == Status::Growing)
                        && work
                            .space
                            .coefficient(topo, ku, iu, work.mode[iu], work.pv[iu])
                            > 0.0
                    {
                        sc.caught.push(i);
                    }
                }
                let last = sc.caught.len() == remaining;
                for c in 0..sc.caught.len() {
                    freeze(topo, work, sc, sc.caught[c] as usize, (t, k), last);
                }
                remaining -= sc.caught.len();
            }
        }
    }
    for &i in &sc.tier[start..end] {
        sc.status[i as usize] = Status::Idle;
    }
    for &k in &sc.dirty {
        sc.loads[k as usize].dirty = false;
    }
    sc.dirty.clear();
}
