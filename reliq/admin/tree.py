"""An invocation's function tree: the states of its descendants, level by level, down to
``depth`` levels (the dashboard asks for one level at a time, as the operator expands a node;
``reliq inspect`` prints a few). Suspended nodes carry what they wait for, with each wait's state
(``reliq.admin.suspended.wait_states``).

Bounded: at most ``max_children`` children per node and ``max_nodes`` nodes in all are looked up;
a node whose children were not read says how many it has (``children_total``). Each level is
one pipeline (record fields, the children's ids and count), plus one for the waits' states.

>>> root = await tree(client, "orders.3v9k...", depth=2)
>>> [(c.id, c.state, c.children_total) for c in root.children]
"""

from __future__ import annotations

from typing import Any

from reliq.admin.documents import TreeNode, WaitItem
from reliq.admin.suspended import wait_states
from reliq.client import Client
from reliq.codec import text
from reliq.store.keys import InvalidName, locate
from reliq.store.record import Field, Wait, waits

MAX_DEPTH = 5
MAX_CHILDREN = 100


async def _level(client: Client, ids: list[str], expand: bool, max_children: int) -> list[dict[str, Any]]:
    """Each id's handler, state, waits, child count and (when ``expand``) its first children."""
    async with client.redis.pipeline(transaction=False) as p:
        for i in ids:
            k = client.keys_of(i)
            p.hmget(k.inv(i), [Field.HANDLER, Field.STATE, Field.WAITS])
            p.zcard(k.children(i))
            if expand:
                p.zrange(k.children(i), 0, max_children - 1)
        replies: list[Any] = await p.execute() if ids else []
    step, out = 3 if expand else 2, []
    for n in range(len(ids)):
        (h, st, ws), total = replies[n * step], int(replies[n * step + 1])
        kids = [text(c) for c in replies[n * step + 2]] if expand else []
        state = text(st) if st else "expired"
        found: list[Wait] = waits(ws) if state == "suspended" else []
        handler = text(h) if h else None
        out.append({"handler": handler, "state": state, "waits": found, "total": total, "kids": kids})
    return out


def _valid(ids: list[str]) -> list[str]:
    ok = []
    for i in ids:
        try:
            locate(i)
        except InvalidName:
            continue
        ok.append(i)
    return ok


async def tree(
    client: Client,
    invocation_id: str,
    *,
    depth: int = 3,
    max_children: int = MAX_CHILDREN,
    max_nodes: int = 500,
) -> TreeNode | None:
    """The tree under ``invocation_id`` (``depth`` 0: the node alone); None when unknown."""
    locate(invocation_id)  # InvalidName (a ValueError) for a malformed id
    depth = max(0, min(depth, MAX_DEPTH))
    info: dict[str, dict[str, Any]] = {}
    level, seen = [invocation_id], 0
    for d in range(depth + 1):
        expand = d < depth and seen + len(level) < max_nodes
        got = await _level(client, level, expand, max_children)
        info.update(zip(level, got, strict=True))
        seen += len(level)
        nxt = [c for g in got for c in _valid(g["kids"]) if c not in info]
        level = nxt[: max(0, max_nodes - seen)]
        if not level:
            break
    if info[invocation_id]["state"] == "expired":
        return None
    asked = [(i, v["waits"]) for i, v in info.items() if v["waits"]]
    states: dict[str, list[WaitItem]] = {
        i: ws for (i, _), ws in zip(asked, await wait_states(client, asked), strict=True)
    }

    def build(i: str) -> TreeNode:
        v = info[i]
        return TreeNode(
            id=i,
            service=locate(i)[0],
            handler=v["handler"],
            state=v["state"],
            waits=states.get(i, []),
            children_total=v["total"],
            children=[build(c) for c in v["kids"] if c in info],
        )

    return build(invocation_id)
