"""A simulated Modbus device's clock: its master's (the wall clock) while one is connected,
simulated time while none is.

A real device times its watchdog (or a SunSpec revert timer) on its own clock, which
runs at the rate of the master's: a gateway that feeds a 60 s watchdog every 25 s
never lets it expire. In protocol mode the site may run faster than real time while
the gateway lives on the wall clock, so a watchdog on simulated time would expire
between two feeds of a healthy gateway (at 4x, 60 simulated seconds are 15 wall
seconds). Hence, as for the OCPP stations (`station_clock`):

- while a master holds a connection to the device, its clock runs at the wall
  clock's rate, so a watchdog lasts as long as the master means it to, whatever the
  speed; a master that hangs with its connection open lets it expire in wall time,
  as a real one would;
- while no master is connected (the gateway died and its connections closed, or the
  device dropped off the network) it runs at the simulation's rate, so a watchdog
  left armed expires after its length in simulated seconds.

Sans-IO at its core (`advance`); `DeviceClock` reads the two clocks and the link.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class DeviceClock:
    """Seconds on a simulated device's clock (a `sim.simulated_device.Clock`)."""

    def __init__(
        self,
        simulated: Callable[[], float],
        linked: Callable[[], bool],
        wall: Callable[[], float] = time.monotonic,
    ) -> None:
        """`simulated` gives simulated seconds, `linked` whether a master is connected."""
        self._simulated = simulated
        self._linked = linked
        self._wall = wall
        self._lock = threading.Lock()  # asked from the server's thread and the stepper's
        self._was_linked = False
        self._at = 0.0
        """Device seconds at the last change of link (or the start)."""
        self._since = (simulated(), wall())
        """(simulated, wall) seconds at that moment."""

    def __call__(self) -> float:
        with self._lock:
            return self.advance(self._simulated(), self._wall(), self._linked())

    def advance(self, simulated_s: float, wall_s: float, linked: bool) -> float:
        """Device seconds at these simulated and wall times, with the link as it is now:
        the time since the last change runs at the rate of the clock that ruled it."""
        sim_since, wall_since = self._since
        elapsed = (wall_s - wall_since) if self._was_linked else (simulated_s - sim_since)
        now = self._at + max(elapsed, 0.0)
        if linked != self._was_linked:
            self._was_linked = linked
            self._at = now
            self._since = (simulated_s, wall_s)
        return now
