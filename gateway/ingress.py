"""POST /send and /call: validate, place the trigger durably, then answer.

2xx means placed at the durability reported; 429/5xx means not confirmed (retry with the same
Idempotency-Key); 4xx means nothing was placed.

These two hot routes are plain Starlette routes mounted in the FastAPI app: FastAPI's per-request
dependency machinery costs more than the durable write (docs/performance.md). Their OpenAPI is
written by ``gateway.openapi``."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reliq import codec, tracing
from reliq.client import callbacks, replyto
from reliq.client.producer import MAX_DELAY, due_ms
from reliq.store import flow
from reliq.store.keys import InvalidName, check_name

from . import debouncing, validation
from .body import canonical, check_input, parse_json, read_body
from .outcome import outcome_response
from .problems import Problem
from .state import GatewayState, state_of

_DELAY = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
_ISO = re.compile(r"^PT(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


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


def traceparent(request: Request) -> str:
    """The caller's W3C trace context, stored with the invocation; an invalid one is ignored."""
    return tracing.valid_traceparent(request.headers.get("traceparent", ""))


def idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if key.startswith('"') and key.endswith('"') and len(key) >= 2:
        key = key[1:-1]  # structured-field string form of the IETF draft
    try:
        return codec.check_key(key)
    except ValueError as e:
        raise Problem(400, "Bad Request", str(e)) from None


def reply_to(request: Request) -> str | None:
    """``Reply-To: billing/on_charged``: the handler that is sent this invocation's outcome."""
    raw = request.headers.get("reply-to")
    if raw is None:
        return None
    service, slash, handler = raw.strip().partition("/")
    try:
        if not slash:
            raise InvalidName("Reply-To must be service/handler")
        return replyto.target((service, handler))
    except InvalidName as e:
        raise Problem(400, "Bad Request", f"invalid Reply-To {raw[:64]!r}: {e}") from None


def callback(request: Request, hosts: frozenset[str], reply: str | None) -> str | None:
    """``Callback-URL: https://hooks.example.com/x``: the outcome is POSTed there (signed) by the
    built-in callback handler; its host must be on ``RELIQ_CALLBACK_HOSTS`` (422 otherwise)."""
    raw = request.headers.get("callback-url")
    if raw is None:
        return reply
    if reply is not None:
        raise Problem(400, "Bad Request", "Reply-To and Callback-URL exclude each other")
    try:
        return f"{callbacks.TARGET} {callbacks.check_url(raw.strip(), hosts)}"
    except callbacks.CallbackHostRefused as e:
        raise Problem(422, "Unprocessable Content", f"Callback-URL refused: {e}") from None
    except callbacks.InvalidCallbackURL as e:
        raise Problem(400, "Bad Request", f"invalid Callback-URL: {e}") from None


def callable_key(fn: Callable[[Any], Any], typed: Any) -> str:
    """A callable concurrency key's value for the typed input; 422 when it fails or gives no
    valid key (a string or an integer), as register.lua answers for a field key."""
    try:
        return flow.key_value(fn(typed))
    except Exception as e:  # the user's callable: whatever it raises, nothing is placed
        detail = f"{flow.BAD_KEY} ({type(e).__name__}: {e})"[:500]
        raise Problem(422, "Unprocessable Content", detail) from None


async def _register(request: Request, st: GatewayState) -> Any:
    """Check every header, query parameter and the body, then place: a 4xx places nothing."""
    service, handler = request.path_params["service"], request.path_params["handler"]
    try:
        check_name("service", service)
        check_name("handler", handler)
    except InvalidName:
        raise Problem(404, "Not Found", "unknown service or handler") from None
    info = await st.catalog.lookup(service, handler)
    if info is None:
        raise Problem(404, "Not Found", f"no handler {service}/{handler} is registered")
    key = idempotency_key(request)
    delay = parse_delay(request.query_params.get("delay"))
    at = parse_at(request.query_params.get("at"))
    reply = callback(request, st.settings.callback_hosts, reply_to(request))
    debounced = debouncing.options(request, parse_delay, exclusive=bool(key or delay is not None or at))
    await st.admission.admit(service)
    raw = await read_body(request, st.settings.max_body, st.settings.body_timeout)
    # a handler without input may be called with an empty body; everyone else must send JSON
    value = None if not info.takes_input and not raw.strip() else parse_json(raw, st.settings.max_depth)
    flow_key = ""
    if info.input_type is not None and info.takes_input:
        typed = check_input(value, info.input_type)
        if info.flow_key is not None:  # a callable concurrency_key: computed here, where the code is
            flow_key = callable_key(info.flow_key, typed)
    elif info.validators and info.takes_input:  # no App: the schemas live workers publish
        validation.check(info.validators, value)
    await st.gate.require()
    t0 = time.perf_counter()
    if debounced is not None:
        place = partial(debouncing.place, st, service, handler, canonical(value), debounced, reply_to=reply)
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
            flow_key=flow_key,
        )
    if tracing.active():
        with tracing.span(f"reliq.place {service}.{handler}", traceparent(request), "server", {}) as tp:
            accepted = await place(trace=tp)
    else:
        accepted = await place(trace=traceparent(request))
    st.metrics.register_seconds.observe(time.perf_counter() - t0)
    return accepted


async def send(request: Request) -> Response:
    """Place an invocation (fire and forget): 202 once it is durably placed."""
    st = state_of(request)
    accepted = await _register(request, st)
    doc = {"id": accepted.id, "status": accepted.status, "durability": st.durability_level}
    return Response(
        msgspec.json.encode(doc),
        status_code=202,
        media_type="application/json",
        headers={
            "Location": f"/invocations/{accepted.id}",
            "Reliq-Durability": st.durability_level,
            "Reliq-Invocation-Id": accepted.id,
        },
    )


async def call(request: Request) -> Response:
    """Place an invocation and wait up to ``Prefer: wait=N`` for its result (holding a waiting
    slot from the start: when none is free, 429 and nothing is placed)."""
    st = state_of(request)
    # Prefer is checked before the invocation is placed: a bad one is a 400 that places nothing
    wait = prefer_wait(request.headers.get("prefer"), st.settings.default_wait, st.settings.max_wait)
    with st.waiting.slot():
        accepted = await _register(request, st)
        outcome = await st.client.wait(accepted.id, wait)
    headers = {"Reliq-Durability": st.durability_level}
    return outcome_response(accepted.id, outcome, headers)


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


routes = [
    Route("/send/{service}/{handler}", send, methods=["POST"]),
    Route("/call/{service}/{handler}", call, methods=["POST"]),
]
