"""PUT /connectors/{charger}/{connector}/session: energy need and departure reach the commands."""

from __future__ import annotations

from tests.support.api import AUTH, RunningApi


async def test_session_need_reaches_the_command_sink(api: RunningApi) -> None:
    url = "/api/v1/connectors/cp-1/1/session"
    need = {"energy_kwh": 42.5, "departure": "2026-03-02T05:30:00+01:00"}
    assert (await api.client.put(url, json=need)).status_code == 401
    put = await api.client.put(url, json=need, headers=AUTH)
    assert put.json() == {
        "accepted": True,
        "detail": "cp-1#1 needs 42.5 kWh by 2026-03-02T05:30:00+01:00",
    }
    van = await api.client.put(url, json=need | {"max_current_a": 16}, headers=AUTH)
    assert van.json()["accepted"] is True
    bus = {"target_soc": 80, "battery_kwh": 200, "departure": "2026-03-02T05:30:00+01:00"}
    soc = await api.client.put(url, json=bus, headers=AUTH)
    assert soc.json() == {
        "accepted": True,
        "detail": "cp-1#1 needs 80 % of 200 kWh by 2026-03-02T05:30:00+01:00",
    }
    cleared = await api.client.put(url, json={}, headers=AUTH)
    assert cleared.json() == {"accepted": True, "detail": "cp-1#1 no deadline"}
    assert api.commands.calls == [
        ("session", "cp-1#1", "42.5", "2026-03-02 05:30:00+01:00"),
        ("session", "cp-1#1", "42.5", "2026-03-02 05:30:00+01:00", "max 16 A"),
        ("session", "cp-1#1", "None", "2026-03-02 05:30:00+01:00", "to 80 % of 200000 Wh"),
        ("session", "cp-1#1", "None", "None"),
    ]


async def test_half_a_need_or_a_naive_time_is_refused_with_the_reason(api: RunningApi) -> None:
    url = "/api/v1/connectors/cp-1/1/session"
    half = await api.client.put(url, json={"energy_kwh": 10}, headers=AUTH)
    assert half.status_code == 422
    assert (
        "give both a need (energy_kwh, or target_soc with battery_kwh) and departure" in half.text
    )
    departure = {"departure": "2026-03-02T05:30:00Z"}
    no_battery = await api.client.put(url, json=departure | {"target_soc": 80}, headers=AUTH)
    assert "give target_soc together with battery_kwh" in no_battery.text
    both = departure | {"energy_kwh": 10, "target_soc": 80, "battery_kwh": 60}
    assert "not both" in (await api.client.put(url, json=both, headers=AUTH)).text
    naive = {"energy_kwh": 10, "departure": "2026-03-02T05:30:00"}
    assert (await api.client.put(url, json=naive, headers=AUTH)).status_code == 422
    negative = {"energy_kwh": -1, "departure": "2026-03-02T05:30:00Z"}
    assert (await api.client.put(url, json=negative, headers=AUTH)).status_code == 422
    no_current = {"energy_kwh": 1, "departure": "2026-03-02T05:30:00Z", "max_current_a": 0}
    assert (await api.client.put(url, json=no_current, headers=AUTH)).status_code == 422
    unknown = "/api/v1/connectors/cp-1/9/session"
    need = {"energy_kwh": 10, "departure": "2026-03-02T05:30:00Z"}
    assert (await api.client.put(unknown, json=need, headers=AUTH)).status_code == 404
    assert api.commands.calls == []
