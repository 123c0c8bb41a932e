"""The edge check every request passes first, as plain ASGI middleware in front of ``Guard`` (on
the hot lane and on the FastAPI routes alike):

1. DNS rebinding: a ``Host`` not in the allowed hosts (``RELIQ_ALLOWED_HOSTS``; by default the
   loopback names when no API token is set, any host when tokens are set) is a **421**. The
   health probes are exempt (an orchestrator probes by pod address; they hold no data).
2. Cross-site requests: a state-changing request (any method but GET/HEAD/OPTIONS) without a
   bearer token whose ``Sec-Fetch-Site`` is ``cross-site``/``same-site``, or whose ``Origin`` is
   not an allowed origin, is a **403**. Allowed origins are the configured public origins
   (``RELIQ_PUBLIC_ORIGIN``) and origins whose host is an allowed host (never ``*``, never the
   request's own ``Host``) on the port the gateway serves. Requests with neither header (curl,
   scripts, server-to-server) pass. With tokens configured, a request carrying a bearer token is
   left to ``Guard`` (a browser never attaches one on its own).
3. ``HEAD`` is answered as ``GET`` without the body.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .problems import Problem, problem_response
from .settings import GatewaySettings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PROBES = frozenset({"/healthz", "/readyz"})
_SAME = (b"same-origin", b"none")
_PORTS = {"http": 80, "https": 443}
_MISDIRECTED = Problem(
    421, "Misdirected Request", "this gateway does not serve that Host (see RELIQ_ALLOWED_HOSTS)"
)
_CROSS_SITE = Problem(403, "Forbidden", "cross-site request refused")


def split_host(value: str) -> tuple[str, int | None] | None:
    """``(name, port)`` of a Host value (``name``, ``name:port``, ``[v6]:port``), lower case
    without a trailing dot; None when malformed."""
    value = value.strip().lower()
    if value.startswith("["):
        close = value.find("]")
        if close < 0:
            return None
        name, rest = value[1:close], value[close + 1 :]
    elif value.count(":") > 1:  # a bare IPv6 address (allowed-hosts entries may be written so)
        try:
            name, rest = str(ipaddress.IPv6Address(value)), ""
        except ValueError:
            return None
    else:
        name, colon, port = value.partition(":")
        rest = colon + port
    digits = rest[1:]
    if rest and (rest[0] != ":" or (digits and not (digits.isascii() and digits.isdigit()))):
        return None
    name = name.rstrip(".")
    return (name, int(digits) if digits else None) if name else None


class Hosts:
    """The allowed-hosts list: exact names, ``*.example.com`` (its subdomains) and ``*`` (any)."""

    def __init__(self, entries: tuple[str, ...], also: tuple[str, ...] = ()) -> None:
        """``also``: hosts served but not named (the public origins' hosts: only their origin counts)."""
        self.any = "*" in entries
        self.also = frozenset(also)
        names = [e for e in entries if e != "*"]
        self.suffixes = tuple(e[1:].lower() for e in names if e.startswith("*."))
        self.exact = frozenset(self._name(e) for e in names if not e.startswith("*."))
        self.seen: set[bytes] = set()

    @staticmethod
    def _name(entry: str) -> str:
        parsed = split_host(entry)
        if parsed is None or parsed[1] is not None:
            raise ValueError(f"allowed host {entry!r}: give a host name or address without a port")
        return parsed[0]

    def named(self, name: str) -> bool:
        """Listed by name (exact or by a ``*.`` pattern): what an origin must be."""
        return name in self.exact or name.endswith(self.suffixes)

    def allows(self, raw: bytes | None) -> bool:
        if self.any or raw in self.seen:  # a served Host is parsed once (a few per gateway)
            return True
        parsed = split_host(raw.decode("latin-1")) if raw is not None else None
        ok = parsed is not None and (self.named(parsed[0]) or parsed[0] in self.also)
        if ok and raw is not None and len(self.seen) < 64:
            self.seen.add(raw)
        return ok


def allowed_hosts(settings: GatewaySettings) -> Hosts:
    """The configured list, or the default: any host with tokens, else the loopback names (the
    gateway binds to loopback only without tokens), plus the public origins' hosts."""
    if settings.allowed_hosts is not None:
        entries = settings.allowed_hosts
    elif settings.tokens:
        entries = ("*",)
    else:
        entries = ("localhost", "127.0.0.1", "::1")
    return Hosts(entries, tuple(o[1] for o in public_origins(settings)))


def origin_of(text: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of an origin (``https://example.com[:port]``); None if malformed."""
    scheme, sep, authority = text.strip().lower().partition("://")
    parsed = split_host(authority) if sep and scheme in _PORTS and "/" not in authority else None
    if parsed is None:
        return None
    return scheme, parsed[0], parsed[1] if parsed[1] is not None else _PORTS[scheme]


def public_origins(settings: GatewaySettings) -> frozenset[tuple[str, str, int]]:
    out = set()
    for origin in settings.public_origins:
        parsed = origin_of(origin.strip().rstrip("/"))
        if parsed is None:
            raise ValueError(f"public origin {origin!r}: use http(s)://host[:port]")
        out.add(parsed)
    return frozenset(out)


class Edge:
    """The checks above; ``app`` is ``Guard`` around the routes."""

    def __init__(self, app: ASGIApp, settings: GatewaySettings) -> None:
        self.app = app
        self.hosts = allowed_hosts(settings)
        self.origins = public_origins(settings)
        self.tokens = bool(settings.tokens)

    def _origin_ok(self, origin: bytes, server: Any) -> bool:
        parsed = origin_of(origin.decode("latin-1"))
        if parsed is None or parsed in self.origins:
            return parsed is not None
        # another local port is another site; the server's port, unlike Host, is not the caller's
        port_ok = not server or server[1] is None or parsed[2] == server[1]
        return port_ok and self.hosts.named(parsed[1])

    def _cross_site(self, site: bytes | None, origin: bytes | None, scope: Scope) -> bool:
        if site is not None and site.strip().lower() not in _SAME:
            return True
        return origin is not None and not self._origin_ok(origin, scope.get("server"))

    def refusal(self, scope: Scope) -> Problem | None:
        """The problem an HTTP request is refused with, or None when it passes."""
        host = origin = site = None
        bearer = False
        for name, value in scope["headers"]:
            if name == b"host":
                host = value
            elif name == b"origin":
                origin = value
            elif name == b"sec-fetch-site":
                site = value
            elif name == b"authorization":
                bearer = self.tokens
        if not self.hosts.allows(host) and scope["path"] not in PROBES:
            return _MISDIRECTED
        if scope["method"] not in SAFE_METHODS and not bearer and self._cross_site(site, origin, scope):
            return _CROSS_SITE
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self.refusal(scope)
        if refusal is not None:
            await problem_response(refusal)(scope, receive, send)
        elif scope["method"] == "HEAD":
            await self.app({**scope, "method": "GET"}, receive, _bodyless(send))
        else:
            await self.app(scope, receive, send)


def _bodyless(send: Send) -> Send:
    """``send`` for a HEAD answered as GET: the headers (Content-Length included), no body."""

    async def head_send(message: Message) -> None:
        if message["type"] == "http.response.body":
            message = {**message, "body": b""}
        await send(message)

    return head_send
