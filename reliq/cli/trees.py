"""``reliq resolve|reject|suspended``, and the function tree ``reliq inspect`` prints.

``resolve ID NAME JSON`` / ``reject ID NAME MESSAGE`` call ``Client.resolve`` / ``Client.reject``
and print ``{"id", "promise", "status"}``; bad input (a malformed id or name, JSON that does not
parse), an unknown invocation, a promise settled before or a finished invocation end with one
line on stderr and a non-zero exit (2 for bad input, 1 otherwise). ``suspended SERVICE`` lists
the suspended invocations with what each waits for (``reliq.admin.suspended``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING, Any

import msgspec

from reliq.admin import overview as inspect
from reliq.admin.documents import SuspendedPage, TreeNode, WaitItem
from reliq.admin.suspended import suspended
from reliq.cli import argtypes as t
from reliq.cli.tables import ago, new_table, print_table, terminal
from reliq.client import Client
from reliq.errors import InvocationFailed, PromiseAlreadySettled, UnknownInvocation

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table
    from rich.tree import Tree

COMMANDS = ("resolve", "reject", "suspended")
TREE_DEPTH = 3  # levels of children `reliq inspect` prints


def add_parsers(sub: Any) -> None:
    r = sub.add_parser("resolve", help="resolve the promise NAME of a suspended (or running) invocation")
    r.add_argument("id")
    r.add_argument("name")
    r.add_argument("value", help="JSON")
    j = sub.add_parser("reject", help="reject the promise NAME: its await raises PromiseRejected(MESSAGE)")
    j.add_argument("id")
    j.add_argument("name")
    j.add_argument("message")
    s = sub.add_parser("suspended", help="suspended invocations of SERVICE and what each waits for")
    s.add_argument("service")
    s.add_argument("--cursor", default=None, help="next_cursor of the previous page")
    s.add_argument("--limit", type=t.page_limit, default=100, help="1-500")
    s.add_argument("--partition", type=t.count, default=None, help="only this partition (default: all)")
    s.add_argument("--json", action="store_true", help="print the JSON document")


def describe(w: WaitItem) -> str:
    """One wait as a line: ``child orders.x… (running)``, ``promise approval``, ``timer at …``."""
    if w.kind == "timer":
        what = f"timer due {w.due}" if w.due else f"timer {w.target}"
    else:
        what = f"{w.kind} {w.target}"
    return what + (f" ({w.state})" if w.state else "")


def tree_view(node: TreeNode) -> Tree:
    from rich.markup import escape
    from rich.tree import Tree

    def label(n: TreeNode) -> str:
        return f"{escape(n.id)}  {escape(n.handler or '?')}  [bold]{escape(n.state)}[/]"

    def grow(t: Tree, n: TreeNode) -> None:
        for w in n.waits:
            t.add(f"[dim]waits for {escape(describe(w))}[/]")
        for c in n.children:
            grow(t.add(label(c)), c)
        if n.children_total > len(n.children):
            t.add(f"[dim]… {n.children_total - len(n.children)} more children[/]")

    root = Tree(label(node))
    grow(root, node)
    return root


def _table(page: SuspendedPage) -> Table:
    cols = ("part.", "invocation", "handler", "suspended", "suspensions", "waits for")
    t = new_table(f"{page.service}: {page.total} suspended", cols, ids=("invocation",))
    for i in page.items:
        waits = "\n".join(describe(w) for w in i.waits) or ("[dim]expired[/]" if i.expired else "-")
        t.add_row(
            str(i.partition),
            i.invocation_id,
            i.handler or "-",
            ago(page.now - i.suspended_at) + " ago",
            str(i.suspensions or "-"),
            waits,
        )
    if page.next_cursor:
        t.caption = f"next page: --cursor {page.next_cursor}"
    return t


async def _call(a: argparse.Namespace) -> Any:
    async with Client(a.redis_url) as c:
        if a.cmd == "suspended":
            if not await inspect.known_service(c, a.service):
                raise ValueError(f"no service {a.service!r} is registered")
            return await suspended(c, a.service, cursor=a.cursor, limit=a.limit, partition=a.partition)
        if a.cmd == "resolve":
            status = await c.resolve(a.id, a.name, t.json_value("value", a.value))
        else:
            status = await c.reject(a.id, a.name, a.message)
        return {"id": a.id, "promise": a.name, "status": status}


def run(a: argparse.Namespace) -> None:
    try:
        doc = asyncio.run(_call(a))
    except UnknownInvocation as e:
        print(f"reliq {a.cmd}: unknown or expired invocation {e}", file=sys.stderr)
        raise SystemExit(1) from None
    except PromiseAlreadySettled as e:
        print(f"reliq {a.cmd}: {e} (the first value stands)", file=sys.stderr)
        raise SystemExit(1) from None
    except InvocationFailed as e:
        print(f"reliq {a.cmd}: {e.invocation_id} already finished ({e.state})", file=sys.stderr)
        raise SystemExit(1) from None
    except ValueError as e:  # malformed id, promise name or JSON
        print(f"reliq {a.cmd}: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    if isinstance(doc, SuspendedPage) and not a.json:
        print_table(terminal(), _table(doc))
        return
    sys.stdout.write(msgspec.json.encode(doc).decode() + "\n")


def print_tree(console: Console, node: TreeNode | None) -> None:
    if node is not None and node.children_total:
        console.print(tree_view(node))
