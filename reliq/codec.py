"""Encoders and decoders, built once. JSON (msgspec) is the only wire format; never pickle."""

from __future__ import annotations

import functools
import hashlib
from typing import Any

import msgspec

json_encoder = msgspec.json.Encoder()
any_decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder()


def encode(value: Any) -> bytes:
    """Encode a payload, result or step value as JSON (raises TypeError if not encodable)."""
    return json_encoder.encode(value)


def decode(data: bytes | str | None) -> Any:
    """Decode JSON stored by reliq; empty or missing means ``None``."""
    if not data:
        return None
    return any_decoder.decode(data)


def fingerprint(handler: str, payload: bytes) -> str:
    """Identity of a request for idempotency: same key + same fingerprint = same invocation."""
    h = _handler_hash(handler).copy()
    h.update(payload)
    return h.hexdigest()[:32]


@functools.lru_cache(maxsize=1024)
def _handler_hash(handler: str) -> hashlib._Hash:
    """The hash state after ``handler`` and its separator (copied per payload)."""
    return hashlib.sha256(handler.encode() + b"\0")


def fingerprints(handler: str, payloads: list[bytes]) -> list[str]:
    """``fingerprint`` of each payload of one handler (the handler's part hashed once)."""
    base = _handler_hash(handler)
    out = []
    for p in payloads:
        h = base.copy()
        h.update(p)
        out.append(h.hexdigest()[:32])
    return out


def check_key(key: str) -> str:
    """Validate an idempotency key: 1-255 characters, no control characters."""
    if not isinstance(key, str) or not 0 < len(key) <= 255 or any(ord(c) < 32 or ord(c) == 127 for c in key):
        raise ValueError("idempotency key must be 1-255 characters without control characters")
    return key


def text(value: bytes | str | int | float) -> str:
    """A Redis reply value as ``str`` (reliq reads raw bytes; this is the one place that decodes)."""
    return value.decode() if isinstance(value, bytes) else str(value)
