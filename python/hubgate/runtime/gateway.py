"""The gateway: every service of a site as one tree of Trio nurseries under the supervisor.

    async with open_gateway(site) as gateway:
        print(gateway.ports)          # {"ocpp": ..., "api": ..., "modbus-server": ...}
        ...
        await gateway.shutdown()      # every charger to its failsafe current, then stop

The OCPP listener, the Modbus server, the API, MQTT telemetry (when `[mqtt]`
is configured) and the control loop each run as a supervised task: one that
fails is reported and restarted with backoff, the others go on. A listener that cannot
bind its port at start is not restarted: `open_gateway` raises `ListenError`. The Modbus
masters live in one pool shared by the device drivers. With a `[csms]`, the
OCPP listener is the chargers' Local Controller towards it (`hubgate.cloud.proxy`):
the CSMS's charging profiles are limits in the control loop's `LimitBook`, and
while the CSMS is away control goes on locally and transaction messages are
stored and forwarded.

With a `[cluster]` (docs/ha.md) the gateway is one of two on its site: the leader lease
(`hubgate.cluster.leadership`) decides which one commands. Both sense and plan every
cycle; only the leader dispatches, listens for OCPP chargers and proxies them to the
CSMS (so the CSMS sees one local controller; the standby also from when the leader it
succeeds stopped commanding), and `shutdown` hands the lease over instead of commanding
the failsafe current.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

import trio

from hubgate.api.context import ApiContext
from hubgate.api.metrics import MetricsRegistry
from hubgate.api.server import serve_api
from hubgate.cloud.mqtt.publisher import TelemetryPublisher
from hubgate.cloud.proxy import CsmsProxy, ProxySettings, open_csms_proxy
from hubgate.cloud.queue import DurableQueue, open_durable_queue
from hubgate.config.model import SiteConfig
from hubgate.config.tokens import TokenBook
from hubgate.control.authority import SOLE
from hubgate.control.decisions import DecisionLog
from hubgate.control.kept_inputs import keep_inputs
from hubgate.control.limits import LimitBook
from hubgate.control.loop import ControlLoop
from hubgate.modbus.pool import open_modbus_pool
from hubgate.modbus_api.server import serve_modbus
from hubgate.ocpp.network_profiles import offer_gateways
from hubgate.ocpp.policy import CsmsPolicy
from hubgate.ocpp.registry import Station, StationRegistry
from hubgate.ocpp.server import Attend, OcppListener
from hubgate.ocpp.session import OcppSession
from hubgate.ocpp.station_care import UpkeepTicks, attendant
from hubgate.records.events import EventLog
from hubgate.records.store import RecordStore, retention_of
from hubgate.runtime.gc_tuning import keep_heap_trimmed
from hubgate.runtime.preflight import listen_fix
from hubgate.runtime.site_devices import build_site_devices, charger_infos, station_cares
from hubgate.runtime.supervisor import Supervisor, open_supervisor
from hubgate.state import EventCategory, EventLevel, StateHub
from hubgate.wording import counted

if TYPE_CHECKING:  # hubgate.cluster and nats are imported only with a [cluster] (1 MiB)
    from hubgate.cluster.leadership import Leadership
    from hubgate.cluster.link import NatsLink
    from hubgate.cluster.operator_replica import OperatorReplica

log = logging.getLogger(__name__)

Server = Callable[..., Awaitable[None]]


class ListenError(OSError):
    """A listener could not take its port when the gateway started (nothing was restarted)."""


def _first_leaf(error: BaseException) -> BaseException:
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


@dataclass
class Gateway:
    """A running gateway: its ports, control loop and shared state."""

    site: SiteConfig
    loop: ControlLoop
    registry: StationRegistry
    supervisor: Supervisor
    csms: CsmsProxy | None = None
    """The Local Controller proxy, with a `[csms]` (while leader, with a `[cluster]`)."""
    leadership: Leadership | None = None
    """With a `[cluster]`: this gateway's part in it."""
    ports: dict[str, int] = field(default_factory=dict)
    stopping: bool = False
    _control_scope: trio.CancelScope | None = None
    _csms_settings: ProxySettings | None = None
    attend: Attend | None = None
    """What runs beside each charger connection (`hubgate.ocpp.station_care`)."""
    policy: CsmsPolicy | None = None
    """How the OCPP listener answers as the chargers' CSMS (`[authorization]`)."""
    queue: DurableQueue | None = None
    """With a `[cluster]` and a `[csms]`: the replicated store-and-forward queue."""
    operator: OperatorReplica | None = None
    """With a `[cluster]`: the operator's inputs and the CSMS's profiles on both gateways."""

    async def control(self) -> None:
        """The control loop's supervised task (until `shutdown`)."""
        if self.stopping:
            return
        self._control_scope = trio.CancelScope()
        with self._control_scope:
            await self.loop.run()

    async def shutdown(self, timeout_s: float = 5.0) -> dict[str, bool]:
        """Stop the control loop and command every charger to its failsafe current; with
        a `[cluster]`, hand the lease over instead (the chargers keep their setpoints
        under their leases while the standby takes over), and command nothing.

        The services stop when the `open_gateway` block is left."""
        self.stopping = True
        if self._control_scope is not None:
            self._control_scope.cancel()
        with trio.CancelScope(shield=True):
            if self.leadership is not None:
                self.loop.bequeath_last()
                with trio.move_on_after(timeout_s):
                    await self.leadership.release()
                return {}
            return await self.loop.safe_stop(timeout_s)
        raise AssertionError("unreachable: a shielded scope is never cancelled")

    async def lead(self) -> None:
        """With a `[cluster]`: the OCPP listener (and the CSMS proxy) while leader, and
        from when the leader it succeeds stopped commanding (`Leadership.serving`): the
        chargers that leave the old leader connect, boot and report here while the
        device leases run out, and its first cycle as leader commands them."""
        leadership = self.leadership
        assert leadership is not None
        while not self.stopping:
            await leadership.wait_serving(True)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._ocpp_side)
                await leadership.wait_serving(False)
                nursery.cancel_scope.cancel()

    async def _attend(self, station: Station, session: OcppSession) -> None:
        """Per charger connection: its care, and (2.0.1), once this gateway leads, both
        gateways' addresses as its network connection profiles."""
        cluster, leadership = self.site.cluster, self.leadership
        async with trio.open_nursery() as nursery:
            if self.attend is not None:
                nursery.start_soon(self.attend, station, session)
            if cluster is not None and leadership is not None:
                from hubgate.cluster.lease import Role

                await leadership.wait_role(Role.LEADER)
                await offer_gateways(
                    station.identity, session, cluster.ocpp_urls, self.site.ocpp.security_profile
                )

    async def _ocpp_side(self) -> None:
        site = self.site
        queue = self.queue
        if queue is not None and queue.replica is not None:
            await queue.replica.caught_up()  # every message the old leader stored
        proxying: AbstractAsyncContextManager[CsmsProxy | None] = (
            nullcontext()
            if site.csms is None
            else open_csms_proxy(
                site.csms,
                self.loop.limits,
                settings=self._csms_settings,
                events=self.loop.events,
                queue=queue,
                keeper=self.operator,
            )
        )
        async with proxying as proxy, trio.open_nursery() as nursery:
            self.csms = proxy
            attach = None if proxy is None else proxy.attach
            try:
                listener = OcppListener(
                    site.ocpp,
                    self.registry,
                    policy=self.policy,
                    attach=attach,
                    attend=self._attend,
                    events=self.loop.events,
                )
                self.ports["ocpp"] = await nursery.start(listener.serve)
                await trio.sleep_forever()
            finally:
                self.ports.pop("ocpp", None)
                self.csms = None


async def _serve_reporting(
    name: str,
    server: Server,
    ports: dict[str, int],
    ready: trio.Event,
    failed: dict[str, BaseException],
) -> None:
    """Serve, reporting the bound port. Failing to bind at the start ends the task with the
    error in `failed` (the gateway then stops); once served, a failure is the supervisor's
    to restart."""
    async with trio.open_nursery() as nursery:
        first = not ready.is_set()
        try:
            ports[name] = await nursery.start(server)
        except* OSError as error:
            if not first:
                raise
            failed[name] = _first_leaf(error)
        ready.set()


async def _publish_snapshots(hub: StateHub, publisher: TelemetryPublisher) -> None:
    async with trio.open_nursery() as nursery:
        await nursery.start(publisher.run)
        seen = 0
        topics = publisher.topics
        while True:
            seen, state = await hub.wait_newer(seen)
            for node in state.nodes:
                if node.measured_a is not None:
                    publisher.measure(
                        topics.node(node.id, "current_a"), node.measured_a, "A", at=state.at
                    )
                publisher.measure(
                    topics.node(node.id, "commanded_a"), node.commanded_a, "A", at=state.at
                )
            for c in state.connectors:
                publisher.measure(
                    topics.connector(c.charger, c.connector, "setpoint_a"),
                    c.setpoint_a,
                    "A",
                    at=state.at,
                )
            await trio.sleep(max(state.cycle_time_ms or 0.0, 1000.0) / 1000)


def configuration_loaded(site: SiteConfig, source: str | None) -> str:
    """The event text of a site starting: what it controls and under which limits."""
    ocpp = sum(1 for c in site.chargers if c.ocpp is not None)
    connectors = sum(len(c.connectors) for c in site.chargers)
    grid = site.grid
    power = "" if grid.power_limit_kw is None else f", {grid.power_limit_kw:g} kW"
    phase = "/".join(f"{a:g}" for a in grid.phase_current_limit_a)
    where = "" if source is None else f" from {source}"
    return (
        f"configuration loaded{where}: {counted(len(site.chargers), 'charger')} ({ocpp} OCPP, "
        f"{len(site.chargers) - ocpp} Modbus) with {counted(connectors, 'connector')}, "
        f"{counted(len(site.meters), 'meter')}, {counted(len(site.nodes), 'node')}; "
        f"grid {phase} A{power}"
    )


@asynccontextmanager
async def open_gateway(
    site: SiteConfig,
    *,
    start_timeout_s: float = 30.0,
    csms_settings: ProxySettings | None = None,
    records: RecordStore | None = None,
    source: str | None = None,
) -> AsyncIterator[Gateway]:
    """Start every service of `site`; yields once all listeners are bound and cycling began.

    `csms_settings`: the proxy's reconnect timing, with a `[csms]`; `records`: the event
    log's and sessions' file (default: `[records] path`, else in memory); `source`: where
    the site file came from (for the "configuration loaded" event)."""
    hub = StateHub()
    limits = LimitBook()
    decisions = DecisionLog()
    metrics = MetricsRegistry()
    store = records or RecordStore(site.records.path, retention_of(site))
    events = EventLog(store)
    registry = StationRegistry.from_site(site)
    clustered = site.cluster is not None
    proxying: AbstractAsyncContextManager[CsmsProxy | None] = (
        nullcontext()
        if site.csms is None or clustered
        else open_csms_proxy(site.csms, limits, settings=csms_settings, events=events)
    )
    linking: AbstractAsyncContextManager[NatsLink | None] = nullcontext()
    if site.cluster is not None:
        from hubgate.cluster.link import open_nats_link

        linking = open_nats_link(site.cluster)
    try:
        async with (
            open_modbus_pool() as pool,
            linking as link,
            proxying as proxy,
            _replicated_queue(site, link) as queue,
            open_supervisor() as supervisor,
        ):
            leadership = None
            if link is not None and site.cluster is not None:
                from hubgate.cluster.leadership import Leadership
                from hubgate.cluster.timing import lease_timing

                timing = lease_timing(site)
                leadership = Leadership(link, site.cluster, timing, on_lead=pool.dial_again)
            cares = station_cares(site, registry)
            devices = build_site_devices(site, registry, pool, cares)
            loop = ControlLoop(
                site,
                devices,
                limits=limits,
                decisions=decisions,
                hub=hub,
                cycle_time=metrics.cycle_time.observe,
                authority=SOLE if leadership is None else leadership,
                events=events,
            )
            keep_inputs(
                store,
                loop.planner.horizon.schedules,
                loop.planner.horizon.prices,
                nodes=loop.model.node_ids,
                wall_clock=time.time,
                events=events,
            )
            operator = None
            if link is not None and site.cluster is not None:
                from hubgate.cluster.lease import Role
                from hubgate.cluster.operator_replica import OperatorReplica

                operator = OperatorReplica(
                    link,
                    site.cluster,
                    loop.commands,
                    loop.planner.horizon.prices,
                    loop.planner.horizon.schedules,
                    leading=lambda: leadership is not None and leadership.role is Role.LEADER,
                )
            gateway = Gateway(site, loop, registry, supervisor, proxy, leadership)
            gateway.operator = operator
            gateway._csms_settings = csms_settings
            gateway.queue = queue
            attach = None if proxy is None else proxy.attach
            tokens = None if site.authorization is None else TokenBook(site.authorization)
            servers: dict[str, Server] = {
                "api": partial(
                    serve_api,
                    ApiContext(
                        site=site,
                        hub=hub,
                        limits=limits,
                        decisions=decisions,
                        commands=loop.commands if operator is None else operator.commands,
                        metrics=metrics,
                        chargers=partial(charger_infos, cares, devices),
                        events=events,
                        sessions=loop.sessions.current,
                        csms=proxy,
                        leader_csms=(
                            None
                            if leadership is None or site.csms is None
                            else lambda: gateway.csms
                        ),
                        tokens=tokens,
                        schedules=loop.planner.horizon.schedules,
                        prices=loop.planner.horizon.prices,
                    ),
                ),
            }
            ticks = UpkeepTicks()
            gateway.attend = attendant(cares.values(), ticks)
            gateway.policy = CsmsPolicy(tokens=tokens)
            if leadership is None:
                servers["ocpp"] = OcppListener(
                    site.ocpp,
                    registry,
                    policy=gateway.policy,
                    attach=attach,
                    attend=gateway.attend,
                    events=events,
                ).serve
            if site.modbus_server is not None:
                servers["modbus-server"] = partial(
                    serve_modbus,
                    site.modbus_server,
                    site,
                    hub,
                    limits,
                    commands=loop.commands if operator is None else operator.commands,
                )
            ready = {name: trio.Event() for name in servers}
            failed: dict[str, BaseException] = {}
            for name, server in servers.items():
                supervisor.start(
                    name,
                    partial(_serve_reporting, name, server, gateway.ports, ready[name], failed),
                )
            supervisor.start("station-upkeep", ticks.run)
            if site.mqtt is not None:
                supervisor.start(
                    "mqtt", partial(_publish_snapshots, hub, TelemetryPublisher(site.mqtt))
                )
            if queue is not None and queue.replica is not None:
                supervisor.start("queue-replica", partial(queue.replica.follow, queue.run))
            if leadership is not None and link is not None and site.cluster is not None:
                from hubgate.cluster.fleet import FleetLink
                from hubgate.cluster.limit_replica import LimitReplica

                fleet = FleetLink(link, site.cluster, hub, limits, lambda: leadership.role.value)
                supervisor.start("fleet", fleet.run)
                supervisor.start("limit-replica", LimitReplica(link, site.cluster, limits).run)
            if operator is not None:
                supervisor.start("operator-replica", operator.run)
            if leadership is not None:
                supervisor.start("leadership", leadership.run)
                supervisor.start("leader", gateway.lead)

            with trio.fail_after(start_timeout_s):
                for event in ready.values():
                    await event.wait()
            if failed:
                raise ListenError(_cannot_listen(site, failed))
            events.emit(
                EventLevel.INFO,
                "site",
                configuration_loaded(site, source),
                category=EventCategory.CONFIG,
            )
            supervisor.start("control", gateway.control)
            supervisor.start("heap-trim", keep_heap_trimmed)
            yield gateway
            loop.sessions.close(time.time())
            supervisor.nursery.cancel_scope.cancel()
    finally:
        events.flush()
        if records is None:
            store.close()


def _replicated_queue(
    site: SiteConfig, link: NatsLink | None
) -> AbstractAsyncContextManager[DurableQueue | None]:
    """With a `[cluster]` and a `[csms]`: the store-and-forward queue, kept by its replica
    (`hubgate.cluster.queue_replica`) on the standby too."""
    if link is None or site.cluster is None or site.csms is None:
        return nullcontext()
    from hubgate.cluster.queue_replica import QueueReplica

    return open_durable_queue(site.csms.queue_path, replica=QueueReplica(link, site.cluster))


_PORT_FIELDS = {
    "ocpp": "[ocpp] port",
    "api": "[api] port or --api-port",
    "modbus-server": "[modbus_server] port",
}
"""Where each listener's port is set, for the fix of a port another program holds."""


def _cannot_listen(site: SiteConfig, failed: dict[str, BaseException]) -> str:
    where = {"ocpp": site.ocpp, "api": site.api, "modbus-server": site.modbus_server}
    reasons = []
    for name, error in failed.items():
        listener = where[name]
        address = "" if listener is None else f" on {listener.host}:{listener.port}"
        reason = (
            listen_fix(error, listener.host, listener.port, _PORT_FIELDS[name])
            if isinstance(error, OSError) and listener is not None
            else str(error)
        )
        reasons.append(f"{name} cannot listen{address}: {reason}")
    return "; ".join(reasons)


def dashboard_url(site: SiteConfig, port: int) -> str:
    """Where the dashboard of a running gateway is."""
    host = site.api.host
    host = f"[{host}]" if ":" in host else host
    scheme = "https" if site.api.tls_cert is not None else "http"
    return f"{scheme}://{host}:{port}/"
