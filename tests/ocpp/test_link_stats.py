"""A charger's message rate: counted over the last minute, and only that minute is kept."""

from __future__ import annotations

from hubgate.ocpp.link_stats import RATE_WINDOW_S, OcppLinkStats


def test_the_rate_counts_the_last_minute_and_keeps_no_more() -> None:
    stats = OcppLinkStats()
    for second in range(3600):  # an hour of one frame a second, nobody asking the rate
        stats.received(float(second))
    assert len(stats._recent) <= RATE_WINDOW_S + 1
    assert stats.messages == 3600
    assert stats.per_minute(3599.0) == 61.0  # 3539 to 3599, both ends counted
    assert stats.per_minute(3599.0 + 2 * RATE_WINDOW_S) == 0.0
