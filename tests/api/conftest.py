"""A running API on the small example site, fed with snapshots by the test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from hubgate.config.services import Api
from tests.support.api import TOKEN, RunningApi, small_site, start_api


@pytest.fixture
async def api(nursery: trio.Nursery, examples_dir: Path) -> AsyncIterator[RunningApi]:
    """The small site's API with a write token and open reads."""
    running = await start_api(nursery, small_site(examples_dir, Api(port=0, token=TOKEN)))
    async with running.client:
        yield running
