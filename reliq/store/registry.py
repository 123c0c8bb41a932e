"""What workers publish about themselves, as it is stored: one registry entry per handler and one
heartbeat per consumer.

==================================  ======  ==================================================
key (``reliq.store.keys``)          type    content
==================================  ======  ==================================================
``reliq:services``                  set     service names a worker ever registered
``reliq:{S}:registry``              hash    handler name -> JSON ``HandlerEntry``
``reliq:{S}:schemas``               hash    schema version -> input JSON schema (every version)
``reliq:{S}:settings``              hash    ``retention_ms``: the retention of the last worker started
``reliq:{S}:consumer:<name>``       string  JSON ``Heartbeat``; TTL 3 beats: no key = dead
==================================  ======  ==================================================

Workers encode these documents, and producers (``Client.handlers``, ``Client.heartbeats``) and
the gateway decode them. Workers and gateways of different releases share one Redis during a
rolling upgrade, so the field names never change; a new field gets a default (an older writer
leaves it out), and readers ignore fields they do not know (a newer writer may add them).

A handler's **schema version** is a digest of its input schema (``schema_version``). The registry
entry holds the schema of the worker that started last; each worker's heartbeat names the version
of every handler it runs, so a reader can tell which versions live workers run during a rolling
deploy and fetch their schemas from ``reliq:{S}:schemas``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import msgspec

from reliq.store.commands import RedisClient
from reliq.store.keys import SERVICES, ServiceKeys


class HandlerEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One handler as its workers declare it: its input JSON schema and its limits."""

    service: str = ""
    handler: str = ""
    input_schema: dict[str, Any] = {}
    sync: bool = False
    takes_input: bool = True
    max_attempts: int | None = None
    timeout: float | None = None
    max_deliveries: int | None = None
    schema_version: str = ""  # ``schema_version(input_schema)``; "" from older writers
    # the handler's ``FlowSpec`` (store/flow.py); left out of the JSON when it has no limits
    flow: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET


def schema_version(schema: dict[str, Any]) -> str:
    """A short digest of a JSON schema, the same for the same schema whatever its key order."""
    canonical = msgspec.json.encode(schema, order="sorted")
    return hashlib.sha256(canonical).hexdigest()[:12]


def version_of(entry: HandlerEntry) -> str:
    """The entry's schema version (computed for an entry from an older writer)."""
    return entry.schema_version or schema_version(entry.input_schema)


class Heartbeat(msgspec.Struct, frozen=True, kw_only=True):
    """One consumer's latest beat. Times are unix ms of the worker's clock.

    The fields are optional for readers: a document without them (an older or a foreign writer)
    shows as unknown (``None``) instead of failing the view that reads it."""

    consumer: str = ""
    host: str | None = None
    pid: int | None = None
    started: int | None = None
    inflight: int | None = None
    concurrency: int | None = None
    processed: int | None = None
    at: int | None = None
    schemas: dict[str, str] = {}  # handler -> schema version this consumer runs


encode = msgspec.json.Encoder().encode
RETENTION = "retention_ms"  # field of ``reliq:{S}:settings``


async def read_retention(redis: RedisClient, k: ServiceKeys) -> int | None:
    """The retention (ms) the service's workers published, or None (none started yet)."""
    raw = await redis.hget(k.settings, RETENTION)
    return int(raw) if raw is not None and raw.isdigit() and int(raw) > 0 else None


decode_entry = msgspec.json.Decoder(HandlerEntry).decode
decode_heartbeat = msgspec.json.Decoder(Heartbeat).decode
decode_schema = msgspec.json.Decoder(dict[str, Any]).decode


async def read_services(redis: RedisClient) -> set[str]:
    return {name.decode() for name in await redis.smembers(SERVICES)}


async def read_handlers(redis: RedisClient, k: ServiceKeys) -> dict[str, HandlerEntry]:
    return {name.decode(): decode_entry(doc) for name, doc in (await redis.hgetall(k.registry)).items()}


async def read_heartbeats(
    redis: RedisClient, k: ServiceKeys, consumers: Sequence[str]
) -> dict[str, Heartbeat | None]:
    """The latest beat of each consumer; None for a dead one (its key expired)."""
    if not consumers:
        return {}
    beats = await redis.mget([k.consumer(c) for c in consumers])
    return {c: None if b is None else decode_heartbeat(b) for c, b in zip(consumers, beats, strict=True)}


async def read_schemas(
    redis: RedisClient, k: ServiceKeys, versions: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """The published schemas of ``versions`` (a version nobody published is left out)."""
    if not versions:
        return {}
    docs = await redis.hmget(k.schemas, list(versions))
    return {v: decode_schema(d) for v, d in zip(versions, docs, strict=True) if d is not None}
