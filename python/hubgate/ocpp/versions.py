"""The OCPP versions hubgate speaks: a leaf, so the sans-IO framing (`ocpp.rpc`) and the
site schema (`config.model`) share it without one loading the other."""

from __future__ import annotations

from enum import StrEnum


class OcppVersion(StrEnum):
    """OCPP versions a charge point may speak."""

    V16 = "1.6"
    V201 = "2.0.1"
    V21 = "2.1"
