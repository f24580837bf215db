"""A telemetry publisher in its own process, for the will test to SIGKILL.

mqtt_worker.py PORT CLIENT_ID    connect, print "idle" once "online" is acknowledged
"""

from __future__ import annotations

import sys

import trio

from hubgate.cloud.mqtt.publisher import TelemetryPublisher
from hubgate.config.services import Mqtt


async def main(port: int, client_id: str) -> None:
    publisher = TelemetryPublisher(
        Mqtt(host="127.0.0.1", port=port, client_id=client_id, keepalive_s=5)
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(publisher.run)
        await publisher.wait_idle()
        print("idle", flush=True)


if __name__ == "__main__":
    trio.run(main, int(sys.argv[1]), sys.argv[2])
