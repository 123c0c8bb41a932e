"""GET /invocations/{id}, /output, /attach and POST /cancel.

A failed invocation's error shows its type, message and status here, never its traceback (file
paths, code): that stays in the operator's views (``/admin/invocations/{id}``)."""

from __future__ import annotations

import msgspec
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from reliq import UnknownInvocation
from reliq.store.keys import InvalidName
from reliq.store.record import Invocation

from .outcome import outcome_response
from .problems import Problem, documented
from .state import state_of

router = APIRouter(prefix="/invocations")
_NOT_FOUND = Problem(404, "Not Found", "unknown or expired invocation")


@router.get(
    "/{invocation_id}", summary="Status document of an invocation", responses=documented(200, 401, 404)
)
async def status(request: Request, invocation_id: str) -> Response:
    try:
        inv = await state_of(request).client.get(invocation_id)
    except InvalidName:
        raise _NOT_FOUND from None
    if inv is None:
        raise _NOT_FOUND
    return Response(msgspec.json.encode(without_traceback(inv)), media_type="application/json")


def without_traceback(inv: Invocation) -> Invocation:
    """The status document with the error's traceback emptied (type and message stay)."""
    if inv.error is None or not inv.error.traceback:
        return inv
    return msgspec.structs.replace(inv, error=msgspec.structs.replace(inv.error, traceback=""))


@router.get(
    "/{invocation_id}/output",
    summary="Result: 200 done, 202 not ready, problem when failed",
    responses=documented(200, 202, 401, 404, 409, 500),
)
async def output(request: Request, invocation_id: str) -> Response:
    return await _answer(request, invocation_id, None)


@router.get(
    "/{invocation_id}/attach",
    summary="Long-poll until finished or `wait` seconds (then 202)",
    responses=documented(200, 202, 400, 401, 404, 409, 429, 500),
)
async def attach(request: Request, invocation_id: str, wait: float = Query(30.0, ge=0, le=3600)) -> Response:
    return await _answer(request, invocation_id, min(wait, state_of(request).settings.max_wait))


async def _answer(request: Request, invocation_id: str, wait: float | None) -> Response:
    """The outcome now (``wait`` None) or after waiting; a malformed id is unknown (404)."""
    st = state_of(request)
    try:
        if not wait:
            out = await st.client.outcome(invocation_id)
        else:
            with st.waiting.slot():
                out = await st.client.wait(invocation_id, wait)
    except InvalidName:
        out = None
    return outcome_response(invocation_id, out)


@router.post(
    "/{invocation_id}/cancel",
    status_code=202,
    summary="Cancel a queued or running invocation",
    responses=documented(202, 401, 404, 409),
)
async def cancel(request: Request, invocation_id: str) -> Response:
    try:
        outcome = await state_of(request).client.cancel(invocation_id)
    except (InvalidName, UnknownInvocation):
        raise _NOT_FOUND from None
    if outcome == "terminal":
        raise Problem(409, "Conflict", "the invocation already finished", invocation_id=invocation_id)
    return Response(
        msgspec.json.encode({"id": invocation_id, "status": outcome}),
        status_code=202,
        media_type="application/json",
    )
