"""POST /invocations/{id}/promises/{name}: resolve or reject a durable promise from outside
(``await ctx.promise(name)`` in the handler; ``Client.resolve`` / ``Client.reject``).

The body is ``{"value": <any JSON>}`` (resolve) or ``{"error": "<message>"}`` (reject), exactly
one of the two. Everything is checked before anything is written: the id's form, the promise
name (the rules of service names), the content type (415), the size (413), the JSON and its shape
(400). Then one script call: 200 ``{"status": "resumed"}`` (it was suspended on this promise and
is queued again) or ``{"status": "stored"}`` (kept until the handler reaches the await); 409 when
the promise was settled before (the first value stands) or the invocation already finished; 404
when the invocation is unknown or expired. It is a write: a ``read`` token gets 403 (``Guard``).
"""

from __future__ import annotations

from typing import Any

import msgspec
from fastapi import APIRouter, Request
from starlette.responses import Response

from reliq import InvocationFailed, PromiseAlreadySettled, UnknownInvocation
from reliq.client.actions import MAX_REJECT_MESSAGE as _MAX_MESSAGE
from reliq.store.keys import InvalidName, check_name, locate

from .body import parse_json, read_body
from .problems import Problem, documented
from .state import state_of

router = APIRouter(prefix="/invocations")
_SHAPE = 'send {"value": <any JSON>} to resolve or {"error": "<message>"} to reject'
_OK = {
    "description": '{"id", "promise", "status": "resumed" | "stored"}',
    "content": {"application/json": {}},
}


def settlement(body: Any) -> tuple[str, Any]:
    """``("value", v)`` or ``("error", message)`` from a decoded body; 400 for any other shape."""
    if not isinstance(body, dict) or len(body) != 1 or next(iter(body)) not in ("value", "error"):
        raise Problem(400, "Bad Request", _SHAPE)
    kind, v = next(iter(body.items()))
    if kind == "error" and (not isinstance(v, str) or not v or len(v) > _MAX_MESSAGE):
        raise Problem(400, "Bad Request", f"error: a message of 1-{_MAX_MESSAGE} characters")
    return kind, v


@router.post(
    "/{invocation_id}/promises/{name}",
    summary="Resolve or reject a promise the invocation awaits",
    responses={**documented(200, 400, 401, 403, 404, 409, 413, 415), 200: _OK},
)
async def settle_promise(request: Request, invocation_id: str, name: str) -> Response:
    st = state_of(request)
    try:
        locate(invocation_id)
        check_name("promise", name)
    except InvalidName as e:
        raise Problem(400, "Bad Request", str(e)) from None
    raw = await read_body(request, st.settings.max_body, st.settings.body_timeout)
    kind, v = settlement(parse_json(raw, st.settings.max_depth))
    try:
        if kind == "value":
            status = await st.client.resolve(invocation_id, name, v)
        else:
            status = await st.client.reject(invocation_id, name, v)
    except UnknownInvocation:
        raise Problem(404, "Not Found", "unknown or expired invocation") from None
    except PromiseAlreadySettled:
        raise Problem(
            409, "Conflict", f"promise {name!r} was settled before: the first value stands"
        ) from None
    except InvocationFailed:
        raise Problem(
            409, "Conflict", "the invocation already finished", invocation_id=invocation_id
        ) from None
    doc = {"id": invocation_id, "promise": name, "status": status}
    return Response(msgspec.json.encode(doc), media_type="application/json")
