//! Step 1: who gets at least the minimum, at which phase count, and who pauses.
//!
//! Order: connectors inside their minimum on-time first (against flapping),
//! then priority tiers, then paused connectors by how long they have waited,
//! then charging ones, the longest-charging last (rotation). Each is admitted
//! greedily if its minimum fits in every constraint on its path; a switchable
//! connector falls back to one phase when three do not fit and switching is
//! allowed. Safety wins over dwell: nothing is admitted that does not fit.

use std::cmp::Ordering;

use super::model::{PhaseMap, Topology};
use super::outcome::{Allocation, Reason};
use super::state::ConnectorState;
use super::Work;

/// Tolerance of every feasibility comparison, in A or W.
pub(crate) const EPS: f64 = 1e-9;

#[derive(Clone, Copy, Debug)]
pub(crate) struct Key {
    protected: bool,
    priority: u8,
    on: bool,
    since: f64,
    index: u32,
}

fn compare(a: &Key, b: &Key) -> Ordering {
    b.protected
        .cmp(&a.protected)
        .then(b.priority.cmp(&a.priority))
        .then(a.on.cmp(&b.on))
        .then(a.since.total_cmp(&b.since))
        .then(a.index.cmp(&b.index))
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
    work.terms_k.clear();
    work.terms_a.clear();
    for (i, st) in states.iter().enumerate() {
        work.admitted[i] = false;
        work.x[i] = 0.0;
        work.mode[i] = st.phases;
        work.terms_at[i] = (0, 0);
        if !st.wanting {
            out.set_reason(i, (Reason::NotWanting, -1, -1));
            continue;
        }
        if now - st.off_since < s.min_off_s {
            out.set_reason(i, (Reason::PausedMinOff, -1, -1));
            continue;
        }
        let on = st.is_on();
        work.keys.push(Key {
            protected: on && now - st.on_since < s.min_on_s,
            priority: topo.connectors[i].priority,
            on,
            since: if on { -st.on_since } else { st.queue_since },
            index: i as u32,
        });
    }
    work.keys.sort_unstable_by(compare);
    work.load.iter_mut().for_each(|l| *l = 0.0);
    for ki in 0..work.keys.len() {
        let key = work.keys[ki];
        let i = key.index as usize;
        let lo = topo.lo_a[i];
        let pv = work.pv[i];
        let (tries, count) = modes(topo.connectors[i].phases, &states[i], now, topo);
        let mut first_block = None;
        for &mode in &tries[..count] {
            let mut block = None;
            work.space.for_each(topo, i, mode, pv, |k, a| {
                if block.is_none() && work.load[k] + a * lo > work.space.cap[k] + EPS {
                    block = Some(k);
                }
            });
            match block {
                None => {
                    work.admitted[i] = true;
                    work.mode[i] = mode;
                    work.x[i] = lo;
                    work.order.push(i as u32);
                    let Work {
                        space,
                        load,
                        terms_k,
                        terms_a,
                        terms_at,
                        ..
                    } = &mut *work;
                    let start = terms_k.len();
                    space.for_each(topo, i, mode, pv, |k, a| {
                        load[k] += a * lo;
                        terms_k.push(k as u32);
                        terms_a.push(a);
                    });
                    terms_at[i] = (start as u32, (terms_k.len() - start) as u32);
                    break;
                }
                Some(k) => {
                    first_block.get_or_insert(k);
                }
            }
        }
        if let Some(k) = first_block.filter(|_| !work.admitted[i]) {
            let (_, node, phase) = work.space.describe(topo, k);
            out.set_reason(i, (Reason::PausedNoCapacity, node, phase));
        }
    }
}
