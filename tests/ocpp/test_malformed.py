"""The malformed-message corpus: each frame gets the right CallError (or, for broken
responses, none) and the session stays alive, checked with a Heartbeat after each."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import trio
from websockets.sync.client import connect

from tests.support.ocpp_listener import Running

CORPUS = json.loads((Path(__file__).parent / "malformed.json").read_text())["cases"]
IDENTITY = {"1.6": "CP16", "2.0.1": "CP201", "2.1": "CP21"}


def frame_text(case: dict[str, Any]) -> str:
    frame = case["frame"]
    return frame if isinstance(frame, str) else "".join(text * n for text, n in frame)


def run_corpus(url: str, version: str, cases: list[dict[str, Any]]) -> list[str]:
    """Play the cases over one connection; return the mismatches."""
    problems = []
    with connect(url, subprotocols=[f"ocpp{version}"], proxy=None, open_timeout=5) as ws:  # type: ignore[list-item]
        for number, case in enumerate(cases):
            text = frame_text(case)
            ws.send(text.encode() if case["binary"] else text)
            if case["expect"] is not None:
                reply = json.loads(ws.recv(timeout=5))
                expected = [4, case["expect"]["id"], case["expect"]["code"]]
                if reply[:3] != expected or not isinstance(reply[4], dict):
                    problems.append(f"{case['name']}: got {reply}, expected {expected}")
            beat = f"hb-{number}"
            ws.send(json.dumps([2, beat, "Heartbeat", {}]))
            answer = json.loads(ws.recv(timeout=5))
            if answer[:2] != [3, beat]:
                problems.append(f"{case['name']}: session answered {answer} to a Heartbeat")
    return problems


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 50
    assert {c["version"] for c in CORPUS} == {"1.6", "2.0.1", "2.1"}


@pytest.mark.parametrize("version", ["1.6", "2.0.1", "2.1"])
async def test_every_malformed_frame_is_answered_and_survived(
    server: Running, version: str, caplog: pytest.LogCaptureFixture
) -> None:
    cases = [c for c in CORPUS if c["version"] == version]
    with trio.fail_after(30), caplog.at_level(logging.INFO, logger="hubgate.ocpp"):
        problems = await trio.to_thread.run_sync(
            run_corpus, server.url(IDENTITY[version]), version, cases
        )
    assert problems == []
    crashes = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert crashes == []
