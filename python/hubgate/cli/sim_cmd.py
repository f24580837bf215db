"""`hubgate sim SCENARIO.toml`: run a scenario and print the safety summary.

Without `--serve` hubgate's own control loop controls the site in-process on
simulated time (`hubgate.sim.inprocess`), or with `--controller naive` the
built-in naive equal-share stand-in; `--compare` runs both and prints them side
by side. With `--serve` the site's Modbus devices listen on loopback and its
OCPP stations dial `--csms`: a gateway controls it.

SIGINT and SIGTERM end every mode as Ctrl-C does: the summary so far is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import trio
from trio.testing import MockClock

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
from hubgate.sim.inprocess import run_hubgate
from hubgate.sim.recorder import Summary
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
        "--controller",
        choices=("hubgate", "naive"),
        default="hubgate",
        help="who controls the site in-process: hubgate's control loop (default) or the "
        "naive equal-share stand-in",
    )
    sim.add_argument(
        "--compare",
        action="store_true",
        help="run hubgate's loop and the naive controller as fast as possible, print both",
    )
    sim.add_argument(
        "--serve",
        action="store_true",
        help="serve the site on loopback (Modbus servers, OCPP stations) for a gateway",
    )
    sim.add_argument(
        "--csms",
        metavar="URL",
        help="with --serve: the CSMS the OCPP stations dial (ws://...; several "
        "comma-separated: tried in turn, in priority order)",
    )
    sim.add_argument(
        "--ports",
        choices=("site", "auto"),
        default="site",
        help="with --serve: the site file's ports, or free ones (default: site)",
    )
    sim.add_argument(
        "--writes",
        type=Path,
        help="with --serve: log every Modbus write and SetChargingProfile with the sending "
        "process to this file (JSON lines; Linux)",
    )
    sim.add_argument(
        "--listing", type=Path, help="with --serve: write where each device listens as JSON"
    )
    sim.add_argument(
        "--device-workers",
        type=int,
        default=0,
        metavar="N",
        help="with --serve: serve the Modbus devices from N child processes, each a share on "
        "its own ports (default: 0, from this one)",
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
            writes=args.writes,
            device_workers=args.device_workers,
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
    with _interruptible():
        return _simulate_scenario(args)


@contextmanager
def _interruptible() -> Iterator[None]:
    """SIGINT and SIGTERM as Ctrl-C (asyncio and Trio then cancel the run and the summary so
    far is printed), whatever the process inherited: a background job of a shell script
    starts with SIGINT ignored, and Python, asyncio and Trio all leave an ignored SIGINT
    ignored (the simulator would run its whole duration). The handlers before are restored."""
    before = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda _number, _frame: signal.raise_signal(signal.SIGINT))
    try:
        yield
    finally:
        for number, handler in before.items():
            if handler is not None:  # None: set outside Python, cannot be put back
                signal.signal(number, handler)


def _simulate_scenario(args: argparse.Namespace) -> int:
    loaded = load_scenario(example_path(args.scenario, "scenarios"))
    duration = args.duration or loaded.scenario.scenario.duration_s
    if not args.serve and (
        args.csms or args.listing or args.writes or args.ports != "site" or args.device_workers
    ):
        print(
            "hubgate sim: --csms, --listing, --writes, --ports and --device-workers need --serve",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    if args.device_workers < 0:
        print("hubgate sim: --device-workers takes 0 or more", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.serve and args.compare:
        print("hubgate sim: --compare runs in-process, not with --serve", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.serve:
        served = _serve(args, loaded, duration)
        return EXIT_FAILURE if served is None else _finish(args, served)
    if args.compare:
        return _compare(args, loaded, duration)
    speed = "max" if args.speed == float("inf") else f"{args.speed:g}x"
    who = (
        "hubgate's control loop" if args.controller == "hubgate" else "naive equal-share controller"
    )
    sim = Simulation(loaded)
    print(
        f"{loaded.scenario.scenario.name}: site {loaded.site.site.name}, "
        f"{len(sim.tree.connectors)} connectors, {duration:g} s at {speed} speed, "
        f"{who} in-process",
        flush=True,
    )
    every = max(1, round(args.status_every / sim.step_s))

    def report(s: Simulation) -> None:
        if s.steps % every == 0:
            print(_status(s), flush=True)

    try:
        _simulate(
            sim,
            args.controller,
            duration,
            args.speed,
            report if args.speed != float("inf") else None,
        )
    except* KeyboardInterrupt:  # Trio's comes out of a nursery in a group
        print(f"interrupted at t={sim.now:g} s; the summary so far:", flush=True)
    return _finish(args, sim)


def _simulate(
    sim: Simulation,
    controller: str,
    duration: float,
    speed: float,
    report: Callable[[Simulation], None] | None,
) -> None:
    """Run `sim` under `controller` for `duration` simulated seconds at `speed`."""
    if controller == "hubgate":
        run = partial(run_hubgate, sim, duration, report, speed=speed)
        trio.run(run, clock=MockClock(autojump_threshold=0))
        return
    loop = ClosedLoop(sim, NaiveEqualShareController(sim))
    if speed == float("inf"):
        run_fast(loop, duration)
    else:
        trio.run(run_paced, loop, duration, speed, report)


def _compare(args: argparse.Namespace, loaded: LoadedScenario, duration: float) -> int:
    print(
        f"{loaded.scenario.scenario.name}: site {loaded.site.site.name}, {duration:g} s, "
        "hubgate's control loop and the naive controller, each as fast as possible",
        flush=True,
    )
    summaries = {}
    for controller in ("hubgate", "naive"):
        sim = Simulation(loaded)
        _simulate(sim, controller, duration, float("inf"), None)
        summaries[controller] = sim.recorder.summary()
    print(comparison(summaries))
    if args.json is not None:
        data = {name: json.loads(s.to_json()) for name, s in summaries.items()}
        args.json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    violated = any(s.violations for s in summaries.values())
    return EXIT_FAILURE if args.check and violated else EXIT_OK


def comparison(summaries: Mapping[str, Summary]) -> str:
    """Summaries side by side: energy, EVs finished, violations, demand peak, per node peak
    and time above; with hubgate's and the naive controller's, the verdict."""
    names = list(summaries)
    rows: list[tuple[str, list[str]]] = [
        ("energy delivered (kWh)", [f"{s.energy_delivered_kwh:.2f}" for s in summaries.values()]),
        (
            "EVs finished by departure",
            [f"{s.evs_finished} of {s.evs_left}" for s in summaries.values()],
        ),
        (
            "limit violations (s beyond)",
            [f"{len(s.violations)} ({s.violation_seconds:g})" for s in summaries.values()],
        ),
    ]
    first = next(iter(summaries.values()))
    if first.demand_target_kw is not None:
        rows.append(
            (
                f"demand peak kW (target {first.demand_target_kw:g})",
                [
                    f"{s.demand_peak_kw:.1f}" + ("" if s.demand_kept else " over")
                    for s in summaries.values()
                ],
            )
        )
    for k, peak in enumerate(first.peaks):
        rows.append(
            (
                f"{peak.node}: peak A, above limit s",
                [
                    f"{s.peaks[k].amps:.0f}, {s.peaks[k].seconds_above_limit:g}"
                    for s in summaries.values()
                ],
            )
        )
    width = max(len(label) for label, _ in rows)
    lines = [f"{'':<{width}}  " + "  ".join(f"{n:>16}" for n in names)]
    lines += [
        f"{label:<{width}}  " + "  ".join(f"{v:>16}" for v in values) for label, values in rows
    ]
    if {"hubgate", "naive"} <= summaries.keys():
        lines.append(verdict(summaries["hubgate"], summaries["naive"]))
    return "\n".join(lines)


def _unsafe(summary: Summary) -> list[str]:
    """What a run broke: limits beyond the reaction time, the demand target."""
    broken = []
    if summary.violations:
        broken.append(
            f"{len(summary.violations)} limit violations ({summary.violation_seconds:g} s beyond)"
        )
    if not summary.demand_kept:
        broken.append(
            f"a demand peak of {summary.demand_peak_kw:.1f} kW over the "
            f"{summary.demand_target_kw:g} kW target"
        )
    return broken


def verdict(hubgate: Summary, naive: Summary) -> str:
    """Whether hubgate delivered more energy than the naive controller at the same safety:
    both judged by the same rules (limits in force, the demand target); energy that came
    with a broken rule is not ahead."""
    ours, theirs = _unsafe(hubgate), _unsafe(naive)
    if ours:
        return "verdict: hubgate broke a rule: " + "; ".join(ours)
    more = hubgate.energy_delivered_kwh - naive.energy_delivered_kwh
    if theirs:
        return (
            f"verdict: hubgate ahead: {more:+.2f} kWh, but the naive controller is not at the "
            f"same safety ({'; '.join(theirs)}): hubgate kept every rule"
        )
    share = more / naive.energy_delivered_kwh * 100 if naive.energy_delivered_kwh else 0.0
    where = "ahead" if more >= 0 else "BEHIND"
    return (
        f"verdict: hubgate {where} by {more:+.2f} kWh ({share:+.1f} %) at the same safety "
        "(no limit violation, demand target kept, both)"
    )


def _finish(args: argparse.Namespace, sim: Simulation) -> int:
    summary = sim.recorder.summary()
    print(summary.to_text())
    fleet = sim.fleet_summary()
    if fleet is not None:
        print(fleet.to_text())
    if args.json is not None:
        args.json.write_text(summary.to_json() + "\n", encoding="utf-8")
    return EXIT_FAILURE if args.check and summary.violations else EXIT_OK
