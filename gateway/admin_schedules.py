"""The admin API of schedules, under ``/admin/services/{service}/schedules``: list, create,
pause, resume, delete. Each route calls one ``Client`` schedule method (``reliq.client.schedules``).
The body is read as ``/send`` reads one (``gateway.body``: 415, 413, 408, 400 for malformed or too
deeply nested JSON). A bad definition is a 400 problem naming the field (``field``); a handler not
in the catalog a 404, a payload that is not its input a 422 (``field`` ``handler``, ``payload``);
nothing is stored. A different schedule by the same name is a 409."""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from fastapi import APIRouter, Request
from starlette.responses import Response

from reliq import InvalidSchedule, ScheduleConflict
from reliq.admin import overview as inspect
from reliq.store.cron import CatchUp, Schedule
from reliq.store.keys import InvalidName

from . import targets, validation
from .body import check_input, convert, read_json
from .problems import Problem, documented
from .state import GatewayState, state_of

router = APIRouter(prefix="/admin", tags=["admin"])
NOW = "Reliq-Now"  # the listing's header: the server's time (ms) its next_fire and last_tick compare with


class NewSchedule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The body of a create: ``cron`` (5 fields, or 6 with seconds first) or ``every`` (seconds)."""

    name: str
    handler: str
    cron: str | None = None
    every: float | None = None
    tz: str = "UTC"
    catch_up: CatchUp = "latest"
    max_catch_up: int = 10
    payload: Any = None


def _json(doc: Any, status: int = 200) -> Response:
    return Response(msgspec.json.encode(doc), status_code=status, media_type="application/json")


async def _service(request: Request, service: str) -> str:
    if not await inspect.known_service(state_of(request).client, service):
        raise Problem(404, "Not Found", f"no service {service!r} is registered")
    return service


@router.get(
    "/services/{service}/schedules",
    summary="Schedules of a service: definition, last tick and its state, next fire, paused",
    responses=documented(200, 401, 404),
)
async def list_schedules(request: Request, service: str) -> Response:
    name = await _service(request, service)
    client = state_of(request).client
    listing = _json(await client.schedules(name))
    listing.headers[NOW] = str(await client.server_time_ms())  # the answer stays a bare list
    return listing


@router.post(
    "/services/{service}/schedules",
    summary="Create a schedule (idempotent for the same definition)",
    responses=documented(200, 400, 401, 403, 404, 408, 409, 413, 415, 422),
)
async def create_schedule(request: Request, service: str) -> Response:
    name = await _service(request, service)
    st = state_of(request)
    cfg = st.settings
    body = convert(await read_json(request, cfg.max_body, cfg.body_timeout, cfg.max_depth), NewSchedule)
    try:
        spec = Schedule(
            name=body.name,
            handler=body.handler,
            cron=body.cron,
            every=body.every,
            tz=body.tz,
            catch_up=body.catch_up,
            max_catch_up=body.max_catch_up,
            payload=body.payload,
        ).checked()  # a malformed definition is a 400 before the handler is looked up
        await _check_handler(st, name, spec)
        status = await st.client.create_schedule(
            name,
            spec.name,
            spec.handler,
            cron_expr=spec.cron,
            every=spec.every,
            tz=spec.tz,
            catch_up=spec.catch_up,
            max_catch_up=spec.max_catch_up,
            payload=spec.payload,
        )
    except InvalidSchedule as e:
        raise Problem(400, "Bad Request", str(e), field=e.field) from None
    except ScheduleConflict as e:
        raise Problem(409, "Conflict", str(e)) from None
    return _json({"status": status}, 201 if status == "created" else 200)


async def _check_handler(st: GatewayState, service: str, spec: Schedule) -> None:
    """As ``/send`` checks a body: the handler must be in the catalog (404), the payload must be
    its input (422, also a callable concurrency key that fails on it), so no tick fails for it."""
    info = await st.catalog.lookup(service, spec.handler)
    if info is None:
        raise Problem(404, "Not Found", f"no handler {service}/{spec.handler} is registered", field="handler")
    if not info.takes_input:
        return
    try:
        if info.input_type is not None:
            typed = check_input(spec.payload, info.input_type)
            if info.flow_key is not None:
                targets.callable_key(info.flow_key, typed)
        elif info.validators:
            validation.check(info.validators, spec.payload)
    except Problem as p:
        raise Problem(p.status, p.title, p.detail, field="payload") from None


async def _set(
    request: Request, service: str, action: Literal["pause", "resume", "delete"], name: str
) -> Response:
    svc = await _service(request, service)
    client = state_of(request).client
    try:
        run = {
            "pause": client.pause_schedule,
            "resume": client.resume_schedule,
            "delete": client.delete_schedule,
        }
        status = await run[action](svc, name)
    except InvalidName:
        status = "unknown"
    if status == "unknown":
        raise Problem(404, "Not Found", f"no schedule {name!r} in {service!r}")
    return _json({"status": status})


@router.post(
    "/services/{service}/schedules/{name}/pause",
    summary="Pause a schedule (no ticks until resumed)",
    responses=documented(200, 401, 403, 404),
)
async def pause_schedule(request: Request, service: str, name: str) -> Response:
    return await _set(request, service, "pause", name)


@router.post(
    "/services/{service}/schedules/{name}/resume",
    summary="Resume a schedule (ticks from now on; those that fell in the pause never run)",
    responses=documented(200, 401, 403, 404),
)
async def resume_schedule(request: Request, service: str, name: str) -> Response:
    return await _set(request, service, "resume", name)


@router.delete(
    "/services/{service}/schedules/{name}",
    summary="Delete a schedule",
    responses=documented(200, 401, 403, 404),
)
async def delete_schedule(request: Request, service: str, name: str) -> Response:
    return await _set(request, service, "delete", name)
