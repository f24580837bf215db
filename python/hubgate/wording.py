"""Counts in the words people read: "1 node", "2 nodes"."""

from __future__ import annotations


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """`n` and the noun, singular for one, else `plural` (default: the noun + "s")."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
