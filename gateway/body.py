"""Read and check a request body: size limit (413, without reading past it), content type (415),
well-formed JSON without NaN/Infinity, bounded nesting and integer size (400), and the handler's
declared input type (422 with msgspec's error path). Returns canonical JSON bytes."""

from __future__ import annotations

from asyncio import timeout as deadline
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, TypeVar

import msgspec
from starlette.requests import ClientDisconnect, Request

from .problems import Problem

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
T = TypeVar("T")
_any = msgspec.json.Decoder()
_MEDIA = "send the payload as application/json"


def _depth(value: Any, limit: int) -> int:
    """Nesting depth, iteratively (no recursion on hostile input)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        if d > deepest:
            deepest = d
            if d > limit:
                return d
        if isinstance(v, dict):
            stack.extend((x, d + 1) for x in v.values())
        elif isinstance(v, list):
            stack.extend((x, d + 1) for x in v)
    return deepest


async def read_body(request: Request, max_body: int, timeout: float) -> bytes:
    """The body, within ``timeout`` seconds (408 otherwise: a trickling client holds nothing)."""
    h = request.headers
    return await receive_body(
        request.receive, h.get("content-type"), h.get("content-length"), max_body, timeout
    )


async def receive_body(
    receive: Receive,
    given: str | None,
    length: str | None,
    max_body: int,
    timeout: float | None,
) -> bytes:
    """``read_body`` from the ASGI ``receive`` and the two headers (the hot lane has no Request).
    ``timeout`` None: the body has arrived whole (``gateway.protocol.BODY_RECEIVED``), no deadline."""
    _check_head(given, length, max_body)
    if timeout is None:
        body = await _read(receive, max_body)
    else:
        try:
            async with deadline(timeout):
                body = await _read(receive, max_body)
        except TimeoutError:
            raise Problem(408, "Request Timeout", f"the body did not arrive within {timeout:g} s") from None
    if given is None and body:  # only an empty body may omit the type (a form always sends one)
        raise Problem(415, "Unsupported Media Type", _MEDIA)
    return body


def whole_body(body: bytes, given: str | None, length: str | None, max_body: int) -> bytes:
    """``receive_body``'s checks on a body the connection already read whole (``gateway.wire``)."""
    _check_head(given, length, max_body)
    if len(body) > max_body:
        raise Problem(413, "Content Too Large", f"the body limit is {max_body} bytes")
    if given is None and body:
        raise Problem(415, "Unsupported Media Type", _MEDIA)
    return body


def _check_head(given: str | None, length: str | None, max_body: int) -> None:
    """The Content-Type (JSON) and Content-Length (a number within the limit) of a body."""
    ctype = given.split(";")[0].strip().lower() if given is not None else "application/json"
    if ctype != "application/json" and not (ctype.startswith("application/") and ctype.endswith("+json")):
        raise Problem(415, "Unsupported Media Type", _MEDIA)
    if length is not None and (not length.isdigit() or int(length) > max_body):
        raise Problem(413, "Content Too Large", f"the body limit is {max_body} bytes")


async def _read(receive: Receive, max_body: int) -> bytes:
    message = await receive()  # the usual case: the whole body in one message
    if message["type"] != "http.request":
        raise ClientDisconnect()
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > max_body:
            raise Problem(413, "Content Too Large", f"the body limit is {max_body} bytes")
        return body
    chunks, size = [body], len(body)
    while True:
        if size > max_body:
            raise Problem(413, "Content Too Large", f"the body limit is {max_body} bytes")
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    if size > max_body:
        raise Problem(413, "Content Too Large", f"the body limit is {max_body} bytes")
    return b"".join(chunks)


def parse_json(raw: bytes, max_depth: int) -> Any:
    """Decode untrusted JSON; any defect is a 400."""
    if not raw.strip():
        raise Problem(400, "Bad Request", "the body is empty: send JSON (null for no input)")
    try:
        value = _any.decode(raw)
    except RecursionError:
        raise Problem(400, "Bad Request", f"JSON nested deeper than {max_depth} levels") from None
    except (msgspec.DecodeError, msgspec.ValidationError) as e:
        raise Problem(400, "Bad Request", f"malformed JSON: {e}") from None
    # every level opens a bracket: with no more brackets than levels allowed, no walk is needed
    if raw.count(b"[") + raw.count(b"{") > max_depth and _depth(value, max_depth) > max_depth:
        raise Problem(400, "Bad Request", f"JSON nested deeper than {max_depth} levels")
    return value


async def read_json(request: Request, max_body: int, timeout: float, max_depth: int) -> Any:
    """An admin route's JSON body, read and parsed as ``/send`` reads one: 415, 413 (before
    reading past the limit, and before a ``100 Continue``), 408 and 400 as above."""
    return parse_json(await read_body(request, max_body, timeout), max_depth)


def convert(value: Any, kind: type[T]) -> T:
    """A parsed body as the struct ``kind``; not that object (a wrong type, an unknown field) is
    a 400 whose detail names the JSON path."""
    try:
        return msgspec.convert(value, kind, strict=True)
    except msgspec.ValidationError as e:
        raise Problem(400, "Bad Request", str(e)) from None


def check_input(value: Any, input_type: Any) -> Any:
    """Validate against the handler's declared input type; a mismatch is a 422. Returns the
    typed value (what a callable flow key is computed from)."""
    try:
        return msgspec.convert(value, input_type, strict=True)
    except msgspec.ValidationError as e:
        raise Problem(422, "Unprocessable Content", str(e)) from None


def canonical(value: Any) -> bytes:
    return msgspec.json.encode(value)
