"""`hubgate.errors` names every exception hubgate raises (in the way of trio's export tests),
and the errors that are built-in kinds are caught as those too."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import hubgate
import hubgate.errors
from hubgate._core import HubgateError


def _every_module() -> list[str]:
    return [
        info.name
        for info in pkgutil.walk_packages(hubgate.__path__, "hubgate.")
        if not info.name.endswith("__main__")
    ]


def _subclasses(cls: type) -> set[type]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= _subclasses(sub)
    return found


def test_every_hubgate_error_is_in_the_errors_namespace() -> None:
    for module in _every_module():
        importlib.import_module(module)
    missing = sorted(
        f"{cls.__module__}.{cls.__qualname__}"
        for cls in _subclasses(HubgateError)
        if cls.__module__.startswith("hubgate")
        and getattr(hubgate.errors, cls.__name__, None) is not cls
    )
    assert missing == [], "add these to hubgate/errors.py and its __all__"
    assert sorted(hubgate.errors.__all__) == sorted(
        name for name in vars(hubgate.errors) if not name.startswith("_")
    )


@pytest.mark.parametrize(
    ("error", "builtin"),
    [
        (hubgate.errors.ModbusTimeoutError, TimeoutError),
        (hubgate.errors.ModbusConnectionError, ConnectionError),
        (hubgate.errors.OcppCallTimeoutError, TimeoutError),
        (hubgate.errors.OcppSessionClosedError, ConnectionError),
        (hubgate.errors.CodecError, ValueError),
        (hubgate.errors.TopologyError, ValueError),
        (hubgate.errors.AllocationInputError, ValueError),
    ],
)
def test_errors_of_a_builtin_kind_are_that_kind(error: type, builtin: type) -> None:
    assert issubclass(error, HubgateError)
    assert issubclass(error, builtin)
    with pytest.raises(builtin):
        raise error("it happened")
