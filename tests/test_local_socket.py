"""The embedded server's unix socket, with real processes: `EmbeddedValkey` and `reliq redis` listen
on `valkey.sock` in the data directory (mode 700) besides 127.0.0.1, `reliq dev`'s worker and
gateway connect through it, and a data directory whose socket path would be too long for a
socket address gets a server on TCP alone."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
from pathlib import Path

import redis

from reliq.devserver.embedded import SOCKET_NAME, SOCKET_PATH_MAX, EmbeddedValkey, free_port

from .conftest import wait_until
from .gateway.test_dev_e2e import reliq_dev
from .test_devserver import answers

ROOT = Path(__file__).resolve().parents[1]


def clients(port: int) -> list[dict[str, str]]:
    """Every client of the server on ``port`` but this one (``CLIENT LIST`` over TCP)."""
    with redis.Redis(port=port) as r:
        me = r.client_id()
        return [c for c in r.client_list() if int(c["id"]) != me]


def test_the_embedded_server_listens_on_a_private_socket_in_its_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "a b?#%"  # quoted in the URL: still the one path
    with EmbeddedValkey(data_dir=data) as server:
        sock = data / SOCKET_NAME
        mode = sock.stat().st_mode
        assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o700
        assert server.local_url.startswith("unix://") and server.local_url != server.url
        with redis.Redis.from_url(server.local_url) as r:
            r.set("k", "v")
            assert str(sock) in r.client_info()["addr"]
        with redis.Redis.from_url(server.url) as r:
            assert r.get("k") == b"v"  # one server behind both
        server.kill()  # a restart after a crash listens on it again
        server.start()
        with redis.Redis.from_url(server.local_url) as r:
            assert r.get("k") == b"v"


def test_a_data_dir_too_deep_for_a_socket_gets_tcp_alone(tmp_path: Path) -> None:
    data = tmp_path / ("d" * max(1, SOCKET_PATH_MAX - len(os.fsencode(tmp_path)) - len(SOCKET_NAME)))
    assert len(os.fsencode(data / SOCKET_NAME)) > SOCKET_PATH_MAX
    with EmbeddedValkey(data_dir=data) as server:
        assert server.local_url == server.url
        assert not (data / SOCKET_NAME).exists()
        with redis.Redis.from_url(server.local_url) as r:
            assert r.ping()


async def test_reliq_redis_listens_on_the_socket_too(tmp_path: Path) -> None:
    data, port = tmp_path / "data", free_port()
    proc = subprocess.Popen(  # noqa: ASYNC220
        [sys.executable, "-m", "reliq", "redis", "--port", str(port), "--data-dir", str(data)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
    )
    try:
        await wait_until(lambda: answers(port), what="reliq redis up")
        with redis.Redis(unix_socket_path=str(data / SOCKET_NAME)) as r:
            assert r.ping()
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 15)


async def test_reliq_dev_processes_reach_valkey_over_its_socket(tmp_path: Path) -> None:
    async with reliq_dev(tmp_path) as (_, http, redis_port):
        r = await http.post("/call/orders/place", json={"order_id": "o1", "amount_cents": 5})
        assert r.status_code == 200, r.text  # the gateway and the worker both did their part
        sock = str(tmp_path / "data" / SOCKET_NAME)
        others = await asyncio.to_thread(clients, redis_port)
        assert others and all(sock in c["addr"] for c in others), others
        assert f"and unix://{tmp_path}/data/{SOCKET_NAME}?db=0" in (tmp_path / "dev.log").read_text()
