"""Invocation ids and their tokens (the layout is in ``keys``, which re-exports these): ids are
``<service>.<token>`` or ``<service>.<p>.<token>``; a token is random or derived from an
idempotency key, a parent and child key, a schedule tick, a reply or a debounce key."""

from __future__ import annotations

import hashlib
import os
import secrets
from base64 import b32encode

MAX_PARTITIONS = 1024


def _token(material: bytes) -> str:
    return b32encode(hashlib.sha256(material).digest()).decode()[:26].lower()


_B32 = "abcdefghijklmnopqrstuvwxyz234567"
_POOL: list[str] = []  # random tokens, drawn 256 at a time
os.register_at_fork(after_in_child=_POOL.clear)  # a forked child never reuses its parent's tokens


# byte -> base32 character of its low 5 bits: 256 is a multiple of 32, so a uniform random byte
# gives a uniform character (26 of them = 130 random bits, as a b32encode of 16.25 bytes)
_B32_OF_BYTE = bytes(ord(_B32[b & 31]) for b in range(256))


def _refill() -> None:  # one urandom and one translate per 256 tokens (b32encode is pure Python)
    text = secrets.token_bytes(26 * 256).translate(_B32_OF_BYTE).decode()
    _POOL.extend(text[i : i + 26] for i in range(0, len(text), 26))


def _random_token() -> str:
    if not _POOL:
        _refill()
    return _POOL.pop()


def _random_tokens(n: int) -> list[str]:
    while len(_POOL) < n:
        _refill()
    out = _POOL[len(_POOL) - n :]
    del _POOL[len(_POOL) - n :]
    return out


def partition_of_token(token: str, partitions: int) -> int:
    """The partition a token falls in when a service has ``partitions`` partitions (from the
    token's first 30 bits, which are uniform: random or a SHA-256 prefix)."""
    if partitions <= 1:
        return 0
    n = 0
    for ch in token[:6]:
        n = n * 32 + _B32.index(ch)
    return n % partitions


def make_id(service: str, token: str, partition: int) -> str:
    """``<service>.<token>`` in partition 0, ``<service>.<p>.<token>`` in partition p >= 1."""
    return f"{service}.{token}" if partition == 0 else f"{service}.{partition}.{token}"


def new_id(service: str, partitions: int = 1) -> str:
    """A fresh random invocation id for ``service`` (130 random bits, base32)."""
    token = _random_token()
    return make_id(service, token, partition_of_token(token, partitions))


def new_ids(
    service: str, n: int, partitions: int = 1, anchor: str | None = None
) -> tuple[list[str], list[int]]:
    """``n`` fresh random ids (as ``new_id``) and their partitions; all in the partition of the
    token ``anchor`` when given (``client/routing.py``)."""
    tokens = _random_tokens(n)
    if partitions <= 1:
        prefix = service + "."
        return [prefix + t for t in tokens], [0] * n
    if anchor is not None:
        p = partition_of_token(anchor, partitions)
        return [make_id(service, t, p) for t in tokens], [p] * n
    parts = [partition_of_token(t, partitions) for t in tokens]
    return [make_id(service, t, p) for t, p in zip(tokens, parts, strict=True)], parts


def key_token(service: str, key: str) -> str:
    return _token(b"key\0" + service.encode() + b"\0" + key.encode())


def child_token(service: str, parent_id: str, key: str) -> str:
    return _token(b"child\0" + parent_id.encode() + b"\0" + service.encode() + b"\0" + key.encode())


def tick_token(service: str, schedule: str, tick_ms: int) -> str:
    """The token of one tick of a schedule: every worker that places the tick derives the same
    one, so registration keeps one invocation."""
    return _token(b"tick\0" + f"{service}\0{schedule}\0{tick_ms}".encode())


def tick_id(service: str, schedule: str, tick_ms: int) -> str:
    """The invocation id of one tick in partition 0, where the schedule's keys are (a service of
    one partition; a multi-partition service routes ``tick_token`` like a send: worker/cron.py)."""
    return make_id(service, tick_token(service, schedule, tick_ms), 0)


def reply_token(service: str, source_id: str) -> str:
    """The token of the reply invocation that carries ``source_id``'s outcome to ``service``:
    derived, so a reply relayed twice is registered once."""
    return _token(b"reply\0" + service.encode() + b"\0" + source_id.encode())


def debounce_token(service: str, handler: str, key: str) -> str:
    """The token of a debounce key (scoped per handler): its partition, and ``ServiceKeys.debounce``."""
    return _token(b"debounce\0" + f"{service}\0{handler}\0".encode() + key.encode())


def keyed_id(service: str, key: str, partitions: int = 1) -> str:
    """The invocation id an idempotency key maps to (stable: same service + key + partition
    count -> same id; the partition comes from the key, so a retry lands on the same one)."""
    token = key_token(service, key)
    return make_id(service, token, partition_of_token(token, partitions))


def child_id(service: str, parent_id: str, key: str, partitions: int = 1) -> str:
    """The id of a child invocation: derived from the parent id and the child key (or call order)."""
    token = child_token(service, parent_id, key)
    return make_id(service, token, partition_of_token(token, partitions))
