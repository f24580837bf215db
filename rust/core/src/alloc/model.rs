//! The static site model: a tree of nodes with limits, and the connectors
//! hanging from it. Validated once into a [`Topology`].

use std::fmt;

/// Phases of the grid connection (L1, L2, L3).
pub const PHASES: usize = 3;

/// Which grid phases a connector draws on, after the charger's rotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhaseMap {
    /// Always one phase: the grid phase index (0-2).
    Single(u8),
    /// Always all three phases.
    Three,
    /// Switchable between three phases and one phase on the given grid phase.
    Switchable(u8),
}

impl PhaseMap {
    /// From the configuration's words `1p`, `3p` or `switchable`, with the grid
    /// phase (0-2) used on one phase.
    pub fn from_mode(mode: &str, phase: u8) -> Result<Self, TopologyError> {
        match mode {
            "1p" => Ok(Self::Single(phase)),
            "3p" => Ok(Self::Three),
            "switchable" => Ok(Self::Switchable(phase)),
            other => Err(TopologyError::BadPhaseMode(other.to_owned())),
        }
    }

    /// The grid phase used when drawing on one phase.
    pub fn single_phase(self) -> Option<u8> {
        match self {
            Self::Single(p) | Self::Switchable(p) => Some(p),
            Self::Three => None,
        }
    }
}

/// One node of the tree: the grid connection, a transformer, a feeder, a charger.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeSpec {
    /// Index of the parent node; `None` for the root (the grid connection).
    pub parent: Option<usize>,
    /// Current limit per grid phase in A (`f64::INFINITY` for none).
    pub phase_cap_a: [f64; PHASES],
    /// Active power limit in W (`f64::INFINITY` for none).
    pub power_cap_w: f64,
    /// Largest allowed difference between phase currents in A (`f64::INFINITY` for none).
    pub unbalance_cap_a: f64,
}

/// One connector (outlet) and what it may be given.
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectorSpec {
    /// Index of the node it is fed from.
    pub node: usize,
    /// Grid phases it draws on.
    pub phases: PhaseMap,
    /// Minimum current per phase in A; below it the connector pauses.
    pub min_a: f64,
    /// Hardware and cable maximum per phase in A.
    pub max_a: f64,
    /// Setpoint resolution in A (e.g. 0.1 or 1).
    pub step_a: f64,
    /// Share within its priority tier (> 0).
    pub weight: f64,
    /// Priority tier: higher tiers are served first.
    pub priority: u8,
}

/// Timing and policy settings of the allocator. Times in seconds.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Phase-to-neutral voltage used to turn currents into power.
    pub voltage_v: f64,
    /// A connector that started charging keeps its minimum at least this long.
    pub min_on_s: f64,
    /// A connector that was paused stays paused at least this long.
    pub min_off_s: f64,
    /// Shortest time between two increases of one connector's setpoint.
    pub change_interval_s: f64,
    /// Largest increase rate of a setpoint in A/s (`f64::INFINITY` for none).
    pub ramp_a_per_s: f64,
    /// How long a lowered setpoint keeps its old current reserved (EV reaction time).
    pub settle_s: f64,
    /// Shortest time between two 1p/3p switches of one connector.
    pub phase_switch_s: f64,
    /// Most 1p/3p switches per charging session (0 for no limit).
    pub max_phase_switches: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            voltage_v: 230.0,
            min_on_s: 300.0,
            min_off_s: 120.0,
            change_interval_s: 5.0,
            ramp_a_per_s: f64::INFINITY,
            settle_s: 10.0,
            phase_switch_s: 600.0,
            max_phase_switches: 0,
        }
    }
}

/// A site description that cannot be allocated on.
#[derive(Clone, Debug, PartialEq)]
pub enum TopologyError {
    /// The tree has no node.
    NoNodes,
    /// Not exactly one node without a parent.
    RootCount(usize),
    /// A node names a parent index that does not exist (or itself).
    BadParent {
        /// The node.
        node: usize,
        /// Its parent index.
        parent: usize,
    },
    /// Following parents from this node never reaches the root.
    Cycle(usize),
    /// A connector hangs from a node that does not exist.
    BadConnectorNode {
        /// The connector.
        connector: usize,
        /// Its node index.
        node: usize,
    },
    /// A one-phase mapping names a phase other than 0, 1 or 2.
    BadPhase(usize),
    /// A phase mode other than `1p`, `3p` or `switchable`.
    BadPhaseMode(String),
    /// A connector's numbers are out of range.
    BadConnector {
        /// The connector.
        connector: usize,
        /// What is wrong.
        problem: &'static str,
    },
    /// A node's limits are out of range.
    BadNodeLimit {
        /// The node.
        node: usize,
        /// What is wrong.
        problem: &'static str,
    },
    /// A setting is out of range.
    BadSetting(&'static str),
    /// A connector index that does not exist.
    NoSuchConnector(usize),
}

impl fmt::Display for TopologyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoNodes => write!(f, "the tree has no node; give at least the grid connection"),
            Self::RootCount(n) => write!(f, "the tree needs exactly one root node, found {n}"),
            Self::BadParent { node, parent } => {
                write!(
                    f,
                    "node {node} names parent {parent}, which is not another node"
                )
            }
            Self::Cycle(node) => write!(f, "node {node} does not lead to the root (cycle)"),
            Self::BadConnectorNode { connector, node } => {
                write!(
                    f,
                    "connector {connector} hangs from node {node}, which does not exist"
                )
            }
            Self::BadPhase(c) => write!(f, "connector {c}: a one-phase mapping must be 0, 1 or 2"),
            Self::BadPhaseMode(mode) => {
                write!(f, "phases must be '1p', '3p' or 'switchable', got {mode:?}")
            }
            Self::BadConnector { connector, problem } => {
                write!(f, "connector {connector}: {problem}")
            }
            Self::BadNodeLimit { node, problem } => write!(f, "node {node}: {problem}"),
            Self::BadSetting(problem) => write!(f, "settings: {problem}"),
            Self::NoSuchConnector(c) => write!(f, "there is no connector {c}"),
        }
    }
}

impl std::error::Error for TopologyError {}

/// Smallest multiple of `step` that is at least `value` (with a tolerance).
pub(crate) fn ceil_to_step(value: f64, step: f64) -> f64 {
    (value / step - 1e-9).ceil() * step
}

/// Largest multiple of `step` that is at most `value` (with a tolerance).
pub(crate) fn floor_to_step(value: f64, step: f64) -> f64 {
    (value / step + 1e-9).floor() * step
}

/// Bits of `x` that sort as `f64::total_cmp` sorts the floats.
pub(crate) fn ordered_bits(x: f64) -> u64 {
    let bits = x.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    }
}

/// The float whose [`ordered_bits`] are `bits`.
pub(crate) fn from_ordered_bits(bits: u64) -> f64 {
    f64::from_bits(if bits >> 63 == 1 {
        bits & !(1 << 63)
    } else {
        !bits
    })
}

/// A validated site: nodes, connectors, settings and derived lookups.
#[derive(Clone, Debug)]
pub struct Topology {
    pub(crate) nodes: Vec<NodeSpec>,
    pub(crate) connectors: Vec<ConnectorSpec>,
    pub(crate) settings: Settings,
    pub(crate) root: usize,
    /// `path[path_start[n]..path_start[n + 1]]`: node `n` and its ancestors up to the root.
    pub(crate) path: Vec<u32>,
    pub(crate) path_start: Vec<u32>,
    /// Connectors below each node (its subtree), CSR like `path`.
    pub(crate) members: Vec<u32>,
    pub(crate) members_start: Vec<u32>,
    /// Per connector: the minimum and hardware maximum, aligned to its step.
    pub(crate) lo_a: Vec<f64>,
    pub(crate) hi_a: Vec<f64>,
    /// Every connector, highest priority tier first, by index within a tier.
    pub(crate) by_tier: Vec<u32>,
}

fn check_connector(i: usize, c: &ConnectorSpec, nodes: usize) -> Result<(), TopologyError> {
    let bad = |problem| {
        Err(TopologyError::BadConnector {
            connector: i,
            problem,
        })
    };
    if c.node >= nodes {
        return Err(TopologyError::BadConnectorNode {
            connector: i,
            node: c.node,
        });
    }
    if c.phases
        .single_phase()
        .is_some_and(|p| usize::from(p) >= PHASES)
    {
        return Err(TopologyError::BadPhase(i));
    }
    if !(c.step_a.is_finite() && c.step_a > 0.0) {
        return bad("step must be a positive number of A");
    }
    if !(c.min_a.is_finite() && c.min_a > 0.0) {
        return bad("minimum must be a positive number of A");
    }
    if !(c.max_a.is_finite() && c.max_a >= c.min_a) {
        return bad("maximum must be a number of A at least the minimum");
    }
    if !(c.weight.is_finite() && c.weight > 0.0) {
        return bad("weight must be a positive number");
    }
    if ceil_to_step(c.min_a, c.step_a) > floor_to_step(c.max_a, c.step_a) {
        return bad("no multiple of the step lies between minimum and maximum");
    }
    Ok(())
}

fn check_node(i: usize, n: &NodeSpec) -> Result<(), TopologyError> {
    let bad = |problem| Err(TopologyError::BadNodeLimit { node: i, problem });
    if n.phase_cap_a.iter().any(|c| c.is_nan() || *c < 0.0) {
        return bad("phase limits must be numbers of A at least 0 (infinity for none)");
    }
    if n.power_cap_w.is_nan() || n.power_cap_w < 0.0 {
        return bad("power limit must be a number of W at least 0 (infinity for none)");
    }
    if n.unbalance_cap_a.is_nan() || n.unbalance_cap_a < 0.0 {
        return bad("unbalance limit must be a number of A at least 0 (infinity for none)");
    }
    Ok(())
}

fn check_settings(s: &Settings) -> Result<(), TopologyError> {
    let durations = [
        s.min_on_s,
        s.min_off_s,
        s.change_interval_s,
        s.settle_s,
        s.phase_switch_s,
    ];
    if !(s.voltage_v.is_finite() && s.voltage_v > 0.0) {
        return Err(TopologyError::BadSetting(
            "voltage must be a positive number of V",
        ));
    }
    if durations.iter().any(|d| !(d.is_finite() && *d >= 0.0)) {
        return Err(TopologyError::BadSetting(
            "durations must be finite and at least 0 s",
        ));
    }
    if s.ramp_a_per_s.is_nan() || s.ramp_a_per_s <= 0.0 {
        return Err(TopologyError::BadSetting(
            "ramp must be a positive rate in A/s",
        ));
    }
    Ok(())
}

impl Topology {
    /// Validates the tree and the connectors, and derives the lookups.
    pub fn new(
        nodes: Vec<NodeSpec>,
        connectors: Vec<ConnectorSpec>,
        settings: Settings,
    ) -> Result<Self, TopologyError> {
        if nodes.is_empty() {
            return Err(TopologyError::NoNodes);
        }
        check_settings(&settings)?;
        let roots: Vec<usize> = (0..nodes.len())
            .filter(|&i| nodes[i].parent.is_none())
            .collect();
        if roots.len() != 1 {
            return Err(TopologyError::RootCount(roots.len()));
        }
        for (i, n) in nodes.iter().enumerate() {
            check_node(i, n)?;
            if let Some(p) = n.parent {
                if p >= nodes.len() || p == i {
                    return Err(TopologyError::BadParent { node: i, parent: p });
                }
            }
        }
        let mut path = Vec::new();
        let mut path_start = vec![0u32];
        for start in 0..nodes.len() {
            let mut at = Some(start);
            let mut steps = 0;
            while let Some(n) = at {
                steps += 1;
                if steps > nodes.len() {
                    return Err(TopologyError::Cycle(start));
                }
                path.push(n as u32);
                at = nodes[n].parent;
            }
            path_start.push(path.len() as u32);
        }
        for (i, c) in connectors.iter().enumerate() {
            check_connector(i, c, nodes.len())?;
        }
        let mut below: Vec<Vec<u32>> = vec![Vec::new(); nodes.len()];
        for (i, c) in connectors.iter().enumerate() {
            let p = &path[path_start[c.node] as usize..path_start[c.node + 1] as usize];
            for &n in p {
                below[n as usize].push(i as u32);
            }
        }
        let mut members = Vec::new();
        let mut members_start = vec![0u32];
        for list in below {
            members.extend(list);
            members_start.push(members.len() as u32);
        }
        let lo_a = connectors
            .iter()
            .map(|c| ceil_to_step(c.min_a, c.step_a))
            .collect();
        let hi_a = connectors
            .iter()
            .map(|c| floor_to_step(c.max_a, c.step_a))
            .collect();
        let mut topo = Self {
            nodes,
            connectors,
            settings,
            root: roots[0],
            path,
            path_start,
            members,
            members_start,
            lo_a,
            hi_a,
            by_tier: Vec::new(),
        };
        topo.sort_tiers();
        Ok(topo)
    }

    /// Moves connector `i` to priority tier `priority`.
    pub(crate) fn set_priority(&mut self, i: usize, priority: u8) -> Result<(), TopologyError> {
        let connector = self
            .connectors
            .get_mut(i)
            .ok_or(TopologyError::NoSuchConnector(i))?;
        connector.priority = priority;
        self.sort_tiers();
        Ok(())
    }

    /// Orders `by_tier` (again, after a priority change).
    fn sort_tiers(&mut self) {
        let connectors = &self.connectors;
        self.by_tier = (0..connectors.len() as u32).collect();
        self.by_tier
            .sort_by_key(|&i| (u8::MAX - connectors[i as usize].priority, i));
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Number of connectors.
    pub fn connector_count(&self) -> usize {
        self.connectors.len()
    }

    /// The root node (the grid connection).
    pub fn root(&self) -> usize {
        self.root
    }

    /// The nodes as given.
    pub fn nodes(&self) -> &[NodeSpec] {
        &self.nodes
    }

    /// The connectors as given.
    pub fn connectors(&self) -> &[ConnectorSpec] {
        &self.connectors
    }

    /// The settings as given.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Node `n` and its ancestors up to the root.
    pub fn path(&self, n: usize) -> &[u32] {
        &self.path[self.path_start[n] as usize..self.path_start[n + 1] as usize]
    }

    /// Connectors in the subtree of node `n`.
    pub fn members(&self, n: usize) -> &[u32] {
        &self.members[self.members_start[n] as usize..self.members_start[n + 1] as usize]
    }

    /// Minimum of connector `i` aligned up to its step.
    pub fn lo(&self, i: usize) -> f64 {
        self.lo_a[i]
    }

    /// Hardware maximum of connector `i` aligned down to its step.
    pub fn hi(&self, i: usize) -> f64 {
        self.hi_a[i]
    }
}

#[cfg(test)]
mod tests {
    use super::{from_ordered_bits, ordered_bits};

    #[test]
    fn ordered_bits_sort_like_total_cmp_and_round_trip() {
        let values = [
            f64::NEG_INFINITY,
            -2.5,
            -0.0,
            0.0,
            1e-300,
            6.0,
            1e9,
            f64::INFINITY,
        ];
        for pair in values.windows(2) {
            assert!(ordered_bits(pair[0]) < ordered_bits(pair[1]), "{pair:?}");
        }
        for v in values {
            assert_eq!(from_ordered_bits(ordered_bits(v)).to_bits(), v.to_bits());
        }
    }
}
