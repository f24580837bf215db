//! Builders shared by the allocation tests: the sites they set up differ in a
//! cap or two, so each test names only what it varies.

// Each test crate compiles this module and uses only some of its builders.
#![allow(dead_code)]

use hubgate_core::alloc::{
    Allocation, Allocator, ConnectorSpec, CycleInput, NodeSpec, PhaseMap, Settings, Topology,
};

pub(crate) const INF: f64 = f64::INFINITY;

/// The grid connection: `phase_cap_a` on each phase, `power_cap_w` in total.
pub(crate) fn root(phase_cap_a: f64, power_cap_w: f64) -> NodeSpec {
    NodeSpec {
        parent: None,
        phase_cap_a: [phase_cap_a; 3],
        power_cap_w,
        unbalance_cap_a: INF,
    }
}

/// A feeder below `parent` with `phase_cap_a` on each phase and no other limit.
pub(crate) fn feeder(parent: usize, phase_cap_a: f64) -> NodeSpec {
    NodeSpec {
        parent: Some(parent),
        ..root(phase_cap_a, INF)
    }
}

/// A three-phase connector on `node`: 6 A minimum, 1 A steps, weight 1, tier 0.
pub(crate) fn three_phase(node: usize, max_a: f64) -> ConnectorSpec {
    ConnectorSpec {
        node,
        phases: PhaseMap::Three,
        min_a: 6.0,
        max_a,
        step_a: 1.0,
        weight: 1.0,
        priority: 0,
    }
}

/// Settings without dwell times, change interval or settle time.
pub(crate) fn quiet() -> Settings {
    Settings {
        min_on_s: 0.0,
        min_off_s: 0.0,
        change_interval_s: 0.0,
        settle_s: 0.0,
        ..Settings::default()
    }
}

pub(crate) fn allocator(
    nodes: Vec<NodeSpec>,
    connectors: Vec<ConnectorSpec>,
    settings: Settings,
) -> Allocator {
    Allocator::new(Topology::new(nodes, connectors, settings).unwrap())
}

/// A cycle's input without grid operator, peak or PV budget limits.
pub(crate) fn cycle_input<'a>(
    now: f64,
    base_load_a: &'a [f64],
    ev_max_a: &'a [f64],
    wanting: &'a [u8],
    pv_mode: &'a [u8],
) -> CycleInput<'a> {
    CycleInput {
        now,
        base_load_a,
        ev_max_a,
        wanting,
        pv_mode,
        grid_operator_w: INF,
        peak_w: INF,
        pv_budget_w: INF,
        floor_a: &[],
        laxity_s: &[],
    }
}

/// One cycle into a fresh allocation.
pub(crate) fn allocate(alloc: &mut Allocator, input: &CycleInput) -> Allocation {
    let mut out = Allocation::default();
    alloc.allocate(input, &mut out).unwrap();
    out
}
