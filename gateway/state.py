"""What the gateway keeps on ``app.state``: settings, the reliq Client, the catalog, metrics, and
the durability level it has verified (never assumed)."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

from redis.exceptions import RedisError
from starlette.requests import Request

from reliq import Client
from reliq.store.durability import Durability

from .catalog import Catalog
from .metrics import Metrics
from .placement import Placer
from .problems import Problem
from .settings import GatewaySettings


@dataclass(eq=False)
class GatewayState:
    settings: GatewaySettings
    client: Client
    catalog: Catalog
    placer: Placer
    metrics: Metrics = field(default_factory=Metrics)
    server: Durability | None = None
    refusal: str = "durability not checked yet"

    @property
    def durability_level(self) -> str:
        return self.settings.durability

    def verify(self, server: Durability) -> None:
        """Accept the configured level only if the server can give it."""
        self.server = server
        wanted = self.settings.durability
        if wanted == "fsync" and server.level != "fsync":
            self.refusal = (
                f"durability 'fsync' configured but the server gives {server.level!r} "
                f"(appendonly={server.appendonly}, appendfsync={server.appendfsync})"
            )
        elif wanted.startswith("replicas:") and not server.appendonly:
            self.refusal = "durability 'replicas' needs appendonly yes on the primary"
        else:
            self.refusal = ""
        self.metrics.set_durability(wanted if not self.refusal else "refused")

    _backlog: dict[str, tuple[float, int]] = field(default_factory=dict)

    async def admit(self, service: str) -> None:
        """429 when the service's backlog is over ``max_backlog`` (checked at most every 0.5 s)."""
        limit = self.settings.max_backlog
        if limit is None:
            return
        now = time.monotonic()
        hit = self._backlog.get(service)
        if hit is None or now - hit[0] > 0.5:
            parts = await self.client.partition_keys(service)
            hit = (now, sum([int(await self.client.redis.xlen(k.stream)) for k in parts]))
            self._backlog[service] = hit
        if hit[1] >= limit:
            raise Problem(
                429,
                "Too Many Requests",
                f"{service} has {hit[1]} invocations waiting (limit {limit})",
                headers={"Retry-After": "1"},
            )

    _checked_at: float = 0.0

    async def require_durability(self) -> str:
        """The configured level, or 503 while it is refused. A refusal is re-checked against the
        server at most once a second (a gateway started before Redis, or a server reconfigured
        to fsync, recovers without waiting for a /readyz probe); the accepted path costs nothing."""
        if self.refusal and time.monotonic() - self._checked_at >= 1.0:
            self._checked_at = time.monotonic()
            with contextlib.suppress(RedisError, OSError):  # still refused: the 503 says why
                self.verify(await self.client.durability())
        if self.refusal:
            raise Problem(503, "Service Unavailable", self.refusal, headers={"Retry-After": "5"})
        return self.settings.durability


def state_of(request: Request) -> GatewayState:
    st: GatewayState = request.app.state.reliq
    return st
