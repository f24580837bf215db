//! Deadline planning: how much power each charging session must get now so
//! that every session can still get its energy by its departure.
//!
//! Sans-IO: the caller gives a horizon of slots (each a duration and the power
//! the planned sessions may share in it: the site's limit in force then, less
//! what the rest of the site draws) and per session the energy still needed,
//! the departure and the session's maximum power. [`DeadlinePlanner::plan`]
//! schedules every session as late as possible: from the last slot back to
//! the first, each slot's energy goes to the sessions that need the most time
//! at their maximum, levelled (largest remaining charging time first). What
//! is left for the first slot is what each session must get now; what does not
//! fit even then is its shortfall. Deferring everything that can wait keeps
//! the present free for fairness, cheap slots and peak shaving, and levelling
//! in reverse keeps as many sessions as possible able to draw at the end, so
//! the planned shortfall is the least the slots allow (the tests compare it
//! with a linear program's optimum).

use std::fmt;

/// Seconds per hour, to turn W x s into Wh.
const HOUR_S: f64 = 3600.0;

/// Energy below this (Wh) counts as done.
const DONE_WH: f64 = 1e-9;

/// One planning call's inputs. Session slices are indexed alike.
#[derive(Clone, Copy, Debug)]
pub struct PlanInput<'a> {
    /// Each slot's length in s, the first starting now (it may be the rest of
    /// a clock-aligned slot).
    pub slot_s: &'a [f64],
    /// The power the planned sessions may share in each slot, in W.
    pub cap_w: &'a [f64],
    /// Energy each session still needs, in Wh (0 for none).
    pub need_wh: &'a [f64],
    /// Each session's departure in s from now; infinity for none (not planned).
    /// A departure beyond the horizon is planned as if at its end.
    pub departure_s: &'a [f64],
    /// Each session's maximum power in W (connector, EV and phases).
    pub max_w: &'a [f64],
}

/// Per session: what the plan asks of the first slot.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// Power the session must get while it is plugged in during the first slot, in W.
    pub now_w: Vec<f64>,
    /// Energy that no schedule over the horizon's capacities delivers by the departure, in Wh.
    pub shortfall_wh: Vec<f64>,
    /// Time to departure minus the time needed at the maximum power, in s
    /// (infinity without a deadline or need; negative: late even at the maximum).
    pub laxity_s: Vec<f64>,
}

impl Plan {
    fn resize(&mut self, n: usize) {
        self.now_w.resize(n, 0.0);
        self.shortfall_wh.resize(n, 0.0);
        self.laxity_s.resize(n, f64::INFINITY);
    }
}

/// A planning input that cannot be used.
#[derive(Clone, Debug, PartialEq)]
pub enum PlanError {
    /// Two slices that must be alike differ in length.
    Length {
        /// Which input.
        what: &'static str,
        /// Expected length.
        expected: usize,
        /// Given length.
        got: usize,
    },
    /// A value is NaN, negative, or infinite where it must be finite.
    Value {
        /// Which input.
        what: &'static str,
        /// Index into it.
        index: usize,
    },
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Length {
                what,
                expected,
                got,
            } => write!(f, "{what}: expected {expected} values, got {got}"),
            Self::Value { what, index } => {
                write!(f, "{what}[{index}] must be a finite number >= 0")
            }
        }
    }
}

impl std::error::Error for PlanError {}

/// Reusable buffers of the planner.
#[derive(Debug, Default)]
pub struct DeadlinePlanner {
    remaining: Vec<f64>,
    /// Sessions that still need energy, by departure, latest first.
    by_departure: Vec<u32>,
    /// Each slot's start in s from now.
    starts: Vec<f64>,
    /// The slot's candidates: (session, hours usable in the slot).
    active: Vec<(u32, f64)>,
    /// Level events: (remaining hours at which the slope changes, slope change in W).
    events: Vec<(f64, f64)>,
}

fn check(
    what: &'static str,
    values: &[f64],
    expected: usize,
    allow_inf: bool,
) -> Result<(), PlanError> {
    if values.len() != expected {
        return Err(PlanError::Length {
            what,
            expected,
            got: values.len(),
        });
    }
    match values
        .iter()
        .position(|&v| v.is_nan() || v < 0.0 || (!allow_inf && v.is_infinite()))
    {
        Some(index) => Err(PlanError::Value { what, index }),
        None => Ok(()),
    }
}

impl DeadlinePlanner {
    /// A planner with empty buffers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Plans every session over the horizon and writes what each must get now.
    pub fn plan(&mut self, input: &PlanInput<'_>, out: &mut Plan) -> Result<(), PlanError> {
        let slots = input.slot_s.len();
        let n = input.need_wh.len();
        check("slot_s", input.slot_s, slots, false)?;
        check("cap_w", input.cap_w, slots, false)?;
        check("need_wh", input.need_wh, n, false)?;
        check("departure_s", input.departure_s, n, true)?;
        check("max_w", input.max_w, n, false)?;
        out.resize(n);
        self.starts.clear();
        let mut t = 0.0;
        for &len in input.slot_s {
            self.starts.push(t);
            t += len;
        }
        let horizon_s = t;
        self.remaining.clear();
        self.by_departure.clear();
        for i in 0..n {
            let (need, dep, max) = (input.need_wh[i], input.departure_s[i], input.max_w[i]);
            let planned = need > DONE_WH && dep.is_finite() && max > 0.0;
            out.now_w[i] = 0.0;
            out.laxity_s[i] = if planned {
                dep - need * HOUR_S / max
            } else {
                f64::INFINITY
            };
            self.remaining.push(if planned { need } else { 0.0 });
            if planned {
                self.by_departure.push(i as u32);
            }
        }
        let departure = |i: u32| input.departure_s[i as usize].min(horizon_s);
        self.by_departure
            .sort_unstable_by(|&a, &b| departure(b).total_cmp(&departure(a)));
        // Sessions present in slot k are a prefix of `by_departure` (latest first).
        let mut present = 0;
        for k in (0..slots).rev() {
            let start = self.starts[k];
            while present < self.by_departure.len() && departure(self.by_departure[present]) > start
            {
                present += 1;
            }
            self.active.clear();
            for &i in &self.by_departure[..present] {
                if self.remaining[i as usize] > DONE_WH {
                    let usable_h = (departure(i) - start).min(input.slot_s[k]) / HOUR_S;
                    self.active.push((i, usable_h));
                }
            }
            let energy_wh = input.cap_w[k] * input.slot_s[k] / HOUR_S;
            let level = self.level(input.max_w, energy_wh);
            for &(i, usable_h) in &self.active {
                let iu = i as usize;
                let max = input.max_w[iu];
                let hours = self.remaining[iu] / max;
                let given_h = (hours - level).clamp(0.0, usable_h);
                let given = (max * given_h).min(self.remaining[iu]);
                self.remaining[iu] -= given;
                if k == 0 {
                    out.now_w[iu] = if usable_h > 0.0 {
                        given / usable_h
                    } else {
                        0.0
                    };
                }
            }
        }
        for i in 0..n {
            out.shortfall_wh[i] = if self.remaining[i] > DONE_WH {
                self.remaining[i]
            } else {
                0.0
            };
        }
        Ok(())
    }

    /// The level (remaining hours at the maximum) down to which the active
    /// sessions are served with `energy_wh`: 0 when it serves every one as much
    /// as the slot allows, else the level where the energy runs out.
    fn level(&mut self, max_w: &[f64], energy_wh: f64) -> f64 {
        let full: f64 = self
            .active
            .iter()
            .map(|&(i, usable_h)| (max_w[i as usize] * usable_h).min(self.remaining[i as usize]))
            .sum();
        if full <= energy_wh {
            return 0.0;
        }
        // Served energy as the level falls from the top: a session starts
        // taking at its remaining hours and stops growing `usable_h` lower.
        self.events.clear();
        for &(i, usable_h) in &self.active {
            let max = max_w[i as usize];
            let hours = self.remaining[i as usize] / max;
            self.events.push((hours, max));
            self.events.push((hours - usable_h, -max));
        }
        self.events.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
        let (mut served, mut slope) = (0.0, 0.0);
        let mut at = self.events.first().map_or(0.0, |e| e.0);
        for &(hours, change) in &self.events {
            let more = slope * (at - hours);
            if served + more >= energy_wh && slope > 0.0 {
                return at - (energy_wh - served) / slope;
            }
            served += more;
            at = hours;
            slope += change;
        }
        // Rounding: the energy covers (almost) everything down to the last event.
        at.max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(slot_s: &[f64], cap_w: &[f64], sessions: &[(f64, f64, f64)]) -> Plan {
        let need: Vec<f64> = sessions.iter().map(|s| s.0).collect();
        let dep: Vec<f64> = sessions.iter().map(|s| s.1).collect();
        let max: Vec<f64> = sessions.iter().map(|s| s.2).collect();
        let mut out = Plan::default();
        DeadlinePlanner::new()
            .plan(
                &PlanInput {
                    slot_s,
                    cap_w,
                    need_wh: &need,
                    departure_s: &dep,
                    max_w: &max,
                },
                &mut out,
            )
            .unwrap();
        out
    }

    #[test]
    fn slack_session_waits_and_tight_session_charges_now() {
        // Two 1-hour slots of 10 kW; A leaves in 1 h needing 5 kWh, B in 2 h needing 10 kWh.
        let out = plan(
            &[3600.0, 3600.0],
            &[10_000.0, 10_000.0],
            &[(5_000.0, 3600.0, 11_000.0), (10_000.0, 7200.0, 11_000.0)],
        );
        assert!((out.now_w[0] - 5_000.0).abs() < 1e-6, "{out:?}");
        // B gets the whole second slot, so it needs nothing now.
        assert!(out.now_w[1].abs() < 1e-6, "{out:?}");
        assert_eq!(out.shortfall_wh, vec![0.0, 0.0]);
    }

    #[test]
    fn the_longest_job_at_its_maximum_keeps_the_late_slot() {
        // One late slot of 11 kW: the slow session (3.7 kW max) cannot use it all,
        // the fast one fills the rest; the first slot takes what remains.
        let out = plan(
            &[3600.0, 3600.0],
            &[11_000.0, 11_000.0],
            &[(7_400.0, 7200.0, 3_700.0), (11_000.0, 7200.0, 11_000.0)],
        );
        assert!((out.now_w[0] - 3_700.0).abs() < 1e-6, "{out:?}");
        assert!((out.now_w[1] - 3_700.0).abs() < 1e-6, "{out:?}");
        assert_eq!(out.shortfall_wh, vec![0.0, 0.0]);
    }

    #[test]
    fn overload_leaves_the_least_shortfall_and_reports_it() {
        let out = plan(&[1800.0], &[10_000.0], &[(10_000.0, 1800.0, 22_000.0)]);
        assert!((out.now_w[0] - 10_000.0).abs() < 1e-6);
        assert!((out.shortfall_wh[0] - 5_000.0).abs() < 1e-6);
        assert!((out.laxity_s[0] - (1800.0 - 10_000.0 * 3600.0 / 22_000.0)).abs() < 1e-9);
    }

    #[test]
    fn sessions_without_a_deadline_are_not_planned() {
        let out = plan(&[900.0], &[0.0], &[(5_000.0, f64::INFINITY, 11_000.0)]);
        assert_eq!(out.now_w, vec![0.0]);
        assert_eq!(out.shortfall_wh, vec![0.0]);
        assert_eq!(out.laxity_s, vec![f64::INFINITY]);
    }

    #[test]
    fn bad_input_is_refused() {
        let mut out = Plan::default();
        let err = DeadlinePlanner::new().plan(
            &PlanInput {
                slot_s: &[900.0],
                cap_w: &[f64::NAN],
                need_wh: &[],
                departure_s: &[],
                max_w: &[],
            },
            &mut out,
        );
        assert_eq!(
            err,
            Err(PlanError::Value {
                what: "cap_w",
                index: 0
            })
        );
    }
}
