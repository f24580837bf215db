"""How hubgate answers charge points as their CSMS: boot, heartbeat, authorization."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal


@dataclass(frozen=True)
class CsmsPolicy:
    """Answers to BootNotification and Authorize."""

    heartbeat_interval_s: int = 60
    boot_status: Literal["Accepted", "Pending"] = "Accepted"
    pending_retry_s: int = 30
    accepted_id_tokens: frozenset[str] | None = None
    """None accepts every token (the cloud CSMS, when there is one, decides)."""

    def boot_interval(self) -> int:
        """The interval sent with the boot status: heartbeat, or the retry wait when pending."""
        return self.heartbeat_interval_s if self.boot_status == "Accepted" else self.pending_retry_s

    def authorizes(self, token: str) -> bool:
        """Whether an id token may charge."""
        return self.accepted_id_tokens is None or token in self.accepted_id_tokens


def ocpp_now() -> str:
    """The current UTC time as an OCPP timestamp."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
