"""``reliq limits show|set|clear SERVICE [HANDLER]``: the flow limits of a live service (issue
14). ``show`` prints the limits in force (the code's and an operator's override), the busiest keys
and the rate buckets; ``set`` changes a handler's limits at once on every worker, without a
restart (``--concurrency-limit N``, ``--rate 100/s``, ``--burst N``, ``--suspended-keeps-permit
yes|no``; 0 and ``0/s`` lift a limit); ``clear`` restores the code's. Each form calls one
function of ``reliq.admin.limits`` and prints its JSON document. A bad value is one line on
stderr and exit 2, nothing written."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from typing import Any

from reliq import codec
from reliq.admin import limits
from reliq.admin import overview as inspect
from reliq.client import Client


def add_parser(sub: Any) -> None:
    p = sub.add_parser("limits", help="show, set or clear the flow limits of SERVICE's handlers, live")
    p.add_argument("action", choices=("show", "set", "clear"))
    p.add_argument("service")
    p.add_argument("handler", nargs="?", default=None, help="set/clear: the handler; show: only it")
    p.add_argument("--concurrency-limit", type=int, default=None, help="per key at once (0 lifts it)")
    p.add_argument("--rate", default=None, help="N/s, N/min or N/h (0/s lifts it)")
    p.add_argument("--burst", type=int, default=None, help="starts at once within the rate")
    p.add_argument("--suspended-keeps-permit", choices=("yes", "no"), default=None)
    p.add_argument("--top", type=int, default=limits.TOP, help="show: keys listed")


async def _call(a: argparse.Namespace) -> Any:
    who = f"cli:{getpass.getuser()}"
    async with Client(a.redis_url) as c:
        if not await inspect.known_service(c, a.service):
            raise ValueError(f"no service {a.service!r} is registered")
        if a.action == "show":
            return await limits.limits(c, a.service, handler=a.handler, top=a.top)
        if not a.handler:
            raise ValueError(f"{a.action} needs SERVICE HANDLER")
        if a.action == "clear":
            return await limits.clear_limits(c, a.service, a.handler, who=who)
        keep = None if a.suspended_keeps_permit is None else a.suspended_keeps_permit == "yes"
        change = limits.LimitsChange(
            concurrency_limit=a.concurrency_limit,
            rate_limit=a.rate,
            burst=a.burst,
            suspended_keeps_permit=keep,
        )
        return await limits.set_limits(c, a.service, a.handler, change, who=who)


def run(a: argparse.Namespace) -> None:
    try:
        out = asyncio.run(_call(a))
    except ValueError as e:  # a bad value or name: say so, no traceback, nothing written
        print(f"reliq limits: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    print(codec.encode(out).decode())
