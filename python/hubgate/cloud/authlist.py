"""OCPP 1.6 and 2.0.1 authorization payloads to and from the store's version-neutral records.

1.6 identifies a user by `idTag` and describes it with `idTagInfo`
(`status`, `expiryDate`, `parentIdTag`); 2.0.1 and 2.1 use `idToken`
(`idToken` + `type`) and `idTokenInfo` (`status`, `cacheExpiryDateTime`, ...).
The store keys 1.6 tags by the tag itself and 2.0.1 tokens by `type:idToken`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hubgate.cloud.store import ACCEPTED, Authorization, AuthRecord
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
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


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


def offline_token_info(
    version: OcppVersion,
    found: Authorization | None,
    *,
    local_authorize_offline: bool = True,
    allow_unknown: bool = False,
) -> dict[str, Any]:
    """The IdTagInfo/IdTokenInfo hubgate answers while the CSMS is away.

    A token the local list or cache knows gets its status there (Blocked, Expired,
    Invalid, ...; Accepted only with `local_authorize_offline`, OCPP's
    LocalAuthorizeOffline); any other is Accepted with `allow_unknown`
    (AllowOfflineTxForUnknownId), else Invalid (1.6) / Unknown (2.x).
    """
    if found is not None and (found.status != ACCEPTED or local_authorize_offline):
        return {**found.record.info, "status": found.status}
    if allow_unknown:
        return {"status": ACCEPTED}
    return {"status": _UNKNOWN_STATUS[version]}
