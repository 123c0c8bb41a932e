"""The connection edge: uvicorn's httptools protocol, guarded before a request reaches the app.

Before the app (and so before the token check) a connection costs memory and a socket. This
protocol bounds both for anyone who can connect:

- the request head (request line and header fields, as received) is at most
  ``max_header_bytes``, else **431**; the parser is never fed more than that (a pipelined head: at
  most one ``PIECE`` more), so a 64 MB header costs one read buffer, not 64 MB;
- the head must be complete ``header_timeout`` seconds after its first byte, else **408** and close;
- a connection that sends nothing (new, or between requests) is closed after ``idle_timeout``;
- past ``max_connections`` open connections, a new one is answered **503** at once and closed,
  without reading it;
- uvicorn's own 400 (malformed request line, header or ``Content-Length``) is problem+json too;
  like every answer of the edge, it is written after those owed to the requests before it on the
  connection (pipelining: ``gateway.last_word``), then the connection is closed;
- an ``Upgrade`` request (no WebSocket here) is read again as plain HTTP, its body included.

Three savings on the hot lane (``POST /send``, ``/call``; ``gateway.fastpath``):

- a request whose body has arrived whole before the app runs is marked ``scope[BODY_RECEIVED]``:
  reading it cannot wait, so ``gateway.body`` arms no body deadline for it;
- the answer's head and body leave in one write (``answer``, called by the lane) instead of
  uvicorn's two: one ``send`` system call per answer instead of two;
- a hot request whose body is whole in the read that ended its head skips uvicorn's ASGI cycle
  altogether (``gateway.wire``): ``on_headers_complete`` holds it back, ``on_body`` keeps its body,
  and ``on_message_complete`` hands it to the wire; one not whole by the end of that read is
  handed to uvicorn then (``_unwire``), as if nothing had been held.

``serve`` runs uvicorn with ``edge_protocol(settings)`` as its ``http`` protocol. The hot path
pays nothing new: a head that arrives in one read (the usual case) arms no timer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from functools import partial
from typing import Any, ClassVar

import httptools
from starlette.responses import Response
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from . import wire
from .last_word import LastWord, plain_head, problem
from .settings import GatewaySettings
from .wire import BODY_RECEIVED, encode

log = logging.getLogger("reliq.gateway")


async def answer(cycle: RequestResponseCycle, response: Response) -> None:
    """Write a whole (non-streaming) answer on ``cycle``'s connection in one ``write``: what
    uvicorn's ``send`` does for ``http.response.start`` then ``http.response.body``, without the
    two messages (the hot lane's answers have a Content-Length and no body to stream)."""
    if cycle.flow.write_paused and not cycle.disconnected:
        await cycle.flow.drain()
    if cycle.disconnected:
        return
    if cycle.response_started:
        raise RuntimeError("answer: the response has started already")
    cycle.response_started = True
    cycle.waiting_for_100_continue = False
    cycle.transport.write(encode(response, cycle.default_headers, cycle.keep_alive))
    cycle.response_complete = True
    cycle.message_event.set()
    if not cycle.keep_alive:
        cycle.transport.close()
    cycle.on_response()


CAP_LOG_EVERY = 10.0  # seconds between two "connection limit reached" warnings
PIECE = 4096  # bytes fed to the parser at once when a read is larger (see _feed_in_pieces)


class EdgeProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` with the limits of ``settings`` (see the module docstring)."""

    settings: ClassVar[GatewaySettings] = GatewaySettings()
    _cap_logged: ClassVar[float] = 0.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timeout_keep_alive = self.settings.idle_timeout  # type: ignore[assignment]
        self._reading_head = True  # from the first byte of a request until its headers are complete
        self._head_bytes = 0
        self._max_head = self.settings.max_header_bytes
        self._piece = min(PIECE, self._max_head)
        self._head_timer: asyncio.TimerHandle | None = None
        self._lane = wire.lane_of(self.app)  # None: an app without the hot lane (no wire)
        self._wired: bytearray | None = None  # the body so far of a request taking the wire
        self._idle_since: float | None = None  # loop time since when the connection is idle
        self._last_word: LastWord | None = None  # the problem answer that ends the connection

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.settings.max_connections:
            self.transport = transport
            if (now := time.monotonic()) - EdgeProtocol._cap_logged >= CAP_LOG_EVERY:
                EdgeProtocol._cap_logged = now
                log.warning("connection limit reached (%d): refusing new connections", len(self.connections))
            self._answer(503, "the gateway is at its connection limit; retry", (b"retry-after: 1\r\n",))
            return
        super().connection_made(transport)
        self._idle()  # a connection that never sends a byte is idle from the start

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        if self.timeout_keep_alive_task is not None:
            self.timeout_keep_alive_task.cancel()
            self.timeout_keep_alive_task = None
        super().connection_lost(exc)

    # The idle deadline is lazy: uvicorn arms a new timer after every answer and cancels it at the
    # next request's first byte (a timer made and dropped per request); here the connection notes
    # when it became idle, and one timer, made once per idle_timeout at most, checks that time.

    def _unset_keepalive_if_required(self) -> None:
        self._idle_since = None  # busy: a request is arriving or running

    def _idle(self) -> None:
        self._idle_since = self.loop.time()
        if self.timeout_keep_alive_task is None:
            self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self._idle_check)

    def _idle_check(self) -> None:
        self.timeout_keep_alive_task = None
        if self._idle_since is None:
            return  # busy: the next answer arms it again
        left = self._idle_since + self.timeout_keep_alive - self.loop.time()
        if left > 0:
            self.timeout_keep_alive_task = self.loop.call_later(left, self._idle_check)
        else:
            self.timeout_keep_alive_handler()

    def on_response_complete(self) -> None:
        """uvicorn's when a pipelined request is next (it starts it and arms no timer); else
        uvicorn's steps with the lazy idle deadline instead of a new timer."""
        if self.pipeline:
            super().on_response_complete()
            return
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        self._idle()

    def data_received(self, data: bytes) -> None:
        self._idle_since = None  # busy (_unset_keepalive_if_required, inline)
        if self._head_bytes + len(data) > self._piece:  # a large read, or a head past its first piece
            if not self._feed_in_pieces(data):
                return
        else:  # the usual case: the whole read goes to the parser at once
            self._head_bytes += len(data)  # reset when the head (or the message) is complete
            if not self._feed(data):
                return
        if self._wired is not None:  # its body is not whole in this read: uvicorn's way, as always
            body, self._wired = bytes(self._wired), None
            self._unwire(body, more_body=True)
        if self._reading_head and self._head_bytes and self._head_timer is None:
            self._head_timer = self.loop.call_later(self.settings.header_timeout, self._head_too_slow)

    def _feed_in_pieces(self, data: bytes) -> bool:
        """Feed the parser ``_piece`` bytes at a time, and of a head at most the bytes still
        allowed. The parser tells no position: a message that ends inside a piece leaves the rest
        of that piece uncounted in the next head (pipelining), so a head is cut at the cap plus
        one piece at most."""
        rest = memoryview(data)
        while rest:
            size = self._piece
            if self._reading_head:
                room = self._max_head - self._head_bytes
                if room <= 0:
                    self._answer(431, f"the request line and header fields exceed {self._max_head} bytes")
                    return False
                size = min(size, room)
            part, rest = rest[:size], rest[size:]
            self._head_bytes += len(part)  # reset when the head (or the message) is complete
            if not self._feed(part):
                return False
        return True

    def _feed(self, part: bytes | memoryview) -> bool:
        try:
            self.parser.feed_data(part)
        except httptools.HttpParserUpgrade as exc:  # the parser took the bytes after the head as not HTTP
            if super()._should_upgrade():  # a WebSocket protocol is configured (never by reliq gateway)
                self.handle_websocket_upgrade()
                return False
            if self.scope["method"] == "CONNECT":
                return False  # uvicorn's way: the app answers; no tunnel
            return self._as_plain_http(bytes(part[exc.args[0] :]))
        except httptools.HttpParserError as exc:
            reason = "" if isinstance(exc, httptools.HttpParserCallbackError) else f": {exc}"
            self._answer(400, f"malformed HTTP request{reason}")
            return False
        return True

    def _should_upgrade(self) -> bool:
        """Asked only about a request the parser takes for an upgrade: True leaves it to ``_feed``
        (no cycle, no body), which reads it again as plain HTTP; a CONNECT goes to the app."""
        return self.scope["method"] != "CONNECT"

    def _as_plain_http(self, rest: bytes) -> bool:
        """Read the ``Upgrade`` request just parsed (without its body: ``rest`` starts there) again,
        without that field, on a fresh parser: answered as plain HTTP, body included."""
        head = plain_head(self.scope["method"], self.url, self.scope["http_version"], self.headers)
        self.parser = httptools.HttpRequestParser(self)
        self.parser.set_dangerous_leniencies(lenient_data_after_close=True)
        return self._feed(head + rest)

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._head_bytes = 0
        if self._head_timer is not None:
            self._stop_head_timer()
        if self._lane is not None and wire.takes(self):
            self._wired = bytearray()  # answered by gateway.wire if the body is whole in this read
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if self._wired is not None:
            self._wired += body
        else:
            super().on_body(body)

    def _unwire(self, body: bytes, more_body: bool) -> None:
        """Hand the request that was to take the wire to uvicorn, with its body so far (the parser
        is still on its message: uvicorn's head handling runs as it would have)."""
        super().on_headers_complete()
        if body:
            self.on_body(body)
        if not more_body:
            super().on_message_complete()

    def on_message_complete(self) -> None:
        if self._wired is not None:
            body, self._wired = bytes(self._wired), None
            if self._lane is None or not wire.start(self, self._lane, body):
                self._unwire(body, more_body=False)
        else:
            super().on_message_complete()
        # this request's scope (pipelining: each has its own); an ASGI extension key of ours
        self.scope[BODY_RECEIVED] = True  # type: ignore[literal-required]
        self._reading_head = True
        self._head_bytes = 0

    def _head_too_slow(self) -> None:
        self._head_timer = None
        limit = self.settings.header_timeout
        self._answer(408, f"the request line and header fields took more than {limit:g} s")

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _answer(self, status: int, detail: str, headers: tuple[bytes, ...] = ()) -> None:
        """Answer ``status`` with a problem document and close, after the answers still owed to
        the requests before (pipelining: in order; the parser reads nothing more meanwhile)."""
        self._stop_head_timer()
        if self.transport.is_closing() or self._last_word is not None:
            return
        log.debug("edge answer %d to %s: %s", status, self.client, detail)
        make = partial(problem, status, detail, headers, self.server_state.default_headers)
        self._last_word = word = LastWord(self.transport, make)
        owed = self._owed()
        if owed is None:  # the refused request's answer has started: it cannot be replaced
            self.transport.close()
        elif owed:
            self.flow.pause_reading()
            self.pipeline.appendleft((word, None))  # type: ignore[arg-type]  # run when its turn comes
        else:
            word.say()

    def _owed(self) -> bool | None:
        """Whether answers to earlier requests are still owed (None: the refused one's has started)."""
        cycle = self.cycle
        if not self._reading_head and self._wired is None and cycle is not None:
            # the body of the request whose head came last broke off: that request is refused
            if self.pipeline and self.pipeline[0][0] is cycle:
                self.pipeline.popleft()  # queued behind one in flight: its refusal takes its place
                return True
            if cycle.response_started:
                return None
            cycle.disconnected = True  # its app sees the client gone; the answer is the 400
            cycle.message_event.set()
            return False
        return cycle is not None and not cycle.response_complete


def edge_protocol(settings: GatewaySettings) -> type[EdgeProtocol]:
    """The protocol class uvicorn runs for a gateway with ``settings``."""

    class GatewayEdge(EdgeProtocol):
        pass

    GatewayEdge.settings = settings
    return GatewayEdge
