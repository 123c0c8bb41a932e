"""The Client's actions on invocations: cancel (down the tree), resolve and reject promises,
redrive, list the parked. Bound as ``Client`` methods."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from reliq import codec
from reliq.client.relay import relay_tree
from reliq.errors import TRANSIENT, InvocationFailed, PromiseAlreadySettled, UnknownInvocation
from reliq.store.keys import check_name
from reliq.store.replies import Cancelled, Redriven, Woken

if TYPE_CHECKING:
    from reliq.client import Client

log = logging.getLogger("reliq.client.actions")
MAX_REJECT_MESSAGE = 4096  # characters of a rejection's message (the HTTP route's limit too)


async def cancel(client: Client, invocation_id: str, *, who: str = "") -> Cancelled:
    """Cancel an invocation and, down the tree, every child it started that has not finished:
    'cancelled' (was queued/delayed and never journaled anything; it never runs),
    'cancelling' (running, suspended, or with a journal: its handler sees ``Cancelled`` at its
    current await and may compensate), 'terminal' (already finished). Unknown ids raise.
    ``who``: the actor written to the timeline and the audit stream ('' = not audited)."""
    k = client.keys_of(invocation_id)
    outcome = await client.scripts.cancel(k, invocation_id, client.retention_ms, who)
    if outcome == "unknown":
        raise UnknownInvocation(invocation_id)
    if outcome == "cancelling":
        await client.redis.publish(k.cancel_channel, invocation_id)
    if outcome != "terminal":
        try:  # the children now; the cancel itself is recorded, and the workers' sweeps relay it too
            await relay_tree(client, k)
        except TRANSIENT as e:
            log.warning(
                "cancel of %s recorded; relaying it to its children failed (%s): the workers will",
                invocation_id,
                e,
            )
    return outcome


async def resolve(client: Client, invocation_id: str, name: str, value: Any = None) -> Woken:
    """Resolve the promise ``name`` of an invocation (``await ctx.promise(name)``) with a JSON
    value; it may be resolved before the handler reaches the await. Returns 'resumed'
    (it was suspended on it) or 'stored'. Raises ``PromiseAlreadySettled`` (resolved or
    rejected before: the first value stands; also after the invocation finished, so a retried
    resolve learns that its first attempt landed), ``UnknownInvocation``, or
    ``InvocationFailed`` when the invocation finished without a value for this promise."""
    return await _settle_promise(client, invocation_id, name, b"V" + codec.encode(value))


async def reject(client: Client, invocation_id: str, name: str, message: str) -> Woken:
    """Reject the promise ``name``: its await raises ``PromiseRejected(message)``. Same
    answers and errors as ``resolve``; ``ValueError`` (nothing written) for a message that is
    not a string of 1-4096 characters."""
    if not isinstance(message, str) or not 0 < len(message) <= MAX_REJECT_MESSAGE:
        raise ValueError(f"a rejection message of 1-{MAX_REJECT_MESSAGE} characters")
    return await _settle_promise(client, invocation_id, name, b"R" + codec.encode(message))


async def _settle_promise(client: Client, invocation_id: str, name: str, value: bytes) -> Woken:
    check_name("promise", name)
    k = client.keys_of(invocation_id)
    status = await client.scripts.wake(k, invocation_id, f"p:{name}", value, "client")
    if status == "unknown":
        raise UnknownInvocation(invocation_id)
    if status == "duplicate":
        raise PromiseAlreadySettled(f"promise {name!r} of {invocation_id} was settled before")
    if status == "terminal":
        state = await client.state(invocation_id) or "finished"
        late = f"promise {name!r} not settled: the invocation has finished"
        raise InvocationFailed(invocation_id, state, {"message": late})
    return status


async def redrive(client: Client, invocation_id: str) -> Redriven:
    """Put a parked (failed) invocation back as a new attempt series: 'redriven' | 'not_failed'."""
    outcome = await client.scripts.redrive(client.keys_of(invocation_id), invocation_id)
    if outcome == "unknown":
        raise UnknownInvocation(invocation_id)
    return outcome


async def parked(client: Client, service: str, limit: int = 100) -> list[str]:
    """Ids in the service's parked sets (every partition), newest first."""
    n = max(0, min(limit, 1000))
    found: list[tuple[float, str]] = []
    for k in await client.partition_keys(service):
        found += [
            (s, codec.text(i)) for i, s in await client.redis.zrevrange(k.parked, 0, n - 1, withscores=True)
        ]
    return [i for _, i in sorted(found, reverse=True)[:n]]
