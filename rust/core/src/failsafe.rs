//! The failsafe budget: the current each connector's charger is configured to fall back to
//! without the gateway, shared so that those fallbacks fit every node's limit in force.
//!
//! When the gateway stops, or its leases lapse, each charger draws its device-side
//! failsafe current and nobody is left to lower it. So the failsafes are shared out like a
//! budget: per node and phase, the room left under its limit in force by the load that is
//! not EVs; each connector in turn gets the site's failsafe current where every node on its
//! path still has room for it on its phases, else 0 (an EV pauses on it). Connectors whose
//! failsafe the gateway cannot set (a device with a fixed fallback) take theirs first and
//! count it whatever the room; then connectors with a session, then the ones that hold it
//! already (no churn: a new grant needs [`GRANT_HYSTERESIS_A`] more room), then by index.
//!
//! The connectors' paths and phases are fixed with the site ([`FailsafeSeats::new`]); each
//! cycle hands in two flag columns and the room, and gets one column back.

use std::fmt;

/// A connector not holding the failsafe current gets it only with this much more room than
/// it takes, so that a base load wavering at the edge does not reconfigure it every cycle.
pub const GRANT_HYSTERESIS_A: f64 = 1.0;

/// Room this close to the need still fits (float sums of the limits and loads).
const TOLERANCE_A: f64 = 1e-9;

/// Phases per node in the room column.
const PHASES: usize = 3;

/// Seats or a cycle's columns that do not fit together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailsafeError {
    /// A seat's path names a node the room column does not have.
    NoSuchNode {
        /// The connector's index.
        seat: usize,
        /// The node it names.
        node: usize,
    },
    /// A seat draws on a phase other than 0, 1 or 2.
    NoSuchPhase {
        /// The connector's index.
        seat: usize,
        /// The phase it names.
        phase: usize,
    },
    /// A column of the wrong length.
    Length {
        /// The column.
        what: &'static str,
        /// Its length.
        got: usize,
        /// The length it must have.
        expected: usize,
    },
}

impl fmt::Display for FailsafeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSuchNode { seat, node } => {
                write!(f, "connector {seat}: no node {node} in the site")
            }
            Self::NoSuchPhase { seat, phase } => {
                write!(f, "connector {seat}: no grid phase {phase} (0, 1 or 2)")
            }
            Self::Length {
                what,
                got,
                expected,
            } => write!(f, "{what}: {got} values where {expected} were expected"),
        }
    }
}

impl std::error::Error for FailsafeError {}

/// The site's connectors as the failsafe budget sees them: each one's path (its node first,
/// the connection last), its grid phases and whether its failsafe is fixed on the device.
#[derive(Debug, Clone)]
pub struct FailsafeSeats {
    nodes: usize,
    starts: Vec<usize>,
    path: Vec<usize>,
    phases: Vec<[bool; PHASES]>,
    fixed: Vec<bool>,
    rank: Vec<u8>,
}

impl FailsafeSeats {
    /// Seats for `nodes` nodes: per connector its path of node indices, its grid phases
    /// (0-2) and whether its failsafe is set on the device (`fixed`).
    pub fn new(
        nodes: usize,
        paths: &[Vec<usize>],
        phases: &[Vec<usize>],
        fixed: &[bool],
    ) -> Result<Self, FailsafeError> {
        let n = paths.len();
        check_len("phases", phases.len(), n)?;
        check_len("fixed", fixed.len(), n)?;
        let mut starts = Vec::with_capacity(n + 1);
        let mut path = Vec::new();
        let mut drawn = Vec::with_capacity(n);
        for (seat, (nodes_of, phases_of)) in paths.iter().zip(phases).enumerate() {
            starts.push(path.len());
            if let Some(&node) = nodes_of.iter().find(|&&node| node >= nodes) {
                return Err(FailsafeError::NoSuchNode { seat, node });
            }
            path.extend_from_slice(nodes_of);
            let mut on = [false; PHASES];
            for &phase in phases_of {
                *on.get_mut(phase)
                    .ok_or(FailsafeError::NoSuchPhase { seat, phase })? = true;
            }
            drawn.push(on);
        }
        starts.push(path.len());
        Ok(Self {
            nodes,
            starts,
            path,
            phases: drawn,
            fixed: fixed.to_vec(),
            rank: vec![0; n],
        })
    }

    /// The number of connectors.
    pub fn len(&self) -> usize {
        self.fixed.len()
    }

    /// Whether the site has no connectors.
    pub fn is_empty(&self) -> bool {
        self.fixed.is_empty()
    }

    /// Per connector, the current it is to be configured with, `failsafe_a` or 0, into
    /// `granted`. `session`/`holds`: per connector, whether an EV is plugged in and whether
    /// it is configured with `failsafe_a` now (nonzero: yes); `room_a`: per node, A per
    /// phase, used up in place.
    pub fn share(
        &mut self,
        session: &[u8],
        holds: &[u8],
        room_a: &mut [f64],
        failsafe_a: f64,
        granted: &mut Vec<f64>,
    ) -> Result<(), FailsafeError> {
        let n = self.len();
        check_len("session", session.len(), n)?;
        check_len("holds", holds.len(), n)?;
        check_len("room_a", room_a.len(), PHASES * self.nodes)?;
        granted.clear();
        granted.resize(n, 0.0);
        for (i, rank) in self.rank.iter_mut().enumerate() {
            *rank = (u8::from(!self.fixed[i]) << 2)
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
                let path = &self.path[self.starts[i]..self.starts[i + 1]];
                let on = self.phases[i];
                let drawn = (0..PHASES).filter(|&p| on[p]);
                let fits = path.iter().all(|&node| {
                    drawn
                        .clone()
                        .all(|p| room_a[PHASES * node + p] >= need - TOLERANCE_A)
                });
                if fits || self.fixed[i] {
                    granted[i] = failsafe_a;
                    for &node in path {
                        for p in drawn.clone() {
                            room_a[PHASES * node + p] -= failsafe_a;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

fn check_len(what: &'static str, got: usize, expected: usize) -> Result<(), FailsafeError> {
    if got == expected {
        Ok(())
    } else {
        Err(FailsafeError::Length {
            what,
            got,
            expected,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const THREE: [usize; 3] = [0, 1, 2];

    fn seats(nodes: usize, specs: &[(&[usize], &[usize], bool)]) -> FailsafeSeats {
        let paths: Vec<Vec<usize>> = specs.iter().map(|s| s.0.to_vec()).collect();
        let phases: Vec<Vec<usize>> = specs.iter().map(|s| s.1.to_vec()).collect();
        let fixed: Vec<bool> = specs.iter().map(|s| s.2).collect();
        FailsafeSeats::new(nodes, &paths, &phases, &fixed).unwrap()
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
        let specs: Vec<(&[usize], &[usize], bool)> = vec![(&[0], &THREE, false); 104];
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
                (&[1, 0], &THREE, false),
                (&[1, 0], &[0], false),
                (&[1, 0], &[2], false),
                (&[0], &THREE, false),
                (&[0], &THREE, false),
            ],
        );
        let room = [20.0, 20.0, 20.0, 13.0, 13.0, 6.0];
        let granted = share(&mut five, &[0; 5], &[1; 5], &room);
        assert_eq!(granted, vec![6.0, 6.0, 0.0, 6.0, 0.0]);
    }

    #[test]
    fn a_fixed_failsafe_counts_first_and_a_new_grant_needs_more_room() {
        let mut two = seats(1, &[(&[0], &THREE, false), (&[0], &THREE, true)]);
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
        // a fixed one counts even with no room at all
        assert_eq!(share(&mut two, &[0, 0], &[1, 0], &[1.0; 3]), vec![0.0, 6.0]);
    }

    #[test]
    fn the_room_is_used_up_in_place() {
        let mut one = seats(2, &[(&[1, 0], &[1], false)]);
        let mut room = vec![10.0; 6];
        let mut granted = Vec::new();
        one.share(&[1], &[1], &mut room, 6.0, &mut granted).unwrap();
        assert_eq!(room, vec![10.0, 4.0, 10.0, 10.0, 4.0, 10.0]);
    }

    #[test]
    fn seats_and_columns_that_do_not_fit_are_errors() {
        let err = FailsafeSeats::new(1, &[vec![1]], &[vec![0]], &[false]).unwrap_err();
        assert_eq!(err, FailsafeError::NoSuchNode { seat: 0, node: 1 });
        let err = FailsafeSeats::new(1, &[vec![0]], &[vec![3]], &[false]).unwrap_err();
        assert_eq!(err, FailsafeError::NoSuchPhase { seat: 0, phase: 3 });
        assert!(FailsafeSeats::new(1, &[vec![0]], &[], &[false]).is_err());
        let mut one = seats(1, &[(&[0], &THREE, false)]);
        let mut granted = Vec::new();
        let err = one
            .share(&[0], &[0], &mut [1.0; 6], 6.0, &mut granted)
            .unwrap_err();
        assert_eq!(err.to_string(), "room_a: 6 values where 3 were expected");
    }
}
