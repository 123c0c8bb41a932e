"""Turn an invocation's outcome into an HTTP answer (used by /call, /output and /attach)."""

from __future__ import annotations

import asyncio
import time

import msgspec
from starlette.responses import Response

from reliq import Client
from reliq.store.keys import InvalidName
from reliq.store.record import TERMINAL

from .problems import Problem, problem_response


class Outcome(msgspec.Struct, frozen=True):
    state: str
    result: bytes = b""
    error: bytes = b""


async def read_outcome(client: Client, invocation_id: str) -> Outcome | None:
    try:
        k = client.keys_of(invocation_id)
    except InvalidName:
        return None
    state, result, error = await client.redis.hmget(k.inv(invocation_id), "state", "result", "error")
    if state is None:
        return None
    return Outcome(state.decode(), result or b"", error or b"")


async def wait_for_outcome(client: Client, invocation_id: str, wait: float) -> Outcome | None:
    """Poll until the invocation is terminal or ``wait`` seconds passed; None if unknown."""
    deadline = time.monotonic() + wait
    pause = 0.002
    while True:
        out = await read_outcome(client, invocation_id)
        if out is None or out.state in TERMINAL:
            return out
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return out
        await asyncio.sleep(min(pause, remaining))
        pause = min(pause * 1.5, 0.05)


def outcome_response(
    invocation_id: str, out: Outcome | None, headers: dict[str, str] | None = None
) -> Response:
    h = {"Reliq-Invocation-Id": invocation_id, **(headers or {})}
    if out is None:
        return problem_response(Problem(404, "Not Found", "unknown or expired invocation"))
    if out.state == "succeeded":
        return Response(out.result or b"null", status_code=200, media_type="application/json", headers=h)
    if out.state in TERMINAL:
        err = msgspec.json.decode(out.error) if out.error else {}
        status = err.get("status") if isinstance(err.get("status"), int) else None
        status = status if status and 400 <= status <= 599 else 500
        if out.state == "cancelled":
            status = 409
        p = Problem(
            status,
            "Invocation " + out.state,
            str(err.get("message", "")),
            invocation_id=invocation_id,
            state=out.state,
            error_type=err.get("type"),
            headers={**h, "Reliq-Error-Source": "handler"},
        )
        return problem_response(p)
    return Response(
        msgspec.json.encode({"id": invocation_id, "state": out.state}),
        status_code=202,
        media_type="application/json",
        headers={**h, "Location": f"/invocations/{invocation_id}", "Retry-After": "1"},
    )
