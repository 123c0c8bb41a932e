"""``reliq pending|parked|audit|inspect|redrive|discard|release``: the admin views and actions on a
terminal. Each command calls one function of ``reliq.admin.overview`` / ``reliq.admin.detail`` /
``reliq.admin.actions`` and prints a rich table, or with ``--json`` the same document the ``/admin`` API
answers. Lists cover every partition of a service (a ``part.`` column says which) unless
``--partition N`` picks one."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from typing import TYPE_CHECKING, Any

import msgspec

from reliq.admin import actions as operate
from reliq.admin import detail
from reliq.admin import overview as inspect
from reliq.admin import tree as family
from reliq.admin.documents import AuditPage, Detail, ParkedPage, PendingPage
from reliq.cli import argtypes as t
from reliq.cli.tables import ago as _ago
from reliq.cli.tables import new_table, print_table, terminal
from reliq.cli.trees import TREE_DEPTH, describe, print_tree
from reliq.client import Client
from reliq.errors import UnknownInvocation
from reliq.store.record import Field

if TYPE_CHECKING:  # rich is imported by the admin commands only (worker start stays lean)
    from rich.console import Console
    from rich.table import Table

COMMANDS = ("pending", "parked", "audit", "inspect", "redrive", "discard", "release")
# what redrive and discard answer when the invocation is not in the state they act on
REFUSED = {"redrive": "not_failed", "discard": "not_parked"}


class Refused(Exception):
    """``redrive`` of an invocation that has not failed, ``discard`` of one not parked: a refusal
    at run time (exit 1), not audited when the CLI sees it before the script runs."""


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("pending", help="pending entries of SERVICE: owner, alive?, idle, attempt")
    p.add_argument("service")
    p.add_argument("--consumer", default=None)
    p.add_argument("--min-idle", type=t.seconds(), default=0.0, help="seconds")
    p.add_argument("--cursor", default=None, help="next_cursor of the previous page")
    q = sub.add_parser("parked", help="parked (dead-letter) invocations of SERVICE")
    q.add_argument("service")
    q.add_argument("--archived", action="store_true", help="list the archive of discarded ones")
    q.add_argument("--handler", default=None)
    q.add_argument("--cursor", default=None, help="next_cursor of the previous page")
    u = sub.add_parser("audit", help="audit log of admin actions, newest first")
    u.add_argument("--service", default=None)
    u.add_argument("--cursor", default=None, help="next_cursor of the previous page")
    i = sub.add_parser("inspect", help="one invocation: record, timeline, steps, waits, its tree")
    i.add_argument("id")
    r = sub.add_parser("redrive", help="redrive a parked invocation, or --all of a service")
    target = r.add_mutually_exclusive_group(required=True)
    target.add_argument("id", nargs="?")
    target.add_argument("--all", metavar="SERVICE", default=None)
    r.add_argument("--handler", type=t.handler_name, default=None, help="with --all: only this handler")
    r.add_argument("--cursor", default=None, help="with --all: next_cursor of the previous call")
    d = sub.add_parser("discard", help="move a parked invocation to the archive")
    d.add_argument("id")
    e = sub.add_parser("release", help="make an invocation's pending entry reclaimable now")
    e.add_argument("id")
    e.add_argument("--force", action="store_true", help="even when its holder is alive with a valid lease")
    for sp in (p, q, u, i, r, d, e):
        sp.add_argument("--json", action="store_true", help="print the JSON document")
    for sp in (p, q, u, r):
        sp.add_argument("--limit", type=t.page_limit, default=100, help="1-500")
        sp.add_argument("--partition", type=t.count, default=None, help="only this partition (default: all)")


def _where(partition: int | None, partitions: int) -> str:
    if partition is not None:
        return f" in partition {partition} (of {partitions})"
    return f" in {partitions} partitions" if partitions > 1 else ""


def _pending_table(page: PendingPage) -> Table:
    cols = ("part.", "entry", "invocation", "handler", "owner", "idle", "deliv.", "attempt", "reclaim in")
    title = f"{page.service}: {page.total} pending{_where(page.partition, page.partitions)}"
    t = new_table(title, (*cols, "step"), ids=("invocation",))
    for e in page.items:
        owner = f"[green]{e.owner}[/]" if e.owner_alive else f"[red]{e.owner} (dead)[/]"
        t.add_row(
            str(e.partition),
            e.entry_id,
            e.invocation_id or "[red]lost[/]",
            e.handler or "-",
            owner,
            _ago(e.idle_ms),
            str(e.deliveries),
            str(e.attempt or "-"),
            "renewing" if e.reclaim_in_ms is None else _ago(e.reclaim_in_ms),
            e.step or "-",
        )
    if page.next_cursor:
        t.caption = f"next page: --cursor {page.next_cursor}"
    return t


def _parked_table(page: ParkedPage) -> Table:
    kind = "archived" if page.archived else "parked"
    title = f"{page.service}: {page.total} {kind}{_where(page.partition, page.partitions)}"
    cols = ("part.", "invocation", "handler", "reason", "error", "attempts", "parked")
    t = new_table(title, cols, ids=("invocation",))
    for p in page.items:
        err = f"{p.error.type}: {p.error.message}" if p.error else "-"
        t.add_row(
            str(p.partition),
            p.invocation_id,
            p.handler or "[dim]expired[/]",
            p.reason or "-",
            err[:80],
            str(p.attempt or "-"),
            _ago(page.now - p.parked_at) + " ago",
        )
    if page.next_cursor:
        t.caption = f"next page: --cursor {page.next_cursor}"
    return t


def _audit_table(page: AuditPage) -> Table:
    cols = ("id", "service", "part.", "who", "action", "target", "result")
    t = new_table("audit log", cols, ids=("target",))
    for e in page.items:
        t.add_row(e.id, e.service, str(e.partition), e.who, e.action, e.target, e.result)
    if page.next_cursor:
        t.caption = f"next page: --cursor {page.next_cursor}"
    return t


def _detail(console: Console, d: Detail) -> None:
    inv = d.invocation
    where = " (parked)" if d.parked else " (archived)" if d.archived else ""
    console.print(f"[bold]{inv.id}[/]  {inv.service}.{inv.handler}  state [bold]{inv.state}[/]{where}")
    console.print(
        f"attempt {inv.attempt}  deliveries {inv.deliveries}  crashes {inv.crashes}  epoch {inv.epoch}"
        f"  owner {inv.owner or '-'}  reason {inv.reason or '-'}  redrives {inv.redrives}"
    )
    if d.pending_entry:
        e = d.pending_entry
        alive = "alive" if e.owner_alive else "[red]dead[/]"
        console.print(f"pending entry {e.entry_id} held by {e.owner} ({alive}), idle {_ago(e.idle_ms)}")
    if d.wait:
        console.print(f"waits: {d.wait.text}", markup=False, highlight=False)
    if inv.suspensions:
        console.print(f"suspensions {inv.suspensions}")
    for w in d.waits:
        console.print(f"waits for {describe(w)}", markup=False, highlight=False)
    console.print(f"input: {msgspec.json.encode(inv.payload).decode()[:200]}")
    if inv.result is not None:
        console.print(f"result: {msgspec.json.encode(inv.result).decode()[:200]}")
    if inv.error:
        console.print(f"[red]error: {inv.error.type}: {inv.error.message}[/]")
        if inv.error.traceback:
            console.print(inv.error.traceback.rstrip(), markup=False, highlight=False)
    t = new_table("timeline", ("at (ms)", "event", "actor", "epoch", "detail"))
    for ev in d.timeline:
        extra = ev.detail or ""
        if ev.count:
            extra = f"{extra} x{ev.count}".strip()
        t.add_row(str(ev.at), ev.event, ev.actor or "-", str(ev.epoch or "-"), extra)
    console.print(t)
    if inv.steps:
        console.print("steps: " + ", ".join(inv.steps))
    if d.parent:
        console.print(f"parent: {d.parent.id} ({d.parent.handler}, {d.parent.state})")
    for c in d.children:
        console.print(f"child: {c.id} ({c.handler}, {c.state})")


async def _run(a: argparse.Namespace, console: Console) -> Any:
    who = f"cli:{getpass.getuser()}"
    async with Client(a.redis_url) as c:
        service = getattr(a, "all", None) if a.cmd == "redrive" else getattr(a, "service", None)
        if service is not None and not await inspect.known_service(c, service):
            raise ValueError(f"no service {service!r} is registered")  # bad input: exit 2
        if a.cmd == "pending":
            min_idle = int(a.min_idle * 1000)
            page = await inspect.pending(
                c,
                a.service,
                cursor=a.cursor,
                consumer=a.consumer,
                min_idle_ms=min_idle,
                limit=a.limit,
                partition=a.partition,
            )
            return page, _pending_table(page)
        if a.cmd == "parked":
            pp = await inspect.parked(
                c,
                a.service,
                cursor=a.cursor,
                limit=a.limit,
                handler=a.handler,
                archived=a.archived,
                partition=a.partition,
            )
            return pp, _parked_table(pp)
        if a.cmd == "audit":
            log = await operate.audit_log(
                c, limit=a.limit, cursor=a.cursor, service=a.service, partition=a.partition
            )
            return log, _audit_table(log)
        if a.cmd == "inspect":
            d = await detail.detail(c, a.id)
            if d is None:
                raise UnknownInvocation(a.id)
            return d, (d, await family.tree(c, a.id, depth=TREE_DEPTH))
        if a.cmd == "redrive" and a.all:
            bulk = await operate.redrive_parked(
                c, a.all, who=who, handler=a.handler, limit=a.limit, partition=a.partition, cursor=a.cursor
            )
            left = f"{bulk.remaining} still parked" if not a.handler else f"{bulk.remaining} not examined yet"
            more = f"; continue with --cursor {bulk.next_cursor}" if bulk.next_cursor else ""
            return bulk, f"redriven {len(bulk.redriven)} of {bulk.examined} examined, {left}{more}"
        await _actionable(c, a.cmd, a.id)
        res = await operate.act(c, a.cmd, a.id, who=who, force=getattr(a, "force", False))
        if res.status == REFUSED.get(a.cmd):  # it changed state since _actionable read it
            raise Refused(f"{res.id}: {res.status} (state {res.state})")
        if res.status == "owner_alive":
            raise Refused(f"{res.id}: owner_alive: its holder beats and its lease runs (--force to release)")
        return res, f"{res.id}: {res.status} (state {res.state})"


async def _actionable(c: Client, action: str, inv: str) -> None:
    """``Refused`` before the script runs (which would audit the refusal) when ``inv`` is not
    failed (redrive) or not parked (discard); an unknown id is left to the script."""
    if action not in REFUSED:
        return
    k = c.keys_of(inv)
    async with c.redis.pipeline(transaction=False) as p:
        p.hget(k.inv(inv), Field.STATE)
        p.zscore(k.parked, inv)
        state, parked = await p.execute()
    if state is None:
        return
    if state != b"failed" or (action == "discard" and parked is None):
        raise Refused(f"{inv}: {REFUSED[action]} (state {state.decode()})")


def run(a: argparse.Namespace) -> None:
    from rich.table import Table

    console = terminal()
    try:
        doc, view = asyncio.run(_run(a, console))
    except UnknownInvocation as e:  # a well-formed id: a malformed one is bad input (below)
        print(f"reliq {a.cmd}: unknown or expired invocation {e}", file=sys.stderr)
        raise SystemExit(1) from None
    except Refused as e:
        print(f"reliq {a.cmd}: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    except ValueError as e:  # a malformed id or name, an unregistered service
        print(f"reliq {a.cmd}: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    if a.json:
        sys.stdout.write(msgspec.json.encode(doc).decode() + "\n")
    elif isinstance(view, tuple) and isinstance(view[0], Detail):
        _detail(console, view[0])
        print_tree(console, view[1])
    elif isinstance(view, Table):
        print_table(console, view)
    else:
        console.print(view)
