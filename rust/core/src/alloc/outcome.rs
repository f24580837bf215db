//! What the allocator hands back per connector, and why.

/// Why a connector got the setpoint it got: the decision log's vocabulary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Reason {
    /// Unplugged, or the EV does not ask for current.
    NotWanting = 0,
    /// At its own maximum (hardware, cable, EV limit or draw estimate).
    OwnMaximum = 1,
    /// Held by a node's per-phase current limit (binding node and phase).
    PhaseCurrent = 2,
    /// Held by a node's active power limit (binding node).
    Power = 3,
    /// Held or paused by a node's phase-unbalance limit (binding node and phase).
    Unbalance = 4,
    /// Held by the grid operator's limit.
    GridOperator = 5,
    /// Held by the contract or peak-shaving target.
    PeakTarget = 6,
    /// Held by the PV surplus and battery budget (PV mode only).
    PvBudget = 7,
    /// Paused: its minimum does not fit (binding node and phase where known).
    PausedNoCapacity = 8,
    /// Paused: waiting out the minimum off time after a pause.
    PausedMinOff = 9,
    /// Increase limited by the ramp rate.
    Ramping = 10,
    /// Increase waits for the per-connector change interval.
    ChangeInterval = 11,
    /// Increase waits until freed current is confirmed (binding node and phase).
    AwaitingHeadroom = 12,
}

impl Reason {
    /// Every reason, indexed by its code (`reason as u8`).
    pub const ALL: [Reason; 13] = [
        Self::NotWanting,
        Self::OwnMaximum,
        Self::PhaseCurrent,
        Self::Power,
        Self::Unbalance,
        Self::GridOperator,
        Self::PeakTarget,
        Self::PvBudget,
        Self::PausedNoCapacity,
        Self::PausedMinOff,
        Self::Ramping,
        Self::ChangeInterval,
        Self::AwaitingHeadroom,
    ];
}

/// One cycle's result, one entry per connector (buffers reused across cycles).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Allocation {
    /// The setpoint to send now, in A per phase (0 = paused).
    pub setpoint_a: Vec<f64>,
    /// The fair target before transition shaping, in A per phase.
    pub target_a: Vec<f64>,
    /// The exact weighted max-min fair share before rounding to steps (0 if not admitted).
    pub fair_a: Vec<f64>,
    /// Phases the connector draws on (1 or 3).
    pub phases: Vec<u8>,
    /// Why it got its setpoint.
    pub reason: Vec<Reason>,
    /// The node of the binding limit, or -1.
    pub binding_node: Vec<i32>,
    /// The grid phase (0-2) of the binding limit, or -1 for power limits and none.
    pub binding_phase: Vec<i8>,
}

impl Allocation {
    pub(crate) fn resize(&mut self, n: usize) {
        self.setpoint_a.resize(n, 0.0);
        self.target_a.resize(n, 0.0);
        self.fair_a.resize(n, 0.0);
        self.phases.resize(n, 3);
        self.reason.resize(n, Reason::NotWanting);
        self.binding_node.resize(n, -1);
        self.binding_phase.resize(n, -1);
    }

    pub(crate) fn set_reason(&mut self, i: usize, (reason, node, phase): (Reason, i32, i8)) {
        self.reason[i] = reason;
        self.binding_node[i] = node;
        self.binding_phase[i] = phase;
    }
}

#[cfg(test)]
mod tests {
    use super::Reason;

    #[test]
    fn all_is_indexed_by_code() {
        for (code, reason) in Reason::ALL.iter().enumerate() {
            assert_eq!(*reason as usize, code);
        }
    }
}
