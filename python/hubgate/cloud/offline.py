"""OCPP's offline rules: what happens to a charger's message while the CSMS is away.

OCPP 1.6 §3.7 and 2.0.1 (E, OCPPCommCtrlr) make transaction-related messages
(StartTransaction, StopTransaction, transaction MeterValues, TransactionEvent)
mandatory to queue and deliver in chronological order. For the rest hubgate
keeps only what the CSMS still needs when it returns:

- QUEUE: stored and replayed in order, every one of them.
- LATEST: only the newest per coalescing key is kept (a connector's status, a
  non-transaction meter reading, a firmware status): the CSMS wants the current
  state, not a backlog of stale ones.
- LOCAL: answered by hubgate itself and not forwarded (Authorize from the local
  list and cache, Heartbeat with the local clock, DataTransfer rejected).

Actions not listed are queued: nothing is dropped by default.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class OfflineRule(StrEnum):
    """What the store does with a message sent while the CSMS is unreachable."""

    QUEUE = "queue"
    LATEST = "latest"
    LOCAL = "local"


@dataclass(frozen=True, slots=True)
class OfflineHandling:
    """An action's offline rule and, for LATEST, the key newer messages replace."""

    rule: OfflineRule
    coalesce_key: str | None = None


_LOCAL = frozenset({"Authorize", "Heartbeat", "DataTransfer"})
_LATEST_BY_ACTION = frozenset(
    {
        "BootNotification",
        "FirmwareStatusNotification",
        "DiagnosticsStatusNotification",
        "LogStatusNotification",
        "PublishFirmwareStatusNotification",
    }
)
_TRANSACTION_ACTIONS = frozenset({"StartTransaction", "StopTransaction", "TransactionEvent"})


def _location(payload: dict[str, Any]) -> str:
    """Where a status or reading is from: 1.6 connectorId, 2.0.1 evseId and connectorId."""
    parts = [str(payload[k]) for k in ("evseId", "connectorId") if k in payload]
    return ":".join(parts) or "-"


def offline_handling(action: str, payload: dict[str, Any]) -> OfflineHandling:
    """The offline rule for one charger-originated Call (OCPP 1.6, 2.0.1 and 2.1)."""
    if action in _TRANSACTION_ACTIONS:
        return OfflineHandling(OfflineRule.QUEUE)
    if action == "MeterValues":
        if "transactionId" in payload:  # 1.6 transaction meter values
            return OfflineHandling(OfflineRule.QUEUE)
        return OfflineHandling(OfflineRule.LATEST, f"MeterValues:{_location(payload)}")
    if action == "StatusNotification":
        return OfflineHandling(OfflineRule.LATEST, f"StatusNotification:{_location(payload)}")
    if action in _LATEST_BY_ACTION:
        return OfflineHandling(OfflineRule.LATEST, action)
    if action in _LOCAL:
        return OfflineHandling(OfflineRule.LOCAL)
    return OfflineHandling(OfflineRule.QUEUE)
