"""The admin JSON API under ``/admin``: the views and actions of the pending-entries dashboard.

Every route calls one function of ``reliq.admin`` (``overview``, ``detail`` or ``actions``) and
encodes its document (shapes: docs/http-api.md, "Admin API"). A partitioned service's views are
merged over its partitions; each row says its partition, and ``?partition=N`` shows only one
(a partition the service does not have is a 400). GET never changes state; actions
are POST only (a GET on an action path is 405), idempotent, and audited under the caller's token
name. Scopes are enforced by ``Guard`` (a ``read`` token gets 403 here); cross-site browser
requests and foreign Hosts are refused before that, by ``gateway.edge``.
"""

from __future__ import annotations

from typing import Any

import msgspec
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from reliq import UnknownInvocation
from reliq.admin import actions as operate
from reliq.admin import detail
from reliq.admin import overview as inspect
from reliq.admin import suspended as waiting
from reliq.admin import tree as family
from reliq.store.keys import InvalidName

from .invocations import without_traceback
from .problems import Problem, documented
from .state import state_of
from .tokens import ANONYMOUS, PRINCIPAL, parse_tokens

_NOT_FOUND = Problem(404, "Not Found", "unknown or expired invocation")
_READ = documented(200, 400, 401, 404)
_ACT = documented(200, 400, 401, 403, 404)


router = APIRouter(prefix="/admin", tags=["admin"])


def _json(doc: Any) -> Response:
    return Response(msgspec.json.encode(doc), media_type="application/json")


def _who(request: Request) -> str:
    return str(request.scope.get(PRINCIPAL, ANONYMOUS))


async def _service(request: Request, service: str) -> str:
    if not await inspect.known_service(state_of(request).client, service):
        raise Problem(404, "Not Found", f"no service {service!r} is registered")
    return service


def _bad(e: ValueError) -> Problem:
    return Problem(400, "Bad Request", str(e))


# Integer parameters are strings checked by pattern, so that an empty value (``?limit=``, as a
# form or a URL template sends it) means the default instead of a 400.
_LIMIT = Query(None, pattern=r"^(-?[0-9]{1,9})?$", description="default 100, clamped to 1-500")
_COUNT = r"^[0-9]{0,15}$"
_PARTITION = Query(None, pattern=r"^[0-9]{0,4}$", description="only this partition (default: all)")
_CURSOR = Query(None, max_length=200, description="next_cursor of the previous page")


def _num(value: str | None, default: int) -> int:
    return int(value) if value else default


def _part(value: str | None) -> int | None:
    return int(value) if value else None


@router.get("/services", summary="Overview of every service", responses=_READ)
async def services(request: Request) -> Response:
    return _json(await inspect.overview(state_of(request).client))


@router.get("/services/{service}", summary="Overview of one service", responses=_READ)
async def service(request: Request, service: str) -> Response:
    name = await _service(request, service)
    return _json(await inspect.service_overview(state_of(request).client, name))


@router.get("/services/{service}/pending", summary="Pending entries (PEL), paged", responses=_READ)
async def pending(
    request: Request,
    service: str,
    cursor: str | None = _CURSOR,
    consumer: str | None = Query(None, max_length=256),
    min_idle_ms: str | None = Query(None, pattern=_COUNT),
    handler: str | None = Query(None, max_length=64),
    limit: str | None = _LIMIT,
    partition: str | None = _PARTITION,
) -> Response:
    name = await _service(request, service)
    try:
        page = await inspect.pending(
            state_of(request).client,
            name,
            cursor=cursor or None,
            consumer=consumer or None,
            min_idle_ms=_num(min_idle_ms, 0),
            handler=handler or None,
            limit=_num(limit, 100),
            partition=_part(partition),
        )
    except ValueError as e:
        raise _bad(e) from None
    return _json(page)


@router.get("/services/{service}/parked", summary="Parked invocations (or the archive)", responses=_READ)
async def parked(
    request: Request,
    service: str,
    cursor: str | None = _CURSOR,
    limit: str | None = _LIMIT,
    handler: str | None = Query(None, max_length=64),
    archived: bool = False,
    partition: str | None = _PARTITION,
) -> Response:
    name = await _service(request, service)
    client = state_of(request).client
    try:
        page = await inspect.parked(
            client,
            name,
            cursor=cursor or None,
            limit=_num(limit, 100),
            handler=handler or None,
            archived=archived,
            partition=_part(partition),
        )
    except ValueError as e:
        raise _bad(e) from None
    return _json(page)


@router.get("/services/{service}/suspended", summary="Suspended invocations and their waits", responses=_READ)
async def suspended(
    request: Request,
    service: str,
    cursor: str | None = _CURSOR,
    limit: str | None = _LIMIT,
    partition: str | None = _PARTITION,
) -> Response:
    name = await _service(request, service)
    try:
        page = await waiting.suspended(
            state_of(request).client,
            name,
            cursor=cursor or None,
            limit=_num(limit, 100),
            partition=_part(partition),
        )
    except ValueError as e:
        raise _bad(e) from None
    return _json(page)


@router.get(
    "/invocations/{invocation_id}/tree", summary="The function tree under an invocation", responses=_READ
)
async def tree(
    request: Request, invocation_id: str, depth: int = Query(1, ge=0, le=family.MAX_DEPTH)
) -> Response:
    try:
        node = await family.tree(state_of(request).client, invocation_id, depth=depth)
    except InvalidName:
        raise _NOT_FOUND from None
    if node is None:
        raise _NOT_FOUND
    return _json(node)


@router.get("/invocations/{invocation_id}", summary="One invocation with timeline", responses=_READ)
async def invocation(request: Request, invocation_id: str) -> Response:
    try:
        doc = await detail.detail(state_of(request).client, invocation_id)
    except InvalidName:
        raise _NOT_FOUND from None
    if doc is None:
        raise _NOT_FOUND
    if not _operator(request):  # a read token sees type and message, not the traceback
        doc = msgspec.structs.replace(doc, invocation=without_traceback(doc.invocation))
    return _json(doc)


def _operator(request: Request) -> bool:
    """Whether the caller has operator scope: always on an open gateway; with tokens, when every
    token of the caller's name is an operator token."""
    configured = state_of(request).settings.tokens
    if not configured:
        return True
    mine = [t.scope for t in parse_tokens(configured) if t.name == _who(request)]
    return bool(mine) and all(scope == "operator" for scope in mine)


@router.get(
    "/whoami",
    summary="The caller's token name and scope (the dashboard hides actions from a read token)",
    responses=documented(200, 401),
)
async def whoami(request: Request) -> Response:
    return _json({"name": _who(request), "scope": "operator" if _operator(request) else "read"})


@router.get("/audit", summary="Audit log of admin actions, newest first", responses=_READ)
async def audit(
    request: Request,
    limit: str | None = _LIMIT,
    cursor: str | None = _CURSOR,
    service: str | None = Query(None, max_length=64),
    partition: str | None = _PARTITION,
) -> Response:
    name = await _service(request, service) if service else None
    client = state_of(request).client
    try:
        page = await operate.audit_log(
            client, limit=_num(limit, 100), cursor=cursor or None, service=name, partition=_part(partition)
        )
    except ValueError as e:
        raise _bad(e) from None
    return _json(page)


async def _act(request: Request, action: str, invocation_id: str, force: bool = False) -> Response:
    client, who = state_of(request).client, _who(request)
    try:
        result = await operate.act(client, action, invocation_id, who=who, force=force)
    except (InvalidName, UnknownInvocation):
        raise _NOT_FOUND from None
    return _json(result)


_FORCE = Query(False, description="release only: even when its holder is alive with a valid lease")


def _action_route(action: str, summary: str) -> None:
    async def run(request: Request, invocation_id: str) -> Response:
        return await _act(request, action, invocation_id)

    async def release(request: Request, invocation_id: str, force: bool = _FORCE) -> Response:
        return await _act(request, action, invocation_id, force)

    endpoint = release if action == "release" else run
    endpoint.__name__ = f"admin_{action.replace('-', '_')}"
    router.add_api_route(
        f"/invocations/{{invocation_id}}/{action}",
        endpoint,
        methods=["POST"],
        summary=summary,
        responses=_ACT,
    )


for _action, _summary in (
    ("redrive", "Redrive a parked or archived invocation"),
    ("discard", "Move a parked invocation to the archive"),
    ("release", "Make its pending entry reclaimable now"),
    ("retry-now", "Skip the backoff of a retrying invocation"),
    ("cancel", "Cancel a queued or running invocation"),
):
    _action_route(_action, _summary)


@router.post(
    "/services/{service}/parked/redrive",
    summary="Redrive a service's parked set (bounded per call)",
    responses=_ACT,
)
async def redrive_parked(
    request: Request,
    service: str,
    handler: str | None = Query(None, max_length=64),
    limit: str | None = _LIMIT,
    archived: bool = False,
    partition: str | None = _PARTITION,
    cursor: str | None = _CURSOR,
) -> Response:
    name = await _service(request, service)
    try:
        result = await operate.redrive_parked(
            state_of(request).client,
            name,
            who=_who(request),
            handler=handler or None,
            limit=_num(limit, 100),
            archived=archived,
            partition=_part(partition),
            cursor=cursor or None,
        )
    except ValueError as e:
        raise _bad(e) from None
    return _json(result)
