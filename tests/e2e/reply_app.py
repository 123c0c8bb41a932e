"""Reply-to with real processes: ``charge`` (max one attempt; a negative amount fails for good)
replies to ``on_charged``, which appends each reply to a witness file outside Redis. ``source``
serves only the charging service, ``both`` serves both."""

from __future__ import annotations

import os

from reliq import App, Context, Reply, Service, Terminal

pay = Service(os.environ.get("RELIQ_E2E_SERVICE", "e2e") + "-pay")
billing = Service(os.environ.get("RELIQ_E2E_SERVICE", "e2e") + "-bill")
WITNESS = os.environ.get("RELIQ_E2E_WITNESS", "/dev/null")


def witness(line: str) -> None:
    with open(WITNESS, "a") as f:  # one short append per run
        f.write(f"{line} {os.getpid()}\n")


@pay.handler(max_attempts=1)
async def charge(ctx: Context, cents: int) -> int:
    witness(f"charge {ctx.id}")
    if cents < 0:
        raise Terminal("negative")
    return cents


@billing.handler
async def on_charged(ctx: Context, reply: Reply) -> None:
    witness(f"reply {reply.id} {reply.state}")


source = App([pay])
both = App([pay, billing])
