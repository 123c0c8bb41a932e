"""The built-in ``reliq-callbacks/deliver`` handler: POST an invocation's outcome to its
callback URL (``reliq.client.callbacks``).

Every worker runs it when the operator enabled callbacks (``RELIQ_CALLBACK_HOSTS`` set, or
``WorkerConfig(callbacks=CallbackSettings(...))``): callbacks need no code in the application,
and a deployment without the allowlist has no callback stream to consume. A delivery is an
ordinary invocation: a non-2xx answer, a redirect or a network error is a failed attempt, retried
with the settings' backoff and parked after ``attempts``; a URL whose host left the allowlist, or a
worker without ``RELIQ_CALLBACK_SECRET``, parks it at once (``Terminal``). Receivers may see a
delivery more than once (a worker can die after the POST and before its outcome is written):
``Reliq-Delivery-Id`` is the same on every attempt, for deduplication.
"""

from __future__ import annotations

import time
from typing import Any

from reliq import codec
from reliq.client.callbacks import SERVICE, SIGNATURE, CallbackSettings, InvalidCallbackURL, check_url, sign
from reliq.client.replyto import Callback, Reply
from reliq.errors import Terminal
from reliq.service import App, Service


class DeliveryFailed(Exception):
    """The callback URL answered something other than 2xx (the attempt is retried)."""


def callback_service(settings: CallbackSettings) -> Service:
    """The ``reliq-callbacks`` service whose ``deliver`` handler POSTs with ``settings``."""
    import httpx  # the callbacks extra; only a worker that delivers callbacks needs it

    svc = Service(SERVICE)

    @svc.handler(
        max_attempts=settings.attempts,
        backoff_base=settings.backoff,
        backoff_max=settings.backoff_max,
        timeout=settings.timeout + 5,
    )
    async def deliver(ctx: Any, cb: Callback) -> int:
        try:
            check_url(cb.url, settings.hosts)  # the allowlist may have changed since the send
        except InvalidCallbackURL as e:
            raise Terminal(str(e), status=422) from None
        if not settings.secret:
            raise Terminal("RELIQ_CALLBACK_SECRET is not set: callbacks are not sent unsigned")
        body = codec.encode(Reply(id=cb.id, state=cb.state, result=cb.result, error=cb.error))
        headers = {
            "content-type": "application/json",
            SIGNATURE: sign(settings.secret, body, int(time.time())),
            "Reliq-Invocation-Id": cb.id,
            "Reliq-Delivery-Id": ctx.id,
        }
        async with httpx.AsyncClient(timeout=settings.timeout, follow_redirects=False) as http:
            resp = await http.post(cb.url, content=body, headers=headers)
        if not 200 <= resp.status_code < 300:
            raise DeliveryFailed(f"{cb.url} answered {resp.status_code}")
        return resp.status_code

    return svc


def with_callbacks(app: App, settings: CallbackSettings) -> App:
    """``app`` plus the callback service when ``settings`` enable callbacks (and ``app`` does not
    already run a service of that name)."""
    if not settings.enabled or SERVICE in app.services:
        return app
    return App([*app.services.values(), callback_service(settings)])
