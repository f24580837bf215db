"""Changes to the store besides the queue's messages and the CSMS's answers to them: the
local authorization list (SendLocalList), the authorization cache (what the CSMS answered
to an Authorize; ClearCache), an operator's decision on a held transaction (release,
discard).

`DurableQueue.change` makes one on the store; with a replicated stream
(`hubgate.cluster.queue_replica`) it goes on the stream first, like a queued message, so
every gateway's copy makes it in the same order and a new leader has the list and the
decisions its predecessor was given, and knows the identifiers the CSMS accepted while
its predecessor led. A change is plain JSON (`op`, `fields`).

    status = await queue.change(local_list("CP-1", update))
    await queue.remember(cached("CP-1", record, time.time()))   # may be lost: a cache
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hubgate.cloud.authlist import LocalListUpdate
from hubgate.cloud.store import AuthRecord, Store


@dataclass(frozen=True)
class StoreChange:
    """One change: what (`op`) and its JSON fields."""

    op: str
    fields: dict[str, Any]

    def apply(self, store: Store) -> object:
        """Make the change; its result, or the KeyError / ValueError that refused it (the
        change then changed nothing, and the stream's other entries go on)."""
        fields = self.fields
        try:
            if self.op == "local_list":
                updates = [
                    (key, None if record is None else AuthRecord(key, *record))
                    for key, record in fields["updates"]
                ]
                return store.update_local_list(
                    fields["cp"], int(fields["version"]), full=bool(fields["full"]), updates=updates
                )
            if self.op == "cached":
                record = AuthRecord(fields["key"], *fields["record"])
                store.cache_authorization(fields["cp"], record, now=float(fields["at"]))
                return None
            if self.op == "cache_cleared":
                store.clear_cache(fields["cp"])
                return None
            if self.op == "released":
                return store.release(fields["cp"], fields["transaction"], fields["csms_id"])
            if self.op == "discarded":
                return store.discard(fields["cp"], fields["transaction"])
        except (KeyError, ValueError) as refused:
            return refused
        return ValueError(f"unknown store change {self.op!r}")


def local_list(charge_point: str, update: LocalListUpdate) -> StoreChange:
    """SendLocalList from the CSMS for `charge_point`."""
    updates = [[key, None if record is None else _record(record)] for key, record in update.updates]
    fields = {"cp": charge_point, "version": update.version, "full": update.full}
    return StoreChange("local_list", fields | {"updates": updates})


def cached(charge_point: str, record: AuthRecord, at: float) -> StoreChange:
    """The CSMS answered an Authorize of `charge_point` at `at` (wall time)."""
    fields = {"cp": charge_point, "key": record.key, "at": at}
    return StoreChange("cached", fields | {"record": _record(record)})


def cache_cleared(charge_point: str) -> StoreChange:
    """ClearCache from the CSMS for `charge_point`."""
    return StoreChange("cache_cleared", {"cp": charge_point})


def released(charge_point: str, transaction: str, csms_transaction_id: int | None) -> StoreChange:
    """The operator sends a held transaction's messages after all (`Store.release`)."""
    fields = {"cp": charge_point, "transaction": transaction, "csms_id": csms_transaction_id}
    return StoreChange("released", fields)


def discarded(charge_point: str, transaction: str) -> StoreChange:
    """The operator never sends a held transaction's messages (`Store.discard`)."""
    return StoreChange("discarded", {"cp": charge_point, "transaction": transaction})


def _record(record: AuthRecord) -> list[Any]:
    """An identifier's entry as JSON (`AuthRecord(key, *entry)` reads it back)."""
    return [record.status, record.expires_at, record.info]
