"""Routing: the id, and so the partition, of a new invocation. Bound as ``Client`` methods.

An id is ``make_id(service, token, partition)``. The token is random, or derived from an
idempotency key (or a parent id + child key, or a reply's source), so a re-send maps to the same
id. The partition normally comes from the token. On a multi-partition service, a handler whose
flow spec names a key (``concurrency_key`` / ``rate_key``) has every invocation of one key value
placed in the partition of ``flow_token(service, handler, value)``, and one with a keyless rate
limit has all of its invocations in the partition of ``flow_token(service, handler)``: the scripts
enforce a limit within one partition's slot, so it then holds service-wide. The token still comes
from the idempotency key: a re-send of the same request (same key, same payload, so the same key
value) maps to the same id.

The spec is read from partition 0's ``reliq:{S}:flow`` (one HMGET of the code's value and the
override) and cached ``SPEC_TTL`` seconds per (service, handler): a limit added or lifted live
reaches the producers' routing within that time. With one partition (and no partition change
within the retention period) nothing is read: the layout, cached anyway, says there is nothing to
route.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from reliq.store import flow
from reliq.store.flow import flow_token
from reliq.store.keys import child_token, key_token, locate, make_id, new_ids, partition_of_token
from reliq.store.layout import Layout

if TYPE_CHECKING:
    from reliq.client import Client

SPEC_TTL = 2.0  # seconds a handler's flow spec is cached for routing


def _moving(client: Client, lay: Layout) -> bool:
    """Within one retention period after a change of the partition count (ids whose partition
    moved are looked up in their old one)."""
    return bool(lay.previous and lay.previous != lay.partitions) and (
        time.time() * 1000 - lay.changed_ms < client.retention_ms  # (skew: ~s of 24 h)
    )


async def spec(client: Client, service: str, handler: str) -> flow.FlowSpec | None:
    """The handler's flow spec as the scripts see it (partition 0's), cached ``SPEC_TTL`` s."""
    now = time.monotonic()
    hit = client.flow_specs.get((service, handler))
    if hit is None or now - hit[0] > SPEC_TTL:
        key = flow.flow_keys(client.keys(service))[0]
        code, override = await client.redis.hmget(key, [handler, handler + "!"])
        hit = client.flow_specs[(service, handler)] = (now, flow.merged(code, override))
    return hit[1]


async def anchor(
    client: Client, service: str, handler: str, body: bytes, flow_key: str | None = None
) -> str | None:
    """The token whose partition a new invocation of ``handler`` must take (see the module
    docstring), or None when its own token decides. ``flow.BadKey`` for a keyed handler whose
    key value is missing or invalid (nothing is written: register.lua would refuse it too)."""
    if not routed(client, await client.layout(service)):
        return None
    s = await spec(client, service, handler)
    if s is None:
        return None
    if s.key:
        return flow_token(service, handler, flow.payload_key(s, body, flow_key))
    return flow_token(service, handler) if s.rate > 0 and s.per > 0 else None


def routed(client: Client, lay: Layout) -> bool:
    """Whether new ids of ``lay`` need routing: several partitions, or a change of the partition
    count within the retention period."""
    return lay.partitions > 1 or _moving(client, lay)


def _routed(lay: Layout, service: str, token: str, anchor: str | None) -> str:
    """The id of a derived token under ``lay``, in the partition of ``anchor`` (else the token's)."""
    return make_id(service, token, partition_of_token(anchor or token, lay.partitions))


def _fresh(lay: Layout, service: str, anchor: str | None) -> str:
    """A fresh random id under ``lay``, in the partition of ``anchor`` when given."""
    return new_ids(service, 1, lay.partitions, anchor)[0][0]


def plain_id(client: Client, service: str) -> str | None:
    """A fresh random id without awaiting anything, when the cached layout says there is nothing to
    route (one partition, no partition change within the retention period); None otherwise (then
    ``anchor`` and ``id_for`` decide). The gateway's usual ``/send`` takes this path."""
    lay = client.cached_layout(service)
    if lay is None or routed(client, lay):
        return None
    return new_ids(service, 1)[0][0]


async def route(client: Client, service: str, token: str, anchor: str | None = None) -> str:
    """The id for a derived token (idempotency key or child key) under the current layout, in
    the partition of ``anchor`` when given (else of the token). Within one retention period
    after a partition change, a token whose partition moved is looked up in its old partition
    first, so a retry converges on what it placed before."""
    lay = await client.layout(service)
    if _moving(client, lay):
        old = partition_of_token(anchor or token, lay.previous)
        if old != partition_of_token(anchor or token, lay.partitions):
            old_id = make_id(service, token, old)
            if await client.redis.exists(client.keys(service, old).inv(old_id)):
                return old_id
    return _routed(lay, service, token, anchor)


async def id_for(client: Client, service: str, key: str | None, anchor: str | None = None) -> str:
    """A fresh id, or the id an idempotency key maps to (in ``anchor``'s partition when given)."""
    if key is not None:
        return await route(client, service, key_token(service, key), anchor)
    return _fresh(await client.layout(service), service, anchor)


async def ids_for(
    client: Client,
    service: str,
    handler: str,
    bodies: Sequence[bytes],
    keys: Sequence[str | None],
    flow_keys: Sequence[str | None] | None = None,
) -> tuple[list[str], list[int]]:
    """The ids of a batch of new invocations of one handler (``Client.send_many``), and their
    partitions: item i gets the id ``id_for(keys[i], anchor(...))`` gives it. The handler's flow
    spec is read (cached) even on one partition, so that every item's flow key is checked before
    anything is written: ``flow.BadKey`` names the first bad item. Fresh ids of a handler without
    a flow key are drawn at once, their partitions known without parsing them back."""
    lay = await client.layout(service)
    s = await spec(client, service, handler)
    spread = routed(client, lay)
    whole = spread and s is not None and not s.key and s.rate > 0 and s.per > 0
    by: str | None = flow_token(service, handler) if whole else None
    if (s is None or not s.key) and all(k is None for k in keys):
        return new_ids(service, len(bodies), lay.partitions, by)
    ids, parts = [], []
    for i, body in enumerate(bodies):
        if s is not None and s.key:
            try:
                value = flow.payload_key(s, body, flow_keys[i] if flow_keys else None)
            except flow.BadKey:
                raise flow.BadKey(f"{service}.{handler}, item {i}: {flow.BAD_KEY}") from None
            by = flow_token(service, handler, value) if spread else None
        key = keys[i]
        if key is None:
            new, part = new_ids(service, 1, lay.partitions, by)
            ids += new
            parts += part
            continue
        if _moving(client, lay):  # (rare) an old partition may hold it: look it up
            ids.append(await route(client, service, key_token(service, key), by))
            parts.append(locate(ids[-1])[1])
        else:
            token = key_token(service, key)
            parts.append(partition_of_token(by or token, lay.partitions))
            ids.append(make_id(service, token, parts[-1]))
    return ids, parts


async def child_id_for(
    client: Client, service: str, parent_id: str, child_key: str, *, handler: str = "", body: bytes = b""
) -> str:
    """The id of a child (derived from the parent id and the child key), routed by the child's
    flow key when ``handler`` (and its JSON ``body``) are given."""
    by = await anchor(client, service, handler, body) if handler else None
    return await route(client, service, child_token(service, parent_id, child_key), by)
