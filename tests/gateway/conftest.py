from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from gateway.app import create_app
from gateway.settings import GatewaySettings
from reliq import App, Service


@asynccontextmanager
async def gateway(
    url: str, app: App | Service | None = None, **settings: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process gateway (lifespan run) and an httpx client talking to it over ASGI."""
    api = create_app(GatewaySettings(redis_url=url, **settings), app=App.of(app) if app is not None else None)
    async with api.router.lifespan_context(api):
        transport = httpx.ASGITransport(app=api, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            yield http
