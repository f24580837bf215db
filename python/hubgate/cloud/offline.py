"""OCPP's offline rules: what happens to a charger's message while the CSMS is away.

OCPP 1.6 §3.7 and 2.0.1 (E, OCPPCommCtrlr) make transaction-related messages
(StartTransaction, StopTransaction, transaction MeterValues, TransactionEvent)
mandatory to queue and deliver in chronological order. For the rest hubgate
keeps only what the CSMS still needs when it returns:

- QUEUE: stored and replayed in order, every one of them.
- LATEST: only the newest per coalescing key is kept (a connector's status, a
  non-transaction meter reading, a firmware status): the CSMS wants the current
  state, not a backlog of stale ones.
- LOCAL: answered by hubgate itself while the CSMS is away (Authorize from the
  local list and cache, Heartbeat with the local clock), forwarded when it is
  there.
- FORWARD: only the CSMS can answer, and only now (certificates, ISO 15118
  charging needs, vendor DataTransfer): sent to the CSMS ahead of any backlog
  when it is connected, else answered at once with the action's rejection
  (`unavailable_answer`), never stored or replayed.

Actions not listed are queued: nothing is dropped by default.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from hubgate.ocpp.policy import ocpp_now


class OfflineRule(StrEnum):
    """What the store does with a message sent while the CSMS is unreachable."""

    QUEUE = "queue"
    LATEST = "latest"
    LOCAL = "local"
    FORWARD = "forward"


@dataclass(frozen=True, slots=True)
class OfflineHandling:
    """An action's offline rule and, for LATEST, the key newer messages replace."""

    rule: OfflineRule
    coalesce_key: str | None = None


_LOCAL = frozenset({"Authorize", "Heartbeat"})
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

_REJECTED = {"status": "Rejected"}
_FORWARD_ONLY: dict[str, dict[str, Any]] = {
    "DataTransfer": _REJECTED,  # vendor-specific: only the CSMS knows the vendor
    "SignCertificate": _REJECTED,
    "Get15118EVCertificate": {"status": "Failed", "exiResponse": ""},
    "GetCertificateStatus": {"status": "Failed"},
    "NotifyEVChargingNeeds": _REJECTED,
    "NotifyEVChargingSchedule": _REJECTED,
    "PullDynamicScheduleUpdate": _REJECTED,  # 2.1
    "OpenPeriodicEventStream": _REJECTED,  # 2.1
}
_FORWARD_ONLY_ECHOING = frozenset({"VatNumberValidation", "GetCertificateChainStatus"})  # 2.1


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
    if action in _FORWARD_ONLY or action in _FORWARD_ONLY_ECHOING:
        return OfflineHandling(OfflineRule.FORWARD)
    return OfflineHandling(OfflineRule.QUEUE)


def unavailable_answer(action: str, request: dict[str, Any]) -> dict[str, Any]:
    """A FORWARD action's answer while the CSMS cannot be asked: its schema's rejection."""
    if action == "VatNumberValidation":
        return {"vatNumber": request["vatNumber"], "status": "Rejected"}
    if action == "GetCertificateChainStatus":
        now = ocpp_now()
        return {
            "certificateStatus": [
                {
                    "certificateHashData": item["certificateHashData"],
                    "source": item["source"],
                    "status": "Failed",
                    "nextUpdate": now,
                }
                for item in request["certificateStatusRequests"]
            ]
        }
    return dict(_FORWARD_ONLY[action])
