"""Running the gateway as a server: the checks a newcomer meets first, the bind rule, the
shutdown, and uvicorn's settings (its HTTP protocol is ``gateway.protocol``'s, with the header
cap, the header and idle deadlines and the connection cap).

Before serving: the port must be free and Redis must answer, or ``serve`` ends with one line
(``SystemExit``, exit status 1) instead of a traceback or a gateway that answers 503 forever.

The bind rule: a gateway without API tokens answers anyone who can reach it, so it binds to
loopback only; asked for another address, it says so in the log and binds 127.0.0.1 instead.

SIGTERM (and SIGINT): stop accepting connections, let the requests in flight finish within
``RELIQ_SHUTDOWN_GRACE`` seconds (an integer, 30 by default), then exit with status 0. ``reliq gateway`` and
``reliq dev`` reach ``serve`` by name (``reliq.loading.GATEWAY_SERVE``), so reliq never imports
this package.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import threading
from types import FrameType

import uvicorn

from reliq import Client

from .app import create_app
from .processes import serve_processes
from .protocol import edge_protocol
from .settings import GatewaySettings

log = logging.getLogger("reliq.gateway")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
REDIS_CHECK_SECONDS = 5.0  # how long a starting gateway tries to reach Redis before giving up


def bind_host(host: str, settings: GatewaySettings) -> str:
    """``host``, or 127.0.0.1 when it is not loopback and no token guards the API."""
    if settings.tokens or host in LOOPBACK:
        return host
    log.warning(
        "no API tokens configured (RELIQ_API_TOKENS or RELIQ_API_TOKENS_FILE): binding to "
        "127.0.0.1 only instead of %s",
        host,
    )
    return "127.0.0.1"


def check_port(host: str, port: int) -> None:
    """One line and exit 1 when something already listens on ``host:port``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            s.bind((host, port))
        except OSError as e:
            raise SystemExit(f"reliq gateway: cannot listen on {host}:{port}: {e.strerror}") from None


async def _reachable(redis_url: str, timeout: float) -> str | None:
    """None when Redis answers within ``timeout`` seconds, else why not."""
    async with Client(redis_url) as client:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                await client.server_time_ms()
                return None
            except Exception as e:  # any failure to answer: reported in one line by the caller
                if asyncio.get_running_loop().time() > deadline:
                    return f"{type(e).__name__}: {e}"
                await asyncio.sleep(0.2)


def check_redis(redis_url: str, timeout: float = REDIS_CHECK_SECONDS) -> None:
    """One line and exit 1 when Redis does not answer at start."""
    why = asyncio.run(_reachable(redis_url, timeout))
    if why is not None:
        raise SystemExit(
            f"reliq gateway: Redis at {redis_url} is not reachable ({why}); start it (reliq redis) "
            "or point --redis-url / RELIQ_REDIS_URL at it"
        )


def _exit_zero(signum: int, frame: FrameType | None) -> None:
    """After uvicorn's graceful shutdown it re-raises the signal it caught; end with status 0."""
    raise SystemExit(0)


def serve(redis_url: str, host: str, port: int, app: str | None, durability: str, workers: int = 1) -> None:
    """Serve the gateway until SIGINT/SIGTERM, in this process or in ``workers`` processes
    (``gateway.processes``). Settings not given here come from ``RELIQ_*``."""
    try:
        settings = GatewaySettings.from_env(redis_url=redis_url, app=app, durability=durability)
        if workers < 1:
            raise ValueError(f"--workers must be >= 1, got {workers}")
        raw = os.environ.get("RELIQ_SHUTDOWN_GRACE", "30")
        if not raw.strip().isdigit():
            raise ValueError(f"RELIQ_SHUTDOWN_GRACE must be a whole number of seconds, not {raw!r}")
        grace = int(raw)
    except ValueError as e:  # a bad setting (--durability, RELIQ_*): a usage error, nothing started
        print(f"reliq gateway: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    host = bind_host(host, settings)
    check_port(host, port)
    check_redis(settings.redis_url)
    if workers > 1:
        if app:
            from reliq.loading import load_app

            load_app(app)  # a bad MODULE:APP: one line here, not N worker tracebacks
        serve_processes(settings, host, port, workers, grace)
        return
    api = create_app(settings)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _exit_zero)
    uvicorn.run(
        api,
        host=host,
        port=port,
        loop="uvloop",
        http=edge_protocol(settings),
        ws="none",  # no WebSocket routes: an Upgrade is answered as plain HTTP, under the edge's limits
        access_log=False,
        log_config=None,  # uvicorn's loggers propagate to reliq's handler: one format (--log-format)
        timeout_graceful_shutdown=grace,
    )
