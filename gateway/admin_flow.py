"""The admin API of flow control (issue 14), under ``/admin/services/{service}``: the limits in
force with the busiest keys and the rate buckets (``GET .../limits``), the waiting invocations
with why each waits (``GET .../waiting``), a live change of a handler's limits (``POST
.../limits/{handler}``, ``POST .../limits/{handler}/clear``) and of the service's ``max_queued``
(``POST .../intake``). Each route calls one function of ``reliq.admin.limits`` /
``reliq.admin.waits`` / ``reliq.admin.intake``. Bodies are read as ``/send`` reads one
(``gateway.body``: 415, 413, 408); one that is not a JSON object of the known fields is a 400, a
value the library refuses a 422, as is a handler no worker registered (problem+json, nothing
written)."""

from __future__ import annotations

from typing import Any

import msgspec
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from reliq import Client
from reliq.admin import intake as _intake
from reliq.admin import limits as flowlimits
from reliq.admin import overview as inspect
from reliq.admin import waits
from reliq.store import flow
from reliq.store.keys import InvalidName, check_name

from .body import convert, parse_json, read_body, read_json
from .problems import Problem, documented
from .state import state_of
from .tokens import ANONYMOUS, PRINCIPAL

router = APIRouter(prefix="/admin", tags=["admin"])
_PARTITION = Query(None, pattern=r"^[0-9]{0,4}$", description="only this partition (default: all)")
_HANDLER = Query(None, max_length=64)


def _json(doc: Any) -> Response:
    return Response(msgspec.json.encode(doc), media_type="application/json")


async def _service(request: Request, service: str) -> str:
    if not await inspect.known_service(state_of(request).client, service):
        raise Problem(404, "Not Found", f"no service {service!r} is registered")
    return service


def _part(value: str | None) -> int | None:
    return int(value) if value else None


@router.get(
    "/services/{service}/limits",
    summary="Flow limits in force (code vs override), top keys, rate buckets",
    responses=documented(200, 400, 401, 404),
)
async def limits(
    request: Request,
    service: str,
    handler: str | None = _HANDLER,
    top: str | None = Query(None, pattern=r"^[0-9]{0,3}$", description="top keys shown (default 20)"),
    partition: str | None = _PARTITION,
) -> Response:
    name = await _service(request, service)
    try:
        doc = await flowlimits.limits(
            state_of(request).client,
            name,
            handler=handler or None,
            top=int(top) if top else flowlimits.TOP,
            partition=_part(partition),
        )
    except ValueError as e:
        raise Problem(400, "Bad Request", str(e)) from None
    return _json(doc)


@router.get(
    "/services/{service}/waiting",
    summary="Waiting invocations (key lines, rate limits, delays) and why each waits",
    responses=documented(200, 400, 401, 404),
)
async def waiting(
    request: Request,
    service: str,
    handler: str | None = _HANDLER,
    key: str | None = Query(None, max_length=256, description="only this flow key (with handler)"),
    limit: str | None = Query(None, pattern=r"^(-?[0-9]{1,9})?$", description="default 100, 1-500"),
    partition: str | None = _PARTITION,
) -> Response:
    name = await _service(request, service)
    try:
        doc = await waits.waiting(
            state_of(request).client,
            name,
            handler=handler or None,
            key=key if key is not None and key != "" else None,
            limit=int(limit) if limit else 100,
            partition=_part(partition),
        )
    except ValueError as e:
        raise Problem(400, "Bad Request", str(e)) from None
    return _json(doc)


async def _change(request: Request, service: str, handler: str, clear: bool) -> Response:
    name = await _service(request, service)
    who = str(request.scope.get(PRINCIPAL, ANONYMOUS))
    st = state_of(request)
    client, cfg = st.client, st.settings
    h = request.headers
    if clear and h.get("content-length", "" if "transfer-encoding" in h else "0") == "0":
        raw = b""  # no body announced (``curl -X POST -d ''`` names a form type): nothing to read
    else:
        raw = await read_body(request, cfg.max_body, cfg.body_timeout)  # 415, 413, 408 as /send
    if clear:  # takes no body: an empty one, {} or null
        if raw.strip() and parse_json(raw, cfg.max_depth) not in (None, {}):
            raise Problem(400, "Bad Request", "clear takes no body")
    else:  # not JSON, too deep, not an object, an unknown field or a wrong type: 400
        change = convert(parse_json(raw, cfg.max_depth), flowlimits.LimitsChange)
    try:
        if clear:
            await _clearable(client, name, handler)
            return _json(await flowlimits.clear_limits(client, name, handler, who=who))
        return _json(await flowlimits.set_limits(client, name, handler, change, who=who))
    except InvalidName as e:
        raise Problem(404, "Not Found", str(e)) from None
    except ValueError as e:
        raise Problem(422, "Unprocessable Content", str(e)) from None


async def _clearable(client: Client, service: str, handler: str) -> None:
    """``ValueError`` (a 422, nothing written) unless ``handler`` is registered, has limits in
    its code, or has an override to clear (a handler gone from the code may leave one): as a
    change of an unregistered handler."""
    k = client.keys(service, 0)
    check_name("handler", handler)
    async with client.redis.pipeline(transaction=False) as p:
        p.hexists(k.registry, handler)
        p.hmget(flow.flow_keys(k)[0], [handler, handler + "!"])
        registered, (code, override) = await p.execute()
    if not (registered or code or override):
        raise ValueError(f"no handler {service}.{handler} is registered")


@router.post(
    "/services/{service}/limits/{handler}",
    summary="Change a handler's limits live (merged over an override in force)",
    responses=documented(200, 400, 401, 403, 404, 408, 413, 415, 422),
)
async def set_limits(request: Request, service: str, handler: str) -> Response:
    return await _change(request, service, handler, clear=False)


@router.post(
    "/services/{service}/limits/{handler}/clear",
    summary="Remove the operator's override: the code's limits apply again",
    responses=documented(200, 400, 401, 403, 404, 408, 413, 415, 422),
)
async def clear_limits(request: Request, service: str, handler: str) -> Response:
    return await _change(request, service, handler, clear=True)


@router.post(
    "/services/{service}/intake",
    summary='Override the service\'s max_queued live (a number, "none" or "code")',
    responses=documented(200, 400, 401, 403, 404, 408, 413, 415, 422),
)
async def set_intake(request: Request, service: str) -> Response:
    name = await _service(request, service)
    cfg = state_of(request).settings
    value = await read_json(request, cfg.max_body, cfg.body_timeout, cfg.max_depth)
    change = convert(value, _intake.IntakeChange)  # not the object: 400
    who = str(request.scope.get(PRINCIPAL, ANONYMOUS))
    try:
        return _json(await _intake.set_max_queued(state_of(request).client, name, change.max_queued, who=who))
    except ValueError as e:
        raise Problem(422, "Unprocessable Content", str(e)) from None
