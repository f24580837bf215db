"""The cluster's JetStream key-value buckets, opened from Trio (made when missing).

kv = await open_bucket(link, "hubgate_leases", cluster.replicas, "lease")
"""

from __future__ import annotations

import logging

import trio
from nats.aio.client import Client
from nats.js.api import KeyValueConfig
from nats.js.errors import BucketNotFoundError
from nats.js.kv import KeyValue

from hubgate._core import HubgateError
from hubgate.cluster.link import ClusterUnavailableError, NatsLink

log = logging.getLogger(__name__)

RETRY_S = 0.5


async def open_bucket(link: NatsLink, name: str, replicas: int, what: str) -> KeyValue:
    """The bucket `name` (one value per key, `replicas`), made if it is not there; asked
    again every `RETRY_S` until the cluster answers (not connected, no JetStream or no
    quorum yet: logged as `what`'s bucket)."""

    async def bucket(nc: Client) -> KeyValue:
        js = nc.jetstream(timeout=2.0)
        try:
            return await js.key_value(name)
        except BucketNotFoundError:
            config = KeyValueConfig(bucket=name, history=1, replicas=replicas)
            return await js.create_key_value(config)

    while True:
        try:
            return await link.run(bucket, within_s=2.0)
        except (ClusterUnavailableError, HubgateError, OSError) as exc:
            log.warning("cluster: %s bucket not reachable yet: %s", what, exc)
        except Exception as exc:  # nats-py's errors (no JetStream yet, no quorum)
            log.warning("cluster: %s bucket not ready yet: %s", what, exc)
        await trio.sleep(RETRY_S)
