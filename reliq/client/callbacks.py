"""HTTP callbacks: the outcome of an invocation POSTed to a URL (``Client.send(...,
callback_url=...)``, the gateway's ``Callback-URL`` header).

A callback is a reply-to (``reliq.client.replyto``) whose target is the built-in handler
``reliq-callbacks/deliver`` with the URL attached: the finishing script writes the reply message
in the same call as the outcome, the relay places the delivery invocation (its id derives from
the source's), and a worker running ``reliq.worker.callbacks`` POSTs it, retried with backoff and
parked after ``RELIQ_CALLBACK_ATTEMPTS``. Only hosts on the operator's allowlist
(``RELIQ_CALLBACK_HOSTS``) are accepted, when the send is placed and again when it is delivered.

Each POST is signed: ``Reliq-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." +
body)>`` with ``RELIQ_CALLBACK_SECRET``; ``verify`` checks it (the receiver's side).

>>> verify(b"secret", request.headers["Reliq-Signature"], await request.body())
True
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from reliq.client.schemas import live_consumers
from reliq.errors import ReliqError
from reliq.store.registry import read_heartbeats

if TYPE_CHECKING:
    from reliq.client import Client

SERVICE = "reliq-callbacks"
HANDLER = "deliver"
TARGET = f"{SERVICE}/{HANDLER}"  # the reply target; the stored form is "<TARGET> <url>"
SIGNATURE = "Reliq-Signature"
MAX_URL = 2048
TOLERANCE = 300  # seconds a signature's timestamp may differ from the receiver's clock


class InvalidCallbackURL(ValueError, ReliqError):
    """A callback URL that is not an absolute http(s) URL (the gateway answers 400)."""


class CallbackHostRefused(InvalidCallbackURL):
    """A callback URL whose host is not on ``RELIQ_CALLBACK_HOSTS`` (the gateway answers 422)."""


@dataclass(frozen=True, kw_only=True)
class CallbackSettings:
    """The operator's callback configuration, from the environment (``from_env``).

    ``hosts``: the allowlist, lowercase ``host`` (any port) or ``host:port`` entries; empty means
    callbacks are off. ``secret``: the HMAC key (deliveries are parked without one).
    ``attempts``/``backoff``/``backoff_max``: the delivery's retry policy (seconds).
    ``timeout``: seconds one POST may take."""

    hosts: frozenset[str] = frozenset()
    secret: bytes = b""
    attempts: int = 8
    backoff: float = 1.0
    backoff_max: float = 300.0
    timeout: float = 10.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> CallbackSettings:
        """``RELIQ_CALLBACK_HOSTS`` (comma-separated), ``RELIQ_CALLBACK_SECRET``,
        ``RELIQ_CALLBACK_ATTEMPTS``, ``RELIQ_CALLBACK_BACKOFF``, ``RELIQ_CALLBACK_TIMEOUT``."""
        e = os.environ if env is None else env
        hosts = frozenset(
            h.strip().lower() for h in e.get("RELIQ_CALLBACK_HOSTS", "").split(",") if h.strip()
        )
        return cls(
            hosts=hosts,
            secret=e.get("RELIQ_CALLBACK_SECRET", "").encode(),
            attempts=max(1, int(e.get("RELIQ_CALLBACK_ATTEMPTS", "8"))),
            backoff=float(e.get("RELIQ_CALLBACK_BACKOFF", "1")),
            timeout=float(e.get("RELIQ_CALLBACK_TIMEOUT", "10")),
        )

    @property
    def enabled(self) -> bool:
        return bool(self.hosts)


def check_url(url: str, hosts: frozenset[str]) -> str:
    """``url`` if it is an absolute http(s) URL whose host (or host:port) is on ``hosts``;
    otherwise ``InvalidCallbackURL`` (malformed) or ``CallbackHostRefused`` (not allowed)."""
    if not url or len(url) > MAX_URL or any(c <= " " or c == "\x7f" for c in url):
        raise InvalidCallbackURL("the callback URL must be 1-2048 characters without spaces or controls")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise InvalidCallbackURL(f"malformed callback URL: {e}") from None
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidCallbackURL("the callback URL must be an absolute http or https URL")
    if parts.username is not None or parts.password is not None:
        raise InvalidCallbackURL("the callback URL must not carry credentials")
    if host not in hosts and (port is None or f"{host}:{port}" not in hosts):
        raise CallbackHostRefused(f"callback host {host!r} is not on RELIQ_CALLBACK_HOSTS")
    return url


def reply_target(url: str, settings: CallbackSettings | None = None) -> str:
    """The reply target that delivers to ``url`` (checked against the allowlist first)."""
    s = settings or CallbackSettings.from_env()
    return f"{TARGET} {check_url(url, s.hosts)}"


def sign(secret: bytes, body: bytes, timestamp: int | None = None) -> str:
    """The ``Reliq-Signature`` value for ``body``: ``t=<unix seconds>,v1=<hex HMAC-SHA256>``."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(secret: bytes, header: str, body: bytes, *, tolerance: float = TOLERANCE) -> bool:
    """True if ``header`` (a ``Reliq-Signature`` value) signs ``body`` with ``secret`` and its
    timestamp is within ``tolerance`` seconds of now (a replayed old request fails)."""
    fields = dict(p.strip().partition("=")[::2] for p in header.split(","))
    try:
        t = int(fields.get("t", ""))
    except ValueError:
        return False
    if abs(time.time() - t) > tolerance:
        return False
    expected = sign(secret, body, t).partition(",v1=")[2]
    return hmac.compare_digest(expected, fields.get("v1", ""))


async def deliverers(client: Client) -> list[str]:
    """The workers alive now that deliver callbacks: consumers of ``reliq-callbacks`` with a live
    heartbeat. Empty while callbacks are accepted means deliveries wait (placed, durable, not
    POSTed) until a worker with ``RELIQ_CALLBACK_HOSTS`` set starts; the gateway's /readyz says so."""
    names = await live_consumers(client, SERVICE)
    beats = await read_heartbeats(client.redis, client.keys(SERVICE), names)
    return sorted(n for n, beat in beats.items() if beat is not None)
