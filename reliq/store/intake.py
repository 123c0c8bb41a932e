"""Intake: what ``register.lua`` checks before it places new work, kept in each partition's flow
hash (``ServiceKeys.flow``; ``lua/lib/backpressure.lua`` reads it):

- ``*``: the service's own limits, ``q=<n>`` = at most n queued invocations in this partition
  (``Service(max_queued=N)`` spread over the partitions, rounded up); written by its workers at
  start, removed when the code sets none.
- ``*!``: an operator's override (``Client.set_max_queued``, written and audited by
  ``set_intake.lua``): wins over ``*``; ``''`` lifts any limit; deleting it restores the code's
  value. Takes effect on the next registration.
- ``p:<handler>``: the handler's default priority (``high`` or ``low``; absent = normal), applied
  when a send gives none.

Before any worker of the service started, none of this exists and nothing is limited (the
gateway's ``RELIQ_MAX_QUEUED`` applies then, passed with each registration batch).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from reliq.store.commands import RedisClient
from reliq.store.keys import ServiceKeys


def per_partition(max_queued: int, partitions: int) -> int:
    """A service-wide limit's share of one partition (rounded up: the sum is never below it)."""
    return -(-max_queued // max(1, partitions))


def spec(max_queued: int | None, partitions: int) -> str:
    """The flow hash value of a limit ('' = no limit)."""
    return "" if max_queued is None else f"q={per_partition(max_queued, partitions)}"


async def publish(
    redis: RedisClient, parts: Sequence[ServiceKeys], max_queued: int | None, priorities: Mapping[str, str]
) -> None:
    """Write the code's intake specs to every partition: the limit (or its absence) and each
    handler's default priority (``priorities``: handler -> level, every handler of the service)."""
    async with redis.pipeline(transaction=False) as p:
        for k in parts:
            if max_queued is None:
                p.hdel(k.flow, "*")
            else:
                p.hset(k.flow, "*", spec(max_queued, len(parts)))
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
