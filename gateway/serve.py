"""Running the gateway as a server: the bind rule and uvicorn's settings (its HTTP protocol is
``gateway.protocol``'s, with the header cap, the header and idle deadlines and the connection cap).

The bind rule: a gateway without API tokens answers anyone who can reach it, so it binds to
loopback only; asked for another address, it says so in the log and binds 127.0.0.1 instead.
``reliq gateway`` and ``reliq dev`` reach ``serve`` by name (``reliq.loading.GATEWAY_SERVE``),
so reliq never imports this package.
"""

from __future__ import annotations

import logging

import uvicorn

from .app import create_app
from .protocol import edge_protocol
from .settings import GatewaySettings

log = logging.getLogger("reliq.gateway")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


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


def serve(redis_url: str, host: str, port: int, app: str | None, durability: str) -> None:
    """Serve the gateway until SIGINT/SIGTERM. Settings not given here come from ``RELIQ_*``."""
    settings = GatewaySettings.from_env(redis_url=redis_url, app=app, durability=durability)
    host = bind_host(host, settings)
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        loop="uvloop",
        http=edge_protocol(settings),
        ws="none",  # no WebSocket routes: an Upgrade is answered as plain HTTP, under the edge's limits
        access_log=False,
    )
