"""The relay: messages from one slot to another, at least once.

A child and its parent, a parent and its children, usually live in different hash slots, so no
script can change both. The script that changes one side (a child finishes, a parent is
cancelled) writes a message into its own partition's outbox in the same call (``lua/lib/wake.lua``
``relay``); the relay then applies it to the other side with that side's script and deletes the
message only after. Applying is idempotent (``wake``: the first value of an inbox field stands;
``cancel``: a second cancel changes nothing), so a message applied twice, by two relays or after a
crash between the apply and the delete, does no harm, and a message is never lost: it stays in
the outbox until applied.

- ``done`` (``t`` parent, ``s`` child, ``v`` outcome): the parent's ``wake`` stores the outcome
  under ``c:<child>`` and resumes the parent when that ends its wait.
- ``cancel`` (``t`` child, ``s`` parent): the child's ``cancel`` (a tombstone when the child is
  not registered yet), which relays the cancel on to its own children.
- ``reply`` (``t`` ``service/handler``, ``s`` the finished invocation, ``v`` its outcome): registers
  the reply invocation, whose id derives from ``s`` (``reliq.client.replyto``).

Workers sweep the outbox of every partition they consume (``reliq.worker.relay``); whoever wrote
messages relays them at once too (settle after a child's outcome, ``Client.cancel`` for a tree).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from reliq.client.replyto import place_reply
from reliq.codec import text
from reliq.store.keys import InvalidName, ServiceKeys

if TYPE_CHECKING:
    from reliq.client import Client

log = logging.getLogger("reliq.client.relay")
BATCH = 200


async def relay_once(client: Client, k: ServiceKeys) -> tuple[int, list[ServiceKeys]]:
    """Apply up to ``BATCH`` messages of the partition's outbox, oldest first, and delete them.
    Returns how many, and the partitions cancels went to (their outboxes may have new messages)."""
    entries = await client.redis.xrange(k.outbox, "-", "+", count=BATCH)
    if not entries:
        return 0, []
    touched: dict[str, ServiceKeys] = {}
    done: list[str] = []
    for eid, fields in entries:
        f = {text(a): b for a, b in fields.items()}
        kind, target, source = text(f.get("k", b"")), text(f.get("t", b"")), text(f.get("s", b""))
        if kind == "reply":  # t: 'service/handler', not an id (reliq.client.replyto)
            await place_reply(client, target, source, bytes(f.get("v", b"C{}")))
            done.append(text(eid))
            continue
        try:
            tk = client.keys_of(target)
        except InvalidName:
            log.error("outbox %s: message %s: malformed target %r; dropped", k.outbox, text(eid), target)
            done.append(text(eid))
            continue
        if kind == "done":
            await client.scripts.wake(tk, target, f"c:{source}", bytes(f.get("v", b"C{}")), source)
        elif kind == "cancel":
            status = await client.scripts.cancel(
                tk, target, client.retention_ms, f"parent {source}", tombstone=True
            )
            if status == "cancelling":
                await client.redis.publish(tk.cancel_channel, target)
            touched[tk.prefix] = tk
        else:
            log.error("outbox %s: message %s of unknown kind %r; dropped", k.outbox, text(eid), kind)
        done.append(text(eid))
    await client.redis.xdel(k.outbox, *done)
    return len(entries), list(touched.values())


async def relay_tree(client: Client, k: ServiceKeys, *, limit: int = 1000) -> None:
    """Relay ``k``'s outbox, then the outboxes the messages went to, and so on (a cancel walking
    down a tree), at most ``limit`` rounds; the workers' sweeps finish whatever is left."""
    todo = {k.prefix: k}
    rounds = 0
    while todo and rounds < limit:
        _, keys = todo.popitem()
        rounds += 1
        handled, touched = await relay_once(client, keys)
        if handled == BATCH:
            todo[keys.prefix] = keys  # more where those came from
        for nxt in touched:
            todo[nxt.prefix] = nxt
