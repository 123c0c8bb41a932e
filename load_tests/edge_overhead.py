"""CPU per request of the HTTP protocol alone: uvicorn's httptools protocol vs the gateway's edge
protocol (gateway/protocol.py), on a typical ``POST /send`` that arrives in one read.

    .venv/bin/python -m load_tests.edge_overhead

Each round feeds the request to the protocol, marks the response complete (which arms the
keep-alive timer, as in production) and repeats; the ASGI app is not run. CPU time (not wall
time), best and median of 8 rounds of 50,000 requests, interleaved.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import uvloop
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from gateway.protocol import EdgeProtocol

REQUEST = (
    b"POST /send/bench/noop HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Type: application/json\r\n"
    b"Content-Length: 4\r\nUser-Agent: wrk\r\n\r\nnull"
)


async def app(scope: Any, receive: Any, send: Any) -> None: ...


class Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.closing = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 5555)}.get(name, default)

    def write(self, data: Any) -> None: ...

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


def per_request_us(cls: type[HttpToolsProtocol], n: int) -> float:
    config = Config(app=app, lifespan="off", http=cls, ws="none")
    config.load()
    p = cls(config=config, server_state=ServerState(), app_state={}, _loop=asyncio.get_running_loop())
    p.connection_made(Transport())
    p._start_asgi_task = lambda cycle, app: None  # type: ignore[method-assign]

    def one() -> None:
        p.data_received(REQUEST)
        p.cycle.response_complete = True
        p.on_response_complete()

    for _ in range(2000):
        one()
    t0 = time.process_time()
    for _ in range(n):
        one()
    took = time.process_time() - t0
    p.connection_lost(None)
    return took / n * 1e6


async def main() -> None:
    rounds: dict[str, list[float]] = {"uvicorn httptools": [], "gateway edge": []}
    for _ in range(8):
        rounds["uvicorn httptools"].append(per_request_us(HttpToolsProtocol, 50_000))
        rounds["gateway edge"].append(per_request_us(EdgeProtocol, 50_000))
    for name, us in rounds.items():
        print(f"{name:18} best {min(us):.2f} us, median {statistics.median(us):.2f} us per request")


if __name__ == "__main__":
    uvloop.run(main())
