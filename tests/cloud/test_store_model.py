"""The store's queues against a plain model, across reopens, with random operations."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from hubgate.cloud.offline import offline_handling
from hubgate.cloud.store import Outgoing, Store

CHARGE_POINTS = st.sampled_from(["A", "B"])


class QueueModel(RuleBasedStateMachine):
    """Per charge point, a list of (message id, payload) in the order they must be sent."""

    def __init__(self) -> None:
        super().__init__()
        self.directory = tempfile.TemporaryDirectory()
        self.path = Path(self.directory.name) / "q.sqlite3"
        self.store = Store(self.path)
        self.model: dict[str, list[tuple[str, dict[str, int]]]] = {"A": [], "B": []}
        self.counter = 0

    def teardown(self) -> None:
        self.store.close()
        self.directory.cleanup()

    @rule(
        cp=CHARGE_POINTS, kinds=st.lists(st.sampled_from(["tx", "status1", "status2"]), max_size=4)
    )
    def enqueue(self, cp: str, kinds: list[str]) -> None:
        items = []
        for kind in kinds:
            self.counter += 1
            mid = f"m{self.counter}"
            if kind == "tx":
                payload = {"n": self.counter}
                items.append(Outgoing(cp, mid, "StopTransaction", payload))
                self.model[cp].append((mid, payload))
                continue
            payload = {"connectorId": int(kind[-1]), "n": self.counter}
            key = offline_handling("StatusNotification", payload).coalesce_key
            items.append(Outgoing(cp, mid, "StatusNotification", payload, key))
            self.model[cp] = [
                (m, p) for m, p in self.model[cp] if p.get("connectorId") != payload["connectorId"]
            ]
            self.model[cp].append((mid, payload))
        self.store.enqueue_many(items)

    @rule(cp=CHARGE_POINTS)
    def repeat_last_call(self, cp: str) -> None:
        if self.model[cp]:
            mid, payload = self.model[cp][-1]
            action = "StatusNotification" if "connectorId" in payload else "StopTransaction"
            self.store.enqueue_many([Outgoing(cp, mid, action, payload)])

    @rule(cp=CHARGE_POINTS, count=st.integers(1, 3))
    def acknowledge(self, cp: str, count: int) -> None:
        for message in self.store.pending(cp, limit=count):
            assert (message.message_id, message.payload) == self.model[cp].pop(0)
            self.store.acknowledge(message.seq, {})

    @rule()
    def reopen(self) -> None:
        self.store.close()
        self.store = Store(self.path)

    @invariant()
    def queues_match(self) -> None:
        for cp, expected in self.model.items():
            stored = [(m.message_id, m.payload) for m in self.store.pending(cp, limit=1000)]
            assert stored == expected
            assert self.store.pending_count(cp) == len(expected)


QueueModel.TestCase.settings = settings(max_examples=25, stateful_step_count=15, deadline=None)
TestQueueModel = QueueModel.TestCase
