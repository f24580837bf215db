"""`hubgate run SITE.toml` (the gateway) and `hubgate demo` (the gateway against the simulator).

Both stop on Ctrl-C or SIGTERM with every charger commanded to its failsafe current; a
gateway with a `[cluster]` hands its lease over to the standby instead (docs/ha.md)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager as ContextManager
from pathlib import Path
from typing import Any

import trio

from hubgate.cli.common import EXIT_FAILURE, EXIT_OK
from hubgate.config.loader import load_site
from hubgate.runtime.gateway import Gateway, dashboard_url, open_gateway
from hubgate.runtime.gc_tuning import settle_gc

DEMO_SCENARIO = Path("examples/scenarios/grid-limit-step.toml")


def register(subparsers: Any) -> None:
    """Add the `run` and `demo` commands."""
    run = subparsers.add_parser(
        "run", help="run the gateway for a site", description="Run the gateway for a site."
    )
    run.add_argument("site", help="site file (TOML)")
    run.set_defaults(handler=_run)
    demo = subparsers.add_parser(
        "demo",
        help="the simulated 200-connector depot under the gateway's control",
        description="The site simulator on loopback (Modbus devices, OCPP stations) and the "
        "gateway controlling it, with the dashboard; ends with the safety recorder's summary.",
    )
    demo.add_argument("--duration", type=float, default=300.0, metavar="S", help="seconds (300)")
    demo.add_argument(
        "--scenario", type=Path, default=DEMO_SCENARIO, help=f"scenario file ({DEMO_SCENARIO})"
    )
    demo.add_argument("--api-port", type=int, default=8080, help="dashboard port (8080; 0: any)")
    demo.add_argument(
        "--status-every", type=float, default=10.0, metavar="S", help="seconds between status lines"
    )
    demo.set_defaults(handler=_demo)


def status_line(gateway: Gateway) -> str:
    """Cycle count and time, the grid's current against its limit, chargers reachable."""
    state = gateway.loop.hub.latest
    if state is None:
        return "no control cycle yet"
    grid = state.node("grid")
    used = grid.measured_a or grid.commanded_a
    reachable = sum(1 for d in state.devices if d.reachable)
    charging = sum(1 for c in state.connectors if c.setpoint_a > 0)
    role = ""
    if gateway.leadership is not None:
        epoch = gateway.loop.epoch
        role = "standby, " if epoch is None else f"leader (epoch {epoch}), "
    return (
        f"{role}cycle {state.cycle}: {state.cycle_time_ms or 0:.0f} ms, grid "
        f"{used[0]:.0f}/{used[1]:.0f}/{used[2]:.0f} A, {charging} connectors charging, "
        f"{reachable}/{len(state.devices)} devices reachable"
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
    done = await gateway.shutdown()
    if gateway.leadership is not None:
        print("stopped: lease handed over, nothing commanded", flush=True)
        return
    print(
        f"stopped: {sum(done.values())}/{len(done)} connectors commanded to the failsafe current",
        flush=True,
    )


def _run(args: argparse.Namespace) -> int:
    site = load_site(args.site)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")

    async def main() -> None:
        with _signals() as signals:
            await serve(signals)

    async def serve(signals: AsyncIterator[int]) -> None:
        async with open_gateway(site) as gateway:
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
            await _until_signal(gateway, float("inf"), 10.0, signals)
            await _finish(gateway)

    return _trio_run(main)


def _demo(args: argparse.Namespace) -> int:
    from hubgate.runtime.demo import open_demo
    from hubgate.sim.scenario_loader import load_scenario

    loaded = load_scenario(args.scenario)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")

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
            print(f"dashboard: {dashboard_url(gateway.site, gateway.ports['api'])}", flush=True)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(demo.pace)
                await _until_signal(gateway, args.duration, args.status_every, signals)
                nursery.cancel_scope.cancel()
            await _finish(gateway)
            print((await demo.summary()).to_text(), flush=True)

    return _trio_run(main)


def _signals() -> ContextManager[AsyncIterator[int]]:
    """SIGINT and SIGTERM as a stream, taken over before anything is announced."""
    return trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM)


def _trio_run(main: Any) -> int:
    failure: OSError | None = None
    try:
        trio.run(main)
    except* OSError as group:  # a port it cannot take
        failure = group.exceptions[0]  # type: ignore[assignment]
    if failure is not None:
        print(f"hubgate: error: {failure}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK
