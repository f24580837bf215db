"""When a profiled charger's watchdog is fed (`ProfileCharger.heartbeat_period_s`)."""

from __future__ import annotations

import math

from hubgate.profiles.model import Failsafe, HeartbeatStyle

FED_BY_A_WRITE = frozenset(
    {
        HeartbeatStyle.TOKEN,
        HeartbeatStyle.TOGGLE,
        HeartbeatStyle.COUNTER,
        HeartbeatStyle.TIMEOUT_REWRITE,
    }
)
"""Watchdogs fed by a write of their own: fed as a configuration is verified, before the
setpoint that follows (`ProfileCharger.configure_failsafe`): a device on its fallback takes
a setpoint only while fed (a new leader found a KEBA P30 lapsed and its registers in place,
wrote nothing, and its first setpoint was undone at once)."""


def period_s(
    failsafe: Failsafe, in_force_s: float | None, lease_s: float | None, validity_s: float = 0.0
) -> float | None:
    """The profile's heartbeat period (None: it has no heartbeat), at most half the timeout
    in force (`in_force_s`, as configured and read back); before that is configured, half
    the one it will be (`lease_s`, where hubgate writes it), else half its default. The
    control loop schedules a charger's first beat from the period it reads at the start:
    a KEBA P30 configured with a 4 s timeout and fed every 30 s (its profile's period, for
    its default) fell back to 0 A between the beats. And at most half the longest limit
    validity read (`validity_s`, 0: none; an Alfen's 1208 counts down from the validity time
    set in ACE, documented 60 s: a 20 s one lapsed between the 25 s re-writes)."""
    if failsafe.heartbeat is None:
        return None
    timeout = in_force_s
    if not timeout and (spec := failsafe.timeout) is not None:
        timeout = (lease_s if spec.writable else None) or spec.default_s
    timeout = min(timeout or math.inf, validity_s or math.inf)
    return min(failsafe.heartbeat.period_s, timeout / 2)
