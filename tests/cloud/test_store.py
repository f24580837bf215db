"""The durable store: queues, transaction id mapping, local list and cache."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from hubgate.cloud.authlist import (
    OfflineRules,
    auth_record,
    local_list_update,
    offline_token_info,
    token_key,
)
from hubgate.cloud.offline import OfflineRule, offline_handling
from hubgate.cloud.store import AuthRecord, AuthSource, ListUpdateStatus, Outgoing, Store
from hubgate.cloud.store_schema import SCHEMA_VERSION
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
    store.refuse(sent.seq, "GenericError")
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
    # the batch ends before a message whose CSMS id is not known yet: never sent with -1
    assert [m.message_id for m in store.pending("A")] == ["s"]
    assert store.pending("B")[0].seq > start.seq
    store.acknowledge(start.seq, {"transactionId": 4711, "idTagInfo": {"status": "Accepted"}})
    assert [m.payload.get("transactionId") for m in store.pending("A")] == [4711, 4711, None]
    assert store.csms_transaction_id("A", -1) == 4711
    assert store.csms_transaction_id("A", -2) is None  # s2's id, not yet answered


def test_a_refused_message_goes_to_dead_letters_at_once(store: Store) -> None:
    (r, _) = store.enqueue_many(
        [Outgoing("A", "m", "StopTransaction", {}), Outgoing("A", "n", "Heartbeat", {})]
    )
    store.refuse(r.seq, "FormationViolation")
    assert [m.message_id for m in store.pending("A")] == ["n"]
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
    assert offline_token_info(V201, found, OfflineRules())["status"] == "Accepted"
    expired = store.authorize("A", key, now=expiry)
    assert expired is not None
    assert offline_token_info(V201, expired, OfflineRules()) == {
        "status": "Expired",
        "cacheExpiryDateTime": "2030-01-01T00:00:00Z",
    }
    assert offline_token_info(V201, None, OfflineRules()) == {"status": "Unknown"}
    assert offline_token_info(V16, None, OfflineRules()) == {"status": "Invalid"}


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


def test_a_reused_id_is_a_new_message_unless_it_is_a_repeat(store: Store) -> None:
    start = Outgoing(
        "A", "1", "StartTransaction", {"meterStart": 0}, issue_transaction_id=True, connection="c1"
    )
    (first,) = store.enqueue_many([start])
    assert store.enqueue_many([start]) == [first]  # retried on its connection
    assert store.enqueue_many([replace(start, connection="c2")]) == [first]  # after a reconnect
    changed = replace(start, payload={"meterStart": 0, "idTag": "X"})
    assert store.enqueue_many([changed]) == [first]  # retried on its connection
    (second,) = store.enqueue_many(  # a charger numbering its messages again from 1
        [replace(start, payload={"meterStart": 100}, connection="c2")]
    )
    assert (first.local_transaction_id, second.local_transaction_id) == (-1, -2)
    queued = store.pending("A")
    assert [(m.message_id, m.payload["meterStart"]) for m in queued] == [("1", 0), ("1", 100)]
    assert queued[0].upstream_id == "1"
    assert queued[1].upstream_id not in ("", "1")  # its own id towards the CSMS
    assert [m.transaction for m in queued] == ["-1", "-2"]


def test_a_local_id_the_csms_never_gave_holds_its_transaction(store: Store) -> None:
    (start,) = store.enqueue_many(
        [Outgoing("A", "s", "StartTransaction", {}, issue_transaction_id=True)]
    )
    store.enqueue_many(
        [
            Outgoing("A", "mv", "MeterValues", {"transactionId": -1}),
            Outgoing("A", "st", "StatusNotification", {"connectorId": 1}),
        ]
    )
    store.refuse(start.seq, "GenericError")  # a CallError to a start, told no hold
    assert [m.message_id for m in store.pending("A")] == ["st"]  # -1 is never sent
    (hold,) = store.holds()
    assert (hold.transaction, hold.reason, hold.messages) == (
        "-1",
        "no CSMS transaction id for -1",
        1,
    )
    with pytest.raises(ValueError, match="the CSMS gave no transaction id"):
        store.release("A", "-1", None)
    with pytest.raises(KeyError):
        store.release("A", "-2", 7)
    store.release("A", "-1", 77)
    assert [(m.message_id, m.payload.get("transactionId")) for m in store.pending("A")] == [
        ("mv", 77),
        ("st", None),
    ]
    assert store.holds() == []


_FIRST_LAYOUT = """
CREATE TABLE messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    charge_point TEXT NOT NULL,
    message_id TEXT NOT NULL,
    action TEXT NOT NULL,
    payload TEXT NOT NULL,
    coalesce_key TEXT,
    local_transaction_id INTEGER,
    enqueued_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX messages_by_charge_point ON messages (charge_point, seq);
CREATE UNIQUE INDEX messages_by_message_id ON messages (charge_point, message_id);
CREATE TABLE transaction_ids (
    charge_point TEXT NOT NULL,
    local_id INTEGER NOT NULL,
    csms_id INTEGER,
    PRIMARY KEY (charge_point, local_id)
) WITHOUT ROWID;
INSERT INTO messages (charge_point, message_id, action, payload, local_transaction_id,
    enqueued_at) VALUES
    ('A', '1', 'StartTransaction', '{"meterStart":0}', -1, 0),
    ('A', '2', 'MeterValues', '{"transactionId":-1}', NULL, 0),
    ('B', '1', 'TransactionEvent', '{"transactionInfo":{"transactionId":"t9"}}', NULL, 0);
INSERT INTO transaction_ids VALUES ('A', -1, NULL);
"""


def test_a_file_of_the_first_layout_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(_FIRST_LAYOUT)
    db.close()
    store = Store(path)
    queued = store.pending("A")
    assert [(m.message_id, m.upstream_id, m.transaction) for m in queued] == [("1", "1", "-1")]
    store.acknowledge(queued[0].seq, {"transactionId": 5})
    assert [m.payload for m in store.pending("A")] == [{"transactionId": 5}]
    assert [m.transaction for m in store.pending("B")] == ["t9"]
    store.enqueue_many([Outgoing("B", "1", "TransactionEvent", {"seqNo": 1})])
    assert store.pending_count("B") == 2  # the same id, another message
    store.close()
    reopened = Store(path)
    assert reopened._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert reopened.pending_count() == 3
    reopened.close()
