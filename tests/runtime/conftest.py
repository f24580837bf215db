"""The runtime tests drive the dashboard with the API tests' DevTools client (tests/api)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "api"))
