"""Waiting out Redis hiccups: exponential pauses with jitter, and one bounded retry helper.

Every loop that talks to Redis waits the same way: a short first pause, doubling up to a cap,
jittered so that many workers reconnecting after a restart do not stampede. ``retrying`` is the
only place that retries an operation on a transient error, and it always gives up in the end
(a deadline), so a bug that fails every time surfaces as an error instead of a silent hot loop.

>>> pauses = Backoff(first=0.05, cap=2.0)
>>> await pauses.sleep()          # 0.025-0.05 s, then 0.05-0.1 s, ...
>>> await retrying(lambda: scripts.complete(...), what="settle", deadline=60.0)
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from reliq.errors import TRANSIENT

T = TypeVar("T")
log = logging.getLogger("reliq.backoff")


class Backoff:
    """Pauses ``first, 2*first, 4*first, ...`` up to ``cap`` seconds, each jittered to [1/2, 1]."""

    def __init__(self, first: float = 0.05, cap: float = 2.0, factor: float = 2.0) -> None:
        self.first = first
        self.cap = cap
        self.factor = factor
        self._next = first

    def next(self) -> float:
        """The next pause (jittered), and advance."""
        pause = self._next
        self._next = min(self._next * self.factor, self.cap)
        return pause * (0.5 + random.random() / 2)

    def reset(self) -> None:
        """Start again from ``first`` (after a success)."""
        self._next = self.first

    async def sleep(self) -> None:
        await asyncio.sleep(self.next())


async def retrying(
    op: Callable[[], Awaitable[T]],
    *,
    what: str,
    deadline: float = 60.0,
    backoff: Backoff | None = None,
    transient: tuple[type[BaseException], ...] = TRANSIENT,
) -> T:
    """Run ``op`` until it succeeds; retry on ``transient`` errors with ``backoff`` for at most
    ``deadline`` seconds, then re-raise the last error. Only for idempotent operations (every
    reliq script recognises its own re-send)."""
    pauses = backoff or Backoff()
    give_up = time.monotonic() + deadline
    while True:
        try:
            return await op()
        except transient as e:
            if time.monotonic() >= give_up:
                log.error("%s: still failing after %.0f s (%s); giving up", what, deadline, e)
                raise
            log.warning("%s failed (%s); retrying", what, e)
            await pauses.sleep()
