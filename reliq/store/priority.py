"""Priorities: three levels, one stream each per partition (``ServiceKeys.streams``), and the
weighted read rule that decides which level the next starts come from.

The rule (``lua/read.lua``): a worker's read of ``n`` entries first gives each level its quota of
the ``n`` slots, taken from ``PATTERN``, a repeating cycle of ten slots (six high, three normal,
one low) that each read loop walks on from where its last read stopped; the slots a level cannot
fill (nothing of it waits) go to the others in priority order: high, normal, low. So while all
three levels have work waiting, starts are shared 6:3:1 (low is never starved: one start in ten);
a level alone gets every slot; and a high-priority invocation queued behind any number of
normal ones is delivered by the next read of any worker of its partition.
"""

from __future__ import annotations

from typing import Literal, get_args

from reliq.store.keys import LEVELS

Priority = Literal["high", "normal", "low"]
PRIORITIES: tuple[str, ...] = get_args(Priority)
WEIGHTS = {"high": 6, "normal": 3, "low": 1}  # starts per ten, while every level has work waiting
# one cycle of ten slots, levels as indexes of LEVELS; spread so that short reads share too
_CYCLE = ("high", "normal", "high", "low", "high", "normal", "high", "high", "normal", "high")
PATTERN: tuple[int, ...] = tuple(LEVELS.index(x) for x in _CYCLE)


def check_priority(value: object) -> Priority:
    """``value`` as a ``Priority``; ``ValueError`` for anything else (``None`` included)."""
    if value not in PRIORITIES:
        raise ValueError(f"priority must be one of {', '.join(PRIORITIES)}, not {value!r}")
    return value  # type: ignore[return-value]


def quotas(turn: int, n: int) -> tuple[list[int], int]:
    """The quotas (in ``LEVELS`` order) of a read of ``n`` slots starting at ``turn`` of the
    pattern, and the turn the next read starts at."""
    q = [0, 0, 0]
    size = len(PATTERN)
    full, rest = divmod(n, size)
    if full:
        for level in PATTERN:
            q[level] += full
    for i in range(rest):
        q[PATTERN[(turn + i) % size]] += 1
    return q, (turn + n) % size
