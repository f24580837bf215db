"""The charging profiles a simulated OCPP station holds, and what they let it offer.

`StationLimits` stores and clears the profiles a CSMS sends (as the station's
personality takes them), answers GetCompositeSchedule, and turns the profiles into
what each connector offers its EV: at most its maximum, nothing under a DC
connector's minimum power, moving at a DC connector's ramp, on the phases the
profile asks for (after a pause, for a charger that needs one).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hubgate.sim import charging_profiles
from hubgate.sim.charging_profiles import LimitProfile
from hubgate.sim.station_personalities import Personality
from hubgate.sim.station_state import ConnectorState, StationEnv

_log = logging.getLogger(__name__)


@dataclass
class StationLimits:
    """One station's charging profiles and the connectors they limit."""

    env: StationEnv
    personality: Personality
    connectors: list[ConnectorState]
    now: Callable[[], datetime]
    """The station's clock (profiles are held on it)."""
    identity: str = ""
    v16: bool = False
    """It speaks OCPP 1.6 (the book's rules differ a little, `charging_profiles.refusal`)."""
    profiles: list[LimitProfile] = field(default_factory=list)

    def connector(self, id: int) -> ConnectorState | None:
        """The connector or EVSE with this id."""
        return next((c for c in self.connectors if c.id == id), None)

    def offer(self, connector: ConnectorState) -> float:
        """What the connector offers its EV now: its profiles' limit, at most its maximum
        (a DC connector: nothing under its minimum power)."""
        if not connector.available or connector.stopped:
            return 0.0
        limit = self.limit_a(connector, self.now())
        return 0.0 if limit < self._minimum_a(connector) else limit

    def no_free_power(self, connector: ConnectorState) -> bool:
        """An idle DC connector of a `no_free_power` personality whose limit is under its
        minimum: it shows itself unavailable and starts no session (evcc-io/evcc#28493)."""
        return (
            self.personality.no_free_power
            and connector.dc is not None
            and connector.tx_id is None
            and self.limit_a(connector, self.now()) < self._minimum_a(connector)
        )

    def limit_a(self, connector: ConnectorState, moment: datetime) -> float:
        """Its profiles' limit at `moment` (A per phase), at most its maximum."""
        dc = connector.dc
        limit = charging_profiles.limit_at(
            self.profiles,
            connector.id,
            moment,
            tx_start=connector.tx_start,
            voltage=self.env.voltage_v,
            phases=self.env.phases(connector.slot),
            ignore_valid_to=self.personality.ignores_valid_to,
            dc_w_per_a=None if dc is None else dc.dc_w(1.0, self.env.voltage_v),
        )
        return connector.max_current_a if limit is None else min(limit, connector.max_current_a)

    def _minimum_a(self, connector: ConnectorState) -> float:
        """The least a DC connector delivers (AC current per phase); 0 for AC."""
        dc = connector.dc
        return 0.0 if dc is None else dc.ac_current_a(dc.min_power_kw * 1000, self.env.voltage_v)

    def apply(self) -> None:
        """Set what each connector offers now (`ConnectorState.offered_a`, its phases);
        expired profiles are discarded (unless its personality keeps applying them)."""
        now = self.now()
        if not self.personality.ignores_valid_to:
            self.profiles = charging_profiles.unexpired(self.profiles, now)
        sim_now = self.env.clock()
        for connector in self.connectors:
            target = self.offer(connector)
            dc = connector.dc
            if dc is not None and dc.ramp_kw_per_s is not None:  # power follows at its ramp
                step = dc.ac_current_a(dc.ramp_kw_per_s * 1000, self.env.voltage_v) * max(
                    sim_now - connector.ramped_at, 0.0
                )
                change = max(-step, min(step, target - connector.offered_a))
                target = connector.offered_a + change
            connector.offered_a, connector.ramped_at = target, sim_now
            if connector.switchable:
                self._switch_phases(connector, now)

    def _switch_phases(self, connector: ConnectorState, now: datetime) -> None:
        """Give the EV the phases its profile's period asks for: at once, or (a personality
        that needs a pause) once it has offered nothing for `phase_switch_pause_s`; until
        then it keeps its phases, whatever the profile says."""
        sim_now = self.env.clock()
        if connector.offered_a > 0:
            connector.paused_since = None
        elif connector.paused_since is None:
            connector.paused_since = sim_now
        period = charging_profiles.applied(
            self.profiles,
            connector.id,
            now,
            tx_start=connector.tx_start,
            voltage=self.env.voltage_v,
            phases=connector.phases,
            ignore_valid_to=self.personality.ignores_valid_to,
        )
        wanted = 3 if period is None or period[1] is None else period[1]
        if wanted == connector.phases or wanted not in (1, 3):
            return
        pause = self.personality.phase_switch_pause_s
        paused = connector.paused_since
        if pause is not None and (paused is None or sim_now - paused < pause):
            return
        connector.phases = wanted
        self.env.switch_phases(connector.slot, wanted)

    # -- requests from the CSMS ---------------------------------------------------

    def set_profile(self, target: int, data: dict[str, Any]) -> str:
        """Store a profile; Accepted or Rejected (as the book says, `charging_profiles.refusal`;
        its personality may refuse one the book allows, or accept one and apply nothing)."""
        if target != 0 and self.connector(target) is None:
            return "Rejected"
        try:
            profile = charging_profiles.parse(data, target, self.now())
        except ValueError:
            return "Rejected"
        purpose = str(data["charging_profile_purpose"])
        if not self.personality.takes(purpose, profile.stack_level, profile.unit):
            return "Rejected"
        connector = self.connector(target)
        why = charging_profiles.refusal(
            profile,
            transaction=connector is not None and connector.tx_id is not None,
            stored=self.profiles,
            v16=self.v16,
            max_profiles=self.personality.max_profiles,
            max_periods=self.personality.max_periods,
        )
        if why is not None:
            _log.info("station %s: profile %d refused: %s", self.identity, profile.id, why)
            return "Rejected"
        if not self.personality.ignores_profiles:
            self.profiles = charging_profiles.replace(self.profiles, profile)
        return "Accepted"

    def clear_profiles(
        self,
        *,
        id: int | None,
        target: int | None,
        purpose: str | None,
        stack_level: int | None,
    ) -> str:
        """Clear the profiles that match every criterion given: Accepted, or Unknown when
        none did."""
        kept = charging_profiles.clear(
            self.profiles, id=id, target=target, purpose=purpose, stack_level=stack_level
        )
        status = "Accepted" if len(kept) < len(self.profiles) else "Unknown"
        self.profiles = kept
        return status

    def composite(self, target: int, duration: int, unit: str | None) -> dict[str, Any] | None:
        """The limits it will apply from now for `duration` s, a period at each change, in
        `unit` (its own when it takes one only, else A)."""
        connector = self.connector(target) if target else None
        if target and connector is None:
            return None
        chosen = [connector] if connector is not None else self.connectors
        units = self.personality.rate_units
        unit = unit if unit in units else units[0]
        start = self.now()
        periods: list[dict[str, float]] = []
        for offset in charging_profiles.changes(self.profiles, start, duration):
            moment = start + timedelta(seconds=offset)
            amperes = min(self.limit_a(c, moment) for c in chosen)
            phases = max(self.env.phases(c.slot) for c in chosen)
            dc = next((c.dc for c in chosen if c.dc is not None), None)
            if unit != "W":
                limit = round(amperes, 1)
            elif dc is not None:
                limit = round(dc.dc_w(amperes, self.env.voltage_v), 1)
            else:
                limit = round(amperes * self.env.voltage_v * phases, 1)
            if not periods or periods[-1]["limit"] != limit:
                periods.append({"start_period": int(offset), "limit": limit})
        return {
            "duration": duration,
            "charging_rate_unit": unit,
            "charging_schedule_period": periods,
        }
