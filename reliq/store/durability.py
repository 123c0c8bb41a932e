"""What an "ack" from this server is worth. Read on connect; never claim more than the server gives.

Levels: ``none`` (no AOF: a restart loses everything written since the last RDB snapshot, if
any), ``process`` (AOF on, fsync not always: a server process crash normally keeps acked writes
(under ``everysec`` a stalled disk can cost up to ~2 s), a power loss can lose ~1 s under
``everysec`` and ~30 s under ``no``), ``fsync``
(``appendfsync always``: the write is fsynced before the server replies).
Eviction (any ``maxmemory-policy`` but ``noeviction``) can silently delete queued work: reported
as unsafe.
"""

from __future__ import annotations

from typing import Literal

import msgspec
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from reliq.codec import text

Level = Literal["none", "process", "fsync"]


class Durability(msgspec.Struct, frozen=True, kw_only=True):
    level: Level
    appendonly: bool
    appendfsync: str | None
    maxmemory_policy: str | None
    eviction_safe: bool
    notes: list[str] = []
    nodes: dict[str, str] = {}  # on a Cluster: each primary's own level ("host:port" -> level)


async def inspect_server(redis: Redis) -> Durability:
    """Read ``appendonly``/``appendfsync``/``maxmemory-policy`` (CONFIG GET, or INFO when ACLs
    forbid CONFIG) and report the level honestly."""
    notes: list[str] = []
    fsync: str | None = None
    try:
        cfg: dict[str, str] = {}
        for name in ("appendonly", "appendfsync", "maxmemory-policy"):
            got = await redis.config_get(name)
            cfg.update({text(k): text(v) for k, v in got.items() if k is not None and v is not None})
        aof = cfg.get("appendonly") == "yes"
        fsync = cfg.get("appendfsync")
        policy: str | None = cfg.get("maxmemory-policy")
    except ResponseError:
        notes.append("CONFIG GET not permitted; read INFO instead (appendfsync unknown)")
        info = await redis.info("persistence")
        aof = str(info.get("aof_enabled", "0")) == "1"
        mem = await redis.info("memory")
        raw = mem.get("maxmemory_policy")
        policy = None if raw is None else text(raw)
    level: Level = "none"
    if aof:
        level = "fsync" if fsync == "always" else "process"
    if not aof:
        notes.append("appendonly is off: a server restart loses every queued invocation")
    elif fsync is not None and fsync != "always":
        window = "about the last second" if fsync == "everysec" else "up to ~30 s"
        notes.append(f"appendfsync is {fsync!r}, not 'always': a power loss can lose {window} of acks")
    safe = policy == "noeviction"
    if not safe:
        notes.append(f"maxmemory-policy is {policy!r}, not 'noeviction': Redis may evict queued work")
    return Durability(
        level=level,
        appendonly=aof,
        appendfsync=fsync,
        maxmemory_policy=policy,
        eviction_safe=safe,
        notes=notes,
    )
