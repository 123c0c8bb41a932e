"""``reliq`` command line: each command calls a library function and prints its result."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import sys
from typing import Any

import msgspec

from reliq import codec
from reliq.cli import admin as cli_admin
from reliq.cli.logs import setup as setup_logs
from reliq.client import Client
from reliq.service import App, Service
from reliq.store.topology import as_cluster_url
from reliq.worker.config import WorkerConfig

DEFAULT_URL = "redis://127.0.0.1:6379/0"


def load_app(spec: str) -> App:
    """Import ``module:attribute`` (an App or a Service)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise SystemExit(f"expected MODULE:ATTRIBUTE, got {spec!r}")
    sys.path.insert(0, os.getcwd())
    obj = getattr(importlib.import_module(module_name), attr)
    if not isinstance(obj, App | Service):
        raise SystemExit(f"{spec} is a {type(obj).__name__}, not a reliq App or Service")
    return App.of(obj)


def _partition_set(text: str | None) -> frozenset[int] | None:
    """``--partitions 0,2,5`` (or ``0-3``): the partitions this worker consumes."""
    if not text:
        return None
    out: set[int] = set()
    try:
        for part in text.split(","):
            lo, dash, hi = part.strip().partition("-")
            out.update(range(int(lo), int(hi) + 1) if dash else [int(lo)])
    except ValueError:
        raise SystemExit(f"--partitions: expected numbers like 0,2 or 0-3, got {text!r}") from None
    return frozenset(out)


def _worker_config(a: argparse.Namespace) -> WorkerConfig:
    return WorkerConfig(
        partitions=_partition_set(getattr(a, "partitions", None)),
        concurrency=a.concurrency,
        batch=a.batch,
        visibility_timeout=a.visibility_timeout,
        shutdown_grace=a.shutdown_grace,
        heartbeat_interval=a.heartbeat_interval,
        consumer=a.consumer,
        retention=a.retention,
    )


def _client_cmd(a: argparse.Namespace) -> None:
    async def go() -> Any:
        async with Client(a.redis_url) as c:
            if a.cmd == "send":
                acc = await c.send(
                    a.service, a.handler, codec.decode(a.payload.encode()), key=a.key, delay=a.delay
                )
                return {"id": acc.id, "status": acc.status}
            if a.cmd == "get":
                return await c.get(a.id)
            if a.cmd == "partitions":
                if a.count is not None:
                    lay = await c.set_partitions(a.service, a.count)
                else:
                    lay = await c.layout(a.service, fresh=True)
                keys = await c.partition_keys(a.service)
                nodes = {k.partition: await c.topology.owner(k.stream) for k in keys}
                return {**msgspec.structs.asdict(lay), "nodes": nodes} if any(nodes.values()) else lay
            return await c.durability()

    try:
        out = asyncio.run(go())
    except ValueError as e:  # bad name, id, key, count or payload: say so, no traceback
        raise SystemExit(f"reliq {a.cmd}: {e}") from None
    print(codec.encode(out).decode())


def _gateway(redis_url: str, host: str, port: int, app: str | None, durability: str) -> None:
    import uvicorn

    from gateway.app import create_app
    from gateway.settings import GatewaySettings

    settings = GatewaySettings.from_env(redis_url=redis_url, app=app, durability=durability)
    if not settings.tokens and host not in ("127.0.0.1", "localhost", "::1"):
        logging.getLogger("reliq.gateway").warning(
            "no API tokens configured (RELIQ_API_TOKENS or RELIQ_API_TOKENS_FILE): binding to "
            "127.0.0.1 only instead of %s",
            host,
        )
        host = "127.0.0.1"
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        timeout_keep_alive=5,
    )


def _dev(a: argparse.Namespace) -> None:
    """Embedded Valkey + N worker processes + the gateway; Ctrl-C stops all of it cleanly."""
    import subprocess

    from reliq.devserver.embedded import EmbeddedValkey

    load_app(a.app)  # fail early on a bad MODULE:APP
    with EmbeddedValkey(a.redis_port, a.data_dir, detach_signals=True) as server:
        cmd = [
            sys.executable,
            "-m",
            "reliq",
            "--redis-url",
            server.url,
            "worker",
            a.app,
            "--concurrency",
            str(a.concurrency),
            "--visibility-timeout",
            str(a.visibility_timeout),
            "--shutdown-grace",
            str(a.shutdown_grace),
            "--batch",
            str(a.batch),
            "--retention",
            str(a.retention),
        ]
        workers = [subprocess.Popen(cmd, start_new_session=True) for _ in range(max(0, a.workers))]
        print(
            f"reliq dev: valkey {server.url} (AOF, appendfsync always; data in {server.data_dir}); "
            f"{len(workers)} worker(s) for {a.app}; gateway http://127.0.0.1:{a.port} "
            f"(docs at /docs). Ctrl-C stops everything.",
            flush=True,
        )
        try:
            _gateway(server.url, "127.0.0.1", a.port, a.app, "fsync")
        finally:
            for w in workers:
                w.terminate()
            for w in workers:
                try:
                    w.wait(a.shutdown_grace + 10)
                except subprocess.TimeoutExpired:
                    w.kill()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="reliq", description="Reliable task queue and RPC on Redis streams")
    p.add_argument("--redis-url", default=os.environ.get("RELIQ_REDIS_URL", DEFAULT_URL))
    p.add_argument(
        "--cluster",
        action="store_true",
        default=os.environ.get("RELIQ_CLUSTER", "") not in ("", "0", "false"),
        help="the Redis URL names Redis/Valkey Cluster nodes (same as a redis+cluster:// URL)",
    )
    p.add_argument("--log-level", default=os.environ.get("RELIQ_LOG_LEVEL", "INFO"))
    p.add_argument(
        "--log-format", default=os.environ.get("RELIQ_LOG_FORMAT", "text"), choices=["text", "json"]
    )
    sub = p.add_subparsers(dest="cmd", required=True)

    w = sub.add_parser("worker", help="run the handlers of MODULE:APP")
    d = sub.add_parser("dev", help="embedded Valkey (AOF, fsync always) + a worker for MODULE:APP")
    for sp in (w, d):
        sp.add_argument("app")
        sp.add_argument("--concurrency", type=int, default=100, help="handlers running at once")
        sp.add_argument("--batch", type=int, default=100, help="entries read and claimed per call")
        sp.add_argument("--visibility-timeout", type=float, default=30.0)
        sp.add_argument("--shutdown-grace", type=float, default=30.0)
        sp.add_argument(
            "--heartbeat-interval", type=float, default=5.0, help="seconds; dead after 3 missed beats"
        )
        sp.add_argument("--retention", type=float, default=24 * 3600.0, help="seconds")
        sp.add_argument("--consumer", default=None, help="stable consumer name (default host-pid-rand)")
    w.add_argument(
        "--partitions", default=None, help="consume only these partitions, e.g. 0,2 or 0-3 (default all)"
    )
    d.add_argument("--redis-port", type=int, default=6379)
    d.add_argument("--port", type=int, default=8000, help="gateway port")
    d.add_argument("--workers", type=int, default=1, help="worker processes")
    d.add_argument("--data-dir", default=".reliq/data")

    gw = sub.add_parser("gateway", help="run the HTTP gateway (uvicorn, uvloop, httptools)")
    gw.add_argument("--host", default="127.0.0.1")
    gw.add_argument("--port", type=int, default=8000)
    gw.add_argument("--app", default=os.environ.get("RELIQ_APP"), help="MODULE:APP to validate bodies with")
    gw.add_argument(
        "--durability", default=os.environ.get("RELIQ_DURABILITY", "fsync"), help="none | fsync | replicas:N"
    )

    r = sub.add_parser("redis", help="run the embedded valkey-server in the foreground")
    r.add_argument("--port", type=int, default=6379)
    r.add_argument("--data-dir", default=".reliq/data")
    r.add_argument("--appendfsync", default="always", choices=["always", "everysec", "no"])

    s = sub.add_parser("send", help="register an invocation")
    s.add_argument("service")
    s.add_argument("handler")
    s.add_argument("payload", nargs="?", default="null", help="JSON")
    s.add_argument("--key", default=None)
    s.add_argument("--delay", type=float, default=None)
    g = sub.add_parser("get", help="status document of an invocation")
    g.add_argument("id")
    sub.add_parser("durability", help="what an ack from this server is worth")
    pa = sub.add_parser("partitions", help="show a service's partition layout, or set its count")
    pa.add_argument("service")
    pa.add_argument("count", nargs="?", type=int, default=None, help="new partition count (1-1024)")

    cli_admin.add_parsers(sub)

    for sp in sub.choices.values():  # `reliq worker APP --redis-url URL` works as well
        sp.add_argument("--redis-url", default=argparse.SUPPRESS, help="Redis URL (or RELIQ_REDIS_URL)")
        sp.add_argument("--cluster", action="store_true", default=argparse.SUPPRESS, help="see reliq --help")
    a = p.parse_args(argv)
    if a.cluster:
        a.redis_url = as_cluster_url(a.redis_url)
    setup_logs(a.log_level, a.log_format)
    if a.cmd == "redis":
        from reliq.devserver.embedded import serve

        serve(a.port, a.data_dir, appendfsync=a.appendfsync)
    elif a.cmd == "worker":
        from reliq.worker.run import run_worker

        run_worker(load_app(a.app), a.redis_url, _worker_config(a))
    elif a.cmd == "gateway":
        _gateway(a.redis_url, a.host, a.port, a.app, a.durability)
    elif a.cmd == "dev":
        _dev(a)
    elif a.cmd in cli_admin.COMMANDS:
        cli_admin.run(a)
    else:
        _client_cmd(a)
