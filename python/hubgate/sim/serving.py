"""Running a `WireSite`: in the foreground (`serve`, for the CLI) or in a thread (`site_thread`).

The site lives on its own asyncio loop; a thread keeps it away from any Trio
code in the same process (tests, benchmarks), and `SiteThread.call` runs a
function or coroutine on that loop and waits for its result.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from hubgate.sim.engine import Simulation
from hubgate.sim.scenario_loader import LoadedScenario
from hubgate.sim.wire_site import WireSite

T = TypeVar("T")


def listing_lines(site: WireSite) -> list[str]:
    """One line per device: where it listens or which URL it dials."""
    lines = []
    for box in site.boxes.values():
        units = ",".join(str(u) for u in box.units[: len(box.devices)])
        serial = f" (site file: serial {box.serial})" if box.serial else ""
        lines.append(
            f"modbus {box.kind:<13} {box.id:<20} {box.host}:{box.port} unit {units} "
            f"[{box.profile}]{serial}"
        )
    for station in site.stations:
        lines.append(
            f"ocpp   {station.version.value:<13} {station.charger.id:<20} dials {station.listing()['url']}"
        )
    return lines


def write_listing(site: WireSite, path: Path) -> None:
    """The listing as JSON."""
    path.write_text(json.dumps(site.listing(), indent=2) + "\n", encoding="utf-8")


async def serve(
    site: WireSite,
    duration_s: float,
    speed: float,
    *,
    listing: Path | None = None,
    on_start: Callable[[WireSite], None] | None = None,
    on_step: Callable[[Simulation], None] | None = None,
) -> None:
    """Start the site, announce it, run it for `duration_s` simulated seconds, close it."""
    try:
        await site.start()
        if listing is not None:
            write_listing(site, listing)
        if on_start is not None:
            on_start(site)
        await site.run(duration_s, speed, on_step)
    finally:
        await site.close()


class SiteThread:
    """A started `WireSite` on an asyncio loop in a background thread."""

    def __init__(self, site: WireSite, loop: asyncio.AbstractEventLoop) -> None:
        self.site = site
        self.loop = loop

    def call(self, function: Callable[[], T], timeout: float = 30.0) -> T:
        """Run `function` on the site's loop and return its result."""

        async def run() -> T:
            return function()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)

    def advance(self, seconds: float, timeout: float = 30.0) -> None:
        """Step `seconds` of simulated time as fast as possible."""
        asyncio.run_coroutine_threadsafe(self.site.advance(seconds), self.loop).result(timeout)


@contextmanager
def site_thread(loaded: LoadedScenario, **options: object) -> Iterator[SiteThread]:
    """Build and start a `WireSite` (options as for `WireSite`) in a thread; close it after."""
    ready = threading.Event()
    stop: dict[str, asyncio.Event] = {}
    box: dict[str, object] = {}

    async def main() -> None:
        site = WireSite(loaded, **options)  # type: ignore[arg-type]
        try:
            await site.start()
        except BaseException as error:
            box["error"] = error
            ready.set()
            await site.close()
            raise
        box["thread"] = SiteThread(site, asyncio.get_running_loop())
        stop["event"] = asyncio.Event()
        ready.set()
        try:
            await stop["event"].wait()
        finally:
            await site.close()

    thread = threading.Thread(target=lambda: asyncio.run(main()), name="sim-site", daemon=True)
    thread.start()
    if not ready.wait(60):
        raise RuntimeError("the simulated site did not start within 60 s")
    error = box.get("error")
    if isinstance(error, BaseException):
        raise RuntimeError(f"the simulated site did not start: {error}") from error
    running = box["thread"]
    assert isinstance(running, SiteThread)
    try:
        yield running
    finally:
        running.loop.call_soon_threadsafe(stop["event"].set)
        thread.join(30)
