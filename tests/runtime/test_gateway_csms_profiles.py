"""CSMS profiles never take a charger above the site's share: the gateway as Local Controller
between the test CSMS and a two-connector charge point (both on the `ocpp` package).

The charge point applies what it is given as OCPP 1.6 says (§3.13: per purpose the valid
profile of the highest stack level; a TxProfile overrules the TxDefaultProfile of its
connector; ChargePointMax caps both), and its EVs draw all it allows. A 20 A connection
shares 10 A per connector; the CSMS starts a session with a 32 A TxProfile, which would
outrank hubgate's 10 A TxDefaultProfile on that connector if it reached the charger.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from ocpp.routing import on
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16

from hubgate.backoff import Backoff
from hubgate.cloud.proxy import ProxySettings
from hubgate.config.model import SiteConfig
from hubgate.config.services import Csms
from hubgate.runtime.gateway import Gateway, open_gateway
from tests.support.charge_points import ChargePointThread, Cp16, now_text
from tests.support.csms import CsmsThread
from tests.support.wait import wait_until

FAST = ProxySettings(
    backoff=Backoff(initial_s=0.05, maximum_s=0.2), connect_timeout_s=2.0, first_connect_wait_s=2.0
)
IDENTITY = "TWIN-1"


def _site(csms: CsmsThread, tmp_path: Path) -> SiteConfig:
    return SiteConfig.model_validate(
        {
            "site": {"name": "two connectors"},
            "grid": {"phase_current_limit_a": 20},
            "control": {"cycle_s": 0.5},
            "ocpp": {"port": 0},
            "api": {"port": 0},
            "chargers": [
                {
                    "id": "twin",
                    "node": "grid",
                    "ocpp": {"identity": IDENTITY, "versions": ["1.6"]},
                    "connectors": [
                        {"id": 1, "max_current_a": 32},
                        {"id": 2, "max_current_a": 32},
                    ],
                }
            ],
            "csms": Csms(
                url=f"{csms.url}/ocpp", queue_path=str(tmp_path / "q.sqlite3")
            ).model_dump(),
        }
    )


def _in_force(profile: dict[str, Any], now: datetime) -> bool:
    valid_to = profile.get("valid_to")
    return valid_to is None or datetime.fromisoformat(valid_to) > now


def _best(profiles: list[dict[str, Any]], now: datetime) -> float | None:
    """The limit of the valid profile with the highest stack level, if any."""
    valid = [p for p in profiles if _in_force(p, now)]
    if not valid:
        return None
    best = max(valid, key=lambda p: p["stack_level"])
    schedule = best["charging_schedule"]
    return float(schedule["charging_schedule_period"][0]["limit"])


class TwoConnectors(Cp16):
    """A 1.6 charge point with two connectors that keeps its profiles per connector and
    starts a transaction when told to remotely (with the profile the start carries)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.by_connector: dict[int, list[dict[str, Any]]] = {0: [], 1: [], 2: []}
        self.started: list[int] = []

    def _keep(self, connector: int, profile: dict[str, Any]) -> None:
        kept = [
            p
            for p in self.by_connector[connector]
            if p["charging_profile_id"] != profile["charging_profile_id"]
            and (p["charging_profile_purpose"], p["stack_level"])
            != (profile["charging_profile_purpose"], profile["stack_level"])
        ]
        self.by_connector[connector] = [*kept, profile]

    @on("SetChargingProfile")
    def set_charging_profile(self, connector_id: int, cs_charging_profiles: dict[str, Any]) -> Any:
        self._record("SetChargingProfile", cs_charging_profiles)
        self._keep(connector_id, cs_charging_profiles)
        return result16.SetChargingProfile(status="Accepted")

    @on("RemoteStartTransaction")
    def on_RemoteStartTransaction(  # noqa: N802 - replaces Cp16's handler of that name
        self, id_tag: str, connector_id: int | None = None, **kw: Any
    ) -> Any:
        self._record("RemoteStartTransaction", {"id_tag": id_tag, **kw})
        connector = connector_id or 1
        if "charging_profile" in kw:
            self._keep(connector, kw["charging_profile"])
        self.started.append(connector)
        return result16.RemoteStartTransaction(status="Accepted")

    def limit(self, connector: int) -> float:
        """What the connector allows now (OCPP 1.6 §3.13), 32 A when nothing limits it."""
        now = datetime.now(UTC)
        mine = self.by_connector[connector]
        by_purpose = {
            purpose: _best([p for p in mine if p["charging_profile_purpose"] == purpose], now)
            for purpose in ("TxProfile", "TxDefaultProfile")
        }
        tx = by_purpose["TxProfile"]
        default = by_purpose["TxDefaultProfile"]
        if default is None:
            default = _best(
                [
                    p
                    for p in self.by_connector[0]
                    if p["charging_profile_purpose"] == "TxDefaultProfile"
                ],
                now,
            )
        station = _best(
            [
                p
                for p in self.by_connector[0]
                if p["charging_profile_purpose"] == "ChargePointMaxProfile"
            ],
            now,
        )
        limits = [v for v in (tx if tx is not None else default, station) if v is not None]
        return min([32.0, *limits])


def _drawing(cp: ChargePointThread, connector: int, amps: float) -> None:
    """The connector's EV draws `amps` on each phase (a MeterValues, blocking)."""
    sampled = [
        {"value": f"{amps:.1f}", "measurand": "Current.Import", "phase": p, "unit": "A"}
        for p in ("L1", "L2", "L3")
    ]
    values = [{"timestamp": now_text(), "sampled_value": sampled}]
    cp.call(call16.MeterValues(connector_id=connector, meter_value=values))


def _setpoints(gateway: Gateway) -> dict[str, float]:
    return {c.connector: c.setpoint_a for c in gateway.loop.decisions.recent(1)[-1].connectors}


@pytest.mark.timeout(90)  # after the deadline below, so that Trio ends the test cleanly
async def test_a_32_a_tx_profile_in_a_remote_start_stays_within_the_10_a_share(
    tmp_path: Path,
) -> None:
    csms = CsmsThread()
    await trio.to_thread.run_sync(csms.start)
    samples: list[tuple[float, float, float, float]] = []
    try:
        with trio.fail_after(60):
            async with open_gateway(_site(csms, tmp_path), csms_settings=FAST) as gateway:
                url = f"ws://127.0.0.1:{gateway.ports['ocpp']}/ocpp/{IDENTITY}"
                peer = ChargePointThread(TwoConnectors, url, subprotocols=["ocpp1.6"])
                await trio.to_thread.run_sync(peer.start)
                cp: TwoConnectors = peer.cp

                def call(payload: Any) -> Any:
                    return peer.call(payload)

                boot = call16.BootNotification(charge_point_model="T", charge_point_vendor="V")
                await trio.to_thread.run_sync(call, boot)
                for connector in (1, 2):
                    status = call16.StatusNotification(
                        connector_id=connector, error_code="NoError", status="Charging"
                    )
                    await trio.to_thread.run_sync(call, status)
                start = call16.StartTransaction(
                    connector_id=2, id_tag="EV-2", meter_start=0, timestamp=now_text()
                )
                second = await trio.to_thread.run_sync(call, start)
                await trio.to_thread.run_sync(csms.wait_connected, IDENTITY)
                profile = {
                    "charging_profile_id": 77,
                    "stack_level": 0,
                    "charging_profile_purpose": "TxProfile",
                    "charging_profile_kind": "Relative",
                    "charging_schedule": {
                        "charging_rate_unit": "A",
                        "charging_schedule_period": [{"start_period": 0, "limit": 32.0}],
                    },
                }
                remote = call16.RemoteStartTransaction(
                    id_tag="EV-1", connector_id=1, charging_profile=profile
                )
                answer = await trio.to_thread.run_sync(csms.call, IDENTITY, remote)
                assert answer.status == "Accepted"
                assert cp.started == [1]  # the start went on
                for _ in range(12):  # six seconds, two cycles each
                    for connector in (1, 2):
                        drawn = cp.limit(connector)
                        await trio.to_thread.run_sync(_drawing, peer, connector, drawn)
                    await gateway.loop.cycle_ready.wait()
                    setpoints = _setpoints(gateway)
                    samples.append(
                        (cp.limit(1), cp.limit(2), setpoints["twin#1"], setpoints["twin#2"])
                    )
                received = [p for a, p in cp.received if a == "SetChargingProfile"]

                # a CSMS TxProfile below the share lowers hubgate's setpoint, for as long as
                # its transaction lasts
                lower = call16.SetChargingProfile(
                    connector_id=2, cs_charging_profiles={**profile, "charging_profile_id": 78}
                )
                lower.cs_charging_profiles["charging_schedule"] = {
                    "charging_rate_unit": "A",
                    "charging_schedule_period": [{"start_period": 0, "limit": 6.0}],
                }
                assert (await trio.to_thread.run_sync(csms.call, IDENTITY, lower)).status == (
                    "Accepted"
                )
                for _ in range(4):
                    await gateway.loop.cycle_ready.wait()
                lowered = _setpoints(gateway)["twin#2"], cp.limit(2)
                stop = call16.StopTransaction(
                    transaction_id=second.transaction_id, meter_stop=10, timestamp=now_text()
                )
                await trio.to_thread.run_sync(call, stop)
                after_stop = gateway.loop.limits.in_force("twin#2", trio.current_time()).sources
                await trio.to_thread.run_sync(peer.stop)
                await gateway.shutdown()
    finally:
        await trio.to_thread.run_sync(csms.stop)

    assert lowered == (6.0, 6.0)
    assert after_stop == ()  # the TxProfile ended with its transaction
    assert all(p["charging_profile_purpose"] != "TxProfile" for p in received)
    assert cp.by_connector[1]
    assert all(p["charging_profile_purpose"] == "TxDefaultProfile" for p in cp.by_connector[1])
    for allowed_1, allowed_2, setpoint_1, setpoint_2 in samples[2:]:  # after the first profiles
        assert setpoint_1 <= 10.05
        assert setpoint_2 <= 10.05
        assert allowed_1 <= setpoint_1 + 0.1  # the charger follows hubgate, not the CSMS
        assert allowed_2 <= setpoint_2 + 0.1


async def test_a_held_transaction_is_an_event_and_in_the_api(tmp_path: Path) -> None:
    """The CSMS refuses a start it gets on replay: the gateway's events and API show it."""
    csms = CsmsThread(refuse_starts={"EV-X"})
    await trio.to_thread.run_sync(csms.start)
    await trio.to_thread.run_sync(csms.stop)  # away while the charger starts a session
    site = _site(csms, tmp_path)
    try:
        with trio.fail_after(40):
            async with open_gateway(site, csms_settings=FAST) as gateway:
                url = f"ws://127.0.0.1:{gateway.ports['ocpp']}/ocpp/{IDENTITY}"
                peer = ChargePointThread(TwoConnectors, url, subprotocols=["ocpp1.6"])
                await trio.to_thread.run_sync(peer.start)
                start = call16.StartTransaction(
                    connector_id=1, id_tag="EV-X", meter_start=0, timestamp=now_text()
                )
                assert (await trio.to_thread.run_sync(peer.call, start)).transaction_id == -1
                await trio.to_thread.run_sync(csms.start)
                api = f"http://127.0.0.1:{gateway.ports['api']}/api/v1"
                async with httpx.AsyncClient() as client:

                    async def held_event() -> list[dict[str, Any]]:
                        events = (await client.get(f"{api}/events?level=warning")).json()
                        return [e for e in events if "transaction -1 held" in e["message"]]

                    (event,) = await wait_until(held_event, "the held transaction's event")
                    holds = (await client.get(f"{api}/csms/holds")).json()
                assert event["subject"] == IDENTITY
                assert [(h["charge_point"], h["transaction"]) for h in holds] == [(IDENTITY, "-1")]
                await trio.to_thread.run_sync(peer.stop)
                await gateway.shutdown()
    finally:
        await trio.to_thread.run_sync(csms.stop)
