"""The one result path: where an invocation stands (``read``) and waiting until it finishes
(``wait``), shared by ``Client.result`` (which decodes and raises) and the gateway (which maps an
``Outcome`` to an HTTP answer without decoding: the stored JSON is the response body).

Waiting reads the record (three fields, one round trip) when the waiter starts, when a completion
notification wakes it (``reliq.client.waiters``: the settling scripts publish the ids that
finished on their partition's ``done`` channel), and at least every ``recheck`` seconds (the
safety net: pub/sub is at-most-once). It costs O(1) reads per completed invocation, nothing per
waiter per tick; one pub/sub connection per server serves every waiter of the process.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import msgspec

from reliq.store.record import TERMINAL

if TYPE_CHECKING:
    from reliq.client import Client


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
    client: Client, invocation_id: str, timeout: float, *, recheck: float | None = None
) -> Outcome | None:
    """Wait until the invocation is finished or ``timeout`` seconds passed; then its outcome
    (unfinished after a timeout), or None as soon as it is unknown. Woken by its completion
    notification; re-reads at least every ``recheck`` seconds (default ``client.recheck``)."""
    if timeout <= 0:
        return await read(client, invocation_id)
    channel = client.keys_of(invocation_id).done_channel
    deadline = time.monotonic() + timeout
    pause = client.recheck if recheck is None else recheck
    waiters = client.waiters
    with waiters.watch(invocation_id, channel) as waiter:  # before the first read: no gap
        while True:
            out = await read(client, invocation_id)
            remaining = deadline - time.monotonic()
            if out is None or out.finished or remaining <= 0:
                return out
            at_most = await waiters.subscribe(channel)  # inf, or a short pause while it cannot
            await waiter.sleep(min(pause, remaining, at_most))
