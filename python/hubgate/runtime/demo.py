"""The demo: the site simulator on loopback in protocol mode and the gateway controlling it.

The simulated site (`hubgate.sim.serving.site_thread`) serves every Modbus
device on a free loopback port and dials the gateway's OCPP listener with every
station; the gateway is given the site file rewired to those ports. Simulated
time follows the wall clock at `speed`, one step per control cycle, and the
safety recorder's summary tells whether any limit was exceeded beyond the
chargers' reaction time.
"""

from __future__ import annotations

import random
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field, replace

import trio

from hubgate.config.model import ModbusEndpoint, SiteConfig
from hubgate.records.store import EventQuery
from hubgate.runtime.gateway import Gateway, open_gateway
from hubgate.sim.engine import Simulation
from hubgate.sim.recorder import Summary
from hubgate.sim.scenario import Event as ScenarioEvent
from hubgate.sim.scenario import EventKind
from hubgate.sim.scenario_loader import LoadedScenario
from hubgate.sim.serving import SiteThread, site_thread
from hubgate.sim.wire_site import GRID_OPERATOR_BOX

LOOPBACK = "127.0.0.1"


LISTEN_PORTS = range(20_000, 32_000)
"""Where the OCPP port is picked: below Linux's ephemeral range (32768-60999), because a
station that dials a port nobody listens on yet can otherwise connect to itself from an
ephemeral port equal to it and hold the port the gateway is about to take."""


def held_port() -> socket.socket:
    """A loopback socket bound to a free port below the ephemeral range and not listening:
    no other process can bind the port until the socket is closed, and a connection to it is
    refused, as to a port nobody listens on. Closed right before its listener binds it."""
    for port in random.sample(LISTEN_PORTS, 50):
        if (holder := hold(port)) is not None:
            return holder
    raise OSError("no free loopback port found in 20000-31999")


def hold(port: int) -> socket.socket | None:
    """A loopback socket bound to `port`, not listening; None when another socket has it."""
    holder = socket.socket()
    try:
        holder.bind((LOOPBACK, port))
    except OSError:
        holder.close()
        return None
    return holder


def rewired(site: SiteConfig, ports: dict[str, int], ocpp_port: int, api_port: int) -> SiteConfig:
    """`site` with every Modbus device at its simulated port, the listeners on loopback."""

    def at(device_id: str, endpoint: ModbusEndpoint) -> ModbusEndpoint:
        return endpoint.model_copy(
            update={
                "host": LOOPBACK,
                "port": ports[device_id],
                "serial": None,
                "rtu_over_tcp": False,
            }
        )

    update: dict[str, object] = {
        "chargers": tuple(
            c if c.modbus is None else c.model_copy(update={"modbus": at(c.id, c.modbus)})
            for c in site.chargers
        ),
        "meters": tuple(m.model_copy(update={"modbus": at(m.id, m.modbus)}) for m in site.meters),
        "ocpp": site.ocpp.model_copy(update={"host": LOOPBACK, "port": ocpp_port}),
        "api": site.api.model_copy(update={"port": api_port}),
        "battery": None
        if site.battery is None
        else site.battery.model_copy(update={"modbus": at(site.battery.id, site.battery.modbus)}),
        "pv": tuple(p.model_copy(update={"modbus": at(p.id, p.modbus)}) for p in site.pv),
        "csms": None,
        "mqtt": None,
    }
    if site.modbus_server is not None:
        update["modbus_server"] = site.modbus_server.model_copy(update={"port": 0})
    operator = site.grid_operator
    if operator is not None and operator.modbus is not None:
        update["grid_operator"] = operator.model_copy(
            update={"modbus": at(GRID_OPERATOR_BOX, operator.modbus)}
        )
    return site.model_copy(update=update)


def fitted(loaded: LoadedScenario, duration_s: float) -> tuple[LoadedScenario, float]:
    """The scenario for a demo of `duration_s`, and the factor its events' times were scaled
    by: a demo too short for its first event sees it at half its length, the later events
    and every event's duration scaled alike (1.0: the scenario as it is)."""
    events = loaded.scenario.events
    first = min((event.at_s for event in events), default=0.0)
    if first <= duration_s / 2:
        return loaded, 1.0
    factor = duration_s / 2 / first
    scaled = tuple(
        event.model_copy(
            update={
                "at_s": event.at_s * factor,
                "duration_s": None if event.duration_s is None else event.duration_s * factor,
            }
        )
        for event in events
    )
    scenario = loaded.scenario.model_copy(update={"events": scaled})
    return replace(loaded, scenario=scenario), factor


def scenario_steps(events: tuple[ScenarioEvent, ...]) -> list[tuple[float, str]]:
    """What the scenario does and when (simulated seconds from its start), in order."""
    steps: list[tuple[float, str]] = []
    for event in events:
        what, back = _describe(event)
        lasting = "" if event.duration_s is None else f" for {event.duration_s:g} s"
        steps.append((event.at_s, f"{what}{lasting}"))
        if event.duration_s is not None:
            steps.append((event.at_s + event.duration_s, back))
    return sorted(steps, key=lambda step: step[0])


def _describe(event: ScenarioEvent) -> tuple[str, str]:
    kind = event.kind
    if kind is EventKind.GRID_LIMIT:
        return (
            f"the grid operator limits the connection to {event.percent:g} %",
            "the grid operator's limit is lifted (100 %)",
        )
    if kind is EventKind.METER_DIES:
        return f"meter {event.meter} stops answering", f"meter {event.meter} answers again"
    if kind is EventKind.CHARGER_OFFLINE:
        return f"charger {event.charger} goes offline", f"charger {event.charger} is back online"
    if kind is EventKind.CSMS_DOWN:
        return "the CSMS goes down", "the CSMS is back"
    pv = event.pv or "every PV"
    return f"a cloud takes {event.depth_percent:g} % from {pv}", f"the cloud over {pv} passes"


@dataclass
class Demo:
    """The simulated site and the gateway that controls it."""

    sim_site: SiteThread
    gateway: Gateway
    elapsed_s: float = 0.0
    """Simulated time advanced so far."""
    _advanced: trio.Event = field(default_factory=trio.Event)

    async def advance(self, seconds: float) -> None:
        """Step the simulation by `seconds` of simulated time."""
        await trio.to_thread.run_sync(self.sim_site.advance, seconds)
        self.elapsed_s += seconds
        self._advanced.set()
        self._advanced = trio.Event()

    async def narrate(self, say: Callable[[str], None]) -> None:
        """Tell what happens, forever: each scenario step when its time comes, and every
        event the gateway logs, from its first (`say` takes one line)."""
        steps = scenario_steps(self.sim_site.site.sim.scenario.events)
        events = self.gateway.loop.events
        seen = 0
        async with trio.open_nursery() as nursery:

            async def gateway_events() -> None:
                nonlocal seen
                while True:
                    newest = await events.wait_newer(seen)
                    for event in events.query(EventQuery(after_id=seen, limit=1000)):
                        say(f"gateway {event.severity}: {event.line()}")
                    seen = newest

            nursery.start_soon(gateway_events)
            for at_s, what in steps:
                while self.elapsed_s < at_s:
                    await self._advanced.wait()
                say(f"scenario at {at_s:g} s: {what}")

    async def pace(self) -> None:
        """Advance simulated time by one control period every control period, forever."""
        period = self.gateway.site.control.cycle_s
        while True:
            await trio.sleep(period)
            await self.advance(period)

    async def simulation(self, read: Callable[[Simulation], object]) -> object:
        """Run `read` on the simulation in its own thread."""
        sim = self.sim_site.site.sim
        return await trio.to_thread.run_sync(self.sim_site.call, lambda: read(sim))

    async def summary(self) -> Summary:
        """The safety recorder's summary so far."""
        sim = self.sim_site.site.sim
        return await trio.to_thread.run_sync(self.sim_site.call, sim.recorder.summary)

    async def frames_line(self) -> str:
        """How many frames from the gateway the simulated stations could not read."""
        return await trio.to_thread.run_sync(self.sim_site.call, self.sim_site.site.frames_line)


@contextmanager
def simulated_site(
    loaded: LoadedScenario, *, api_port: int = 0, meter_values_s: float = 2.0
) -> Iterator[tuple[SiteThread, SiteConfig]]:
    """The simulated site on free ports, and the site file the gateway needs to reach it."""
    holder = held_port()  # while the stations start dialling it, until the gateway binds it
    ocpp_port: int = holder.getsockname()[1]
    url = f"ws://{LOOPBACK}:{ocpp_port}/ocpp"
    with (
        holder,
        site_thread(loaded, ports_auto=True, csms_url=url, meter_values_s=meter_values_s) as sim,
    ):
        ports = {box_id: box.port for box_id, box in sim.site.boxes.items()}
        holder.close()
        yield sim, rewired(loaded.site, ports, ocpp_port, api_port)


@asynccontextmanager
async def open_demo(
    loaded: LoadedScenario, *, api_port: int = 0, meter_values_s: float = 2.0
) -> AsyncIterator[Demo]:
    """The simulated site and the gateway connected to it; a clean shutdown at the end."""
    with simulated_site(loaded, api_port=api_port, meter_values_s=meter_values_s) as (sim, site):
        async with open_gateway(site) as gateway:
            try:
                yield Demo(sim, gateway)
            finally:
                with trio.move_on_after(10, shield=True):
                    await gateway.shutdown()
