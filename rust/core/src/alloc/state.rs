//! What the allocator remembers about each connector between cycles.

use super::model::{PhaseMap, PHASES};

/// One connector's memory: its last setpoint and the times that dwell,
/// interval and settle rules count from.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ConnectorState {
    pub(crate) wanting: bool,
    /// Last setpoint sent (A per phase) and its phase count.
    pub(crate) setpoint: f64,
    pub(crate) phases: u8,
    /// When the setpoint last went from 0 to above 0.
    pub(crate) on_since: f64,
    /// When admission last paused it (minus infinity if never this session).
    pub(crate) off_since: f64,
    /// Rotation key: when it last started waiting for current.
    pub(crate) queue_since: f64,
    /// When the setpoint last changed.
    pub(crate) changed_at: f64,
    /// That change was a decrease.
    pub(crate) lowered: bool,
    /// ... and a reading since showed its EV followed it (`confirm_followed`): an
    /// increase need not wait out the change interval.
    pub(crate) lowered_followed: bool,
    /// Draw kept reserved after a decrease until `reserve_until` (EV reaction time).
    pub(crate) reserve_phase_a: [f64; PHASES],
    pub(crate) reserve_power_w: f64,
    pub(crate) reserve_until: f64,
    /// Last 1p/3p switch and switches this session.
    pub(crate) last_switch: f64,
    pub(crate) switches: u32,
}

impl ConnectorState {
    pub(crate) fn new(map: PhaseMap) -> Self {
        Self {
            wanting: false,
            setpoint: 0.0,
            phases: default_phases(map),
            on_since: f64::NEG_INFINITY,
            off_since: f64::NEG_INFINITY,
            queue_since: f64::NEG_INFINITY,
            changed_at: f64::NEG_INFINITY,
            lowered: false,
            lowered_followed: false,
            reserve_phase_a: [0.0; PHASES],
            reserve_power_w: 0.0,
            reserve_until: f64::NEG_INFINITY,
            last_switch: f64::NEG_INFINITY,
            switches: 0,
        }
    }

    pub(crate) fn is_on(&self) -> bool {
        self.setpoint > 0.0
    }

    /// Starts a new session (the EV left or stopped asking).
    pub(crate) fn end_session(&mut self, map: PhaseMap) {
        self.wanting = false;
        self.phases = default_phases(map);
        self.off_since = f64::NEG_INFINITY;
        self.switches = 0;
        self.last_switch = f64::NEG_INFINITY;
    }
}

/// Phase count a connector starts a session with.
pub(crate) fn default_phases(map: PhaseMap) -> u8 {
    match map {
        PhaseMap::Single(_) => 1,
        PhaseMap::Three | PhaseMap::Switchable(_) => 3,
    }
}

/// Per-phase currents and power of `amps` per phase on `mode` phases.
pub(crate) fn draw(map: PhaseMap, mode: u8, amps: f64, voltage: f64) -> ([f64; PHASES], f64) {
    let mut phase = [0.0; PHASES];
    if amps <= 0.0 {
        return (phase, 0.0);
    }
    match (mode, map.single_phase()) {
        (1, Some(p)) => phase[usize::from(p)] = amps,
        _ => phase = [amps; PHASES],
    }
    (phase, amps * f64::from(mode) * voltage)
}
