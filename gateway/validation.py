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
from reliq.schemacheck import first_error

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


def check(validators: tuple[Validator, ...], value: Any) -> None:
    """Pass when ``value`` is valid under any validator; otherwise a 422 with the first error of
    the first (current) one (``reliq.schemacheck``: the words ``reliq send`` uses too)."""
    why = first_error(validators, value)
    if why is not None:
        raise Problem(422, "Unprocessable Content", why)
