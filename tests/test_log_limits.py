"""Log lines hostile input cannot inflate: clipped text, one line per key per interval."""

from __future__ import annotations

import logging

import pytest

from hubgate.log_limits import RateLimitedLog, clip


def test_clip_cuts_long_text_and_says_how_long_it_was() -> None:
    assert clip("short") == "'short'"
    clipped = clip("x" * 10_000, 20)
    assert clipped == "'xxxxxxxxxxxxxxxxxxx... (10002 chars)"


def test_one_line_per_key_per_interval_then_the_count_held_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    quiet = RateLimitedLog(logging.getLogger("test.quiet"), interval_s=10, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="test.quiet"):
        assert quiet.warning("peer-a", "bad frame from %s", "peer-a")
        for _ in range(1000):
            assert not quiet.warning("peer-a", "bad frame from %s", "peer-a")
        assert quiet.warning("peer-b", "bad frame from %s", "peer-b")  # its own key
        now[0] = 10.0
        assert quiet.warning("peer-a", "bad frame from %s", "peer-a")
    assert [r.getMessage() for r in caplog.records] == [
        "bad frame from peer-a",
        "bad frame from peer-b",
        "bad frame from peer-a (1000 more since, not logged)",
    ]


def test_keys_are_bounded() -> None:
    quiet = RateLimitedLog(logging.getLogger("test.keys"), max_keys=8, clock=lambda: 0.0)
    for n in range(100):
        quiet.warning(f"peer-{n}", "x")
    assert len(quiet._windows) == 8
