"""Operator overrides of a service's intake (``reliq.store.intake``), written to every partition."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from reliq.store import intake

if TYPE_CHECKING:
    from reliq.client import Client


async def set_max_queued(
    client: Client, service: str, limit: int | Literal["none", "code"], *, who: str = ""
) -> None:
    """Override the service's ``max_queued`` live (the next registration sees it): a number,
    ``"none"`` (no limit) or ``"code"`` (drop the override: the code's ``Service(max_queued=)``
    applies again). ``who``: audited under that name (``max-queued-set``) in each partition's
    audit stream, in the same script call as the change ('' = a library call, not audited)."""
    if limit not in ("none", "code"):
        try:
            intake.check_max_queued(limit)
        except ValueError:
            bound = f"an integer from 0 to {intake.MAX_QUEUED}"
            raise ValueError(f"max_queued must be {bound}, 'none' or 'code', not {limit!r}") from None
    parts = await client.partition_keys(service)  # every partition that may hold work ...
    value = intake.override_value(limit, (await client.layout(service)).partitions)  # ... new work: p
    for k in parts:
        await client.scripts.set_intake(k, value, str(limit), who)
