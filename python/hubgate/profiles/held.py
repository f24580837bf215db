"""A fallback the device holds whatever hubgate asks: read, never written (Alfen's safe
current 1212, set in ACE Service Installer). The failsafe budget and `hubgate config check`
count the value read, until then the most it may be, not the profile's `default` (what an
installer set is not known)."""

from __future__ import annotations

import math

from hubgate.profiles.model import Fallback, Profile, Unit


def held_by_device(profile: Profile) -> Fallback | None:
    """The profile's fallback where its device holds it in a register hubgate reads but
    cannot write, in A (Alfen 1212, its SCN 1429, Webasto NEXT 2000, KEBA P30 1600)."""
    failsafe = profile.failsafe
    fallback = failsafe.fallback
    if not failsafe.present or fallback is None or fallback.address is None:
        return None
    return None if fallback.writable or fallback.unit is not Unit.AMPERE else fallback


def held_maximum_a(profile: Profile) -> float | None:
    """The most a fallback its device holds may be (`held_by_device`): its current
    setpoint's maximum (inf without one); None where it holds none."""
    if held_by_device(profile) is None:
        return None
    setpoint = profile.commands.current_limit
    return math.inf if setpoint is None else setpoint.max


def where_held(fallback: Fallback) -> str:
    """Where the operator finds a fallback its device holds (`held_by_device`): 'register
    1212, set in ACE Service Installer (...)'."""
    where = f"register {fallback.address}"
    return where if fallback.set_with is None else f"{where}, set in {fallback.set_with}"
