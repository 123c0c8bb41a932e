"""Validating a body against the JSON schemas workers publish, for a gateway without the
workers' code (no ``--app``): jsonschema-rs validators, compiled once per schema version and
kept in a bounded cache, so a new version a worker publishes is compiled the first time the
catalog sees it and an old one falls out.

The answer matches the one with ``--app``: a 422 whose detail names the JSON path of the first
error (``... - at `$.order_id```). With several versions in force (a rolling deploy,
``reliq.client.schemas``) a body valid under any of them passes; otherwise the error reported is
the current version's."""

from __future__ import annotations

from typing import Any

import jsonschema_rs

from reliq.client.cache import LRU

from .problems import Problem

Validator = jsonschema_rs.Validator
MAX_VERSIONS = 1024  # compiled validators kept (versions are few; names come from workers)


class Compiled:
    """Schema version -> compiled validator, least recently used dropped beyond the cap."""

    def __init__(self, maxsize: int = MAX_VERSIONS) -> None:
        self._cache: LRU[str, Validator] = LRU(maxsize)
        self.compiles = 0  # how many schemas were compiled (tests: once per version)

    def get(self, version: str, schema: dict[str, Any]) -> Validator:
        found = self._cache.get(version)
        if found is None:
            found = self._cache[version] = jsonschema_rs.validator_for(
                schema, validate_formats=True, offline=True
            )
            self.compiles += 1
        return found


MAX_DETAIL = 400  # characters of a validator's message in a 422 (the rest of a long value elided)


def json_path(parts: list[str | int]) -> str:
    """``["items", 0, "sku"]`` -> ``$.items[0].sku`` (msgspec's notation)."""
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


def check(validators: tuple[Validator, ...], value: Any) -> None:
    """Pass when ``value`` is valid under any validator; otherwise a 422 with the first error of
    the first (current) one."""
    if any(v.is_valid(value) for v in validators):
        return
    error = next(iter(validators[0].iter_errors(value)), None)
    if error is None:  # valid under the current one after all (cannot happen): accept
        return
    where = json_path(list(error.instance_path))
    message = error.message  # it quotes the offending value, which may be the whole body
    if len(message) > MAX_DETAIL:
        message = message[: MAX_DETAIL // 2] + " ... " + message[-MAX_DETAIL // 2 :]
    detail = message if where == "$" else f"{message} - at `{where}`"
    raise Problem(422, "Unprocessable Content", detail)
