"""The cap on waiting requests: at most ``max_waiters`` requests (``/call``, ``/attach?wait=``) of
one gateway process wait for an outcome at once; past it they get 429 with ``Retry-After``, and
a ``/call`` places nothing. Waiting itself costs Redis nothing per tick (``reliq.client.waiters``:
completion notifications), but each waiter holds an HTTP connection, a task and its buffers, so
their number is bounded like any other resource an unauthenticated client can hold."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from .problems import Problem


class WaiterCap:
    def __init__(self, limit: int) -> None:
        self.limit, self.active = limit, 0

    def take(self) -> None:
        """Take one of the ``limit`` waiting slots (``give`` it back); 429 when none is free."""
        if self.active >= self.limit:
            raise Problem(
                429,
                "Too Many Requests",
                f"{self.active} requests are waiting for outcomes here (limit {self.limit}); retry later",
                headers={"Retry-After": "1"},
            )
        self.active += 1

    def give(self) -> None:
        self.active -= 1

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the waiting slots for the block (``take``, then ``give``)."""
        self.take()
        try:
            yield
        finally:
            self.give()
