"""A service's intake as operators see it (issue 14, backpressure): the ``max_queued`` in force
(an operator's override, the code's ``Service(max_queued=)``, or none) and what it counts, the
backlog per priority level plus the delayed set plus the concurrency keys' lines.

The limit lives in each partition's flow hash (``reliq.store.intake``: ``*!`` over ``*``, as
``q=<n>`` per partition); the first partition's is read (both are written to every partition).
``max_queued`` is the per-partition share times the partition count (a service-wide
``Service(max_queued=10)`` on 3 partitions shows 12: each partition accepts 4). With no limit
here, a gateway started with ``RELIQ_MAX_QUEUED`` still applies its own default.

Costs: one pipeline: one HMGET, and per partition three XLENs and two ZCARDs.

>>> (await intake(client, "orders")).backlog
{'high': 0, 'normal': 12, 'low': 3}
"""

from __future__ import annotations

import re
from typing import Literal

import msgspec

from reliq.admin.paging import Scope, scope
from reliq.client import Client
from reliq.codec import text
from reliq.store.flow import flow_keys
from reliq.store.keys import LEVELS

_LIMIT = re.compile(r"q=(\d+)")


class Intake(msgspec.Struct, frozen=True, kw_only=True):
    """``max_queued`` in force (service-wide; None: no limit) and where it comes from; ``code``
    the code's (what ``--max-queued code`` restores); ``queued`` what the limit counts: the
    ``backlog`` per level (stream entries, waiting or running) plus ``delayed`` plus ``waiting``
    (queued behind a concurrency key's holders, without a stream entry yet)."""

    max_queued: int | None
    per_partition: int | None
    source: Literal["override", "code", "none"]
    code: int | None
    partitions: int
    backlog: dict[str, int]
    delayed: int
    waiting: int
    queued: int


def _limit(raw: bytes | None) -> int | None:
    m = _LIMIT.match(text(raw)) if raw else None
    return int(m.group(1)) if m else None


async def read(client: Client, sc: Scope) -> Intake:
    """The intake of the partitions of ``sc`` (a view's scope: all, or one partition)."""
    async with client.redis.pipeline(transaction=False) as p:
        p.hmget(sc.keys[0].flow, ["*!", "*"])  # a scope holds at least one partition
        for k in sc.keys:
            for stream in k.streams:
                p.xlen(stream)
            p.zcard(k.delayed)
            p.zcard(flow_keys(k)[3])  # fl:wait, the keys' lines
        (over, own), *sizes = await p.execute()
    backlog = dict.fromkeys(LEVELS, 0)
    delayed = waiting = 0
    for n in range(len(sc.keys)):
        *lengths, d, w = sizes[5 * n : 5 * n + 5]
        delayed += int(d)
        waiting += int(w)
        for level, length in zip(LEVELS, lengths, strict=True):
            backlog[level] += int(length)
    source: Literal["override", "code", "none"] = (
        "override" if over is not None else "code" if own is not None else "none"
    )
    share = _limit(over if over is not None else own)
    parts = sc.layout.partitions
    code = _limit(own)
    return Intake(
        max_queued=None if share is None else share * parts,
        per_partition=share,
        source=source,
        code=None if code is None else code * parts,
        partitions=parts,
        backlog={level: backlog[level] for level in ("high", "normal", "low")},
        delayed=delayed,
        waiting=waiting,
        queued=sum(backlog.values()) + delayed + waiting,
    )


async def intake(client: Client, service: str, *, partition: int | None = None) -> Intake:
    """The intake of ``service`` (of one partition with ``partition``)."""
    return await read(client, await scope(client, service, partition))


class IntakeChange(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The body of ``POST /admin/services/{s}/intake``: the service-wide ``max_queued`` (an
    integer >= 0), ``"none"`` (no limit) or ``"code"`` (drop the override)."""

    max_queued: int | Literal["none", "code"]


async def set_max_queued(
    client: Client, service: str, limit: int | Literal["none", "code"], *, who: str
) -> Intake:
    """An operator's live override of the service's ``max_queued`` on every partition, audited
    under ``who`` (``ValueError`` for a bad value, nothing written); returns the intake now."""
    await client.set_max_queued(service, limit, who=who)
    return await intake(client, service)
