"""Debounce headers on ``/send`` and ``/call``: ``Debounce: 2s`` (a window, as ``delay`` is written),
``Debounce-Key: k`` and optionally ``Debounce-Mode: throttle``. Sends with the same key within the
window join one invocation (``reliq.client.debounce``); the answer names it, with ``status``
``accepted`` (this send opened the window) or ``debounced`` (it joined one). Checked with the other
headers, before anything is written: a bad or incomplete set is a 400 that places nothing."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from reliq import Accepted, codec
from reliq.client import debounce
from reliq.client.producer import SendOptions
from reliq.errors import NotConfirmed
from reliq.store.flow import BAD_KEY, BadKey
from reliq.store.priority import check_priority

from .problems import Problem, unavailable
from .state import GatewayState


def options(
    h: Mapping[str, str], parse_window: Callable[[str], float | None], *, exclusive: bool
) -> SendOptions | None:
    """The debounce options of the request's headers (lower-case names), or None when it has
    none. ``exclusive``: the request also set an Idempotency-Key, ``delay`` or ``at``, which
    cannot go with them."""
    window, key, mode = h.get("debounce"), h.get("debounce-key"), h.get("debounce-mode")
    if window is None and key is None and mode is None:
        return None
    if window is None or key is None:
        raise Problem(400, "Bad Request", "debounce needs both the Debounce and Debounce-Key headers")
    if exclusive:
        raise Problem(400, "Bad Request", "Debounce cannot be combined with Idempotency-Key, delay or at")
    seconds = parse_window(window.strip())
    try:
        opts: SendOptions = {
            "debounce": seconds,
            "debounce_key": key,
            "mode": debounce.check_mode((mode or "debounce").strip().lower()),
        }
        debounce.check(opts)
        codec.check_key(key)
    except ValueError as e:
        raise Problem(400, "Bad Request", f"invalid debounce headers: {e}") from None
    return opts


async def place(
    st: GatewayState,
    service: str,
    handler: str,
    body: bytes,
    opts: SendOptions,
    *,
    reply_to: str | None,
    trace: str = "",
    priority: str | None = None,
    flow_key: str = "",
) -> Accepted:
    """Join or open the window (names, headers and body already checked), at the gateway's
    durability: with ``replicas:N`` the WAIT follows the script on the same connection.
    ``flow_key``: a callable concurrency key's value (computed by ingress with the App's code)."""
    full: SendOptions = {**opts, "trace": trace, "reply_to": reply_to, "flow_key": flow_key or None}
    if priority is not None:
        full["priority"] = check_priority(priority)
    try:
        return await debounce.send(
            st.client, service, handler, body, full, replicas=st.placer.replicas, wait_ms=st.placer.wait_ms
        )
    except NotConfirmed as e:
        raise unavailable(f"{e}; send again") from e
    except BadKey:  # checked by the script (or by routing) before anything is written
        raise Problem(422, "Unprocessable Content", BAD_KEY) from None
