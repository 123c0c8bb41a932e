"""reliq: reliable task queue and RPC on Redis streams.

>>> from reliq import App, Context, Service, Retry, Terminal
>>> orders = Service("orders")
>>> @orders.handler(max_attempts=5, timeout=30)
... async def place(ctx: Context, req: dict) -> dict:
...     receipt = await ctx.step("charge", charge_card, req["order_id"])
...     return {"receipt": receipt}
>>> app = App([orders])        # reliq worker mymodule:app
"""

from reliq.client import Client
from reliq.client.batch import BatchError
from reliq.client.replyto import Reply
from reliq.client.sync import SyncClient
from reliq.errors import (
    Backpressure,
    Cancelled,
    ChildCancelled,
    ChildFailed,
    IdempotencyConflict,
    InvocationCancelled,
    InvocationFailed,
    LeaseLost,
    Nondeterminism,
    PromiseAlreadySettled,
    PromiseRejected,
    ReliqError,
    Retry,
    Terminal,
    UnknownInvocation,
)
from reliq.service import App, Handler, Service
from reliq.store.cron import InvalidSchedule, Schedule, ScheduleConflict, ScheduleInfo
from reliq.store.durability import Durability
from reliq.store.record import Accepted, ErrorInfo, Invocation
from reliq.worker.blocking import SyncContext
from reliq.worker.config import WorkerConfig
from reliq.worker.context import Context
from reliq.worker.run import Worker

__all__ = [
    "Accepted",
    "App",
    "Backpressure",
    "BatchError",
    "Cancelled",
    "ChildCancelled",
    "ChildFailed",
    "Client",
    "Context",
    "Durability",
    "ErrorInfo",
    "Handler",
    "IdempotencyConflict",
    "InvalidSchedule",
    "Invocation",
    "InvocationCancelled",
    "InvocationFailed",
    "LeaseLost",
    "Nondeterminism",
    "PromiseAlreadySettled",
    "PromiseRejected",
    "ReliqError",
    "Reply",
    "Retry",
    "Schedule",
    "ScheduleConflict",
    "ScheduleInfo",
    "Service",
    "SyncClient",
    "SyncContext",
    "Terminal",
    "UnknownInvocation",
    "Worker",
    "WorkerConfig",
]
