"""``reliq limits show|set|clear SERVICE [HANDLER]``: the flow limits of a live service (issue
14). ``show`` prints the limits in force (the code's and an operator's override), the busiest keys,
the rate buckets and the intake (max_queued, backlog per priority level); ``set`` changes a
handler's limits at once on every worker, without a restart (``--concurrency-limit N``, ``--rate
100/s``, ``--burst N``, ``--suspended-keeps-permit yes|no``; 0 and ``0/s`` lift a limit);
``clear`` restores the code's. ``set SERVICE --max-queued N|none|code`` overrides the service's
backpressure limit (``none``: no limit; ``code``: the code's again) and prints the intake (with a
handler's options too: both documents). Each form calls library functions
(``reliq.admin.limits``, ``Client.set_max_queued``, ``reliq.admin.intake``) and prints their JSON.
A bad value is one line on stderr and exit 2, nothing written."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from typing import Any, Literal

from reliq import codec
from reliq.admin import intake, limits
from reliq.admin import overview as inspect
from reliq.cli import argtypes as t
from reliq.client import Client
from reliq.store import flow
from reliq.store.intake import MAX_QUEUED
from reliq.store.keys import check_name


def add_parser(sub: Any) -> None:
    p = sub.add_parser("limits", help="show, set or clear the flow limits of SERVICE's handlers, live")
    p.add_argument("action", choices=("show", "set", "clear"))
    p.add_argument("service")
    p.add_argument("handler", nargs="?", default=None, help="set/clear: the handler; show: only it")
    p.add_argument("--concurrency-limit", type=t.count, default=None, help="per key at once (0 lifts it)")
    p.add_argument("--rate", default=None, help="N/s, N/min or N/h (0/s lifts it)")
    p.add_argument("--burst", type=t.positive, default=None, help="starts at once within the rate")
    p.add_argument("--suspended-keeps-permit", choices=("yes", "no"), default=None)
    p.add_argument(
        "--max-queued", default=None, help="set: the service's backpressure limit, N, none or code"
    )
    p.add_argument("--top", type=t.page_limit, default=limits.TOP, help="show: keys listed")


def max_queued(value: str) -> int | Literal["none", "code"]:
    """``--max-queued``'s value; ``ValueError`` for anything but an integer in 0 .. ``MAX_QUEUED``
    (``Client.set_max_queued``'s bound, which HTTP's intake route applies too), none or code."""
    if value in ("none", "code"):
        return "none" if value == "none" else "code"
    if not (value.isascii() and value.isdigit()) or len(value) > 16 or int(value) > MAX_QUEUED:
        raise ValueError(
            f"--max-queued must be an integer from 0 to {MAX_QUEUED}, none or code, not {value!r}"
        )
    return int(value)


async def _call(a: argparse.Namespace) -> Any:
    who = f"cli:{getpass.getuser()}"
    async with Client(a.redis_url) as c:
        if not await inspect.known_service(c, a.service):
            raise ValueError(f"no service {a.service!r} is registered")
        if a.action == "show":
            if a.handler is not None:  # as set and clear do: not an empty list
                await _known(c, a.service, a.handler)
            return await limits.limits(c, a.service, handler=a.handler, top=a.top)
        if a.max_queued is not None and a.action != "set":
            raise ValueError("--max-queued goes with set (set SERVICE --max-queued code restores the code's)")
        queue = None if a.max_queued is None else max_queued(a.max_queued)
        if not a.handler and queue is None:
            raise ValueError(f"{a.action} needs SERVICE HANDLER" + " or --max-queued" * (a.action == "set"))
        if a.action == "clear":
            await _known(c, a.service, a.handler, " and it has no override to clear")
            return await limits.clear_limits(c, a.service, a.handler, who=who)
        keep = None if a.suspended_keeps_permit is None else a.suspended_keeps_permit == "yes"
        change = limits.LimitsChange(
            concurrency_limit=a.concurrency_limit,
            rate_limit=a.rate,
            burst=a.burst,
            suspended_keeps_permit=keep,
        )
        if queue is None:
            return await limits.set_limits(c, a.service, a.handler, change, who=who)
        done = None
        if change != limits.LimitsChange():  # a handler's options as well: checked before any write
            if not a.handler:
                raise ValueError("a handler's options need SERVICE HANDLER")
            done = await limits.set_limits(c, a.service, a.handler, change, who=who)
        await c.set_max_queued(a.service, queue, who=who)
        now = await intake.intake(c, a.service)
        return now if done is None else {"handler": done, "intake": now}


async def _known(c: Client, service: str, handler: str, why: str = "") -> None:
    """``ValueError`` unless ``handler`` is registered, has limits in the code or an override
    (an override outliving its handler's code stays clearable and shown); nothing is written
    otherwise."""
    k = c.keys(check_name("service", service))
    check_name("handler", handler)
    async with c.redis.pipeline(transaction=False) as p:
        p.hmget(flow.flow_keys(k)[0], [handler, handler + "!"])
        p.hexists(k.registry, handler)
        stored, registered = await p.execute()
    if not registered and not any(stored):
        raise ValueError(f"no handler {service}.{handler} is registered{why}")


def run(a: argparse.Namespace) -> None:
    try:
        out = asyncio.run(_call(a))
    except ValueError as e:  # a bad value or name: say so, no traceback, nothing written
        print(f"reliq limits: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    print(codec.encode(out).decode())
