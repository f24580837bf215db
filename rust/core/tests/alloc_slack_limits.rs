//! Each connector's limits are kept across cycles, without those that cannot
//! bind: they must come back as soon as the connectors' maxima, wanting flags,
//! the root-level limits or the PV-mode flags change.

use hubgate_core::alloc::{
    Allocation, Allocator, ConnectorSpec, CycleInput, NodeSpec, PhaseMap, Reason, Settings,
    Topology,
};

const INF: f64 = f64::INFINITY;

/// A 100 A root with one 20 A feeder (node 1) holding two three-phase connectors.
fn feeder_site() -> Allocator {
    let nodes = vec![
        NodeSpec {
            parent: None,
            phase_cap_a: [100.0; 3],
            power_cap_w: INF,
            unbalance_cap_a: INF,
        },
        NodeSpec {
            parent: Some(0),
            phase_cap_a: [20.0; 3],
            power_cap_w: INF,
            unbalance_cap_a: INF,
        },
    ];
    let connector = ConnectorSpec {
        node: 1,
        phases: PhaseMap::Three,
        min_a: 6.0,
        max_a: 16.0,
        step_a: 1.0,
        weight: 1.0,
        priority: 0,
    };
    let settings = Settings {
        min_on_s: 0.0,
        min_off_s: 0.0,
        change_interval_s: 0.0,
        settle_s: 0.0,
        ..Settings::default()
    };
    Allocator::new(Topology::new(nodes, vec![connector; 2], settings).unwrap())
}

fn cycle(alloc: &mut Allocator, now: f64, ev_max: [f64; 2], wanting: [u8; 2]) -> Allocation {
    let mut out = Allocation::default();
    let input = CycleInput {
        now,
        base_load_a: &[0.0; 6],
        ev_max_a: &ev_max,
        wanting: &wanting,
        pv_mode: &[0, 0],
        grid_operator_w: INF,
        peak_w: INF,
        pv_budget_w: INF,
    };
    alloc.allocate(&input, &mut out).unwrap();
    out
}

#[test]
fn a_slack_limit_binds_again_when_the_ev_maxima_rise() {
    let mut alloc = feeder_site();
    // 8 A + 8 A stay clear of the feeder's 20 A: each gets its EV maximum.
    let out = cycle(&mut alloc, 0.0, [8.0, 8.0], [1, 1]);
    assert_eq!(out.target_a, vec![8.0, 8.0]);
    assert_eq!(out.reason, vec![Reason::OwnMaximum; 2]);
    // Maxima up to 16 A: the feeder binds and shares 10 A each.
    let out = cycle(&mut alloc, 1.0, [INF, INF], [1, 1]);
    assert_eq!(out.target_a, vec![10.0, 10.0]);
    assert_eq!(out.reason, vec![Reason::PhaseCurrent; 2]);
    assert_eq!(out.binding_node, vec![1, 1]);
    // Back to small maxima: slack again.
    let out = cycle(&mut alloc, 2.0, [8.0, 8.0], [1, 1]);
    assert_eq!(out.target_a, vec![8.0, 8.0]);
}

#[test]
fn a_slack_limit_binds_again_when_another_connector_wants() {
    let mut alloc = feeder_site();
    let out = cycle(&mut alloc, 0.0, [INF, INF], [1, 0]);
    assert_eq!(out.target_a, vec![16.0, 0.0]);
    assert_eq!(out.reason[0], Reason::OwnMaximum);
    let out = cycle(&mut alloc, 1.0, [INF, INF], [1, 1]);
    assert_eq!(out.target_a, vec![10.0, 10.0]);
    assert_eq!(out.reason[0], Reason::PhaseCurrent);
    assert_eq!(out.binding_node[0], 1);
    // The newcomer waits until the first one's decrease is confirmed.
    assert_eq!(out.setpoint_a, vec![10.0, 0.0]);
}

#[test]
fn a_limit_the_maxima_exactly_reach_is_kept() {
    let mut alloc = feeder_site();
    // 10 A + 10 A is exactly the feeder's 20 A: not slack, and both get 10 A
    // (their own maximum is reached at the same time, and wins the tie).
    let out = cycle(&mut alloc, 0.0, [10.0, 10.0], [1, 1]);
    assert_eq!(out.target_a, vec![10.0, 10.0]);
    assert_eq!(out.reason, vec![Reason::OwnMaximum; 2]);
    // 10 A + 11 A: the feeder binds the second one at 10 A.
    let out = cycle(&mut alloc, 1.0, [10.0, 11.0], [1, 1]);
    assert_eq!(out.target_a, vec![10.0, 10.0]);
    assert_eq!(out.reason[1], Reason::PhaseCurrent);
}

#[test]
fn the_root_power_limit_binds_again_when_the_grid_operator_lifts_its_limit() {
    let root = NodeSpec {
        parent: None,
        phase_cap_a: [1000.0; 3],
        power_cap_w: 30_000.0,
        unbalance_cap_a: INF,
    };
    let connector = ConnectorSpec {
        node: 0,
        phases: PhaseMap::Three,
        min_a: 6.0,
        max_a: 32.0,
        step_a: 1.0,
        weight: 1.0,
        priority: 0,
    };
    let topo = Topology::new(vec![root], vec![connector; 4], Settings::default()).unwrap();
    let mut alloc = Allocator::new(topo);
    let mut out = Allocation::default();
    let mut run = |now: f64, grid_operator_w: f64| {
        let input = CycleInput {
            now,
            base_load_a: &[0.0; 3],
            ev_max_a: &[INF; 4],
            wanting: &[1; 4],
            pv_mode: &[0; 4],
            grid_operator_w,
            peak_w: INF,
            pv_budget_w: INF,
        };
        alloc.allocate(&input, &mut out).unwrap();
        out.clone()
    };
    // 5 kW is far below the root's 30 kW: one connector, held by the grid operator.
    let low = run(0.0, 5_000.0);
    assert_eq!(low.target_a, vec![7.0, 0.0, 0.0, 0.0]);
    assert_eq!(low.reason[0], Reason::GridOperator);
    // Without the grid operator's limit the root's 30 kW share 43 A.
    let free = run(1.0, INF);
    assert_eq!(free.target_a, vec![11.0, 11.0, 11.0, 10.0]);
    // The first one waits out its change interval; the others start.
    assert_eq!(free.reason[1..], [Reason::Power; 3]);
    assert_eq!(free.binding_node[1..], [0; 3]);
}

#[test]
fn pv_mode_set_while_no_pv_budget_applies_once_the_budget_comes() {
    let root = NodeSpec {
        parent: None,
        phase_cap_a: [100.0; 3],
        power_cap_w: INF,
        unbalance_cap_a: INF,
    };
    let connector = ConnectorSpec {
        node: 0,
        phases: PhaseMap::Three,
        min_a: 6.0,
        max_a: 32.0,
        step_a: 1.0,
        weight: 1.0,
        priority: 0,
    };
    let topo = Topology::new(vec![root], vec![connector; 2], Settings::default()).unwrap();
    let mut alloc = Allocator::new(topo);
    let mut out = Allocation::default();
    let mut run = |now: f64, pv_mode: [u8; 2], pv_budget_w: f64| {
        let input = CycleInput {
            now,
            base_load_a: &[0.0; 3],
            ev_max_a: &[INF; 2],
            wanting: &[1; 2],
            pv_mode: &pv_mode,
            grid_operator_w: INF,
            peak_w: INF,
            pv_budget_w,
        };
        alloc.allocate(&input, &mut out).unwrap();
        out.clone()
    };
    assert_eq!(run(0.0, [0, 0], INF).target_a, vec![32.0, 32.0]);
    // PV mode without a budget changes nothing yet.
    assert_eq!(run(1.0, [1, 0], INF).target_a, vec![32.0, 32.0]);
    // 5 kW of PV: 7 A on three phases for the PV-mode connector only.
    let out = run(2.0, [1, 0], 5_000.0);
    assert_eq!(out.target_a, vec![7.0, 32.0]);
    assert_eq!(out.reason[0], Reason::PvBudget);
}

#[test]
fn minimums_are_checked_again_once_they_no_longer_all_fit() {
    let mut alloc = feeder_site();
    let mut run = |now: f64, feeder_base_a: f64| {
        let mut base = [0.0; 6];
        base[3..].fill(feeder_base_a);
        let input = CycleInput {
            now,
            base_load_a: &base,
            ev_max_a: &[INF, INF],
            wanting: &[1, 1],
            pv_mode: &[0, 0],
            grid_operator_w: INF,
            peak_w: INF,
            pv_budget_w: INF,
        };
        let mut out = Allocation::default();
        alloc.allocate(&input, &mut out).unwrap();
        out
    };
    // Both minimums (6 A each) fit in the feeder's 20 A.
    assert_eq!(run(0.0, 0.0).target_a, vec![10.0, 10.0]);
    // 10 A of base load leave room for one minimum only.
    let tight = run(1.0, 10.0);
    assert_eq!(tight.target_a.iter().filter(|&&a| a > 0.0).count(), 1);
    let paused = tight.target_a.iter().position(|&a| a == 0.0).unwrap();
    assert_eq!(tight.reason[paused], Reason::PausedNoCapacity);
    assert_eq!(
        (tight.binding_node[paused], tight.binding_phase[paused]),
        (1, 0)
    );
    // The base load gone, both fit again.
    assert_eq!(
        run(2.0, 0.0).target_a.iter().filter(|&&a| a > 0.0).count(),
        2
    );
}
