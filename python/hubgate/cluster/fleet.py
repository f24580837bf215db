"""The fleet link: a site on NATS subjects under `hubgate.<site_id>.>`, reached from a
central cluster through a leaf node (docs/ha.md).

| subject | what |
|---|---|
| `hubgate.<site_id>.state` | the leader's summary of each control cycle, at most once a second |
| `hubgate.<site_id>.events` | each operator event as it happens (leader) |
| `hubgate.<site_id>.sessions` | each charging session that started or ended (leader; `SessionWatch`) |
| `hubgate.<site_id>.limits.set` | request: a fleet limit lease, `{"token", "power_kw" and/or "phase_a", "lease_s", "origin"}`; answered Accepted or Rejected with a reason |
| `hubgate.fleet.status` | request to every site: each gateway answers with its summary (`hubgate fleet status`) |

A fleet lease is a `LimitSource.FLEET` lease on the site in the `LimitBook` (both gateways
take it, so the standby has it when it takes over). A site cut off from the fleet keeps
its last lease until the lease runs out, then falls back to its own limits. Requests
without the token in the environment variable `[cluster] fleet_token_env` are refused.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import hmac
import json
import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import trio
from nats.aio.client import Client
from nats.aio.msg import Msg

from hubgate.cluster.link import ClusterUnavailableError, NatsLink
from hubgate.config.services import Cluster
from hubgate.control.limits import SITE, Limit, LimitBook, LimitSource
from hubgate.profiles.model import IecState
from hubgate.state import SiteState, StateHub

log = logging.getLogger(__name__)

STATUS_SUBJECT = "hubgate.fleet.status"
LONGEST_LEASE_S = 24 * 3600.0


def summary(site_id: str, node: str, role: str, state: SiteState | None) -> dict[str, Any]:
    """What a gateway tells the fleet about its site."""
    body: dict[str, Any] = {"site": site_id, "node": node, "role": role}
    if state is None:
        return body
    grid = state.node("grid")
    return body | {
        "cycle": state.cycle,
        "at": state.at,
        "grid_a": grid.measured_a,
        "grid_limit_a": grid.limit_a,
        "connectors": len(state.connectors),
        "charging": sum(1 for c in state.connectors if c.setpoint_a > 0),
        "reachable": sum(1 for d in state.devices if d.reachable),
        "devices": len(state.devices),
    }


def lease_request(data: bytes, token: str | None) -> tuple[Limit, float, str]:
    """A limit lease request's limit, length and origin; ValueError says why it is refused."""
    if token is None:
        raise ValueError("this site takes no fleet limits (no [cluster] fleet_token_env)")
    try:
        body = json.loads(data)
    except ValueError:
        raise ValueError("not JSON") from None
    if not isinstance(body, dict):
        raise ValueError("not a JSON object")
    if not hmac.compare_digest(str(body.get("token", "")), token):
        raise ValueError("wrong token")
    lease_s = body.get("lease_s")
    if not isinstance(lease_s, int | float) or not 0 < lease_s <= LONGEST_LEASE_S:
        raise ValueError(f"lease_s must be a number of seconds in (0, {LONGEST_LEASE_S:g}]")
    power = body.get("power_kw")
    phases = body.get("phase_a")
    if power is None and phases is None:
        raise ValueError("give power_kw and/or phase_a")
    try:
        limit = Limit(
            phase_a=None
            if phases is None
            else (float(phases[0]), float(phases[1]), float(phases[2])),
            power_kw=None if power is None else float(power),
        )
    except (TypeError, IndexError, ValueError) as exc:
        raise ValueError(f"bad limit: {exc}") from None
    if any(not math.isfinite(v) for v in (limit.phase_a or ()) + (limit.power_kw or 0.0,)):
        raise ValueError("limits must be finite")
    return limit, float(lease_s), str(body.get("origin", "fleet"))[:100]


PLUGGED = frozenset({IecState.B.value, IecState.C.value, IecState.D.value})
"""Snapshot statuses of a connector with a vehicle plugged in (IEC 61851 B, C, D)."""


@dataclass
class _Open:
    started_at: float
    energy_kwh: float | None


class SessionWatch:
    """Charging sessions seen in the snapshots: one starts when a vehicle is plugged in
    (IEC B, C or D) and ends when the connector is free again (A); an unreachable or
    faulted connector's session stays open. Both gateways watch, so a new leader knows
    the sessions under way."""

    def __init__(self) -> None:
        self._open: dict[str, _Open] = {}

    def update(self, state: SiteState) -> list[dict[str, Any]]:
        """The sessions that started or ended since the last snapshot seen."""
        news: list[dict[str, Any]] = []
        for c in state.connectors:
            session = self._open.get(c.key)
            about = {"connector": c.key, "charger": c.charger, "at": state.at}
            if session is None and c.status in PLUGGED:
                self._open[c.key] = _Open(state.at, c.energy_kwh)
                news.append(about | {"event": "started", "energy_kwh": c.energy_kwh})
            elif session is not None and c.status == IecState.A.value:
                del self._open[c.key]
                start, end = session.energy_kwh, c.energy_kwh
                delivered = None if start is None or end is None or end < start else end - start
                news.append(
                    about
                    | {
                        "event": "ended",
                        "started_at": session.started_at,
                        "energy_kwh": end,
                        "delivered_kwh": delivered,
                    }
                )
        return news


class FleetLink:
    """This gateway on the fleet's subjects (see the module docstring)."""

    def __init__(
        self,
        link: NatsLink,
        cluster: Cluster,
        hub: StateHub,
        limits: LimitBook,
        role: Callable[[], str],
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        self.link = link
        self.cluster = cluster
        self.hub = hub
        self.limits = limits
        self.role = role
        self.clock = clock
        self.prefix = f"hubgate.{cluster.site_id}"
        self.token = (
            None if cluster.fleet_token_env is None else os.environ.get(cluster.fleet_token_env)
        )
        self._status = b"{}"
        self._token = trio.lowlevel.current_trio_token()

    def _summary(self) -> dict[str, Any]:
        return summary(self.cluster.site_id, self.cluster.node, self.role(), self.hub.latest)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Answer the fleet and publish the leader's state, for ever."""
        await self.link.wait_connected()
        await self.link.run(self._subscribe, within_s=5.0)
        task_status.started()
        seen_events = 0.0
        sessions = SessionWatch()
        while True:
            body = self._summary()
            self._status = json.dumps(body).encode()
            state = self.hub.latest
            changed = [] if state is None else sessions.update(state)
            if body["role"] == "leader":
                news = [] if state is None else [e for e in state.events if e.at > seen_events]
                if news:
                    seen_events = news[-1].at
                publish = functools.partial(self._publish, events=news, sessions=changed)
                try:
                    await self.link.run(publish, within_s=2.0)
                except (ClusterUnavailableError, OSError) as exc:
                    log.debug("fleet: state not published: %s", exc)
                except Exception as exc:  # nats-py's errors: the link reconnects
                    log.debug("fleet: state not published: %s", exc)
            await trio.sleep(1.0)

    # -- on the asyncio side -----------------------------------------------------------

    async def _subscribe(self, nc: Client) -> None:
        await nc.subscribe(f"{self.prefix}.limits.set", cb=self._limits)
        await nc.subscribe(STATUS_SUBJECT, cb=self._answer_status)

    async def _publish(self, nc: Client, events: list[Any], sessions: list[dict[str, Any]]) -> None:
        await nc.publish(f"{self.prefix}.state", self._status)
        for event in events:
            await nc.publish(f"{self.prefix}.events", event.model_dump_json().encode())
        for session in sessions:
            await nc.publish(f"{self.prefix}.sessions", json.dumps(session).encode())

    async def _answer_status(self, msg: Msg) -> None:
        if msg.reply:
            await msg.respond(self._status)

    async def _limits(self, msg: Msg) -> None:
        done: concurrent.futures.Future[dict[str, Any]] = concurrent.futures.Future()

        def apply() -> None:  # on the Trio thread: the LimitBook is the control loop's
            try:
                limit, lease_s, origin = lease_request(msg.data, self.token)
            except ValueError as exc:
                log.warning("fleet: limit refused: %s", exc)
                done.set_result({"status": "Rejected", "reason": str(exc)})
                return
            self.limits.set(
                SITE, LimitSource.FLEET, limit, now=self.clock(), lease_s=lease_s, origin=origin
            )
            done.set_result({"status": "Accepted", "lease_s": lease_s})

        try:
            self._token.run_sync_soon(apply)
        except trio.RunFinishedError:
            return
        answer = await asyncio.wrap_future(done)
        if msg.reply:
            await msg.respond(json.dumps(answer).encode())
