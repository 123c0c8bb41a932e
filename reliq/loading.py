"""What reliq finds by name at run time rather than by import.

Two things are named, never imported: the user's application (``MODULE:ATTRIBUTE``, given to
``reliq worker``/``reliq dev`` and to the gateway's ``--app``), and the HTTP gateway itself
(``GATEWAY_SERVE``). The gateway package depends on reliq, not the reverse: naming it here keeps
the import graph one-way (tests/test_architecture.py checks it), and a worker-only install never
loads FastAPI.

A name that does not resolve raises ``LoadError`` (a ``ValueError`` with a one-line message);
the CLI prints it and exits 2. So does an optional dependency that is not installed
(``MissingExtra``: ``reliq gateway`` without the ``gateway`` extra). An exception raised while
the user's module runs its own imports is a bug in that module and propagates with its
traceback.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Protocol, cast

from reliq.service import App, Service

GATEWAY_SERVE = "gateway.serve:serve"
# top-level module of an optional dependency -> the extra that installs it
EXTRAS = {
    "fastapi": "gateway",
    "starlette": "gateway",
    "pydantic": "gateway",
    "uvicorn": "gateway",
    "httptools": "gateway",
    "prometheus_client": "gateway",
    "jsonschema_rs": "gateway",
    "opentelemetry": "otel",
    "httpx": "callbacks",
}


class LoadError(ValueError):
    """A ``MODULE:ATTRIBUTE`` name that does not resolve to what was asked for."""


class MissingExtra(LoadError):
    """An optional dependency is not installed: the message names the extra that brings it."""

    def __init__(self, command: str, extra: str) -> None:
        super().__init__(f"reliq {command} needs the {extra} extra: pip install 'reliq[{extra}]'")
        self.extra = extra


def extra_for(error: ModuleNotFoundError) -> str | None:
    """The extra that would have installed the module ``error`` found missing, if any."""
    return EXTRAS.get((error.name or "").split(".")[0])


class ServeGateway(Protocol):
    """The signature of ``gateway.serve.serve``."""

    def __call__(
        self, redis_url: str, host: str, port: int, app: str | None, durability: str, workers: int = 1
    ) -> None: ...


def load_object(spec: str) -> object:
    """The object ``MODULE:ATTRIBUTE`` names (the current directory is importable, as for ``python -m``)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise LoadError(f"expected MODULE:ATTRIBUTE, got {spec!r}")
    if "" in module_name.split("."):  # importlib raises TypeError for '.mod' (a relative name)
        raise LoadError(
            f"{spec}: {module_name!r} is not a module name (a dotted name like pkg.mod, not a path)"
        )
    if sys.path[:1] != [os.getcwd()]:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name is None or not (module_name == e.name or module_name.startswith(e.name + ".")):
            raise  # the module exists but one of its own imports is missing: its traceback helps
        raise LoadError(f"{spec}: no module named {e.name!r}") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise LoadError(f"{spec}: module {module_name!r} has no attribute {attr!r}") from None


def load_app(spec: str) -> App:
    """The App (or a lone Service, wrapped in an App) that ``MODULE:ATTRIBUTE`` names."""
    obj = load_object(spec)
    if not isinstance(obj, App | Service):
        raise LoadError(f"{spec} is a {type(obj).__name__}, not a reliq App or Service")
    return App.of(obj)


def gateway_server(command: str = "gateway") -> ServeGateway:
    """``gateway.serve.serve``, imported now: without the gateway extra, ``MissingExtra``."""
    try:
        serve = load_object(GATEWAY_SERVE)
    except ModuleNotFoundError as e:
        extra = extra_for(e)
        if extra is None:
            raise
        raise MissingExtra(command, extra) from None
    except LoadError:  # the gateway package itself is not there (a worker-only install)
        raise MissingExtra(command, "gateway") from None
    if not callable(serve):
        raise LoadError(f"{GATEWAY_SERVE} is not callable")
    return cast(ServeGateway, serve)


def serve_gateway(
    redis_url: str, host: str, port: int, app: str | None, durability: str, workers: int = 1
) -> None:
    """Run the HTTP gateway until it is stopped (``gateway.serve.serve``), in ``workers`` processes."""
    gateway_server()(redis_url, host, port, app, durability, workers)
