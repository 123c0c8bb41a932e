"""A bounded mapping for the per-name caches (a service's keys, its partition layout, the
gateway's handler catalog): names come from requests, so an unbounded dict would grow with every
distinct name anyone asks for. Least recently used entries are dropped beyond ``maxsize``."""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")
MAX_NAMES = 1024  # entries per cache: far more services than a deployment has


class LRU(Generic[K, V]):
    """``get`` / ``[key] = value`` with least-recently-used eviction; O(1) each."""

    def __init__(self, maxsize: int = MAX_NAMES) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.maxsize = maxsize
        self._data: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        try:
            self._data.move_to_end(key)
        except KeyError:
            return None
        return self._data[key]

    def __setitem__(self, key: K, value: V) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        if len(self._data) > self.maxsize:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)
