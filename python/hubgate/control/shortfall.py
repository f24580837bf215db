"""Who goes short when the site cannot finish every session by its departure (sans-IO).

`SessionDeadlines.plan` plans every session's whole need; when that plan is short of
energy, the `[deadlines] shortfall` policy decides who gives way. `even` keeps the plan as
it is: the deadline planner levels what is missing over the sessions, so each ends a
little short and, on a depot where a vehicle counts as ready only at its need, none is.
`most-finished` (`FinishMost`) plans every session to its floor first (a share of its
need, or a vehicle's own floor from the site file), then picks the sessions that finish:
by departure, earliest first, each kept while the plan still delivers every kept
session's need (by its margin before the departure) and every other session's floor (by
the departure); when one does not fit, the kept session with the most to give (need above
floor) gives way (Moore and Hodgson's rule for the most jobs on time). The sessions that
give way are planned to their floor; the allocator still shares what the plan leaves free
among every session, so they get more than their floor whenever there is more.

The pick costs a plan or two per session; it is kept while the same sessions are planned
and it still fits, so a cycle usually pays one plan for it.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Collection, Sequence

Fits = Callable[[Sequence[float], Sequence[float]], bool]
"""Whether a plan of these needs (Wh per session) by these times (s from now) delivers
every one of them."""

Pick = tuple["array[float]", "array[float]"]
"""The needs to plan (Wh per session) and the times (s from now) to plan them by."""


class FinishMost:
    """The `most-finished` pick of the sessions that finish (see the module docstring)."""

    def __init__(self) -> None:
        self._planned: frozenset[int] = frozenset()
        self._giving_way: frozenset[int] = frozenset()

    @property
    def giving_way(self) -> frozenset[int]:
        """The sessions (indices) planned to their floor at the last `pick`."""
        return self._giving_way

    def clear(self) -> None:
        """The site is not short: nobody gives way."""
        self._planned = self._giving_way = frozenset()

    def pick(
        self,
        need: Sequence[float],
        floor: Sequence[float],
        early: Sequence[float],
        departure: Sequence[float],
        fits: Fits,
    ) -> Pick | None:
        """The needs to plan: `need` by `early` (its margin before the departure) for the
        sessions that finish, `floor` (at most `need`) by `departure` for those that give
        way; None when no session finishes above its floor (nothing to pick: the caller
        spreads what is missing). `fits`: whether a plan delivers given needs by given
        times."""
        planned = frozenset(i for i, wh in enumerate(need) if wh > 0)
        if planned != self._planned or not fits(
            *self._with(need, floor, early, departure, self._giving_way)
        ):
            self._planned = planned
            self._giving_way = self._choose(need, floor, early, departure, fits, self._giving_way)
        if all(need[i] <= floor[i] or i in self._giving_way for i in planned):
            return None
        return self._with(need, floor, early, departure, self._giving_way)

    @staticmethod
    def _with(
        need: Sequence[float],
        floor: Sequence[float],
        early: Sequence[float],
        departure: Sequence[float],
        giving_way: Collection[int],
    ) -> Pick:
        gives = [i in giving_way for i in range(len(need))]
        return (
            array("d", (f if g else wh for wh, f, g in zip(need, floor, gives, strict=True))),
            array("d", (d if g else e for e, d, g in zip(early, departure, gives, strict=True))),
        )

    @classmethod
    def _choose(
        cls,
        need: Sequence[float],
        floor: Sequence[float],
        early: Sequence[float],
        departure: Sequence[float],
        fits: Fits,
        gave_way: frozenset[int],
    ) -> frozenset[int]:
        """Moore and Hodgson's pick; among the kept, one that gave way at the last pick gives
        way first (a session kept is not dropped for one that was not)."""
        giving_way = {i for i, wh in enumerate(need) if wh > floor[i]}
        if not fits(*cls._with(need, floor, early, departure, giving_way)):
            return frozenset(giving_way)  # not even the floors: each gets part of its floor
        kept: list[int] = []
        for i in sorted(giving_way, key=lambda i: (early[i], need[i], i)):
            kept.append(i)
            giving_way.discard(i)
            while kept and not fits(*cls._with(need, floor, early, departure, giving_way)):
                most = max(kept, key=lambda k: (k in gave_way, need[k] - floor[k], early[k], k))
                kept.remove(most)
                giving_way.add(most)
        return frozenset(giving_way)
