"""The hot wire: a ``POST /send`` or ``/call`` whose head and body arrive in one read is answered
straight from the connection's protocol (``gateway.protocol``), without uvicorn's ASGI machinery.

uvicorn serves every request through a ``RequestResponseCycle``: an ASGI task with its event,
``receive`` and ``send`` messages, and the middleware in front of the app. Measured on the hot
lane, that machinery cost more CPU than the lane itself (docs/performance.md, session 13). Here the
protocol keeps the body it parsed and runs ``Lane.respond`` (the same checks, counting and
ingress as the ASGI lane) in one task of its own, the body left in the scope (``BODY``: ingress
checks it as it checks a received one, without ``receive``); that task writes the answer, in one
``write``.

Only when nothing else is in flight on the connection, with no ``Expect: 100-continue`` or
upgrade, and only when the whole body is in the same read as the head's end. Anything else takes
uvicorn's way as before, decided before anything ran: a body still arriving (its deadline, its 408),
pipelined requests (answered in order), a path that is not a hot route (404/405 from FastAPI).

While a wired request is in flight, the protocol's ``cycle`` is a ``Pending``: what uvicorn reads
of a cycle (complete, kept alive, disconnected), so its pipelining, shutdown (the answer closes
the connection) and connection loss work unchanged; the task is in the server's task set, so a
graceful shutdown waits for it as for an ASGI task. uvicorn's proxy-headers middleware (the
client's address and scheme from ``X-Forwarded-*``) does not run for a wired request: the lane
reads neither.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from collections.abc import MutableMapping
from functools import partial
from typing import TYPE_CHECKING, Any

import httptools
from starlette.responses import Response
from uvicorn.protocols.http.httptools_impl import STATUS_LINE

from .problems import Problem, problem_response

if TYPE_CHECKING:
    from .fastpath import Lane
    from .protocol import EdgeProtocol

log = logging.getLogger("reliq.gateway")
BODY_RECEIVED = "reliq.body_received"  # an ASGI extension key of ours: the body is here whole
BODY = "reliq.body"  # a wired request's whole body (ingress reads it without ``receive``)
HOT = "reliq.hot"  # (verb, service, handler) of a request of the hot lane
VERBS = ("send", "call")  # gateway.ingress.ENDPOINTS
HOT_PREFIXES = (b"/send/", b"/call/")


def hot_route(scope: MutableMapping[str, Any]) -> tuple[str, str, str] | None:
    """(verb, service, handler) when the request belongs to the hot lane."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return None
    parts = scope["path"].split("/")
    if len(parts) != 4 or parts[1] not in VERBS or not parts[2] or not parts[3]:
        return None
    return parts[1], parts[2], parts[3]


def encode(response: Response, default_headers: list[tuple[bytes, bytes]], keep_alive: bool) -> bytes:
    """A whole answer as one buffer: the status line, uvicorn's default headers (date, server),
    the response's, ``connection: close`` unless kept alive, and the body."""
    head = [STATUS_LINE[response.status_code], _defaults(default_headers)]
    head += [b"%s: %s\r\n" % kv for kv in response.raw_headers]
    if not keep_alive:
        head.append(b"connection: close\r\n")
    head += [b"\r\n", bytes(response.body)]
    return b"".join(head)


_formatted: list[Any] = [None, b""]  # uvicorn's default headers (a new list each second) and their bytes


def _defaults(headers: list[tuple[bytes, bytes]]) -> bytes:
    """uvicorn's default headers as bytes, formatted once per list (its ``date`` changes each second)."""
    if _formatted[0] is not headers:
        _formatted[:] = headers, b"".join([b"%s: %s\r\n" % kv for kv in headers])
    return _formatted[1]  # type: ignore[no-any-return]


class _NoEvent:
    """``message_event`` of a wired request: uvicorn sets it on connection loss; nothing waits on
    it (the body was read whole)."""

    __slots__ = ()

    def set(self) -> None:
        """Nothing to wake."""


NO_EVENT = _NoEvent()


class Pending:
    """A wired request in flight, where uvicorn's protocol expects its ``RequestResponseCycle``.
    It refers to nothing that refers back to it, so it is freed when the next request replaces it,
    not by the garbage collector: a ``Pending`` that was its own ``message_event`` made every
    request cyclic garbage, and each collection of ~6,000 of them held the loop 3-10 ms
    (docs/performance.md, session 18)."""

    __slots__ = ("disconnected", "keep_alive", "message_event", "response_complete")

    def __init__(self, keep_alive: bool) -> None:
        self.keep_alive, self.response_complete, self.disconnected = keep_alive, False, False
        self.message_event = NO_EVENT


def lane_of(app: Any) -> Lane | None:
    """The hot lane of the gateway app that uvicorn loaded, through its middleware (``.app``)."""
    for _ in range(8):
        lane = getattr(app, "lane", None)
        if lane is not None:
            return lane  # type: ignore[no-any-return]
        app = getattr(app, "app", None)
    return None


def takes(p: EdgeProtocol) -> bool:
    """Whether the request whose head ``p`` just parsed may take the wire (its body still to come)."""
    return (
        (p.cycle is None or p.cycle.response_complete)
        and p.url.startswith(HOT_PREFIXES)
        and not p.expect_100_continue
        and p.limit_concurrency is None
        and p.parser.get_method() == b"POST"
        and not p.parser.should_upgrade()
    )


def start(p: EdgeProtocol, lane: Lane, body: bytes) -> bool:
    """Run the wired request whose whole ``body`` ``p`` just parsed; False when its path is not
    a hot route after all (the caller then takes uvicorn's way)."""
    scope: MutableMapping[str, Any] = p.scope  # type: ignore[assignment]  # uvicorn's, from on_message_begin
    url = httptools.parse_url(p.url)
    path = url.path.decode("ascii")
    scope["method"] = "POST"
    scope["path"] = p.root_path + (urllib.parse.unquote(path) if "%" in path else path)
    scope["raw_path"] = p.root_path.encode("ascii") + url.path
    scope["query_string"] = url.query or b""
    version = p.parser.get_http_version()
    if version != "1.1":
        scope["http_version"] = version
    hot = hot_route(scope)
    if hot is None:
        return False
    scope[HOT], scope[BODY_RECEIVED], scope[BODY] = hot, True, body
    scope["app"] = lane.app
    pending = Pending(keep_alive=version != "1.0" and p.parser.should_keep_alive())
    p.cycle = pending  # type: ignore[assignment]
    task = p.loop.create_task(_serve(p, pending, lane, scope, body))
    p.tasks.add(task)  # uvicorn's set of request tasks: a shutdown waits for them
    task.add_done_callback(p.tasks.discard)
    task.add_done_callback(partial(_closed_if_cancelled, p, pending))
    return True


async def _receive(body: bytes) -> MutableMapping[str, Any]:
    """ASGI ``receive`` of a wired request: its whole body, in one message (ingress reads once)."""
    return {"type": "http.request", "body": body, "more_body": False}


async def _serve(
    p: EdgeProtocol, pending: Pending, lane: Lane, scope: MutableMapping[str, Any], body: bytes
) -> None:
    """Answer the wired request from its own task, as soon as ``Lane.respond`` returns: written in
    the loop iteration the request's placement is confirmed in, not one later from a done callback
    (under load, every iteration also ingests the next requests)."""
    try:
        response = await lane.respond(scope, partial(_receive, body))
    except asyncio.CancelledError:
        raise  # _closed_if_cancelled (also when cancelled before its first step, this never ran)
    except BaseException as e:  # Lane.respond turns every Exception into problem+json: a BaseException
        log.error("the hot wire's request failed", exc_info=e)
        pending.keep_alive = False
        _answer(p, pending, problem_response(Problem(500, "Internal Server Error", "unexpected error")))
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise  # asyncio stops the loop with it, as before
        return
    _answer(p, pending, response)


def _answer(p: EdgeProtocol, pending: Pending, response: Response) -> None:
    """Write the answer in one ``write``, then let the connection go on (keep-alive, pipelining)."""
    pending.response_complete = True
    if pending.disconnected or p.transport.is_closing():
        return
    p.transport.write(encode(response, p.server_state.default_headers, pending.keep_alive))
    if not pending.keep_alive:
        p.transport.close()
    p.on_response_complete()


def _closed_if_cancelled(p: EdgeProtocol, pending: Pending, task: asyncio.Task[None]) -> None:
    """The server's forced exit cancelled the request: close without an answer, as uvicorn's
    cycle would."""
    if task.cancelled():
        pending.response_complete = True
        p.transport.close()
