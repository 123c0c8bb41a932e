"""Admission control: with ``max_backlog`` set, a service whose backlog (stream entries not yet
acked, over all its partitions) reached the limit gets 429 instead of more work, so a stalled or
slow consumer side pushes back on producers instead of filling Redis' memory. The backlog is
read at most every ``REFRESH_SECONDS`` per service: the check must not cost a round trip per
request, and a limit overshot by half a second of traffic is still a limit."""

from __future__ import annotations

import time

from reliq import Client

from .problems import Problem

REFRESH_SECONDS = 0.5


class Admission:
    def __init__(self, client: Client, limit: int | None) -> None:
        self.client, self.limit = client, limit
        self._backlog: dict[str, tuple[float, int]] = {}

    async def admit(self, service: str) -> None:
        """429 when the service's backlog is at or over the limit."""
        limit = self.limit
        if limit is None:
            return
        now = time.monotonic()
        hit = self._backlog.get(service)
        if hit is None or now - hit[0] > REFRESH_SECONDS:
            hit = self._backlog[service] = (now, await self.client.backlog(service))
        if hit[1] >= limit:
            raise Problem(
                429,
                "Too Many Requests",
                f"{service} has {hit[1]} invocations waiting (limit {limit})",
                headers={"Retry-After": "1"},
            )
