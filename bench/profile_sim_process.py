"""A profile's simulated device in a process of its own, so a benchmark's client does not
share its interpreter.

    python bench/profile_sim_process.py alfen-eve      # prints the port, serves until stdin closes
"""

from __future__ import annotations

import sys

from hubgate.profiles import load_named
from hubgate.sim.modbus_box import serve
from hubgate.sim.simulated_device import SimulatedDevice


def main(name: str) -> None:
    device = SimulatedDevice(load_named(name))
    with serve(device) as port:
        print(port, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main(sys.argv[1])
