"""The operator's inputs and the CSMS's charging profiles on both gateways of a site.

What the operator gives one gateway through its API, and the charging profiles the CSMS
gives the leader, would otherwise stay on that gateway. `OperatorReplica` keeps each of
them in the KV bucket `hubgate_operator` (replicas from `[cluster]`) and applies what the
other gateway (or an earlier run of this one) wrote, so a new leader goes on with them:

| key `<site_id>.` | value (JSON, with `writer`: the node and this run of it) |
|---|---|
| `priority.<connector>` | `priority`: its tier (`PUT /connectors/.../priority`) |
| `pv_mode.<connector>` | `pv_mode` (`PUT /connectors/.../pv-mode`) |
| `need.<connector>` | `energy_kwh`, `departure` (epoch s) of its session (`PUT /connectors/.../session`); deleted: no deadline |
| `prices` | `points`: every price known, `[start, end, price]` (`PUT`/`DELETE /prices`) |
| `schedules` | `schedules`: every API schedule, its `config` (as the site file writes it) and `origin` (`PUT`/`DELETE /schedules/<name>`) |
| `csms.<target>` | `profiles`: the CSMS's profiles followed on a target, each with when it came and from whom; deleted: none |

(connector ids, schedule names and targets base64url-encoded: KV keys take no `#`.)

Both gateways apply the first five at once (the standby's planner is warm); the CSMS's
profiles are taken by the next leader's `CsmsLimits` when it starts (the limit in force now
is on both already: `cluster.limit_replica`), so it follows their later periods too.
Starting and stopping charging are actions on the leader's charger connection, not state:
the standby's API forwards them to the leader (request `hubgate.<site_id>.commands`,
`{"action": "start" | "stop", "connector", "id_tag"}`, answered `{"status": "Accepted"}`
or `{"error": ...}` by the leader alone) and answers with what the leader said.

A gateway that starts later takes a session need still in the bucket (its departure
ahead) as given then: it counts the energy from then on, and gives it to the connector's
next session if the one it was for has ended meanwhile (unplugging ends a need on both
gateways that run).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import trio
from nats.aio.client import Client
from nats.aio.msg import Msg
from pydantic import ValidationError

from hubgate.cloud.csms_limits import Followed
from hubgate.cluster.kv_mirror import KvMirror, key_part, key_text
from hubgate.cluster.link import NatsLink
from hubgate.config.model import LimitSchedule
from hubgate.config.services import Cluster
from hubgate.control.commands import CommandRejectedError, Commands
from hubgate.control.deadlines import SocTarget
from hubgate.control.prices import PriceSeries
from hubgate.control.schedules import ScheduleBook

log = logging.getLogger(__name__)

BUCKET = "hubgate_operator"

FORWARD_S = 40.0
"""How long the standby's API waits for the leader to carry out a start or stop (a charger
answers a remote start within its OCPP call timeout)."""


class OperatorReplica:
    """Keeps this gateway's operator inputs and CSMS profiles in the bucket, and applies
    the other gateway's (module docstring). `commands` is what the API is given."""

    def __init__(
        self,
        link: NatsLink,
        cluster: Cluster,
        commands: Commands,
        prices: PriceSeries,
        schedules: ScheduleBook,
        *,
        leading: Callable[[], bool] = lambda: True,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.link = link
        self.leading = leading
        """Whether this gateway leads now (it carries out starts and stops itself)."""
        self.subject = f"hubgate.{cluster.site_id}.commands"
        self.site_id = cluster.site_id
        self.wall_clock = wall_clock
        self.inner = commands
        self.prices = prices
        self.schedules = schedules
        self.commands = ReplicatedCommands(self)
        self.mirror = KvMirror(link, cluster, BUCKET, "operator", self._apply)
        self._profiles: dict[str, list[Followed]] = {}
        self._applying = False
        prices.listeners.append(self._prices_changed)
        schedules.listeners.append(self._schedules_changed)
        self._token = trio.lowlevel.current_trio_token()
        self._nursery: trio.Nursery | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Follow the bucket and write this gateway's changes into it, and carry out the
        starts and stops the other gateway forwards while this one leads, for ever;
        started once what is in the bucket already is applied."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await nursery.start(self.mirror.run)
            await self.link.run(self._subscribe, within_s=5.0)
            task_status.started()

    async def forward(self, body: dict[str, Any]) -> None:
        """A start or stop carried out by the leader; `CommandRejectedError` with the
        leader's reason, or when no leader answered within `FORWARD_S`."""
        data = json.dumps(body).encode()
        try:
            answer = await self.link.run(
                lambda nc: nc.request(self.subject, data, timeout=FORWARD_S),
                within_s=FORWARD_S + 1,
            )
            reply = json.loads(answer.data)
        except Exception as exc:  # no leader, the cluster away, or not JSON
            raise CommandRejectedError(
                f"{body['connector']}: this gateway is the standby and the leader did not"
                f" answer ({type(exc).__name__}: {exc})"
            ) from None
        if "error" in reply:
            raise CommandRejectedError(str(reply["error"]))

    async def _carry_out(
        self, data: bytes, done: concurrent.futures.Future[dict[str, Any] | None]
    ) -> None:
        """A forwarded start or stop, on this (leading) gateway."""
        answer: dict[str, Any] = {"error": "not carried out"}
        try:
            body = json.loads(data)
            connector, action = str(body["connector"]), body["action"]
            if action == "start":
                await self.inner.start_charging(connector, body.get("id_tag"))
            elif action == "stop":
                await self.inner.stop_charging(connector)
            else:
                raise ValueError(f"no action {action!r}")
            answer = {"status": "Accepted"}
        except Exception as exc:  # refused, or a body that is not a command: say why
            answer = {"error": str(exc)}
        finally:
            done.set_result(answer)

    # -- on the asyncio side ---------------------------------------------------------------

    async def _subscribe(self, nc: Client) -> None:
        await nc.subscribe(self.subject, cb=self._forwarded)

    async def _forwarded(self, msg: Msg) -> None:
        done: concurrent.futures.Future[dict[str, Any] | None] = concurrent.futures.Future()

        def take() -> None:  # on the Trio thread
            if not self.leading() or self._nursery is None:
                done.set_result(None)  # the leader answers, not the standby
            else:
                self._nursery.start_soon(self._carry_out, msg.data, done)

        try:
            self._token.run_sync_soon(take)
        except trio.RunFinishedError:
            return
        answer = await asyncio.wrap_future(done)
        if answer is not None and msg.reply:
            await msg.respond(json.dumps(answer).encode())

    # -- this gateway's changes -----------------------------------------------------------

    def put(self, kind: str, name: str | None, body: dict[str, Any] | None) -> None:
        """Write one input (`body` None: delete it)."""
        key = f"{self.site_id}.{kind}" + ("" if name is None else f".{key_part(name)}")
        value = (
            None if body is None else json.dumps({"writer": self.mirror.writer, **body}).encode()
        )
        self.mirror.put(key, value)

    def _prices_changed(self) -> None:
        if not self._applying:
            self.put("prices", None, {"points": self.prices.points()})

    def _schedules_changed(self) -> None:
        if not self._applying:
            self.put("schedules", None, {"schedules": self.schedules.api_configs()})

    def kept(self) -> Mapping[str, Sequence[Followed]]:
        """`ProfileKeeper`: the CSMS's profiles per target, as last kept by any gateway."""
        return {target: kept for target, kept in self._profiles.items() if kept}

    def keep(self, target: str, profiles: Sequence[Followed]) -> None:
        """`ProfileKeeper`: `target`'s CSMS profiles now (on the leader)."""
        self._profiles[target] = list(profiles)
        body = [
            {"profile": f.profile, "received": f.received.isoformat(), "origin": f.origin}
            for f in profiles
        ]
        self.put("csms", target, {"profiles": body} if body else None)

    # -- the other gateway's ---------------------------------------------------------------

    async def _apply(self, key: str, value: bytes | None) -> None:
        """One bucket entry (`value` None: deleted)."""
        site, _, rest = key.partition(".")
        kind, _, name = rest.partition(".")
        if site != self.site_id:
            return
        try:
            body = None if value is None else json.loads(value)
            if body is not None and body.get("writer") == self.mirror.writer:
                return  # its own change coming back
            self._applying = True
            await self._apply_one(kind, key_text(name) if name else None, body)
        except (ValueError, KeyError, TypeError, ValidationError, CommandRejectedError) as exc:
            log.warning("cluster: operator input %s not applied: %s", key, exc)
        finally:
            self._applying = False

    async def _apply_one(self, kind: str, name: str | None, body: dict[str, Any] | None) -> None:
        inner = self.inner
        if kind == "prices":
            points = [] if body is None else body["points"]
            self.prices.replace([(float(a), float(b), float(p)) for a, b, p in points])
        elif kind == "schedules":
            self._replace_schedules([] if body is None else body["schedules"])
        elif name is None:
            return
        elif kind == "csms":
            profiles = [] if body is None else body["profiles"]
            self._profiles[name] = [
                Followed(p["profile"], datetime.fromisoformat(p["received"]), str(p["origin"]))
                for p in profiles
            ]
        elif kind == "priority" and body is not None:
            await inner.set_priority(name, int(body["priority"]))
        elif kind == "pv_mode" and body is not None:
            await inner.set_pv_mode(name, bool(body["pv_mode"]))
        elif kind == "need" and body is None:
            await inner.set_session(name, None, None)
        elif kind == "need" and body is not None:
            departure = datetime.fromisoformat(body["departure"])
            if departure.timestamp() > self.wall_clock():  # else its session is over
                energy, cap, target = body["energy_kwh"], body.get("max_current_a"), None
                if body.get("target") is not None:
                    target = SocTarget(float(body["target"][0]), float(body["target"][1]))
                await inner.set_session(
                    name,
                    None if energy is None else float(energy),
                    departure,
                    max_current_a=None if cap is None else float(cap),
                    target=target,
                )

    def _replace_schedules(self, kept: list[dict[str, Any]]) -> None:
        """The API's schedules are exactly `kept` (the site file's stay)."""
        book = self.schedules
        book.replace_api(
            [
                book.schedule(LimitSchedule.model_validate(k["config"]), str(k["origin"]))
                for k in kept
            ]
        )


class ReplicatedCommands:
    """`Commands` for the API of a gateway in a cluster: carried out here, then the inputs
    that are state (priority, PV mode, session need) written for the other gateway."""

    def __init__(self, replica: OperatorReplica) -> None:
        self.replica = replica
        self.inner = replica.inner

    async def set_priority(self, connector: str, priority: int) -> None:
        """`Commands.set_priority`, replicated."""
        await self.inner.set_priority(connector, priority)
        self.replica.put("priority", connector, {"priority": priority})

    async def set_pv_mode(self, connector: str, pv_mode: bool) -> None:
        """`Commands.set_pv_mode`, replicated."""
        await self.inner.set_pv_mode(connector, pv_mode)
        self.replica.put("pv_mode", connector, {"pv_mode": pv_mode})

    async def set_session(
        self,
        connector: str,
        energy_kwh: float | None,
        departure: datetime | None,
        *,
        max_current_a: float | None = None,
        target: SocTarget | None = None,
    ) -> None:
        """`Commands.set_session`, replicated."""
        await self.inner.set_session(
            connector, energy_kwh, departure, max_current_a=max_current_a, target=target
        )
        if departure is None or (energy_kwh is None and target is None):
            self.replica.put("need", connector, None)
            return
        body: dict[str, Any] = {
            "energy_kwh": energy_kwh,
            "departure": departure.isoformat(),
            "max_current_a": max_current_a,
            "target": None if target is None else [target.soc_percent, target.battery_wh],
        }
        self.replica.put("need", connector, body)

    async def start_charging(self, connector: str, id_tag: str | None) -> None:
        """`Commands.start_charging` on the leader: here, or forwarded to it."""
        if self.replica.leading():
            await self.inner.start_charging(connector, id_tag)
        else:
            body = {"action": "start", "connector": connector, "id_tag": id_tag}
            await self.replica.forward(body)

    async def stop_charging(self, connector: str) -> None:
        """`Commands.stop_charging` on the leader: here, or forwarded to it."""
        if self.replica.leading():
            await self.inner.stop_charging(connector)
        else:
            await self.replica.forward({"action": "stop", "connector": connector})
