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
//! The connectors' paths and phases are fixed with the site ([`ConnectorPaths`]); each
//! cycle hands in the fixed currents, two flag columns and the room, and gets one column
//! back.

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
}

/// Per connector of `paths`, the current it is to be configured with, its fixed one, else
/// `failsafe_a` or 0, into `granted`; `room_a`: per node, A per phase, used up in place.
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
    check_len("room_a", room_a.len(), PHASES * paths.nodes())?;
    granted.clear();
    granted.resize(n, 0.0);
    let rank = |i: usize| {
        (u8::from(seats.fixed_a[i].is_nan()) << 2)
            | (u8::from(seats.session[i] == 0) << 1)
            | u8::from(seats.holds[i] == 0)
    };
    for turn in 0..8 {
        for i in (0..n).filter(|&i| rank(i) == turn) {
            let need = if seats.holds[i] != 0 {
                failsafe_a
            } else {
                failsafe_a + GRANT_HYSTERESIS_A
            };
            let path = paths.path(i);
            let on = paths.phases(i);
            let drawn = (0..PHASES).filter(|&p| on[p]);
            let fits = path.iter().all(|&node| {
                drawn
                    .clone()
                    .all(|p| room_a[PHASES * node + p] >= need - TOLERANCE_A)
            });
            let take = match seats.fixed_a[i] {
                fixed_a if !fixed_a.is_nan() => fixed_a,
                _ if fits => failsafe_a,
                _ => continue,
            };
            granted[i] = take;
            for &node in path {
                for p in drawn.clone() {
                    room_a[PHASES * node + p] -= take;
                }
            }
        }
    }
    Ok(())
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
        };
        share(&one, seats, &mut room, 6.0, &mut granted).unwrap();
        assert_eq!(room, vec![10.0, 4.0, 10.0, 10.0, 4.0, 10.0]);
    }

    #[test]
    fn columns_that_do_not_fit_are_errors() {
        let one = paths(1, &[(&[0], &THREE)]);
        let mut granted = Vec::new();
        let seats = Seats {
            fixed_a: &[TOLD, TOLD],
            session: &[0],
            holds: &[0],
        };
        let err = share(&one, seats, &mut [1.0; 3], 6.0, &mut granted).unwrap_err();
        assert_eq!(err.to_string(), "fixed_a: 2 values where 1 were expected");
        let seats = Seats {
            fixed_a: &[TOLD],
            ..seats
        };
        let err = share(&one, seats, &mut [1.0; 6], 6.0, &mut granted).unwrap_err();
        assert_eq!(err.to_string(), "room_a: 6 values where 3 were expected");
    }
}
