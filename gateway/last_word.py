"""The connection edge's own answers (``gateway.protocol``): the problem document that ends a
connection (400 for a malformed request, 408, 431, 503), and the re-reading of an ``Upgrade``
request as plain HTTP.

A connection's answers leave in the order of its requests (HTTP/1.1 pipelining): when a
malformed request follows requests whose answers are still owed (an ASGI cycle or a wired request
in flight, requests queued behind it), its problem answer is a ``LastWord`` queued behind them in
uvicorn's pipeline, written and the connection closed when its turn comes.
"""

from __future__ import annotations

import http
from collections.abc import Callable
from typing import Any

import msgspec
from uvicorn.protocols.http.httptools_impl import STATUS_LINE

from .problems import PROBLEM


def problem(
    status: int, detail: str, headers: tuple[bytes, ...], defaults: list[tuple[bytes, bytes]]
) -> bytes:
    """A whole problem+json answer that closes the connection: status line, uvicorn's default
    headers (date, server), ``headers``, then the document."""
    title = http.HTTPStatus(status).phrase
    body = msgspec.json.encode({"type": "about:blank", "title": title, "status": status, "detail": detail})
    head = [STATUS_LINE[status], *[b"%s: %s\r\n" % kv for kv in defaults]]
    head += [b"content-type: ", PROBLEM.encode(), b"\r\ncontent-length: %d\r\n" % len(body)]
    head += [*headers, b"connection: close\r\n\r\n", body]
    return b"".join(head)


class LastWord:
    """A problem answer queued in uvicorn's pipeline where a ``RequestResponseCycle`` would be:
    uvicorn starts it (``run_asgi``) once the answers before it are written; it writes its bytes
    (made then: the ``date`` header is current) and closes the connection."""

    __slots__ = ("disconnected", "keep_alive", "make", "message_event", "response_complete", "transport")

    def __init__(self, transport: Any, make: Callable[[], bytes]) -> None:
        self.transport, self.make = transport, make
        self.keep_alive, self.response_complete, self.disconnected = False, False, False
        self.message_event = self  # uvicorn sets it on connection loss: nothing waits on it

    def set(self) -> None:
        """``message_event.set()``: nothing to wake."""

    def say(self) -> None:
        """Write the answer (unless the connection is gone) and close."""
        self.response_complete = True
        if not self.disconnected and not self.transport.is_closing():
            self.transport.write(self.make())
        self.transport.close()

    async def run_asgi(self, app: object) -> None:
        """What uvicorn runs for the request whose turn has come (``app`` is not called)."""
        self.say()


def plain_head(method: str, url: bytes, version: str, headers: list[tuple[bytes, bytes]]) -> bytes:
    """The head of a request that asked for an ``Upgrade``, without that field: fed to a fresh
    parser, the request is read as plain HTTP, its body included (the parser otherwise takes the
    bytes after the head for the other protocol's)."""
    lines = [b"%s %s HTTP/%s\r\n" % (method.encode("ascii"), url, version.encode("ascii"))]
    lines += [b"%s: %s\r\n" % (name, value) for name, value in headers if name != b"upgrade"]
    return b"".join([*lines, b"\r\n"])
