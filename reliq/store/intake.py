"""Intake: what ``register.lua`` checks before it places new work, kept in each partition's flow
hash (``ServiceKeys.flow``; ``lua/lib/backpressure.lua`` reads it):

- ``*``: the service's own limits, ``q=<n> of=<N>`` = at most n queued invocations in this
  partition, the share of ``Service(max_queued=N)`` (spread over the partitions, rounded up; the
  scripts read only ``q=``, ``of=`` is what a change of the partition count re-splits); written by
  its workers at start, removed when the code sets none.
- ``*!``: an operator's override (``Client.set_max_queued``, written and audited by
  ``set_intake.lua``): wins over ``*``; ``''`` lifts any limit; deleting it restores the code's
  value. Takes effect on the next registration.
- ``p:<handler>``: the handler's default priority (``high`` or ``low``; absent = normal), applied
  when a send gives none.

Before any worker of the service started, none of this exists and nothing is limited (the
gateway's ``RELIQ_MAX_QUEUED`` applies then, passed with each registration batch).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Literal

from reliq.store.commands import RedisClient
from reliq.store.keys import ServiceKeys

_TOTAL = re.compile(rb"of=(\d+)")
MAX_QUEUED = 2**53 - 1  # the largest limit: an integer the scripts (doubles) and JSON hold exactly


def check_max_queued(value: object, *, name: str = "max_queued") -> int:
    """``value`` as a service-wide ``max_queued``; ``ValueError`` unless an integer in
    0 .. ``MAX_QUEUED`` (the one rule of ``Service``, ``Client.set_max_queued``, the CLI, HTTP)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_QUEUED:
        raise ValueError(f"{name} must be an integer from 0 to {MAX_QUEUED}, not {value!r}")
    return value


def per_partition(max_queued: int, partitions: int) -> int:
    """A service-wide limit's share of one partition (rounded up: the sum is never below it)."""
    return -(-max_queued // max(1, partitions))


def spec(max_queued: int | None, partitions: int) -> str:
    """The flow hash value of a service-wide limit ('' = no limit)."""
    return "" if max_queued is None else f"q={per_partition(max_queued, partitions)} of={max_queued}"


def resplit(raw: bytes, partitions: int) -> bytes:
    """A limit field's value for ``partitions`` partitions: its ``of=`` total spread again; a value
    without one ('' no limit, or written before totals were kept) stays as it is."""
    m = _TOTAL.search(raw)
    return raw if m is None else spec(int(m.group(1)), partitions).encode()


async def spread(redis: RedisClient, parts: Sequence[ServiceKeys], partitions: int) -> None:
    """After a change of the partition count: copy partition 0's flow hash (the handlers' specs and
    overrides, default priorities, the intake limits) to every partition, the limits re-split over
    ``partitions``, so a new partition limits and prioritises as the others do. Called by
    ``Client.set_partitions`` and by every worker that sees the count change (idempotent). An
    operator's change written between this read and these writes may need to be made again."""
    fields = await redis.hgetall(parts[0].flow)
    if not fields:
        return
    for name in (b"*", b"*!"):
        if name in fields:
            fields[name] = resplit(fields[name], partitions)
    async with redis.pipeline(transaction=False) as p:
        for k in parts:
            p.hset(k.flow, mapping=fields)
        await p.execute()


async def publish(
    redis: RedisClient,
    parts: Sequence[ServiceKeys],
    max_queued: int | None,
    priorities: Mapping[str, str],
    partitions: int | None = None,
) -> None:
    """Write the code's intake specs to every partition: the limit (or its absence), spread over
    ``partitions`` (default: ``len(parts)``), and each handler's default priority (``priorities``:
    handler -> level, every handler of the service)."""
    count = partitions or len(parts)
    async with redis.pipeline(transaction=False) as p:
        for k in parts:
            if max_queued is None:
                p.hdel(k.flow, "*")
            else:
                p.hset(k.flow, "*", spec(max_queued, count))
            for handler, level in priorities.items():
                if level == "normal":
                    p.hdel(k.flow, "p:" + handler)
                else:
                    p.hset(k.flow, "p:" + handler, level)
        await p.execute()


def override_value(max_queued: int | Literal["none", "code"], partitions: int) -> str:
    """What ``set_intake.lua`` writes for an operator's limit: ``code`` (remove the override), ''
    (``"none"``: no limit, whatever the code says) or a number's per-partition share."""
    if max_queued in ("code", "none"):
        return "code" if max_queued == "code" else ""
    return spec(int(max_queued), partitions)
