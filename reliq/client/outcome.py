"""The one result path: where an invocation stands (``read``) and waiting until it finishes
(``wait``), shared by ``Client.result`` (which decodes and raises) and the gateway (which maps an
``Outcome`` to an HTTP answer without decoding: the stored JSON is the response body).

Waiting polls the record (three fields, one round trip) with pauses growing from 2 ms: a result
usually arrives within milliseconds, and a long wait costs a few reads a second, no subscription
and no extra connection per waiter.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import msgspec

from reliq.store.record import TERMINAL

if TYPE_CHECKING:
    from reliq.client import Client

FIRST_PAUSE = 0.002


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """An invocation's state, and its result or error document as stored (JSON bytes, or empty)."""

    state: str
    result: bytes = b""
    error: bytes = b""

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL


async def read(client: Client, invocation_id: str) -> Outcome | None:
    """The outcome so far; None when the invocation is unknown or expired. A malformed id raises
    ``InvalidName``."""
    k = client.keys_of(invocation_id)
    state, result, error = await client.redis.hmget(k.inv(invocation_id), "state", "result", "error")
    if state is None:
        return None
    return Outcome(state=state.decode(), result=result or b"", error=error or b"")


async def wait(
    client: Client, invocation_id: str, timeout: float, *, max_pause: float = 0.1
) -> Outcome | None:
    """Poll (pauses from 2 ms up to ``max_pause`` s) until the invocation is finished or
    ``timeout`` seconds passed; then its outcome (unfinished after a timeout), or None as soon as
    it is unknown."""
    deadline = time.monotonic() + timeout
    pause = FIRST_PAUSE
    while True:
        out = await read(client, invocation_id)
        if out is None or out.finished:
            return out
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return out
        await asyncio.sleep(min(pause, remaining))
        pause = min(pause * 1.5, max_pause)
