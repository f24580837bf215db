"""`hubgate ocpp serve SITE.toml`: accept the site's charge points and report what they say.

Runs until Ctrl-C or SIGTERM, then exits 0."""

from __future__ import annotations

import argparse
import signal
import sys

import trio
from pydantic import ValidationError

from hubgate.cli.common import (
    EXIT_FAILURE,
    add_command,
    add_log_level,
    run_trio,
    setup_logging,
)
from hubgate.cli.examples_cmd import example_path
from hubgate.cloud.proxy import CsmsProxy, open_csms_proxy
from hubgate.config.loader import load_site
from hubgate.config.services import Csms
from hubgate.config.tokens import TokenBook
from hubgate.control.limits import LimitBook
from hubgate.ocpp.policy import CsmsPolicy
from hubgate.ocpp.registry import StationRegistry
from hubgate.ocpp.server import OcppListener
from hubgate.ocpp.smart_charging import LeaseSettings, Setpoint, SmartCharging
from hubgate.ocpp.station_care import attendant
from hubgate.runtime.gc_tuning import settle_gc
from hubgate.runtime.site_devices import station_cares


def register(parser: argparse.ArgumentParser) -> None:
    """Add the `ocpp` sub-commands."""
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    serve = add_command(
        commands, "serve", "run the OCPP listener for the site's charge points", _serve
    )
    serve.add_argument("site", help="site file (TOML), or a packaged example's name")
    serve.add_argument("--host", help="listen address (default: the site's [ocpp] host)")
    serve.add_argument("--port", type=int, help="listen port, 0 picks one (default: the site's)")
    serve.add_argument(
        "--status-every", type=float, default=10.0, metavar="S", help="seconds between status lines"
    )
    add_log_level(serve, "INFO")
    serve.add_argument(
        "--csms",
        metavar="URL",
        help="proxy the chargers to this CSMS (ws:// or wss:// base URL; default: the site's "
        "[csms] url, if any), storing and forwarding while it is away",
    )
    serve.add_argument(
        "--limit-a",
        type=float,
        metavar="A",
        help="hold every connected charger at this current per phase with leased profiles "
        "(the site's [control] lease_s and failsafe_current_a)",
    )


def status_line(registry: StationRegistry) -> str:
    """Connected stations, open transactions and the power they report."""
    stations = list(registry)
    online = [s for s in stations if s.session is not None]
    charging = sum(1 for s in stations for c in s.connectors.values() if c.transaction)
    power_w = sum(c.measurement.power_w or 0.0 for s in online for c in s.connectors.values())
    return (
        f"{len(online)}/{len(stations)} charge points online, "
        f"{charging} transactions, {power_w / 1000:.1f} kW"
    )


async def _run_proxy(csms: Csms, *, task_status: trio.TaskStatus[CsmsProxy]) -> None:
    """The CSMS proxy (its limits are not read by `serve`, which runs no control loop)."""
    async with open_csms_proxy(csms, LimitBook()) as proxy:
        task_status.started(proxy)
        await trio.sleep_forever()


def _serve(args: argparse.Namespace) -> int:
    site = load_site(example_path(args.site, "sites"))
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    config = site.ocpp.model_copy(update=overrides)
    registry = StationRegistry.from_site(site)
    cares = {care.station.identity: care for care in station_cares(site, registry).values()}
    setup_logging(args.log_level, args.log_format)
    csms = site.csms
    if args.csms is not None:
        try:
            csms = Csms.model_validate({**(csms.model_dump() if csms else {}), "url": args.csms})
        except ValidationError as exc:
            print(f"hubgate: error: --csms {args.csms}: {exc.errors()[0]['msg']}", file=sys.stderr)
            return EXIT_FAILURE

    async def report(port: int) -> None:
        scheme = "wss" if config.security_profile >= 2 else "ws"
        print(f"listening on {scheme}://{config.host}:{port}/ocpp/<identity>", flush=True)
        if csms is not None:
            print(f"proxying to {csms.url} (queue {csms.queue_path})", flush=True)
        while True:
            await trio.sleep(args.status_every)
            print(status_line(registry), flush=True)

    async def hold_limit(limit_a: float) -> None:
        control = site.control
        settings = LeaseSettings(
            lease_s=control.lease_s,
            renew_before_s=control.lease_s / 3,
            failsafe_current_a=control.failsafe_current_a,
        )
        smart = SmartCharging(registry, settings, lambda identity: cares[identity].capabilities)
        while True:
            online = [s.identity for s in registry if s.session is not None]
            await smart.apply(dict.fromkeys(online, Setpoint(limit_a)))
            await trio.sleep(control.cycle_s)

    tokens = None if site.authorization is None else TokenBook(site.authorization)
    policy = CsmsPolicy(tokens=tokens)

    async def main() -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                listener = OcppListener(
                    config, registry, policy=policy, attend=attendant(cares.values())
                )
                if csms is not None:
                    proxy = await nursery.start(_run_proxy, csms)
                    listener.attach = proxy.attach
                port = await nursery.start(listener.serve)
                settle_gc()
                nursery.start_soon(report, port)
                if args.limit_a is not None:
                    nursery.start_soon(hold_limit, args.limit_a)
                async for _ in signals:
                    print("stopped", flush=True)
                    nursery.cancel_scope.cancel()

    return run_trio(main)  # exits 1 when it cannot listen (port taken) or read the TLS files
