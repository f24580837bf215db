"""PUT /connectors/{charger}/{connector}/pv-mode reaches the command sink."""

from __future__ import annotations

from tests.support.api import AUTH, RunningApi


async def test_pv_mode_switch_reaches_the_command_sink(api: RunningApi) -> None:
    url = "/api/v1/connectors/cp-1/1/pv-mode"
    assert (await api.client.put(url, json={"pv_mode": True})).status_code == 401
    on = await api.client.put(url, json={"pv_mode": True}, headers=AUTH)
    assert on.json() == {"accepted": True, "detail": "cp-1#1 charges from PV surplus only"}
    off = await api.client.put(url, json={"pv_mode": False}, headers=AUTH)
    assert off.json() == {"accepted": True, "detail": "cp-1#1 charges from grid"}
    assert (await api.client.put(url, json={"pv_mode": "maybe"}, headers=AUTH)).status_code == 422
    unknown = "/api/v1/connectors/cp-1/9/pv-mode"
    assert (await api.client.put(unknown, json={"pv_mode": True}, headers=AUTH)).status_code == 404
    assert api.commands.calls == [("pv-mode", "cp-1#1", "True"), ("pv-mode", "cp-1#1", "False")]
    api.commands.refuse = "not now"
    refused = await api.client.put(url, json={"pv_mode": True}, headers=AUTH)
    assert refused.status_code == 409
