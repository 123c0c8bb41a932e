"""Checking a payload against a handler's published input JSON schemas, without the handler's
code: the one check the gateway (``gateway.validation``, with no ``--app``) and ``reliq send``
(``reliq.cli.sendcheck``) both make, so both refuse the same payloads with the same words.

With several schema versions in force (a rolling deploy, ``reliq.client.schemas``) a payload
valid under any of them passes; otherwise the error reported is the first one of the first
(current) version, with the JSON path of the offending value in msgspec's notation::

    1 is not of type "string" - at `$.order_id`

The validators are jsonschema-rs's, which comes with the ``gateway`` extra: ``compile_schema``
returns None without it (the CLI then checks only names)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jsonschema_rs

MAX_DETAIL = 400  # characters of a validator's message kept (the rest of a long value elided)


def json_path(parts: Sequence[str | int]) -> str:
    """``["items", 0, "sku"]`` -> ``$.items[0].sku`` (msgspec's notation, as the 422s of --app)."""
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


def compile_schema(schema: dict[str, Any]) -> jsonschema_rs.Validator | None:
    """A validator for ``schema`` (formats checked, no remote references), or None without
    jsonschema-rs installed."""
    try:
        import jsonschema_rs
    except ImportError:
        return None
    return jsonschema_rs.validator_for(schema, validate_formats=True, offline=True)


def first_error(validators: Sequence[jsonschema_rs.Validator], value: Any) -> str | None:
    """None when ``value`` is valid under any of ``validators`` (or there are none); otherwise
    why it is not, under the first: the message (its quote of the value elided past
    ``MAX_DETAIL`` characters) and, below the top level, where."""
    if not validators or any(v.is_valid(value) for v in validators):
        return None
    error = next(iter(validators[0].iter_errors(value)), None)
    if error is None:  # valid under the current one after all (cannot happen): accept
        return None
    message = error.message  # it quotes the offending value, which may be the whole body
    if len(message) > MAX_DETAIL:
        message = message[: MAX_DETAIL // 2] + " ... " + message[-MAX_DETAIL // 2 :]
    where = json_path(list(error.instance_path))
    return message if where == "$" else f"{message} - at `{where}`"
