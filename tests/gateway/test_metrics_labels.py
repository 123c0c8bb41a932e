"""Issue 12, finding 5: the ``route`` label of ``reliq_gateway_requests_total`` comes from the
route table (the first segment of the matched route, the values the docs and dashboards use:
``/send``, ``/call``, ``/invocations``, ``/admin``, ...), and ``other`` for every request that
matches no route. Junk paths, however many and however long, add no series."""

from __future__ import annotations

import re

import httpx

from ..conftest import Names
from .conftest import gateway
from .test_durability_auth import noop_service

SERIES = re.compile(r'^reliq_gateway_requests_total\{route="([^"]*)",status="(\d+)"\}', re.M)


async def series(http: httpx.AsyncClient, headers: dict[str, str] | None = None) -> set[tuple[str, str]]:
    text = (await http.get("/metrics", headers=headers)).text
    return set(SERIES.findall(text))


async def test_junk_paths_add_no_series_and_known_routes_keep_their_labels(url: str, names: Names) -> None:
    svc = noop_service(names())
    async with gateway(url, svc) as http:
        sent = await http.post(f"/send/{svc.name}/noop", json=None)
        inv = sent.json()["id"]
        assert (await http.get(f"/invocations/{inv}")).status_code == 200
        assert (await http.get("/invocations/nosuch.aaaaaaaaaaaaaaaaaaaaaaaaaa")).status_code == 404
        assert (await http.get("/send/x/y")).status_code == 405  # a route, the wrong method
        assert (await http.get("/admin/services")).status_code == 200
        promise = await http.post(f"/invocations/{inv}/promises/approval", json={"value": 1})
        assert promise.status_code in (200, 409)  # stored, or 409 when the noop already finished
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/junk-0")).status_code == 404
        before = await series(http)
        for i in range(200):
            assert (await http.get(f"/junk-{i}")).status_code == 404
        for path in ("/" + "x" * 6000, "/invocations/a/b/c/d", "/", "/%00", "/admin/../../etc"):
            await http.get(path)
        after = await series(http)
        await http.post(f"/invocations/{inv}/cancel")
    assert after - before <= {("/metrics", "200")}  # the scrape that read `before`
    routes = {route for route, _ in after}
    assert routes <= {"/send", "/invocations", "/admin", "/healthz", "/metrics", "other"}
    assert {("/send", "202"), ("/invocations", "200"), ("/invocations", "404"), ("/send", "405")} <= after
    assert {("/admin", "200"), ("/healthz", "200"), ("other", "404")} <= after


async def test_requests_refused_before_routing_are_labelled_too(url: str, names: Names) -> None:
    svc = noop_service(names())
    async with gateway(url, svc, tokens=("s3cret",)) as http:
        assert (await http.post(f"/send/{svc.name}/noop", json=None)).status_code == 401
        assert (await http.get("/admin/services")).status_code == 401
        for i in range(50):
            assert (await http.get(f"/junk-{i}")).status_code == 401
        found = await series(http, {"Authorization": "Bearer s3cret"})
    assert found == {("/send", "401"), ("/admin", "401"), ("other", "401")}
