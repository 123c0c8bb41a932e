"""Cancelling running handlers: on request (pub/sub, or the durable flag seen by renewal) or
because the lease is gone. A cancel never interrupts an outcome write (``InFlight.settling``)."""

from __future__ import annotations

import asyncio
import logging

from reliq.backoff import Backoff
from reliq.codec import text
from reliq.errors import TRANSIENT
from reliq.store.keys import ServiceKeys
from reliq.worker.inflight import InFlight, Runtime

log = logging.getLogger("reliq.worker.cancels")


def request_cancel(rt: Runtime, invocation_id: str, *, lease_lost: bool = False) -> None:
    """Cancel a running handler: because a cancel was asked for, or because the lease is gone."""
    f = rt.inflight.get(invocation_id)
    if f is None or f.task is None:
        return
    if f.compensating and not lease_lost:
        return  # this run is the cancel's answer: its compensation is bounded by cancel_grace
    if f.waits is not None and f.waits.cancel_seen and not lease_lost:
        # shown Cancelled already (link_child refused a child, a child ended cancelled): a late
        # notice of the same cancel must not cut the compensation short; bounded by cancel_grace
        if not f.cancel_requested:
            f.cancel_requested = True
            asyncio.get_running_loop().create_task(_insist(f, after=rt.config.cancel_grace))
        return
    if not f.started:
        # a task cancelled before its first step never runs, its bookkeeping included (the
        # invocation would stay 'running', its slot lost): execute honours the note instead
        f.lease_lost = f.lease_lost or lease_lost
        f.cancel_requested = f.cancel_requested or not lease_lost
        return
    if f.settling:
        return
    if f.cancel_requested and not lease_lost:
        return  # asked before (pub/sub and renewal both report it): _insist follows it up
    if lease_lost:
        f.lease_lost = True
    else:
        f.cancel_requested = True
        if f.waits is not None and f.waits.deliver_cancel():
            # it waits durably: Cancelled is raised at that await, and it may compensate
            asyncio.get_running_loop().create_task(_insist(f, after=rt.config.cancel_grace))
            return
    f.task.cancel()
    asyncio.get_running_loop().create_task(_insist(f, grace=rt.config.cancel_grace))


async def _insist(f: InFlight, after: float = 0.0, grace: float = 30.0) -> None:
    """Cancel again until the task ends: a cancellation that lands inside some redis-py awaits
    can be swallowed (redis/redis-py#2028, #2551), which would leave the handler running.
    ``after``: the compensation's grace, before the first cancel."""
    graced = False
    if after:
        await asyncio.sleep(after)
        graced = True
        if f.task is not None and not f.task.done() and not f.settling:
            f.task.cancel()
    pauses = Backoff(first=0.1, cap=2.0)
    while f.task is not None and not f.task.done():
        await pauses.sleep()
        if not graced and f.waits is not None and f.waits.cancel_seen:
            # a swallowed cancel: the handler went on and was shown Cancelled by then (a refused
            # child link); its compensation gets its grace, as any compensation
            await asyncio.sleep(grace)
            graced = True
        if f.task is not None and not f.task.done() and not f.settling:
            f.task.cancel()


async def cancel_for_exit(left: list[InFlight]) -> None:
    """Shutdown, past its grace: cancel the handlers still running and wait for them, 5 s at most
    (a cancellation swallowed inside a handler must not hang the exit). But a sync handler that
    holds a flow permit (``InFlight.joining``: its attempt is over, its thread runs on) is waited
    for until its thread returns, its lease renewed meanwhile: released earlier, its entry could
    start elsewhere beside it. The process could not exit before that thread returns anyway; a
    kill (the supervisor's, past its grace) ends the thread with it."""
    for f in left:
        if f.task is not None and not f.settling:
            f.task.cancel()
    rest = [f.task for f in left if f.task is not None]
    if not rest:
        return
    _, stuck = await asyncio.wait(rest, timeout=5.0)
    joining = [t for t in stuck if any(f.task is t and f.joining for f in left)]
    if joining:
        log.warning("waiting for %d sync handlers holding a flow permit to return", len(joining))
        await asyncio.wait(joining)
    if len(stuck) > len(joining):
        log.error("%d handlers ignored cancellation; exiting without them", len(stuck) - len(joining))


async def cancel_listener(rt: Runtime, services: list[ServiceKeys]) -> None:
    """Prompt cancellation through pub/sub (lossy; renewal re-checks the durable flag)."""
    channels = sorted({k.cancel_channel for k in services})
    pauses = Backoff(first=1.0, cap=5.0)
    while True:
        pubsub = rt.client.redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(*channels)
            pauses.reset()
            async for msg in pubsub.listen():
                data = msg.get("data")
                if isinstance(data, bytes):
                    request_cancel(rt, text(data))
        except TRANSIENT as e:
            log.warning("cancel listener: %s", e)
            await pauses.sleep()
        finally:
            await pubsub.aclose()
