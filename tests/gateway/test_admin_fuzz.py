"""Hypothesis fuzz of the admin API's query parameters and path names (cursors, limits, filters,
partitions, archived, service names, invocation ids) against a partitioned service with parked
invocations and an audit log: every answer is a 2xx JSON document or a 4xx problem, never a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AsyncExitStack
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import uvloop
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reliq import Context, Service, Terminal

from ..conftest import Names, client, running, wait_until
from .conftest import gateway

PARAMS = {
    "pending": ("cursor", "consumer", "min_idle_ms", "handler", "limit", "partition"),
    "parked": ("cursor", "limit", "handler", "archived", "partition"),
    "audit": ("cursor", "limit", "service", "partition"),
    "parked/redrive": ("handler", "limit", "archived", "partition"),
}
ODD = ["", "0", "-1", "1", "2", "3", "500", "501", "999999999", "9" * 30, "abc", "true", "1.5", " 1", "%00"]
ODD += ["a{b}", "x" * 300, "0-0", "9999999999999-0@s:0", "@", ":", "1@", "-", "+", "\x00", "é", "\u202e"]
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=260)


@pytest.fixture
def loop() -> Iterator[Any]:
    lp = uvloop.new_event_loop()
    try:
        yield lp
    finally:
        lp.close()


async def _setup(url: str, svc: Service, stack: AsyncExitStack) -> tuple[httpx.AsyncClient, list[str]]:
    """A 3-partition service with 6 parked invocations (one discarded: an audit entry); the
    cursors, ids and names the real pages hand out, for the fuzzer to start from."""
    http = await stack.enter_async_context(gateway(url, svc))
    c = await stack.enter_async_context(client(url))
    await c.set_partitions(svc.name, 3)
    async with running(svc, url):
        ids = [(await c.send(svc.name, "declined", None)).id for _ in range(6)]
        await wait_until(lambda: all_parked(c, ids), what="parked")
    await http.post(f"/admin/invocations/{ids[0]}/discard")
    seen = [*ids, svc.name, "declined"]
    for path in ("parked?limit=2", "parked?archived=true&limit=1", "pending?limit=1"):
        seen.append(str((await http.get(f"/admin/services/{svc.name}/{path}")).json().get("next_cursor")))
    seen.append(str((await http.get("/admin/audit?limit=1")).json().get("next_cursor")))
    return http, seen


async def all_parked(c: Any, ids: list[str]) -> bool:
    return all([await c.state(i) == "failed" for i in ids])


def test_admin_query_parameters_never_get_a_5xx(url: str, names: Names, loop: Any) -> None:
    svc = Service(names())

    @svc.handler
    async def declined(ctx: Context) -> None:
        raise Terminal("card declined", status=402)

    stack = AsyncExitStack()
    http, seen = loop.run_until_complete(_setup(url, svc, stack))
    values = st.one_of(st.sampled_from(ODD + seen), TEXT, st.integers(-(10**20), 10**20).map(str))
    services = st.one_of(st.just(svc.name), st.sampled_from(ODD), TEXT)
    answered: dict[int, int] = {}
    try:

        @given(
            route=st.sampled_from([*PARAMS, "overview", "service", "invocation"]),
            service=services,
            invocation=st.one_of(st.sampled_from(seen), TEXT),
            params=st.dictionaries(
                st.sampled_from(sorted({p for ps in PARAMS.values() for p in ps})), values
            ),
        )
        @settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        def fuzz(route: str, service: str, invocation: str, params: dict[str, str]) -> None:
            s, method = quote(service, safe=""), "POST" if route == "parked/redrive" else "GET"
            path = {
                "overview": "/admin/services",
                "service": f"/admin/services/{s}",
                "invocation": f"/admin/invocations/{quote(invocation, safe='')}",
                "audit": "/admin/audit",
            }.get(route, f"/admin/services/{s}/{route}")
            query = {k: v for k, v in params.items() if k in PARAMS.get(route, ())}
            r = loop.run_until_complete(http.request(method, path, params=query))
            answered[r.status_code] = answered.get(r.status_code, 0) + 1
            assert r.status_code < 500, (method, path, query, r.text)
            if r.is_redirect:  # /admin/services/ (an empty name): the trailing-slash redirect
                return
            kind = "application/json" if r.status_code < 300 else "application/problem+json"
            assert r.headers["content-type"] == kind, (path, r.status_code, r.text)

        fuzz()
    finally:
        loop.run_until_complete(stack.aclose())
    assert answered.get(200, 0) > 50 and answered.get(400, 0) > 20 and answered.get(404, 0) > 20, answered
