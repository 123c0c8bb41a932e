"""Step 3 of the service overview: add up the partitions (``reliq.admin.overview`` reads each one).

Counts are sums; ``lag`` is unknown (``None``) when a partition with entries cannot tell its
lag; ``oldest_pending`` is the oldest entry of any partition; ``minutes`` are summed minute by
minute. Consumers are merged by name: a worker reads every partition it consumes under one
consumer name, and its heartbeat is service-wide, so one dead worker can hold entries in several
partitions (``Consumer.partitions`` lists where).
"""

from __future__ import annotations

from typing import Any

from reliq.admin.documents import (
    Consumer,
    Minute,
    OldestPending,
    PartitionConsumer,
    PartitionOverview,
    ServiceOverview,
)
from reliq.store.keys import OUTCOMES
from reliq.store.layout import Layout
from reliq.store.registry import Heartbeat

MAX_CONSUMERS = 100


def lag(parts: list[PartitionOverview]) -> int | None:
    known = [p for p in parts if p.lag is not None]
    if not known or any(p.lag is None and p.stream_length for p in parts):
        return None
    return sum(p.lag or 0 for p in known)


def oldest(parts: list[PartitionOverview]) -> OldestPending | None:
    found = [p.oldest_pending for p in parts if p.oldest_pending is not None]
    return max(found, key=lambda o: (o.age_ms, -o.partition), default=None)


def minutes(parts: list[PartitionOverview]) -> list[Minute]:
    if not parts:
        return []
    return [
        Minute(minute=ms[0].minute, **{o: sum(getattr(m, o) for m in ms) for o in OUTCOMES})
        for ms in zip(*(p.minutes for p in parts), strict=True)
    ]


def consumer_totals(infos: list[list[dict[str, Any]]]) -> list[tuple[str, int, int | None]]:
    """(name, pending over all partitions, smallest idle) per consumer name, those holding the
    most first, then the most recently active (the overview shows ``MAX_CONSUMERS`` of them)."""
    total: dict[str, list[Any]] = {}
    for part in infos:
        for c in part:
            t = total.setdefault(c["name"], [0, None])
            t[0] += c["pending"]
            if c["idle"] is not None:
                t[1] = c["idle"] if t[1] is None else min(t[1], c["idle"])
    ranked = sorted(total.items(), key=lambda kv: (-kv[1][0], kv[1][1] or 0, kv[0]))
    return [(n, t[0], t[1]) for n, t in ranked]


def partition_consumers(infos: list[dict[str, Any]], alive: dict[str, bool]) -> list[PartitionConsumer]:
    """The consumers of one partition that hold entries there (among those shown)."""
    held = sorted((c for c in infos if c["pending"] and c["name"] in alive), key=lambda c: -c["pending"])
    return [
        PartitionConsumer(name=c["name"], alive=alive[c["name"]], pending=c["pending"], idle_ms=c["idle"])
        for c in held
    ]


def consumer(name: str, pending: int, idle: int | None, hb: Heartbeat | None, parts: list[int]) -> Consumer:
    """One merged consumer; ``hb`` is its heartbeat, ``None`` when it is dead."""
    alive, hb = hb is not None, hb or Heartbeat()
    return Consumer(
        name=name,
        alive=alive,
        pending=pending,
        idle_ms=idle,
        inflight=hb.inflight,
        concurrency=hb.concurrency,
        host=hb.host,
        pid=hb.pid,
        processed=hb.processed,
        heartbeat_at=hb.at,
        partitions=parts,
    )


def service(
    name: str, layout: Layout, parts: list[PartitionOverview], consumers: list[Consumer], consumers_total: int
) -> ServiceOverview:
    return ServiceOverview(
        service=name,
        stream_length=sum(p.stream_length for p in parts),
        lag=lag(parts),
        pending=sum(p.pending for p in parts),
        oldest_pending=oldest(parts),
        delayed=sum(p.delayed for p in parts),
        parked=sum(p.parked for p in parts),
        archived=sum(p.archived for p in parts),
        lost=sum(p.lost for p in parts),
        suspended=sum(p.suspended for p in parts),
        queued=sum(p.queued for p in parts),
        consumers=consumers,
        consumers_total=consumers_total,
        minutes=minutes(parts),
        layout=layout,
        partitions=parts,
    )
