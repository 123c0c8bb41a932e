"""GET /services: every registered service and its handlers with their input JSON schemas (from
the catalog: the App the gateway was given, or the registry workers publish). Without the App,
each handler also lists the schema versions in force (``versions``, current first, with the
live consumers running each): during a rolling deploy a body valid under any of them is
accepted (``reliq.client.schemas`` has the rule). With the App, ``schema_version`` is its code's."""

from __future__ import annotations

from typing import Any

import msgspec
from fastapi import APIRouter, Request
from starlette.responses import Response

from reliq.store.registry import schema_version

from .catalog import HandlerInfo
from .problems import documented
from .state import state_of

router = APIRouter()


def _handler(info: HandlerInfo) -> dict[str, Any]:
    doc: dict[str, Any] = {"input_schema": info.input_schema}
    if info.versions:
        doc["schema_version"] = info.versions[0].version
        doc["versions"] = [
            {"version": v.version, "consumers": list(v.consumers), "input_schema": v.input_schema}
            for v in info.versions
        ]
        doc["rule"] = "accept a body valid under any version in force" if len(info.versions) > 1 else "one"
    else:  # the App's code: the version its workers publish (the dashboard shows it either way)
        doc["schema_version"] = schema_version(info.input_schema)
    return doc


@router.get(
    "/services",
    summary="Registered services and handlers with their input JSON schemas",
    responses=documented(200, 401),
)
async def services(request: Request) -> Response:
    found = await state_of(request).catalog.services()
    doc = {s: {h: _handler(i) for h, i in hs.items()} for s, hs in found.items()}
    return Response(msgspec.json.encode({"services": doc}), media_type="application/json")
