"""A small asyncio TCP proxy between reliq (gateways, workers) and Valkey that misbehaves on
demand (there is no toxiproxy here; research/reliability.md App. C).

Modes: ``pass``; ``blackhole`` (nothing flows either way, new connections hang); ``drop``
(requests reach Valkey, replies are thrown away: the caller cannot know whether its write
happened). TCP never loses bytes in the middle of a live connection, so when a fault heals every
connection that lost bytes is reset: the peer sees a dead connection, never a desynchronised one.
``reset()`` aborts every open connection at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Literal

Mode = Literal["pass", "blackhole", "drop"]
CHUNK = 65536


class _Link:
    """One client connection and its upstream connection."""

    def __init__(self, client: asyncio.StreamWriter, upstream: asyncio.StreamWriter) -> None:
        self.client, self.upstream = client, upstream
        self.tainted = False  # bytes were dropped: this link must die when the fault heals

    def abort(self) -> None:
        for w in (self.client, self.upstream):
            with contextlib.suppress(Exception):
                w.transport.abort()


class FaultProxy:
    """``async with FaultProxy(upstream_port) as p: p.port`` -> point reliq at ``p.url``."""

    def __init__(self, upstream_port: int, host: str = "127.0.0.1") -> None:
        self.host, self.upstream_port = host, upstream_port
        self.mode: Mode = "pass"
        self.port = 0
        self._links: set[_Link] = set()
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    async def __aenter__(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._accept, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
        self.reset()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    def set_mode(self, mode: Mode) -> None:
        """Switch mode; healing to ``pass`` resets every link that lost bytes meanwhile."""
        self.mode = mode
        if mode == "pass":
            for link in [lk for lk in self._links if lk.tainted]:
                link.abort()

    def reset(self) -> int:
        """Abort every open connection (both sides see a reset); returns how many."""
        links = list(self._links)
        for link in links:
            link.abort()
        return len(links)

    @property
    def connections(self) -> int:
        return len(self._links)

    async def _accept(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        try:
            ur, uw = await asyncio.wait_for(asyncio.open_connection(self.host, self.upstream_port), 5)
        except (OSError, TimeoutError):
            cw.transport.abort()  # upstream down: the client sees a refused/reset connection
            return
        link = _Link(cw, uw)
        self._links.add(link)
        try:
            await asyncio.gather(self._pipe(cr, uw, link, reply=False), self._pipe(ur, cw, link, reply=True))
        finally:
            self._links.discard(link)
            link.abort()

    async def _pipe(
        self, r: asyncio.StreamReader, w: asyncio.StreamWriter, link: _Link, *, reply: bool
    ) -> None:
        try:
            while data := await r.read(CHUNK):
                if self.mode == "blackhole" or (self.mode == "drop" and reply):
                    link.tainted = True
                    continue
                w.write(data)
                await w.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            link.abort()  # one side closed: close the other, like a real connection
