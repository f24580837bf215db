"""`hubgate.trusted.trusted`: the same model as `model_construct`, faster, or a clear refusal."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field

from hubgate.state import ConnectorState
from hubgate.trusted import trusted

CHARGING = {
    "key": "cp-1#1",
    "charger": "cp-1",
    "connector": 1,
    "node": "feeder-1",
    "protocol": "ocpp",
    "status": "CHARGING",
    "setpoint_a": 16.0,
    "phases": 3,
    "measured_a": (15.9, 16.0, 15.8),
    "power_kw": 11.0,
    "reason": "FAIR_SHARE",
}


def test_same_model_as_model_construct_with_defaults_filled_in() -> None:
    built = trusted(ConnectorState, **CHARGING)
    expected = ConnectorState.model_construct(**CHARGING)
    assert built == expected
    assert built.model_fields_set == expected.model_fields_set == set(CHARGING)
    assert built.model_dump_json() == expected.model_dump_json()
    assert built.stale is expected.stale  # a default the call left out


def test_every_field_given() -> None:
    everything = ConnectorState.model_construct(**CHARGING).model_dump()
    built = trusted(ConnectorState, **everything)
    assert built == ConnectorState.model_validate(everything)
    assert built.model_fields_set == set(ConnectorState.model_fields)


class _Listed(BaseModel):
    names: list[str] = Field(default_factory=list)


def test_default_factories_give_each_model_its_own_value() -> None:
    first, second = trusted(_Listed), trusted(_Listed)
    first.names.append("a")
    assert second.names == []


def test_unknown_field_is_refused() -> None:
    with pytest.raises(TypeError, match="no field"):
        trusted(ConnectorState, **CHARGING, colour="red")


class _Aliased(BaseModel):
    value: int = Field(alias="Value")


def test_a_model_that_needs_model_construct_is_refused() -> None:
    with pytest.raises(TypeError, match="_Aliased needs model_construct"):
        trusted(_Aliased, value=1)


def test_fields_keep_the_models_order_whatever_the_call_order() -> None:
    everything = ConnectorState.model_construct(**CHARGING).model_dump()
    reversed_call = dict(reversed(everything.items()))
    assert list(trusted(ConnectorState, **reversed_call).model_dump()) == list(everything)
