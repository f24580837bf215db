"""Sans-IO pieces: OCPP-J framing, schema error codes, meter-value parsing, the site registry."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubgate.config import ConfigError
from hubgate.config.loader import load_site
from hubgate.ocpp import rpc
from hubgate.ocpp.errors import ErrorCode, RpcError
from hubgate.ocpp.meter_values import Measurement, merge_readings, readings
from hubgate.ocpp.registry import StationRegistry
from hubgate.ocpp.validation import Direction, actions, validate
from hubgate.ocpp.versions import OcppVersion

V16, V201, V21 = OcppVersion.V16, OcppVersion.V201, OcppVersion.V21


@pytest.mark.parametrize(
    "message",
    [
        rpc.Call("a", "Heartbeat", {}),
        rpc.CallResult("b", {"currentTime": "2026-11-25T12:00:00Z"}),
        rpc.CallError("c", "NotImplemented", "no", {"x": 1}),
        rpc.Send("d", "NotifyPeriodicEventStream", {"id": 1}),
        rpc.CallResultError("e", "FormatViolation", "bad", {}),
    ],
)
def test_encode_then_parse_round_trips(message: rpc.Message) -> None:
    assert rpc.parse(rpc.encode(message), V21) == message


def test_codes_follow_the_version_spelling() -> None:
    assert rpc.error_code_for(V16, ErrorCode.FORMAT_VIOLATION) == "FormationViolation"
    assert rpc.error_code_for(V16, ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION) == (
        "OccurenceConstraintViolation"
    )
    assert rpc.error_code_for(V201, ErrorCode.FORMAT_VIOLATION) == "FormatViolation"
    with pytest.raises(RpcError) as error:
        rpc.parse('[5,"x","GenericError","",{}]', V201)
    assert error.value.code == "MessageTypeNotSupported"


def test_broken_responses_are_not_answerable() -> None:
    with pytest.raises(RpcError) as error:
        rpc.parse('[3,"x"]', V16)
    assert not error.value.answerable
    assert error.value.unique_id == "x"


def test_peek_reads_the_id_of_a_frame_too_big_to_parse() -> None:
    assert rpc.peek_unique_id('[2, "abc", "DataTransfer", {"data": "' + "y" * 100) == (2, "abc")
    assert rpc.peek_unique_id("garbage") == (None, "-1")


def test_action_sets_come_from_the_shipped_schemas() -> None:
    assert {"BootNotification", "MeterValues", "StartTransaction"} <= actions(V16)
    assert "TransactionEvent" in actions(V201)
    assert "TransactionEvent" not in actions(V16)
    assert {"NotifyPeriodicEventStream", "SetDERControl"} <= actions(V21)


def test_a_valid_response_passes_and_a_bad_one_names_the_field() -> None:
    validate(V201, "Heartbeat", Direction.RESPONSE, {"currentTime": "2026-11-25T12:00:00.123Z"})
    with pytest.raises(RpcError) as error:
        validate(V201, "Heartbeat", Direction.RESPONSE, {})
    assert error.value.code == "OccurrenceConstraintViolation"
    assert "currentTime" in error.value.description


def test_meter_values_in_16_units_and_21_multipliers() -> None:
    v16 = [
        {
            "timestamp": "2026-11-25T12:00:10Z",
            "sampledValue": [
                {"value": "7.2", "measurand": "Power.Active.Import", "unit": "kW"},
                {"value": "3", "measurand": "Power.Active.Import", "unit": "kW", "phase": "L1"},
                {"value": "12.5"},  # default measurand: the energy register, in Wh
                {"value": "deadbeef", "format": "SignedData"},
                {"value": "8", "measurand": "Current.Import"},  # no phase: L1
            ],
        },
        {  # older sample, listed later: must not win
            "timestamp": "2026-11-25T12:00:00Z",
            "sampledValue": [{"value": "99", "measurand": "SoC"}],
        },
    ]
    m = merge_readings(Measurement(soc_percent=50.0), readings(v16, V16))
    assert (m.power_w, m.energy_wh, m.current_a) == (7200.0, 12.5, (8.0, None, None))
    assert m.soc_percent == 99.0
    assert m.timestamp is not None
    assert m.timestamp.second == 10
    v2 = [
        {
            "timestamp": "2026-11-25T12:00:00+01:00",
            "sampledValue": [
                {"value": 2, "measurand": "Power.Active.Import", "phase": "L1-N"},
                {"value": 3, "measurand": "Power.Active.Import", "phase": "L2-N"},
                {"value": 1.5, "unitOfMeasure": {"unit": "Wh", "multiplier": 3}},
            ],
        }
    ]
    m2 = merge_readings(Measurement(), readings(v2, V21))
    assert (m2.power_w, m2.energy_wh) == (5.0, 1500.0)


def test_registry_from_the_example_depot(examples_dir: Path) -> None:
    site = load_site(examples_dir / "sites" / "depot-200.toml")
    registry = StationRegistry.from_site(site)
    station = registry.get("DEPOT-001")
    assert station is not None
    assert station.admission.versions == (V201,)
    assert registry.get("NOT-THERE") is None
    assert len(list(registry)) == sum(1 for c in site.chargers if c.ocpp is not None)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
T = TypeVar("T")
FRAMES = st.lists(JSON, max_size=6).map(json.dumps) | st.text(max_size=60)


def rpc_outcome(action: Callable[[], T]) -> T | RpcError:
    """What `action` returns, or the RpcError it raises (anything else propagates)."""
    try:
        return action()
    except RpcError as exc:
        return exc


@settings(max_examples=400, deadline=None)
@given(text=FRAMES, version=st.sampled_from(list(OcppVersion)))
def test_any_text_is_a_message_or_an_rpc_error(text: str, version: OcppVersion) -> None:
    outcome = rpc_outcome(lambda: rpc.parse(text, version))
    if isinstance(outcome, RpcError):
        assert outcome.code in set(ErrorCode)
        assert rpc.encode(rpc.error_reply(outcome, version))
    else:
        assert rpc.parse(rpc.encode(outcome), version) == outcome


@settings(max_examples=200, deadline=None)
@given(
    payload=st.dictionaries(st.text(max_size=12), JSON, max_size=5),
    version=st.sampled_from(list(OcppVersion)),
)
def test_any_payload_validates_or_gets_a_schema_code(
    payload: dict[str, object], version: OcppVersion
) -> None:
    outcome = rpc_outcome(lambda: validate(version, "BootNotification", Direction.REQUEST, payload))
    schema_codes = set(ErrorCode) - {ErrorCode.INTERNAL_ERROR, ErrorCode.NOT_IMPLEMENTED}
    assert outcome is None or outcome.code in schema_codes


def test_security_profile_1_site_needs_charger_passwords(
    examples_dir: Path, tmp_path: Path
) -> None:
    text = (examples_dir / "sites" / "small-4.toml").read_text()
    site_file = tmp_path / "site.toml"
    site_file.write_text(text.replace("[ocpp]\n", "[ocpp]\nsecurity_profile = 1\n", 1))
    with pytest.raises(ConfigError) as error:
        load_site(site_file)
    assert "password" in str(error.value)
    assert len(error.value.problems) == sum(
        1 for c in load_site(examples_dir / "sites" / "small-4.toml").chargers if c.ocpp
    )


@pytest.mark.parametrize(
    "module", ["hubgate.ocpp.rpc", "hubgate.ocpp.server", "hubgate.ocpp.smart_charging"]
)
def test_module_imports_first_in_a_fresh_interpreter(module: str) -> None:
    """No import cycle through hubgate.errors, whichever module is imported first."""
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True, timeout=60)
