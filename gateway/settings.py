"""Gateway configuration (environment variables ``RELIQ_*`` or constructor arguments)."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field

from reliq.client.callbacks import CallbackSettings
from reliq.store.topology import as_cluster_url

_REPLICAS = re.compile(r"^replicas:([1-9][0-9]?)\Z")


def _number(name: str, default: float | None, kind: type[int] | type[float] = int) -> float | None:
    """``RELIQ_...`` variable ``name`` as a ``kind``, else ``default``; ``ValueError`` naming it."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ValueError(f"{name} must be {'an integer' if kind is int else 'a finite number'}, not {raw!r}")
    return value


def _tokens(env: os._Environ[str]) -> tuple[str, ...]:
    raw = env.get("RELIQ_API_TOKENS", "").split(",")
    if env.get("RELIQ_API_TOKENS_FILE"):  # one token per line; '#' starts a comment
        try:
            with open(env["RELIQ_API_TOKENS_FILE"], encoding="utf-8") as f:
                raw += [line.split("#", 1)[0] for line in f]
        except (OSError, UnicodeDecodeError) as e:
            raise ValueError(
                f"RELIQ_API_TOKENS_FILE: cannot read {env['RELIQ_API_TOKENS_FILE']!r} ({e})"
            ) from None
    return tuple(t.strip() for t in raw if t.strip())


def _items(raw: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in raw.split(",") if x.strip())


@dataclass(frozen=True, kw_only=True)
class GatewaySettings:
    """``durability``: ``none`` (dev only; reported), ``fsync`` (the server must run with
    ``appendfsync always``) or ``replicas:N`` (``WAIT N`` after each registration batch)."""

    redis_url: str = "redis://127.0.0.1:6379/0"
    durability: str = "fsync"
    wait_timeout_ms: int = 1000
    max_body: int = 1024 * 1024
    default_wait: float = 30.0
    max_wait: float = 60.0
    max_depth: int = 64
    body_timeout: float = 10.0  # a client must deliver its body within this (slow-client guard)
    # the connection edge (gateway/protocol.py), before a request reaches the app
    max_header_bytes: int = 32 * 1024  # request line + header fields; beyond it, 431
    header_timeout: float = 10.0  # first byte to end of headers; beyond it, 408 and close
    idle_timeout: float = 5.0  # a connection sending nothing (new or kept alive) is closed
    max_connections: int = 1000  # per process; beyond it, a new connection gets 503 and is closed
    max_backlog: int | None = None  # per service: stream entries not yet acked -> 429 beyond it
    max_queued: int | None = None  # per service without its own max_queued: register.lua -> 429
    max_waiters: int = 1000  # requests waiting for an outcome (/call, /attach) at once -> 429 beyond
    wait_recheck: float = 2.0  # seconds: a waiter re-reads its outcome at least this often
    app: str | None = None  # MODULE:APP to validate bodies against handler types
    tokens: tuple[str, ...] = field(default=(), repr=False)
    # Host names served (``*`` any, ``*.example.com`` its subdomains); None: loopback names
    # without tokens, any with tokens (gateway.edge)
    allowed_hosts: tuple[str, ...] | None = None
    public_origins: tuple[str, ...] = ()  # e.g. https://reliq.example.com: browser writes allowed
    callback_hosts: frozenset[str] = frozenset()  # hosts a Callback-URL may name (RELIQ_CALLBACK_HOSTS)

    def __post_init__(self) -> None:
        if self.durability not in ("none", "fsync") and not _REPLICAS.match(self.durability):
            raise ValueError(
                f"durability must be none, fsync or replicas:N (N in 1..99), not {self.durability!r}"
            )
        edge = (self.max_header_bytes, self.header_timeout, self.idle_timeout, self.max_connections)
        if min(edge) <= 0:
            raise ValueError("the header limit, header and idle timeouts and max connections must be > 0")

    @property
    def replicas(self) -> int:
        m = _REPLICAS.match(self.durability)
        return int(m.group(1)) if m else 0

    @classmethod
    def from_env(cls, **overrides: object) -> GatewaySettings:
        env = os.environ
        values: dict[str, object] = {
            "redis_url": env.get("RELIQ_REDIS_URL", cls.redis_url),
            "durability": env.get("RELIQ_DURABILITY", cls.durability),
            "max_body": _number("RELIQ_MAX_BODY", cls.max_body),
            "app": env.get("RELIQ_APP") or None,
            "max_backlog": _number("RELIQ_MAX_BACKLOG", None),
            "max_queued": _number("RELIQ_MAX_QUEUED", None),
            "default_wait": _number("RELIQ_DEFAULT_WAIT", cls.default_wait, float),
            "max_wait": _number("RELIQ_MAX_WAIT", cls.max_wait, float),
            "body_timeout": _number("RELIQ_BODY_TIMEOUT", cls.body_timeout, float),
            "max_waiters": _number("RELIQ_MAX_WAITERS", cls.max_waiters),
            "wait_recheck": _number("RELIQ_WAIT_RECHECK", cls.wait_recheck, float),
            "max_header_bytes": _number("RELIQ_MAX_HEADER_BYTES", cls.max_header_bytes),
            "header_timeout": _number("RELIQ_HEADER_TIMEOUT", cls.header_timeout, float),
            "idle_timeout": _number("RELIQ_IDLE_TIMEOUT", cls.idle_timeout, float),
            "max_connections": _number("RELIQ_MAX_CONNECTIONS", cls.max_connections),
            "tokens": _tokens(env),
            "allowed_hosts": _items(env.get("RELIQ_ALLOWED_HOSTS", "")) or None,
            "public_origins": _items(env.get("RELIQ_PUBLIC_ORIGIN", "")),
            "callback_hosts": CallbackSettings.from_env(env).hosts,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        if env.get("RELIQ_CLUSTER", "") not in ("", "0", "false"):
            values["redis_url"] = as_cluster_url(str(values["redis_url"]))
        return cls(**values)  # type: ignore[arg-type]
