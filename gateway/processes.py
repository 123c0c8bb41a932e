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

Signals are uvicorn's: SIGTERM/SIGINT stop every worker gracefully, SIGHUP restarts them one by
one, a worker that dies is replaced, a worker that fails at start stops the gateway.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import uvicorn

from .metrics import MULTIPROC_DIR
from .protocol import EdgeProtocol, edge_protocol
from .settings import GatewaySettings

FACTORY = "gateway.app:create_app"
PROTOCOL = "gateway.processes:EdgeFromEnv"


def __getattr__(name: str) -> type[EdgeProtocol]:
    """``EdgeFromEnv``: the edge protocol with the settings of the environment, built when a
    worker process imports it (not when the parent imports this module)."""
    if name == "EdgeFromEnv":
        return edge_protocol(GatewaySettings.from_env())
    raise AttributeError(name)


def serve_processes(settings: GatewaySettings, host: str, port: int, workers: int, grace: int) -> None:
    """Serve ``workers`` gateway processes on ``host:port`` until SIGINT/SIGTERM."""
    os.environ["RELIQ_REDIS_URL"] = settings.redis_url
    os.environ["RELIQ_DURABILITY"] = settings.durability
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
            timeout_graceful_shutdown=grace,
        )
    finally:
        os.environ.pop(MULTIPROC_DIR, None)
        shutil.rmtree(directory, ignore_errors=True)
