//! Priority changes at run time: the new tier counts from the next cycle, and
//! what the allocator remembers about each connector is kept.

use hubgate_core::alloc::{
    Allocation, Allocator, ConnectorSpec, CycleInput, NodeSpec, PhaseMap, Reason, Settings,
    Topology, TopologyError,
};

const INF: f64 = f64::INFINITY;

fn allocator(root_a: f64, connectors: usize, settings: Settings) -> Allocator {
    let root = NodeSpec {
        parent: None,
        phase_cap_a: [root_a; 3],
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
    let connectors = vec![connector; connectors];
    Allocator::new(Topology::new(vec![root], connectors, settings).unwrap())
}

fn cycle(alloc: &mut Allocator, now: f64) -> Allocation {
    let n = alloc.topology().connector_count();
    let (ev, wanting, pv) = (vec![INF; n], vec![1; n], vec![0; n]);
    let input = CycleInput {
        now,
        base_load_a: &[0.0; 3],
        ev_max_a: &ev,
        wanting: &wanting,
        pv_mode: &pv,
        grid_operator_w: INF,
        peak_w: INF,
        pv_budget_w: INF,
    };
    let mut out = Allocation::default();
    alloc.allocate(&input, &mut out).unwrap();
    out
}

fn quiet() -> Settings {
    Settings {
        min_on_s: 0.0,
        min_off_s: 0.0,
        change_interval_s: 0.0,
        settle_s: 0.0,
        ..Settings::default()
    }
}

#[test]
fn a_raised_tier_is_filled_first_from_the_next_cycle() {
    let mut alloc = allocator(30.0, 3, quiet());
    assert_eq!(cycle(&mut alloc, 0.0).target_a, vec![10.0, 10.0, 10.0]);
    alloc.set_priority(2, 1).unwrap();
    assert_eq!(alloc.topology().connectors()[2].priority, 1);
    // The higher tier fills first, on top of the others' minimums.
    assert_eq!(cycle(&mut alloc, 1.0).target_a, vec![6.0, 6.0, 18.0]);
    alloc.set_priority(2, 0).unwrap();
    assert_eq!(cycle(&mut alloc, 2.0).target_a, vec![10.0, 10.0, 10.0]);
}

#[test]
fn a_raised_priority_wins_admission_and_the_state_is_kept() {
    // 10 A: room for one minimum. Without dwell times the paused ones take
    // turns, longest waiting first: connector 0, then 1, then 2.
    let mut alloc = allocator(10.0, 3, quiet());
    let first = cycle(&mut alloc, 0.0);
    assert_eq!(first.setpoint_a, vec![10.0, 0.0, 0.0]);
    assert_eq!(first.reason[1..], [Reason::PausedNoCapacity; 2]);
    let mut twin = allocator(10.0, 3, quiet());
    cycle(&mut twin, 0.0);
    assert_eq!(cycle(&mut twin, 1.0).target_a, vec![0.0, 10.0, 0.0]);
    alloc.set_priority(2, 3).unwrap();
    let raised = cycle(&mut alloc, 1.0);
    // Connector 2 goes before connector 1's turn. Connector 0's last setpoint
    // (10 A) is remembered: until its decrease is confirmed, connector 2 gets
    // its target but not yet its setpoint.
    assert_eq!(raised.target_a, vec![0.0, 0.0, 10.0]);
    assert_eq!(raised.setpoint_a, vec![0.0, 0.0, 0.0]);
    assert_eq!(raised.reason[2], Reason::AwaitingHeadroom);
    // From then on the higher tier keeps it.
    for now in 2..5 {
        assert_eq!(
            cycle(&mut alloc, f64::from(now)).setpoint_a,
            vec![0.0, 0.0, 10.0]
        );
    }
}

#[test]
fn an_unknown_connector_is_refused_and_nothing_changes() {
    let mut alloc = allocator(30.0, 2, quiet());
    assert_eq!(
        alloc.set_priority(2, 1),
        Err(TopologyError::NoSuchConnector(2))
    );
    assert_eq!(
        TopologyError::NoSuchConnector(2).to_string(),
        "there is no connector 2"
    );
    assert!(alloc
        .topology()
        .connectors()
        .iter()
        .all(|c| c.priority == 0));
    assert_eq!(cycle(&mut alloc, 0.0).target_a, vec![15.0, 15.0]);
}
