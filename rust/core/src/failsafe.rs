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
//! cycle hands in two flag columns and the room, and gets one column back.

use crate::paths::{check_len, ConnectorPaths, PathError, PHASES};

/// A connector not holding the failsafe current gets it only with this much more room than
/// it takes, so that a base load wavering at the edge does not reconfigure it every cycle.
pub const GRANT_HYSTERESIS_A: f64 = 1.0;

/// Room this close to the need still fits (float sums of the limits and loads).
const TOLERANCE_A: f64 = 1e-9;

/// The site's connectors as the failsafe budget sees them: their paths and phases, and
/// the current each one's device falls back to whatever it is told, if any.
#[derive(Debug, Clone)]
pub struct FailsafeSeats {
    paths: ConnectorPaths,
    fixed_a: Vec<Option<f64>>,
    rank: Vec<u8>,
}

impl FailsafeSeats {
    /// Seats over `paths`; `fixed_a`: per connector, the current its device falls back to
    /// whatever it is told (None: the one it is told).
    pub fn new(paths: ConnectorPaths, fixed_a: &[Option<f64>]) -> Result<Self, PathError> {
        check_len("fixed_a", fixed_a.len(), paths.len())?;
        Ok(Self {
            rank: vec![0; paths.len()],
            paths,
            fixed_a: fixed_a.to_vec(),
        })
    }

    /// The number of connectors.
    pub fn len(&self) -> usize {
        self.fixed_a.len()
    }

    /// Whether the site has no connectors.
    pub fn is_empty(&self) -> bool {
        self.fixed_a.is_empty()
    }

    /// Per connector, the current it is to be configured with, its fixed one, else
    /// `failsafe_a` or 0, into `granted`. `session`/`holds`: per connector, whether an EV is plugged in and whether
    /// it is configured with `failsafe_a` now (nonzero: yes); `room_a`: per node, A per
    /// phase, used up in place.
    pub fn share(
        &mut self,
        session: &[u8],
        holds: &[u8],
        room_a: &mut [f64],
        failsafe_a: f64,
        granted: &mut Vec<f64>,
    ) -> Result<(), PathError> {
        let n = self.len();
        check_len("session", session.len(), n)?;
        check_len("holds", holds.len(), n)?;
        check_len("room_a", room_a.len(), PHASES * self.paths.nodes())?;
        granted.clear();
        granted.resize(n, 0.0);
        for (i, rank) in self.rank.iter_mut().enumerate() {
            *rank = (u8::from(self.fixed_a[i].is_none()) << 2)
                | (u8::from(session[i] == 0) << 1)
                | u8::from(holds[i] == 0);
        }
        for rank in 0..8 {
            for i in 0..n {
                if self.rank[i] != rank {
                    continue;
                }
                let need = if holds[i] != 0 {
                    failsafe_a
                } else {
                    failsafe_a + GRANT_HYSTERESIS_A
                };
                let path = self.paths.path(i);
                let on = self.paths.phases(i);
                let drawn = (0..PHASES).filter(|&p| on[p]);
                let fits = path.iter().all(|&node| {
                    drawn
                        .clone()
                        .all(|p| room_a[PHASES * node + p] >= need - TOLERANCE_A)
                });
                let take = match self.fixed_a[i] {
                    Some(fixed_a) => fixed_a,
                    None if fits => failsafe_a,
                    None => continue,
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
}

#[cfg(test)]
mod tests {
    use super::*;

    const THREE: [usize; 3] = [0, 1, 2];

    fn seats(nodes: usize, specs: &[(&[usize], &[usize], Option<f64>)]) -> FailsafeSeats {
        let paths: Vec<Vec<usize>> = specs.iter().map(|s| s.0.to_vec()).collect();
        let phases: Vec<Vec<usize>> = specs.iter().map(|s| s.1.to_vec()).collect();
        let fixed: Vec<Option<f64>> = specs.iter().map(|s| s.2).collect();
        FailsafeSeats::new(ConnectorPaths::new(nodes, &paths, &phases).unwrap(), &fixed).unwrap()
    }

    fn share(seats: &mut FailsafeSeats, session: &[u8], holds: &[u8], room: &[f64]) -> Vec<f64> {
        let mut room = room.to_vec();
        let mut granted = Vec::new();
        seats
            .share(session, holds, &mut room, 6.0, &mut granted)
            .unwrap();
        granted
    }

    #[test]
    fn sessions_first_then_by_index_until_the_room_is_used() {
        // 104 three-phase connectors at 6 A under 580 A per phase: 96 fit; under 232 A, 38,
        // all of them with a session.
        let specs: Vec<(&[usize], &[usize], Option<f64>)> = vec![(&[0], &THREE, None); 104];
        let mut all = seats(1, &specs);
        let session: Vec<u8> = (0..104).map(|i| u8::from(i % 2 == 1)).collect();
        let granted = share(&mut all, &session, &[0; 104], &[580.0; 3]);
        assert_eq!(granted.iter().filter(|&&a| a > 0.0).count(), 96);
        let curtailed = share(&mut all, &session, &[0; 104], &[232.0; 3]);
        assert_eq!(curtailed.iter().filter(|&&a| a > 0.0).count(), 38);
        assert!((1..76).step_by(2).all(|i| curtailed[i] == 6.0));
        assert!((0..104).step_by(2).all(|i| curtailed[i] == 0.0));
    }

    #[test]
    fn every_node_on_the_path_and_only_the_phases_drawn_count() {
        let mut five = seats(
            2,
            &[
                (&[1, 0], &THREE, None),
                (&[1, 0], &[0], None),
                (&[1, 0], &[2], None),
                (&[0], &THREE, None),
                (&[0], &THREE, None),
            ],
        );
        let room = [20.0, 20.0, 20.0, 13.0, 13.0, 6.0];
        let granted = share(&mut five, &[0; 5], &[1; 5], &room);
        assert_eq!(granted, vec![6.0, 6.0, 0.0, 6.0, 0.0]);
    }

    #[test]
    fn a_fixed_failsafe_counts_first_and_a_new_grant_needs_more_room() {
        let mut two = seats(1, &[(&[0], &THREE, None), (&[0], &THREE, Some(6.0))]);
        assert_eq!(
            share(&mut two, &[0, 0], &[0, 0], &[13.0; 3]),
            vec![6.0, 6.0]
        );
        assert_eq!(
            share(&mut two, &[0, 0], &[0, 0], &[12.5; 3]),
            vec![0.0, 6.0]
        );
        assert_eq!(
            share(&mut two, &[0, 0], &[1, 0], &[12.5; 3]),
            vec![6.0, 6.0]
        );
        // a fixed one counts even with no room at all, and counts what it is fixed at
        assert_eq!(share(&mut two, &[0, 0], &[1, 0], &[1.0; 3]), vec![0.0, 6.0]);
        let mut low = seats(1, &[(&[0], &THREE, None), (&[0], &THREE, Some(10.0))]);
        assert_eq!(
            share(&mut low, &[0, 0], &[1, 0], &[16.0; 3]),
            vec![6.0, 10.0]
        );
        assert_eq!(
            share(&mut low, &[0, 0], &[1, 0], &[15.0; 3]),
            vec![0.0, 10.0]
        );
    }

    #[test]
    fn the_room_is_used_up_in_place() {
        let mut one = seats(2, &[(&[1, 0], &[1], None)]);
        let mut room = vec![10.0; 6];
        let mut granted = Vec::new();
        one.share(&[1], &[1], &mut room, 6.0, &mut granted).unwrap();
        assert_eq!(room, vec![10.0, 4.0, 10.0, 10.0, 4.0, 10.0]);
    }

    #[test]
    fn columns_that_do_not_fit_are_errors() {
        let paths = ConnectorPaths::new(1, &[vec![0]], &[vec![0]]).unwrap();
        assert!(FailsafeSeats::new(paths, &[]).is_err());
        let mut one = seats(1, &[(&[0], &THREE, None)]);
        let mut granted = Vec::new();
        let err = one
            .share(&[0], &[0], &mut [1.0; 6], 6.0, &mut granted)
            .unwrap_err();
        assert_eq!(err.to_string(), "room_a: 6 values where 3 were expected");
    }
}
