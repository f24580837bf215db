"""The capacity model: from measured costs to the largest site that meets a cycle (`MODEL`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

MODEL = (
    "Work per control cycle of T seconds for N connectors on the gateway's one Python thread: "
    "allocation(N) + ceil(N/2) x Modbus read(N/2) + ceil(N/2) x T x OCPP station load. "
    "allocation(N) is measured at a few sizes, interpolated on a log-log scale and extrapolated "
    "beyond the largest with the last segment's power law. Every 2-connector charger costs one "
    "Modbus FC3 read per cycle (the master's CPU per read, measured with a few numbers of devices "
    "read at once and interpolated the same way: it grows with their number) and is also an OCPP 1.6 station "
    "sending MeterValues every 10 s and a Heartbeat every 60 s (the listener's CPU per message, "
    "WebSocket included); counting both for every charger makes this an upper bound. A cycle is "
    "met when the work fits in the headroom share of it; the rest is left for setpoint writes, "
    "the API, garbage collection and jitter. Not modelled: serial (RTU) line time, TLS, the "
    "cloud uplink, slow devices (their waits overlap: reads run concurrently under one deadline)."
)

HEADROOM = 0.5
"""Share of each cycle the model lets the per-cycle work take."""
CONNECTORS_PER_CHARGER = 2


def loglog(points: dict[int, float], x: int) -> float:
    """`points` (size to seconds) at `x`: interpolated on a log-log scale between the measured
    sizes, the smallest's value below them, the last segment's power law beyond them (a
    non-decreasing one: measurement noise must not make a larger site look cheaper)."""
    sizes = sorted(points)
    if x <= sizes[0] or len(sizes) == 1:
        return points[sizes[0]] if x <= sizes[0] else points[sizes[0]] * x / sizes[0]
    upper = next((s for s in sizes if s >= x), sizes[-1])
    lower = sizes[sizes.index(upper) - 1]
    slope = math.log(points[upper] / points[lower]) / math.log(upper / lower)
    if x > upper:  # beyond the measurements: never cheaper than the largest one
        slope = max(slope, 0.0)
    return float(points[upper] * (x / upper) ** slope)


@dataclass(frozen=True)
class CostModel:
    """Measured costs, in seconds."""

    allocation_s: dict[int, float]
    """One allocation cycle at each measured size (connectors)."""
    modbus_read_s: dict[int, float]
    """Master CPU per device read, at each measured number of devices read at once."""
    ocpp_station_share: float
    """Share of a core one OCPP station takes at the standard rates (CPU s per s)."""

    def allocation_at(self, connectors: int) -> float:
        """Allocation time for `connectors` connectors."""
        return loglog(self.allocation_s, connectors)

    def modbus_read_at(self, devices: int) -> float:
        """Master CPU per read when `devices` devices are read at once."""
        return loglog(self.modbus_read_s, devices)

    def cycle_cost_s(self, connectors: int, cycle_s: float) -> float:
        """CPU seconds per cycle for a site of `connectors` connectors."""
        chargers = math.ceil(connectors / CONNECTORS_PER_CHARGER)
        return (
            self.allocation_at(connectors)
            + chargers * self.modbus_read_at(chargers)
            + chargers * cycle_s * self.ocpp_station_share
        )

    def max_connectors(self, cycle_s: float) -> int:
        """The largest even connector count whose cycle cost fits in `HEADROOM * cycle_s`."""
        budget = HEADROOM * cycle_s
        if self.cycle_cost_s(CONNECTORS_PER_CHARGER, cycle_s) > budget:
            return 0
        low, high = 1, 2
        while self.cycle_cost_s(high * CONNECTORS_PER_CHARGER, cycle_s) <= budget:
            low, high = high, high * 2
        while high - low > 1:  # cost grows with size: bisect on chargers
            mid = (low + high) // 2
            if self.cycle_cost_s(mid * CONNECTORS_PER_CHARGER, cycle_s) <= budget:
                low = mid
            else:
                high = mid
        return low * CONNECTORS_PER_CHARGER
