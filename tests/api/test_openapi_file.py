"""The shipped OpenAPI documents against the API the gateway serves, checked by requests:
every route it answers is in the file with its method, parameters and body; every path of
the file is answered, with exactly the file's methods; a parameter or body the file
constrains is refused where the file says (422 at its location), a documented default
taken; an operation the file secures answers 401 without the token, and only those.
(tests/api/test_openapi.py fuzzes the operations from the file with schemathesis.)"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import pytest
import trio

from hubgate.api.app import endpoints, openapi_file
from hubgate.api.openapi_doc import document_text
from hubgate.config.services import Api
from tests.support.api import AUTH, TOKEN, RunningApi, small_site, snapshot, start_api

Operation = tuple[str, str, dict[str, Any]]
"""(path template, method, the file's operation)."""
BAD = "not-a-value"
STREAMS = {"/api/v1/live", "/api/v1/events/live"}
"""Server-sent events: read for their status only."""


def shipped(open_reads: bool) -> dict[str, Any]:
    """The file as the wheel ships it."""
    document: dict[str, Any] = json.loads(openapi_file(open_reads).read_text(encoding="utf-8"))
    return document


def operations(document: dict[str, Any]) -> Iterator[Operation]:
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield path, method.upper(), operation


def takes(document: dict[str, Any], schema: dict[str, Any], value: str) -> bool:
    """Whether the text `value` is valid under the file's `schema` (formats checked)."""
    checker = jsonschema_rs.Draft202012Validator(
        {**document, "allOf": [schema]}, validate_formats=True
    )
    return bool(checker.is_valid(value))


def url(operation: Operation, bad: str | None = None) -> str:
    """The operation's path with a valid value for each path parameter (`BAD` for `bad`)."""
    path, _, details = operation
    for parameter in details.get("parameters", ()):
        if parameter["in"] == "path":
            value = "1" if parameter["schema"].get("type") == "integer" else "x"
            path = path.replace(
                "{" + parameter["name"] + "}", BAD if parameter["name"] == bad else value
            )
    return path


async def status_of(
    client: httpx.AsyncClient, method: str, path: str, **options: Any
) -> tuple[int, Any]:
    """The answer's status and JSON (None for another or a stream's)."""
    with trio.fail_after(10):
        async with client.stream(method, path, **options) as response:
            if path in STREAMS and response.status_code == 200:
                return 200, None
            await response.aread()
    kind = response.headers.get("content-type", "")
    return response.status_code, response.json() if kind == "application/json" else None


def refused_at(answer: tuple[int, Any]) -> list[list[object]]:
    """The locations a 422 lists."""
    status, body = answer
    return [error["loc"] for error in body["detail"]] if status == 422 else []


@pytest.fixture(params=[False, True], ids=["token-reads", "open-reads"])
async def served(
    request: pytest.FixtureRequest, nursery: trio.Nursery, examples_dir: Path
) -> AsyncIterator[tuple[dict[str, Any], RunningApi]]:
    """A file and an API serving it (reads need the token unless the file's site opens them)."""
    open_reads: bool = request.param
    site = small_site(examples_dir, Api(port=0, token=TOKEN, open_reads=open_reads))
    running = await start_api(nursery, site)
    running.ctx.hub.publish(snapshot(1))
    async with running.client:
        yield shipped(open_reads), running


@pytest.mark.parametrize("open_reads", [False, True])
def test_the_file_is_up_to_date(open_reads: bool) -> None:
    """(A route or model changed without `python -m hubgate.api.openapi_doc` after it.)"""
    written = openapi_file(open_reads).read_text(encoding="utf-8")
    assert written == document_text(open_reads), "regenerate: python -m hubgate.api.openapi_doc"


async def test_the_gateway_serves_the_file(
    served: tuple[dict[str, Any], RunningApi],
) -> None:
    document, api = served
    response = await api.client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == document


def test_every_route_served_is_in_the_file_with_its_parameters_and_body() -> None:
    """From the server's own route table: each operation, its parameters by location and
    name as the server reads them, and whether it reads a body (required or not)."""
    document = shipped(open_reads=False)
    for endpoint in endpoints():
        where = f"{endpoint.route.method} {endpoint.path}"
        details = document["paths"].get(endpoint.path, {}).get(endpoint.route.method.lower())
        assert details is not None, f"{where} is served but not in the file"
        served = {
            (location, field.alias or name, field.is_required() or location == "path")
            for location, model in endpoint.models.items()
            for name, field in model.model_fields.items()
        }
        documented = {(p["in"], p["name"], p["required"]) for p in details.get("parameters", ())}
        assert documented == served, where
        body = details.get("requestBody")
        assert (body is not None) == (endpoint.body is not None), where
        if body is not None:
            assert body.get("required", False) == endpoint.body_required, where
            assert list(body["content"]) == ["application/json"], where


async def test_every_path_answers_the_files_methods_and_no_other(
    served: tuple[dict[str, Any], RunningApi],
) -> None:
    document, api = served
    for operation in operations(document):
        path = url(operation)
        allowed = ", ".join(sorted(m.upper() for m in document["paths"][operation[0]]))
        with trio.fail_after(10):
            response = await api.client.request("PATCH", path, headers=AUTH)
        assert response.status_code == 405, path
        assert response.headers["allow"] == allowed, path


async def test_constrained_parameters_are_refused_where_the_file_says(
    served: tuple[dict[str, Any], RunningApi],
) -> None:
    """A value outside a parameter's schema is a 422 at `[in, name]`; its default is taken."""
    document, api = served
    for operation in operations(document):
        _, method, details = operation
        for parameter in details.get("parameters", ()):
            where, name, schema = parameter["in"], parameter["name"], parameter["schema"]
            loc = [where, name]
            headers = dict(AUTH)
            query: dict[str, str] = {}
            if where == "path":
                path = url(operation, bad=name)
            else:
                path = url(operation)
                (headers if where == "header" else query)[name] = BAD
            answer = await status_of(api.client, method, path, headers=headers, params=query)
            if takes(document, schema, BAD):
                assert loc not in refused_at(answer), (method, path, name)
            else:
                assert loc in refused_at(answer), (method, path, name, answer)
            if where != "path" and parameter.get("schema", {}).get("default") is not None:
                default = json.dumps(schema["default"]).strip('"')
                (headers if where == "header" else query)[name] = default
                answer = await status_of(api.client, method, path, headers=headers, params=query)
                assert loc not in refused_at(answer), (method, path, name, default)


async def test_bodies_are_read_where_the_file_says(
    served: tuple[dict[str, Any], RunningApi],
) -> None:
    """No body: a 422 at `["body"]` where the file requires one; JSON that is no object:
    a 422 in the body wherever the file takes one."""
    document, api = served
    for operation in operations(document):
        _, method, details = operation
        body = details.get("requestBody")
        if body is None:
            continue
        path = url(operation)
        missing = refused_at(await status_of(api.client, method, path, headers=AUTH))
        assert (["body"] in missing) == body.get("required", False), (method, path)
        json_headers = {**AUTH, "Content-Type": "application/json"}
        wrong = await status_of(api.client, method, path, content=b"[]", headers=json_headers)
        assert any(loc[0] == "body" for loc in refused_at(wrong)), (method, path, wrong)


async def test_the_file_secures_exactly_what_needs_the_token(
    served: tuple[dict[str, Any], RunningApi],
) -> None:
    document, api = served
    api.ctx.auth_failures.max_failures = 1000  # (not 429 after the tenth request without one)
    for operation in operations(document):
        _, method, details = operation
        status, _ = await status_of(api.client, method, url(operation))
        secured = "security" in details
        assert (status == 401) == secured, (method, url(operation), status)
