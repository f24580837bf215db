//! The failsafe budget: the current each connector's charger is configured to fall back to
//! without the gateway, shared so that those fallbacks fit every node's limit in force.
//!
//! When the gateway stops, or its leases lapse, each charger draws its device-side
//! failsafe current and nobody is left to lower it. So the failsafes are shared out like a
//! budget: per node and phase, the room left under its limit in force by the load that is
//! not EVs; each connector in turn gets the site's failsafe current where every node on its
//! path still has room for it on its phases, else 0 (an EV pauses on it). Connectors whose
//! device falls back to a current of its own whatever it is told (a fallback fixed on the
//! device) count that first, room or not; then connectors with a session, then the ones
//! that hold it already (no churn: a new grant needs [`GRANT_HYSTERESIS_A`] more room),
//! then by index.
//!
//! The chargers take their new failsafes one by one, in any order, and the gateway may stop
//! between two: so every charger counts at what it may fall back to now (a decrease at its
//! old value until it is verified), and an increase is granted only where its path has room
//! for it beside them. The increase waits for the decreases it needs room from, never a
//! decrease for an increase; a decrease that is never verified (its charger unreachable)
//! holds back only as much as its old value takes.
//!
//! The connectors' paths and phases are fixed with the site ([`ConnectorPaths`]); each
//! cycle hands in the fixed currents, two flag columns, what each may fall back to now and
//! the room, and gets one column back.

use crate::paths::{check_len, ConnectorPaths, PathError, PHASES};

/// A connector not holding the failsafe current gets it only with this much more room than
/// it takes, so that a base load wavering at the edge does not reconfigure it every cycle.
pub const GRANT_HYSTERESIS_A: f64 = 1.0;

/// Room this close to the need still fits (float sums of the limits and loads).
const TOLERANCE_A: f64 = 1e-9;

/// One cycle's columns, one entry per connector of the paths.
#[derive(Debug, Clone, Copy)]
pub struct Seats<'a> {
    /// The current its device falls back to whatever it is told (NaN: the one it is told).
    pub fixed_a: &'a [f64],
    /// Whether an EV is plugged in (nonzero: yes).
    pub session: &'a [u8],
    /// Whether it is configured with the failsafe current now (nonzero: yes).
    pub holds: &'a [u8],
    /// The most it may fall back to now: the failsafe it was verified with, or a larger one
    /// asked for since (a configuration in flight may land any moment).
    pub may_hold_a: &'a [f64],
}

/// Per connector of `paths`, the current it is to be configured with, its fixed one, else
/// `failsafe_a` or 0, into `granted`; `room_a`: per node, A per phase, used up in place by
/// what each may fall back to now and the increases granted.
pub fn share(
    paths: &ConnectorPaths,
    seats: Seats<'_>,
    room_a: &mut [f64],
    failsafe_a: f64,
    granted: &mut Vec<f64>,
) -> Result<(), PathError> {
    let n = paths.len();
    check_len("fixed_a", seats.fixed_a.len(), n)?;
    check_len("session", seats.session.len(), n)?;
    check_len("holds", seats.holds.len(), n)?;
    check_len("may_hold_a", seats.may_hold_a.len(), n)?;
    check_len("room_a", room_a.len(), PHASES * paths.nodes())?;
    granted.clear();
    granted.resize(n, 0.0);
    let rank = |i: usize| {
        (u8::from(seats.fixed_a[i].is_nan()) << 2)
            | (u8::from(seats.session[i] == 0) << 1)
            | u8::from(seats.holds[i] == 0)
    };
    let in_turn = || (0..8).flat_map(move |turn| (0..n).filter(move |&i| rank(i) == turn));
    // What each is to hold: the share of the room as if all took it at once.
    let mut wanted = room_a.to_vec();
    for i in in_turn() {
        let need = if seats.holds[i] != 0 {
            failsafe_a
        } else {
            failsafe_a + GRANT_HYSTERESIS_A
        };
        granted[i] = match seats.fixed_a[i] {
            fixed_a if !fixed_a.is_nan() => fixed_a,
            _ if fits(paths, i, &wanted, need) => failsafe_a,
            _ => continue,
        };
        take(paths, i, &mut wanted, granted[i]);
    }
    // What is granted: each counts at what it may fall back to now; an increase where its
    // path has room for it beside them, else 0 until the room is freed (verified).
    let now_a = |i: usize| match seats.fixed_a[i] {
        fixed_a if !fixed_a.is_nan() => fixed_a,
        _ => seats.may_hold_a[i],
    };
    for i in 0..n {
        take(paths, i, room_a, now_a(i));
    }
    for i in in_turn() {
        let raise = granted[i] - now_a(i);
        if raise <= 0.0 {
            continue;
        }
        if fits(paths, i, room_a, raise) {
            take(paths, i, room_a, raise);
        } else {
            granted[i] = 0.0;
        }
    }
    Ok(())
}

/// Whether every node on the path of connector `i` has `need_a` of room on its phases.
fn fits(paths: &ConnectorPaths, i: usize, room_a: &[f64], need_a: f64) -> bool {
    let on = paths.phases(i);
    paths.path(i).iter().all(|&node| {
        (0..PHASES)
            .filter(|&p| on[p])
            .all(|p| room_a[PHASES * node + p] >= need_a - TOLERANCE_A)
    })
}

/// Connector `i` takes `a` of the room of every node on its path, on its phases.
fn take(paths: &ConnectorPaths, i: usize, room_a: &mut [f64], a: f64) {
    let on = paths.phases(i);
    for &node in paths.path(i) {
        for p in (0..PHASES).filter(|&p| on[p]) {
            room_a[PHASES * node + p] -= a;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const THREE: [usize; 3] = [0, 1, 2];
    const TOLD: f64 = f64::NAN;

    fn paths(nodes: usize, specs: &[(&[usize], &[usize])]) -> ConnectorPaths {
        let paths: Vec<Vec<usize>> = specs.iter().map(|s| s.0.to_vec()).collect();
        let phases: Vec<Vec<usize>> = specs.iter().map(|s| s.1.to_vec()).collect();
        ConnectorPaths::new(nodes, &paths, &phases).unwrap()
    }

    fn granted(paths: &ConnectorPaths, seats: Seats<'_>, room: &[f64]) -> Vec<f64> {
        let mut room = room.to_vec();
        let mut granted = Vec::new();
        share(paths, seats, &mut room, 6.0, &mut granted).unwrap();
        granted
    }

    #[test]
    fn sessions_first_then_by_index_until_the_room_is_used() {
        // 104 three-phase connectors at 6 A under 580 A per phase: 96 fit; under 232 A, 38,
        // all of them with a session.
        let all = paths(1, &vec![(&[0][..], &THREE[..]); 104]);
        let session: Vec<u8> = (0..104).map(|i| u8::from(i % 2 == 1)).collect();
        let seats = Seats {
            fixed_a: &[TOLD; 104],
            session: &session,
            holds: &[0; 104],
            may_hold_a: &[6.0; 104],
        };
        let fitting = granted(&all, seats, &[580.0; 3]);
        assert_eq!(fitting.iter().filter(|&&a| a > 0.0).count(), 96);
        let curtailed = granted(&all, seats, &[232.0; 3]);
        assert_eq!(curtailed.iter().filter(|&&a| a > 0.0).count(), 38);
        assert!((1..76).step_by(2).all(|i| curtailed[i] == 6.0));
        assert!((0..104).step_by(2).all(|i| curtailed[i] == 0.0));
    }

    #[test]
    fn every_node_on_the_path_and_only_the_phases_drawn_count() {
        let five = paths(
            2,
            &[
                (&[1, 0], &THREE),
                (&[1, 0], &[0]),
                (&[1, 0], &[2]),
                (&[0], &THREE),
                (&[0], &THREE),
            ],
        );
        let seats = Seats {
            fixed_a: &[TOLD; 5],
            session: &[0; 5],
            holds: &[1; 5],
            may_hold_a: &[6.0; 5],
        };
        let room = [20.0, 20.0, 20.0, 13.0, 13.0, 6.0];
        assert_eq!(granted(&five, seats, &room), vec![6.0, 6.0, 0.0, 6.0, 0.0]);
    }

    #[test]
    fn a_fixed_failsafe_counts_first_room_or_not_and_a_new_grant_needs_more_room() {
        let two = paths(1, &[(&[0], &THREE), (&[0], &THREE)]);
        let case = |fixed: f64, holds: u8, room: f64| {
            let fixed_a = [TOLD, fixed];
            let seats = Seats {
                fixed_a: &fixed_a,
                session: &[0, 0],
                holds: &[holds, 0],
                may_hold_a: &[6.0, fixed],
            };
            granted(&two, seats, &[room; 3])
        };
        assert_eq!(case(6.0, 0, 13.0), vec![6.0, 6.0]);
        assert_eq!(case(6.0, 0, 12.5), vec![0.0, 6.0]);
        assert_eq!(case(6.0, 1, 12.5), vec![6.0, 6.0]);
        assert_eq!(case(6.0, 1, 1.0), vec![0.0, 6.0]);
        assert_eq!(case(10.0, 1, 16.0), vec![6.0, 10.0]);
        assert_eq!(case(10.0, 1, 15.0), vec![0.0, 10.0]);
    }

    #[test]
    fn the_room_is_used_up_in_place() {
        let one = paths(2, &[(&[1, 0], &[1])]);
        let mut room = vec![10.0; 6];
        let mut granted = Vec::new();
        let seats = Seats {
            fixed_a: &[TOLD],
            session: &[1],
            holds: &[1],
            may_hold_a: &[6.0],
        };
        share(&one, seats, &mut room, 6.0, &mut granted).unwrap();
        assert_eq!(room, vec![10.0, 4.0, 10.0, 10.0, 4.0, 10.0]);
    }

    #[test]
    fn an_increase_waits_for_the_decreases_it_needs_room_from() {
        // A (index 0) holds 6 A, B (1) has an EV: B is to have it, A is to give it up; C (2)
        // under another node is to have it too. Until A's 0 A is verified, A may still fall
        // back to 6 A: B waits (C does not), A's decrease goes out.
        let three = paths(
            3,
            &[(&[1, 0], &THREE), (&[1, 0], &THREE), (&[2, 0], &THREE)],
        );
        let seats = |may_hold_a: &[f64], holds: &[u8]| {
            let mut room = [20.0, 20.0, 20.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0];
            let mut granted = Vec::new();
            let seats = Seats {
                fixed_a: &[TOLD; 3],
                session: &[0, 1, 0],
                holds,
                may_hold_a,
            };
            share(&three, seats, &mut room, 6.0, &mut granted).unwrap();
            (granted, room)
        };
        let (pending, room) = seats(&[6.0, 0.0, 0.0], &[1, 0, 0]);
        assert_eq!(pending, vec![0.0, 0.0, 6.0]);
        assert_eq!(room, [8.0, 8.0, 8.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0]);
        let (verified, _) = seats(&[0.0, 0.0, 6.0], &[0, 0, 1]);
        assert_eq!(verified, vec![0.0, 6.0, 6.0]);
        // one asked for and not verified counts as held: B's own try in flight
        let (asked, _) = seats(&[6.0, 6.0, 6.0], &[1, 0, 1]);
        assert_eq!(asked, vec![0.0, 6.0, 6.0]);
    }

    #[test]
    fn a_fixed_fallback_counts_at_its_value_not_at_what_it_was_told() {
        // Read at 6 A where 16 A was counted before: the other's increase fits beside it.
        let two = paths(1, &[(&[0], &THREE), (&[0], &THREE)]);
        let mut granted = Vec::new();
        let seats = Seats {
            fixed_a: &[6.0, TOLD],
            session: &[0, 1],
            holds: &[0, 0],
            may_hold_a: &[16.0, 0.0],
        };
        share(&two, seats, &mut [13.0; 3], 6.0, &mut granted).unwrap();
        assert_eq!(granted, vec![6.0, 6.0]);
    }

    #[test]
    fn columns_that_do_not_fit_are_errors() {
        let one = paths(1, &[(&[0], &THREE)]);
        let mut granted = Vec::new();
        let seats = Seats {
            fixed_a: &[TOLD, TOLD],
            session: &[0],
            holds: &[0],
            may_hold_a: &[0.0],
        };
        let err = share(&one, seats, &mut [1.0; 3], 6.0, &mut granted).unwrap_err();
        assert_eq!(err.to_string(), "fixed_a: 2 values where 1 were expected");
        let seats = Seats {
            fixed_a: &[TOLD],
            ..seats
        };
        let err = share(&one, seats, &mut [1.0; 6], 6.0, &mut granted).unwrap_err();
        assert_eq!(err.to_string(), "room_a: 6 values where 3 were expected");
        let seats = Seats {
            may_hold_a: &[],
            ..seats
        };
        let err = share(&one, seats, &mut [1.0; 3], 6.0, &mut granted).unwrap_err();
        assert_eq!(
            err.to_string(),
            "may_hold_a: 0 values where 1 were expected"
        );
    }
}
