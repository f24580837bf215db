//! Step 1: who gets at least the minimum, at which phase count, and who pauses.
//!
//! Order: connectors with a deadline floor, least laxity first (those inside
//! their minimum on-time before the others), then the rest inside their minimum
//! on-time (against flapping), then priority tiers, then paused connectors by
//! how long they have waited, then charging ones, the longest-charging last
//! (rotation). A deadline thus outranks the dwell of a session with slack: when
//! capacity dips (a lower limit, a draw not yet followed counted as base load),
//! a session that must charge now is not the one paused for the minimum off-time. Each is admitted greedily if its minimum
//! fits in every constraint on its path, at its deadline floor or as much of it
//! as fits; a switchable connector falls back to one phase when three do not fit
//! and switching is allowed. Safety wins over dwell and deadlines: nothing is
//! admitted that does not fit.

use super::model::{floor_to_step, ordered_bits, PhaseMap, Topology};
use super::outcome::{Allocation, Reason};
use super::state::ConnectorState;
use super::Work;

/// Tolerance of every feasibility comparison, in A or W.
pub(crate) const EPS: f64 = 1e-9;

/// Admission order as one sortable number for a connector without a deadline
/// floor (after every one with a floor): protected first, then higher priority,
/// then paused before charging, then the rotation time, then index.
fn order_key(protected: bool, priority: u8, on: bool, since: f64, index: usize) -> u128 {
    ((2 + u128::from(!protected)) << 105)
        | (u128::from(u8::MAX - priority) << 97)
        | (u128::from(on) << 96)
        | (u128::from(ordered_bits(since)) << 32)
        | index as u128
}

/// The admission key of a connector with a deadline floor: protected first,
/// then least laxity.
fn urgent_key(protected: bool, laxity: f64, index: usize) -> u128 {
    (u128::from(!protected) << 105) | (u128::from(ordered_bits(laxity)) << 32) | index as u128
}

/// Phase counts to try, best first.
fn modes(map: PhaseMap, st: &ConnectorState, now: f64, topo: &Topology) -> ([u8; 2], usize) {
    match map {
        PhaseMap::Single(_) => ([1, 1], 1),
        PhaseMap::Three => ([3, 3], 1),
        PhaseMap::Switchable(_) => {
            let s = &topo.settings;
            let budget = s.max_phase_switches == 0 || st.switches < s.max_phase_switches;
            let may_switch = !st.is_on() || (now - st.last_switch >= s.phase_switch_s && budget);
            if may_switch {
                ([3, 1], 2)
            } else {
                ([st.phases, st.phases], 1)
            }
        }
    }
}

/// Decides `work.admitted` and `work.mode`, fills `work.load` with the
/// admitted minimums, and gives every connector left out its reason.
pub(crate) fn admit(
    topo: &Topology,
    states: &[ConnectorState],
    now: f64,
    work: &mut Work,
    out: &mut Allocation,
) {
    let s = &topo.settings;
    work.keys.clear();
    work.order.clear();
    // Visit in last cycle's order: unchanged keys then arrive sorted, which the
    // sort checks in linear time. Those left out wait in `order` meanwhile.
    for r in 0..work.rank.len() {
        let i = work.rank[r] as usize;
        let st = &states[i];
        work.admitted[i] = false;
        work.lo[i] = topo.lo_a[i];
        work.x[i] = 0.0;
        work.mode[i] = st.phases;
        work.terms_at[i] = (0, 0);
        if !st.wanting {
            out.set_reason(i, (Reason::NotWanting, -1, -1));
            work.order.push(i as u32);
            continue;
        }
        if now - st.off_since < s.min_off_s {
            out.set_reason(i, (Reason::PausedMinOff, -1, -1));
            work.order.push(i as u32);
            continue;
        }
        let on = st.is_on();
        let protected = on && now - st.on_since < s.min_on_s;
        let since = if on { -st.on_since } else { st.queue_since };
        work.keys.push(if work.floor[i] > 0.0 {
            urgent_key(protected, work.laxity[i], i)
        } else {
            order_key(protected, topo.connectors[i].priority, on, since, i)
        });
    }
    work.keys.sort_unstable();
    let Work {
        rank, keys, order, ..
    } = &mut *work;
    rank.clear();
    rank.extend(keys.iter().map(|&key| key as u32));
    rank.append(order);
    work.load.iter_mut().for_each(|l| *l = 0.0);
    let coef = work.space.coefficients();
    for ki in 0..work.keys.len() {
        let i = work.rank[ki] as usize;
        let min = topo.lo_a[i];
        let (floor, step) = (work.floor[i], topo.connectors[i].step_a);
        let (tries, count) = modes(topo.connectors[i].phases, &states[i], now, topo);
        // Floors take more than the minimums the slack check counted.
        let free = !work.any_floor && work.space.admits_freely(topo, i, work.pv[i]);
        let mut first_block = None;
        for &mode in &tries[..count] {
            // Find the first limit the minimum breaks.
            let (start, len) = work.space.terms_of(i, mode);
            let Work { space, load, .. } = &mut *work;
            let terms = &space.terms[start as usize..(start + len) as usize];
            let block = terms
                .iter()
                .filter(|_| !free)
                .find(|t| load[t.k()] + t.a(&coef) * min > space.cap[t.k()] + EPS);
            if let Some(t) = block {
                first_block.get_or_insert(t.k());
                continue;
            }
            // A deadline floor: as much of it as fits everywhere, in whole steps.
            let lo = if floor > 0.0 {
                let fits = terms.iter().fold(floor, |x, t| {
                    let a = t.a(&coef);
                    if a > 0.0 {
                        x.min((space.cap[t.k()] + EPS - load[t.k()]) / a)
                    } else {
                        x
                    }
                });
                floor_to_step(fits, step).max(min)
            } else {
                min
            };
            for t in terms {
                load[t.k()] += t.a(&coef) * lo;
            }
            work.terms_at[i] = (start, len);
            work.admitted[i] = true;
            work.mode[i] = mode;
            work.x[i] = lo;
            work.lo[i] = lo;
            work.order.push(i as u32);
            break;
        }
        if let Some(k) = first_block.filter(|_| !work.admitted[i]) {
            let (_, node, phase) = work.space.describe(topo, k);
            out.set_reason(i, (Reason::PausedNoCapacity, node, phase));
        }
    }
}
