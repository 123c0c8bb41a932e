"""``reliq schedules SERVICE [create|pause|resume|delete NAME ...]``: list a service's schedules
(definition, last tick and its state, next fire, paused) or change one. Each form calls one
``Client`` schedule method and prints its JSON answer. Listing a service no worker registered is
one line and exit 2, as ``reliq limits show`` says it, not an empty list (creating a schedule
before the first deploy stays possible); a schedule the library refuses (a bad cron expression, a
name taken by another definition) is one line and exit 1."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from reliq import codec
from reliq.admin import overview as inspect
from reliq.cli import argtypes as t
from reliq.client import Client
from reliq.store.cron import ScheduleConflict


class NoSchedule(LookupError):
    """``pause``, ``resume`` or ``delete`` of a schedule the service does not have (exit 1)."""


class UnknownService(ValueError):
    """No worker registered the service (as ``reliq limits`` says it)."""


def add_parser(sub: Any) -> None:
    p = sub.add_parser("schedules", help="list SERVICE's schedules, or create/pause/resume/delete one")
    p.add_argument("service")
    p.add_argument(
        "action", nargs="?", choices=("list", "create", "pause", "resume", "delete"), default="list"
    )
    p.add_argument("name", nargs="?", help="the schedule (all actions but list)")
    p.add_argument("handler", nargs="?", help="create: the handler each tick runs")
    p.add_argument("--cron", default=None, help="create: 5 fields, or 6 with seconds first")
    p.add_argument(
        "--every", type=t.seconds(positive=True), default=None, help="create: seconds between ticks"
    )
    p.add_argument("--tz", default="UTC", help="create: IANA time zone of the cron expression")
    p.add_argument("--catch-up", choices=("latest", "all", "none"), default="latest")
    p.add_argument("--max-catch-up", type=t.positive, default=10, help="with --catch-up all")
    p.add_argument("--payload", default="null", help="create: the JSON input of each tick")


async def _call(a: argparse.Namespace) -> Any:
    async with Client(a.redis_url) as c:
        if a.action == "list":
            if not await inspect.known_service(c, a.service):
                raise UnknownService(f"no service {a.service!r} is registered")
            return await c.schedules(a.service)
        if not a.name:
            raise ValueError(f"{a.action} needs a schedule name")
        if a.action == "create":
            if not a.handler:
                raise ValueError("create needs NAME HANDLER")
            created = await c.create_schedule(
                a.service,
                a.name,
                a.handler,
                cron_expr=a.cron,
                every=a.every,
                tz=a.tz,
                catch_up=a.catch_up,
                max_catch_up=a.max_catch_up,
                payload=t.json_value("--payload", a.payload),
            )
            return {"status": created}
        act = {"pause": c.pause_schedule, "resume": c.resume_schedule, "delete": c.delete_schedule}[a.action]
        status = await act(a.service, a.name)
        if status == "unknown":
            raise NoSchedule(f"no schedule {a.name!r} in {a.service!r}")
        return {"status": status}


def run(a: argparse.Namespace) -> None:
    try:
        out = asyncio.run(_call(a))
    except (ScheduleConflict, NoSchedule) as e:  # a name taken, or no such schedule: a refusal
        print(f"reliq schedules: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    except ValueError as e:  # an unregistered service (like `reliq limits show nosvc`), a bad schedule
        print(f"reliq schedules: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    print(codec.encode(out).decode())
