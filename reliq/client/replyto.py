"""Reply-to: two one-way calls. An invocation sent with ``reply_to=("billing", "on_charged")``
carries the target in its record (``reply``); the script that finishes it (complete, park,
cancel, retry's cancel) writes a ``reply`` message into its own partition's outbox in the same
call, and the relay (``reliq.client.relay``) places the reply invocation in the target's slot.
The reply's id derives from the source's id, so a message applied twice (two relays, or a crash
between the apply and the delete) registers one invocation. An HTTP callback is a reply to the
built-in ``reliq-callbacks/deliver`` with the URL after a space (``reliq.client.callbacks``): its
invocation carries a ``Callback`` (the ``Reply`` plus ``url``)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from reliq import codec
from reliq.client import callbacks, routing
from reliq.store.keys import InvalidName, check_name, reply_token
from reliq.store.replies import Registration

if TYPE_CHECKING:
    from reliq.client import Client

log = logging.getLogger("reliq.client.replyto")
_STATES: dict[bytes, Literal["succeeded", "failed", "cancelled"]] = {
    b"S": "succeeded",
    b"F": "failed",
    b"C": "cancelled",
}


class Reply(msgspec.Struct, frozen=True, kw_only=True):
    """What a reply handler receives: the source invocation's ``id`` and outcome (``result`` when
    it succeeded, ``error`` when it failed or was cancelled)."""

    id: str
    state: Literal["succeeded", "failed", "cancelled"]
    result: Any = None
    error: Any = None


class Callback(Reply, frozen=True, kw_only=True):
    """What the built-in callback handler receives: the ``Reply`` and the URL to POST it to."""

    url: str


def target(reply_to: tuple[str, str] | str) -> str:
    """``("billing", "on_charged")`` or ``"billing/on_charged"`` as stored: ``billing/on_charged``
    (a callback's target, ``callbacks.reply_target(url)``, passes as it is)."""
    if isinstance(reply_to, str) and reply_to.startswith(callbacks.TARGET + " "):
        return reply_to
    service, handler = reply_to if isinstance(reply_to, tuple) else reply_to.partition("/")[::2]
    return f"{check_name('service', service)}/{check_name('handler', handler)}"


async def place_reply(client: Client, to: str, source: str, value: bytes) -> str | None:
    """Register the reply carrying ``source``'s outcome (``value``: ``S``/``F``/``C`` + JSON) to
    ``to`` (``service/handler``); its id, or None for a malformed target (logged, dropped)."""
    to, _, url = to.partition(" ")  # "service/handler" or a callback: "reliq-callbacks/deliver URL"
    try:
        service, handler = target(to).split("/")
    except InvalidName as e:
        log.error("reply of %s to %r dropped: %s", source, to, e)
        return None
    state = _STATES.get(value[:1], "cancelled")
    body = codec.decode(value[1:]) if len(value) > 1 else None
    if state != "succeeded" and body == {}:
        body = None
    result, error = (body, None) if state == "succeeded" else (None, body)
    doc = (
        Callback(id=source, state=state, result=result, error=error, url=url)
        if url
        else Reply(id=source, state=state, result=result, error=error)
    )
    payload = codec.encode(doc)
    try:  # a reply handler with a flow key is routed by it (client/routing.py)
        by = await routing.anchor(client, service, handler, payload)
    except ValueError:
        by = None  # register.lua answers bad_key: nothing is placed, as for any bad key
    inv = await client.route(service, reply_token(service, source), by)
    reg = Registration(id=inv, fp=codec.fingerprint(handler, payload), handler=handler, payload=payload)
    [(status, _)] = await client.register_many(client.where(inv), [reg])
    if status == "conflict":  # a redriven source that finished again: its first reply stands
        log.warning("reply of %s to %s: a reply with another outcome exists; kept that one", source, to)
    elif status == "bad_key":
        log.error("reply of %s to %s dropped: the handler's flow key is missing from the reply", source, to)
    return inv
