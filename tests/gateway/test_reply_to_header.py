"""``Reply-To: service/handler`` on ``/send`` and ``/call``: the outcome reaches that handler as a
new invocation, once, exactly as ``Client.send(..., reply_to=...)`` (the record carries ``reply``).
``Callback-URL`` is a reply to the built-in callback handler, which POSTs it. Bad headers are in
``test_write_routes_4xx`` (400 or 422, nothing written)."""

from __future__ import annotations

import msgspec

from reliq import Context, Reply, Service
from reliq.client.callbacks import SERVICE, TARGET, CallbackSettings, verify

from ..conftest import Names, client, running, wait_until
from ..test_callbacks import hook
from .conftest import gateway


async def test_reply_to_header_sends_the_outcome_to_the_named_handler_once(url: str, names: Names) -> None:
    pay, billing = Service(names("pay")), Service(names("bill"))
    replies: list[Reply] = []

    @pay.handler(max_attempts=1)
    async def charge(ctx: Context, cents: int) -> dict[str, int]:
        return {"charged": cents}

    @billing.handler
    async def on_charged(ctx: Context, reply: Reply) -> None:
        replies.append(reply)

    target = {"reply-to": f"{billing.name}/on_charged"}
    async with gateway(url, pay) as http, client(url) as c:
        async with running(pay, url, relay_interval=0.2), running(billing, url):
            sent = await http.post(f"/send/{pay.name}/charge", json=5, headers=target)
            assert sent.status_code == 202, sent.text
            called = await http.post(f"/call/{pay.name}/charge", json=6, headers=target)
            assert called.status_code == 200, called.text
            sid, cid = sent.json()["id"], called.headers["reliq-invocation-id"]
            record = await c.redis.hget(c.keys_of(sid).inv(sid), "reply")
            assert record == f"{billing.name}/on_charged".encode()
            await wait_until(lambda: len(replies) >= 2, what="two replies")
            replied = await c.backlog(billing.name)
        by_id = {r.id: r for r in replies}
        assert len(replies) == 2 and replied == 0
        assert by_id[sid].state == "succeeded" and by_id[sid].result == {"charged": 5}
        assert by_id[cid].state == "succeeded" and by_id[cid].result == {"charged": 6}


async def test_callback_url_header_posts_the_outcome_to_an_allowed_host(url: str, names: Names) -> None:
    pay = Service(names("pay"))
    names.used.append(SERVICE)

    @pay.handler(max_attempts=1)
    async def charge(ctx: Context, cents: int) -> dict[str, int]:
        return {"charged": cents}

    local = frozenset({"127.0.0.1"})
    cb = CallbackSettings(hosts=local, secret=b"s3", backoff=0.05)
    async with hook(fail=0) as h, gateway(url, pay, callback_hosts=local) as http, client(url) as c:
        async with running(pay, url, relay_interval=0.2, callbacks=cb):
            sent = await http.post(f"/send/{pay.name}/charge", json=5, headers={"callback-url": h.url})
            assert sent.status_code == 202, sent.text
            sid = sent.json()["id"]
            assert await c.redis.hget(c.keys_of(sid).inv(sid), "reply") == f"{TARGET} {h.url}".encode()
            await wait_until(lambda: h.got, what="the POST")
        headers, body, _ = h.got[0]
        assert verify(b"s3", headers["reliq-signature"], body)
        assert msgspec.json.decode(body)["result"] == {"charged": 5}


async def test_readyz_warns_while_no_live_worker_delivers_callbacks(url: str, names: Names) -> None:
    pay = Service(names("pay"))
    names.used.append(SERVICE)

    @pay.handler
    async def charge(ctx: Context, cents: int) -> None:
        pass

    local = frozenset({"127.0.0.1"})
    async with gateway(url, pay) as plain:  # callbacks off: nothing to say about them
        assert "callbacks" not in (await plain.get("/readyz")).json()
    async with gateway(url, pay, callback_hosts=local) as http:
        ready = await http.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "ready"  # a note, not a refusal
        assert ready.json()["callbacks"]["deliverers"] == 0
        assert "no live worker delivers callbacks" in ready.json()["callbacks"]["warning"]
        async with running(pay, url, callbacks=CallbackSettings(hosts=local, secret=b"s")):

            async def delivering() -> bool:
                return bool((await http.get("/readyz")).json()["callbacks"]["deliverers"] == 1)

            await wait_until(delivering, what="the worker counted as a deliverer")
            assert (await http.get("/readyz")).json()["callbacks"]["warning"] is None
        async with running(pay, url):  # a worker without callbacks does not count
            assert (await http.get("/readyz")).json()["callbacks"]["deliverers"] == 0
