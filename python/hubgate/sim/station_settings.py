"""A simulated station's offline authorization settings: 1.6 configuration keys and 2.0.1
AuthCtrlr variables (a station answers both by name), writable by the CSMS."""

from __future__ import annotations

OFFLINE_AUTHORIZATION = (
    "LocalAuthorizeOffline",
    "AllowOfflineTxForUnknownId",
    "OfflineTxForUnknownIdEnabled",
)


def offline_authorization() -> dict[str, str]:
    """Set as an operator who lets drivers charge through a CSMS outage sets them: tokens
    known and unknown may charge; the CSMS judges the transactions when it is back."""
    return dict.fromkeys(OFFLINE_AUTHORIZATION, "true")


def set_boolean(settings: dict[str, str], key: str, value: str) -> str | None:
    """Accepted or Rejected (not a boolean) when `key` is one of `settings`, else None."""
    if key not in settings:
        return None
    if value.lower() not in ("true", "false"):
        return "Rejected"
    settings[key] = value.lower()
    return "Accepted"
