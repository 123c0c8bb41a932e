"""Operator overrides of a service's intake (``reliq.store.intake``), written to every partition."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from reliq.store import intake

if TYPE_CHECKING:
    from reliq.client import Client


async def set_max_queued(client: Client, service: str, limit: int | Literal["none", "code"]) -> None:
    """Override the service's ``max_queued`` live (the next registration sees it): a number,
    ``"none"`` (no limit) or ``"code"`` (drop the override: the code's ``Service(max_queued=)``
    applies again)."""
    if isinstance(limit, int) and (isinstance(limit, bool) or limit < 0):
        raise ValueError("max_queued must be an integer >= 0, 'none' or 'code'")
    await intake.override(client.redis, await client.partition_keys(service), limit)
