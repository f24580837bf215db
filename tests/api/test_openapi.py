"""The OpenAPI document is valid, and fuzzing every operation from it gives no server error.

Schemathesis drives the API through its own HTTP client (requests), so the
served app runs in a thread of its own, under Trio as in the gateway.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import httpx
import pytest
import schemathesis
import trio
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from hubgate.api import ApiContext, serve_api
from hubgate.api.app import openapi_file
from hubgate.config.services import Api
from hubgate.control.decisions import ConnectorDecision, DecisionLog, DecisionRecord
from hubgate.control.limits import LimitBook
from hubgate.control.prices import PriceSeries
from hubgate.control.schedules import ScheduleBook
from hubgate.state import StateHub
from tests.support.api import AUTH, TOKEN, RecordingCommands, small_site, snapshot

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _context() -> ApiContext:
    return ApiContext(
        site=small_site(EXAMPLES, Api(port=0, token=TOKEN)),
        hub=StateHub(),
        limits=LimitBook(),
        decisions=DecisionLog(size=10),
        commands=RecordingCommands(),
        schedules=ScheduleBook(),
        prices=PriceSeries(),
    )


async def _serve(
    started: queue.Queue[tuple[int, trio.CancelScope, trio.lowlevel.TrioToken]],
) -> None:
    ctx = _context()
    ctx.hub.publish(snapshot(1))
    ctx.decisions.append(
        DecisionRecord(1, 0.0, {"grid_a": 40.0}, (ConnectorDecision("cp-1#1", 16, 3, "fair"),))
    )
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_api, ctx)
            started.put((port, scope, trio.lowlevel.current_trio_token()))


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    """The URL of an API served by Trio in a thread of its own."""
    started: queue.Queue[tuple[int, trio.CancelScope, trio.lowlevel.TrioToken]] = queue.Queue()
    thread = threading.Thread(target=trio.run, args=(partial(_serve, started),), daemon=True)
    thread.start()
    port, scope, token = started.get(timeout=10)
    yield f"http://127.0.0.1:{port}"
    trio.from_thread.run_sync(scope.cancel, trio_token=token)
    thread.join(timeout=10)
    assert not thread.is_alive()


@pytest.fixture(scope="module")
def document(base_url: str) -> dict[str, object]:
    """The served OpenAPI document."""
    response = httpx.get(f"{base_url}/openapi.json", timeout=10)
    assert response.status_code == 200
    spec: dict[str, object] = response.json()
    return spec


def test_openapi_document_is_valid(document: dict[str, object]) -> None:
    validate(document)  # raises on any violation of the OpenAPI 3.1 specification
    paths = document["paths"]
    assert isinstance(paths, dict)
    assert {
        "/api/v1/state",
        "/api/v1/limits",
        "/api/v1/limits/site",
        "/api/v1/limits/nodes/{node_id}",
        "/api/v1/connectors/{charger}/{connector}/start",
        "/api/v1/live",
        "/api/v1/events",
        "/api/v1/events/live",
        "/api/v1/history",
        "/metrics",
    } <= set(paths)
    schemes = document["components"]["securitySchemes"]  # type: ignore[index]
    assert schemes == {
        "HTTPBearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "The token of the site file's [api] table, as a Bearer token",
        }
    }


def _document() -> dict[str, object]:
    """The app's document, read at collection so that each operation becomes a test."""
    spec: dict[str, object] = json.loads(openapi_file(open_reads=False).read_text(encoding="utf-8"))
    return spec


STREAMS = ["/api/v1/live", "/api/v1/events/live"]
"""Server-sent-event streams never end: they are tested in test_live.py."""

fuzzed = schemathesis.openapi.from_dict(_document()).exclude(path=STREAMS)


@fuzzed.parametrize()
@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_server_error_on_any_input(case: schemathesis.Case, base_url: str) -> None:
    """Valid and invalid requests with the write token: never a 5xx, bodies as documented."""
    case.call_and_validate(
        base_url=base_url,
        headers=AUTH,
        timeout=10,
        checks=[schemathesis.checks.not_a_server_error],
        additional_checks=[response_schema_conformance, content_type_conformance],
    )
