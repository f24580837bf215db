"""CSMS lost/back events: the sans-IO watch, and the proxy reporting a real outage."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import trio

from hubgate.cloud.csms_watch import CsmsChange, CsmsWatch
from hubgate.config.model import OcppVersion
from hubgate.state import EventLevel
from tests.support.proxy import open_proxied, transaction16
from tests.support.wait import wait_until


def test_short_reconnects_are_no_event_a_long_outage_is_one_then_back() -> None:
    watch = CsmsWatch(lost_after_s=10, first_connect_s=30)
    assert watch.update([], 0) is None  # nothing needs the CSMS yet
    assert watch.update([False], 1) is None
    assert watch.update([True, False], 2) is None  # first connection: no "back"
    assert watch.update([False, False], 8) is None  # 6 s down: a reconnect
    assert watch.update([True], 9) is None
    assert watch.update([False], 10) is None
    assert watch.update([False], 19) == CsmsChange(lost=True, down_s=10)
    assert watch.update([False], 60) is None  # said once
    assert watch.update([False, True], 61) == CsmsChange(lost=False, down_s=52)


def test_never_connected_is_lost_after_the_first_connect_wait() -> None:
    watch = CsmsWatch(lost_after_s=10, first_connect_s=30)
    assert watch.update([False], 0) is None
    assert watch.update([False], 20) is None
    assert watch.update([False], 30) == CsmsChange(lost=True, down_s=30)
    level, text = CsmsChange(lost=True, down_s=30).text("ws://cloud/ocpp", 1)
    assert level is EventLevel.WARNING
    assert text == (
        "CSMS at ws://cloud/ocpp unreachable for 30 s: chargers run on local rules, "
        "1 message queued for it"
    )


@pytest.mark.timeout(90)  # after its deadline, so that Trio ends it cleanly
async def test_the_proxy_reports_the_csms_lost_with_its_queue_and_back(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with open_proxied(tmp_path) as env:
            env.proxy.csms_watch = CsmsWatch(lost_after_s=0.5, first_connect_s=30)
            cp = await env.connect("CP16", OcppVersion.V16)
            await env.online("CP16")
            watch = env.proxy.csms_watch
            await wait_until(lambda: watch.connected_once, "the watch to see the CSMS", 10)
            await env.stop_csms()
            await trio.to_thread.run_sync(transaction16, cp, ["a1", "a2"])

            def said(word: str) -> str | None:
                return next((m for _, s, m in env.events if s == "csms" and word in m), None)

            await wait_until(lambda: said("unreachable"), "the CSMS lost event", 20)
            lost = said("unreachable")
            queued = re.search(r"(\d+) messages queued", lost or "")
            assert queued is not None, env.events
            assert int(queued[1]) >= 2, env.events
            await env.start_csms()
            await wait_until(lambda: said("reachable again"), "the CSMS back event", 30)
            levels = [level for level, subject, _ in env.events if subject == "csms"]
            assert levels == [EventLevel.WARNING, EventLevel.INFO]
