"""The runtime tests drive the dashboard with the API tests' DevTools client (tests/api)
and proxy to the OCPP tests' CSMS (tests/ocpp/csms_peer.py)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "api"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "ocpp"))
