"""The gateway's CPU per ``POST /send`` in the lane itself, without HTTP: ``Lane.respond`` (edge and
token checks, counting, ingress, the group commit through redis-py) called in-process by 64
concurrent callers, against an embedded Valkey (AOF, ``appendfsync always``), app
``load_tests.noop_app:bench``, body ``null``, the request as the hot wire hands it over (body read
whole). Reports this process's CPU time per request (``time.process_time``; Valkey's is not
counted) and the wall time.

The gateway that runs is the one on ``PYTHONPATH``, so the same file measures another checkout;
alternate the two, the machine's speed drifts:

    PYTHONPATH=. python load_tests/lane_cost.py
    PYTHONPATH=/path/to/other python load_tests/lane_cost.py
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import uvloop

from gateway.app import create_app
from gateway.settings import GatewaySettings
from reliq.devserver.embedded import EmbeddedValkey

CALLERS = 64
BODY = b"null"


async def measure(url: str, n: int, warmup: int = 200) -> dict[str, float]:
    api = create_app(GatewaySettings(redis_url=url, app="load_tests.noop_app:bench", durability="fsync"))
    headers = [
        (b"host", b"127.0.0.1:8000"),
        (b"content-type", b"application/json"),
        (b"content-length", b"4"),
    ]
    scope: dict[str, Any] = {
        "type": "http",
        "method": "POST",
        "path": "/send/bench/noop",
        "query_string": b"",
        "headers": headers,
        "server": ("127.0.0.1", 8000),
        "app": api,
        "reliq.hot": ("send", "bench", "noop"),
        "reliq.body_received": True,
        "reliq.body": BODY,  # what gateway.wire leaves (an older gateway reads the body from receive)
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": BODY, "more_body": False}

    async with api.router.lifespan_context(api):
        lane = api.lane
        assert lane is not None

        async def caller(requests: int) -> None:
            for _ in range(requests):
                response = await lane.respond(dict(scope), receive)
                assert response.status_code == 202, bytes(response.body)

        await asyncio.gather(*(caller(warmup) for _ in range(CALLERS)))  # warm-up: caches, connections
        each = n // CALLERS
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(caller(each) for _ in range(CALLERS)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    done = each * CALLERS
    return {"cpu_us_per_req": 1e6 * cpu / done, "wall_us_per_req": 1e6 * wall / done}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=30000, help="requests measured")
    p.add_argument("--warmup", type=int, default=200, help="requests per caller before measuring")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as d, EmbeddedValkey(data_dir=Path(d) / "valkey") as server:
        r = uvloop.run(measure(server.url, a.n, a.warmup))
    print(f"lane: {r['cpu_us_per_req']:.1f} us CPU per request, {r['wall_us_per_req']:.1f} us wall")


if __name__ == "__main__":
    main()
