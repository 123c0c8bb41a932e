"""GET /openapi.json and /docs: the routes FastAPI knows, the two hot ingress routes (plain
Starlette routes, written here), and one concrete path per registered handler
(``/send/orders/place``, ``/call/orders/place``) carrying that handler's input JSON schema.

Both are open (``gateway.app.OPEN_PATHS``), so that Swagger UI loads when tokens are set: it
declares the ``bearer`` security scheme (Swagger's Authorize button), and without a valid token
the document has the generic routes only, no per-handler paths (those name the services)."""

from __future__ import annotations

import copy
from typing import Any

import msgspec
from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.responses import HTMLResponse, Response

from . import tokens
from .problems import documented
from .state import state_of

router = APIRouter()
PATHS = ("/docs", "/openapi.json")
_SCHEMES = {"bearer": {"type": "http", "scheme": "bearer", "description": "a RELIQ_API_TOKENS token"}}
_PROBLEM = {
    "description": "problem+json",
    "content": {"application/problem+json": {"schema": {"type": "object"}}},
}


def _components(schema: dict[str, Any], into: dict[str, Any], qualifier: str) -> dict[str, Any]:
    """Move msgspec's ``$defs`` into OpenAPI components and point the refs there. Types of two
    handlers that share a name but not a schema (``Order`` of two services) must not overwrite
    each other: when a name is taken by another schema, this handler's types are all named
    ``<qualifier>.<Name>`` (``service.handler``)."""
    text = msgspec.json.encode(schema).decode()
    for prefix in ("", qualifier + "."):
        moved: dict[str, Any] = msgspec.json.decode(
            text.replace('"#/$defs/', f'"#/components/schemas/{prefix}')
        )
        defs = {prefix + name: d for name, d in moved.pop("$defs", {}).items()}
        if all(into.get(name, d) == d for name, d in defs.items()):
            break
    into.update(defs)
    return moved


_CODES = {
    "send": (202, 400, 401, 404, 408, 413, 415, 422, 429, 503),
    "call": (200, 202, 400, 401, 404, 408, 409, 413, 415, 422, 429, 500, 503),
}
_SUMMARY = {
    "send": "Place an invocation (fire and forget)",
    "call": "Place an invocation and wait for its result",
}


def _param(
    name: str, where: str, schema: dict[str, Any], required: bool = False, about: str = ""
) -> dict[str, Any]:
    doc = {"name": name, "in": where, "required": required, "schema": schema}
    return {**doc, "description": about} if about else doc


_TEXT = {"type": "string"}
# the headers of /send and /call besides Idempotency-Key (docs/http-api.md)
_HEADERS = [
    _param(
        "Reply-To",
        "header",
        {**_TEXT, "examples": ["billing/on_charged"]},
        about="service/handler sent this invocation's outcome (a reliq.Reply) once it finishes; "
        "not with Callback-URL",
    ),
    _param(
        "Callback-URL",
        "header",
        {**_TEXT, "format": "uri", "examples": ["https://hooks.example.com/reliq"]},
        about="POST the outcome there, signed (Reliq-Signature: t=...,v1=HMAC-SHA256), retried with "
        "backoff; the host must be on RELIQ_CALLBACK_HOSTS (422 otherwise); not with Reply-To",
    ),
    _param(
        "Debounce",
        "header",
        {**_TEXT, "examples": ["2s", "500ms", "PT5S"]},
        about="debounce window (with Debounce-Key): sends with one key within it run once; "
        "not with Idempotency-Key, delay or at",
    ),
    _param("Debounce-Key", "header", _TEXT, about="the key sends collapse by (with Debounce)"),
    _param(
        "Debounce-Mode",
        "header",
        {**_TEXT, "examples": ["debounce", "throttle"]},
        about="debounce (default: run once after the window with the latest payload) or throttle "
        "(run once with the first)",
    ),
    _param(
        "Priority",
        "header",
        {"type": "string", "enum": ["high", "normal", "low"]},
        about="which stream it waits in: of every ten starts under contention 6 high, 3 normal, 1 low; "
        "absent: the handler's default",
    ),
]


def _operation(verb: str, schema: dict[str, Any], *, service: str = "", handler: str = "") -> dict[str, Any]:
    """One POST operation; without a service/handler it is the generic templated path."""
    params = [
        _param("Idempotency-Key", "header", {"type": "string", "maxLength": 255}),
        _param("delay", "query", {"type": "string", "examples": ["30s", "PT30S"]}),
        _param("at", "query", {"type": "string", "format": "date-time"}),
        *_HEADERS,
    ]
    if verb == "call":
        params.append(_param("Prefer", "header", {"type": "string", "examples": ["wait=10"]}))
    if not service:
        params[:0] = [
            _param("service", "path", {"type": "string"}, required=True),
            _param("handler", "path", {"type": "string"}, required=True),
        ]
    return {
        "summary": f"{verb} {service}.{handler}" if service else _SUMMARY[verb],
        "operationId": f"{verb}_{service}_{handler}" if service else verb,
        "tags": [service] if service else ["invocations"],
        "parameters": params,
        "requestBody": {"required": False, "content": {"application/json": {"schema": schema}}},
        "responses": {str(code): doc for code, doc in documented(*_CODES[verb]).items()},
    }


@router.get("/openapi.json", include_in_schema=False)
async def openapi(request: Request) -> Response:
    doc = copy.deepcopy(request.app.openapi())
    components = doc.setdefault("components", {}).setdefault("schemas", {})
    doc["components"]["securitySchemes"] = _SCHEMES
    for verb in ("send", "call"):
        doc["paths"][f"/{verb}/{{service}}/{{handler}}"] = {"post": _operation(verb, {})}
    settings = state_of(request).settings
    if settings.tokens:
        doc["security"] = [{"bearer": []}]
        for path in ("/healthz", "/readyz"):
            doc["paths"][path]["get"]["security"] = []  # open to probes
        given = request.headers.get("authorization", "")
        if given[:7].lower() != "bearer " or not tokens.match(
            tokens.parse_tokens(settings.tokens), given[7:].strip().encode("latin-1")
        ):
            return Response(msgspec.json.encode(doc), media_type="application/json")
    for service, handlers in (await state_of(request).catalog.services()).items():
        for name, info in handlers.items():
            schema = (
                _components(info.input_schema, components, f"{service}.{name}") if info.input_schema else {}
            )
            for verb in ("send", "call"):
                doc["paths"][f"/{verb}/{service}/{name}"] = {
                    "post": _operation(verb, schema, service=service, handler=name)
                }
    return Response(msgspec.json.encode(doc), media_type="application/json")


@router.get("/docs", include_in_schema=False)
async def docs() -> HTMLResponse:
    """Swagger UI; its script and stylesheet load from FastAPI's default CDN (jsDelivr)."""
    return get_swagger_ui_html(openapi_url="/openapi.json", title="reliq gateway")
