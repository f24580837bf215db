"""How long a standby waits before it takes the lease of a leader that went silent.

The leader lease lasts `[cluster] lease_s`. After it, the old leader has stopped
commanding, but what it commanded last still holds on the devices until their own
leases run out: an OCPP limit profile until its validTo (`control.lease_s`), a Modbus
charger until its watchdog fires (the `control.lease_s` hubgate writes where the
profile lets it, else the profile's fixed timeout), a battery until its revert timer
(`control.lease_s`). The standby waits for the longest of these too, so that when it
starts commanding no device still follows the old leader. A device without a
device-side failsafe (`failsafe.present = false`), or whose fixed timeout its profile does
not know (set on the device alone), cannot be waited for: it keeps the old leader's last
setpoint until the new leader's first command or its own timeout (docs/ha.md).
"""

from __future__ import annotations

from hubgate.cluster.lease import LeaseTiming
from hubgate.config.model import SiteConfig
from hubgate.profiles.loader import load_named


def device_lease_s(site: SiteConfig) -> float:
    """The longest device-side lease the site's gateway sets (0: none)."""
    lease = site.control.lease_s
    longest = 0.0
    if any(c.ocpp is not None for c in site.chargers) or site.battery is not None:
        longest = lease
    for charger in site.chargers:
        if charger.modbus is None:
            continue
        failsafe = load_named(charger.modbus.profile).failsafe
        if not failsafe.present or failsafe.timeout is None:
            continue
        timeout = failsafe.timeout
        fixed = not timeout.writable or timeout.address is None
        if not fixed:
            longest = max(longest, lease)
        elif timeout.default_s is not None:
            longest = max(longest, timeout.default_s)
    return longest


def lease_timing(site: SiteConfig) -> LeaseTiming:
    """The lease timing of `site`'s `[cluster]`: its lease, the longest device-side lease,
    and a margin of one control cycle (the leader's last commands in flight) plus 2 % of
    the lease for clocks that run at slightly different rates."""
    cluster = site.cluster
    if cluster is None:
        raise ValueError("the site file has no [cluster]")
    return LeaseTiming(
        ttl_s=cluster.lease_s,
        device_lease_s=device_lease_s(site),
        clock_margin_s=0.02 * cluster.lease_s + site.control.cycle_s,
    )
