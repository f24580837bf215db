//! The site's connectors as the control cycle sums them per node: each one's path up the
//! node tree (its own node first, the connection last) and the grid phases it draws on
//! (the first of them the one a one-phase setpoint is drawn on), fixed with the site.
//! Per-connector columns go in, per-node columns (three phases per node) come out.

use std::fmt;

/// Phases per node in a per-node column.
pub const PHASES: usize = 3;

/// Paths or columns that do not fit the site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathError {
    /// A connector's path names a node the site does not have.
    NoSuchNode {
        /// The connector's index.
        connector: usize,
        /// The node it names.
        node: usize,
    },
    /// A connector draws on a phase other than 0, 1 or 2.
    NoSuchPhase {
        /// The connector's index.
        connector: usize,
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

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSuchNode { connector, node } => {
                write!(f, "connector {connector}: no node {node} in the site")
            }
            Self::NoSuchPhase { connector, phase } => {
                write!(
                    f,
                    "connector {connector}: no grid phase {phase} (0, 1 or 2)"
                )
            }
            Self::Length {
                what,
                got,
                expected,
            } => write!(f, "{what}: {got} values where {expected} were expected"),
        }
    }
}

impl std::error::Error for PathError {}

/// Checks a column's length.
pub(crate) fn check_len(what: &'static str, got: usize, expected: usize) -> Result<(), PathError> {
    if got == expected {
        Ok(())
    } else {
        Err(PathError::Length {
            what,
            got,
            expected,
        })
    }
}

/// Each connector's path up the tree and its grid phases.
#[derive(Debug, Clone)]
pub struct ConnectorPaths {
    nodes: usize,
    starts: Vec<usize>,
    path: Vec<usize>,
    phases: Vec<[bool; PHASES]>,
    first: Vec<Option<usize>>,
}

impl ConnectorPaths {
    /// Paths in a tree of `nodes` nodes: per connector its node indices and grid phases
    /// (0-2), the one a one-phase setpoint draws on first.
    pub fn new(
        nodes: usize,
        paths: &[Vec<usize>],
        phases: &[Vec<usize>],
    ) -> Result<Self, PathError> {
        check_len("phases", phases.len(), paths.len())?;
        let mut starts = Vec::with_capacity(paths.len() + 1);
        let mut path = Vec::new();
        let mut drawn = Vec::with_capacity(paths.len());
        let mut first = Vec::with_capacity(paths.len());
        for (connector, (nodes_of, phases_of)) in paths.iter().zip(phases).enumerate() {
            starts.push(path.len());
            if let Some(&node) = nodes_of.iter().find(|&&node| node >= nodes) {
                return Err(PathError::NoSuchNode { connector, node });
            }
            path.extend_from_slice(nodes_of);
            let mut on = [false; PHASES];
            for &phase in phases_of {
                *on.get_mut(phase)
                    .ok_or(PathError::NoSuchPhase { connector, phase })? = true;
            }
            drawn.push(on);
            first.push(phases_of.first().copied());
        }
        starts.push(path.len());
        Ok(Self {
            nodes,
            starts,
            path,
            phases: drawn,
            first,
        })
    }

    /// The number of connectors.
    pub fn len(&self) -> usize {
        self.phases.len()
    }

    /// Whether the site has no connectors.
    pub fn is_empty(&self) -> bool {
        self.phases.is_empty()
    }

    /// The number of nodes.
    pub fn nodes(&self) -> usize {
        self.nodes
    }

    /// The nodes the connector at `index` is fed through.
    pub fn path(&self, index: usize) -> &[usize] {
        &self.path[self.starts[index]..self.starts[index + 1]]
    }

    /// The grid phases the connector at `index` draws on.
    pub fn phases(&self, index: usize) -> [bool; PHASES] {
        self.phases[index]
    }

    /// Adds each connector's three phase currents (`per_connector`, all three as given)
    /// to every node on its path, in connector order, into `per_node` (three per node).
    pub fn sum_up(
        &self,
        per_connector: &[[f64; PHASES]],
        per_node: &mut [f64],
    ) -> Result<(), PathError> {
        check_len("per_connector", per_connector.len(), self.len())?;
        check_len("per_node", per_node.len(), PHASES * self.nodes)?;
        for (index, values) in per_connector.iter().enumerate() {
            for &node in self.path(index) {
                for (p, value) in values.iter().enumerate() {
                    per_node[PHASES * node + p] += value;
                }
            }
        }
        Ok(())
    }

    /// Adds each connector's setpoint (`setpoint_a`) to every node on its path, on the grid
    /// phases it is drawn on, into `per_node` (three per node): on `alone_on` where that
    /// is a phase (0-2: a one-phase EV at a three-phase connector; -1: none), else on its
    /// first phase when it is set on one phase (`phases`), else on all of its phases.
    pub fn sum_setpoints(
        &self,
        setpoint_a: &[f64],
        phases: &[u8],
        alone_on: &[i8],
        per_node: &mut [f64],
    ) -> Result<(), PathError> {
        check_len("setpoint_a", setpoint_a.len(), self.len())?;
        check_len("phases", phases.len(), self.len())?;
        check_len("alone_on", alone_on.len(), self.len())?;
        check_len("per_node", per_node.len(), PHASES * self.nodes)?;
        for (connector, &alone) in alone_on.iter().enumerate() {
            if let Ok(phase) = usize::try_from(alone) {
                if phase >= PHASES {
                    return Err(PathError::NoSuchPhase { connector, phase });
                }
            }
        }
        for (index, &amps) in setpoint_a.iter().enumerate() {
            let mut on = self.phases[index];
            let alone = usize::try_from(alone_on[index])
                .ok()
                .or(self.first[index].filter(|_| phases[index] == 1));
            if let Some(phase) = alone {
                on = [false; PHASES];
                on[phase] = true;
            }
            for &node in self.path(index) {
                for (p, _) in on.iter().enumerate().filter(|(_, &drawn)| drawn) {
                    per_node[PHASES * node + p] += amps;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_connector_counts_at_every_node_on_its_path() {
        let paths = ConnectorPaths::new(
            3,
            &[vec![1, 0], vec![2, 1, 0], vec![0]],
            &[vec![0, 1, 2], vec![2], vec![0, 1, 2]],
        )
        .unwrap();
        let mut per_node = vec![0.0; 9];
        paths
            .sum_up(
                &[[1.0, 2.0, 3.0], [0.0, 0.0, 4.0], [10.0, 0.0, 0.0]],
                &mut per_node,
            )
            .unwrap();
        assert_eq!(per_node, vec![11.0, 2.0, 7.0, 1.0, 2.0, 7.0, 0.0, 0.0, 4.0]);
        assert_eq!(paths.path(1), &[2, 1, 0]);
        assert_eq!(paths.phases(1), [false, false, true]);
    }

    #[test]
    fn a_setpoint_counts_on_the_phases_it_is_drawn_on() {
        // connector 0: three-phase, rotated (L1 on grid phase 1), below node 1;
        // connector 1: one-phase on grid phase 2; connector 2: three-phase at the root
        let paths = ConnectorPaths::new(
            2,
            &[vec![1, 0], vec![1, 0], vec![0]],
            &[vec![1, 2, 0], vec![2], vec![0, 1, 2]],
        )
        .unwrap();
        let sums = |phases: &[u8], alone_on: &[i8]| {
            let mut per_node = vec![0.0; 6];
            paths
                .sum_setpoints(&[16.0, 10.0, 6.0], phases, alone_on, &mut per_node)
                .unwrap();
            per_node
        };
        // all on their own phases
        assert_eq!(
            sums(&[3, 1, 3], &[-1, -1, -1]),
            vec![22.0, 22.0, 32.0, 16.0, 16.0, 26.0]
        );
        // connector 0 set on one phase: its first (grid phase 1)
        assert_eq!(
            sums(&[1, 1, 3], &[-1, -1, -1]),
            vec![6.0, 22.0, 16.0, 0.0, 16.0, 10.0]
        );
        // a one-phase EV at connector 2 on grid phase 0, whatever its setpoint's phases
        assert_eq!(
            sums(&[3, 1, 3], &[-1, -1, 0]),
            vec![22.0, 16.0, 26.0, 16.0, 16.0, 26.0]
        );
    }

    #[test]
    fn setpoint_columns_that_do_not_fit_are_errors() {
        let one = ConnectorPaths::new(1, &[vec![0]], &[vec![0, 1, 2]]).unwrap();
        let mut per_node = [0.0; 3];
        let err = one
            .sum_setpoints(&[1.0], &[3], &[3], &mut per_node)
            .unwrap_err();
        assert_eq!(
            err,
            PathError::NoSuchPhase {
                connector: 0,
                phase: 3
            }
        );
        let err = one
            .sum_setpoints(&[1.0], &[3, 3], &[-1], &mut per_node)
            .unwrap_err();
        assert_eq!(err.to_string(), "phases: 2 values where 1 were expected");
        assert_eq!(per_node, [0.0; 3]);
    }

    #[test]
    fn paths_and_columns_that_do_not_fit_are_errors() {
        let err = ConnectorPaths::new(1, &[vec![1]], &[vec![0]]).unwrap_err();
        assert_eq!(
            err,
            PathError::NoSuchNode {
                connector: 0,
                node: 1
            }
        );
        let err = ConnectorPaths::new(1, &[vec![0]], &[vec![3]]).unwrap_err();
        assert_eq!(
            err,
            PathError::NoSuchPhase {
                connector: 0,
                phase: 3
            }
        );
        assert!(ConnectorPaths::new(1, &[vec![0]], &[]).is_err());
        let one = ConnectorPaths::new(1, &[vec![0]], &[vec![0]]).unwrap();
        let err = one.sum_up(&[[1.0; 3]], &mut [0.0; 6]).unwrap_err();
        assert_eq!(err.to_string(), "per_node: 6 values where 3 were expected");
    }
}
