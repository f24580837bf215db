"""`hubgate run SITE.toml` (the gateway) and `hubgate demo` (the gateway against the simulator).

Both stop on Ctrl-C or SIGTERM with every charger commanded to its failsafe current; a
gateway with a `[cluster]` hands its lease over to the standby instead (docs/ha.md).
The gateway's modules (the API server, the control loop, ...) are imported once the site
file is read: a broken file is reported at the cost of reading it (0.35 s of CPU, not 1.5).
"""

from __future__ import annotations

import argparse
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager as ContextManager
from typing import TYPE_CHECKING

import trio

from hubgate.cli.common import (
    EVENTS_LOGGER,
    EXIT_OK,
    add_log_level,
    port_number,
    run_trio,
    setup_logging,
)
from hubgate.cli.examples_cmd import example_path
from hubgate.config.addresses import listener_problems, modbus_devices
from hubgate.config.loader import load_site
from hubgate.config.model import SiteConfig
from hubgate.tomlcheck import ConfigError, locate
from hubgate.wording import counted

if TYPE_CHECKING:
    from hubgate.runtime.gateway import Gateway

DEMO_SCENARIO = "grid-limit-step"


def register_run(run: argparse.ArgumentParser) -> None:
    """Add the `run` arguments."""
    run.add_argument("site", help="site file (TOML), or a packaged example's name")
    add_log_level(run, "WARNING")
    run.add_argument(
        "--api-port", type=port_number, help="serve the API here instead (0: any free port)"
    )
    run.add_argument(
        "--check",
        action="store_true",
        help="check everything (the file, that every port can be bound, device addresses) "
        "and exit 0, or 2 with the problems, without starting",
    )
    run.set_defaults(handler=_run)


def register_demo(demo: argparse.ArgumentParser) -> None:
    """Add the `demo` arguments."""
    demo.description = (
        "The site simulator on loopback (Modbus devices, OCPP stations) and the gateway "
        "controlling it, with the dashboard; ends with the safety recorder's summary."
    )
    demo.add_argument(
        "--duration",
        type=float,
        default=300.0,
        metavar="S",
        help="seconds (300); shorter than twice the scenario's first event: the events' "
        "times scaled so that it comes at half of it",
    )
    demo.add_argument(
        "--scenario",
        default=DEMO_SCENARIO,
        help=f"scenario file, or a packaged example's name ({DEMO_SCENARIO})",
    )
    demo.add_argument(
        "--api-port", type=port_number, default=8080, help="dashboard port (8080; 0: any)"
    )
    demo.add_argument(
        "--status-every", type=float, default=10.0, metavar="S", help="seconds between status lines"
    )
    add_log_level(demo, "WARNING")
    demo.set_defaults(handler=_demo)


def status_line(gateway: Gateway) -> str:
    """Cycle count and time, the grid's current against the limit in force (or why there
    is no current reading), connectors charging, devices reachable (`Snapshot.status`: the
    published state is not built for it)."""
    status = gateway.loop.snapshot.status()
    if status is None:
        return "no control cycle yet"
    grid = status.grid
    fresh = grid.measured_a is not None and grid.meter_health in (None, "fresh", "recovering")
    if fresh and grid.measured_a is not None:
        used = grid.measured_a
        current = f"grid {used[0]:.0f}/{used[1]:.0f}/{used[2]:.0f} A"
    elif grid.meter_health is None:
        used = grid.commanded_a
        current = f"grid commanded {used[0]:.0f}/{used[1]:.0f}/{used[2]:.0f} A (no meter)"
    else:
        age = (
            "" if grid.measured_age_s is None else f", last reading {grid.measured_age_s:.0f} s ago"
        )
        current = f"grid meter {grid.meter_health} ({grid.budget_share:.0%} budget{age})"
    limit = ""
    if grid.limit_a is not None:
        limit = f" of {min(grid.limit_a):.0f} A ({grid.power_limit_kw or 0:.0f} kW, {grid.limit_source})"
    role = ""
    if gateway.leadership is not None:
        epoch = gateway.loop.epoch
        role = "standby, " if epoch is None else f"leader (epoch {epoch}), "
    return (
        f"{role}cycle {status.cycle}: {status.cycle_time_ms:.0f} ms, {current}{limit}, "
        f"{status.charging} connectors charging, {status.reachable}/{status.devices} devices"
        " reachable"
    )


async def _until_signal(
    gateway: Gateway, seconds: float, status_every: float, signals: AsyncIterator[int]
) -> None:
    async with trio.open_nursery() as nursery:

        async def stop_on_signal() -> None:
            async for _ in signals:
                nursery.cancel_scope.cancel()

        nursery.start_soon(stop_on_signal)
        with trio.move_on_after(seconds):
            while True:
                await trio.sleep(status_every)
                print(status_line(gateway), flush=True)
        nursery.cancel_scope.cancel()


async def _finish(gateway: Gateway) -> None:
    from hubgate.cluster.lease import Role

    leadership = gateway.leadership
    led = leadership is not None and leadership.role is Role.LEADER
    done = await gateway.shutdown()
    if leadership is not None:
        if not led:
            print("stopped: standby, nothing commanded", flush=True)
        elif leadership.lease.handed_over:
            print("stopped: lease handed over, nothing commanded", flush=True)
        else:
            print(
                "stopped: lease not handed over (the standby takes over once it runs out),"
                " nothing commanded",
                flush=True,
            )
        return
    print(
        f"stopped: {sum(done.values())}/{len(done)} connectors commanded to the failsafe current",
        flush=True,
    )


def _site_to_run(args: argparse.Namespace) -> SiteConfig:
    """The site file with `--api-port` applied; with `--check` also what stops it running
    on this machine (`ConfigError` with every problem)."""
    path = example_path(args.site, "sites")
    site = load_site(path)
    if args.api_port is not None:
        site = site.model_copy(update={"api": site.api.model_copy(update={"port": args.api_port})})
    problems = listener_problems(site) if args.api_port is not None else []
    if args.check and not problems:
        from hubgate.runtime.preflight import preflight_problems

        problems = preflight_problems(site)
    if problems:
        raise ConfigError(locate(str(path), path.read_text(encoding="utf-8"), problems))
    return site


def _run(args: argparse.Namespace) -> int:
    site = _site_to_run(args)
    if args.check:
        devices = sum(1 for _ in modbus_devices(site))
        chargers = counted(len(site.chargers), "charger")
        print(f"{args.site}: ok ({chargers}, {counted(devices, 'Modbus device')})")
        return EXIT_OK
    from hubgate.records.store import RecordStore, retention_of
    from hubgate.runtime.gateway import dashboard_url, open_gateway
    from hubgate.runtime.gc_tuning import settle_gc

    setup_logging(args.log_level, args.log_format)

    async def main() -> None:
        with _signals() as signals:
            await serve(signals)

    records = site.records.default_path(site.csms)

    async def serve(signals: AsyncIterator[int]) -> None:
        store = RecordStore(records, retention_of(site))
        async with open_gateway(site, records=store, source=str(args.site)) as gateway:
            settle_gc()
            ports = gateway.ports
            if site.cluster is None:
                print(
                    f"{site.site.name}: OCPP on ws://{site.ocpp.host}:{ports['ocpp']}/ocpp/<identity>"
                )
            else:
                print(
                    f"{site.site.name}: node {site.cluster.node} of a cluster; OCPP on "
                    f"ws://{site.ocpp.host}:{site.ocpp.port}/ocpp/<identity> while leader"
                )
            if "modbus-server" in ports:
                print(f"Modbus server on {site.modbus_server.host}:{ports['modbus-server']}")  # type: ignore[union-attr]
            print(f"dashboard: {dashboard_url(site, ports['api'])}", flush=True)
            print(f"events and sessions recorded in {records}", flush=True)
            await _until_signal(gateway, float("inf"), 10.0, signals)
            await _finish(gateway)
        store.close()

    return run_trio(main)


def _demo(args: argparse.Namespace) -> int:
    from hubgate.runtime.demo import fitted, open_demo
    from hubgate.runtime.gateway import dashboard_url
    from hubgate.runtime.gc_tuning import settle_gc
    from hubgate.sim.scenario_loader import load_scenario

    loaded, factor = fitted(load_scenario(example_path(args.scenario, "scenarios")), args.duration)
    setup_logging(args.log_level, args.log_format)
    if args.log_format == "text":  # the narration prints each event once, on stdout
        events = logging.getLogger(EVENTS_LOGGER)
        events.propagate, events.handlers = False, [logging.NullHandler()]

    async def main() -> None:
        with _signals() as signals:
            await run_demo(signals)

    async def run_demo(signals: AsyncIterator[int]) -> None:
        async with open_demo(loaded, api_port=args.api_port) as demo:
            gateway = demo.gateway
            settle_gc()
            print(
                f"{loaded.scenario.scenario.name}: {len(loaded.site.chargers)} chargers, "
                f"{args.duration:g} s",
                flush=True,
            )
            if factor != 1.0:
                print(
                    f"the scenario's events at {factor:.3g} x their times, to come within "
                    f"{args.duration:g} s",
                    flush=True,
                )
            print(f"dashboard: {dashboard_url(gateway.site, gateway.ports['api'])}", flush=True)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(demo.pace)
                nursery.start_soon(demo.narrate, _say)
                await _until_signal(gateway, args.duration, args.status_every, signals)
                nursery.cancel_scope.cancel()
            await _finish(gateway)
            print((await demo.summary()).to_text(), flush=True)
            print(await demo.frames_line(), flush=True)

    return run_trio(main)


def _say(line: str) -> None:
    print(line, flush=True)


def _signals() -> ContextManager[AsyncIterator[int]]:
    """SIGINT and SIGTERM as a stream, taken over before anything is announced."""
    return trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM)
