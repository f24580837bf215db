"""What a device driver reports besides the Modbus errors of its link."""

from __future__ import annotations

from hubgate._core import HubgateError


class DeviceError(HubgateError):
    """The device does not behave as its profile says."""


class SunSpecDiscoveryError(DeviceError):
    """No "SunS" marker at the base, or a model block the profile needs is missing."""


class FailsafeNotAppliedError(DeviceError):
    """A failsafe setting written to the device did not read back as written."""


class NotReadyError(FailsafeNotAppliedError):
    """Nothing was sent: the device cannot be configured yet (an OCPP charger whose boot is
    still being attended to); it is asked again the next cycle."""
