"""Where an accepted invocation's outcome goes and which line it waits in: from the headers of
``/send`` and ``/call`` (``Reply-To``, ``Callback-URL``, ``Priority``), and the flow key a callable
``concurrency_key`` computes from the typed input. Each bad value is a 4xx problem and nothing is
placed."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from reliq.client import callbacks, replyto
from reliq.store import flow
from reliq.store.keys import InvalidName
from reliq.store.priority import PRIORITIES

from .problems import Problem


def reply_to(headers: Mapping[str, str]) -> str | None:
    """``Reply-To: billing/on_charged``: the handler that is sent this invocation's outcome."""
    raw = headers.get("reply-to")
    if raw is None:
        return None
    service, slash, handler = raw.strip().partition("/")
    try:
        if not slash:
            raise InvalidName("Reply-To must be service/handler")
        return replyto.target((service, handler))
    except InvalidName as e:
        raise Problem(400, "Bad Request", f"invalid Reply-To {raw[:64]!r}: {e}") from None


def callback(headers: Mapping[str, str], hosts: frozenset[str], reply: str | None) -> str | None:
    """``Callback-URL: https://hooks.example.com/x``: the outcome is POSTed there (signed) by the
    built-in callback handler; its host must be on ``RELIQ_CALLBACK_HOSTS`` (422 otherwise)."""
    raw = headers.get("callback-url")
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


def priority(headers: Mapping[str, str]) -> str | None:
    """``Priority: high|normal|low`` (absent: the handler's default). A value in the form of RFC
    9218's header (``u=3, i``: what browsers send about fetch order) is not ours: ignored."""
    raw = headers.get("priority")
    if raw is None:
        return None
    value = raw.strip().lower()
    if value in PRIORITIES:
        return value
    if value.startswith(("u=", "i")):
        return None
    raise Problem(400, "Bad Request", f"invalid Priority {raw[:64]!r}: use high, normal or low")


def callable_key(fn: Callable[[Any], Any], typed: Any) -> str:
    """A callable concurrency key's value for the typed input; 422 when it fails or gives no
    valid key (a string or an integer), as register.lua answers for a field key."""
    try:
        return flow.key_value(fn(typed))
    except Exception as e:  # the user's callable: whatever it raises, nothing is placed
        detail = f"{flow.BAD_KEY} ({type(e).__name__}: {e})"[:500]
        raise Problem(422, "Unprocessable Content", detail) from None
