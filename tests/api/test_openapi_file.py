"""The OpenAPI document the gateway serves is the app's own, as `hubgate.api.openapi_doc` writes it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio

from hubgate.api.app import openapi_file
from hubgate.api.openapi_doc import document, document_text
from hubgate.config.services import Api
from tests.support.api import TOKEN, small_site, start_api


@pytest.mark.parametrize("open_reads", [False, True])
def test_file_matches_the_app(open_reads: bool) -> None:
    written = openapi_file(open_reads).read_text(encoding="utf-8")
    assert written == document_text(open_reads), "regenerate: python -m hubgate.api.openapi_doc"
    assert json.loads(written) == document(open_reads)


@pytest.mark.parametrize("open_reads", [False, True])
async def test_served_document_is_the_file(
    nursery: trio.Nursery, examples_dir: Path, open_reads: bool
) -> None:
    site = small_site(examples_dir, Api(port=0, token=TOKEN, open_reads=open_reads))
    running = await start_api(nursery, site)
    async with running.client:
        with trio.fail_after(10):
            response = await running.client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == json.loads(openapi_file(open_reads).read_text(encoding="utf-8"))
    secured = "security" in response.json()["paths"]["/api/v1/state"]["get"]
    assert secured is not open_reads
