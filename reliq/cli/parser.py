"""The ``reliq`` command line's grammar: every command and flag, with defaults from ``RELIQ_*``.

Parsing only; ``reliq.cli.main`` maps each parsed command to the one library call it makes.
"""

from __future__ import annotations

import argparse
import os

from reliq.cli import admin as cli_admin
from reliq.cli import argtypes as t
from reliq.cli import limits as cli_limits
from reliq.cli import schedules as cli_schedules
from reliq.cli import trees as cli_trees

DEFAULT_URL = "redis://127.0.0.1:6379/0"


def _worker_parsers(sub: argparse._SubParsersAction[t.Parser]) -> None:
    """``worker`` and ``dev`` share the worker tuning flags (``dev`` passes them on)."""
    w = sub.add_parser("worker", help="run the handlers of MODULE:APP")
    d = sub.add_parser(
        "dev", help="embedded Valkey (AOF, fsync always) + workers for MODULE:APP (default: the examples)"
    )
    w.add_argument("app", help="MODULE:APP, e.g. mymodule:app")
    d.add_argument("app", nargs="?", default=None, help="MODULE:APP (default reliq.examples.shop:app)")
    for sp in (w, d):
        sp.add_argument(
            "--concurrency",
            type=t.positive,
            default=None,
            help="handlers running at once, a hard cap (default: adaptive, 10..--max-concurrency)",
        )
        sp.add_argument(
            "--batch",
            type=t.positive,
            default=None,
            help="entries read and claimed per call (default: adaptive, half the limit, at most 500)",
        )
        sp.add_argument(
            "--readers",
            type=t.positive,
            default=3,
            help="read loops per partition while it has traffic (default 3; 1: one read at a time)",
        )
        sp.add_argument(
            "--max-concurrency",
            type=t.positive,
            default=1000,
            help="ceiling of the adaptive concurrency (default 1000)",
        )
        sp.add_argument(
            "--min-concurrency",
            type=t.positive,
            default=10,
            help="floor of the adaptive concurrency (default 10)",
        )
        sp.add_argument("--visibility-timeout", type=t.seconds(positive=True), default=30.0)
        sp.add_argument("--shutdown-grace", type=t.seconds(), default=30.0)
        sp.add_argument(
            "--heartbeat-interval",
            type=t.seconds(positive=True),
            default=5.0,
            help="seconds; dead after 3 missed beats",
        )
        sp.add_argument("--retention", type=t.seconds(positive=True), default=24 * 3600.0, help="seconds")
        sp.add_argument(
            "--suspend-after",
            type=t.seconds(),
            default=1.0,
            help="seconds a durable await (child, timer, promise) waits in memory before suspending",
        )
        sp.add_argument("--consumer", default=None, help="stable consumer name (default host-pid-rand)")
    w.add_argument(
        "--processes",
        type=t.positive,
        default=os.environ.get("RELIQ_PROCESSES", "").strip() or None,
        help="worker processes, supervised (default RELIQ_PROCESSES, else the usable cores; 1: this one)",
    )
    w.add_argument(
        "--partitions", default=None, help="consume only these partitions, e.g. 0,2 or 0-3 (default all)"
    )
    d.add_argument("--redis-port", type=t.port, default=6379)
    d.add_argument("--port", type=t.port, default=8000, help="gateway port")
    d.add_argument(
        "--workers", type=t.positive, default=1, help="worker processes (like reliq worker --processes)"
    )
    d.add_argument("--data-dir", default=".reliq/data")


def _server_parsers(sub: argparse._SubParsersAction[t.Parser]) -> None:
    gw = sub.add_parser("gateway", help="run the HTTP gateway (uvicorn, uvloop, httptools)")
    gw.add_argument("--host", default="127.0.0.1")
    gw.add_argument("--port", type=t.port, default=8000)
    gw.add_argument("--app", default=os.environ.get("RELIQ_APP"), help="MODULE:APP to validate bodies with")
    gw.add_argument(
        "--durability",
        type=t.durability,
        default=os.environ.get("RELIQ_DURABILITY", "fsync"),
        help="none | fsync | replicas:N",
    )
    gw.add_argument(
        "--workers",
        type=t.positive,
        default=os.environ.get("RELIQ_GATEWAY_WORKERS", "1"),
        help="gateway processes on the port (uvicorn's workers; metrics add up over them)",
    )
    r = sub.add_parser("redis", help="run the embedded valkey-server in the foreground")
    r.add_argument("--port", type=t.port, default=6379)
    r.add_argument("--data-dir", default=".reliq/data")
    r.add_argument("--appendfsync", default="always", choices=["always", "everysec", "no"])


def _client_parsers(sub: argparse._SubParsersAction[t.Parser]) -> None:
    s = sub.add_parser("send", help="register an invocation")
    s.add_argument("service")
    s.add_argument("handler")
    s.add_argument("payload", nargs="?", default="null", help="JSON")
    s.add_argument("--key", default=None)
    s.add_argument("--delay", type=t.seconds(), default=None)
    s.add_argument("--priority", default=None, help="high, normal or low (default: the handler's)")
    s.add_argument(
        "--no-check",
        action="store_true",
        help="skip the check that workers registered SERVICE/HANDLER and that the payload fits its schema",
    )
    g = sub.add_parser("get", help="status document of an invocation")
    g.add_argument("id")
    sub.add_parser("durability", help="what an ack from this server is worth")
    pa = sub.add_parser("partitions", help="show a service's partition layout, or set its count")
    pa.add_argument("service")
    pa.add_argument("count", nargs="?", type=int, default=None, help="new partition count (1-1024)")


def build_parser() -> argparse.ArgumentParser:
    p = t.Parser(prog="reliq", description="Reliable task queue and RPC on Redis streams")
    p.add_argument("--redis-url", type=t.redis_url, default=os.environ.get("RELIQ_REDIS_URL", DEFAULT_URL))
    p.add_argument(
        "--cluster",
        action="store_true",
        default=os.environ.get("RELIQ_CLUSTER", "") not in ("", "0", "false"),
        help="the Redis URL names Redis/Valkey Cluster nodes (same as a redis+cluster:// URL)",
    )
    p.add_argument("--log-level", type=t.log_level, default=os.environ.get("RELIQ_LOG_LEVEL", "INFO"))
    p.add_argument(
        "--log-format", default=os.environ.get("RELIQ_LOG_FORMAT", "text"), choices=["text", "json"]
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    _worker_parsers(sub)
    _server_parsers(sub)
    _client_parsers(sub)
    cli_admin.add_parsers(sub)
    cli_trees.add_parsers(sub)
    cli_schedules.add_parser(sub)
    cli_limits.add_parser(sub)
    for sp in sub.choices.values():  # `reliq worker APP --redis-url URL` works as well
        sp.add_argument(
            "--redis-url", type=t.redis_url, default=argparse.SUPPRESS, help="Redis URL (or RELIQ_REDIS_URL)"
        )
        sp.add_argument("--cluster", action="store_true", default=argparse.SUPPRESS, help="see reliq --help")
    return p
