"""The one producer path: every invocation, from ``Client.send`` and from the gateway, is built by
``prepare`` and written by ``register_many``.

``prepare`` turns a request into a ``Registration``: the id (fresh, or derived from the
idempotency key under the service's current partition layout; in the partition of its flow key
when the handler has one, ``client/routing.py``), the fingerprint of handler and
payload that decides "same request" for that key, and the delay or due time. It reads nothing
from Redis unless the layout cache is stale, a key's partition moved recently, or a
multi-partition service's flow spec of the handler is not cached.

``register_many`` places a batch of one partition's registrations with one script call. With
``replicas=N`` it queues ``WAIT N`` behind the script on the same connection of the node that
owns the partition, so the answer covers exactly these writes; fewer acks than asked for, or a
slot that moved under the batch, raise ``NotConfirmed`` (the writes may exist: re-sending the same
registrations converges on them).
"""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal, TypedDict, cast

from redis.exceptions import AskError, RedisClusterException, RedisError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from reliq import codec
from reliq.client import callbacks, replyto, routing
from reliq.errors import Backpressure, IdempotencyConflict, NotConfirmed
from reliq.store import flow
from reliq.store.batch import Items
from reliq.store.flow import BAD_KEY
from reliq.store.intake import per_partition
from reliq.store.keys import locate
from reliq.store.priority import Priority, check_priority
from reliq.store.record import Accepted
from reliq.store.scripts import Registered, Registration, pairs

if TYPE_CHECKING:
    from reliq.client import Client

Where = tuple[str, int]  # (service, partition): one registration batch, one script call, one slot
MAX_DELAY = 366 * 24 * 3600.0  # seconds: the furthest ahead ``delay`` or ``at`` may schedule
MAX_BATCH = 500  # registrations per script call (the gateway's group commit, Client.send_many)


class SendArgs(TypedDict, total=False):
    """The options of ``Client.send`` (``Options`` without the ones ``ctx.send`` sets)."""

    key: str | None  # idempotency key: same key and payload -> same invocation
    delay: float | timedelta | None  # seconds (or a timedelta) from now
    at: datetime | None  # due time (aware)
    reply_to: tuple[str, str] | str | None  # ("service", "handler") that gets the outcome
    callback_url: str | None  # POST the outcome there (client/callbacks.py); not with reply_to
    debounce: float | timedelta | None  # seconds: collapse sends with one debounce_key (client/debounce.py)
    debounce_key: str | None  # the key sends collapse by (per handler); not an idempotency key
    mode: Literal["debounce", "throttle"]  # run the latest payload (default) or the first
    priority: Priority | None  # "high" | "normal" | "low"; None: the handler's default (normal)


class Options(TypedDict, total=False):
    """How to place one invocation, besides service, handler and payload (``Client.send_json``)."""

    key: str | None  # idempotency key: same key and payload -> same invocation
    delay: float | timedelta | None  # seconds (or a timedelta) from now
    at: datetime | None  # due time (aware)
    invocation_id: str | None  # a derived id (``ctx.send``'s children); default: from key, or fresh
    parent: str | None  # the parent invocation's id
    trace: str | None  # W3C traceparent
    reply_to: tuple[str, str] | str | None  # ("service", "handler") that gets the outcome
    flow_key: str | None  # a callable concurrency_key's value, computed where the code is
    priority: Priority | None  # "high" | "normal" | "low"; None: the handler's default (normal)


class SendOptions(Options, total=False):
    """``Options``, a callback URL and debounce (``Client.send_json``; ``reliq.client.debounce``)."""

    callback_url: str | None  # POST the outcome there (client/callbacks.py); not with reply_to
    debounce: float | timedelta | None  # seconds: collapse sends with one debounce_key (client/debounce.py)
    debounce_key: str | None  # the key sends collapse by (per handler); not an idempotency key
    mode: Literal["debounce", "throttle"]  # run the latest payload (default) or the first


def with_callback(options: SendOptions) -> SendOptions:
    """``options`` with ``callback_url`` turned into its reply target (the host checked against
    ``RELIQ_CALLBACK_HOSTS``: ``InvalidCallbackURL`` / ``CallbackHostRefused``)."""
    out = dict(options)
    url = out.pop("callback_url", None)
    if url is None:
        return cast(SendOptions, out)
    if out.get("reply_to") is not None:
        raise ValueError("callback_url and reply_to exclude each other")
    out["reply_to"] = callbacks.reply_target(cast(str, url))
    return cast(SendOptions, out)


def seconds(delay: float | timedelta | None) -> float | None:
    if delay is None:
        return None
    s = delay.total_seconds() if isinstance(delay, timedelta) else float(delay)
    if s < 0 or s != s:
        raise ValueError("delay must be a non-negative number of seconds")
    if s > MAX_DELAY:
        raise ValueError("delay longer than 366 days")
    return s


def due_ms(at: datetime | None, now: float) -> int | None:
    """``at`` as unix milliseconds: aware, representable, and at most ``MAX_DELAY`` after ``now``
    (unix seconds); a time in the past means "now" (one before 1970 is stored as 0)."""
    if at is None:
        return None
    if not isinstance(at, datetime):
        raise TypeError(f"at must be an aware datetime, not {type(at).__name__}")
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("at must be an aware datetime (with a time zone)")
    try:
        ts = at.astimezone(UTC).timestamp()  # an offset that pushes it past year 1 or 9999 overflows
    except (OverflowError, ValueError):
        raise ValueError("at is outside the representable range of dates") from None
    if ts - now > MAX_DELAY:
        raise ValueError("at is more than 366 days ahead")
    return max(0, int(ts * 1000))


async def prepare(
    client: Client,
    service: str,
    handler: str,
    body: bytes,
    *,
    key: str | None = None,
    delay: float | timedelta | None = None,
    at: datetime | None = None,
    invocation_id: str | None = None,
    parent: str | None = None,
    trace: str | None = None,
    reply_to: tuple[str, str] | str | None = None,
    flow_key: str | None = None,
    priority: str | None = None,
) -> Registration:
    """The registration of one invocation. Names and ``key`` must be valid already: the callers
    check them where they parse their input (``Client.send_json``, the gateway's ingress), so the
    gateway's hot path does not check them twice."""
    if invocation_id is not None:
        if locate(invocation_id)[0] != service:
            raise ValueError(f"invocation id {invocation_id!r} does not belong to service {service!r}")
    elif key is None and (plain := routing.plain_id(client, service)) is not None:
        invocation_id = plain  # the usual case: nothing to route, nothing to await
    else:
        try:  # on a multi-partition service a flow key decides the partition (client/routing.py)
            by = await routing.anchor(client, service, handler, body, flow_key)
        except flow.BadKey:
            raise flow.BadKey(f"{service}.{handler}: {flow.BAD_KEY}") from None
        invocation_id = await client.id_for(service, key, by)
    d = seconds(delay)
    return Registration(
        id=invocation_id,
        fp=codec.fingerprint(handler, body),
        handler=handler,
        payload=body,
        parent=parent or "",
        key=key or "",
        delay_ms=None if d is None else int(d * 1000),
        due_ms=None if at is None else due_ms(at, time.time()),
        trace=trace or "",
        reply="" if reply_to is None else replyto.target(reply_to),
        flow_key=flow_key or "",
        prio="" if priority is None else check_priority(priority),
    )


def where(client: Client, invocation_id: str) -> Where:
    """(service, partition) of an invocation: registrations are batched by it."""
    return locate(invocation_id)[:2]


async def register_many(
    client: Client,
    where: Where,
    items: Items,
    *,
    replicas: int = 0,
    wait_ms: int = 1000,
    max_queued: int | None = None,
) -> list[Registered]:
    """Place ``items`` (all of partition ``where``) in one script call; (status, state) each.
    ``max_queued``: the service's limit when it set none itself (the gateway's default; status
    ``backpressure`` past it), shared evenly by its partitions."""
    k = client.keys(*where)
    if max_queued is not None:
        max_queued = per_partition(max_queued, (await client.layout(where[0])).partitions)
    if replicas == 0:
        return await client.scripts.register_many(k, items, max_queued=max_queued)
    node = await client.topology.node_for(k.stream)
    try:
        async with node.pipeline(transaction=False) as pipe:
            await client.scripts.register_many(k, items, pipe=pipe, max_queued=max_queued)
            pipe.execute_command("WAIT", replicas, wait_ms)
            reply, acked = await pipe.execute()
    except (ResponseError, RedisConnectionError, RedisTimeoutError) as e:
        # MOVED/ASK (redis-py raises MovedError/AskError, whose text has no "MOVED" prefix)
        # or a dead node: the slot map changed (failover, resharding). This pipeline goes to a
        # plain per-node client, so nothing else refreshes the map for this partition.
        moved = isinstance(e, AskError) or str(e).startswith(("MOVED", "ASK"))
        if moved or not isinstance(e, ResponseError):
            with contextlib.suppress(RedisError, RedisClusterException):
                await client.topology.refresh()
        if moved:
            raise NotConfirmed("the cluster's slot map changed") from e
        raise
    if int(acked) < replicas:
        raise NotConfirmed(f"only {int(acked)} of {replicas} replicas confirmed the write")
    return pairs(reply)


def accepted(service: str, handler: str, invocation_id: str, reg: Registered) -> Accepted:
    """What ``Client.send`` answers for one registration's (status, state); a refused one raises."""
    status, state = reg
    if status == "conflict":
        raise IdempotencyConflict(invocation_id)
    if status == "bad_key":
        raise ValueError(f"{service}.{handler}: {BAD_KEY}")
    if status == "backpressure" or not state:
        raise Backpressure(service)
    return Accepted(id=invocation_id, status=status, state=state)
