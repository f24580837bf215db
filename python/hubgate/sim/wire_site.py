"""The virtual site on real protocols: the simulation behind Modbus servers and OCPP stations.

`WireSite` runs on one asyncio loop (its own thread or process: never inside the
gateway's Trio code). Each step it hands the physics what the devices apply
(Modbus chargers' applied limits with their watchdogs, OCPP stations' charging
profiles), steps it, then feeds every register and station from it. Scenario
events reach the wire: a charger that goes offline closes its server or
socket, a dead meter stops answering, a grid-limit step changes the box's
register or contacts. With `device_workers` the Modbus boxes are served by that many
child processes (`hubgate.sim.device_workers`); the physics, the scenario and the OCPP
stations stay here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hubgate.config.model import ModbusEndpoint, SiteConfig
from hubgate.profiles.loader import load_named
from hubgate.profiles.model import Profile
from hubgate.sim.device_clock import DeviceClock
from hubgate.sim.device_workers import Applied, DeviceWorkers
from hubgate.sim.engine import Simulation
from hubgate.sim.ev import Ev
from hubgate.sim.modbus_box import ModbusBox
from hubgate.sim.ocpp_station import Station
from hubgate.sim.register_feed import (
    battery_charge_cap_kw,
    battery_setpoint_kw,
    connector_offer,
    feed_battery,
    feed_connector,
    feed_energy,
    feed_grid_operator,
    feed_meter,
    feed_pv,
    make_device,
    pv_cap_kw,
)
from hubgate.sim.scenario_loader import LoadedScenario
from hubgate.sim.station_personalities import personality
from hubgate.sim.writers import Connection, WriterLog

LOOPBACK = "127.0.0.1"
GRID_OPERATOR_BOX = "grid-operator"
"""The id of the grid operator's box (the site file gives it none)."""


class WireSite:
    """A simulation whose devices listen on loopback and whose stations dial a CSMS."""

    def __init__(
        self,
        loaded: LoadedScenario,
        *,
        ports_auto: bool = False,
        csms_url: str | None = None,
        meter_values_s: float = 60.0,
        writes: Path | None = None,
        device_workers: int = 0,
    ) -> None:
        """`csms_url`: what the stations dial, several comma-separated in priority order;
        `writes`: log every command with its sender there (`hubgate.sim.writers`);
        `device_workers`: serve the Modbus boxes from that many child processes (0: here)."""
        if device_workers and writes is not None:
            raise ValueError(
                "the writer log (--writes) finds each sender in the process that serves the "
                "device: leave out --device-workers with it"
            )
        self.sim = sim = Simulation(loaded)
        self.writers = None if writes is None else WriterLog(writes)
        self.origin = datetime.now(UTC)
        """Wall-clock time at simulated t = 0, where the stations' clocks start."""
        self._ports_auto = ports_auto
        self._profiles: dict[str, Profile] = {}
        self.boxes: dict[str, ModbusBox] = {}
        self._charger_boxes: list[tuple[ModbusBox, tuple[int, ...]]] = []
        self._slots: dict[str, tuple[int, ...]] = {}
        self._meter_boxes: list[tuple[ModbusBox, str]] = []
        self._meter_wh: dict[str, list[float]] = {}
        self._battery_max_charge_kw = 0.0
        self._build_boxes(loaded.site)
        self.workers = (
            DeviceWorkers(loaded.path, device_workers, ports_auto) if device_workers else None
        )
        self.stations: list[Station] = []
        if csms_url is not None:
            for charger in loaded.site.chargers:
                if charger.ocpp is not None:
                    state = sim.chargers[charger.id]
                    name = loaded.scenario.personalities.get(charger.id)
                    self.stations.append(
                        Station(
                            charger,
                            state.slots,
                            self,
                            csms_url,
                            meter_values_s,
                            personality=personality(name),
                        )
                    )
        self.slot_wh = [0.0] * len(sim.tree.connectors)
        """Energy delivered through each connector since the start (Wh)."""
        self._slot_seen: list[tuple[object, float]] = [(None, 0.0)] * len(sim.tree.connectors)
        self._pv_wh = 0.0
        self._tasks: set[asyncio.Task[None]] = set()
        self.max_lag_s = float("-inf")
        """The most a paced run's step started after its time (wall-clock s; < 0: never late)."""

    # -- building -----------------------------------------------------------------

    def _profile(self, name: str) -> Profile:
        if name not in self._profiles:
            self._profiles[name] = load_named(name)
        return self._profiles[name]

    def _box(
        self, id: str, kind: str, endpoint: ModbusEndpoint, count: int = 1, largest: float = 0
    ) -> ModbusBox:
        profile = self._profile(endpoint.profile)
        port = 0 if self._ports_auto or endpoint.host is None else endpoint.port
        taken = next((b.id for b in self.boxes.values() if port and b.port == port), None)
        if taken is not None:
            raise ValueError(
                f"'{id}' and '{taken}' both want port {port} on {LOOPBACK}: "
                "give them different ports in the site file, or use --ports auto"
            )
        box = ModbusBox(id, kind, profile.name, [], LOOPBACK, port, on_write=self.written)
        clock = DeviceClock(self.clock, lambda: box.linked)
        box.devices.extend(
            make_device(profile, endpoint, clock, offset=i, largest=largest) for i in range(count)
        )
        if endpoint.serial is not None:
            box.serial = endpoint.serial.device
        self.boxes[id] = box
        return box

    def _build_boxes(self, site: SiteConfig) -> None:
        sim = self.sim
        voltage = sim.tree.voltage_v
        for charger in site.chargers:
            if charger.modbus is not None:
                slots = sim.chargers[charger.id].slots
                box = self._box(charger.id, "charger", charger.modbus, len(slots))
                self._charger_boxes.append((box, slots))
                self._slots[box.id] = slots
        grid_limit = sim.tree.phase_limits[0]
        for meter in site.meters:
            limit = sim.tree.phase_limits[sim.tree.node_index(meter.node)] or grid_limit
            largest = 3 * voltage * max(limit or (1000.0,))
            self._meter_boxes.append(
                (self._box(meter.id, "meter", meter.modbus, 1, largest), meter.id)
            )
            self._meter_wh[meter.id] = [0.0, 0.0]
        for pv in site.pv:
            self._box(pv.id, "pv", pv.modbus, 1, pv.peak_kw * 1000.0)
        if site.battery is not None:
            battery = site.battery
            largest = max(battery.max_charge_kw, battery.max_discharge_kw) * 1000.0
            self._box(battery.id, "battery", battery.modbus, 1, largest)
            self._battery_max_charge_kw = battery.max_charge_kw
        if site.grid_operator is not None and site.grid_operator.modbus is not None:
            self._box(GRID_OPERATOR_BOX, "grid-operator", site.grid_operator.modbus)

    def clock(self) -> float:
        """Simulated seconds: the devices' watchdogs run on it while no master is
        connected (`sim.device_clock`)."""
        return self.sim.now

    def written(self, device: str, what: dict[str, Any], connection: Connection | None) -> None:
        """A command reached `device`: into the writer log, if there is one."""
        if self.writers is not None:
            kind = "ocpp" if "profile" in what else "modbus"
            self.writers.record(self.sim.now, device, kind, what, connection)

    # -- the stations' environment (`StationEnv`) ----------------------------------

    @property
    def voltage_v(self) -> float:
        """The site's phase voltage."""
        return self.sim.tree.voltage_v

    def online(self, charger_id: str) -> bool:
        """Whether the scenario has the charger on the network."""
        return self.sim.chargers[charger_id].online

    def ev(self, slot: int) -> Ev | None:
        """The EV plugged in at a connector slot."""
        return self.sim.evs[slot]

    def phases(self, slot: int) -> int:
        """How many phases the EV at `slot` draws on (3 without one)."""
        return self.sim.phases_of(slot)

    def switch_phases(self, slot: int, phases: int) -> None:
        """The connector at `slot` (switchable) switched its EV to `phases`."""
        self.sim.switch_phases(slot, phases)

    def energy_wh(self, slot: int) -> float:
        """Energy delivered through the connector at `slot` since the start (Wh)."""
        return self.slot_wh[slot]

    def offer(self, charger_id: str, slot: int, current_a: float) -> None:
        """The connector at `slot` offers its EV `current_a` from now on."""
        self.sim.chargers[charger_id].hold(slot, current_a)

    # -- lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        """Start every Modbus server, feed the registers once, start the stations."""
        if self.workers is not None:
            await self.workers.start(self)
        for box in self.boxes.values() if self.workers is None else ():
            await box.start()
        self._push()
        self._flush()
        for station in self.stations:
            self._spawn(station.run())

    async def close(self) -> None:
        """Stop the stations and every server."""
        for station in self.stations:
            station.stop()
        pending = set(self._tasks)
        while pending:  # again: Python 3.11's wait_for (in the ocpp package) can swallow one
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=1.0)
        if self.workers is not None:
            await self.workers.close()
        for box in self.boxes.values():
            await box.stop()
        if self.writers is not None:
            self.writers.close()

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def listing(self) -> dict[str, object]:
        """Where each device listens and which stations dial out, as JSON-ready data."""
        return {
            "scenario": self.sim.scenario.scenario.name,
            "site": self.sim.site.site.name,
            "modbus": [box.listing() for box in self.boxes.values()],
            "ocpp": [station.listing() for station in self.stations],
        }

    @property
    def unreadable_frames(self) -> int:
        """Frames from the CSMS the OCPP stations could not take (`Station.unreadable_frames`)."""
        return sum(station.unreadable_frames for station in self.stations)

    def frames_line(self) -> str:
        """The stations' count of unreadable frames, for a run's summary."""
        return (
            f"OCPP frames the {len(self.stations)} stations could not read: "
            f"{self.unreadable_frames}"
        )

    # -- stepping -----------------------------------------------------------------

    def applied(self, ids: Iterable[str]) -> dict[str, Applied]:
        """What the boxes `ids` apply (what the gateway wrote, their watchdogs included): a
        charger's offer per connector, a battery's charge cap and setpoint (kW), an
        inverter's cap (kW)."""
        sim, found = self.sim, dict[str, Applied]()
        battery = sim.battery.id if sim.battery is not None else None
        pvs = {pv.id for pv in sim.pv}
        for id in ids:
            devices = self.boxes[id].devices
            if id in self._slots:
                connectors = sim.tree.connectors
                found[id] = tuple(
                    connector_offer(fed, connectors[slot].max_current_a)
                    for fed, slot in zip(devices, self._slots[id], strict=True)
                )
            elif id == battery:
                cap = battery_charge_cap_kw(devices[0], self._battery_max_charge_kw)
                found[id] = (cap, battery_setpoint_kw(devices[0]))
            elif id in pvs:
                found[id] = (pv_cap_kw(devices[0]),)
        return found

    def step(self) -> None:
        """What the devices apply into the physics, one step, the physics onto the wire
        (with `workers`: what they said at the last `exchange`)."""
        sim = self.sim
        applied = self.applied(self.boxes) if self.workers is None else self.workers.applied
        for box, slots in self._charger_boxes:
            charger = sim.chargers[box.id]
            for offer, slot in zip(applied[box.id], slots, strict=True):
                assert offer is not None
                charger.hold(slot, offer)
        for station in self.stations:
            station.apply_limits()
        if sim.battery is not None and sim.battery.id in applied:
            cap, setpoint = applied[sim.battery.id]
            assert cap is not None
            sim.battery.max_charge_kw = cap
            if setpoint is not None:
                sim.battery.setpoint_kw = setpoint
        for pv in sim.pv:
            pv.cap_kw = applied[pv.id][0]
        sim.step()
        self._count_energy()
        self._push()
        self._follow_events()
        self._flush()
        for station in self.stations:
            station.tick()

    def _flush(self) -> None:
        """The values and events of this step to the workers' boxes."""
        if self.workers is not None:
            self.workers.flush(self.sim.now)

    async def exchange(self) -> None:
        """Before a step: what the workers' boxes apply now (nothing to do without them)."""
        if self.workers is not None:
            await self.workers.exchange(self.sim.now)

    def _count_energy(self) -> None:
        for slot, ev in enumerate(self.sim.evs):
            if ev is None:
                continue
            seen, before = self._slot_seen[slot]
            delta = ev.energy_kwh - (before if seen is ev else 0.0)
            self.slot_wh[slot] += delta * 1000.0
            self._slot_seen[slot] = (ev, ev.energy_kwh)

    def _push(self) -> None:
        sim = self.sim
        voltage, dt = sim.tree.voltage_v, sim.step_s
        for box, slots in self._charger_boxes:
            for fed, slot in zip(box.devices, slots, strict=True):
                feed_connector(fed, sim, slot, self.slot_wh[slot])
        for box, meter_id in self._meter_boxes:
            meter = sim.meters[meter_id]
            if meter.currents_a is None:
                continue
            watts = feed_meter(box.devices[0], meter.currents_a, voltage)
            energy = self._meter_wh[meter_id]
            energy[0 if watts >= 0 else 1] += abs(watts) * dt / 3600.0
            feed_energy(box.devices[0], energy[0], energy[1])
        for pv in sim.pv:
            fed = self.boxes[pv.id].devices[0]
            self._pv_wh += pv.power_kw * 1000.0 * dt / 3600.0
            feed_pv(fed, pv.power_kw, sim.tree.amps_per_phase(pv.power_kw), voltage, pv.peak_kw)
            feed_energy(fed, 0.0, self._pv_wh)
        if sim.battery is not None:
            battery = sim.battery
            feed = self.boxes[battery.id].devices[0]
            feed_battery(feed, battery.power_kw, battery.soc, self._battery_max_charge_kw)
        grid_box = self.boxes.get(GRID_OPERATOR_BOX)
        if grid_box is not None:
            feed_grid_operator(
                grid_box.devices[0],
                sim.grid_signal,
                sim.site.grid.power_limit_kw or 0.0,
                int(sim.now),
            )

    def _follow_events(self) -> None:
        """Scenario events on the wire: offline chargers close, dead meters fall silent."""
        workers = self.workers
        for box, _ in self._charger_boxes:
            online = self.sim.chargers[box.id].online
            if online != box.online:
                box.online = online
                if workers is None:
                    self._spawn(box.go_online(online))
                else:
                    workers.event(box.id, "online", online)
        for box, meter_id in self._meter_boxes:
            silent = not self.sim.meters[meter_id].alive
            if workers is None:
                box.silence(silent)
            else:
                workers.event(box.id, "silent", silent)

    async def advance(self, seconds: float) -> None:
        """Step `seconds` of simulated time at once, letting the servers run between steps."""
        for _ in range(max(0, round(seconds / self.sim.step_s))):
            await self.exchange()
            self.step()
            await asyncio.sleep(0)

    async def run(
        self, duration_s: float, speed: float, on_step: Callable[[Simulation], None] | None = None
    ) -> None:
        """Step in time with the loop's clock at `speed` (inf: as fast as possible)."""
        loop = asyncio.get_running_loop()
        origin, start = loop.time(), self.sim.now
        for _ in range(max(0, round(duration_s / self.sim.step_s))):
            if speed != float("inf"):
                delay = origin + (self.sim.now - start) / speed - loop.time()
                await asyncio.sleep(max(0.0, delay))
                self.max_lag_s = max(self.max_lag_s, -delay)
            else:
                await asyncio.sleep(0)
            await self.exchange()
            self.step()
            if on_step is not None:
                on_step(self.sim)
