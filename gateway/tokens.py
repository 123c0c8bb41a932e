"""API tokens and their scopes (``RELIQ_API_TOKENS``, comma-separated).

An entry is a plain secret (full access, named ``token<N>`` by position: the format before
scopes, still accepted) or ``name:secret:scope`` with scope ``read`` (GET/HEAD only) or
``operator`` (everything); ``name:secret`` means operator.

>>> [t.scope for t in parse_tokens(["s3cret", "ops:abc:operator", "viewer:xyz:read"])]
['operator', 'operator', 'read']
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import Literal, NamedTuple

Scope = Literal["read", "operator"]
READ_METHODS = frozenset({"GET", "HEAD"})
ANONYMOUS = "anonymous"
PRINCIPAL = "reliq.principal"  # ASGI scope key: the name of the token that authenticated


class Token(NamedTuple):
    name: str
    secret: bytes
    scope: Scope


def parse_tokens(entries: Sequence[str]) -> list[Token]:
    out: list[Token] = []
    for n, entry in enumerate(entries, 1):
        parts = entry.split(":")
        if len(parts) == 1:
            out.append(Token(f"token{n}", parts[0].encode(), "operator"))
            continue
        if len(parts) == 2:
            parts.append("operator")
        name, secret, scope = parts if len(parts) == 3 else ("", "", "")
        if not name or not secret or scope not in ("read", "operator"):
            raise ValueError(f"API token #{n}: use SECRET or NAME:SECRET:read|operator")
        out.append(Token(name, secret.encode(), scope))  # type: ignore[arg-type]
    return out


def match(tokens: Sequence[Token], given: bytes) -> Token | None:
    """The token whose secret equals ``given`` (constant-time compare against every token)."""
    found = None
    for t in tokens:
        if hmac.compare_digest(given, t.secret):
            found = t
    return found


def allows(token: Token, method: str) -> bool:
    return token.scope == "operator" or method in READ_METHODS
