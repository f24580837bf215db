"""What every table of the site file shares: the strict base model and the field types
(identifiers, currents, powers, durations, ports, per-phase limits)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

Identifier = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$",
        description="Letters, digits and _ . : - (up to 64 characters, starting with a letter or digit)",
    ),
]
Amps = Annotated[float, Field(ge=0, le=100_000, description="Current in amperes")]
PositiveAmps = Annotated[float, Field(gt=0, le=100_000, description="Current in amperes")]
Kilowatts = Annotated[float, Field(gt=0, le=1_000_000, description="Power in kW")]
Seconds = Annotated[float, Field(gt=0, le=86_400, description="Duration in seconds")]
TcpPort = Annotated[int, Field(ge=1, le=65_535)]
ListenPort = Annotated[int, Field(ge=0, le=65_535, description="0 picks a free port")]


class Strict(BaseModel):
    """Base of every configuration model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def _phase_currents(value: object) -> tuple[float, float, float]:
    """Accepts one current for all phases or [L1, L2, L3]; each must be above 0 A."""
    values = [value] * 3 if isinstance(value, int | float) else value
    if not isinstance(values, list | tuple) or len(values) != 3:
        raise ValueError(f"give one current for all phases or [L1, L2, L3], got {value!r}")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v <= 100_000:
            raise ValueError(f"each phase limit must be a number above 0 A, got {v!r}")
    return (float(values[0]), float(values[1]), float(values[2]))


_POSITIVE_NUMBER = {"type": "number", "exclusiveMinimum": 0}
PhaseCurrents = Annotated[
    tuple[float, float, float],
    BeforeValidator(_phase_currents),
    WithJsonSchema(
        {
            "anyOf": [
                _POSITIVE_NUMBER,
                {"type": "array", "items": _POSITIVE_NUMBER, "minItems": 3, "maxItems": 3},
            ],
            "description": "Per-phase current limit in A: one value, or [L1, L2, L3]",
        }
    ),
]
