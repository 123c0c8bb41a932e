"""A client that goes away mid-request, and Redis going away under a gateway (QA, session 15):
neither is a 500 or a traceback in the gateway's log. A client gone mid-body is counted as 499
(nobody is left to answer); a read while Redis is down answers 503 saying so, not the
"may or may not be placed" of a send."""

from __future__ import annotations

import asyncio
import socket
import urllib.request
from pathlib import Path

import httpx

from reliq.devserver.embedded import EmbeddedValkey, free_port

from ..conftest import Names, running, wait_until
from .test_ingress import shop
from .test_protocol import gateway_process


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        return str(r.read().decode())


def _log(tmp_path: Path) -> str:
    return next(tmp_path.glob("gw-*.log")).read_text()


async def test_a_client_gone_mid_body_is_counted_not_a_500(
    valkey: EmbeddedValkey, names: Names, tmp_path: Path
) -> None:
    svc = shop(names())
    async with running(svc, valkey.url):  # publishes the registry the gateway reads
        pass
    with gateway_process(valkey.url, tmp_path) as (port, _):
        head = (
            f"POST /send/{svc.name}/place HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        )
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(head.encode() + b'{"or')  # 4 of 100 bytes, then gone

        async def counted() -> bool:
            return 'route="/send",status="499"} 3.0' in await asyncio.to_thread(_metrics, port)

        await wait_until(counted, timeout=20, what="three requests counted as 499")
        assert 'status="500"' not in await asyncio.to_thread(_metrics, port)
    log = _log(tmp_path)
    assert "Traceback" not in log and "unhandled error" not in log, log


async def test_while_redis_is_down_a_read_says_so_and_the_metrics_still_answer(tmp_path: Path) -> None:
    server = EmbeddedValkey(port=free_port(), data_dir=tmp_path / "v")
    server.start()
    with gateway_process(server.url, tmp_path) as (port, _):
        server.stop()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            read = await http.get("/invocations/orders.abcdefghijklmnopqrstuvwxyz")
            send = await http.post("/send/orders/place", json={"order_id": "o"})
            scrape = await http.get("/metrics")
    assert read.status_code == 503 and read.headers["content-type"] == "application/problem+json"
    assert read.json()["detail"] == "Redis is unavailable; retry later"
    assert send.status_code in (503, 404)  # the catalog may answer first: never "placed"
    assert scrape.status_code == 200 and "reliq_gateway_redis_up 0.0" in scrape.text  # not dark
    log = _log(tmp_path)
    assert "Traceback" not in log, log
