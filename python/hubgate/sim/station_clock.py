"""A simulated station's clock: the CSMS's while connected, free-running on simulated time when not.

A real charger sets its clock from the CSMS (BootNotification and Heartbeat
`currentTime`) and holds charging profiles (`validTo`, `startSchedule`) on that
clock. In the simulator the CSMS (a gateway, say) lives on the wall clock while the
site may run faster than real time, so a station that read profiles on simulated
time would see a gateway's lease lapse within a fraction of its length. Hence:

- while the link to the CSMS is up, the station's clock is the CSMS's: the wall
  clock plus the offset learned from its last `currentTime` (midpoint of the
  exchange), so a lease lasts as long as the CSMS means it to, whatever the speed;
- when the link is down (the CSMS died, the scenario took the charger off the
  network) it runs on from the last CSMS time it knew at the simulation's rate, so a
  lease left behind lapses after its remaining length in simulated seconds.

Before any CSMS was heard from, it runs on simulated time from the site's origin.
Sans-IO: wall and simulated times are inputs.
"""

from __future__ import annotations

from datetime import datetime, timedelta


class StationClock:
    """What time a simulated station believes it is."""

    def __init__(self, origin: datetime) -> None:
        self._offset = timedelta(0)
        """The CSMS's clock minus the wall clock, from its last `currentTime`."""
        self._anchor: tuple[datetime, float] | None = (origin, 0.0)
        """(station time, simulated s) when the link went down; None while it is up."""

    @property
    def linked(self) -> bool:
        """Whether the clock follows the CSMS (the link is up)."""
        return self._anchor is None

    def now(self, wall: datetime, sim_s: float) -> datetime:
        """The station's time, at wall-clock time `wall` and simulated time `sim_s`."""
        if self._anchor is None:
            return wall + self._offset
        at, since = self._anchor
        return at + timedelta(seconds=sim_s - since)

    def link_up(self) -> None:
        """The station is connected to its CSMS: follow its clock from now on."""
        self._anchor = None

    def link_down(self, wall: datetime, sim_s: float) -> None:
        """The connection is gone: run on from the CSMS's time now, on simulated time."""
        if self._anchor is None:
            self._anchor = (wall + self._offset, sim_s)

    def sync(self, current_time: datetime, sent: datetime, received: datetime) -> None:
        """Learn the CSMS's clock from a `currentTime` answered to a request sent at wall
        time `sent` and received at `received`."""
        self._offset = current_time - (sent + (received - sent) / 2)
