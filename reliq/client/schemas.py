"""Which input schema is in force for each handler of a service, from what workers publish.

The rule (docs/http-api.md, "Validation without the workers' code"): the versions in force are
those the *live* workers of the service run, as their heartbeats say. During a rolling deploy two
versions are live at once and a body valid under either is accepted (some live worker can run
it); the **current** one, which ``/services`` and the OpenAPI document show first, is the version
of the registry entry (the worker that started last) when a live worker runs it, otherwise the
version most live workers run. With no live worker (or only workers too old to say), the registry
entry alone is in force.

>>> found = await handler_schemas(client, "orders")
>>> found["place"].current, [v.version for v in found["place"].versions]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from redis.exceptions import ResponseError

from reliq import codec
from reliq.store.keys import GROUP
from reliq.store.registry import read_heartbeats, read_schemas, version_of

if TYPE_CHECKING:
    from reliq.client import Client


class SchemaVersion(msgspec.Struct, frozen=True, kw_only=True):
    """One input schema in force, and the live consumers running it (none: the registry's)."""

    version: str
    input_schema: dict[str, Any]
    consumers: tuple[str, ...] = ()


class HandlerSchemas(msgspec.Struct, frozen=True, kw_only=True):
    """Every schema in force for one handler, the current one first."""

    handler: str
    takes_input: bool = True
    versions: tuple[SchemaVersion, ...] = ()

    @property
    def current(self) -> SchemaVersion:
        return self.versions[0]


async def live_consumers(client: Client, service: str) -> list[str]:
    """Consumer names of the service's group, every partition (dead ones included)."""
    names: set[str] = set()
    for k in await client.partition_keys(service):
        try:
            infos = await client.redis.xinfo_consumers(k.stream, GROUP)
        except ResponseError:  # no stream or group yet: nobody consumes this partition
            continue
        names.update(codec.text(i["name"]) for i in infos)
    return sorted(names)


async def handler_schemas(client: Client, service: str) -> dict[str, HandlerSchemas]:
    """Handler name -> the schemas in force for it (see the module docstring for the rule)."""
    entries = await client.handlers(service)
    if not entries:
        return {}
    consumers = await live_consumers(client, service)
    beats = await read_heartbeats(client.redis, client.keys(service), consumers)
    running: dict[str, dict[str, list[str]]] = {}  # handler -> version -> consumers
    for name, beat in beats.items():
        for handler, version in (beat.schemas if beat is not None else {}).items():
            running.setdefault(handler, {}).setdefault(version, []).append(name)
    wanted = {v for by in running.values() for v in by}
    wanted -= {version_of(e) for e in entries.values()}
    published = await read_schemas(client.redis, client.keys(service), sorted(wanted))
    out: dict[str, HandlerSchemas] = {}
    for handler, entry in entries.items():
        own = version_of(entry)
        schemas = {own: entry.input_schema, **published}
        live = {v: c for v, c in running.get(handler, {}).items() if v in schemas}
        if not live:
            versions = [SchemaVersion(version=own, input_schema=entry.input_schema)]
        else:
            order = sorted(live, key=lambda v: (v != own, -len(live[v]), v))
            versions = [
                SchemaVersion(version=v, input_schema=schemas[v], consumers=tuple(live[v])) for v in order
            ]
        out[handler] = HandlerSchemas(
            handler=handler, takes_input=entry.takes_input, versions=tuple(versions)
        )
    return out
