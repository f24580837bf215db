"""Offline authorization as OCPP says: the local list, then the cache, then the site's rule
for unknown id tokens (LocalAuthorizeOffline, AllowOfflineTxForUnknownId); the same verdict
for Authorize and for the start of a transaction, in 1.6 and 2.0.1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from hubgate.ocpp.versions import OcppVersion
from tests.support.charge_points import ChargePointThread, now_text
from tests.support.proxy import Proxied, open_proxied

V16, V201 = OcppVersion.V16, OcppVersion.V201
TAGS = ("L-OK", "L-BLOCKED", "L-EXPIRED", "TAG-OK", "TAG-BAD", "NEVER-SEEN")
"""In the local list: Accepted, Blocked, Accepted until yesterday; in the cache (the CSMS
answered an online Authorize): Accepted, Invalid; and one never seen."""

YESTERDAY = now_text(-86_400)


def _list_entry(version: OcppVersion, tag: str, status: str, expiry: str | None) -> Any:
    if version is V16:
        info = {"status": status} | ({"expiry_date": expiry} if expiry else {})
        return {"id_tag": tag, "id_tag_info": info}
    info = {"status": status} | ({"cache_expiry_date_time": expiry} if expiry else {})
    return {"id_token": {"id_token": tag, "type": "ISO14443"}, "id_token_info": info}


def _authorize(version: OcppVersion, tag: str) -> Any:
    if version is V16:
        return call16.Authorize(id_tag=tag)
    return call201.Authorize(id_token={"id_token": tag, "type": "ISO14443"})


def _start(version: OcppVersion, tag: str, n: int) -> Any:
    if version is V16:
        return call16.StartTransaction(
            connector_id=1, id_tag=tag, meter_start=n, timestamp=now_text()
        )
    return call201.TransactionEvent(
        event_type="Started",
        timestamp=now_text(),
        trigger_reason="Authorized",
        seq_no=0,
        transaction_info={"transaction_id": f"tx-{n}"},
        evse={"id": 1, "connector_id": 1},
        id_token={"id_token": tag, "type": "ISO14443"},
    )


def _status(version: OcppVersion, answer: Any) -> str:
    info = answer.id_tag_info if version is V16 else answer.id_token_info
    return str(info["status"])


async def _prepare(env: Proxied, cp: ChargePointThread, version: OcppVersion) -> None:
    """The CSMS sends its local list; the charger authorizes two tokens online (cached)."""
    identity = cp.identity
    entries = [
        _list_entry(version, "L-OK", "Accepted", None),
        _list_entry(version, "L-BLOCKED", "Blocked", None),
        _list_entry(version, "L-EXPIRED", "Accepted", YESTERDAY),
    ]
    if version is V16:
        request: Any = call16.SendLocalList(
            list_version=1, update_type="Full", local_authorization_list=entries
        )
    else:
        request = call201.SendLocalList(
            version_number=1, update_type="Full", local_authorization_list=entries
        )
    assert (await env.csms_call(identity, request)).status == "Accepted"
    for tag in ("TAG-OK", "TAG-BAD"):
        await env.call(cp, _authorize(version, tag))


@pytest.mark.parametrize("version", [V16, V201])
@pytest.mark.parametrize(
    ("local_authorize_offline", "allow_unknown"), [(True, False), (True, True), (False, False)]
)
async def test_offline_verdicts(
    tmp_path: Path, version: OcppVersion, local_authorize_offline: bool, allow_unknown: bool
) -> None:
    unknown = "Invalid" if version is V16 else "Unknown"
    accepted_locally = "Accepted" if local_authorize_offline else unknown
    expected = {
        "L-OK": accepted_locally,
        "L-BLOCKED": "Blocked",
        "L-EXPIRED": "Expired",
        "TAG-OK": accepted_locally,
        "TAG-BAD": "Invalid",
        "NEVER-SEEN": "Accepted" if allow_unknown else unknown,
    }
    identity = "CP16" if version is V16 else "CP201"
    with trio.fail_after(30):
        async with open_proxied(
            tmp_path,
            local_authorize_offline=local_authorize_offline,
            allow_offline_tx_for_unknown_id=allow_unknown,
        ) as env:
            cp = await env.connect(identity, version)
            await _prepare(env, cp, version)
            await env.stop_csms()
            authorized = {
                t: _status(version, await env.call(cp, _authorize(version, t))) for t in TAGS
            }
            started = {
                t: _status(version, await env.call(cp, _start(version, t, n)))
                for n, t in enumerate(TAGS)
            }
            assert authorized == expected
            assert started == expected
            # every start is kept for the CSMS, refused or not
            assert await env.proxy.queue.run(lambda s: s.pending_count()) == len(TAGS)
            await trio.to_thread.run_sync(cp.stop)


def _settings_change(version: OcppVersion, local_offline: str, unknown: str) -> Any:
    """The CSMS's change of the charger's own offline rules (1.6 keys, 2.0.1 AuthCtrlr)."""
    if version is V16:
        return [
            call16.ChangeConfiguration(key="LocalAuthorizeOffline", value=local_offline),
            call16.ChangeConfiguration(key="AllowOfflineTxForUnknownId", value=unknown),
        ]
    data = [
        {"component": {"name": "AuthCtrlr"}, "variable": {"name": name}, "attribute_value": value}
        for name, value in (
            ("LocalAuthorizeOffline", local_offline),
            ("OfflineTxForUnknownIdEnabled", unknown),
        )
    ]
    return [call201.SetVariables(set_variable_data=data)]


@pytest.mark.parametrize("version", [V16, V201])
@pytest.mark.parametrize("setting", ["false", "true"])
async def test_by_default_the_chargers_own_rules_hold_as_the_csms_set_them(
    tmp_path: Path, version: OcppVersion, setting: str
) -> None:
    """With the `[csms]` defaults ("charger"), hubgate answers as the charger itself would
    offline: first by its defaults (it reports neither setting: cached tokens accepted,
    unknown ones refused), then as the CSMS set both settings through hubgate (false:
    neither charges; true: both do)."""
    unknown = "Invalid" if version is V16 else "Unknown"
    verdict = "Accepted" if setting == "true" else unknown
    identity = "CP16" if version is V16 else "CP201"
    with trio.fail_after(45):
        async with open_proxied(tmp_path) as env:
            cp = await env.connect(identity, version)
            await _prepare(env, cp, version)
            await env.stop_csms()
            before = {
                t: _status(version, await env.call(cp, _authorize(version, t)))
                for t in ("TAG-OK", "NEVER-SEEN")
            }
            assert before == {"TAG-OK": "Accepted", "NEVER-SEEN": unknown}
            await env.start_csms()
            await env.online(identity)
            for change in _settings_change(version, setting, setting):
                answer = await env.csms_call(identity, change)
                statuses = (
                    [answer.status]
                    if version is V16
                    else [r["attribute_status"] for r in answer.set_variable_result]
                )
                assert statuses == ["Accepted"] * len(statuses)
            await env.stop_csms()
            after = {
                t: _status(version, await env.call(cp, _start(version, t, n)))
                for n, t in enumerate(("TAG-OK", "NEVER-SEEN"))
            }
            assert after == {"TAG-OK": verdict, "NEVER-SEEN": verdict}
            await trio.to_thread.run_sync(cp.stop)


async def test_the_site_file_overrides_the_chargers_rule(tmp_path: Path) -> None:
    """A `[csms]` boolean wins over what the charger says: the site refuses unknown tokens
    though the charger would let them charge."""
    with trio.fail_after(30):
        async with open_proxied(tmp_path, allow_offline_tx_for_unknown_id=False) as env:
            cp = await env.connect("CP16", V16)
            for change in _settings_change(V16, "true", "true"):
                assert (await env.csms_call("CP16", change)).status == "Accepted"
            await env.stop_csms()
            assert _status(V16, await env.call(cp, _authorize(V16, "NEVER-SEEN"))) == "Invalid"
            await trio.to_thread.run_sync(cp.stop)
