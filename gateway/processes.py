"""``reliq gateway --workers N``: N gateway processes on one port (uvicorn's workers).

uvicorn starts each worker by spawning a fresh interpreter that imports the app factory
(``gateway.app:create_app``) and the HTTP protocol (``gateway.processes:EdgeFromEnv``) by name,
so a worker's settings travel through the environment: ``serve_processes`` exports the ones the
command line gave (``RELIQ_REDIS_URL``, ``RELIQ_APP``, ``RELIQ_DURABILITY``) next to the other
``RELIQ_*`` variables the parent read, and every worker builds the same ``GatewaySettings``.

Metrics: a fresh ``PROMETHEUS_MULTIPROC_DIR`` per run (any inherited one is replaced, so no count
of an earlier run leaks in), removed when the gateway exits; see ``gateway.metrics``.

What each process keeps for itself is correct per process because Redis holds the truth: the
catalog (2 s), the backlog of admission control (0.5 s) and the client's layout caches are each
re-read on expiry; a group commit batches the requests of its own process only (more processes,
smaller batches, the same guarantees); ``max_connections`` and ``max_waiters`` are per process.

Logging: the parent's level and format (``--log-level``, ``--log-format``) travel as
``RELIQ_LOG_LEVEL`` / ``RELIQ_LOG_FORMAT``; each worker sets its logging up from them before it
builds the app (``create_worker_app``), and uvicorn's own lines go through the same handler.

Signals are uvicorn's: SIGTERM/SIGINT stop every worker gracefully, SIGHUP restarts them one by
one, a worker that dies is replaced, a worker that fails at start stops the gateway.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile

import uvicorn
from fastapi import FastAPI

from reliq import logformat as logs

from .app import create_app
from .metrics import MULTIPROC_DIR
from .protocol import EdgeProtocol, edge_protocol
from .settings import GatewaySettings

FACTORY = "gateway.processes:create_worker_app"
PROTOCOL = "gateway.processes:EdgeFromEnv"


def __getattr__(name: str) -> type[EdgeProtocol]:
    """``EdgeFromEnv``: the edge protocol with the settings of the environment, built when a
    worker process imports it (not when the parent imports this module)."""
    if name == "EdgeFromEnv":
        return edge_protocol(GatewaySettings.from_env())
    raise AttributeError(name)


def create_worker_app() -> FastAPI:
    """The app factory a worker process imports: its logging as the parent's, then the app."""
    logs.setup(os.environ.get("RELIQ_LOG_LEVEL", "INFO"), os.environ.get("RELIQ_LOG_FORMAT", "text"))
    return create_app()


def _parent_logging() -> tuple[str, str]:
    """(level, format) the parent's root logger was set up with (``reliq.cli.logs.setup``)."""
    root = logging.getLogger()
    json_ = any(isinstance(h.formatter, logs.JsonFormatter) for h in root.handlers)
    return logging.getLevelName(root.getEffectiveLevel()), "json" if json_ else "text"


def serve_processes(settings: GatewaySettings, host: str, port: int, workers: int, grace: int) -> None:
    """Serve ``workers`` gateway processes on ``host:port`` until SIGINT/SIGTERM."""
    os.environ["RELIQ_REDIS_URL"] = settings.redis_url
    os.environ["RELIQ_DURABILITY"] = settings.durability
    os.environ["RELIQ_LOG_LEVEL"], os.environ["RELIQ_LOG_FORMAT"] = _parent_logging()
    if settings.app:
        os.environ["RELIQ_APP"] = settings.app
    directory = tempfile.mkdtemp(prefix="reliq-gateway-metrics-")
    os.environ[MULTIPROC_DIR] = directory
    try:
        uvicorn.run(
            FACTORY,
            factory=True,
            host=host,
            port=port,
            workers=workers,
            loop="uvloop",
            http=PROTOCOL,
            ws="none",
            access_log=False,
            log_config=None,  # uvicorn's loggers propagate to the root handler: one format
            timeout_graceful_shutdown=grace,
        )
    finally:
        os.environ.pop(MULTIPROC_DIR, None)
        shutil.rmtree(directory, ignore_errors=True)
