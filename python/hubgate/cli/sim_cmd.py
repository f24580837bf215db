"""`hubgate sim SCENARIO.toml`: run a scenario and print the safety summary.

Without `--serve` the chargers' limits come from the built-in naive
equal-share controller in-process. With `--serve` the site's Modbus devices
listen on loopback and its OCPP stations dial `--csms`: a gateway controls it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import trio

from hubgate.cli.common import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_OK
from hubgate.cli.examples_cmd import example_path
from hubgate.sim import (
    ClosedLoop,
    NaiveEqualShareController,
    Simulation,
    load_scenario,
    run_fast,
    run_paced,
)
from hubgate.sim.scenario_loader import LoadedScenario


def _speed(text: str) -> float:
    if text == "max":
        return float("inf")
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"give a number above 0 or 'max', got {text!r}")
    return value


def _duration(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"give simulated seconds above 0, got {text!r}")
    return value


def register(sim: argparse.ArgumentParser) -> None:
    """Add the `sim` arguments."""
    sim.set_defaults(handler=_run)
    sim.add_argument(
        "scenario", help="scenario file (TOML), or a packaged example's name (grid-limit-step)"
    )
    sim.add_argument(
        "--duration", type=_duration, help="simulated seconds (default: the scenario's)"
    )
    sim.add_argument(
        "--speed",
        type=_speed,
        default=1.0,
        help="simulated seconds per wall-clock second, or 'max' (default: 1, real time)",
    )
    sim.add_argument("--json", type=Path, help="also write the summary as JSON to this file")
    sim.add_argument(
        "--check", action="store_true", help="exit 1 when the recorder flagged a violation"
    )
    sim.add_argument(
        "--serve",
        action="store_true",
        help="serve the site on loopback (Modbus servers, OCPP stations) for a gateway",
    )
    sim.add_argument(
        "--csms", metavar="URL", help="with --serve: the CSMS the OCPP stations dial (ws://...)"
    )
    sim.add_argument(
        "--ports",
        choices=("site", "auto"),
        default="site",
        help="with --serve: the site file's ports, or free ones (default: site)",
    )
    sim.add_argument(
        "--listing", type=Path, help="with --serve: write where each device listens as JSON"
    )
    sim.add_argument(
        "--meter-values",
        type=_duration,
        default=60.0,
        help="with --serve: simulated seconds between MeterValues (default: 60)",
    )
    sim.add_argument(
        "--status-every",
        type=_duration,
        default=60.0,
        help="print a status line every so many simulated seconds when paced (default: 60)",
    )


def _status(sim: Simulation) -> str:
    grid = sim.node_current()
    charging = sum(1 for ev in sim.evs if ev is not None and ev.draw_a > 0)
    plugged = sum(1 for ev in sim.evs if ev is not None)
    return (
        f"t={sim.now:>7g} s grid {grid[0]:7.1f} {grid[1]:7.1f} {grid[2]:7.1f} A, "
        f"{charging}/{plugged} EVs charging, grid signal {sim.grid_signal.percent:g} %, "
        f"CSMS {'up' if sim.csms.online else 'down'}"
    )


def _serve(args: argparse.Namespace, loaded: LoadedScenario, duration: float) -> Simulation | None:
    from hubgate.sim.serving import listing_lines, serve  # the protocols: pymodbus, websockets
    from hubgate.sim.wire_site import WireSite

    try:
        site = WireSite(
            loaded,
            ports_auto=args.ports == "auto",
            csms_url=args.csms,
            meter_values_s=args.meter_values,
        )
    except ValueError as error:
        print(f"hubgate sim: {error}", file=sys.stderr)
        return None
    every = max(1, round(args.status_every / site.sim.step_s))

    def announce(running: WireSite) -> None:
        print(
            f"{loaded.scenario.scenario.name}: site {loaded.site.site.name}, "
            f"{len(running.sim.tree.connectors)} connectors, {duration:g} s at "
            f"{'max' if args.speed == float('inf') else f'{args.speed:g}x'} speed, served:",
            flush=True,
        )
        for line in listing_lines(running):
            print(f"  {line}", flush=True)

    def report(s: Simulation) -> None:
        if s.steps % every == 0:
            print(_status(s), flush=True)

    try:
        asyncio.run(
            serve(
                site, duration, args.speed, listing=args.listing, on_start=announce, on_step=report
            )
        )
    except KeyboardInterrupt:
        print(f"interrupted at t={site.sim.now:g} s; the summary so far:", flush=True)
    except OSError as error:
        print(f"hubgate sim: cannot serve the site: {error}", file=sys.stderr)
        return None
    if args.speed != float("inf") and site.max_lag_s > float("-inf"):
        late = max(site.max_lag_s, 0.0) * 1000.0
        print(f"pace {args.speed:g}x: the latest step started {late:.0f} ms after its time")
    if site.stations:
        print(site.frames_line())
    return site.sim


def _run(args: argparse.Namespace) -> int:
    loaded = load_scenario(example_path(args.scenario, "scenarios"))
    duration = args.duration or loaded.scenario.scenario.duration_s
    if not args.serve and (args.csms or args.listing or args.ports != "site"):
        print("hubgate sim: --csms, --listing and --ports need --serve", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.serve:
        served = _serve(args, loaded, duration)
        return EXIT_FAILURE if served is None else _finish(args, served)
    sim = Simulation(loaded)
    loop = ClosedLoop(sim, NaiveEqualShareController(sim))
    print(
        f"{loaded.scenario.scenario.name}: site {loaded.site.site.name}, "
        f"{len(sim.tree.connectors)} connectors, {duration:g} s at "
        f"{'max' if args.speed == float('inf') else f'{args.speed:g}x'} speed, "
        "naive equal-share controller in-process",
        flush=True,
    )
    if args.speed == float("inf"):
        run_fast(loop, duration)
    else:
        every = max(1, round(args.status_every / sim.step_s))

        def report(s: Simulation) -> None:
            if s.steps % every == 0:
                print(_status(s), flush=True)

        try:
            trio.run(run_paced, loop, duration, args.speed, report)
        except KeyboardInterrupt:
            print(f"interrupted at t={sim.now:g} s; the summary so far:", flush=True)
    return _finish(args, sim)


def _finish(args: argparse.Namespace, sim: Simulation) -> int:
    summary = sim.recorder.summary()
    print(summary.to_text())
    if args.json is not None:
        args.json.write_text(summary.to_json() + "\n", encoding="utf-8")
    return EXIT_FAILURE if args.check and summary.violations else EXIT_OK
