"""Two gateways, one simulated site, a three-node NATS cluster: all real processes.

`HaSite.start(tmp_path, nats)` writes the site file (two OCPP stations, 2.0.1 and 1.6,
two KEBA P30 Modbus chargers, a grid and a board meter) on free ports and each gateway's
site file: the same site with its own `[cluster]` node (each connected to its own NATS
node, as on a real site), OCPP port and API port. It runs `hubgate run` for gateway a,
once a leads `hubgate sim --serve` at real time (its stations dialling both gateways'
OCPP ports in priority order, every command logged with its sender: `--writes`), then
gateway b. The short leases keep the tests lean: lease 2 s, device-side leases 4 s, so a
take-over comes about 6.5 s after the last renewal.

The simulator names each command's sender (a process); `LeaseHistory` follows every write
of the lease key as the cluster stored it, so `HaSite.commands()` gives each command the
epoch its sender held when the command arrived (docs/ha.md, "Tested").
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import DeliverPolicy, KeyValueConfig
from nats.js.errors import BucketNotFoundError, KeyNotFoundError

from tests.support.nats_cluster import NatsCluster
from tests.support.ports import LOOPBACK, HeldPorts

HUBGATE = str(Path(sys.executable).parent / "hubgate")
LEASE_S = 2.0
DEVICE_LEASE_S = 4.0
CYCLE_S = 0.25
FAILSAFE_A = 6.0
API_TOKEN = "ha-test-token-0123456789"
CHARGERS = ("cp-1", "cp-2", "cp-3", "cp-4")
SITE_ID = "ha-test"
"""The cluster's site id: the lease key."""
EPOCH = re.compile(r"cluster: (\w+) is leader \(epoch (\d+)\)")
STANDBY = re.compile(r"cluster: (\w+) is standby \(")
DASHBOARD = re.compile(r"^dashboard: (http://\S+/)$", re.MULTILINE)
LOG_LEVEL = os.environ.get("HA_LOG_LEVEL", "WARNING")
"""The gateways' `--log-level` (their logs are kept under the test's directory): e.g.
`HA_LOG_LEVEL=DEBUG` to follow every lease write and failed read."""
SIM_START_S = 120.0
"""How long the simulator may take to serve the site: a `hubgate` process starts in
1-2 s on a quiet machine, but was seen to take 32 s at a load of ~25 (the gateways then
dial its devices' ports with a reconnect back-off that has grown to its 10 s ceiling)."""


def site_file(ports: dict[str, int]) -> str:
    """The site, devices on `ports`."""
    keba = '{{ profile = "keba-p30", host = "127.0.0.1", port = {}, unit = 255 }}'
    sdm = '{{ profile = "eastron-sdm630", host = "127.0.0.1", port = {}, unit = 1 }}'
    return f"""\
[site]
name = "ha"

[grid]
phase_current_limit_a = 80
power_limit_kw = 55

[[nodes]]
id = "board"
kind = "switchboard"
phase_current_limit_a = 70

[[chargers]]
id = "cp-1"
node = "board"
ocpp = {{ identity = "HA-1", versions = ["2.0.1"] }}
connectors = [{{ id = 1, max_current_a = 32 }}]

[[chargers]]
id = "cp-2"
node = "board"
modbus = {keba.format(ports["cp-2"])}
connectors = [{{ id = 1, max_current_a = 32 }}]

[[chargers]]
id = "cp-3"
node = "board"
ocpp = {{ identity = "HA-3", versions = ["1.6"] }}
connectors = [{{ id = 1, max_current_a = 32 }}]

[[chargers]]
id = "cp-4"
node = "board"
modbus = {keba.format(ports["cp-4"])}
connectors = [{{ id = 1, max_current_a = 32 }}]

[[meters]]
id = "meter-grid"
node = "grid"
modbus = {sdm.format(ports["meter-grid"])}

[[meters]]
id = "meter-board"
node = "board"
modbus = {sdm.format(ports["meter-board"])}

[control]
cycle_s = {CYCLE_S}
meter_stale_s = 1
degraded_budget_percent = 50
failsafe_current_a = {FAILSAFE_A:g}
lease_s = {DEVICE_LEASE_S}

[api]
port = 0
token = "{API_TOKEN}"
"""


SCENARIO = """\
[scenario]
name = "ha: two gateways"
site = "site.toml"
duration_s = 600
seed = 5

[arrivals]
initial_occupancy = 1.0
rate_per_hour = 0
mean_stay_h = 5

[[ev_mix]]
name = "car-3p-32a"
weight = 1
capacity_kwh = 80
max_current_a = 32
phases = 3
arrival_soc = [0.2, 0.4]
reaction_s = [2, 3]

[[base_load]]
node = "grid"
amps = 10
variation_percent = 0
"""


def own_ports(site: str, ocpp_port: int) -> str:
    """A gateway's copy of `site`: the OCPP port its own, the API's and the Modbus
    server's free ones (two gateways share the machine in the tests)."""
    for table, port in (("ocpp", ocpp_port), ("api", 0), ("modbus_server", 0)):
        section = re.search(rf"^\[{table}\]\n(?:(?!\[).*\n)*", site, re.MULTILINE)
        if section is None:
            if table == "ocpp":
                site = site.replace("[api]", f"[ocpp]\nport = {port}\n\n[api]")
            continue
        body = re.sub(r"^port = \d+$", f"port = {port}", section.group(0), flags=re.MULTILINE)
        site = site[: section.start()] + body + site[section.end() :]
    return site


def cluster_table(node: str, nats_url: str, ocpp_urls: list[str]) -> str:
    """A gateway's `[cluster]`."""
    urls = ", ".join(f'"{u}"' for u in ocpp_urls)
    return f"""
[cluster]
site_id = "{SITE_ID}"
node = "{node}"
servers = ["{nats_url}"]
lease_s = {LEASE_S}
ocpp_urls = [{urls}]
"""


LEASE_BUCKET = "hubgate_leases"
"""The gateways' lease bucket (`cluster/leadership.py`): one key per site, history 1."""


@dataclass(frozen=True)
class LeaseWrite:
    """One write of the lease key, as the cluster stored it."""

    holder: str
    epoch: int
    """The epoch it carries (a take-over's: its own revision)."""
    revision: int
    stored: float
    """When the stream stored it (wall clock; the servers run on this machine): before
    its writer had the answer, so before any command under it."""


class LeaseHistory:
    """Every write of a site's lease key, in order, from an ordered JetStream consumer of
    the bucket's stream on an asyncio loop of its own thread (nats-py), connected to every
    NATS node (it follows on through the loss of one). It makes the bucket when missing,
    as a gateway does, so that it sees every write from the first: the bucket keeps the
    latest only."""

    def __init__(self, urls: list[str], site_id: str = SITE_ID) -> None:
        self.urls, self.key = urls, site_id
        self._writes: list[LeaseWrite] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._client: Client | None = None
        self._following: asyncio.Task[None] | None = None
        self.problem: Exception | None = None
        """The last error of the following, for a failure message."""

    def start(self, timeout_s: float = 60.0) -> None:
        """Connect, make the bucket if missing and start following (within `timeout_s`)."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(timeout_s), self._loop).result(timeout_s + 5)

    def close(self) -> None:
        """Stop following, disconnect, end the thread."""
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(15)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(15)
            self._loop.close()

    def writes(self, timeout_s: float = 30.0) -> list[LeaseWrite]:
        """Every write so far: the history once it holds the key's revision now."""
        latest = asyncio.run_coroutine_threadsafe(self._latest(timeout_s), self._loop)
        revision = latest.result(timeout_s + 5)
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                if revision == 0 or (self._writes and self._writes[-1].revision >= revision):
                    return list(self._writes)
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"lease writes up to revision {revision} not seen: {self.problem}"
                )
            time.sleep(0.05)

    async def _start(self, timeout_s: float) -> None:
        self._client = await nats.connect(
            servers=self.urls, max_reconnect_attempts=-1, reconnect_time_wait=0.2
        )
        deadline = time.monotonic() + timeout_s
        while True:  # a cluster that has just started may have no JetStream quorum yet
            try:
                await self._bucket()
                break
            except Exception as exc:  # nats-py's errors while the cluster forms
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no lease bucket within {timeout_s:g} s") from exc
                await asyncio.sleep(0.5)
        self._following = asyncio.create_task(self._follow())

    async def _bucket(self) -> None:
        assert self._client is not None
        js = self._client.jetstream(timeout=5)
        try:
            await js.key_value(LEASE_BUCKET)
        except BucketNotFoundError:
            await js.create_key_value(KeyValueConfig(bucket=LEASE_BUCKET, history=1, replicas=3))

    async def _follow(self) -> None:
        assert self._client is not None
        js = self._client.jetstream(timeout=5)
        while True:
            try:
                subscription = await js.subscribe(
                    f"$KV.{LEASE_BUCKET}.{self.key}",
                    stream=f"KV_{LEASE_BUCKET}",
                    ordered_consumer=True,
                    idle_heartbeat=0.5,
                    deliver_policy=DeliverPolicy.ALL,
                )
                try:
                    async for message in subscription.messages:
                        self._add(message)
                finally:
                    await subscription.unsubscribe()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a node lost: follow again from what is kept
                self.problem = exc
                await asyncio.sleep(0.5)

    def _add(self, message: Msg) -> None:
        body = json.loads(message.data)
        meta = message.metadata
        write = LeaseWrite(
            str(body["holder"]),
            int(body["epoch"]) or meta.sequence.stream,
            meta.sequence.stream,
            meta.timestamp.timestamp(),
        )
        with self._lock:
            if not self._writes or write.revision > self._writes[-1].revision:
                self._writes.append(write)

    async def _latest(self, timeout_s: float) -> int:
        """The key's revision now (0: never written)."""
        assert self._client is not None
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                bucket = await self._client.jetstream(timeout=2).key_value(LEASE_BUCKET)
                entry = await bucket.get(self.key)
                return int(entry.revision or 0)
            except KeyNotFoundError:
                return 0
            except Exception:  # a node lost: asked again through another
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)

    async def _close(self) -> None:
        if self._following is not None:
            self._following.cancel()
            await asyncio.gather(self._following, return_exceptions=True)
        if self._client is not None:
            await self._client.close()


def epoch_held(history: list[LeaseWrite], node: str, since: float, at: float) -> int | None:
    """The epoch gateway `node`'s process started at `since` held at `at`: the one of the
    last lease write it made by then (a take-over, renewal or release); None before its
    first."""
    held = None
    for write in history:
        if write.stored > at:
            break
        if write.holder == node and write.stored >= since:
            held = write.epoch
    return held


@dataclass
class Gateway:
    """One `hubgate run` process."""

    name: str
    site: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None
    pids: list[int] = field(default_factory=list)
    """Every process it ran as, in order."""
    starts: list[float] = field(default_factory=list)
    """When each of them was started (wall clock)."""
    offset: int = 0
    """Where the current process's output starts in `log`."""
    held: HeldPorts | None = None
    """The ports its site file gives it, held while it does not run."""

    def start(self) -> None:
        """Start it (again), its output appended to its log; it runs in a folder of its
        own, where its default state files (the records file) go."""
        home = self.log.parent / f"gateway-{self.name}"
        home.mkdir(exist_ok=True)
        self.offset = self.log.stat().st_size if self.log.exists() else 0
        self.starts.append(time.time())
        if self.held is not None:
            self.held.release()
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [HUBGATE, "run", str(self.site.resolve()), "--log-level", LOG_LEVEL],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=home,
            )
        self.pids.append(self.process.pid)

    def signal(self, number: int) -> None:
        """Send it a signal."""
        assert self.process is not None
        self.process.send_signal(number)

    def wait(self, timeout_s: float = 15.0) -> int:
        """Wait for it to exit (its ports held again); its exit status."""
        assert self.process is not None
        status = self.process.wait(timeout_s)
        if self.held is not None:
            self.held.hold_again()
        return status

    def output(self, *, current: bool = False) -> str:
        """Its log: of every process it ran as, or of the current one only."""
        with self.log.open("rb") as log:
            log.seek(self.offset if current else 0)
            return log.read().decode("utf-8", errors="replace")

    def epochs(self, *, current: bool = False) -> list[int]:
        """The epochs it has led under, from its log (the current process's only)."""
        text = self.output(current=current)
        return [int(m.group(2)) for m in EPOCH.finditer(text) if m.group(1) == self.name]

    def wait_leading(self, timeout_s: float = 30.0) -> int:
        """Wait until its current process says it leads; its newest epoch."""
        deadline = time.monotonic() + timeout_s
        while not (epochs := self.epochs(current=True)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"gateway {self.name} did not lead within {timeout_s:g} s")
            time.sleep(0.1)
        return epochs[-1]

    def in_cluster(self) -> bool:
        """Whether its current process has read the lease: it leads, or says as a standby
        whom it watches (so it takes over once the leader goes silent)."""
        text = self.output(current=True)
        return bool(self.epochs(current=True)) or any(
            m.group(1) == self.name for m in STANDBY.finditer(text)
        )

    def wait_in_cluster(self, timeout_s: float = 30.0) -> None:
        """Wait until it has read the lease (`in_cluster`)."""
        deadline = time.monotonic() + timeout_s
        while not self.in_cluster():
            if time.monotonic() > deadline:
                raise TimeoutError(f"gateway {self.name} did not read the lease in {timeout_s:g} s")
            time.sleep(0.1)

    def state(self) -> dict[str, Any]:
        """Its latest snapshot (`GET /api/v1/state`)."""
        state: dict[str, Any] = self.api("GET", "state")
        return state

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """`method /api/v1/<path>` with the token, on the port its log announced last; the
        answer's JSON."""
        text = self.log.read_text(encoding="utf-8", errors="replace")
        found = DASHBOARD.findall(text)
        assert found, f"gateway {self.name} has not announced its API yet"
        request = urllib.request.Request(
            f"{found[-1]}api/v1/{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as answer:
            return json.load(answer)

    def stop(self) -> None:
        """End it for good (SIGKILL if it does not stop within 15 s), its ports let go."""
        if self.held is not None:
            self.held.release()
        process = self.process
        if process is None or process.poll() is not None:
            return
        if process.returncode is None:
            os.kill(process.pid, signal.SIGCONT)
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@dataclass
class HaSite:
    """The simulated site and its two gateways."""

    directory: Path
    nats: NatsCluster
    sim: subprocess.Popen[bytes]
    gateways: dict[str, Gateway]
    lease: LeaseHistory
    chargers: tuple[str, ...] = CHARGERS

    @property
    def writes_file(self) -> Path:
        """The simulator's log of every command (`hubgate.sim.writers`)."""
        return self.directory / "writes.jsonl"

    @classmethod
    def start(
        cls,
        directory: Path,
        nats: NatsCluster,
        *,
        dial_both: bool = True,
        site: str | None = None,
        scenario: str = SCENARIO,
        chargers: tuple[str, ...] = CHARGERS,
    ) -> HaSite:
        """Write the files, start gateway a and wait until it leads, then the simulator,
        then gateway b (`ready` waits for the site to run). The stations dial both
        gateways, or (`dial_both=False`) the first one only until a gateway gives them
        network profiles (2.0.1). `site`: another site file's text (its `[ocpp]`, `[api]`
        and `[modbus_server]` ports are each gateway's own), with its `scenario`, served
        on the site's own ports, and its `chargers`.

        The site comes up under a running leader, as a real site's chargers power up with
        their controller there: the simulated chargers offer their maximum until commanded
        and the EVs are plugged in from the first second, so a simulator started first
        overloads the board on its own until the gateway, still starting, commands (seen
        at a load of ~20: 3-8 s above the limit, the first command at 5 s)."""
        devices = HeldPorts(4)  # the simulator's, held until it starts
        held = {name: HeldPorts(1) for name in ("a", "b")}  # each gateway's, until it starts
        names = ["cp-2", "cp-4", "meter-grid", "meter-board", "ocpp-a", "ocpp-b"]
        ports = dict(zip(names, devices.ports + held["a"].ports + held["b"].ports, strict=True))
        site = site_file(ports) if site is None else site
        (directory / "site.toml").write_text(site, encoding="utf-8")
        (directory / "scenario.toml").write_text(scenario, encoding="utf-8")
        ocpp_urls = [f"ws://{LOOPBACK}:{ports[f'ocpp-{g}']}/ocpp" for g in ("a", "b")]
        gateways = {}
        for index, name in enumerate(("a", "b")):
            own = own_ports(site, ports[f"ocpp-{name}"]) + cluster_table(
                name, nats.urls[index], ocpp_urls
            )
            path = directory / f"gateway-{name}.toml"
            path.write_text(own, encoding="utf-8")
            gateways[name] = Gateway(name, path, directory / f"gateway-{name}.log", held=held[name])
        a, b = gateways["a"], gateways["b"]
        lease = LeaseHistory(nats.urls)
        try:
            lease.start()
            a.start()
            a.wait_leading()
            devices.release()
            with (directory / "sim.log").open("wb") as out:
                sim = subprocess.Popen(
                    [
                        HUBGATE, "sim", str(directory / "scenario.toml"), "--serve",
                        "--csms", ",".join(ocpp_urls if dial_both else ocpp_urls[:1]),
                        "--speed", "1",
                        "--writes", str(directory / "writes.jsonl"),
                        "--json", str(directory / "summary.json"),
                        "--meter-values", "1", "--status-every", "600",
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )  # fmt: skip
            running = cls(directory, nats, sim, gateways, lease, chargers)
        except BaseException:
            devices.release()
            a.stop()
            b.stop()
            lease.close()
            raise
        try:
            b.start()
        except BaseException:
            running.close()
            raise
        return running

    def ready(self) -> None:
        """Wait until the simulator serves the site, then until gateway a has commanded
        every charger and b watches the lease (so it is b that takes over when a goes)."""
        self.wait_serving()
        self.wait_for_commands(self.gateways["a"].pids[0])
        self.gateways["b"].wait_in_cluster()

    def wait_serving(self, timeout_s: float = SIM_START_S) -> None:
        """Wait until the simulator serves every device (its listing is out); a simulator
        that ended instead (e.g. a port it could not listen on) fails at once."""
        deadline = time.monotonic() + timeout_s
        log = self.directory / "sim.log"
        while "served:" not in log.read_text(encoding="utf-8", errors="replace"):
            self._check_sim()
            if time.monotonic() > deadline:
                raise TimeoutError(f"the simulator did not serve the site in {timeout_s:g} s")
            time.sleep(0.2)

    def _check_sim(self) -> None:
        """Raise with its log when the simulator has ended."""
        if self.sim.poll() is not None:
            log = (self.directory / "sim.log").read_text(encoding="utf-8", errors="replace")
            raise RuntimeError(f"the simulator ended ({self.sim.returncode}):\n{log[-2000:]}")

    def writes(self) -> list[dict[str, Any]]:
        """Every command the simulated devices received so far, in order of arrival."""
        if not self.writes_file.exists():
            return []
        lines = self.writes_file.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.endswith("}")]

    def commands(self) -> list[dict[str, Any]]:
        """Every command so far (`writes`), each with the `epoch` its sender held when it
        arrived (`epoch_held`; None from a sender that held none, or not a gateway)."""
        writes = self.writes()
        history = self.lease.writes()
        senders = {
            pid: (gateway.name, started)
            for gateway in self.gateways.values()
            for pid, started in zip(gateway.pids, gateway.starts, strict=True)
        }
        for write in writes:
            sender = senders.get(write["pid"])
            held = None if sender is None else epoch_held(history, *sender, write["at"])
            write["epoch"] = held
        return writes

    def wait_for_commands(
        self,
        pid: int,
        since: float = 0.0,
        timeout_s: float = 40.0,
        chargers: tuple[str, ...] | None = None,
    ) -> float:
        """Wait until every one of `chargers` (default: the site's) has had a command from
        process `pid` (after the wall time `since`); the time of the last of these first
        commands."""
        chargers = self.chargers if chargers is None else chargers
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._check_sim()
            first: dict[str, float] = {}
            for write in self.writes():
                if write["pid"] == pid and write["at"] >= since:
                    first.setdefault(write["device"], write["at"])
            if set(chargers) <= first.keys():
                return max(first[c] for c in chargers)
            time.sleep(0.2)
        commanded = sorted({w["device"] for w in self.writes() if w["pid"] == pid})
        raise TimeoutError(f"process {pid} commanded only {commanded} within {timeout_s:g} s")

    def wait_for_leader(self, name: str, timeout_s: float = 30.0) -> int:
        """Wait until gateway `name` says it leads; its newest epoch."""
        return self.gateways[name].wait_leading(timeout_s)

    def finish(self) -> dict[str, Any]:
        """Stop the simulator (its summary written) and both gateways; the summary."""
        if self.sim.poll() is None:
            self.sim.send_signal(signal.SIGINT)
            self.sim.wait(30)
        for gateway in self.gateways.values():
            gateway.stop()
        self.lease.close()
        summary: dict[str, Any] = json.loads(
            (self.directory / "summary.json").read_text(encoding="utf-8")
        )
        return summary

    def close(self) -> None:
        """End whatever still runs."""
        if self.sim.poll() is None:
            self.sim.kill()
            self.sim.wait(10)
        for gateway in self.gateways.values():
            gateway.stop()
        self.lease.close()


def writers_in_turn(writes: list[dict[str, Any]]) -> list[int | None]:
    """The senders of `writes` in order, each run of the same sender once: one writer at a
    time means no sender appears twice."""
    order: list[int | None] = []
    for write in writes:
        if not order or order[-1] != write["pid"]:
            order.append(write["pid"])
    return order


def epochs_in_turn(commands: list[dict[str, Any]]) -> list[int | None]:
    """The epochs `commands` came under (`HaSite.commands`) in order of arrival, each run
    of the same epoch once."""
    order: list[int | None] = []
    for command in commands:
        if not order or order[-1] != command["epoch"]:
            order.append(command["epoch"])
    return order


def one_epoch_at_a_time(commands: list[dict[str, Any]]) -> bool:
    """Whether every command came under an epoch its sender held and none under an older
    one than a command before it: no command from an old leader after the new one's
    first."""
    order = epochs_in_turn(commands)
    known = [epoch for epoch in order if epoch is not None]
    return len(known) == len(order) and known == sorted(set(known))


def turns(writes: list[dict[str, Any]]) -> str:
    """Where the sender or its epoch changes, for a failure message: the writes either
    side."""
    shown = []
    for before, after in itertools.pairwise(writes):
        if (before["pid"], before.get("epoch")) != (after["pid"], after.get("epoch")):
            shown.append(f"{before} -> {after}")
    return "\n".join(shown)
