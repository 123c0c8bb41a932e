"""POST /send and /call: placement, idempotency, durability reporting, and bad input that places
nothing."""

from __future__ import annotations

import asyncio

import msgspec
import pytest
import redis.asyncio as aioredis

from reliq import Context, Service, Terminal
from reliq.store.registry import schema_version

from ..conftest import Names, client, running
from .conftest import gateway


class Order(msgspec.Struct):
    order_id: str
    amount_cents: int


def shop(name: str) -> Service:
    svc = Service(name)

    @svc.handler
    async def place(ctx: Context, req: Order) -> dict[str, object]:
        return {"order": req.order_id, "cents": req.amount_cents}

    @svc.handler
    async def slow(ctx: Context) -> str:
        await asyncio.sleep(1.0)
        return "slow"

    @svc.handler
    async def declined(ctx: Context) -> None:
        raise Terminal("card declined", status=402)

    return svc


async def nothing_placed(url: str, service: str) -> bool:
    r = aioredis.Redis.from_url(url)
    try:
        keys = [k async for k in r.scan_iter(match=f"reliq:{{{service}}}:*")]
        return not [k for k in keys if b":inv:" in k or k.endswith(b":stream") or k.endswith(b":delayed")]
    finally:
        await r.aclose()


async def test_send_places_then_answers_202_with_the_durability(url: str, names: Names) -> None:
    svc = shop(names())
    async with gateway(url, svc) as http, running(svc, url), client(url) as c:
        r = await http.post(f"/send/{svc.name}/place", json={"order_id": "o1", "amount_cents": 5})
        assert r.status_code == 202, r.text
        doc = r.json()
        assert doc["status"] == "accepted" and doc["durability"] == "fsync"
        assert (
            r.headers["location"] == f"/invocations/{doc['id']}" and r.headers["reliq-durability"] == "fsync"
        )
        assert await c.result(doc["id"], 10) == {"order": "o1", "cents": 5}
        st = await http.get(f"/invocations/{doc['id']}")
        assert st.status_code == 200 and st.json()["state"] == "succeeded"


async def test_idempotency_key_same_body_same_invocation_different_body_422(url: str, names: Names) -> None:
    svc = shop(names())
    body = {"order_id": "o1", "amount_cents": 5}
    async with gateway(url, svc) as http, client(url) as c:
        h = {"Idempotency-Key": "order-o1"}
        a = await http.post(f"/send/{svc.name}/place", json=body, headers=h)
        b = await http.post(
            f"/send/{svc.name}/place",
            content=b'{ "order_id": "o1",  "amount_cents": 5 }',
            headers={**h, "content-type": "application/json"},
        )
        assert a.status_code == b.status_code == 202
        assert b.json() == {**a.json(), "status": "previously_accepted"}
        conflict = await http.post(f"/send/{svc.name}/place", json={**body, "amount_cents": 6}, headers=h)
        assert conflict.status_code == 422
        assert conflict.headers["content-type"] == "application/problem+json"
        assert await c.redis.xlen(c.keys(svc.name).stream) == 1
        await c.cancel(a.json()["id"])


async def test_call_returns_the_result_or_202_or_the_handlers_failure(url: str, names: Names) -> None:
    svc = shop(names())
    async with gateway(url, svc) as http, running(svc, url):
        ok = await http.post(
            f"/call/{svc.name}/place",
            json={"order_id": "o2", "amount_cents": 7},
            headers={"Idempotency-Key": "k2"},
        )
        assert ok.status_code == 200 and ok.json() == {"order": "o2", "cents": 7}
        assert ok.headers["content-type"] == "application/json" and ok.headers["reliq-durability"]
        inv = ok.headers["reliq-invocation-id"]
        again = await http.post(
            f"/call/{svc.name}/place",
            json={"order_id": "o2", "amount_cents": 7},
            headers={"Idempotency-Key": "k2"},
        )
        assert again.status_code == 200 and again.headers["reliq-invocation-id"] == inv

        pending = await http.post(f"/call/{svc.name}/slow", json=None, headers={"Prefer": "wait=0"})
        assert pending.status_code == 202
        assert pending.headers["location"].startswith("/invocations/") and pending.headers["retry-after"]
        slow_id = pending.headers["reliq-invocation-id"]
        attached = await http.get(f"/invocations/{slow_id}/attach", params={"wait": 10})
        assert attached.status_code == 200 and attached.json() == "slow"

        failed = await http.post(f"/call/{svc.name}/declined", json=None)
        assert failed.status_code == 402
        assert failed.headers["reliq-error-source"] == "handler"
        assert failed.headers["content-type"] == "application/problem+json"
        assert failed.json()["detail"] == "card declined"


async def test_output_and_cancel(url: str, names: Names) -> None:
    svc = shop(names())
    async with gateway(url, svc) as http:
        r = await http.post(f"/send/{svc.name}/slow", json=None, params={"delay": "PT60S"})
        inv = r.json()["id"]
        assert (await http.get(f"/invocations/{inv}")).json()["state"] == "scheduled"
        assert (await http.get(f"/invocations/{inv}/output")).status_code == 202
        c1 = await http.post(f"/invocations/{inv}/cancel")
        assert c1.status_code == 202 and c1.json()["status"] == "cancelled"
        assert (await http.post(f"/invocations/{inv}/cancel")).status_code == 409
        assert (await http.get(f"/invocations/{inv}/output")).status_code == 409
        for path in (
            "/invocations/x.aaaaaaaaaaaaaaaaaaaaaaaaaa",
            "/invocations/nonsense",
            "/invocations/a{b}.c",
        ):
            assert (await http.get(path)).status_code == 404
        assert (
            await http.post(f"/invocations/{svc.name}.aaaaaaaaaaaaaaaaaaaaaaaaaa/cancel")
        ).status_code == 404
        assert (await http.get(f"/invocations/{inv}/cancel")).status_code == 405


@pytest.mark.parametrize(
    ("path", "kwargs", "status"),
    [
        ("/send/{s}/nope", {"json": {}}, 404),
        ("/send/unknownsvc/place", {"json": {}}, 404),
        ("/send/{s}/a{{b}}", {"json": {}}, 404),
        ("/send/{s}/place", {"json": {"order_id": 1, "amount_cents": 5}}, 422),
        ("/send/{s}/place", {"json": {"order_id": "x"}}, 422),
        ("/send/{s}/place", {"content": b'{"order_id": "x", "amount_cents": NaN}'}, 400),
        ("/send/{s}/place", {"content": b'{"order_id": "x", "amount_cents": Infinity}'}, 400),
        ("/send/{s}/place", {"content": b'{"order_id": "x", '}, 400),
        ("/send/{s}/place", {"content": b""}, 400),
        ("/send/{s}/place", {"content": b"\xff\xfe"}, 400),
        ("/send/{s}/place", {"content": b"[" * 100_000 + b"]" * 100_000}, 400),
        ("/send/{s}/place", {"content": b'{"order_id": "x", "amount_cents": ' + b"9" * 5000 + b"}"}, 400),
        ("/send/{s}/place", {"content": b"order_id=x", "headers": {"content-type": "text/plain"}}, 415),
        ("/send/{s}/place", {"content": b"x" * (1024 * 1024 + 1)}, 413),
        ("/send/{s}/place?delay=soon", {"json": {"order_id": "x", "amount_cents": 1}}, 400),
        ("/send/{s}/place?at=tomorrow", {"json": {"order_id": "x", "amount_cents": 1}}, 400),
        (
            "/send/{s}/place",
            {"json": {"order_id": "x", "amount_cents": 1}, "headers": {"Idempotency-Key": "k" * 256}},
            400,
        ),
        (
            "/send/{s}/place",
            {"json": {"order_id": "x", "amount_cents": 1}, "headers": {"Idempotency-Key": "a\tb"}},
            400,
        ),
    ],
)
async def test_bad_input_gets_a_problem_and_places_nothing(
    url: str, names: Names, path: str, kwargs: dict[str, object], status: int
) -> None:
    svc = shop(names())
    kwargs = dict(kwargs)
    headers = {"content-type": "application/json", **kwargs.pop("headers", {})}  # type: ignore[dict-item]
    async with gateway(url, svc) as http:
        r = await http.post(path.format(s=svc.name), headers=headers, **kwargs)  # type: ignore[arg-type]
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert "Traceback" not in r.text
    assert await nothing_placed(url, svc.name)


async def test_chunked_body_over_the_limit_is_413(url: str, names: Names) -> None:
    svc = shop(names())

    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(20):
            yield b"x" * 1000

    async with gateway(url, svc, max_body=5000) as http:
        r = await http.post(
            f"/send/{svc.name}/place", content=chunks(), headers={"content-type": "application/json"}
        )
    assert r.status_code == 413
    assert await nothing_placed(url, svc.name)


async def test_services_lists_handlers_with_schemas(url: str, names: Names) -> None:
    svc = shop(names())
    async with gateway(url, svc) as http:
        r = await http.get("/services")
    assert r.status_code == 200
    handlers = r.json()["services"][svc.name]
    assert set(handlers) == {"place", "slow", "declined"}
    assert "Order" in str(handlers["place"]["input_schema"])
    # with the App too: the version its workers publish (the dashboard shows it)
    assert handlers["place"]["schema_version"] == schema_version(handlers["place"]["input_schema"])


async def test_traceparent_is_stored_and_continued_by_handlers_and_children(url: str, names: Names) -> None:
    parent, child = Service(names("p")), Service(names("c"))
    seen: list[str | None] = []

    @child.handler
    async def leaf(ctx: Context) -> None:
        seen.append(ctx.traceparent)

    @parent.handler
    async def root(ctx: Context) -> None:
        seen.append(ctx.traceparent)
        await ctx.call(child.name, "leaf")

    tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    async with gateway(url, parent) as http, running(parent, url), running(child, url):
        r = await http.post(f"/call/{parent.name}/root", json=None, headers={"traceparent": tp})
        assert r.status_code == 200
        doc = (await http.get(f"/invocations/{r.headers['reliq-invocation-id']}")).json()
        assert doc["traceparent"] == tp
        bad = await http.post(f"/send/{parent.name}/root", json=None, headers={"traceparent": "garbage"})
        assert (await http.get(f"/invocations/{bad.json()['id']}")).json()["traceparent"] is None
    assert seen[:2] == [tp, tp]


async def test_concurrent_sends_are_group_committed_and_each_gets_its_own_answer(
    url: str, names: Names
) -> None:
    svc = shop(names())
    async with gateway(url, svc) as http, client(url) as c:
        calls = []
        for i in range(60):
            body = {"order_id": f"o{i % 30}", "amount_cents": i % 30}
            calls.append(
                http.post(f"/send/{svc.name}/place", json=body, headers={"Idempotency-Key": f"k{i % 30}"})
            )
        calls.append(
            http.post(
                f"/send/{svc.name}/place",
                json={"order_id": "x", "amount_cents": 1},
                headers={"Idempotency-Key": "k0"},
            )
        )  # conflicts with k0's body
        answers = await asyncio.gather(*calls)
        codes = [a.status_code for a in answers]
        assert codes[:60] == [202] * 60 and codes[60] == 422
        ids = {a.json()["id"] for a in answers[:60]}
        assert len(ids) == 30
        assert sorted(a.json()["status"] for a in answers[:60]).count("accepted") == 30
        assert await c.redis.xlen(c.keys(svc.name).stream) == 30
        values = {
            line.split()[0]: float(line.split()[1])
            for line in (await http.get("/metrics")).text.splitlines()
            if line and not line.startswith("#")
        }
        flushes, placed = values["reliq_gateway_flushes"], values["reliq_gateway_placed"]
        assert placed == 61 and flushes < placed / 2  # concurrent requests shared script calls
        for i in ids:
            await c.cancel(i)
