"""What ``gateway.edge.Edge`` (Host, cross-site and HEAD checks) adds to every request on the hot
lane: the same ``POST /send`` scope through a no-op ASGI app, with and without Edge in front
(uvloop, 200k calls, best of 5), for an open gateway and one with tokens.

    .venv/bin/python -m load_tests.bench_edge
"""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from typing import Any

import uvloop

from gateway.edge import ASGIApp, Edge
from gateway.settings import GatewaySettings

HEADERS = [
    (b"host", b"127.0.0.1:8000"),
    (b"user-agent", b"wrk"),
    (b"accept", b"*/*"),
    (b"content-type", b"application/json"),
    (b"idempotency-key", b"k-123"),
    (b"content-length", b"4"),
]


async def noop(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
    return None


async def per_call_ns(app: ASGIApp, n: int) -> float:
    scope = {"type": "http", "method": "POST", "path": "/send/bench/noop", "headers": HEADERS}
    scope["server"] = ("127.0.0.1", 8000)
    t = time.perf_counter()
    for _ in range(n):
        await app(scope, noop, noop)
    return (time.perf_counter() - t) / n * 1e9


async def main(n: int = 200_000) -> None:
    for label, settings in (("open", GatewaySettings()), ("tokens", GatewaySettings(tokens=("s",)))):
        base = min([await per_call_ns(noop, n) for _ in range(5)])
        edged = min([await per_call_ns(Edge(noop, settings), n) for _ in range(5)])
        print(f"{label}: Edge adds {edged - base:.0f} ns per request ({base:.0f} -> {edged:.0f} ns)")


if __name__ == "__main__":
    uvloop.run(main())
