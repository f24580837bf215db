//! Priority changes at run time: the new tier counts from the next cycle, and
//! what the allocator remembers about each connector is kept.

mod common;

use common::{allocate, allocator, cycle_input, quiet, root, three_phase, INF};
use hubgate_core::alloc::{Allocation, Allocator, Reason, TopologyError};

fn site(root_a: f64, connectors: usize) -> Allocator {
    allocator(
        vec![root(root_a, INF)],
        vec![three_phase(0, 32.0); connectors],
        quiet(),
    )
}

fn cycle(alloc: &mut Allocator, now: f64) -> Allocation {
    let n = alloc.topology().connector_count();
    let (ev, wanting, pv) = (vec![INF; n], vec![1; n], vec![0; n]);
    allocate(alloc, &cycle_input(now, &[0.0; 3], &ev, &wanting, &pv))
}

#[test]
fn a_raised_tier_is_filled_first_from_the_next_cycle() {
    let mut alloc = site(30.0, 3);
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
    let mut alloc = site(10.0, 3);
    let first = cycle(&mut alloc, 0.0);
    assert_eq!(first.setpoint_a, vec![10.0, 0.0, 0.0]);
    assert_eq!(first.reason[1..], [Reason::PausedNoCapacity; 2]);
    let mut twin = site(10.0, 3);
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
    let mut alloc = site(30.0, 2);
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
