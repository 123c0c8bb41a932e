"""Flow control from the Client: a callable concurrency key computed where the code is, and an
operator's live override of a handler's limits (``reliq:{S}:flow`` field ``<handler>!`` in every
partition; the scripts read it on their next call). Bound as ``Client`` methods."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from reliq.client.producer import SendArgs
from reliq.store import flow
from reliq.store.keys import check_name

if TYPE_CHECKING:
    from reliq.client import Client


def key_option(ref: Any, payload: Any, opts: SendArgs) -> SendArgs:
    """``Client.send(fn, input)`` of a handler whose ``concurrency_key`` is a callable: its value
    for ``input`` joins the options (register.lua refuses such a send without one)."""
    keyfn = getattr(ref, "__reliq_flow_key__", None)
    if keyfn is None:
        return opts
    return cast(SendArgs, {**opts, "flow_key": flow.key_value(keyfn(payload))})


async def set_override(
    client: Client,
    service: str,
    handler: str,
    /,
    *,
    limit: int | None = None,
    rate_limit: str | None = None,
    burst: int | None = None,
    suspended_keeps_permit: bool | None = None,
    clear: bool = False,
) -> flow.FlowOverride | None:
    """Change a handler's limits on a live service: ``limit`` (0 lifts it), ``rate_limit``
    (``"N/s"``; ``"0/s"`` lifts it), ``burst``, ``suspended_keeps_permit``; unset ones keep the
    code's values. ``clear=True`` removes the override (the code's values apply again). Written
    to every partition; a raised limit admits waiters at once. Returns the override in force."""
    check_name("service", service)
    check_name("handler", handler)
    override = None
    if not clear:
        rate = per = None
        if rate_limit is not None:
            rate, per = (0, 1000) if rate_limit.strip().startswith("0/") else flow.parse_rate(rate_limit)
        if limit is not None and (type(limit) is not int or limit < 0):
            raise ValueError(f"limit must be an int >= 0, not {limit!r}")
        if burst is not None and (type(burst) is not int or burst < 1):
            raise ValueError(f"burst must be an int >= 1, not {burst!r}")
        override = flow.FlowOverride(
            limit=limit, rate=rate, per=per, burst=burst, keep=suspended_keeps_permit
        )
    value = b"" if override is None else flow.encode(override)
    for k in await client.partition_keys(service):
        # set_limits.lua: writes (or clears) the field and, in the same call, admits the waiters a
        # raised limit lets in; audited
        await client.scripts.set_limits(k, handler, value, "client")
    return override
