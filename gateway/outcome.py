"""Turn an invocation's outcome (``reliq.client.outcome.Outcome``, read by ``Client.outcome`` and
``Client.wait``) into an HTTP answer, for /call, /output and /attach: the stored result is the
200 body as is; a failed or cancelled invocation is a problem document carrying the handler's
status; an unfinished one is a 202 pointing at its status document."""

from __future__ import annotations

import msgspec
from starlette.responses import Response

from reliq.client.outcome import Outcome

from .problems import Problem, problem_response


def outcome_response(
    invocation_id: str, out: Outcome | None, headers: dict[str, str] | None = None
) -> Response:
    h = {"Reliq-Invocation-Id": invocation_id, **(headers or {})}
    if out is None:
        return problem_response(Problem(404, "Not Found", "unknown or expired invocation"))
    if out.state == "succeeded":
        return Response(out.result or b"null", status_code=200, media_type="application/json", headers=h)
    if out.finished:
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
