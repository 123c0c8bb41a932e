"""Small helpers for the Cluster load tests (chaos_failover, bench_cluster): which primary owns a
partition, a service name whose partitions land on distinct primaries, a node's role and link."""

from __future__ import annotations

import asyncio
import subprocess
import time
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.cluster import key_slot

from reliq.devserver.allocator import server_env
from reliq.devserver.embedded import EmbeddedValkey, _die_with_parent, server_args
from reliq.store.keys import ServiceKeys


def slot_of(service: str, partition: int) -> int:
    return int(key_slot(ServiceKeys(service, partition).stream.encode()))


def slot_owners(port: int) -> list[tuple[int, int, int]]:
    """(first slot, last slot, primary port) as one node sees them (``CLUSTER SLOTS``)."""
    with redis.Redis(port=port, socket_timeout=2, decode_responses=True) as r:
        raw = r.execute_command("CLUSTER SLOTS")
    return _parse_slots(raw)


def _parse_slots(raw: Any) -> list[tuple[int, int, int]]:
    out = []
    if isinstance(raw, dict):  # redis-py parses CLUSTER SLOTS into {(a, b): {"primary": (h, p)}}
        for (a, b), v in raw.items():
            out.append((int(a), int(b), int(v["primary"][1])))
        return out
    for row in raw:
        out.append((int(row[0]), int(row[1]), int(row[2][1])))
    return out


def owner(slots: list[tuple[int, int, int]], slot: int) -> int | None:
    for a, b, port in slots:
        if a <= slot <= b:
            return port
    return None


def spread_service(prefix: str, partitions: int, seed_port: int, limit: int = 10_000) -> str:
    """The first ``<prefix><n>`` whose partitions 0..P-1 are owned by P distinct primaries (when
    there are at least P primaries). Hash tags do not promise that: ``bench`` with 3 partitions
    on 3 primaries puts two of them on one node."""
    slots = slot_owners(seed_port)
    primaries = len({p for _, _, p in slots})
    want = min(partitions, primaries)
    for n in range(limit):
        name = f"{prefix}{n}"
        if len({owner(slots, slot_of(name, p)) for p in range(partitions)}) == want:
            return name
    raise RuntimeError(f"no {prefix}<n> spreads {partitions} partitions over {primaries} primaries")


async def acall(port: int, *args: Any, timeout: float = 0.5) -> Any:
    """One command to one node, with a short timeout; raises on a dead node."""
    r = aioredis.Redis(
        port=port, socket_timeout=timeout, socket_connect_timeout=timeout, decode_responses=True
    )
    try:
        return await r.execute_command(*args)
    finally:
        await r.aclose()


async def aowner(port: int, slot: int) -> int | None:
    """The slot's primary as ``port`` sees it, or None when that node is down or not ok."""
    try:
        info = await acall(port, "CLUSTER", "INFO")
        text = info if isinstance(info, str) else str(info)
        if "cluster_state:ok" not in text:
            return None
        return owner(_parse_slots(await acall(port, "CLUSTER", "SLOTS")), slot)
    except (redis.RedisError, OSError):
        return None


async def replication(port: int) -> dict[str, Any]:
    """``INFO replication`` as parsed by redis-py (``slave0`` is a dict); {} when the node does
    not answer."""
    try:
        raw = await acall(port, "INFO", "replication")
    except (redis.RedisError, OSError):
        return {}
    return dict(raw) if isinstance(raw, dict) else {}


def spawn(node: EmbeddedValkey) -> None:
    """(Re)start a node's process without waiting (``EmbeddedValkey.start`` blocks until ready,
    which would stall an event loop). Same port, data dir and extra arguments (its nodes.conf)."""
    log = open(node.log_file, "ab")  # noqa: SIM115 - handed to the child process
    try:
        node.proc = subprocess.Popen(
            server_args(node.port, node.data_dir, appendfsync=node.appendfsync, extra=node.extra),
            env=server_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,  # must be the loop's (main) thread: the signal follows it
        )
    finally:
        log.close()


async def until(what: str, timeout: float, probe: Any, pause: float = 0.02) -> float:
    """Poll an async predicate; seconds it took. Raises TimeoutError."""
    t0 = time.monotonic()
    while not await probe():
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(pause)
    return time.monotonic() - t0
