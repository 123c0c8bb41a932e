"""POST /send and /call: validate, place the trigger durably, then answer.

2xx means placed at the durability reported; 429/5xx means not confirmed (retry with the same
Idempotency-Key); 4xx means nothing was placed.

Both are reached through the hot lane (``gateway.fastpath``), straight from the ASGI scope: the
request is parsed once into a ``Head`` (path names, headers, query) and the 202 is written from
ready-made raw headers, because at this rate Starlette's per-request objects cost more than the
durable write (docs/performance.md). The plain Starlette routes below serve the same code for an
app without the lane and keep the route table (405 for other methods, metrics labels); their
OpenAPI is written by ``gateway.openapi``."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, MutableMapping
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import parse_qsl

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reliq import codec, tracing
from reliq.client.producer import MAX_DELAY, due_ms
from reliq.client.waiters import Waiter
from reliq.store.keys import InvalidName, check_name

from . import debouncing, targets, validation
from .body import Receive, canonical, check_input, parse_json, receive_body, whole_body
from .outcome import outcome_response
from .problems import Problem
from .state import GatewayState, state_of
from .wire import BODY, BODY_RECEIVED

_DELAY = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?\Z")
_ISO = re.compile(r"^PT(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?\Z")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_JSON = (b"content-type", b"application/json")


class Head:
    """What ingress reads of a request before its body, parsed once from the ASGI scope: the
    path's service and handler, the headers (first of each name, as Starlette's ``Headers.get``)
    and the query parameters (last of each, as Starlette's ``QueryParams.get``)."""

    __slots__ = ("body", "handler", "headers", "query", "received", "service")

    def __init__(self, scope: MutableMapping[str, Any], service: str, handler: str) -> None:
        self.service, self.handler = service, handler
        self.received = BODY_RECEIVED in scope  # the body is here already: no deadline to arm
        self.body: bytes | None = scope.get(BODY)  # and read whole by the connection (the hot wire)
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            key = name.decode("latin-1")
            if key not in headers:
                headers[key] = value.decode("latin-1")
        self.headers = headers
        raw: bytes = scope.get("query_string", b"")
        self.query = dict(parse_qsl(raw.decode("latin-1"), keep_blank_values=True)) if raw else {}


class Raw(Response):
    """A Response from ready-made raw headers (``Response.__init__`` would rebuild them)."""

    def __init__(self, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        self.status_code, self.body, self.raw_headers, self.background = status, body, headers, None


def parse_delay(raw: str | None) -> float | None:
    """``30``, ``30s``, ``500ms``, ``5m``, ``1h`` or ISO 8601 ``PT1H30M``; seconds."""
    if raw is None:
        return None
    m = _DELAY.match(raw)
    if m:
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    else:
        iso = _ISO.match(raw)
        if not iso or raw == "PT":
            raise Problem(400, "Bad Request", f"invalid delay {raw!r}: use 30s, 500ms, 5m, 1h or PT30S")
        h, mi, s = (float(x) if x else 0.0 for x in iso.groups())
        seconds = h * 3600 + mi * 60 + s
    if seconds > MAX_DELAY:
        raise Problem(400, "Bad Request", "delay longer than 366 days")
    return seconds


def parse_at(raw: str | None) -> datetime | None:
    """An RFC 3339 time with offset, at most 366 days ahead (as ``delay``); in UTC."""
    if raw is None:
        return None
    try:
        at = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise Problem(400, "Bad Request", f"invalid at {raw!r}: use RFC 3339") from None
    if at.tzinfo is None:
        raise Problem(400, "Bad Request", "at needs a time zone offset (RFC 3339)")
    try:  # the library's rule (reliq.client.producer): representable, and not beyond the cap
        ms = due_ms(at, time.time())
    except ValueError as e:
        raise Problem(400, "Bad Request", f"invalid at {raw[:64]!r}: {e}") from None
    return datetime.fromtimestamp((ms or 0) / 1000, UTC)  # ms is set: at is not None


def traceparent(head: Head) -> str:
    """The caller's W3C trace context, stored with the invocation; an invalid one is ignored."""
    return tracing.valid_traceparent(head.headers.get("traceparent", ""))


def idempotency_key(head: Head) -> str | None:
    key = head.headers.get("idempotency-key")
    if key is None:
        return None
    if key.startswith('"') and key.endswith('"') and len(key) >= 2:
        key = key[1:-1]  # structured-field string form of the IETF draft
    try:
        return codec.check_key(key)
    except ValueError as e:
        raise Problem(400, "Bad Request", str(e)) from None


async def _register(
    st: GatewayState, head: Head, receive: Receive, watch: Callable[[str], None] | None = None
) -> Any:
    """Check every header, query parameter and the body, then place: a 4xx places nothing.
    ``watch``: called with the new invocation's id before it is written (not for a debounced one)."""
    service, handler, headers = head.service, head.handler, head.headers
    try:
        check_name("service", service)
        check_name("handler", handler)
    except InvalidName:
        raise Problem(404, "Not Found", "unknown service or handler") from None
    known = st.catalog.cached(service)  # the usual case: no await
    info = (known if known is not None else await st.catalog.handlers(service)).get(handler)
    if info is None:
        raise Problem(404, "Not Found", f"no handler {service}/{handler} is registered")
    key = idempotency_key(head)
    delay = parse_delay(head.query.get("delay"))
    at = parse_at(head.query.get("at"))
    reply = targets.callback(headers, st.settings.callback_hosts, targets.reply_to(headers))
    prio = targets.priority(headers)
    debounced = debouncing.options(headers, parse_delay, exclusive=bool(key or delay is not None or at))
    if st.admission.limit is not None:
        await st.admission.admit(service)
    settings = st.settings
    ctype, length = headers.get("content-type"), headers.get("content-length")
    if head.body is not None:
        raw = whole_body(head.body, ctype, length, settings.max_body)
    else:
        timeout = None if head.received else settings.body_timeout  # nothing to wait for: no deadline
        raw = await receive_body(receive, ctype, length, settings.max_body, timeout)
    # a handler without input may be called with an empty body; everyone else must send JSON
    value = None if not info.takes_input and not raw.strip() else parse_json(raw, settings.max_depth)
    flow_key = ""
    if info.input_type is not None and info.takes_input:
        typed = check_input(value, info.input_type)
        if info.flow_key is not None:  # a callable concurrency_key: computed here, where the code is
            flow_key = targets.callable_key(info.flow_key, typed)
    elif info.validators and info.takes_input:  # no App: the schemas live workers publish
        validation.check(info.validators, value)
    if st.gate.refusal:  # the accepted path: nothing to wait for
        await st.gate.require()
    t0 = time.perf_counter()
    if debounced is not None:
        place = partial(
            debouncing.place,
            st,
            service,
            handler,
            canonical(value),
            debounced,
            reply_to=reply,
            priority=prio,
            flow_key=flow_key,
        )
    else:
        place = partial(
            st.placer.place,
            service,
            handler,
            canonical(value),
            key=key,
            delay=delay,
            at=at,
            reply_to=reply,
            priority=prio,
            flow_key=flow_key,
            before_commit=watch,
        )
    if tracing.active():
        with tracing.span(f"reliq.place {service}.{handler}", traceparent(head), "server", {}) as tp:
            accepted = await place(trace=tp)
    else:
        accepted = await place(trace=traceparent(head))
    st.metrics.register_seconds.observe(time.perf_counter() - t0)
    return accepted


async def send(st: GatewayState, head: Head, receive: Receive) -> Response:
    """Place an invocation (fire and forget): 202 once it is durably placed."""
    accepted = await _register(st, head, receive)
    level, inv = st.durability_level, accepted.id
    doc = msgspec.json.encode({"id": inv, "status": accepted.status, "durability": level})
    headers = [
        _JSON,
        (b"content-length", b"%d" % len(doc)),
        (b"location", b"/invocations/" + inv.encode()),
        (b"reliq-durability", level.encode()),
        (b"reliq-invocation-id", inv.encode()),
    ]
    return Raw(202, doc, headers)


async def call(st: GatewayState, head: Head, receive: Receive) -> Response:
    """Place an invocation and wait up to ``Prefer: wait=N`` for its result (holding a waiting
    slot from the start: when none is free, 429 and nothing is placed)."""
    # Prefer is checked before the invocation is placed: a bad one is a 400 that places nothing
    wait = prefer_wait(head.headers.get("prefer"), st.settings.default_wait, st.settings.max_wait)
    # plain take/give and add/remove, not context managers: this runs once per /call
    st.waiting.take()
    waiters = st.client.waiters
    watched: Waiter | None = None

    def watch(invocation_id: str) -> None:  # before the write: its completion cannot go unseen
        nonlocal watched
        watched = waiters.add(invocation_id, st.client.keys_of(invocation_id).done_channel)

    try:
        accepted = await _register(st, head, receive, watch)
        if watched is not None and accepted.status != "accepted":
            watched.subscribed = False  # placed before (an idempotent re-send): it may be finished
        outcome = await st.client.wait(accepted.id, wait, watched=watched)
    finally:
        if watched is not None:
            waiters.remove(watched)
        st.waiting.give()
    if outcome is not None and outcome.state == "succeeded":  # the common answer, headers ready-made
        body = outcome.result or b"null"
        return Raw(
            200,
            body,
            [
                _JSON,
                (b"content-length", b"%d" % len(body)),
                (b"reliq-durability", st.durability_level.encode()),
                (b"reliq-invocation-id", accepted.id.encode()),
            ],
        )
    return outcome_response(accepted.id, outcome, {"Reliq-Durability": st.durability_level})


def prefer_wait(header: str | None, default: float, cap: float) -> float:
    if header:
        for part in header.split(","):
            name, _, value = part.strip().partition("=")
            if name.strip().lower() == "wait":
                try:
                    wait = float(value.strip())
                except ValueError:
                    wait = float("nan")
                if wait != wait:
                    raise Problem(400, "Bad Request", "Prefer: wait=N needs a number of seconds")
                return max(0.0, min(wait, cap))
    return min(default, cap)


ENDPOINTS = {"send": send, "call": call}


async def _route(request: Request) -> Response:
    """The same endpoints as Starlette routes (an app without the hot lane)."""
    verb = request.url.path.split("/")[1]
    p = request.path_params
    return await ENDPOINTS[verb](
        state_of(request), Head(request.scope, p["service"], p["handler"]), request.receive
    )


routes = [
    Route("/send/{service}/{handler}", _route, methods=["POST"]),
    Route("/call/{service}/{handler}", _route, methods=["POST"]),
]
