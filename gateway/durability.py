"""The durability gate: the gateway answers 2xx only at the durability level it was configured
for, and it verifies that the server gives that level (never assumes it). Until it does (Redis
not up yet, ``appendfsync everysec`` where ``fsync`` is wanted, no AOF behind ``replicas:N``)
every placement is a 503 whose detail says why, and ``/readyz`` says the same."""

from __future__ import annotations

import contextlib
import time

from redis.exceptions import RedisError

from reliq import Client, Durability

from .metrics import Metrics
from .problems import Problem

RECHECK_SECONDS = 1.0


class DurabilityGate:
    def __init__(self, wanted: str, client: Client, metrics: Metrics) -> None:
        self.wanted, self.client, self.metrics = wanted, client, metrics
        self.server: Durability | None = None
        self.refusal = "durability not checked yet"
        self._checked_at = 0.0

    def verify(self, server: Durability) -> None:
        """Accept the configured level only if the server can give it."""
        self.server = server
        wanted = self.wanted
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

    async def require(self) -> str:
        """The configured level, or 503 while it is refused. A refusal is re-checked against the
        server at most once a second (a gateway started before Redis, or a server reconfigured
        to fsync, recovers without waiting for a /readyz probe); the accepted path costs nothing."""
        if self.refusal and time.monotonic() - self._checked_at >= RECHECK_SECONDS:
            self._checked_at = time.monotonic()
            with contextlib.suppress(RedisError, OSError):  # still refused: the 503 says why
                self.verify(await self.client.durability())
        if self.refusal:
            raise Problem(503, "Service Unavailable", self.refusal, headers={"Retry-After": "5"})
        return self.wanted
