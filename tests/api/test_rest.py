"""REST reads and writes over loopback HTTP: state, limits as leases, commands, auth."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trio

from hubgate.config.services import Api
from hubgate.control.decisions import ConnectorDecision, DecisionRecord
from hubgate.control.limits import SITE, Limit, LimitSource
from hubgate.devices.model import ChargingTransaction
from hubgate.records.sessions import SessionRecorder
from hubgate.state import EventCategory, EventLevel
from tests.support.api import (
    AUTH,
    TOKEN,
    RunningApi,
    grid_decision,
    small_site,
    snapshot,
    start_api,
)
from tests.support.states import connector


async def test_state_reads_wait_for_the_first_cycle(api: RunningApi) -> None:
    assert (await api.client.get("/api/v1/state")).status_code == 503
    health = (await api.client.get("/api/v1/health")).json()
    assert health["status"] == "starting"

    api.ctx.hub.publish(snapshot(7))
    state = (await api.client.get("/api/v1/state")).json()
    assert state["cycle"] == 7
    assert [c["key"] for c in state["connectors"]] == ["cp-1#1", "cp-2#1", "wb-1#1", "wb-2#1"]
    health = (await api.client.get("/api/v1/health")).json()
    assert health == {
        "status": "degraded",
        "cycle": 7,
        "snapshot_age_s": 3.0,
        "devices": 2,
        "unreachable": ["wb-2"],
    }


async def test_nodes_connectors_devices_events(api: RunningApi) -> None:
    api.ctx.hub.publish(snapshot(1, grid_a=(39.0, 19.5, 0.0)))
    nodes = (await api.client.get("/api/v1/nodes")).json()
    assert [n["id"] for n in nodes] == ["grid", "board"]
    assert nodes[0]["utilisation_ratio"] == pytest.approx(0.5)
    assert nodes[1]["utilisation_ratio"] == pytest.approx(32 / 63)
    board = (await api.client.get("/api/v1/nodes/board")).json()
    assert board["parent"] == "grid"
    assert (await api.client.get("/api/v1/nodes/nope")).status_code == 404

    connector = (await api.client.get("/api/v1/connectors/cp-1/1")).json()
    assert connector["binding"] == "board/L1"
    assert (await api.client.get("/api/v1/connectors/cp-1/2")).status_code == 404
    assert (await api.client.get("/api/v1/connectors/cp-1/x")).status_code == 422

    devices = (await api.client.get("/api/v1/devices")).json()
    assert {d["id"]: d["reachable"] for d in devices} == {"grid-meter": True, "wb-2": False}


async def test_the_event_log_by_time_severity_and_category(api: RunningApi) -> None:
    log = api.ctx.events
    log.emit(EventLevel.INFO, "site", "configuration loaded", category=EventCategory.CONFIG)
    log.emit(EventLevel.WARNING, "site", "grid-operator limit 300 kW (was 1000 kW, -700 kW)",
             category=EventCategory.GRID_OPERATOR)  # fmt: skip
    log.emit(EventLevel.ALARM, "cp-1#1", "not following", category=EventCategory.CHARGER)
    every = (await api.client.get("/api/v1/events")).json()
    assert [e["id"] for e in every] == [1, 2, 3]
    assert every[1]["category"] == "grid-operator"
    assert every[1]["severity"] == "warning"

    async def subjects(**params: object) -> list[str]:
        reply = await api.client.get("/api/v1/events", params=params)  # type: ignore[arg-type]
        assert reply.status_code == 200, reply.text
        return [f"{e['id']}:{e['subject']}" for e in reply.json()]

    assert await subjects(severity="warning") == ["2:site", "3:cp-1#1"]
    assert await subjects(category="charger") == ["3:cp-1#1"]
    assert await subjects(after=2) == ["3:cp-1#1"]
    assert await subjects(limit=1) == ["3:cp-1#1"]
    at = every[1]["at"]
    assert await subjects(since=at) == ["2:site", "3:cp-1#1"]
    iso = datetime.fromtimestamp(at + 3600, UTC).isoformat()
    assert await subjects(since=iso) == []
    bad = await api.client.get("/api/v1/events", params={"since": "yesterday"})
    assert bad.status_code == 422
    assert "ISO 8601" in bad.json()["detail"][0]["msg"]


async def test_limit_write_is_an_api_lease_in_the_book(api: RunningApi) -> None:
    book = api.ctx.limits
    now = api.ctx.clock
    book.set(SITE, LimitSource.CONFIG, Limit((80, 80, 80), 50), now=0, lease_s=None, origin="site")
    body = {"phase_a": [60, 70, 90], "lease_s": 30}

    assert (await api.client.put("/api/v1/limits/site", json=body)).status_code == 401
    wrong = {"Authorization": "Bearer not-the-token-at-all"}
    response = await api.client.put("/api/v1/limits/site", json=body, headers=wrong)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert book.in_force(SITE, now()).sources == (LimitSource.CONFIG,)

    response = await api.client.put("/api/v1/limits/site", json=body, headers=AUTH)
    assert response.status_code == 200
    view = response.json()
    # L3 asked for 90 A: the site file's 80 A less its 2 A margin is what is in force, and
    # its 50 kW less the margin over three phases (3 x 230 V x 2 A), as the allocation holds.
    assert view["in_force"] == {"phase_a": [60.0, 70.0, 78.0], "power_kw": pytest.approx(48.62)}
    assert sorted(view["sources"]) == ["api", "config"]
    lease = next(le for le in book.leases() if le.source is LimitSource.API)
    assert lease.limit == Limit((60, 70, 90))
    assert lease.expires_at is not None
    assert lease.expires_at - lease.set_at == pytest.approx(30)
    assert lease.origin == "api 127.0.0.1"

    listed = (await api.client.get("/api/v1/limits")).json()
    assert [t["target"] for t in listed] == [
        "site",
        "board",
        "cp-1#1",
        "cp-2#1",
        "wb-1#1",
        "wb-2#1",
    ]
    assert {le["source"] for le in listed[0]["leases"]} == {"api", "config"}

    response = await api.client.delete("/api/v1/limits/site", headers=AUTH)
    assert response.json()["sources"] == ["config"]
    audit = (await api.client.get("/api/v1/audit")).json()
    assert [(a["action"], a["source"]) for a in audit] == [
        ("set", "config"),
        ("set", "api"),
        ("cleared", "api"),
    ]
    assert audit[1]["lease_s"] == pytest.approx(30)


async def test_node_and_connector_leases(api: RunningApi) -> None:
    response = await api.client.put(
        "/api/v1/limits/nodes/board", json={"power_kw": 20, "lease_s": 60}, headers=AUTH
    )
    # The board's own 63 A per phase still holds beside the leased 20 kW.
    assert response.json()["in_force"] == {"phase_a": [63.0, 63.0, 63.0], "power_kw": 20.0}
    assert response.json()["sources"] == ["api", "config"]
    response = await api.client.put(
        "/api/v1/limits/connectors/cp-2/1",
        json={"phase_a": [10, 10, 10], "lease_s": 5},
        headers=AUTH,
    )
    assert response.json()["target"] == "cp-2#1"
    assert response.json()["sources"] == ["api"]  # below the connector's 32 A
    assert api.ctx.limits.in_force("cp-2#1", api.ctx.clock()).limit.phase_a == (10, 10, 10)

    grid = await api.client.put(
        "/api/v1/limits/nodes/grid", json={"power_kw": 20, "lease_s": 60}, headers=AUTH
    )
    assert grid.status_code == 404
    assert "site target" in grid.json()["detail"]
    missing = await api.client.put(
        "/api/v1/limits/connectors/cp-9/1", json={"power_kw": 1, "lease_s": 1}, headers=AUTH
    )
    assert missing.status_code == 404


async def test_a_limit_above_the_site_file_shows_the_site_file_in_force(api: RunningApi) -> None:
    """Issue 19: 500 A asked on a site of 80 A (2 A margin) showed 500 A in force."""
    body = {"phase_a": [500, 500, 500], "lease_s": 30}
    response = await api.client.put("/api/v1/limits/site", json=body, headers=AUTH)
    assert response.status_code == 200
    view = response.json()
    assert view["in_force"]["phase_a"] == [78.0, 78.0, 78.0]
    assert view["sources"] == ["api", "config"]
    assert [lease["limit"]["phase_a"] for lease in view["leases"]] == [[500.0, 500.0, 500.0]]
    connector = await api.client.put(
        "/api/v1/limits/connectors/wb-2/1",
        json={"phase_a": [40, 40, 40], "lease_s": 5},
        headers=AUTH,
    )
    assert connector.json()["in_force"]["phase_a"] == [16.0, 16.0, 16.0]  # wb-2's maximum
    listed = (await api.client.get("/api/v1/limits")).json()
    assert listed[0]["in_force"]["phase_a"] == [78.0, 78.0, 78.0]


@pytest.mark.parametrize(
    "body",
    [
        {"phase_a": [10, 10, 10]},  # no lease
        {"lease_s": 10},  # limits nothing
        {"phase_a": [10, 10], "lease_s": 10},
        {"phase_a": [-1, 10, 10], "lease_s": 10},
        {"power_kw": 10, "lease_s": 0},
        {"power_kw": 10, "lease_s": 86_401},
        {"power_kw": 10, "lease_s": 10, "extra": 1},
        {"power_kw": "NaN", "lease_s": 10},
    ],
)
async def test_bad_limit_writes_are_refused_and_change_nothing(
    api: RunningApi, body: dict[str, object]
) -> None:
    response = await api.client.put("/api/v1/limits/site", json=body, headers=AUTH)
    assert response.status_code == 422
    assert list(api.ctx.limits.leases()) == []
    assert api.ctx.limits.audit() == []


async def test_commands_reach_the_command_sink(api: RunningApi) -> None:
    base = "/api/v1/connectors/cp-1/1"
    assert (await api.client.post(f"{base}/stop")).status_code == 401
    put = await api.client.put(f"{base}/priority", json={"priority": 5}, headers=AUTH)
    assert put.json() == {"accepted": True, "detail": "cp-1#1 priority 5"}
    assert (await api.client.post(f"{base}/start", headers=AUTH)).status_code == 200
    start = await api.client.post(f"{base}/start", json={"id_tag": "FLEET-7"}, headers=AUTH)
    assert start.status_code == 200
    assert (await api.client.post(f"{base}/stop", headers=AUTH)).status_code == 200
    bad = await api.client.put(f"{base}/priority", json={"priority": 10}, headers=AUTH)
    assert bad.status_code == 422
    assert (
        await api.client.post("/api/v1/connectors/cp-1/2/stop", headers=AUTH)
    ).status_code == 404
    assert api.commands.calls == [
        ("priority", "cp-1#1", "5"),
        ("start", "cp-1#1", "None"),
        ("start", "cp-1#1", "FLEET-7"),
        ("stop", "cp-1#1"),
    ]

    api.commands.refuse = "cp-1 is offline"
    refused = await api.client.post(f"{base}/stop", headers=AUTH)
    assert refused.status_code == 409
    assert refused.json()["detail"] == "cp-1 is offline"


async def test_decision_log(api: RunningApi) -> None:
    for cycle in range(1, 4):
        api.ctx.decisions.append(
            DecisionRecord(
                cycle=cycle,
                at=float(cycle),
                inputs={"grid_a": (40.0, 30.0, 20.0), "limit_kw": 50.0, "mode": Limit(None, 5)},
                connectors=(ConnectorDecision("cp-1#1", 16.0, 3, "fair share", "board/L1"),),
            )
        )
    decisions = (await api.client.get("/api/v1/decisions", params={"last": 2})).json()
    assert [d["cycle"] for d in decisions] == [2, 3]
    assert decisions[0]["inputs"] == {
        "grid_a": [40.0, 30.0, 20.0],
        "limit_kw": 50.0,
        "mode": "Limit(phase_a=None, power_kw=5)",
    }
    assert decisions[0]["connectors"][0]["binding"] == "board/L1"
    assert (await api.client.get("/api/v1/decisions", params={"last": 0})).status_code == 422


async def test_grid_history_from_the_decision_log(api: RunningApi) -> None:
    limits = [(78.0,) * 3, (78.0,) * 3, (30.0,) * 3]
    for cycle, limit in enumerate(limits, start=1):
        api.ctx.decisions.append(
            grid_decision(
                cycle,
                (40.0, -12.5, 20.0),
                limit,  # type: ignore[arg-type]
                limit[0] * 3 * 230 / 1000,
                "cap" if cycle < 3 else "grid-operator",
            )
        )
    api.ctx.decisions.append(DecisionRecord(cycle=4, at=4.0, inputs={}, connectors=()))
    history = (await api.client.get("/api/v1/history", params={"last": 3})).json()
    assert [h["cycle"] for h in history] == [2, 3]  # cycle 4 has no grid sample
    assert history[1] == {
        "cycle": 3,
        "wall_time": 1_700_000_003.0,
        "measured_a": [40.0, -12.5, 20.0],
        "commanded_a": [48.0, 32.0, 32.0],
        "limit_a": [30.0, 30.0, 30.0],
        "limit_kw": 20.7,
        "source": "grid-operator",
    }
    decision = (await api.client.get("/api/v1/decisions", params={"last": 2})).json()[0]
    assert decision["grid"]["source"] == "grid-operator"


async def test_writes_disabled_without_a_token(nursery: trio.Nursery, examples_dir: Path) -> None:
    running = await start_api(nursery, small_site(examples_dir, Api(port=0)))
    async with running.client as client:
        body = {"power_kw": 10, "lease_s": 10}
        response = await client.put("/api/v1/limits/site", json=body, headers=AUTH)
        assert response.status_code == 403
        assert "token" in response.json()["detail"]
        assert (await client.get("/api/v1/limits")).status_code == 200


async def test_closed_reads_need_the_token(nursery: trio.Nursery, examples_dir: Path) -> None:
    site = small_site(examples_dir, Api(port=0, token=TOKEN, open_reads=False))
    running = await start_api(nursery, site)
    running.ctx.hub.publish(snapshot(1))
    async with running.client as client:
        for path in ("/api/v1/state", "/api/v1/limits", "/api/v1/audit", "/metrics"):
            assert (await client.get(path)).status_code == 401, path
            assert (await client.get(path, headers=AUTH)).status_code == 200, path
        assert (await client.get("/")).status_code == 200  # the page itself asks for the token


async def test_malformed_requests_get_clear_errors(api: RunningApi) -> None:
    response = await api.client.put(
        "/api/v1/limits/site",
        content=b'{"power_kw": 10, "lease_s": ',
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert (error["type"], error["loc"]) == ("json_invalid", ["body"])
    assert error["input"] == '{"power_kw": 10, "lease_s": '  # the text sent, not its repr
    response = await api.client.put("/api/v1/limits/site", json={"lease_s": 10}, headers=AUTH)
    assert "give phase_a and/or power_kw" in response.json()["detail"][0]["msg"]
    assert (await api.client.get("/api/v1/nowhere")).status_code == 404
    assert (await api.client.post("/api/v1/state")).status_code == 405
    assert (await api.client.get("/api/v1/health")).status_code == 200  # still serving
    assert list(api.ctx.limits.leases()) == []


async def test_a_byte_order_mark_before_the_json_is_ignored(api: RunningApi) -> None:
    response = await api.client.put(  # (RFC 8259 8.1: a parser may ignore it; some tools send it)
        "/api/v1/limits/site",
        content='\ufeff{"power_kw": 10, "lease_s": 60}'.encode(),
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert [lease.target for lease in api.ctx.limits.leases()] == ["site"]


async def test_a_missing_body_is_named_as_fastapi_did(api: RunningApi) -> None:
    response = await api.client.put("/api/v1/limits/site", headers=AUTH)
    assert response.status_code == 422
    assert response.json() == {
        "detail": [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}]
    }


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
async def test_a_body_not_sent_as_json_is_refused(
    api: RunningApi, content_type: str | None
) -> None:
    """curl -d sends a form's type: the body is not taken as JSON (FastAPI refused it too)."""
    headers = AUTH if content_type is None else {**AUTH, "Content-Type": content_type}
    body = b'{"power_kw": 10, "lease_s": 60}'
    response = await api.client.put("/api/v1/limits/site", content=body, headers=headers)
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == ["header", "content-type"]
    assert error["msg"] == "the body is JSON: send it with Content-Type: application/json"
    assert error["input"] == content_type
    assert list(api.ctx.limits.leases()) == []


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "application/merge-patch+json"],
)
async def test_json_bodies_by_their_content_type(api: RunningApi, content_type: str) -> None:
    body = b'{"power_kw": 10, "lease_s": 60}'
    headers = {**AUTH, "Content-Type": content_type}
    response = await api.client.put("/api/v1/limits/site", content=body, headers=headers)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/api/v1/state/", "/api/v1/state"),
        ("/api/v1/audit//?last=2", "/api/v1/audit?last=2"),
        ("/api/v1/nodes/a%20b/", "/api/v1/nodes/a%20b"),
        ("/openapi.json/", "/openapi.json"),
        ("/metrics/", "/metrics"),
    ],
)
async def test_a_trailing_slash_redirects_to_the_path(
    api: RunningApi, path: str, location: str
) -> None:
    """As FastAPI (Starlette's redirect_slashes): 307, so a write keeps its method and body."""
    response = await api.client.get(path)
    assert response.status_code == 307
    assert response.headers["location"] == location
    assert response.content == b""


async def exchange(api: RunningApi, request: bytes, ending: bytes) -> bytes:
    """What the API answers to the raw `request` (any request target), read until `ending`."""
    port = api.client.base_url.port
    assert port is not None
    received = b""
    with trio.fail_after(10):
        async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
            await stream.send_all(request)
            while not received.endswith(ending):
                received += await stream.receive_some()
    return received


@pytest.mark.parametrize(
    "path", ["/api/v1/nowhere/", "//example.com/", "//api/v1/state/", "/api/v1/nodes/a/b/"]
)
async def test_a_trailing_slash_on_no_path_of_ours_is_not_found(api: RunningApi, path: str) -> None:
    """(Never a redirect to another host: `//example.com` would be one.)"""
    request = f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()
    answer = await exchange(api, request, b'"Not Found"}')
    assert answer.startswith(b"HTTP/1.1 404 Not Found\r\n")


async def test_head_of_the_page_is_its_get_without_the_body(api: RunningApi) -> None:
    """HEAD / answers GET's status and headers (FastAPI answered 405), and no body: the next
    answer on the connection follows the head at once."""
    get = await api.client.get("/")
    both = b"HEAD / HTTP/1.1\r\nHost: localhost\r\n\r\n"
    both += b"GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\n\r\n"
    received = await exchange(api, both, b"}")
    head, rest = received.split(b"\r\n\r\n", 1)
    status, *lines = head.decode().split("\r\n")
    assert status == "HTTP/1.1 200 OK"
    headers = dict(line.lower().split(": ", 1) for line in lines)
    assert headers["content-type"] == get.headers["content-type"]
    assert headers["content-length"] == get.headers["content-length"] == str(len(get.content))
    assert rest.startswith(b"HTTP/1.1 200 OK\r\n")  # no body between the two


def test_closed_reads_without_a_token_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="open_reads = false needs a token"):
        Api(open_reads=False)


async def test_sessions_filtered_and_as_csv(api: RunningApi) -> None:
    recorder = SessionRecorder(api.ctx.events.store, 1_700_000_000.0)
    t = 1_700_000_000.0
    one = connector("cp-1#1", status="C", energy_kwh=5.0, measured_a=(16.0, 16.0, 16.0))
    two = connector("cp-2#1", status="C", energy_kwh=1.0, reason="GRID_OPERATOR")
    tx = {"cp-2#1": ChargingTransaction("88", "TOKEN-B")}
    recorder.observe((one, two), tx, t)
    recorder.observe(
        (one.model_copy(update={"energy_kwh": 7.5}), two.model_copy(update={"energy_kwh": 2.0})),
        tx,
        t + 60,
    )
    recorder.observe((one.model_copy(update={"status": "A"}), two), tx, t + 120)
    every = (await api.client.get("/api/v1/sessions")).json()
    assert [(s["connector"], s["stopped_at"] is None) for s in every] == [
        ("cp-1#1", False),
        ("cp-2#1", True),
    ]
    assert every[0]["energy_kwh"] == 2.5
    mine = (await api.client.get("/api/v1/sessions", params={"id_token": "TOKEN-B"})).json()
    assert [s["transaction_id"] for s in mine] == ["88"]
    going = (await api.client.get("/api/v1/sessions", params={"open": "true"})).json()
    assert [s["connector"] for s in going] == ["cp-2#1"]
    reply = await api.client.get("/api/v1/sessions", params={"format": "csv"})
    assert reply.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(reply.text)))
    assert rows[0][:4] == ["id", "connector", "transaction_id", "id_token"]
    assert rows[1][1] == "cp-1#1"
    assert rows[1][4] == "2023-11-14T22:13:20+00:00"
    assert rows[1][6] == "2.500"
    assert rows[2][10] == "GRID_OPERATOR=120"
    bad = await api.client.get("/api/v1/sessions", params={"format": "xls"})
    assert bad.status_code == 422


LIMIT = "/api/v1/limits/site"
CP1 = "/api/v1/connectors/cp-1/1"


@pytest.mark.parametrize(
    ("path", "text", "field"),
    [
        (LIMIT, '{"phase_a": [NaN, 10, 10], "lease_s": 10}', ["body", "phase_a", 0]),
        (LIMIT, '{"phase_a": [10, 10, 10], "lease_s": Infinity}', ["body", "lease_s"]),
        (LIMIT, '{"power_kw": -Infinity, "lease_s": 10}', ["body", "power_kw"]),
        (LIMIT, '{"phase_a": [1e309, 10, 10], "lease_s": 10}', ["body", "phase_a", 0]),
        (LIMIT, '{"phase_a": ["10", 10, 10], "lease_s": 10}', ["body", "phase_a", 0]),
        (LIMIT, '{"phase_a": [false, false, false], "lease_s": 10}', ["body", "phase_a", 0]),
        (LIMIT, '{"power_kw": true, "lease_s": 10}', ["body", "power_kw"]),
        (LIMIT, '{"power_kw": 10, "lease_s": "60"}', ["body", "lease_s"]),
        (f"{CP1}/priority", '{"priority": true}', ["body", "priority"]),
        (f"{CP1}/priority", '{"priority": "2"}', ["body", "priority"]),
        (f"{CP1}/priority", '{"priority": 2.5}', ["body", "priority"]),
        (f"{CP1}/pv-mode", '{"pv_mode": 1}', ["body", "pv_mode"]),
        (f"{CP1}/pv-mode", '{"pv_mode": "true"}', ["body", "pv_mode"]),
        ("/api/v1/authorization/tokens/TAG-1", '{"blocked": 1}', ["body", "blocked"]),
        (
            f"{CP1}/session",
            '{"energy_kwh": "10", "departure": "2030-01-01T08:00:00Z"}',
            ["body", "energy_kwh"],
        ),
    ],
)
async def test_bodies_are_json_numbers_and_booleans_as_typed(
    api: RunningApi, path: str, text: str, field: list[object]
) -> None:
    """Issue 19: NaN, Infinity and 1e309 gave 500; "10" was 10 A, [false, false, false] 0 A."""
    headers = {**AUTH, "Content-Type": "application/json"}
    response = await api.client.put(path, content=text, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == field
    assert all(lease.source is not LimitSource.API for lease in api.ctx.limits.leases())
    assert api.commands.calls == []
