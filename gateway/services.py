"""GET /services: every registered service and its handlers with their input JSON schemas (from
the catalog: the App the gateway was given, or the registry workers publish)."""

from __future__ import annotations

import msgspec
from fastapi import APIRouter, Request
from starlette.responses import Response

from .problems import documented
from .state import state_of

router = APIRouter()


@router.get(
    "/services",
    summary="Registered services and handlers with their input JSON schemas",
    responses=documented(200, 401),
)
async def services(request: Request) -> Response:
    found = await state_of(request).catalog.services()
    doc = {s: {h: {"input_schema": i.input_schema} for h, i in hs.items()} for s, hs in found.items()}
    return Response(msgspec.json.encode({"services": doc}), media_type="application/json")
