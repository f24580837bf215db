//! Deadline floors: granted least laxity first within every limit, then the
//! rest shared fairly; never at the cost of a limit.

mod common;

use common::{allocate, allocator, cycle_input, feeder, quiet, root, three_phase, INF};
use hubgate_core::alloc::{CycleInput, Reason};

#[test]
fn a_floor_is_served_before_the_fair_share_and_the_rest_is_shared() {
    // 60 A on the root, three 32 A connectors: fair is 20 A each.
    let mut alloc = allocator(
        vec![root(60.0, INF)],
        vec![three_phase(0, 32.0); 3],
        quiet(),
    );
    let (base, ev, wanting, pv) = ([0.0; 3], [INF; 3], [1u8; 3], [0u8; 3]);
    let plain = allocate(&mut alloc, &cycle_input(0.0, &base, &ev, &wanting, &pv));
    assert_eq!(plain.target_a, vec![20.0, 20.0, 20.0]);
    let floors = [30.0, 0.0, 0.0];
    let lax = [100.0, INF, INF];
    let input = CycleInput {
        floor_a: &floors,
        laxity_s: &lax,
        ..cycle_input(1.0, &base, &ev, &wanting, &pv)
    };
    let out = allocate(&mut alloc, &input);
    assert_eq!(out.target_a, vec![30.0, 15.0, 15.0]);
}

#[test]
fn a_floor_below_the_fair_share_changes_nothing() {
    let mut alloc = allocator(
        vec![root(60.0, INF)],
        vec![three_phase(0, 32.0); 3],
        quiet(),
    );
    let (base, ev, wanting, pv) = ([0.0; 3], [INF; 3], [1u8; 3], [0u8; 3]);
    let floors = [12.0, 0.0, 0.0];
    let input = CycleInput {
        floor_a: &floors,
        ..cycle_input(0.0, &base, &ev, &wanting, &pv)
    };
    assert_eq!(
        allocate(&mut alloc, &input).target_a,
        vec![20.0, 20.0, 20.0]
    );
}

#[test]
fn floors_that_do_not_all_fit_go_to_the_least_laxity_first() {
    // A 40 A feeder, three connectors asking 25 A each: the least laxity gets
    // 25 A, the next the 15 A left, the third (most slack) waits.
    let mut alloc = allocator(
        vec![root(100.0, INF), feeder(0, 40.0)],
        vec![three_phase(1, 32.0); 3],
        quiet(),
    );
    let (base, ev, wanting, pv) = ([0.0; 6], [INF; 3], [1u8; 3], [0u8; 3]);
    let floors = [25.0, 25.0, 25.0];
    let lax = [300.0, 50.0, 900.0];
    let input = CycleInput {
        floor_a: &floors,
        laxity_s: &lax,
        ..cycle_input(0.0, &base, &ev, &wanting, &pv)
    };
    let out = allocate(&mut alloc, &input);
    assert_eq!(out.target_a[1], 25.0, "{:?}", out.target_a);
    assert_eq!(out.target_a[0], 15.0, "{:?}", out.target_a);
    assert_eq!(out.target_a[2], 0.0, "{:?}", out.target_a);
    assert_eq!(out.reason[2], Reason::PausedNoCapacity);
}

#[test]
fn a_floor_never_breaks_a_limit_and_respects_the_maximum() {
    let mut alloc = allocator(
        vec![root(20.0, INF)],
        vec![three_phase(0, 16.0); 2],
        quiet(),
    );
    let (base, ev, wanting, pv) = ([0.0; 3], [INF; 2], [1u8; 2], [0u8; 2]);
    let floors = [40.0, 0.0];
    let input = CycleInput {
        floor_a: &floors,
        ..cycle_input(0.0, &base, &ev, &wanting, &pv)
    };
    // Deadlines before fairness: the floor (at the 16 A maximum) leaves no room
    // for the other's 6 A minimum.
    let out = allocate(&mut alloc, &input);
    assert_eq!(out.target_a, vec![16.0, 0.0]);
}

#[test]
fn floors_of_wrong_length_or_nan_are_refused() {
    let mut alloc = allocator(
        vec![root(20.0, INF)],
        vec![three_phase(0, 16.0); 2],
        quiet(),
    );
    let (base, ev, wanting, pv) = ([0.0; 3], [INF; 2], [1u8; 2], [0u8; 2]);
    let mut out = hubgate_core::alloc::Allocation::default();
    let short = [1.0];
    let input = CycleInput {
        floor_a: &short,
        ..cycle_input(0.0, &base, &ev, &wanting, &pv)
    };
    assert!(alloc.allocate(&input, &mut out).is_err());
    let nan = [f64::NAN, 0.0];
    let input = CycleInput {
        laxity_s: &nan,
        ..cycle_input(0.0, &base, &ev, &wanting, &pv)
    };
    assert!(alloc.allocate(&input, &mut out).is_err());
}

#[test]
fn a_floor_below_the_minimum_charges_at_the_minimum_before_the_rotation() {
    // 20 A on the root, four connectors with a 6 A minimum: room for three at 6 A
    // but not four. The one that needs 2 A now (its deadline) is admitted at the
    // minimum, whatever the rotation's order; without its floor it waits its turn.
    let mut alloc = allocator(
        vec![root(20.0, INF)],
        vec![three_phase(0, 32.0); 4],
        quiet(),
    );
    let (base, ev, wanting, pv) = ([0.0; 3], [INF; 4], [1u8; 4], [0u8; 4]);
    let plain = allocate(&mut alloc, &cycle_input(0.0, &base, &ev, &wanting, &pv));
    assert_eq!(plain.target_a[3], 0.0, "{:?}", plain.target_a);
    let mut alloc = allocator(
        vec![root(20.0, INF)],
        vec![three_phase(0, 32.0); 4],
        quiet(),
    );
    let floors = [0.0, 0.0, 0.0, 2.0];
    let lax = [INF, INF, INF, 600.0];
    let input = CycleInput {
        floor_a: &floors,
        laxity_s: &lax,
        ..cycle_input(0.0, &base, &ev, &wanting, &pv)
    };
    let out = allocate(&mut alloc, &input);
    assert!(out.target_a[3] >= 6.0, "{:?}", out.target_a);
    assert!(out.target_a.iter().sum::<f64>() <= 20.0 + 1e-9);
}

#[test]
fn a_deadline_outranks_the_minimum_on_time_of_a_session_with_slack() {
    // 12 A on the root: room for two connectors at their 6 A minimum. Two start
    // at t = 0 (inside their 5 minutes on at t = 10); the third must charge now
    // for its deadline: it is admitted and one of the two pauses, rather than the
    // deadline waiting out their dwell.
    let settings = hubgate_core::alloc::Settings {
        min_on_s: 300.0,
        ..quiet()
    };
    let mut alloc = allocator(
        vec![root(12.0, INF)],
        vec![three_phase(0, 32.0); 3],
        settings,
    );
    let (base, ev, pv) = ([0.0; 3], [INF; 3], [0u8; 3]);
    let first = allocate(&mut alloc, &cycle_input(0.0, &base, &ev, &[1, 1, 0], &pv));
    assert_eq!(first.target_a, vec![6.0, 6.0, 0.0]);
    let floors = [0.0, 0.0, 6.0];
    let lax = [INF, INF, 100.0];
    let input = CycleInput {
        floor_a: &floors,
        laxity_s: &lax,
        ..cycle_input(10.0, &base, &ev, &[1, 1, 1], &pv)
    };
    let out = allocate(&mut alloc, &input);
    assert_eq!(out.target_a[2], 6.0, "{:?}", out.target_a);
    assert_eq!(out.target_a[0] + out.target_a[1], 6.0, "{:?}", out.target_a);
}
