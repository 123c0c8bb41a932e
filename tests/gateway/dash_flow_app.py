"""Handlers for the dashboard's flow-control test (a real `reliq worker` subprocess): one writer
per account, and the holder of account ``a`` sleeps until the test kills the worker; a
``max_queued`` for the intake panel."""

from __future__ import annotations

import asyncio
import os

import msgspec

from reliq import App, Context, Service

svc = Service(os.environ.get("RELIQ_DASH_SERVICE", "dashflow"), max_queued=1000)


class Acct(msgspec.Struct):
    account: str


@svc.handler(concurrency_key="account", concurrency_limit=1)
async def work(ctx: Context, req: Acct) -> None:
    await asyncio.sleep(3600)


app = App([svc])
