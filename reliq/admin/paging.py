"""Step 1 of every admin view: which partitions to read, and how a page cursor positions itself
in an order merged over partitions. Plus the small reply decoders the views share.

A service's work may sit in any partition ``0..high-1`` of its layout (``reliq.store.layout``), so a
view reads all of them, or only the one an operator filters on (``partition=N``). The layout is
read fresh (one ``HGETALL``): an operator must not miss a partition another process just added.

Merged cursors. A list merged over several sources (one stream per partition, or per service and
partition for the audit log) is ordered by a key with the source as tie-break; a cursor names
the last item shown: ``<entry id>`` alone, or ``<entry id>@<source>`` when the next item has
the same entry id in a later source (ids are per stream, so two partitions can hold the same
id). A source after the cursor's source then starts at the id itself (inclusive), the others
just after it (exclusive). A plain id means "after this id in every source".
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from reliq.client import Client
from reliq.store.keys import ServiceKeys
from reliq.store.layout import Layout, parse_layout

MAX_LIMIT = 500
_ENTRY_ID = re.compile(r"^[0-9]{1,20}-[0-9]{1,20}$")


def clamp(limit: int) -> int:
    """Page sizes are clamped to 1..500."""
    return max(1, min(int(limit), MAX_LIMIT))


def _int(v: Any) -> int | None:
    return int(v) if v not in (None, b"", "") else None


def _ms(sec_usec: tuple[int, int]) -> int:
    return int(sec_usec[0]) * 1000 + int(sec_usec[1]) // 1000


class Scope(NamedTuple):
    layout: Layout
    keys: list[ServiceKeys]  # the partitions the view reads, in partition order


async def scope(client: Client, service: str, partition: int | None = None) -> Scope:
    """Every partition of ``service`` that may hold work, or only ``partition`` (which must be
    one of them: ``ValueError`` otherwise)."""
    lay = await client.layout(service, fresh=True)
    if partition is None:
        return Scope(lay, [client.keys(service, p) for p in range(lay.high)])
    if not 0 <= partition < lay.high:
        raise ValueError(f"no partition {partition}: {service} has partitions 0..{lay.high - 1}")
    return Scope(lay, [client.keys(service, partition)])


async def layouts(client: Client, services: list[str]) -> list[Layout]:
    """The layouts of several services, one pipelined read."""
    if not services:
        return []
    async with client.redis.pipeline(transaction=False) as p:
        for s in services:
            p.hgetall(client.keys(s).layout)
        return [parse_layout(raw) for raw in await p.execute()]


async def alive(client: Client, k: ServiceKeys, owners: set[str]) -> dict[str, bool]:
    """Which consumers have a heartbeat (service-wide keys: any partition's ``k`` will do)."""
    names = sorted(owners)
    if not names:
        return {}
    async with client.redis.pipeline(transaction=False) as p:
        for n in names:
            p.exists(k.consumer(n))
        return {n: bool(e) for n, e in zip(names, await p.execute(), strict=True)}


def entry_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq)


def parse_cursor(cursor: str | None) -> tuple[str, str | None] | None:
    """``(entry id, source or None)`` of a merged cursor; ``ValueError`` when malformed."""
    if not cursor:
        return None
    eid, at, source = cursor.partition("@")
    if not _ENTRY_ID.match(eid) or (at and not source):
        raise ValueError(f"malformed cursor {cursor!r}: use next_cursor of the previous page")
    return eid, source if at else None


def next_cursor(eid: str, source: str, following: str | None) -> str:
    """The cursor after an item (``eid`` in ``source``): the tie-break is only spelled out when
    the following item (already read) has the same entry id."""
    return f"{eid}@{source}" if following == eid else eid
