//! Step 5: from targets to the setpoints sent now, safe during the change.
//!
//! Decreases apply at once. An increase waits for the connector's change
//! interval (not after a decrease a reading showed its EV follow), is limited by the ramp rate (a start goes to the minimum first
//! when a ramp is set), and only takes current that is free even if every
//! other connector still drew the larger of its old and new setpoint, so the
//! sum of max(old, new) stays within every limit while devices follow. A
//! lowered setpoint keeps its old current reserved for `settle_s`, the time an
//! EV may take to follow.

use super::admission::EPS;
use super::model::{floor_to_step, Topology, PHASES};
use super::outcome::{Allocation, Reason};
use super::state::{draw, ConnectorState};
use super::Work;

/// A connector's last setpoint as a draw, and the draw it may still be taking:
/// the larger of that and any unexpired reservation, per phase and in power.
type Draw = ([f64; PHASES], f64);

fn old_draws(topo: &Topology, st: &ConnectorState, i: usize, now: f64) -> (Draw, Draw) {
    let map = topo.connectors[i].phases;
    let sent = draw(map, st.phases, st.setpoint, topo.settings.voltage_v);
    let mut held = sent;
    if now < st.reserve_until {
        for (p, r) in held.0.iter_mut().zip(st.reserve_phase_a) {
            *p = p.max(r);
        }
        held.1 = held.1.max(st.reserve_power_w);
    }
    (sent, held)
}

/// Writes `out.setpoint_a` from the targets in `out.target_a` and `work.mode`.
pub(crate) fn shape(
    topo: &Topology,
    states: &[ConnectorState],
    now: f64,
    work: &mut Work,
    out: &mut Allocation,
) {
    let s = &topo.settings;
    let voltage = s.voltage_v;
    work.order.clear();
    // Highest tier first: increases are granted in that order.
    for &i in &topo.by_tier {
        let i = i as usize;
        let st = &states[i];
        let target = out.target_a[i];
        let same_mode = work.mode[i] == st.phases;
        let base = if same_mode {
            st.setpoint.min(target)
        } else {
            0.0
        };
        out.setpoint_a[i] = base;
        if target > base + EPS {
            work.order.push(i as u32);
        }
    }
    if work.order.is_empty() {
        return;
    }
    work.load.iter_mut().for_each(|l| *l = 0.0);
    for (i, st) in states.iter().enumerate() {
        let (_, (phase, power)) = old_draws(topo, st, i, now);
        let Work {
            space, load, pv, ..
        } = &mut *work;
        space.for_each_draw(topo, i, phase, power, pv[i], |k, a| load[k] += a);
    }
    for o in 0..work.order.len() {
        let i = work.order[o] as usize;
        let st = &states[i];
        let (lo, step, map) = (
            topo.lo_a[i],
            topo.connectors[i].step_a,
            topo.connectors[i].phases,
        );
        let target = out.target_a[i];
        let base = out.setpoint_a[i];
        let starting = base <= 0.0;
        let elapsed = now - st.changed_at;
        if !starting && elapsed < s.change_interval_s && !st.lowered_followed {
            out.set_reason(i, (Reason::ChangeInterval, -1, -1));
            continue;
        }
        let mut limit = target;
        let mut reason = (Reason::Ramping, -1, -1);
        if s.ramp_a_per_s.is_finite() {
            limit = limit.min(if starting {
                lo
            } else {
                base + s.ramp_a_per_s * elapsed
            });
        }
        let ((sent_phase, sent_power), held) = old_draws(topo, st, i, now);
        let (old_phase, old_power) = held;
        let (unit_phase, unit_power) = draw(map, work.mode[i], 1.0, voltage);
        let mut block = None;
        work.space
            .for_each_draw(topo, i, unit_phase, unit_power, work.pv[i], |k, a| {
                if a <= 0.0 {
                    return;
                }
                let (old, sent) = match work.space.phase_of(k) {
                    Some(p) => (old_phase[p], sent_phase[p]),
                    None => (old_power, sent_power),
                };
                // Room if `i` drew up to `a * y` instead of its held draw; without room,
                // never more than it was last sent.
                let most = (work.space.cap[k] - work.load[k] + old).max(sent) / a;
                if most < limit {
                    limit = most;
                    block = Some(k);
                }
            });
        let granted = floor_to_step(limit, step).min(target);
        if let Some(k) = block.filter(|_| granted < target - EPS) {
            let (_, node, phase) = work.space.describe(topo, k);
            reason = (Reason::AwaitingHeadroom, node, phase);
        }
        if granted > base + EPS && (!starting || granted >= lo - EPS) {
            let (new_phase, new_power) = draw(map, work.mode[i], granted, voltage);
            add_increase(topo, work, i, held, (new_phase, new_power));
            out.setpoint_a[i] = granted;
        }
        if out.setpoint_a[i] < target - EPS {
            out.set_reason(i, reason);
        }
    }
}

/// Adds connector `i`'s growth from its old draw to its new draw to the loads.
fn add_increase(topo: &Topology, work: &mut Work, i: usize, old: Draw, new: Draw) {
    let grow: [f64; PHASES] = std::array::from_fn(|p| (new.0[p] - old.0[p]).max(0.0));
    let grow_power = (new.1 - old.1).max(0.0);
    let pv = work.pv[i];
    let Work { space, load, .. } = work;
    space.for_each_draw(topo, i, grow, grow_power, pv, |k, a| load[k] += a);
}
