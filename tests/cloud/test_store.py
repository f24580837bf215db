"""The durable store: queues, transaction id mapping, local list and cache."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from hubgate.cloud.authlist import auth_record, authorize_answer, local_list_update, token_key
from hubgate.cloud.offline import OfflineRule, offline_handling
from hubgate.cloud.store import AuthRecord, AuthSource, ListUpdateStatus, Outgoing, Store
from hubgate.ocpp.versions import OcppVersion

V16 = OcppVersion.V16
V201 = OcppVersion.V201


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "q.sqlite3", cache_size=3)


def test_file_is_wal_with_full_sync(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite3"
    Store(path).close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # synchronous is per connection: check the store sets it on its own one
    s = Store(path)
    assert s._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    s.close()


def test_queues_are_per_charge_point_and_ordered(store: Store) -> None:
    store.enqueue_many(
        [Outgoing(cp, f"{cp}-{i}", "MeterValues", {"i": i}) for i in range(5) for cp in "AB"]
    )
    assert [m.payload["i"] for m in store.pending("A")] == [0, 1, 2, 3, 4]
    assert [m.message_id for m in store.pending("B", limit=2)] == ["B-0", "B-1"]
    assert store.pending_count() == 10
    assert store.pending_count("A") == 5


def test_message_leaves_only_when_acknowledged_and_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite3"
    store = Store(path)
    store.enqueue_many([Outgoing("A", f"m{i}", "StopTransaction", {"i": i}) for i in range(3)])
    first = store.pending("A")[0]
    store.acknowledge(first.seq, {})
    store.close()
    again = Store(path)
    assert [m.message_id for m in again.pending("A")] == ["m1", "m2"]
    again.acknowledge(first.seq, {})  # answered twice: nothing more leaves
    assert [m.message_id for m in again.pending("A")] == ["m1", "m2"]


def test_repeated_call_is_stored_once(store: Store) -> None:
    first = store.enqueue_many(
        [Outgoing("A", "x", "StartTransaction", {}, issue_transaction_id=True)]
    )
    again = store.enqueue_many(
        [Outgoing("A", "x", "StartTransaction", {}, issue_transaction_id=True)]
    )
    assert first == again
    assert store.pending_count("A") == 1


def test_latest_rule_replaces_pending_status(store: Store) -> None:
    def status(n: int, connector: int) -> Outgoing:
        payload = {"connectorId": connector, "status": f"s{n}"}
        handling = offline_handling("StatusNotification", payload)
        assert handling.rule is OfflineRule.LATEST
        return Outgoing("A", f"m{n}", "StatusNotification", payload, handling.coalesce_key)

    store.enqueue_many([status(1, 1), status(2, 2)])
    store.enqueue_many([Outgoing("A", "t", "StopTransaction", {}), status(3, 1)])
    assert [m.message_id for m in store.pending("A")] == ["m2", "t", "m3"]


def test_latest_message_replaced_while_being_sent(store: Store) -> None:
    """A StatusNotification replayed while a newer one of its connector is stored: the
    answer and a CallError to the old one leave the newer one queued (no KeyError)."""

    def status(n: int) -> Outgoing:
        payload = {"connectorId": 1, "status": f"s{n}"}
        key = offline_handling("StatusNotification", payload).coalesce_key
        return Outgoing("A", f"m{n}", "StatusNotification", payload, key)

    store.enqueue_many([status(1)])
    (sent,) = store.pending("A")
    store.enqueue_many([status(2)])
    store.acknowledge(sent.seq, {})
    assert store.record_failure(sent.seq, "GenericError", max_attempts=3)
    assert [m.message_id for m in store.pending("A")] == ["m2"]
    assert store.dead_letters() == []


def test_offline_rules() -> None:
    assert offline_handling("StartTransaction", {}).rule is OfflineRule.QUEUE
    assert offline_handling("TransactionEvent", {"seqNo": 1}).rule is OfflineRule.QUEUE
    assert offline_handling("MeterValues", {"transactionId": 5}).rule is OfflineRule.QUEUE
    plain = offline_handling("MeterValues", {"evseId": 2, "meterValue": []})
    assert plain == offline_handling("MeterValues", {"evseId": 2})
    assert plain.rule is OfflineRule.LATEST
    assert offline_handling("Authorize", {}).rule is OfflineRule.LOCAL
    assert offline_handling("Heartbeat", {}).rule is OfflineRule.LOCAL
    assert offline_handling("SecurityEventNotification", {}).rule is OfflineRule.QUEUE


def test_local_transaction_ids_are_mapped_to_csms_ids(store: Store) -> None:
    (start,) = store.enqueue_many(
        [Outgoing("A", "s", "StartTransaction", {"connectorId": 1}, issue_transaction_id=True)]
    )
    assert start.local_transaction_id == -1
    local = start.local_transaction_id
    store.enqueue_many(
        [
            Outgoing("A", "mv", "MeterValues", {"transactionId": local}),
            Outgoing("A", "stop", "StopTransaction", {"transactionId": local}),
            Outgoing("B", "s", "StartTransaction", {}, issue_transaction_id=True),
            Outgoing("A", "s2", "StartTransaction", {}, issue_transaction_id=True),
        ]
    )
    assert store.pending("A")[1].payload["transactionId"] == -1  # not yet known
    assert store.pending("B")[0].seq > start.seq
    store.acknowledge(start.seq, {"transactionId": 4711, "idTagInfo": {"status": "Accepted"}})
    assert [m.payload.get("transactionId") for m in store.pending("A")] == [4711, 4711, None]
    assert store.csms_transaction_id("A", -1) == 4711
    assert store.csms_transaction_id("A", -2) is None  # s2's id, not yet answered


def test_call_errors_retry_then_dead_letter(store: Store) -> None:
    (r,) = store.enqueue_many([Outgoing("A", "m", "StopTransaction", {})])
    assert not store.record_failure(r.seq, "FormationViolation", max_attempts=2)
    assert store.pending("A")[0].attempts == 1
    assert store.record_failure(r.seq, "FormationViolation", max_attempts=2)
    assert store.pending_count() == 0
    assert store.dead_letters() == [(r.seq, "A", "StopTransaction", "FormationViolation")]


def _send_local_list_16(
    version: int, update: str, tags: dict[str, str | None]
) -> dict[str, object]:
    return {
        "listVersion": version,
        "updateType": update,
        "localAuthorizationList": [
            {"idTag": t} if s is None else {"idTag": t, "idTagInfo": {"status": s}}
            for t, s in tags.items()
        ],
    }


def test_local_list_full_and_differential_16(store: Store) -> None:
    def send(version: int, update: str, tags: dict[str, str | None]) -> ListUpdateStatus:
        u = local_list_update(V16, _send_local_list_16(version, update, tags))
        return store.update_local_list("A", u.version, full=u.full, updates=u.updates)

    assert store.local_list_version("A") == 0
    assert send(3, "Full", {"T1": "Accepted", "T2": "Blocked"}) is ListUpdateStatus.ACCEPTED
    assert store.local_list_version("A") == 3
    assert send(3, "Differential", {"T3": "Accepted"}) is ListUpdateStatus.VERSION_MISMATCH
    assert store.authorize("A", "T3", now=0) is None
    assert send(4, "Differential", {"T3": "Accepted", "T1": None}) is ListUpdateStatus.ACCEPTED
    assert store.local_list_version("A") == 4
    assert store.authorize("A", "T1", now=0) is None
    found = store.authorize("A", "T2", now=0)
    assert found is not None
    assert (found.status, found.source) == ("Blocked", AuthSource.LOCAL_LIST)
    assert send(2, "Full", {"T9": "Accepted"}) is ListUpdateStatus.ACCEPTED  # full: any version
    assert store.authorize("A", "T3", now=0) is None
    assert store.local_list_version("B") == 0
    assert send(5, "Full", {}) is ListUpdateStatus.ACCEPTED
    assert store.local_list_version("A") == 0  # an empty list reports version 0


def test_local_list_201_tokens_and_expiry(store: Store) -> None:
    request = {
        "versionNumber": 7,
        "updateType": "Full",
        "localAuthorizationList": [
            {
                "idToken": {"idToken": "CAFE", "type": "ISO14443"},
                "idTokenInfo": {
                    "status": "Accepted",
                    "cacheExpiryDateTime": "2030-01-01T00:00:00Z",
                },
            }
        ],
    }
    u = local_list_update(V201, request)
    assert store.update_local_list("A", u.version, full=u.full, updates=u.updates) == "Accepted"
    key = token_key(V201, {"idToken": "CAFE", "type": "ISO14443"})
    expiry = 1893456000.0  # 2030-01-01T00:00:00Z
    found = store.authorize("A", key, now=expiry - 1)
    assert found is not None
    assert authorize_answer(V201, found)["idTokenInfo"]["status"] == "Accepted"
    expired = store.authorize("A", key, now=expiry)
    assert expired is not None
    assert authorize_answer(V201, expired) == {
        "idTokenInfo": {"status": "Expired", "cacheExpiryDateTime": "2030-01-01T00:00:00Z"}
    }
    assert authorize_answer(V201, None) == {"idTokenInfo": {"status": "Unknown"}}
    assert authorize_answer(V16, None) == {"idTagInfo": {"status": "Invalid"}}


def test_cache_never_holds_list_ids_and_evicts_invalid_then_oldest(store: Store) -> None:
    u = local_list_update(V16, _send_local_list_16(1, "Full", {"L": "Accepted"}))
    store.update_local_list("A", u.version, full=u.full, updates=u.updates)

    def cache(tag: str, status: str, now: float) -> None:
        store.cache_authorization("A", auth_record(V16, tag, {"status": status}), now)

    cache("L", "Blocked", 1)  # a list id: not cached, the list keeps priority
    found = store.authorize("A", "L", now=2)
    assert found is not None
    assert (found.status, found.source) == ("Accepted", AuthSource.LOCAL_LIST)

    cache("a", "Accepted", 1)
    cache("b", "Invalid", 2)
    cache("c", "Accepted", 3)
    assert store.authorize("A", "a", now=4) is not None  # a is now the most recently used
    cache("d", "Accepted", 5)  # size 3: the Invalid one goes first
    assert store.authorize("A", "b", now=6) is None
    cache("e", "Accepted", 7)  # then the least recently used: c
    assert store.authorize("A", "c", now=8) is None
    assert {t for t in "ade" if store.authorize("A", t, now=9)} == {"a", "d", "e"}
    store.clear_cache("A")
    assert store.authorize("A", "a", now=10) is None


def test_auth_record_reads_16_expiry() -> None:
    record = auth_record(
        V16, "T", {"status": "Accepted", "expiryDate": "2030-01-01T00:00:00+00:00"}
    )
    assert record == AuthRecord(
        "T",
        "Accepted",
        1893456000.0,
        {"status": "Accepted", "expiryDate": "2030-01-01T00:00:00+00:00"},
    )
    with pytest.raises(TypeError):
        token_key(V16, {"idToken": "x", "type": "Central"})
