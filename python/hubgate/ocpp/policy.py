"""How hubgate answers charge points as their CSMS: boot, heartbeat, authorization."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from hubgate.config.tokens import TokenBook
from hubgate.ocpp.versions import OcppVersion


@dataclass(frozen=True)
class CsmsPolicy:
    """Answers to BootNotification and to an id token (Authorize, transaction starts)."""

    heartbeat_interval_s: int = 60
    boot_status: Literal["Accepted", "Pending"] = "Accepted"
    pending_retry_s: int = 30
    tokens: TokenBook | None = None
    """The site's `[authorization]`; None accepts every token (a site without the table, or
    one whose CSMS decides)."""

    def boot_interval(self) -> int:
        """The interval sent with the boot status: heartbeat, or the retry wait when pending."""
        return self.heartbeat_interval_s if self.boot_status == "Accepted" else self.pending_retry_s

    def token_info(self, version: OcppVersion, token: str) -> dict[str, Any]:
        """The IdTagInfo (1.6) / IdTokenInfo (2.x) for an id token: its status, expiry and
        group (parentIdTag / groupIdToken)."""
        if self.tokens is None:
            return {"status": "Accepted"}
        v16 = version is OcppVersion.V16
        verdict = self.tokens.verdict(token, datetime.now(UTC))
        unknown = "Accepted" if self.tokens.accepts_unknown else ("Invalid" if v16 else "Unknown")
        info: dict[str, Any] = {"status": verdict.status or unknown}
        if verdict.expires is not None:
            stamp = verdict.expires.astimezone(UTC).isoformat().replace("+00:00", "Z")
            info["expiryDate" if v16 else "cacheExpiryDateTime"] = stamp
        if verdict.group is not None:
            if v16:
                info["parentIdTag"] = verdict.group
            else:
                info["groupIdToken"] = {"idToken": verdict.group, "type": "Central"}
        return info


def ocpp_now() -> str:
    """The current UTC time as an OCPP timestamp."""
    return ocpp_time(datetime.now(UTC))


def ocpp_time(moment: datetime) -> str:
    """A UTC time as an OCPP timestamp (to the millisecond)."""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
