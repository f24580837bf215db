"""The Rust reader of hot calls (`hubgate._core.OcppCallReader`) against the Python path
(orjson, jsonschema-rs, the handlers' dict half) on one corpus: valid MeterValues,
StatusNotification and Heartbeat payloads of every version, and each kind of invalid one
made from the `ocpp` package's own schemas (a required field missing, a wrong type, an
extra field, a bad enum, a bad date-time, a string too long)."""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Iterator
from importlib import resources
from typing import Any

import orjson
import pytest
import trio

from hubgate.ocpp import handlers_v2, handlers_v16, rpc
from hubgate.ocpp.errors import RpcError
from hubgate.ocpp.meter_values import readings
from hubgate.ocpp.policy import CsmsPolicy
from hubgate.ocpp.registry import Admission, Station
from hubgate.ocpp.session import Handler, OcppSession
from hubgate.ocpp.validation import Direction, hot_reader, validate
from hubgate.ocpp.versions import OcppVersion

V16, V201, V21 = OcppVersion.V16, OcppVersion.V201, OcppVersion.V21
HOT = frozenset({"MeterValues", "StatusNotification", "Heartbeat"})
AT = "2026-12-07T10:00:00Z"

_SAMPLES_16 = [
    {"value": "1234.5", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
    {"value": "12.5", "measurand": "Current.Import", "phase": "L1", "unit": "A"},
    {"value": "12.25", "measurand": "Current.Import", "phase": "L2", "unit": "A"},
    {"value": "12", "measurand": "Current.Import", "phase": "L3", "unit": "A"},
    {"value": "229.9", "measurand": "Voltage", "phase": "L1-N", "unit": "V"},
    {"value": "230.1", "measurand": "Voltage", "phase": "L2-N", "unit": "V"},
    {"value": "3.1", "measurand": "Power.Active.Import", "phase": "L1", "unit": "kW"},
    {"value": "2.9", "measurand": "Power.Active.Import", "phase": "L2", "unit": "kW"},
    {"value": "55", "measurand": "SoC", "unit": "Percent", "context": "Sample.Periodic"},
    {"value": "16", "measurand": "Current.Offered", "unit": "A", "location": "Outlet"},
    {"value": "7", "measurand": "Frequency"},
    {"value": "2.5", "measurand": "Energy.Active.Import.Register", "phase": "L1", "unit": "kWh"},
    {"value": "abc", "format": "SignedData"},
]
_SAMPLES_2 = [
    {"value": 1234.5, "measurand": "Energy.Active.Import.Register"},
    {"value": 12.5, "measurand": "Current.Import", "phase": "L1", "unitOfMeasure": {"unit": "A"}},
    {"value": 12, "measurand": "Current.Import", "phase": "L2"},
    {"value": 229.9, "measurand": "Voltage", "phase": "L1-N"},
    {"value": 6, "measurand": "Power.Active.Import", "unitOfMeasure": {"unit": "kW"}},
    {"value": 55, "measurand": "SoC", "context": "Sample.Periodic", "location": "EV"},
    {"value": 160, "measurand": "Current.Offered", "unitOfMeasure": {"multiplier": -1}},
    {"value": 1.5, "unitOfMeasure": {"unit": "kWh", "multiplier": 1}},
]
VALID: dict[OcppVersion, list[tuple[str, dict[str, Any]]]] = {
    V16: [
        ("Heartbeat", {}),
        ("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Charging"}),
        (
            "StatusNotification",
            {
                "connectorId": 0,
                "errorCode": "OtherError",
                "status": "Faulted",
                "info": "x",
                "timestamp": AT,
                "vendorId": "v",
                "vendorErrorCode": "e",
            },
        ),
        (
            "MeterValues",
            {"connectorId": 1, "meterValue": [{"timestamp": AT, "sampledValue": _SAMPLES_16}]},
        ),
        (
            "MeterValues",
            {
                "connectorId": 2,
                "transactionId": 7,
                "meterValue": [
                    {"timestamp": "2026-12-07T10:00:20+01:00", "sampledValue": [{"value": "10"}]},
                    {"timestamp": "2026-12-07T09:00:10.5Z", "sampledValue": _SAMPLES_16[:4]},
                ],
            },
        ),
    ],
    **{
        version: [
            ("Heartbeat", {}),
            (
                "StatusNotification",
                {"timestamp": AT, "connectorStatus": "Occupied", "evseId": 1, "connectorId": 1},
            ),
            (
                "MeterValues",
                {"evseId": 1, "meterValue": [{"timestamp": AT, "sampledValue": _SAMPLES_2}]},
            ),
            (
                "MeterValues",
                {
                    "evseId": 2,
                    "customData": {"vendorId": "v", "more": 1},
                    "meterValue": [
                        {
                            "timestamp": "2026-12-07T10:00:20.25+01:00",
                            "sampledValue": _SAMPLES_2[:2],
                        },
                        {"timestamp": AT, "sampledValue": [{"value": -0.0}]},
                    ],
                },
            ),
        ]
        for version in (V201, V21)
    },
}
"""Valid payloads (each also checked valid below); the mutations start from them."""

_BAD_TIMES = [
    "2026-13-01T00:00:00Z",
    "2026-12-07T25:00:00Z",
    "2026-12-07 10:00:00Z",
    "2026-12-07T10:00:00",
    "2026-12-07",
    "yesterday",
    "2026-12-07T10:00:00+0100",
    "2026-02-30T10:00:00Z",
]
_OTHER_TIMES = [
    "2026-12-07t10:00:00z",
    "2026-12-07T10:00:00.123456789-05:30",
    "2026-12-31T23:59:60Z",
]
_VALUES_16 = [
    "-1.5",
    "+2",
    ".5",
    "5.",
    "1e3",
    "1E-2",
    "1e400",
    " 1",
    "1_0",
    "inf",
    "NaN",
    "0x10",
    "",
]
_NUMBERS_2 = [0, -1, 1e308, 2**63, 2**64 + 1, 0.1, True, "1"]
_PLAIN = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
"""A 1.6 value the reader reads itself; any other goes the Python way (`float`)."""
_INTEGERS = [-1, 2**31, 2**63, 2**64 + 1, 1.0, 1.5, True, "1", None]


def _schema(version: OcppVersion, action: str) -> dict[str, Any]:
    folder = {V16: "v16", V201: "v201", V21: "v21"}[version]
    name = f"{action}.json" if version is V16 else f"{action}Request.json"
    path = resources.files("ocpp") / folder / "schemas" / name
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8-sig"))
    return schema


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = root["definitions"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _nodes(
    value: Any, node: dict[str, Any], root: dict[str, Any], path: tuple[Any, ...] = ()
) -> Iterator[tuple[tuple[Any, ...], dict[str, Any], Any]]:
    """Every (path, its schema, its value) of a payload."""
    node = _resolve(node, root)
    yield path, node, value
    if isinstance(value, dict):
        for key, item in value.items():
            if key in node.get("properties", {}):
                yield from _nodes(item, node["properties"][key], root, (*path, key))
    elif isinstance(value, list) and "items" in node:
        for index, item in enumerate(value):
            yield from _nodes(item, node["items"], root, (*path, index))


_GONE = object()


def _with(payload: dict[str, Any], path: tuple[Any, ...], new: Any) -> dict[str, Any]:
    out = copy.deepcopy(payload)
    target: Any = out
    for step in path[:-1]:
        target = target[step]
    if new is _GONE:
        del target[path[-1]]
    else:
        target[path[-1]] = new
    return out


def _mutations(version: OcppVersion, action: str, payload: dict[str, Any]) -> Iterator[Any]:
    """Payloads one change away from `payload`, valid or not, by the schema's keywords."""
    root = _schema(version, action)
    for path, node, value in _nodes(payload, root, root):
        if isinstance(value, dict):
            for key in node.get("required", []):
                yield _with(payload, (*path, key), _GONE)
            yield _with(payload, (*path, "extra"), 1) if path else {**payload, "extra": 1}
        if not path:
            continue
        kind = node.get("type")
        yield _with(payload, path, [] if kind != "array" else {})
        yield _with(payload, path, "text" if kind != "string" else 5)
        if kind == "array":
            yield _with(payload, path, [])
        for choice in node.get("enum", []):
            yield _with(payload, path, choice)
        if "enum" in node:
            yield _with(payload, path, "Bogus")
        if node.get("format") == "date-time":
            for moment in _BAD_TIMES + _OTHER_TIMES:
                yield _with(payload, path, moment)
        if "maxLength" in node:
            yield _with(payload, path, "x" * node["maxLength"])
            yield _with(payload, path, "x" * (node["maxLength"] + 1))
        if kind == "integer":
            for number in _INTEGERS:
                yield _with(payload, path, number)
        if kind == "number":
            for number in _NUMBERS_2:
                yield _with(payload, path, number)
        if path[-1] == "value" and version is V16:
            for text in _VALUES_16:
                yield _with(payload, path, text)
        if path[-1] == "phase":
            yield _with(payload, path, "N")


def _corpus() -> Iterator[tuple[OcppVersion, str]]:
    for version, payloads in VALID.items():
        for n, (action, payload) in enumerate(payloads):
            yield version, json.dumps([2, f"v{n}", action, payload])
            for m, changed in enumerate(_mutations(version, action, payload)):
                yield version, json.dumps([2, f"m{n}.{m}", action, changed])
        for frame in (
            [2, "", "Heartbeat", {}],
            [2, "x" * 37, "Heartbeat", {}],
            [2, "x" * 36, "Heartbeat", {}],
            [2, 5, "Heartbeat", {}],
            [2.0, "a", "Heartbeat", {}],
            [3, "a", {}],
            [2, "a", "Heartbeat", {}, 1],
            [2, "a", "Heartbeat"],
            [2, "a", "Heartbeat", []],
            [2, "a", "Authorize", {}],
            [2, "é✓", "Heartbeat", {}],
        ):
            yield version, json.dumps(frame, ensure_ascii=False)
        for text in ('[2, "a", "Heartbeat", {}', '[2, "a", "Heartbeat", {"x": NaN}]', "[]", "7"):
            yield version, text


CORPUS = list(_corpus())


def _python_accepts(version: OcppVersion, text: str) -> bool:
    try:
        message = rpc.parse(text, version)
        if not isinstance(message, rpc.Call) or message.action not in HOT:
            return False
        validate(version, message.action, Direction.REQUEST, message.payload)
    except RpcError:
        return False
    return True


def _plain(version: OcppVersion, text: str) -> bool:
    """The message type an int, every 1.6 meter value a plain decimal, every id a 64-bit
    int, every multiplier a 64-bit int, every kept value a finite number once scaled, no
    whole-number float beyond 64 bits: what the reader reads itself."""
    frame = orjson.loads(text)  # (as the session parses: a long integer becomes a float)
    if type(frame[0]) is not int:
        return False  # (a message type 2.0 is a call to the Python path)
    payload = frame[3] if len(frame) == 4 else None
    if not isinstance(payload, dict):
        return True
    if _big_integral_float(payload):
        return False
    for key in ("connectorId", "evseId"):
        if key in payload and not _int64(payload[key]):
            return False
    for entry in payload.get("meterValue", []):
        for sample in entry.get("sampledValue", []):
            value = sample.get("value")
            signed = sample.get("format") == "SignedData"
            if isinstance(value, str) and not signed and not _PLAIN.fullmatch(value):
                return False
            multiplier = sample.get("unitOfMeasure", {}).get("multiplier", 0)
            if not _int64(multiplier):
                return False
    skipped: list[str] = []
    readings(payload.get("meterValue", []), version, skipped)
    return not skipped


def _big_integral_float(value: object) -> bool:
    if isinstance(value, float):
        return value.is_integer() and abs(value) >= 2.0**63
    if isinstance(value, dict):
        return any(_big_integral_float(v) for v in value.values())
    if isinstance(value, list):
        return any(_big_integral_float(v) for v in value)
    return False


def _int64(value: object) -> bool:
    return type(value) is int and -(2**63) <= value < 2**63


def test_the_valid_payloads_are_valid() -> None:
    for version, payloads in VALID.items():
        for action, payload in payloads:
            validate(version, action, Direction.REQUEST, payload)


@pytest.mark.parametrize("version", [V16, V201, V21])
def test_the_corpus_has_every_kind(version: OcppVersion) -> None:
    """Hundreds of frames each that the Python path accepts and rejects."""
    accepted = [_python_accepts(v, t) for v, t in CORPUS if v is version]
    assert sum(accepted) > 300
    assert len(accepted) - sum(accepted) > 250


@pytest.mark.parametrize("version", [V16, V201, V21])
def test_reads_exactly_what_validate_accepts(version: OcppVersion) -> None:
    reader = hot_reader(version, HOT)
    for v, text in CORPUS:
        if v is not version:
            continue
        read = reader.read(text) is not None
        python = _python_accepts(version, text)
        if read:
            assert python, text  # never reads what the Python path rejects
        elif python:
            assert not _plain(version, text), text  # only a value it leaves to Python


class _Queue:
    """A transport that keeps what the session queues."""

    def __init__(self) -> None:
        self.out: list[str] = []

    async def get_message(self) -> str:
        raise NotImplementedError

    async def send_message(self, message: str | bytes) -> None:
        raise NotImplementedError

    def queue_message(self, message: str, guard: object = None) -> None:
        self.out.append(message)


def station_handlers(version: OcppVersion) -> tuple[Station, dict[str, Handler]]:
    """A station of two connectors speaking `version`, and its handlers."""
    station = Station(Admission("CP", "cp", (version,), connectors=(1, 2)))
    policy = CsmsPolicy()
    if version is V16:
        return station, handlers_v16.handlers(station, policy)
    return station, handlers_v2.handlers(station, policy, version)


def _answers(version: OcppVersion, texts: list[str], *, hot: bool) -> tuple[list[Any], Any]:
    """Each frame's answer (a Heartbeat's time left out) and the connectors' states after."""
    station, handlers = station_handlers(version)
    queue = _Queue()
    answers: list[Any] = []

    async def run() -> None:
        session = OcppSession(queue, version, handlers, identity="CP")
        assert (session._reader is not None) is True
        if not hot:
            session._reader = None
        async with trio.open_nursery() as nursery:
            for text in texts:
                session._receive(text, nursery)
                answer = json.loads(queue.out.pop()) if queue.out else None  # (none to a result)
                if answer is not None and answer[0] == 3 and "currentTime" in answer[2]:
                    answer[2]["currentTime"] = "now"
                answers.append(answer)

    trio.run(run)
    states = {
        n: (c.status, c.error_code, c.measurement) for n, c in sorted(station.connectors.items())
    }
    return answers, states


@pytest.mark.parametrize("version", [V16, V201, V21])
def test_the_session_answers_and_measures_alike(version: OcppVersion) -> None:
    """The same answers (results and CallErrors, FormationViolation & co.) and the same
    connector states, frame after frame, with the reader and without."""
    texts = [t for v, t in CORPUS if v is version]
    assert _answers(version, texts, hot=True) == _answers(version, texts, hot=False)


def test_meter_values_read_as_the_python_path_merges() -> None:
    reader = hot_reader(V16, HOT)
    text = json.dumps([2, "1", "MeterValues", VALID[V16][3][1]])
    hot = reader.read(text)
    assert hot is not None
    unique_id, action, fields = hot
    assert (unique_id, action) == ("1", "MeterValues")
    connector, (reading,) = fields  # type: ignore[misc]
    assert connector == 1
    assert reading == (AT, (12.5, 12.25, 12.0), (229.9, 230.1, None), 6000.0, 1234.5, 55.0, 16.0)


@pytest.mark.parametrize("version", [V16, V201, V21])
def test_no_frame_fails_its_handler(version: OcppVersion) -> None:
    """Every frame of the corpus gets a result or the CallError that names its fault, never
    InternalError (a multiplier of 2^31 once overflowed `10.0 ** multiplier`), and no
    connector keeps a value that is not a finite number."""
    answers, states = _answers(version, [t for v, t in CORPUS if v is version], hot=True)
    assert [a for a in answers if a is not None and a[2] == "InternalError"] == []
    for _, _, measurement in states.values():
        values = [*measurement.current_a, *measurement.voltage_v, *measurement[3:7]]
        values.append(measurement.energy_power_w)
        assert all(math.isfinite(v) for v in values if isinstance(v, float))
