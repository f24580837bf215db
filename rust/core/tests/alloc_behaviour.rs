//! Behaviour over time of the allocation engine: dwell times, change interval,
//! ramps, settle reservations, 1p/3p switching, priorities and root budgets.

mod common;

use common::{allocator, cycle_input, quiet, root, three_phase, INF};
use hubgate_core::alloc::{
    Allocation, Allocator, ConnectorSpec, CycleInput, PhaseMap, Reason, Settings,
};

fn connector(phases: PhaseMap, priority: u8) -> ConnectorSpec {
    ConnectorSpec {
        phases,
        priority,
        ..three_phase(0, 32.0)
    }
}

struct Site {
    alloc: Allocator,
    base: Vec<f64>,
    ev_max: Vec<f64>,
    wanting: Vec<u8>,
    pv: Vec<u8>,
    gop: f64,
    peak: f64,
    pv_budget: f64,
    out: Allocation,
}

impl Site {
    fn new(cap: f64, connectors: Vec<ConnectorSpec>, settings: Settings) -> Self {
        let n = connectors.len();
        Self {
            alloc: allocator(vec![root(cap, INF)], connectors, settings),
            base: vec![0.0; 3],
            ev_max: vec![INF; n],
            wanting: vec![1; n],
            pv: vec![0; n],
            gop: INF,
            peak: INF,
            pv_budget: INF,
            out: Allocation::default(),
        }
    }

    fn at(&mut self, now: f64) -> &Allocation {
        let input = CycleInput {
            grid_operator_w: self.gop,
            peak_w: self.peak,
            pv_budget_w: self.pv_budget,
            ..cycle_input(now, &self.base, &self.ev_max, &self.wanting, &self.pv)
        };
        self.alloc.allocate(&input, &mut self.out).unwrap();
        &self.out
    }
}

/// Two 32 A connectors on 32 A: the first charges alone at 0 s, the second wants current
/// from the next cycle on.
fn second_arrives(settings: Settings) -> Site {
    let mut site = Site::new(32.0, vec![connector(PhaseMap::Three, 0); 2], settings);
    site.wanting = vec![1, 0];
    assert_eq!(site.at(0.0).setpoint_a, vec![32.0, 0.0]);
    site.wanting = vec![1, 1];
    site
}

#[test]
fn a_start_goes_to_the_minimum_then_ramps_every_interval() {
    let settings = Settings {
        ramp_a_per_s: 1.0,
        change_interval_s: 5.0,
        ..quiet()
    };
    let mut site = Site::new(32.0, vec![connector(PhaseMap::Three, 0)], settings);
    assert_eq!(site.at(0.0).setpoint_a, vec![6.0]);
    assert_eq!(site.out.target_a, vec![32.0]);
    assert_eq!(site.out.reason, vec![Reason::Ramping]);
    assert_eq!(
        site.at(3.0).setpoint_a,
        vec![6.0],
        "inside the change interval"
    );
    assert_eq!(site.out.reason, vec![Reason::ChangeInterval]);
    assert_eq!(site.at(5.0).setpoint_a, vec![11.0], "5 s at 1 A/s");
    assert_eq!(site.at(30.0).setpoint_a, vec![32.0]);
    assert_eq!(site.out.reason, vec![Reason::OwnMaximum]);
}

#[test]
fn freed_current_is_only_reused_after_the_settle_time() {
    let mut site = second_arrives(Settings {
        settle_s: 10.0,
        ..quiet()
    });
    let out = site.at(1.0);
    assert_eq!(out.target_a, vec![16.0, 16.0]);
    assert_eq!(
        out.setpoint_a,
        vec![16.0, 0.0],
        "the first drops at once, the second waits"
    );
    assert_eq!(out.reason[1], Reason::AwaitingHeadroom);
    assert_eq!((out.binding_node[1], out.binding_phase[1]), (0, 0));
    assert_eq!(site.at(5.0).setpoint_a, vec![16.0, 0.0]);
    assert_eq!(
        site.at(11.5).setpoint_a,
        vec![16.0, 16.0],
        "after 10 s the old 32 A is released"
    );
}

#[test]
fn a_paused_connector_waits_out_the_minimum_off_time() {
    let settings = Settings {
        min_off_s: 60.0,
        ..quiet()
    };
    let mut site = Site::new(
        12.0,
        vec![connector(PhaseMap::Three, 1), connector(PhaseMap::Three, 0)],
        settings,
    );
    assert_eq!(site.at(0.0).setpoint_a, vec![6.0, 6.0]);
    site.base = vec![4.0; 3];
    let out = site.at(1.0);
    assert_eq!(out.target_a, vec![8.0, 0.0], "the lower tier pauses");
    assert_eq!(out.reason[1], Reason::PausedNoCapacity);
    assert_eq!(
        out.setpoint_a,
        vec![6.0, 0.0],
        "the pause is not yet confirmed"
    );
    assert_eq!(out.reason[0], Reason::AwaitingHeadroom);
    site.base = vec![0.0; 3];
    assert_eq!(site.at(30.0).reason[1], Reason::PausedMinOff);
    assert_eq!(site.out.setpoint_a, vec![12.0, 0.0]);
    assert_eq!(site.at(61.0).target_a, vec![6.0, 6.0]);
    assert_eq!(
        site.out.setpoint_a,
        vec![6.0, 0.0],
        "it starts once the 12 A are down to 6"
    );
    assert_eq!(site.at(62.0).setpoint_a, vec![6.0, 6.0]);
}

#[test]
fn a_switchable_connector_drops_to_one_phase_and_returns_after_the_switch_time() {
    let settings = Settings {
        phase_switch_s: 100.0,
        max_phase_switches: 2,
        ..quiet()
    };
    let mut site = Site::new(
        16.0,
        vec![
            connector(PhaseMap::Three, 1),
            connector(PhaseMap::Switchable(2), 0),
        ],
        settings,
    );
    site.ev_max = vec![10.0, INF];
    let out = site.at(0.0);
    assert_eq!((out.phases[1], out.setpoint_a[1]), (3, 6.0));
    site.base = vec![0.0, 0.0, 0.0];
    site.ev_max = vec![INF, INF];
    // The first takes more: three phases of 6 A no longer fit, one phase does.
    site.base = vec![5.0, 5.0, 0.0];
    let out = site.at(200.0);
    assert_eq!(out.phases[1], 1);
    assert!(out.setpoint_a[1] >= 6.0);
    site.base = vec![0.0; 3];
    site.ev_max = vec![8.0, INF];
    assert_eq!(site.at(250.0).phases[1], 1, "inside the switch time");
    assert_eq!(site.at(301.0).phases[1], 3, "back to three phases");
    site.base = vec![5.0, 5.0, 0.0];
    site.ev_max = vec![INF, INF];
    assert_eq!(
        site.at(402.0).phases[1],
        3,
        "the switch budget of 2 is spent"
    );
}

#[test]
fn higher_tiers_fill_first_and_pv_mode_stays_within_its_budget() {
    let mut site = Site::new(
        40.0,
        vec![
            connector(PhaseMap::Three, 2),
            connector(PhaseMap::Three, 0),
            connector(PhaseMap::Single(0), 0),
        ],
        quiet(),
    );
    let out = site.at(0.0);
    assert_eq!(out.setpoint_a, vec![28.0, 6.0, 6.0]);
    site.pv = vec![0, 1, 1];
    site.pv_budget = 230.0 * 12.0;
    site.at(1.0);
    let out = site.at(2.0);
    // 12 A of PV power: 3 x 6 A for the three-phase one would need 18 A, so it
    // pauses; the top tier takes its share, the one-phase one the rest of L1.
    assert_eq!(out.setpoint_a, vec![32.0, 0.0, 8.0]);
    assert_eq!(
        out.reason,
        vec![
            Reason::OwnMaximum,
            Reason::PausedNoCapacity,
            Reason::PhaseCurrent
        ]
    );
    site.ev_max = vec![16.0, INF, INF];
    site.at(3.0);
    let out = site.at(4.0);
    assert_eq!(out.setpoint_a, vec![16.0, 0.0, 12.0]);
    assert_eq!(out.reason[2], Reason::PvBudget);
}

#[test]
fn grid_operator_limit_and_peak_target_bind_the_connection() {
    let mut site = Site::new(63.0, vec![connector(PhaseMap::Three, 0); 2], quiet());
    site.gop = 8280.0;
    site.base = vec![-2.0; 3];
    let out = site.at(0.0);
    assert_eq!(
        out.setpoint_a,
        vec![7.0, 7.0],
        "8.28 kW plus the 2 A per phase the site feeds back: 7 A each"
    );
    assert_eq!(out.reason, vec![Reason::GridOperator; 2]);
    site.gop = INF;
    site.peak = 230.0 * 3.0 * 20.0;
    site.base = vec![2.0; 3];
    let out = site.at(1.0);
    assert_eq!(out.setpoint_a, vec![9.0, 9.0]);
    assert_eq!(out.reason, vec![Reason::PeakTarget; 2]);
}

#[test]
fn freed_current_is_reused_once_measurement_confirms_the_decrease() {
    let mut site = second_arrives(Settings {
        settle_s: 10.0,
        ..quiet()
    });
    assert_eq!(site.at(1.0).setpoint_a, vec![16.0, 0.0]);
    assert_eq!(site.out.reason[1], Reason::AwaitingHeadroom);
    assert_eq!(
        site.alloc.reserved_a(0, 1.5).unwrap(),
        32.0,
        "its old setpoint"
    );
    assert_eq!(
        site.alloc.reserved_a(0, 11.0).unwrap(),
        0.0,
        "settle_s later"
    );
    assert_eq!(site.alloc.reserved_a(1, 1.5).unwrap(), 0.0, "never lowered");
    // A reading after the decrease shows the first EV at 16 A: the start goes ahead
    // the next cycle, not 10 s later.
    site.alloc.confirm_followed(0).unwrap();
    assert_eq!(site.alloc.reserved_a(0, 1.5).unwrap(), 0.0);
    assert_eq!(site.at(2.0).setpoint_a, vec![16.0, 16.0]);
    assert!(site.alloc.confirm_followed(2).is_err());
    assert!(site.alloc.reserved_a(2, 2.0).is_err());
}

#[test]
fn an_increase_follows_a_decrease_seen_followed_at_once_else_after_the_interval() {
    let settings = Settings {
        change_interval_s: 5.0,
        settle_s: 10.0,
        ..quiet()
    };
    let mut site = second_arrives(settings);
    site.at(10.0);
    site.alloc.confirm_followed(0).unwrap();
    assert_eq!(site.at(11.0).setpoint_a, vec![16.0, 16.0]);
    // The second EV leaves a second later, seen gone the next: the first rises then,
    // its decrease seen followed, not 5 s after it.
    site.wanting = vec![1, 0];
    assert_eq!(site.at(12.0).setpoint_a, vec![16.0, 0.0]);
    site.alloc.confirm_followed(1).unwrap();
    assert_eq!(site.at(13.0).setpoint_a, vec![32.0, 0.0]);
    // Not seen followed: the increase waits out the interval after the decrease.
    site.wanting = vec![1, 1];
    assert_eq!(site.at(20.0).setpoint_a, vec![16.0, 0.0]);
    site.wanting = vec![1, 0];
    assert_eq!(site.at(22.0).setpoint_a, vec![16.0, 0.0]);
    assert_eq!(site.out.reason[0], Reason::ChangeInterval);
    assert_eq!(
        site.at(25.0).setpoint_a,
        vec![32.0, 0.0],
        "5 s after the decrease"
    );
    // A confirmation after an increase waives nothing.
    site.ev_max = vec![10.0, INF];
    assert_eq!(site.at(40.0).setpoint_a, vec![10.0, 0.0]);
    site.alloc.confirm_followed(0).unwrap();
    site.ev_max = vec![20.0, INF];
    assert_eq!(site.at(41.0).setpoint_a, vec![20.0, 0.0]);
    site.alloc.confirm_followed(0).unwrap();
    site.ev_max = vec![INF, INF];
    assert_eq!(site.at(42.0).setpoint_a, vec![20.0, 0.0]);
    assert_eq!(site.out.reason[0], Reason::ChangeInterval);
    assert_eq!(site.at(46.0).setpoint_a, vec![32.0, 0.0]);
}

#[test]
fn a_one_phase_ev_at_a_three_phase_connector_counts_on_its_phase_only() {
    let mut site = Site::new(100.0, vec![connector(PhaseMap::Three, 0); 2], quiet());
    site.gop = 230.0 * 3.0 * 32.0;
    assert_eq!(site.at(0.0).setpoint_a, vec![16.0, 16.0]);
    // The first EV draws on L2 alone: its 16 A are 3.7 kW, not 11.
    site.alloc.set_ev_phase(0, Some(1)).unwrap();
    assert_eq!(
        site.alloc.topology().connectors()[0].phases,
        PhaseMap::Single(1)
    );
    let out = site.at(1.0);
    assert_eq!(out.setpoint_a, vec![24.0, 24.0], "230 * 24 + 690 * 24 W");
    assert_eq!(out.phases, vec![1, 3]);
    // On three phases again: back to the fair share at once, nothing paused first.
    site.alloc.set_ev_phase(0, None).unwrap();
    assert_eq!(site.at(2.0).setpoint_a, vec![16.0, 16.0]);
    assert_eq!(site.out.phases, vec![3, 3]);
    assert!(site.alloc.set_ev_phase(0, Some(3)).is_err());
    assert!(site.alloc.set_ev_phase(2, None).is_err());
    let mut one_phase = Site::new(32.0, vec![connector(PhaseMap::Single(0), 0)], quiet());
    assert!(one_phase.alloc.set_ev_phase(0, Some(0)).is_err());
    assert_eq!(one_phase.at(0.0).phases, vec![1]);
}

#[test]
fn a_one_phase_ev_keeps_its_setpoint_through_the_change() {
    let settings = Settings {
        change_interval_s: 5.0,
        ..quiet()
    };
    let mut site = Site::new(100.0, vec![connector(PhaseMap::Three, 0); 2], settings);
    site.gop = 230.0 * 3.0 * 32.0;
    assert_eq!(site.at(0.0).setpoint_a, vec![16.0, 16.0]);
    site.alloc.set_ev_phase(0, Some(0)).unwrap();
    assert_eq!(
        site.at(1.0).setpoint_a,
        vec![16.0, 16.0],
        "not paused for the change; increases wait for the interval"
    );
    assert_eq!(site.out.reason, vec![Reason::ChangeInterval; 2]);
    assert_eq!(site.at(5.0).setpoint_a, vec![24.0, 24.0]);
}

#[test]
fn a_draw_read_after_a_decrease_lowers_what_stays_reserved() {
    let mut site = second_arrives(Settings {
        settle_s: 10.0,
        ..quiet()
    });
    site.ev_max = vec![INF, 12.0];
    // 32 A stay reserved for the first EV to follow its decrease.
    assert_eq!(site.at(1.0).setpoint_a, vec![20.0, 0.0]);
    // The first EV is read at 26 A, on its way down: 6 A are free for the second.
    site.alloc.confirm_draw(0, 26.0).unwrap();
    assert_eq!(site.at(2.0).setpoint_a, vec![20.0, 6.0]);
    site.alloc.confirm_draw(0, f64::NAN).unwrap(); // says nothing
    site.alloc.confirm_draw(0, 30.0).unwrap(); // never raises it
    assert_eq!(site.at(3.0).setpoint_a, vec![20.0, 6.0]);
    assert!(site.alloc.confirm_draw(2, 1.0).is_err());
}
