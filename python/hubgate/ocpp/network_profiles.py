"""A gateway pair's OCPP addresses as the chargers' network connection profiles.

OCPP 2.0.1 chargers keep several network connection profiles in numbered slots
(`SetNetworkProfile`, functional block B09) and dial them in the order of
`OCPPCommCtrlr.NetworkConfigurationPriority`, moving on to the next when one fails. With
a `[cluster]`, the leader gives each 2.0.1 (and 2.1) charger every gateway's URL
(`[cluster] ocpp_urls`, in slots 1, 2, ...) and that order when it connects, so a charger
whose gateway dies dials the other (docs/ha.md). 1.6 has no such profiles: its chargers
use one address that moves with the leadership.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from hubgate.ocpp.errors import OcppCallError, OcppCallTimeoutError, OcppSessionClosedError
from hubgate.ocpp.session import OcppSession
from hubgate.ocpp.versions import OcppVersion

LOG = logging.getLogger("hubgate.ocpp")

MESSAGE_TIMEOUT_S = 30


def connection_data(url: str, security_profile: int) -> dict[str, object]:
    """One slot's NetworkConnectionProfileType for `url`."""
    return {
        "ocppVersion": "OCPP20",
        "ocppTransport": "JSON",
        "ocppCsmsUrl": url,
        "messageTimeout": MESSAGE_TIMEOUT_S,
        "securityProfile": security_profile,
        "ocppInterface": "Wired0",
    }


async def offer_gateways(
    identity: str, session: OcppSession, urls: Sequence[str], security_profile: int = 0
) -> bool:
    """Give a 2.0.1 charger every gateway's URL in priority order; True when it took them
    (nothing is asked of a 1.6 charger)."""
    if session.version is OcppVersion.V16 or not urls:
        return False
    try:
        for slot, url in enumerate(urls, 1):
            answer = await session.call(
                "SetNetworkProfile",
                {
                    "configurationSlot": slot,
                    "connectionData": connection_data(url, security_profile),
                },
            )
            if answer.get("status") != "Accepted":
                LOG.warning(
                    "%s: network profile %d (%s) not taken: %s", identity, slot, url, answer
                )
                return False
        order = ",".join(str(slot) for slot in range(1, len(urls) + 1))
        answer = await session.call(
            "SetVariables",
            {
                "setVariableData": [
                    {
                        "component": {"name": "OCPPCommCtrlr"},
                        "variable": {"name": "NetworkConfigurationPriority"},
                        "attributeValue": order,
                    }
                ]
            },
        )
    except (OcppCallError, OcppCallTimeoutError, OcppSessionClosedError) as exc:
        LOG.warning("%s: network profiles not set: %s", identity, exc)
        return False
    status = answer["setVariableResult"][0]["attributeStatus"]
    if status not in ("Accepted", "RebootRequired"):
        LOG.warning("%s: NetworkConfigurationPriority %s not taken: %s", identity, order, status)
        return False
    return True
