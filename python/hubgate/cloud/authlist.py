"""OCPP 1.6 and 2.0.1 authorization payloads to and from the store's version-neutral records.

1.6 identifies a user by `idTag` and describes it with `idTagInfo`
(`status`, `expiryDate`, `parentIdTag`); 2.0.1 and 2.1 use `idToken`
(`idToken` + `type`) and `idTokenInfo` (`status`, `cacheExpiryDateTime`, ...).
The store keys 1.6 tags by the tag itself and 2.0.1 tokens by `type:idToken`.

While the CSMS is away, hubgate answers id tokens by the charger's own offline rules
(`OfflineRules`): a charger behind hubgate stays connected, so it never applies them
itself (OCPP 1.6 §3.5, 2.0.1 C: LocalAuthorizeOffline, AllowOfflineTxForUnknownId /
OfflineTxForUnknownIdEnabled).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hubgate.cloud.store import ACCEPTED, Authorization, AuthRecord
from hubgate.config.services import FromCharger
from hubgate.ocpp.capabilities import parse_boolean
from hubgate.ocpp.meter_values import parse_timestamp
from hubgate.ocpp.versions import OcppVersion

_UNKNOWN_STATUS = {
    OcppVersion.V16: "Invalid",
    OcppVersion.V201: "Unknown",
    OcppVersion.V21: "Unknown",
}


@dataclass(frozen=True, slots=True)
class LocalListUpdate:
    """A SendLocalList request, version-neutral."""

    version: int
    full: bool
    updates: list[tuple[str, AuthRecord | None]]


def token_key(version: OcppVersion, token: str | dict[str, Any]) -> str:
    """The store key of a 1.6 idTag or a 2.0.1 IdTokenType."""
    if version is OcppVersion.V16:
        if not isinstance(token, str):
            raise TypeError(f"an OCPP 1.6 idTag is a string, got {token!r}")
        return token
    if not isinstance(token, dict):
        raise TypeError(f"an OCPP {version} idToken is an object, got {token!r}")
    return f"{token['type']}:{token['idToken']}"


def _epoch(value: object) -> float | None:
    if not isinstance(value, str):
        return None
    return parse_timestamp(value).timestamp()


def auth_record(version: OcppVersion, key: str, info: dict[str, Any]) -> AuthRecord:
    """A record from an idTagInfo (1.6) or idTokenInfo (2.0.1) the CSMS sent."""
    expiry = info.get("expiryDate" if version is OcppVersion.V16 else "cacheExpiryDateTime")
    return AuthRecord(key, str(info["status"]), _epoch(expiry), info)


def local_list_update(version: OcppVersion, request: dict[str, Any]) -> LocalListUpdate:
    """Read a SendLocalList request payload."""
    v16 = version is OcppVersion.V16
    token_field, info_field = ("idTag", "idTagInfo") if v16 else ("idToken", "idTokenInfo")
    updates: list[tuple[str, AuthRecord | None]] = []
    for entry in request.get("localAuthorizationList") or ():
        key = token_key(version, entry[token_field])
        info = entry.get(info_field)
        updates.append((key, None if info is None else auth_record(version, key, info)))
    return LocalListUpdate(
        version=int(request["listVersion" if v16 else "versionNumber"]),
        full=request["updateType"] == "Full",
        updates=updates,
    )


def info_field(version: OcppVersion) -> str:
    """Where an answer carries the id token's status: `idTagInfo` (1.6), `idTokenInfo`."""
    return "idTagInfo" if version is OcppVersion.V16 else "idTokenInfo"


@dataclass(frozen=True, slots=True)
class OfflineRules:
    """How id tokens are judged while the CSMS is away.

    The defaults are a charger's that does not say: LocalAuthorizeOffline is a required
    setting (1.6 §9.1, 2.0.1 AuthCtrlr), and AllowOfflineTxForUnknownId only "if this key
    exists, the Charge Point supports Unknown Offline Authorization" (1.6 §9.1).
    """

    local_authorize_offline: bool = True
    allow_unknown: bool = False

    @classmethod
    def of_charger(cls, version: OcppVersion, settings: Mapping[str, str | None]) -> OfflineRules:
        """The rules a charger's settings (`charger_settings` names, read) say."""
        local_name, unknown_name = charger_settings(version)
        local = parse_boolean(settings.get(local_name))
        unknown = parse_boolean(settings.get(unknown_name))
        default = cls()
        return cls(
            default.local_authorize_offline if local is None else local,
            default.allow_unknown if unknown is None else unknown,
        )

    def overridden(
        self, local_authorize_offline: bool | FromCharger, allow_unknown: bool | FromCharger
    ) -> OfflineRules:
        """These rules with the site's `[csms]` choices instead, where they are not
        "charger"."""
        return OfflineRules(
            self.local_authorize_offline
            if local_authorize_offline == "charger"
            else bool(local_authorize_offline),
            self.allow_unknown if allow_unknown == "charger" else bool(allow_unknown),
        )


def charger_settings(version: OcppVersion) -> tuple[str, str]:
    """The names of a charger's offline rules: (LocalAuthorizeOffline, unknown tokens)
    as 1.6 configuration keys or 2.x `AuthCtrlr` variables."""
    if version is OcppVersion.V16:
        return "LocalAuthorizeOffline", "AllowOfflineTxForUnknownId"
    return "AuthCtrlr.LocalAuthorizeOffline", "AuthCtrlr.OfflineTxForUnknownIdEnabled"


def offline_token_info(
    version: OcppVersion, found: Authorization | None, rules: OfflineRules
) -> dict[str, Any]:
    """The IdTagInfo/IdTokenInfo hubgate answers while the CSMS is away.

    A token the local list or cache knows gets its status there (Blocked, Expired,
    Invalid, ...; Accepted only with `rules.local_authorize_offline`); any other is
    Accepted with `rules.allow_unknown`, else Invalid (1.6) / Unknown (2.x).
    """
    if found is not None and (found.status != ACCEPTED or rules.local_authorize_offline):
        return {**found.record.info, "status": found.status}
    if rules.allow_unknown:
        return {"status": ACCEPTED}
    return {"status": _UNKNOWN_STATUS[version]}
