"""GET /openapi.json and /docs: the generic routes plus one concrete path per registered handler
(``/send/orders/place``, ``/call/orders/place``) carrying that handler's input JSON schema."""

from __future__ import annotations

import copy
from typing import Any

import msgspec
from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.responses import HTMLResponse, Response

from .state import state_of

router = APIRouter()
_PROBLEM = {
    "description": "problem+json",
    "content": {"application/problem+json": {"schema": {"type": "object"}}},
}


def _components(schema: dict[str, Any], into: dict[str, Any]) -> dict[str, Any]:
    """Move msgspec's ``$defs`` into OpenAPI components and point the refs there."""
    text = msgspec.json.encode(schema).decode().replace('"#/$defs/', '"#/components/schemas/')
    moved: dict[str, Any] = msgspec.json.decode(text)
    into.update(moved.pop("$defs", {}))
    return moved


def _operation(service: str, handler: str, verb: str, schema: dict[str, Any]) -> dict[str, Any]:
    ok = (
        {"202": {"description": "placed durably: {id, status, durability}"}}
        if verb == "send"
        else {"200": {"description": "the handler's result"}, "202": {"description": "not finished in time"}}
    )
    return {
        "summary": f"{verb} {service}.{handler}",
        "operationId": f"{verb}_{service}_{handler}",
        "tags": [service],
        "parameters": [
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "maxLength": 255},
            }
        ],
        "requestBody": {"required": False, "content": {"application/json": {"schema": schema or {}}}},
        "responses": {**ok, "4XX": _PROBLEM, "5XX": _PROBLEM},
    }


@router.get("/openapi.json", include_in_schema=False)
async def openapi(request: Request) -> Response:
    doc = copy.deepcopy(request.app.openapi())
    components = doc.setdefault("components", {}).setdefault("schemas", {})
    for service, handlers in (await state_of(request).catalog.services()).items():
        for name, info in handlers.items():
            schema = _components(info.input_schema, components) if info.input_schema else {}
            for verb in ("send", "call"):
                doc["paths"][f"/{verb}/{service}/{name}"] = {"post": _operation(service, name, verb, schema)}
    return Response(msgspec.json.encode(doc), media_type="application/json")


@router.get("/docs", include_in_schema=False)
async def docs() -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/openapi.json", title="reliq gateway")
